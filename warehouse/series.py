"""Point-in-time series (``market.series``): validate, quarantine, load with binary COPY, read.

Every value carries two times: ``observed_at``, the start of the period it reports on, and
``released_at``, when it became known. Only the release time decides what a bar may see
(docs/series.md). A release given as a date alone is taken as known from the start of the next
day in the release time zone (the conservative reading: it came out at some time that day); a
release given with a time of day is taken at that time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from psycopg.types.json import Jsonb

from warehouse.db import connect
from warehouse.providers.base import DataSourceError
from warehouse.providers.series_files import RawSeries
from warehouse.validation import raw_records

MISSING = (".", "")  # FRED's marker of a period without a value, and an empty cell
DUPLICATE = "duplicate (series, observation, release) in this batch"

_STAGE = """
create temp table series_stage (
    series_id text not null, observed_at timestamptz not null,
    released_at timestamptz not null, value float8 not null
) on commit drop
"""
# a vintage already stored with the same value is left alone: a re-run writes nothing
_UPSERT = """
insert into market.series as s (series_id, observed_at, released_at, value, source)
select series_id, observed_at, released_at, value, %(source)s from series_stage
on conflict (series_id, observed_at, released_at) do update
    set value = excluded.value, source = excluded.source, ingested_at = now()
    where (s.value, s.source) is distinct from (excluded.value, excluded.source)
"""
_NEW_KEYS = """
select count(*) from series_stage t
where not exists (select 1 from market.series s where s.series_id = t.series_id
                  and s.observed_at = t.observed_at and s.released_at = t.released_at)
