{# Data tests of the feature store; each returns the offending rows. #}

{% test unique_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{# bounds hold up to `tolerance` (float rounding: 100 * x / x can be 100.00000000000001) #}
{% test between(model, column_name, min_value=none, max_value=none, tolerance=1e-9) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }} - {{ tolerance }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }} + {{ tolerance }}{% endif %}
  )
{% endtest %}

{% test ordered(model, columns) %}
{# columns in non-decreasing order on every row where all are present #}
select *
from {{ model }}
where
{%- for i in range(columns | length - 1) %}
    {{ "or " if not loop.first }}{{ columns[i] }} > {{ columns[i + 1] }}
{%- endfor %}
{% endtest %}
