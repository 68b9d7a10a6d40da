{{ config(materialized='view', pre_hook="select market.refresh_bar_rollups()") }}
-- Weekly bars (by exchange-local date, weeks starting Monday). The warehouse keeps them
-- (market.bars_weekly): a continuous aggregate on TimescaleDB, a materialized view elsewhere,
-- which the pre-hook refreshes on every build.
select * from {{ source('market', 'bars_weekly') }}
