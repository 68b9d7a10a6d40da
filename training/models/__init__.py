"""Model families: sequence networks (Lightning), XGBoost, and the baselines beside them."""
