"""Number formats shared by the tables of the CLI and the demo."""

from __future__ import annotations

from collections.abc import Sequence


def pct(value) -> str:
    """A share as a percentage; "-" for None or NaN."""
    return "-" if value is None or value != value else f"{value:.2%}"


def num(value) -> str:
    """A ratio to two decimals; "-" for None or NaN."""
    return "-" if value is None or value != value else f"{value:.2f}"


def size(n_bytes: int) -> str:
    """Bytes in B, kB, MB or GB (powers of 1000, one decimal)."""
    value, unit = float(n_bytes), "B"
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def symbols_text(symbols: Sequence[str], show: int = 8) -> str:
    """Symbols for one line of text: a few by name; many as how many, first..last (sorted),
    so that a 2,000-symbol universe is one line, not 2,000."""
    names = sorted(symbols)
    if len(names) <= show:
        return ", ".join(names)
    return f"{len(names):,} symbols: {names[0]}..{names[-1]}"
