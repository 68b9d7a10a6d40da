"""Sources of point-in-time series: FRED-style CSV files and the US macro sample of statsmodels.

A source yields raw rows (series id, observation date, value, and the release date when the
file has one) plus how to date the releases it lacks: a lag in days after the end of each
observation's period. :mod:`warehouse.series` parses, validates and loads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from warehouse.providers.base import DataSourceError

DATE_COLUMNS = ("date", "observation_date")
RELEASE_COLUMN = "realtime_start"  # ALFRED: the day this vintage was published
IGNORED_COLUMNS = ("realtime_end",)
DEFAULT_RELEASE_TZ = "America/New_York"

# Approximate days from the end of a quarter to the first publication of its value (the
# advance estimate for national accounts), for the statsmodels sample (docs/series.md). They
# are typical US release calendars, not the dates of each release.
MACRO_RELEASE_LAGS: dict[str, tuple[int, str]] = {
    "realgdp": (30, "BEA GDP advance estimate, about a month after the quarter"),
    "realcons": (30, "BEA GDP advance estimate"),
    "realinv": (30, "BEA GDP advance estimate"),
    "realgovt": (30, "BEA GDP advance estimate"),
    "realdpi": (30, "BEA personal income of the quarter's last month, about 4 weeks on"),
    "cpi": (15, "BLS CPI of the quarter's last month, mid next month"),
    "infl": (15, "derived from cpi"),
    "m1": (14, "Fed H.6 money stock, weekly with a lag of one to two weeks"),
    "tbilrate": (1, "market rate, known when the quarter ends"),
    "realint": (15, "derived from tbilrate and infl (cpi)"),
    "unemp": (7, "BLS Employment Situation, first Friday of the next month"),
    "pop": (30, "Census population estimate, about a month on"),
}


@dataclass
class RawSeries:
    """Unparsed rows: ``series_id``, ``observed`` (period start), ``value`` and ``released``
    (NA where the file gives no release date; ``release_lag_days`` dates those)."""

    frame: pd.DataFrame
    source: str
    origin: str
    release_lag_days: dict[str, int] = field(default_factory=dict)
    period: str | None = None  # pandas offset of one observation period; None: inferred
    release_tz: str = DEFAULT_RELEASE_TZ


def read_fred_csv(
    path: Path,
    name: str | None = None,
    release_lag: int | None = None,
    period: str | None = None,
    release_tz: str = DEFAULT_RELEASE_TZ,
) -> RawSeries:
    """A FRED/ALFRED download: a date column (``DATE`` or ``observation_date``), one value
    column named after the series id ("." where FRED has no value) and, in ALFRED files,
    ``realtime_start`` (the release of that vintage). ``name`` renames the series (or picks
    its column when the file has several)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc
    by_lower = {c.strip().lower(): c for c in raw.columns}
    date_col = next((by_lower[c] for c in DATE_COLUMNS if c in by_lower), None)
    if date_col is None:
        raise DataSourceError(
            f"{path}: no date column (expected one of {', '.join(DATE_COLUMNS)}; "
            f"found {', '.join(raw.columns)})"
        )
    release_col = by_lower.get(RELEASE_COLUMN)
    skip = {date_col, release_col, *(by_lower.get(c) for c in IGNORED_COLUMNS)}
    values = [c for c in raw.columns if c not in skip]
    if name is not None and name in values:
        values = [name]
    if len(values) != 1:
        raise DataSourceError(
            f"{path}: expected one value column named after the series, found "
            f"{', '.join(values) or 'none'}; pick one with --name"
        )
    if release_col is None and release_lag is None:
        raise DataSourceError(
            f"{path} has no {RELEASE_COLUMN} column: give --release-lag DAYS (days from the "
            "end of each period to its publication)"
        )
    series_id = name or values[0].strip()
    frame = pd.DataFrame(
        {
            "series_id": series_id,
            "observed": raw[date_col],
            "value": raw[values[0]],
            "released": raw[release_col] if release_col else pd.NA,
        }
    )
    lags = {} if release_col else {series_id: int(release_lag or 0)}
    return RawSeries(frame, "file", str(path), lags, period, release_tz)


def macro_sample(release_tz: str = DEFAULT_RELEASE_TZ) -> RawSeries:
    """statsmodels' quarterly US macro data (1959Q1-2009Q3), dated with ``MACRO_RELEASE_LAGS``.

    Its values are one late vintage (revised), not what was first published: the release
    times are realistic, the values are not the first prints (docs/series.md)."""
    # deferred: statsmodels loads scipy (~1 s); only this sample needs it
    from statsmodels.datasets import macrodata

    data = macrodata.load_pandas().data
    observed = pd.PeriodIndex.from_fields(
        year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q"
    ).start_time.strftime("%Y-%m-%d")
    long = (
        data[list(MACRO_RELEASE_LAGS)]
        .assign(observed=observed)
        .melt(id_vars="observed", var_name="series_id", value_name="value")
    )
    long["released"] = pd.NA
    lags = {k: lag for k, (lag, _) in MACRO_RELEASE_LAGS.items()}
    return RawSeries(
        long[["series_id", "observed", "value", "released"]],
        "statsmodels-macrodata",
        "statsmodels.datasets.macrodata",
        lags,
        "QS",
        release_tz,
    )
