-- The revenue recognition log (SPEC §7): one row per order line × month recognised, plus
-- prior-period adjustments and restatements. Months already closed are read back verbatim
-- from warehouse/closed_periods/ and never change; what the books say now about a closed
-- month beyond what was frozen (a usage correction) is booked in the first open month with
-- prior_period_adjustment = true. Auditor restatements are rows of their own, flagged.
{{ config(tags=['recognition'], freeze='month', order_by=['order_line_id', 'month', 'method', 'adjusted_month', 'restatement_id']) }}

with closed as (
    select * from {{ closed('revenue_recognition_log') }}
),

current_books as (
    select * from {{ ref('revenue_recognition_current') }}
),

open_rows as (
    select
        account_id,
        order_line_id,
        sku_type,
        month,
        recognized_usd,
        method,
        false as prior_period_adjustment,
        false as restatement_flag,
        cast(null as varchar) as reason,
        cast(null as date) as adjusted_month,
        cast(null as varchar) as restatement_id,
        {{ build_id }} as build_id
    from current_books
    where {{ frozen_through }} is null or month > {{ frozen_through }}
),

-- Per closed month and line: now − frozen − adjustments already booked for it.
closed_delta as (
    select
        order_line_id,
        month,
        max(account_id) as account_id,
        max(sku_type) as sku_type,
        sum(amount) as delta
    from (
        select order_line_id, month, account_id, sku_type, recognized_usd as amount
        from current_books
        where month <= {{ frozen_through }}
        union all
        select order_line_id, month, account_id, sku_type, -recognized_usd
        from closed
        where not prior_period_adjustment and not restatement_flag
        union all
        select order_line_id, adjusted_month, account_id, sku_type, -recognized_usd
        from closed
        where prior_period_adjustment
    ) x
    group by order_line_id, month
),

adjustments as (
    select
        account_id,
        order_line_id,
        sku_type,
        arrow_cast({{ frozen_through }} + interval '1 month', 'Date32') as month,
        delta as recognized_usd,
        'prior_period_adjustment' as method,
        true as prior_period_adjustment,
        false as restatement_flag,
        concat('correction to closed month ', cast(month as varchar)) as reason,
        month as adjusted_month,
        cast(null as varchar) as restatement_id,
        {{ build_id }} as build_id
    from closed_delta
    where delta <> 0
),

restated as (
    select
        l.account_id,
        r.order_line_id,
        l.sku_type,
        r.period_start as month,
        r.amount_delta_usd as recognized_usd,
        'restatement' as method,
        false as prior_period_adjustment,
        true as restatement_flag,
        r.reason,
        cast(null as date) as adjusted_month,
        r.restatement_id,
        {{ build_id }} as build_id
    from {{ source('snapshot', 'restatements') }} r
    join {{ ref('recognition_lines') }} l on l.order_line_id = r.order_line_id
    where r.restatement_id not in (
        select restatement_id from closed where restatement_id is not null
    )
),

final as (
    select * from closed
    union all
    select * from open_rows
    union all
    select * from adjustments
    union all
    select * from restated
)

select * from final
