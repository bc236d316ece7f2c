-- Deferred revenue per order line × month with billing or recognition, up to the last month
-- ended by as_of: opening, billed (invoice lines by invoice month), recognised (the log,
-- adjustments and restatements included), closing = opening + billed − recognised, exactly.
{{ config(tags=['recognition'], order_by=['order_line_id', 'month']) }}

with billed as (
    select
        il.order_line_id,
        arrow_cast(date_trunc('month', i.invoice_date), 'Date32') as month,
        sum(il.amount_usd) as billed_usd
    from {{ source('snapshot', 'invoice_lines') }} il
    join {{ source('snapshot', 'invoices') }} i on i.invoice_id = il.invoice_id
    where i.status <> 'void' and i.invoice_date < {{ as_of_date }}
    group by 1, 2
),

recognized as (
    select order_line_id, month, sum(recognized_usd) as recognized_usd
    from {{ ref('revenue_recognition_log') }}
    group by 1, 2
),

activity as (
    select
        coalesce(b.order_line_id, r.order_line_id) as order_line_id,
        coalesce(b.month, r.month) as month,
        coalesce(b.billed_usd, 0) as billed_usd,
        coalesce(r.recognized_usd, 0) as recognized_usd
    from billed b
    full outer join recognized r on b.order_line_id = r.order_line_id and b.month = r.month
),

balances as (
    select
        *,
        sum(billed_usd - recognized_usd) over (
            partition by order_line_id order by month rows between unbounded preceding and current row
        ) as closing_usd
    from activity
),

final as (
    select
        l.account_id,
        b.order_line_id,
        l.sku_type,
        b.month,
        b.closing_usd - b.billed_usd + b.recognized_usd as opening_usd,
        b.billed_usd,
        b.recognized_usd,
        b.closing_usd
    from balances b
    join {{ ref('recognition_lines') }} l on l.order_line_id = b.order_line_id
)

select * from final
