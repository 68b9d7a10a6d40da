{{ config(
    materialized='incremental',
    unique_key=['symbol', 'ts'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['symbol', 'ts'], 'unique': True}],
) }}
{#
  Features against the market: an equal-weight index of the universe's log returns (or the
  benchmark symbol's). Reads ret_1 from feat_window, which is built first.
  Backfilling a symbol's past changes the index for old rows: run a full refresh after that.
#}
{%- set feats = qtis().cross_asset -%}
{%- set ret = qtis().windowed | selectattr('kind', 'equalto', 'log_return') | map(attribute='name') | first -%}
{%- if not ret -%}{{ exceptions.raise_compiler_error("cross-asset features need a log_return feature in windowed") }}{%- endif -%}
{%- set lookback = [1] -%}
{%- for f in feats %}{% do lookback.append(f.window | default(1)) %}{% endfor -%}
{%- set lookback = lookback | max -%}
{%- set floor = incremental_floor(this, lookback) -%}

with cursor as (
    {{ cursor(lookback) }}
),

rows_needed as (
    select w.symbol, w.ts, w.{{ ret }} as ret, c.watermark, i.sector
    from cursor c
    join {{ source('market', 'instruments') }} i using (symbol)
    {{ rows_from('c', floor, ref('feat_window')) }} w on true
),

market as (
    {%- if qtis().benchmark %}
    select ts, {{ ret }} as mkt_ret
    from {{ ref('feat_window') }}
    where symbol = '{{ qtis().benchmark }}'
      and ts >= {{ floor }}
    {%- else %}
    select ts, avg({{ ret }} order by symbol) as mkt_ret
    from {{ ref('feat_window') }}
    where ts >= {{ floor }}
    group by ts
    {%- endif %}
),

sectors as (
    select w.ts, i.sector, avg(w.{{ ret }} order by w.symbol) as sector_ret
    from {{ ref('feat_window') }} w
    join {{ source('market', 'instruments') }} i using (symbol)
    where i.sector is not null
      and w.ts >= {{ floor }}
    group by w.ts, i.sector
),

joined as (
    select r.*, m.mkt_ret, s.sector_ret
    from rows_needed r
    left join market m using (ts)
    left join sectors s on s.ts = r.ts and s.sector = r.sector
),

features as (
    select
        symbol, ts, watermark
        {%- for f in feats %}
        {%- if f.kind == 'market' %},
        {{ full_window('corr(ret, mkt_ret)', f.window, 'ret * mkt_ret') }} as {{ f.outputs[0] }},
        {{ full_window('covar_samp(ret, mkt_ret)', f.window, 'ret * mkt_ret') }}
            / nullif({{ full_window('var_samp(mkt_ret)', f.window, 'ret * mkt_ret') }}, 0)
            as {{ f.outputs[1] }}
        {%- elif f.kind == 'rel_strength' %},
        {{ full_window('sum(ret)', f.window, 'ret * mkt_ret') }}
            - {{ full_window('sum(mkt_ret)', f.window, 'ret * mkt_ret') }} as {{ f.outputs[0] }}
        {%- elif f.kind == 'sector_relative' %},
        ret - sector_ret as {{ f.outputs[0] }}
        {%- else %}
        {{ exceptions.raise_compiler_error("cross-asset feature " ~ f.name ~ ": unknown kind " ~ f.kind) }}
        {%- endif %}
        {%- endfor %}
    from joined
)

select symbol, ts, {{ stage_columns('cross_asset') }}
from features
where watermark is null or ts > watermark
