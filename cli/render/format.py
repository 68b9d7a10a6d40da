"""Number formats shared by the tables of the CLI and the demo."""

from __future__ import annotations


def pct(value) -> str:
    """A share as a percentage; "-" for None or NaN."""
    return "-" if value is None or value != value else f"{value:.2%}"


def num(value) -> str:
    """A ratio to two decimals; "-" for None or NaN."""
    return "-" if value is None or value != value else f"{value:.2f}"
