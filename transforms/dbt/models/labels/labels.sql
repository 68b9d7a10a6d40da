{{ config(
    materialized='incremental',
    unique_key=['symbol', 'ts'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['symbol', 'ts'], 'unique': True}],
) }}
{#
  Forward labels: they use only bars after ts. The last max_horizon rows of a symbol have
  incomplete labels, so an incremental run recomputes from there.
#}
{%- set h_max = qtis().max_horizon -%}
{%- set bpy = qtis().bars_per_year -%}
{%- set floor = incremental_floor(this, h_max) -%}

with cursor as (
    {{ cursor(h_max) }}
),

bars as (
    select
        b.symbol, b.ts, b.close,
        ln(lead(b.close) over w / b.close) as next_ret
    from cursor c
    {{ rows_from('c', floor) }} b on true
    window w as (partition by b.symbol order by b.ts)
)

select
    symbol,
    ts
    {%- for h in qtis().horizons %},
    ln(lead(close, {{ h }}) over w / close) as fwd_ret_{{ h }},
    sign(ln(lead(close, {{ h }}) over w / close))::smallint as fwd_dir_{{ h }},
    case when count(next_ret) over (w rows between current row and {{ h - 1 }} following) = {{ h }}
         then sqrt(avg(next_ret * next_ret) over (w rows between current row and {{ h - 1 }} following)
                   * {{ bpy }}::float8)
    end as fwd_vol_{{ h }}
    {%- endfor %}
from bars
window w as (partition by symbol order by ts)
