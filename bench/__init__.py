"""Reproducible benchmarks, one module per measured area, run as ``python -m bench.NAME``; each
prints its tables and writes its figures to ``bench/results/NAME.json`` (``make bench``: all)."""
