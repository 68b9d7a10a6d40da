{{ config(
    materialized='incremental',
    unique_key=['symbol', 'ts'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['symbol', 'ts'], 'unique': True}],
) }}
{# Fixed-window features. An incremental run re-reads `lookback` rows per symbol. #}
{%- set win = qtis().windowed -%}
{%- set floor = incremental_floor(this, qtis().lookback) -%}

with cursor as (
    {{ cursor(qtis().lookback) }}
),

bars as (
    select
        b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, c.watermark,
        lag(b.close) over w as prev_close,
        lag(b.high) over w as prev_high,
        lag(b.low) over w as prev_low,
        ln(b.close / lag(b.close) over w) as ret,
        row_number() over w as rn
    from cursor c
    {{ rows_from('c', floor) }} b on true
    window w as (partition by b.symbol order by b.ts)
),

first_pass as (
    select
        symbol, ts, close, watermark, rn
        {%- for f in win %},
        {{ windowed_feature(f) }}
        {%- endfor %}
    from bars
),

second_pass as (
    select
        symbol, ts, watermark, rn
        {%- for f in win %},
        {{ windowed_output(f) }}
        {%- endfor %}
    from first_pass
)

select symbol, ts, {{ stage_columns('windowed') }}
from second_pass
where watermark is null or ts > watermark
