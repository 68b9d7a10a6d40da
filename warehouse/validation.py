"""Parse and validate raw bars: good rows load, bad rows are quarantined with their reasons.

Parsing comes first so that a cell that is not a number or a timestamp is a bad row with its raw
text kept, not a NaN that slips through. The parsed rows are then checked with a pandera schema
(types, positive finite prices, OHLC consistency) and for duplicate ``(symbol, ts)``. Gaps and
spikes are suspicious rather than wrong: they load and are recorded as flags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

PRICE_COLUMNS = ("open", "high", "low", "close")
NUMBER_COLUMNS = (*PRICE_COLUMNS, "volume")
BAR_COLUMNS = ("symbol", "ts", *NUMBER_COLUMNS)
_AWARE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"

_finite = pa.Check(lambda s: np.isfinite(s), name="must be finite")
BAR_SCHEMA = pa.DataFrameSchema(
    {
        "symbol": pa.Column(
            str, pa.Check(lambda s: s.str.len() > 0, name="must not be empty"), nullable=False
        ),
        "ts": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False),
        **{
            c: pa.Column(
                float, [pa.Check(lambda s: s > 0, name="must be > 0"), _finite], nullable=False
            )
            for c in PRICE_COLUMNS
        },
        "volume": pa.Column(
            float, [pa.Check(lambda s: s >= 0, name="must be >= 0"), _finite], nullable=False
        ),
    },
    checks=[
        pa.Check(
            lambda f: f["high"] >= f[["open", "close"]].max(axis=1), name="high >= max(open, close)"
        ),
        pa.Check(
            lambda f: f["low"] <= f[["open", "close"]].min(axis=1), name="low <= min(open, close)"
        ),
    ],
    strict=False,
    name="bars",
)


@dataclass
class ValidationResult:
    good: pd.DataFrame  # BAR_COLUMNS, ts in UTC, prices adjusted
    quarantine: pd.DataFrame  # symbol, ts, raw (dict), reason
    flags: pd.DataFrame  # symbol, ts, flag, detail

    @property
    def reasons(self) -> dict[str, int]:
        """Quarantined rows by reason kind (the text before the first quote)."""
        kinds = self.quarantine["reason"].str.split("; ").explode().str.split(" '").str[0]
        return {k: int(v) for k, v in kinds.value_counts().sort_index().items()}


class _Reasons:
    """Collects reasons per row; a row may fail several rules and keeps them all."""

    def __init__(self) -> None:
        self.parts: list[pd.Series] = []

    def add(self, mask: pd.Series, text: str, quote: pd.Series | None = None) -> None:
        """Record ``text`` for rows in ``mask``, followed by the offending raw value if given."""
        if not mask.any():
            return
        values = pd.Series(text, index=mask.index[mask])
        if quote is not None:
            values = values + " '" + quote[mask].astype(str).str.slice(0, 40) + "'"
        self.parts.append(values)

    def combined(self) -> pd.Series:
        if not self.parts:
            return pd.Series(dtype=str)
        return pd.concat(self.parts).groupby(level=0).agg("; ".join)


def parse_timestamps(
    values: pd.Series, symbols: pd.Series, tz_by_symbol: Mapping[str, str]
) -> pd.Series:
    """Timestamps in UTC; naive and date-only values are taken in the symbol's exchange time zone.

    Values that do not parse, or that do not exist in that zone (DST gaps), become NaT.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        naive = values.astype("datetime64[ns]")
        aware = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    else:
        text = values.astype("string").str.strip()
        has_offset = text.str.contains(_AWARE, regex=True, na=False) & text.str.contains(
            r"\d[T ]\d", regex=True, na=False
        )
        aware = _to_datetime(text.where(has_offset), utc=True)
        naive = _to_datetime(text.where(~has_offset), utc=False)
    zones = symbols.map(lambda s: tz_by_symbol.get(s, "UTC"))
    out = aware.copy()
    for zone, idx in zones.groupby(zones).groups.items():
        part = naive.loc[idx].dropna()
        if len(part):
            local = part.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
            out.loc[part.index] = local.dt.tz_convert("UTC")
    return out


