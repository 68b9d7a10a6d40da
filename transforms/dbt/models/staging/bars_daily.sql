{{ config(materialized='view') }}
-- Bars resampled to one per symbol and exchange-local date (intraday bars to daily). The
-- warehouse keeps them (market.bars_daily): a continuous aggregate on TimescaleDB, a view elsewhere.
select * from {{ source('market', 'bars_daily') }}