"""
_QUARANTINE = """
insert into market.series_quarantine (series_id, raw, reason, source)
values (%s, %s, %s, %s) on conflict do nothing
"""


@dataclass
class SeriesValidation:
    good: pd.DataFrame  # series_id, observed_at, released_at (UTC), value
    quarantine: pd.DataFrame  # series_id, raw (dict), reason
    missing: int  # rows without a value ("."), skipped


@dataclass
class SeriesReport:
    source: str
    origin: str
    series: list[str]
    rows: int
    inserted: int
    updated: int
    missing: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    first_release: pd.Timestamp | None = None
    last_release: pd.Timestamp | None = None

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


def _dates(text: pd.Series) -> pd.Series:
    """Naive timestamps; NaT where a value is not a date."""
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed")
    return parsed.astype("datetime64[ns]")


def periods(raw: RawSeries) -> dict[str, pd.DateOffset]:
    """Each series' observation period: ``raw.period``, else inferred from all its dates (the
    rows without a value included, since they keep the calendar regular)."""
    out = {}
    for series_id, dates in raw.frame.groupby("series_id")["observed"]:
        days = pd.DatetimeIndex(_dates(dates.astype("string")).dropna().drop_duplicates())
        freq = raw.period or (pd.infer_freq(days.sort_values()) if len(days) >= 3 else None)
        if freq is None:
            raise DataSourceError(
                f"cannot tell the period of series {series_id} from its dates: give --period "
                "(a pandas offset such as D, W-FRI, MS, QS)"
            )
        out[str(series_id)] = pd.tseries.frequencies.to_offset(freq)
    return out


def _released_at(
    raw: RawSeries,
    ids: pd.Series,
    text: pd.Series,
    observed: pd.Series,
    period: dict[str, pd.DateOffset],
) -> tuple[pd.Series, pd.Series]:
    """(release time in UTC, unparsable mask). Given dates are known from the next day's start,
    given times at that time; rows without one get ``period end + lag`` days (next day's start)."""
    zone = raw.release_tz
    given = text.notna() & (text != "")
    parsed = _dates(text.where(given))
    dated_only = given & ~text.str.contains(r"\d[T ]\d", regex=True, na=False)
    local = parsed + pd.to_timedelta(dated_only.astype(int), unit="D")
    lagged = ~given & observed.notna()
    if lagged.any():
        lag = ids[lagged].map(raw.release_lag_days)
        if lag.isna().any():
            names = ", ".join(sorted(set(ids[lagged][lag.isna()])))
            raise DataSourceError(f"series {names}: no release dates and no release lag")
        ends = [d + period[i] for d, i in zip(observed[lagged], ids[lagged], strict=True)]
        local[lagged] = pd.DatetimeIndex(ends) + pd.to_timedelta(lag.astype(int), unit="D")
    aware = local.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC"), given & parsed.isna()


def validate_series(raw: RawSeries) -> SeriesValidation:
    """Parse and check every row; bad rows are returned with their reasons, never dropped."""
    frame = raw.frame.reset_index(drop=True)
    lagged = frame["released"].isna() | (frame["released"].astype("string").str.strip() == "")
    period = periods(raw) if lagged.any() else {}
    text = frame[["observed", "value", "released"]].astype("string").apply(lambda c: c.str.strip())
    missing = text["value"].isna() | text["value"].isin(MISSING)
    frame, text = frame[~missing].reset_index(drop=True), text[~missing].reset_index(drop=True)
    observed = _dates(text["observed"])
    value = pd.to_numeric(text["value"], errors="coerce")
    released, bad_release = _released_at(
        raw, frame["series_id"], text["released"], observed, period
    )
    local = observed.dt.tz_localize(raw.release_tz, ambiguous="NaT", nonexistent="shift_forward")
    observed_at = local.dt.tz_convert("UTC")
    finite = value.notna() & value.abs().lt(float("inf"))
    reasons: list[pd.Series] = []

    def reason(mask: pd.Series, message: str, quote: pd.Series | None = None) -> None:
        shown = pd.Series(message, index=mask.index)
        if quote is not None:
            shown = shown + " '" + quote.astype(str).str.slice(0, 40) + "'"
        reasons.append(shown.where(mask))

    reason(observed.isna(), "observation date is not a date", text["observed"])
    reason(~finite, "value is not a finite number", text["value"])
    reason(bad_release, "release date is not a date", text["released"])
    reason(released < observed_at, "released before the period it reports on")
    good = pd.DataFrame(
        {
            "series_id": frame["series_id"].astype(str),
            "observed_at": observed_at,
            "released_at": released,
            "value": value,
        }
    )
    why = pd.concat(reasons, axis=1).apply(lambda r: "; ".join(r.dropna()), axis=1).astype(object)
    ok = (why == "").to_numpy(bool)
    dup = np.zeros(len(good), bool)
    dup[ok] = good[ok].duplicated(["series_id", "observed_at", "released_at"], keep=False)
    why[dup] = DUPLICATE
    ok &= ~dup
    bad = frame[~ok]
    quarantine = pd.DataFrame(
        {"series_id": bad["series_id"], "raw": raw_records(bad), "reason": why[~ok]}
    )
    return SeriesValidation(good[ok].reset_index(drop=True), quarantine, int(missing.sum()))


def load_series(url: str, raw: RawSeries) -> SeriesReport:
    """Validate ``raw`` and upsert its good rows into market.series (idempotent: a re-run
    inserts and updates nothing); bad rows go to market.series_quarantine with the reason."""
    checked = validate_series(raw)
    good = checked.good
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(_STAGE)
        with cur.copy(
            "copy series_stage (series_id, observed_at, released_at, value) from stdin"
            " (format binary)"
        ) as copy:
            copy.set_types(["text", "timestamptz", "timestamptz", "float8"])
            for row in good.itertuples(index=False):
                copy.write_row((row.series_id, row.observed_at, row.released_at, row.value))
        inserted = cur.execute(_NEW_KEYS).fetchone()[0]
        cur.execute(_UPSERT, {"source": raw.source})
        updated = cur.rowcount - inserted
        cur.executemany(
            _QUARANTINE,
            [
                (r.series_id, Jsonb(r.raw), r.reason, raw.source)
                for r in checked.quarantine.itertuples(index=False)
            ],
        )
    kinds = checked.quarantine["reason"].str.split("; ").explode().str.split(" '").str[0]
    return SeriesReport(
        source=raw.source,
        origin=raw.origin,
        series=sorted(good["series_id"].unique()),
        rows=len(good),
        inserted=inserted,
        updated=updated,
        missing=checked.missing,
        quarantined=len(checked.quarantine),
        reasons={k: int(v) for k, v in kinds.value_counts().sort_index().items()},
        first_release=good["released_at"].min() if len(good) else None,
        last_release=good["released_at"].max() if len(good) else None,
    )


def read_series(url: str, series_ids: Sequence[str]) -> pd.DataFrame:
    """Every vintage of ``series_ids`` in release order (what the online engine replays)."""
    with connect(url) as conn:
        rows = conn.execute(
            "select series_id, observed_at, released_at, value from market.series"
            " where series_id = any(%s) order by released_at, series_id, observed_at",
            (list(series_ids),),
        ).fetchall()
    frame = pd.DataFrame(rows, columns=["series_id", "observed_at", "released_at", "value"])
    for col in ("observed_at", "released_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


@dataclass(frozen=True)
class SeriesSummary:
    series_id: str
    observations: int
    vintages: int
    first_observed: pd.Timestamp
    last_observed: pd.Timestamp
    first_release: pd.Timestamp
    last_release: pd.Timestamp
    source: str


def series_summary(url: str) -> list[SeriesSummary]:
    """One line per stored series: its span of observations and of releases."""
    with connect(url) as conn:
        rows = conn.execute(
            "select series_id, count(distinct observed_at), count(*), min(observed_at),"
            " max(observed_at), min(released_at), max(released_at), string_agg(distinct source,"
            " ', ') from market.series group by series_id order by series_id"
        ).fetchall()
    return [SeriesSummary(*r) for r in rows]
