"""Parse and validate raw bars: good rows load, bad rows are quarantined with their reasons.

Parsing comes first so that a cell that is not a number or a timestamp is a bad row with its raw
text kept, not a NaN that slips through. The parsed rows are then checked with a pandera schema
(types, positive finite prices, OHLC consistency) and for duplicate ``(symbol, ts)``. Gaps and
spikes are suspicious rather than wrong: they load and are recorded as flags
(:mod:`warehouse.flags`, over everything staged by an ingest, in the database).

Close is the one price every bar needs. A source without an open, high, low or volume column
(a close-only price panel) stores them as null; a source with the column needs a value in every
row, as before, so one file never mixes bars with and without an input.

A timestamp outside the accepted window (:class:`TimeWindow`, from settings) is a bad row too: a
typo such as 2204 for 2024 must not load, nor make the loader create a partition for every month
in between, and a value beyond what pandas can hold (year 1, year 3000) must not crash it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from warehouse.settings import WarehouseSettings

PRICE_COLUMNS = ("open", "high", "low", "close")
NUMBER_COLUMNS = (*PRICE_COLUMNS, "volume")
BAR_COLUMNS = ("symbol", "ts", *NUMBER_COLUMNS)
_AWARE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
# a leading ISO year, so that a valid date pandas cannot hold is told apart from a typo
_ISO_YEAR = r"^([+-]?\d{4,6})(?=-\d{1,2}-\d{1,2})"
# years pandas holds entirely (datetime64[ns] spans 1677-09-21 to 2262-04-11)
_PANDAS_YEARS = (1678, 2261)
DUPLICATE = "duplicate (symbol, ts) in this batch"
# Postgres text and jsonb cannot hold a NUL character: the quarantine shows it as U+FFFD
NUL_SHOWN = "\ufffd"

# columns a source may lack altogether (a close-only price panel): stored as null
OPTIONAL_NUMBERS = ("open", "high", "low", "volume")

_finite = pa.Check(lambda s: np.isfinite(s), name="must be finite")


def _at_least(column: str, others: list[str]) -> pa.Check:
    """``column`` >= the largest of ``others`` present, where ``column`` is present."""
    return pa.Check(
        lambda f: f[column].isna() | (f[column] >= f[others].max(axis=1)),
        name=f"{column} >= max({', '.join(others)})",
    )


def _at_most(column: str, others: list[str]) -> pa.Check:
    return pa.Check(
        lambda f: f[column].isna() | (f[column] <= f[others].min(axis=1)),
        name=f"{column} <= min({', '.join(others)})",
    )


# Column checks skip nulls (pandera's default): a price a row has must be positive and finite;
# OHLC consistency compares the prices a row has (close always).
BAR_SCHEMA = pa.DataFrameSchema(
    {
        "symbol": pa.Column(
            str, pa.Check(lambda s: s.str.len() > 0, name="must not be empty"), nullable=False
        ),
        "ts": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False),
        **{
            c: pa.Column(
                float,
                [pa.Check(lambda s: s > 0, name="must be > 0"), _finite],
                nullable=c in OPTIONAL_NUMBERS,
            )
            for c in PRICE_COLUMNS
        },
        "volume": pa.Column(
            float, [pa.Check(lambda s: s >= 0, name="must be >= 0"), _finite], nullable=True
        ),
    },
    checks=[_at_least("high", ["open", "close"]), _at_most("low", ["open", "close"])],
    strict=False,
    name="bars",
)


@dataclass(frozen=True)
class TimeWindow:
    """The days (UTC, both included) a bar's timestamp may fall on."""

    first_day: date
    last_day: date

    @classmethod
    def of(cls, settings: WarehouseSettings, today: date | None = None) -> TimeWindow:
        """From ``QTIS_INGEST_EARLIEST`` to today plus ``QTIS_INGEST_FUTURE_DAYS``."""
        today = today or datetime.now(UTC).date()
        return cls(settings.ingest_earliest, today + timedelta(days=settings.ingest_future_days))

    @classmethod
    def default(cls) -> TimeWindow:
        """The settings' defaults (not after tomorrow, not before 1900), without the environment."""
        fields = WarehouseSettings.model_fields
        settings = WarehouseSettings.model_construct(
            ingest_earliest=fields["ingest_earliest"].default,
            ingest_future_days=fields["ingest_future_days"].default,
        )
        return cls.of(settings)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.first_day, tz="UTC")

    @property
    def end(self) -> pd.Timestamp:
        """The first instant after the window."""
        return pd.Timestamp(self.last_day + timedelta(days=1), tz="UTC")


@dataclass
class ValidationResult:
    # BAR_COLUMNS, ts in UTC, prices adjusted, sorted by (symbol, ts); the index is each row's
    # position in the raw frame
    good: pd.DataFrame
    quarantine: pd.DataFrame  # symbol, ts, raw (dict), reason

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
            shown = quote[mask].astype(str).str.slice(0, 40).str.replace("\x00", NUL_SHOWN)
            values = values + " '" + shown + "'"
        self.parts.append(values)

    def combined(self) -> pd.Series:
        if not self.parts:
            return pd.Series(dtype=str)
        return pd.concat(self.parts).groupby(level=0).agg("; ".join)


