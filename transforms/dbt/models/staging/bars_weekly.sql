{{ config(materialized='materialized_view', indexes=[{'columns': ['symbol', 'week'], 'unique': True}]) }}
-- Weekly bars (by exchange-local date, weeks starting Monday), refreshed on every build.
select
    symbol,
    date_trunc('week', local_date)::date as week,
    (array_agg(open order by ts))[1] as open,
    max(high) as high,
    min(low) as low,
    (array_agg(close order by ts))[count(*)] as close,
    sum(volume) as volume,
    count(*) as bars
from {{ ref('stg_bars') }}
group by symbol, date_trunc('week', local_date)::date
