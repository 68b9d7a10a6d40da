"""Spikes and gaps: suspicious bars that load and are recorded in ``market.bar_flags``.

Computed in the database over everything an ingest staged (``bars_stage``), so that a file read
in chunks is judged as a whole (each symbol's usual return and spacing are medians over all its
bars) while the client holds one chunk at a time.

- spike: the log return is more than ``spike_zscore`` robust standard deviations (1.4826 x the
  median absolute deviation) from the symbol's median log return;
- gap: the first bar of a day comes more than ``gap_factor`` x the symbol's median day-to-day
  spacing after the previous trading day, or a bar within a day more than ``gap_factor`` x the
  median intraday spacing after the one before it (days are UTC days).
"""

from __future__ import annotations

import psycopg

_FLAGS = """
with steps as (
    select symbol, ts, day,
           ln(close) - lag(ln(close)) over w as log_ret,
           day is distinct from lag(day) over w as new_day,
           ts - lag(ts) over w as bar_step
    from (select symbol, ts, close, date_trunc('day', ts, 'UTC') as day from bars_stage) b
    window w as (partition by symbol order by ts)
), spaced as (
    select symbol, ts, log_ret, new_day,
           case when new_day
                then day - lag(day) over (partition by symbol, new_day order by ts)
                else bar_step end as step
    from steps
), usual as (
    select symbol,
           percentile_cont(0.5) within group (order by log_ret) as centre,
           percentile_cont(0.5) within group (order by step) filter (where new_day) as day_step,
           percentile_cont(0.5) within group (order by step) filter (where not new_day)
               as bar_step
    from spaced group by symbol
), scored as (
    select s.symbol, s.ts, s.log_ret, s.step,
           abs(s.log_ret - u.centre) as dev,
           case when s.new_day then u.day_step else u.bar_step end as usual_step
    from spaced s join usual u using (symbol)
), spread as (
    select symbol, 1.4826 * percentile_cont(0.5) within group (order by dev) as mad
    from scored group by symbol
), found as (
    select symbol, ts, 'spike' as flag,
           format('log return %%s%%s is %%s robust sd from the median',
                  case when log_ret >= 0 then '+' end, round(log_ret::numeric, 4),
                  round((dev / mad)::numeric, 1)) as detail
    from scored join spread using (symbol)
    where mad > 0 and dev / mad > %(spike_zscore)s
    union all
    select symbol, ts, 'gap', format('%%s since the previous bar', step)
    from scored
    where step > %(gap_factor)s * usual_step
), written as (
    insert into market.bar_flags as f (symbol, ts, flag, detail, source)
    select symbol, ts, flag, detail, %(source)s from found
    on conflict (symbol, ts, flag) do update
        set detail = excluded.detail, source = excluded.source, flagged_at = now()
    returning f.flag
)
select flag, count(*) from written group by flag
"""


def record_flags(
    cur: psycopg.Cursor, source: str, spike_zscore: float, gap_factor: float
) -> dict[str, int]:
    """Flag the spikes and gaps among the staged bars; returns how many of each."""
    params = {"source": source, "spike_zscore": spike_zscore, "gap_factor": gap_factor}
    return {flag: int(n) for flag, n in cur.execute(_FLAGS, params).fetchall()}
