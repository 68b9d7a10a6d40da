"""Rich tables and lines of the `qtis` commands (the demo prints some of them too)."""
