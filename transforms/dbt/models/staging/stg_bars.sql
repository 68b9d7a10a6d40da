{{ config(materialized='view') }}
-- Bars with their exchange-local trading date (for calendar features).
select
    b.symbol,
    b.ts,
    b.open,
    b.high,
    b.low,
    b.close,
    b.volume,
    (b.ts at time zone i.exchange_tz)::date as local_date
from {{ source('market', 'bars') }} b
join {{ source('market', 'instruments') }} i using (symbol)
