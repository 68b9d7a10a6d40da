"""Portfolio construction and portfolio risk."""
