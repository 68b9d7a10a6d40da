{# SQL of the series features (formulas in docs/series.md). Input: one group of rows per
   (series, release event), `back` = 0 for the latest observation known then, 1 for the one
   before it, ...; each observation at its latest vintage released by the event. #}

{% macro series_literal(text) -%}
'{{ text | replace("'", "''") }}'
{%- endmacro %}

{% macro series_feature(f) %}
{%- set latest = 'max(value) filter (where back = 0)' -%}
{%- if f.kind == 'value' -%}
    {{ latest }}
{%- elif f.kind == 'change' -%}
    {{ latest }} - max(value) filter (where back = {{ f.length }})
{%- elif f.kind == 'zscore' -%}
    {%- set frame = 'filter (where back < ' ~ f.length ~ ')' -%}
    case when count(*) {{ frame }} = {{ f.length }}
         then ({{ latest }} - avg(value) {{ frame }}) / nullif(stddev_samp(value) {{ frame }}, 0)
    end
{%- elif f.kind == 'surprise' -%}
    {%- set frame = 'filter (where back between 1 and ' ~ f.length ~ ')' -%}
    case when count(*) {{ frame }} = {{ f.length }} then {{ latest }} - avg(value) {{ frame }} end
{%- else -%}
    {{ exceptions.raise_compiler_error("series feature " ~ f.name ~ ": unknown kind " ~ f.kind) }}
{%- endif -%}
{% endmacro %}
