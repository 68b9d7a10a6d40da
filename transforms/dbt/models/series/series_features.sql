{{ config(materialized='table', indexes=[{'columns': ['ts'], 'unique': True}]) }}
{#
  The series features as known at each bar time (one row per distinct ts of market.bars; the
  series are market-wide): per series, its latest release event at or before ts. A release is
  usable by a bar whose ts is at or after it; docs/series.md says how release times are dated.
  No rows while no series of the spec has been ingested.
#}
{%- set depth = qtis().series_depth %}

{#- materialized, and the emptiness test outside it: TimescaleDB 2.22's SkipScan (its plan for a
    distinct ts on the hypertable) fails with 'unsupported subplan type for SkipScan: Result' when
    a one-time filter is pushed under it #}
with bar_times as materialized (
    select distinct ts from {{ source('market', 'bars') }}
)

select
    b.ts
    {%- for s in depth %}{% set alias = 's' ~ loop.index %}
    {%- for f in qtis().series if f.series == s %},
    {{ alias }}.{{ f.name }}
    {%- endfor %}
    {%- endfor %}
from bar_times b
{%- for s in depth %}
left join lateral (
    select * from {{ ref('series_releases') }} r
    where r.series_id = {{ series_literal(s) }} and r.released_at <= b.ts
    order by r.released_at desc
    limit 1
) s{{ loop.index }} on true
{%- endfor %}
where exists (select 1 from {{ ref('series_releases') }})
