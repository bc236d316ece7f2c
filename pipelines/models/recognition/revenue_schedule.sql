-- The planned schedule: one row per seat or consumption line × calendar month its term
-- touches. Seat licences are ratable under the pinned convention `recognition_method`
-- (daily | monthly_prorated); a consumption line's committed value is spread over its months
-- (monthly_prorated). Cents exact: each line's rows sum to line_amount_usd (the Rust kernel
-- ratable_schedule rounds half away from zero and puts the remainder in the final month).
{{ config(materialized='view', tags=['recognition']) }}

with lines as (
    select
        *,
        case
            when sku_type = 'seat' then '{{ var("recognition_method") }}'
            else 'monthly_prorated'
        end as method
    from {{ ref('recognition_lines') }}
    where sku_type in ('seat', 'consumption')
),

expanded as (
    select
        order_line_id,
        order_id,
        account_id,
        sku_id,
        sku_type,
        quantity,
        overage_unit_price_usd,
        order_date,
        term_start,
        term_end,
        method,
        unnest(ratable_schedule(line_amount_usd, term_start, term_end, method)) as entry
    from lines
),

final as (
    select
        order_line_id,
        order_id,
        account_id,
        sku_id,
        sku_type,
        quantity,
        overage_unit_price_usd,
        order_date,
        term_start,
        term_end,
        method,
        entry['month'] as month,
        entry['amount_usd'] as scheduled_usd
    from expanded
)

select * from final
