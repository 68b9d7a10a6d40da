"""Bars for a venue of one instrument ("X"), a day apart from a fixed first session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from trading_runtime.broker import CrossSection

DAY0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bar(step: int, o, h, lo, c, v=1e6) -> CrossSection:
    arr = lambda x: np.array([x], dtype=float)  # noqa: E731
    return CrossSection(step, DAY0 + timedelta(days=step), arr(o), arr(h), arr(lo), arr(c), arr(v))
