"""Dagster assets, one module per domain; their bodies are thin calls into the packages below."""
