{{ config(
    materialized='incremental',
    unique_key=['symbol', 'ts'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['symbol', 'ts'], 'unique': True}],
) }}
{#
  Recursive indicators. Each *_state column is the aggregate state after this row; an
  incremental run seeds every aggregate with the state on the symbol's last stored row.
#}
{%- set rec = qtis().recursive -%}
{%- set floor = incremental_floor(this, 1) -%}

with cursor as (
    {{ cursor(1) }}
),

bars as (
    select
        b.symbol, b.ts, b.high, b.low, b.close, b.volume,
        lag(b.close) over (partition by b.symbol order by b.ts) as prev_close,
        coalesce(b.ts = c.watermark, false) as is_anchor
        {%- if is_incremental() -%}
        {%- for e in rec %}
        {%- if e.kind in ('obv', 'vpt', 'ad') %},
        case when b.ts = c.watermark then s.{{ e.name }} end as seed_{{ e.name }}
        {%- elif e.kind == 'macd' %},
        case when b.ts = c.watermark then s.{{ e.name }}_fast_state end as seed_{{ e.name }}_fast,
        case when b.ts = c.watermark then s.{{ e.name }}_slow_state end as seed_{{ e.name }}_slow,
        case when b.ts = c.watermark then s.{{ e.name }}_signal_state end as seed_{{ e.name }}_signal
        {%- else %},
        case when b.ts = c.watermark then s.{{ e.name }}_state end as seed_{{ e.name }}
        {%- endif %}
        {%- endfor %}
        {%- else -%}
        {%- for e in rec %}
        {%- if e.kind == 'macd' %},
        null::float8[] as seed_{{ e.name }}_fast,
        null::float8[] as seed_{{ e.name }}_slow,
        null::float8[] as seed_{{ e.name }}_signal
        {%- elif e.kind in ('obv', 'vpt', 'ad') %},
        null::float8 as seed_{{ e.name }}
        {%- else %},
        null::float8[] as seed_{{ e.name }}
        {%- endif %}
        {%- endfor %}
        {%- endif %}
    from cursor c
    {{ rows_from('c', floor) }} b on true
    {%- if is_incremental() %}
    left join {{ this }} s on s.symbol = c.symbol and s.ts = c.watermark
    {%- endif %}
),

first_pass as (
    select
        symbol, ts, is_anchor
        {%- for e in rec %}
        {%- if e.kind == 'ema' %},
        features.qtis_ema(close, {{ e.window }}, 0, seed_{{ e.name }}) {{ running() }}
            as {{ e.name }}_state
        {%- elif e.kind == 'macd' %},
        features.qtis_ema(close, {{ e.fast }}, {{ e.slow - e.fast }}, seed_{{ e.name }}_fast)
            {{ running() }} as {{ e.name }}_fast_state,
        features.qtis_ema(close, {{ e.slow }}, 0, seed_{{ e.name }}_slow)
            {{ running() }} as {{ e.name }}_slow_state,
        seed_{{ e.name }}_signal
        {%- elif e.kind == 'rsi' %},
        features.qtis_rsi(close, {{ e.window }}, seed_{{ e.name }}) {{ running() }}
            as {{ e.name }}_state
        {%- elif e.kind == 'atr' %},
        features.qtis_atr(high, low, close, {{ e.window }}, seed_{{ e.name }}) {{ running() }}
            as {{ e.name }}_state
        {%- elif e.kind == 'psar' %},
        features.qtis_psar(high, low, {{ e.acceleration }}, {{ e.maximum }}, seed_{{ e.name }})
            {{ running() }} as {{ e.name }}_state
        {%- elif e.kind == 'obv' %},
        sum(case when is_anchor then seed_{{ e.name }}
                 when prev_close is null then volume
                 else sign(close - prev_close) * volume end) {{ running() }} as {{ e.name }}
        {%- elif e.kind == 'vpt' %},
        sum(case when is_anchor then seed_{{ e.name }}
                 when volume is null then null
                 when prev_close is null then 0
                 else volume * (close - prev_close) / prev_close end) {{ running() }}
            as {{ e.name }}
        {%- elif e.kind == 'ad' %},
        sum(case when is_anchor then seed_{{ e.name }}
                 when high is null or low is null or volume is null then null
                 when high > low then ((close - low) - (high - close)) / (high - low) * volume
                 else 0 end) {{ running() }} as {{ e.name }}
        {%- else %}
        {{ exceptions.raise_compiler_error("recursive feature " ~ e.name ~ ": unknown kind " ~ e.kind) }}
        {%- endif %}
        {%- endfor %}
    from bars
),

second_pass as (
    select
        *
        {%- for e in rec if e.kind == 'macd' %},
        features.qtis_ema(
            {{ e.name }}_fast_state[1] - {{ e.name }}_slow_state[1], {{ e.signal }}, 0,
            seed_{{ e.name }}_signal
        ) {{ running() }} as {{ e.name }}_signal_state
        {%- endfor %}
    from first_pass
)

select
    symbol,
    ts
    {%- for e in rec %}
    {%- if e.kind in ('obv', 'vpt', 'ad') %},
    {{ e.name }}
    {%- elif e.kind == 'macd' %},
    {{ e.name }}_fast_state[1] - {{ e.name }}_slow_state[1] as {{ e.outputs[0] }},
    {{ e.name }}_signal_state[1] as {{ e.outputs[1] }},
    ({{ e.name }}_fast_state[1] - {{ e.name }}_slow_state[1]) - {{ e.name }}_signal_state[1]
        as {{ e.outputs[2] }},
    {{ e.name }}_fast_state,
    {{ e.name }}_slow_state,
    {{ e.name }}_signal_state
    {%- else %},
    {{ e.name }}_state[1] as {{ e.outputs[0] }},
    {{ e.name }}_state
    {%- endif %}
    {%- endfor %}
from second_pass
where not is_anchor