def _to_datetime(text: pd.Series, utc: bool) -> pd.Series:
    """ISO 8601 fast path, then a lenient parser for the rest; never raises."""
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=utc)
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed.loc[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed", utc=utc)
    if utc:
        return parsed.astype("datetime64[ns, UTC]")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # e.g. an offset the regex did not catch
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _jsonable(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return str(value)


def raw_records(raw: pd.DataFrame) -> list[dict[str, object]]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in raw.to_dict("records")]


def _schema_reasons(parsed: pd.DataFrame) -> pd.Series:
    try:
        BAR_SCHEMA.validate(parsed, lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases.dropna(subset=["index"])
        column = cases["column"].where(cases["schema_context"] == "Column", None)
        text = (column.fillna("") + ": ").where(column.notna(), "") + cases["check"].astype(str)
        return text.groupby(cases["index"].astype(int).values).agg(
            lambda s: "; ".join(sorted(set(s)))
        )
    return pd.Series(dtype=str)


def validate_bars(
    raw: pd.DataFrame,
    tz_by_symbol: Mapping[str, str] | None = None,
    spike_zscore: float = 12.0,
    gap_factor: float = 5.0,
    original: pd.DataFrame | None = None,
) -> ValidationResult:
    """Split canonical raw bars into good rows, quarantined rows and flags.

    ``original`` (aligned with ``raw``) is what the quarantine keeps of a bad row; by default the
    canonical raw row.
    """
    raw = raw.reset_index(drop=True)
    original = raw if original is None else original.reset_index(drop=True)
    reasons = _Reasons()

    symbol = raw["symbol"].astype("string").str.strip().str.upper()
    reasons.add(symbol.isna() | (symbol == ""), "symbol: missing")

    ts = parse_timestamps(raw["ts"], symbol.fillna(""), tz_by_symbol or {})
    reasons.add(raw["ts"].isna(), "ts: missing")
    reasons.add(
        ts.isna() & raw["ts"].notna(), "ts: unparseable or nonexistent timestamp", raw["ts"]
    )

    parsed = pd.DataFrame({"symbol": symbol.astype(object), "ts": ts})
    number_columns = [*NUMBER_COLUMNS, *(["adj_close"] if "adj_close" in raw.columns else [])]
    for col in number_columns:
        values = pd.to_numeric(raw[col], errors="coerce").astype(float)
        reasons.add(raw[col].isna(), f"{col}: missing")
        reasons.add(values.isna() & raw[col].notna(), f"{col}: not a number", raw[col])
        parsed[col] = values

    if "adj_close" in parsed.columns:
        # Back-adjust OHLC so that returns include splits and dividends.
        factor = parsed["adj_close"] / parsed["close"]
        bad_factor = (
            (~np.isfinite(factor) | (factor <= 0))
            & parsed["adj_close"].notna()
            & parsed["close"].notna()
        )
        reasons.add(bad_factor, "adj_close: no valid adjustment factor")
        for col in PRICE_COLUMNS:
            parsed[col] = parsed[col] * factor
        parsed = parsed.drop(columns="adj_close")

    parse_failed = reasons.combined()
    checkable = parsed.drop(index=parse_failed.index)
    schema_failed = _schema_reasons(checkable)
    reasons.parts.append(schema_failed)

    clean = checkable.drop(index=schema_failed.index)
    dup = clean.duplicated(["symbol", "ts"], keep="first")
    reasons.add(dup.reindex(raw.index, fill_value=False), "duplicate (symbol, ts) in this batch")

    all_reasons = reasons.combined()
    good = parsed.drop(index=all_reasons.index)[list(BAR_COLUMNS)]
    good = good.sort_values(["symbol", "ts"]).reset_index(drop=True)
    quarantine = pd.DataFrame(
        {
            "symbol": symbol.loc[all_reasons.index]
            .astype(object)
            .where(symbol.loc[all_reasons.index].notna(), None),
            "ts": ts.loc[all_reasons.index],
            "raw": raw_records(original.loc[all_reasons.index]),
            "reason": all_reasons.values,
        }
    ).reset_index(drop=True)
    return ValidationResult(good, quarantine, detect_flags(good, spike_zscore, gap_factor))


def detect_flags(good: pd.DataFrame, spike_zscore: float, gap_factor: float) -> pd.DataFrame:
    """Spikes (robust z-score of log returns) and gaps (spacing far above the symbol's median)."""
    columns = ["symbol", "ts", "flag", "detail"]
    if good.empty:
        return pd.DataFrame(columns=columns)
    by_symbol = good.groupby("symbol", sort=False)
    log_ret = np.log(good["close"]).groupby(good["symbol"]).diff()
    centre = log_ret.groupby(good["symbol"]).transform("median")
    mad = (log_ret - centre).abs().groupby(good["symbol"]).transform("median") * 1.4826
    z = (log_ret - centre).abs() / mad.where(mad > 0)
    spike = z > spike_zscore
    spikes = good.loc[spike, ["symbol", "ts"]].assign(
        flag="spike",
        detail=[
            f"log return {r:+.4f} is {s:.1f} robust sd from the median"
            for r, s in zip(log_ret[spike], z[spike], strict=True)
        ],
    )

    day = good["ts"].dt.floor("D")
    new_day = day != day.groupby(good["symbol"]).shift()
    day_step = day.where(new_day).groupby(good["symbol"]).diff()
    usual_day = day_step.groupby(good["symbol"]).transform("median")
    bar_step = by_symbol["ts"].diff().where(~new_day)
    usual_bar = bar_step.groupby(good["symbol"]).transform("median")
    gap = (new_day & (day_step > gap_factor * usual_day)) | (
        ~new_day & (bar_step > gap_factor * usual_bar)
    )
    step = day_step.where(new_day, bar_step)
    gaps = good.loc[gap, ["symbol", "ts"]].assign(
        flag="gap",
        detail=[f"{s} since the previous bar" for s in step[gap]],
    )
    return pd.concat([spikes, gaps], ignore_index=True)[columns]
