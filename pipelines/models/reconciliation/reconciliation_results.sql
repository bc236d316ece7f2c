-- Every reconciliation check of the close (SPEC §7): gtmos' figures against the reference
-- systems, one row per compared key, with the tolerance used and pass / fail. Metered usage
-- (the current view, disputed rows included) against the product database per account × SKU
-- × month (±0.01 %) and × quarter (±0.001 %); invoices against the billing system (±$0.01);
-- deferred revenue against the general ledger per month end (±$1). A key missing on either
-- side fails. Tolerances are project vars.
{{ config(tags=['reconciliation'], order_by=['check_name', 'period', 'account_id', 'sku_id', 'invoice_id'], sort_in_ranges=4000000) }}

with reference_usage as (
    select account_id, sku_id, month, sum(units) as units
    from {{ source('snapshot', 'reference_usage') }}
    group by 1, 2, 3
),

metered as (
    select
        account_id,
        sku_id,
        arrow_cast(date_trunc('month', arrow_cast(period_start, 'Date32')), 'Date32') as month,
        sum(units_consumed) as units
    from {{ ref('usage_current') }}
    where sku_id in (select distinct sku_id from reference_usage)
        and arrow_cast(date_trunc('month', arrow_cast(period_start, 'Date32')), 'Date32') + interval '1 month' <= {{ as_of_date }}
    group by 1, 2, 3
),

usage_pairs as (
    select
        coalesce(m.account_id, r.account_id) as account_id,
        coalesce(m.sku_id, r.sku_id) as sku_id,
        coalesce(m.month, r.month) as month,
        m.units as gtmos_value,
        r.units as reference_value
    from metered m
    full outer join reference_usage r
        on m.account_id = r.account_id and m.sku_id = r.sku_id and m.month = r.month
),

usage_checks as (
    -- Both grains in one aggregate over the pairs, so the pairs are computed once: the month
    -- grain is the pair itself (one row per group: `max` is its value, null kept), the quarter
    -- sums a quarter's months with a missing side as 0.
    select
        case when grouping(month) = 0 then 'usage_monthly' else 'usage_quarterly' end as check_name,
        case when grouping(month) = 0 then 'month' else 'quarter' end as grain,
        account_id, sku_id,
        case when grouping(month) = 0 then month else quarter end as period,
        cast(null as varchar) as invoice_id,
        case when grouping(month) = 0 then max(gtmos_value) else sum(coalesce(gtmos_value, 0)) end as gtmos_value,
        case when grouping(month) = 0 then max(reference_value) else sum(coalesce(reference_value, 0)) end as reference_value,
        case
            when grouping(month) = 0 then {{ var('recon_monthly_tolerance') }}
            else {{ var('recon_quarterly_tolerance') }}
        end as tolerance,
        'relative' as tolerance_kind
    from (select *, arrow_cast(date_trunc('quarter', month), 'Date32') as quarter from usage_pairs) p
    group by grouping sets ((account_id, sku_id, quarter, month), (account_id, sku_id, quarter))
),

billing as (
    select
        'invoice_amount' as check_name, 'invoice' as grain,
        i.account_id, cast(null as varchar) as sku_id,
        arrow_cast(date_trunc('month', i.invoice_date), 'Date32') as period,
        coalesce(i.invoice_id, r.invoice_id) as invoice_id,
        i.amount_usd as gtmos_usd, r.amount_usd as reference_usd
    from {{ source('snapshot', 'invoices') }} i
    full outer join {{ source('snapshot', 'reference_billing') }} r on r.invoice_id = i.invoice_id
),

ledger as (
    select
        'deferred_revenue' as check_name, 'month' as grain,
        cast(null as varchar) as account_id, cast(null as varchar) as sku_id,
        r.month as period, cast(null as varchar) as invoice_id,
        f.closing_usd as gtmos_usd, r.deferred_revenue_usd as reference_usd
    from {{ source('snapshot', 'reference_gl') }} r
    left join {{ ref('deferred_revenue_rollforward') }} f on f.month = r.month
),

relative_checks as (
    select
        check_name, grain, account_id, sku_id, period, invoice_id,
        gtmos_value, reference_value,
        gtmos_value - reference_value as difference,
        abs(gtmos_value - reference_value) / nullif(abs(reference_value), 0) as relative_difference,
        tolerance, tolerance_kind,
        case
            when gtmos_value is null or reference_value is null then 'fail'
            when reference_value = 0 and gtmos_value <> 0 then 'fail'
            when abs(gtmos_value - reference_value) / nullif(abs(reference_value), 0) > tolerance then 'fail'
            else 'pass'
        end as status
    from usage_checks u
),

money_checks as (
    -- Exact decimal differences: a difference of exactly the tolerance passes.
    select
        check_name, grain, account_id, sku_id, period, invoice_id,
        cast(gtmos_usd as double) as gtmos_value,
        cast(reference_usd as double) as reference_value,
        cast(gtmos_usd - reference_usd as double) as difference,
        cast(abs(gtmos_usd - reference_usd) as double) / nullif(abs(cast(reference_usd as double)), 0) as relative_difference,
        tolerance, 'absolute_usd' as tolerance_kind,
        case
            when gtmos_usd is null or reference_usd is null then 'fail'
            when abs(gtmos_usd - reference_usd) > cast(tolerance as decimal(18, 2)) then 'fail'
            else 'pass'
        end as status
    from (
        select *, {{ var('recon_invoice_tolerance_usd') }} as tolerance from billing
        union all
        select *, {{ var('recon_deferred_tolerance_usd') }} as tolerance from ledger
    ) m
),

final as (
    select * from relative_checks
    union all
    select * from money_checks
)

select * from final
