-- depends_on: {{ ref('series_features') }}
{{ config(
    materialized='incremental',
    unique_key=['symbol', 'ts'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['symbol', 'ts'], 'unique': True}, {'columns': ['ts']}],
) }}
{# The feature store: one row per (symbol, ts), one column per feature of the spec; with
   series.train, the series features as known at ts too (a series that changed since the last
   build makes the next build a full refresh: transforms/store.py). #}
{%- set floor = incremental_floor(this, 1) -%}

with cursor as (
    {{ cursor(1) }}
)

select
    r.symbol,
    r.ts,
    {{ stage_columns('recursive', 'r.') }},
    {{ stage_columns('windowed', 'w.') }},
    {{ stage_columns('cross_asset', 'x.') }},
    d.day_of_week,
    d.month,
    d.is_month_end,
    d.is_quarter_end,
    d.days_to_month_end,
    d.is_turn_of_month,
    d.is_pre_holiday,
    d.is_post_holiday,
    g.garch_vol as {{ qtis().garch_column }}
    {%- if qtis().series_train %}{% for f in qtis().series %},
    sf.{{ f.name }}
    {%- endfor %}{% endif %}
from {{ ref('feat_recursive') }} r
join cursor c on c.symbol = r.symbol
join {{ ref('feat_window') }} w on w.symbol = r.symbol and w.ts = r.ts
join {{ ref('feat_cross_asset') }} x on x.symbol = r.symbol and x.ts = r.ts
join {{ source('market', 'bars') }} b on b.symbol = r.symbol and b.ts = r.ts
join {{ source('market', 'instruments') }} i on i.symbol = r.symbol
left join {{ ref('calendar_days') }} d on d.day = (b.ts at time zone i.exchange_tz)::date
left join {{ source('garch', 'garch_vol') }} g
    on g.symbol = r.symbol and g.ts = r.ts and g.ts >= {{ floor }}
{%- if qtis().series_train %}
left join {{ ref('series_features') }} sf on sf.ts = r.ts
{%- endif %}
where (c.watermark is null or r.ts > c.watermark)
  and r.ts >= {{ floor }} and w.ts >= {{ floor }} and x.ts >= {{ floor }} and b.ts >= {{ floor }}
