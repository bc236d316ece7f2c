-- The deferred revenue roll-forward: one row per calendar month from the first billing or
-- recognition to the last month ended by as_of, company-wide. Restatements and prior-period
-- adjustments are on lines of their own; closing = opening + billed − recognised −
-- adjustments − restatements, and each month opens with the previous closing.
{{ config(tags=['recognition'], order_by=['month']) }}

with per_month as (
    select
        month,
        sum(billed_usd) as billed_usd
    from {{ ref('deferred_revenue_schedule') }}
    group by month
),

recognized as (
    select
        month,
        sum(case when not prior_period_adjustment and not restatement_flag then recognized_usd else 0 end) as recognized_usd,
        sum(case when prior_period_adjustment then recognized_usd else 0 end) as prior_period_adjustments_usd,
        sum(case when restatement_flag then recognized_usd else 0 end) as restatements_usd
    from {{ ref('revenue_recognition_log') }}
    group by month
),

bounds as (
    select min(month) as first_month, max(month) as last_month from per_month
),

calendar as (
    select unnest(generate_series(first_month, last_month, interval '1 month')) as month from bounds
),

movements as (
    select
        arrow_cast(c.month, 'Date32') as month,
        coalesce(p.billed_usd, 0) as billed_usd,
        coalesce(r.recognized_usd, 0) as recognized_usd,
        coalesce(r.prior_period_adjustments_usd, 0) as prior_period_adjustments_usd,
        coalesce(r.restatements_usd, 0) as restatements_usd
    from calendar c
    left join per_month p on p.month = arrow_cast(c.month, 'Date32')
    left join recognized r on r.month = arrow_cast(c.month, 'Date32')
),

final as (
    select
        month,
        sum(billed_usd - recognized_usd - prior_period_adjustments_usd - restatements_usd) over (
            order by month rows between unbounded preceding and current row
        ) - billed_usd + recognized_usd + prior_period_adjustments_usd + restatements_usd as opening_usd,
        billed_usd,
        recognized_usd,
        prior_period_adjustments_usd,
        restatements_usd,
        sum(billed_usd - recognized_usd - prior_period_adjustments_usd - restatements_usd) over (
            order by month rows between unbounded preceding and current row
        ) as closing_usd
    from movements
)

select * from final
