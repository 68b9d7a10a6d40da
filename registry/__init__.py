"""The MLflow boundary: registered versions, aliases, typed version metadata, verified loading,
the promotion record (``mlops.promotions``) and the alias moves it records."""
