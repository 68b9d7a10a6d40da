{{ config(
    materialized='table',
    indexes=[{'columns': ['series_id', 'released_at'], 'unique': True}],
) }}
{#
  Point in time: one row per moment a series' known history changed (a release or a revision),
  with its features over the history as known then - per observation, the latest vintage
  released at or before that moment. Rebuilt whole on every run: a late-ingested vintage can
  change any moment after its release.
#}
{%- set depth = qtis().series_depth -%}
{%- if depth %}
with events as (
    select distinct series_id, released_at
    from {{ source('market', 'series') }}
    where series_id in ({% for s in depth %}{{ series_literal(s) }}{{ ', ' if not loop.last }}{% endfor %})
),

known as (
    select e.series_id, e.released_at, k.back, k.value
    from events e
    cross join lateral (
        select (row_number() over (order by latest.observed_at desc) - 1)::int as back,
               latest.value
        from (
            select distinct on (s.observed_at) s.observed_at, s.value
            from {{ source('market', 'series') }} s
            where s.series_id = e.series_id and s.released_at <= e.released_at
            order by s.observed_at desc, s.released_at desc
            limit case e.series_id
                {%- for s, d in depth.items() %} when {{ series_literal(s) }} then {{ d }}{% endfor %} end
        ) latest
    ) k
)

select
    series_id,
    released_at,
    now() as built_at
    {%- for f in qtis().series %},
    case when series_id = {{ series_literal(f.series) }} then {{ series_feature(f) }} end
        as {{ f.name }}
    {%- endfor %}
from known
group by series_id, released_at
{%- else %}
select null::text as series_id, null::timestamptz as released_at, now() as built_at where false
{%- endif %}
