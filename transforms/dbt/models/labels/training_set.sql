{{ config(materialized='view') }}
-- Point in time: features use bars at or before ts, labels only bars after it.
select
    f.*
    {%- for h in qtis().horizons %},
    l.fwd_ret_{{ h }}, l.fwd_dir_{{ h }}, l.fwd_vol_{{ h }}
    {%- endfor %}
from {{ ref('bar_features') }} f
join {{ ref('labels') }} l using (symbol, ts)
