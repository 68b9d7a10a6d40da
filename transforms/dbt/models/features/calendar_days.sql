{{ config(materialized='table', indexes=[{'columns': ['day'], 'unique': True}]) }}
{#
  One row per date over the holiday list's span. Trading days are weekdays that are not
  holidays; a published holiday calendar is known in advance, so nothing here looks ahead in data.
#}
with days as (
    select d::date as day
    from generate_series(
        (select date_trunc('year', min(day)) from {{ ref('market_holidays') }}),
        (select date_trunc('year', max(day)) + interval '1 year - 1 day' from {{ ref('market_holidays') }}),
        interval '1 day'
    ) d
),

flagged as (
    select
        day,
        h.day is not null as is_holiday,
        extract(isodow from day) < 6 and h.day is null as is_trading_day
    from days
    left join {{ ref('market_holidays') }} h using (day)
),

counted as (
    select
        *,
        count(*) filter (where is_trading_day) over (
            partition by date_trunc('month', day) order by day
            rows between unbounded preceding and current row
        ) as trading_days_elapsed,
        count(*) filter (where is_trading_day) over (
            partition by date_trunc('month', day) order by day
            rows between 1 following and unbounded following
        ) as days_to_month_end,
        -- the next and previous weekdays (Monday after Friday, Friday before Monday)
        day + case extract(isodow from day)::int when 5 then 3 when 6 then 2 else 1 end
            as next_weekday,
        day - case extract(isodow from day)::int when 1 then 3 when 7 then 2 else 1 end
            as prev_weekday
    from flagged
)

select
    c.day,
    extract(isodow from c.day)::int as day_of_week,
    extract(month from c.day)::int as month,
    c.days_to_month_end::int as days_to_month_end,
    (c.days_to_month_end = 0)::int as is_month_end,
    (c.days_to_month_end = 0 and extract(month from c.day)::int in (3, 6, 9, 12))::int
        as is_quarter_end,
    (c.days_to_month_end < {{ qtis().turn_of_month_before }}
        or c.trading_days_elapsed between 1 and {{ qtis().turn_of_month_after }})::int
        as is_turn_of_month,
    coalesce(n.is_holiday, false)::int as is_pre_holiday,
    coalesce(p.is_holiday, false)::int as is_post_holiday
from counted c
left join flagged n on n.day = c.next_weekday
left join flagged p on p.day = c.prev_weekday