def parse_timestamps(
    values: pd.Series, symbols: pd.Series, tz_by_symbol: Mapping[str, str]
) -> pd.Series:
    """Timestamps in UTC; naive and date-only values are taken in the symbol's exchange time zone.

    Values that do not parse, that do not exist in that zone (DST gaps), or that pandas cannot
    hold (:func:`beyond_pandas`) become NaT. Sub-microsecond digits are dropped, as Postgres
    drops them.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        held = values.where(beyond_pandas(values) == 0)
        return held.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").dt.floor("us")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        naive = values.where(beyond_pandas(values) == 0).astype("datetime64[ns]")
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
    return out.dt.floor("us")


def beyond_pandas(values: pd.Series) -> pd.Series:
    """-1 for a valid timestamp before what pandas holds, +1 after it, 0 otherwise.

    Typed values (Parquet keeps microseconds: year 1 and 3000 are valid) are compared as they
    are; text is recognised by its leading ISO year, the rest of it having to be a valid date.
    """
    side = pd.Series(0, index=values.index, dtype="int8")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        # compared in UTC: pandas' bounds moved into a zone west of UTC (yfinance's New York
        # times) would themselves overflow
        zone = "UTC" if values.dt.tz is not None else None
        held = values.dt.tz_convert("UTC") if zone else values
        side[held < pd.Timestamp.min.tz_localize(zone)] = -1
        side[held > pd.Timestamp.max.tz_localize(zone)] = 1
        return side
    text = values.astype("string").str.strip()
    year = pd.to_numeric(text.str.extract(_ISO_YEAR, expand=False), errors="coerce")
    far = year.notna() & ((year < _PANDAS_YEARS[0]) | (year > _PANDAS_YEARS[1]))
    if far.any():
        as_2000 = text[far].str.replace(_ISO_YEAR, "2000", regex=True)
        valid = pd.to_datetime(as_2000, errors="coerce", format="ISO8601", utc=True).notna()
        valid = valid.reindex(values.index, fill_value=False)
        side[far & valid] = np.sign(year[far & valid] - _PANDAS_YEARS[0]).astype("int8")
    return side


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
    if isinstance(value, str):
        return value.replace("\x00", NUL_SHOWN)
    if isinstance(value, bool | int):
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


def _timestamps(
    raw: pd.Series,
    symbol: pd.Series,
    tz_by_symbol: Mapping[str, str],
    window: TimeWindow,
    reasons: _Reasons,
) -> pd.Series:
    """Parsed timestamps, NaT (with the reason recorded) where missing, unparseable or outside
    ``window``."""
    ts = parse_timestamps(raw, symbol, tz_by_symbol)
    side = beyond_pandas(raw[ts.isna() & raw.notna()]).reindex(raw.index, fill_value=0)
    early, late = (ts < window.start) | (side < 0), (ts >= window.end) | (side > 0)
    reasons.add(raw.isna(), "ts: missing")
    reasons.add(early, f"ts: before {window.first_day} (QTIS_INGEST_EARLIEST)", raw)
    reasons.add(late, f"ts: after {window.last_day} (QTIS_INGEST_FUTURE_DAYS)", raw)
    unparsed = ts.isna() & raw.notna() & (side == 0)
    reasons.add(unparsed, "ts: unparseable or nonexistent timestamp", raw)
    return ts.where(~(early | late))


def validate_bars(
    raw: pd.DataFrame,
    tz_by_symbol: Mapping[str, str] | None = None,
    original: pd.DataFrame | None = None,
    window: TimeWindow | None = None,
) -> ValidationResult:
    """Split canonical raw bars into good rows and quarantined rows.

    ``original`` (aligned with ``raw``) is what the quarantine keeps of a bad row; by default the
    canonical raw row. ``window`` defaults to :meth:`TimeWindow.default`.
    """
    raw = raw.reset_index(drop=True)
    original = raw if original is None else original.reset_index(drop=True)
    reasons = _Reasons()

    symbol = raw["symbol"].astype("string").str.strip().str.upper()
    reasons.add(symbol.isna() | (symbol == ""), "symbol: missing")
    reasons.add(symbol.str.contains("\x00", regex=False, na=False), "symbol: contains NUL")
    symbol = symbol.str.replace("\x00", NUL_SHOWN, regex=False)
    zones = tz_by_symbol or {}
    ts = _timestamps(raw["ts"], symbol.fillna(""), zones, window or TimeWindow.default(), reasons)

    parsed = pd.DataFrame({"symbol": symbol.astype(object), "ts": ts})
    number_columns = [*NUMBER_COLUMNS, *(["adj_close"] if "adj_close" in raw.columns else [])]
    for col in number_columns:
        if col not in raw.columns:  # a source without this column: null, not a bad row
            parsed[col] = np.nan
            continue
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
    reasons.add(dup.reindex(raw.index, fill_value=False), DUPLICATE)

    all_reasons = reasons.combined()
    good = parsed.drop(index=all_reasons.index)[list(BAR_COLUMNS)]
    good = good.sort_values(["symbol", "ts"])
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
    return ValidationResult(good, quarantine)
