{# SQL for each feature kind of the spec; formulas in docs/features.md. #}

{% macro qtis() %}{{ return(var('qtis')) }}{% endmacro %}

{# A trailing frame of n rows per symbol, in time order. #}
{% macro trailing(n) -%}
over (partition by symbol order by ts rows between {{ n - 1 }} preceding and current row)
{%- endmacro %}

{% macro running() -%}
over (partition by symbol order by ts rows between unbounded preceding and current row)
{%- endmacro %}

{# `expr` over the last n rows, null until the frame holds n non-null `of` values. #}
{% macro full_window(expr, n, of='close') -%}
case when count({{ of }}) {{ trailing(n) }} = {{ n }} then {{ expr }} {{ trailing(n) }} end
{%- endmacro %}

{#
  `expr` over the last n rows of a symbol, null before row `first` (1-based, default n). `rn` is
  the row number in the frame read, which equals the symbol's own row number wherever a value
  is kept (an incremental run reads `lookback` rows more than any window needs).
#}
{% macro rolled(expr, n, first=none) -%}
case when rn >= {{ first or n }} then {{ expr }} {{ trailing(n) }} end
{%- endmacro %}

{# Select-list SQL of one windowed feature; inputs: symbol, ts, open/high/low/close/volume,
   prev_close, prev_high, prev_low, ret (log return). #}
{% macro windowed_feature(f) %}
{%- set o = f.outputs -%}
{%- if f.kind == 'log_return' -%}
    ret as {{ o[0] }}
{%- elif f.kind == 'sma' -%}
    {{ rolled('avg(close)', f.window) }} as {{ o[0] }}
{%- elif f.kind == 'bbands' -%}
    {%- set mid = rolled('avg(close)', f.window) -%}
    {%- set sd = rolled('stddev_pop(close)', f.window) -%}
    {{ mid }} + {{ f.k }} * {{ sd }} as {{ o[0] }},
    {{ mid }} as {{ o[1] }},
    {{ mid }} - {{ f.k }} * {{ sd }} as {{ o[2] }}
{%- elif f.kind == 'stoch' -%}
    {%- set hh = rolled('max(high)', f.k_window) -%}
    {%- set ll = rolled('min(low)', f.k_window) -%}
    case when {{ hh }} > {{ ll }} then 100 * (close - {{ ll }}) / ({{ hh }} - {{ ll }})
         when {{ hh }} = {{ ll }} then 0 end as {{ o[0] }}
{%- elif f.kind == 'willr' -%}
    {%- set hh = rolled('max(high)', f.window) -%}
    {%- set ll = rolled('min(low)', f.window) -%}
    case when {{ hh }} > {{ ll }} then -100 * ({{ hh }} - close) / ({{ hh }} - {{ ll }})
         when {{ hh }} = {{ ll }} then 0 end as {{ o[0] }}
{%- elif f.kind == 'roc' -%}
    {%- set base = 'lag(close, ' ~ f.window ~ ') over (partition by symbol order by ts)' -%}
    case when {{ base }} <> 0 then (close / {{ base }} - 1) * 100
         when {{ base }} = 0 then 0 end as {{ o[0] }}
{%- elif f.kind == 'volume_z' -%}
    (volume - {{ rolled('avg(volume)', f.window) }})
        / nullif({{ rolled('stddev_samp(volume)', f.window) }}, 0) as {{ o[0] }}
{%- elif f.kind == 'hist_vol' -%}
    {{ rolled('stddev_samp(ret)', f.window, f.window + 1) }} * sqrt({{ qtis().bars_per_year }}::float8)
        as {{ o[0] }}
{%- elif f.kind == 'range' -%}
    {{ rolled('max(high)', f.window) }} as {{ o[0] }},
    {{ rolled('min(low)', f.window) }} as {{ o[1] }},
    close / {{ rolled('max(high)', f.window) }} - 1 as {{ o[2] }},
    close / {{ rolled('min(low)', f.window) }} - 1 as {{ o[3] }}
{%- elif f.kind == 'pivots' -%}
    {%- set p = '((prev_high + prev_low + prev_close) / 3)' -%}
    {{ p }} as {{ o[0] }},
    2 * {{ p }} - prev_low as {{ o[1] }},
    2 * {{ p }} - prev_high as {{ o[2] }},
    {{ p }} + (prev_high - prev_low) as {{ o[3] }},
    {{ p }} - (prev_high - prev_low) as {{ o[4] }}
{%- else -%}
    {{ exceptions.raise_compiler_error("windowed feature " ~ f.name ~ ": unknown kind " ~ f.kind) }}
{%- endif -%}
{% endmacro %}

{# Second pass over the first pass's columns: what needs other features of nearby rows. #}
{% macro windowed_output(f) %}
{%- set o = f.outputs -%}
{%- if f.kind == 'bbands' -%}
    {{ o[0] }}, {{ o[1] }}, {{ o[2] }},
    (close - {{ o[2] }}) / nullif({{ o[0] }} - {{ o[2] }}, 0) as {{ o[3] }},
    ({{ o[0] }} - {{ o[2] }}) / nullif({{ o[1] }}, 0) as {{ o[4] }}
{%- elif f.kind == 'stoch' -%}
    {{ o[0] }}, {{ rolled('avg(' ~ o[0] ~ ')', f.d_window, f.k_window + f.d_window - 1) }} as {{ o[1] }}
{%- else -%}
    {{ o | join(', ') }}
{%- endif -%}
{% endmacro %}

{# Column lists of one stage, for the select lists of downstream models. #}
{% macro stage_columns(stage, prefix='') -%}
{%- for f in qtis()[stage] -%}
{%- for c in f.outputs %}{{ prefix }}{{ c }}{{ ", " if not loop.last }}{% endfor -%}
{{ ", " if not loop.last }}
{%- endfor -%}
{%- endmacro %}

{#
  Per symbol, where an incremental run of `relation` starts reading market.bars: the ts of the
  `lookback`-th row at or before the symbol's last row in `relation` (so windows are complete),
  or -infinity for a symbol `relation` has not seen. `watermark` is that last row's ts.
#}
{% macro read_from(relation, lookback) %}
select i.symbol,
       w.ts as watermark,
       coalesce(
           (select b.ts from {{ source('market', 'bars') }} b
             where b.symbol = i.symbol and b.ts <= w.ts
             order by b.ts desc offset {{ lookback - 1 }} limit 1),
           '-infinity'::timestamptz
       ) as read_from
from {{ source('market', 'instruments') }} i
left join lateral (
    select max(t.ts) as ts from {{ relation }} t where t.symbol = i.symbol
) w on true
{% endmacro %}

{#
  The earliest read_from over all symbols, as a literal: repeated next to the per-symbol bound so
  the planner sees how few rows an incremental run touches and uses the (symbol, ts) indexes.
#}
{% macro incremental_floor(relation, lookback) %}
{%- if execute and is_incremental() -%}
    {%- set query -%}
        select coalesce(min(read_from), '-infinity')::text
        from ({{ read_from(relation, lookback) }}) r
    {%- endset -%}
    {{ return("'" ~ run_query(query).columns[0].values()[0] ~ "'::timestamptz") }}
{%- else -%}
    {{ return("'-infinity'::timestamptz") }}
{%- endif -%}
{% endmacro %}

{# The `cursor` CTE body of an incremental model: per symbol, its watermark and read_from. #}
{% macro cursor(lookback) %}
{%- if is_incremental() %}
    {{ read_from(this, lookback) }}
{%- else %}
    select symbol, null::timestamptz as watermark, '-infinity'::timestamptz as read_from
    from {{ source('market', 'instruments') }}
{%- endif %}
{% endmacro %}

{# Rows of `relation` (default market.bars) from each cursor symbol's read_from on. #}
{% macro rows_from(cursor_alias, floor, relation=none) -%}
join lateral (
    select * from {{ relation if relation is not none else source('market', 'bars') }} x
    where x.symbol = {{ cursor_alias }}.symbol
      and x.ts >= {{ cursor_alias }}.read_from and x.ts >= {{ floor }}
)
{%- endmacro %}
