-- What the books say now, before closed periods are applied: one row per order line × month
-- that has ended by as_of. Seat: the ratable schedule. Consumption: the month's committed
-- value plus overage (units above the monthly commit × the overage price) from current,
-- non-disputed usage. Services: each milestone in full in its sign-off month, only when the
-- customer signed off (completion alone never recognises).
{{ config(materialized='view', tags=['recognition']) }}

with schedule as (
    select * from {{ ref('revenue_schedule') }}
    where arrow_cast(month + interval '1 month', 'Date32') <= {{ as_of_date }}
),

seat as (
    select
        account_id, order_line_id, sku_type, month,
        scheduled_usd as recognized_usd,
        method
    from schedule
    where sku_type = 'seat'
),

consumption as (
    select
        s.account_id, s.order_line_id, s.sku_type, s.month,
        -- the committed units of the month, prorated when the term covers part of it
        s.quantity * (
            day_number(least(s.term_end, arrow_cast(s.month + interval '1 month', 'Date32')))
            - day_number(greatest(s.term_start, s.month))
        ) / (day_number(arrow_cast(s.month + interval '1 month', 'Date32')) - day_number(s.month)) as commit_units,
        coalesce(u.units, 0) as units,
        s.overage_unit_price_usd,
        s.scheduled_usd
    from schedule s
    left join {{ ref('consumption_usage_monthly') }} u
        on u.order_line_id = s.order_line_id and u.month = s.month
    where s.sku_type = 'consumption'
),

consumption_recognized as (
    select
        account_id, order_line_id, sku_type, month,
        arrow_cast(
            scheduled_usd + coalesce(money_mul(greatest(units - commit_units, 0), overage_unit_price_usd), 0),
            'Decimal128(18, 2)'
        ) as recognized_usd,
        'consumption' as method
    from consumption
),

services as (
    select
        l.account_id,
        l.order_line_id,
        l.sku_type,
        arrow_cast(date_trunc('month', m.sign_off_date), 'Date32') as month,
        m.amount_usd as recognized_usd,
        'milestone_sign_off' as method
    from {{ source('snapshot', 'service_milestones') }} m
    join {{ ref('recognition_lines') }} l on l.order_line_id = m.order_line_id
    where m.customer_sign_off
        and m.sign_off_date is not null
        and arrow_cast(date_trunc('month', m.sign_off_date), 'Date32') + interval '1 month' <= {{ as_of_date }}
),

final as (
    select * from seat
    union all
    select * from consumption_recognized
    union all
    select * from services
)

select * from final
