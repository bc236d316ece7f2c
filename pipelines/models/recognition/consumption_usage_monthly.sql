-- One row per consumption line × month with usage: the current, non-disputed units the line
-- consumed. A usage row belongs to the consumption line of the same account and SKU whose
-- term contains its day (usage matching no line was quarantined as unmatched_usage).
{{ config(materialized='view', tags=['recognition']) }}

with usage as (
    select
        account_id,
        sku_id,
        arrow_cast(period_start, 'Date32') as usage_day,
        units_consumed
    from {{ ref('usage_billable') }}
),

lines as (
    select order_line_id, account_id, sku_id, term_start, term_end
    from {{ ref('recognition_lines') }}
    where sku_type = 'consumption'
),

final as (
    select
        l.order_line_id,
        arrow_cast(date_trunc('month', u.usage_day), 'Date32') as month,
        sum(u.units_consumed) as units
    from usage u
    join lines l
        on l.account_id = u.account_id
        and l.sku_id = u.sku_id
        and u.usage_day >= l.term_start
        and u.usage_day < l.term_end
    group by 1, 2
)

select * from final
