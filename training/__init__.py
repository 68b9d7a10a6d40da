"""Model training on the feature store: datasets, leakage-safe splits, models, metrics."""
