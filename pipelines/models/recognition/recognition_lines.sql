-- One row per order line of an active order, with its term: what recognition schedules.
-- Superseded and cancelled orders never recognise (SPEC §7).
{{ config(materialized='view', tags=['recognition']) }}

with final as (
    select
        -- ids
        l.order_line_id,
        l.order_id,
        l.account_id,
        l.sku_id,
        l.sku_type,
        -- measures
        l.quantity,
        l.unit_price_usd,
        l.overage_unit_price_usd,
        l.line_amount_usd,
        -- dates
        o.order_date,
        o.term_start,
        o.term_end
    from {{ source('snapshot', 'order_lines') }} l
    join {{ source('snapshot', 'orders') }} o on o.order_id = l.order_id
    where o.status = 'active'
)

select * from final
