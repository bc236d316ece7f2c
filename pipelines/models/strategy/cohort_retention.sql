-- Signup-quarter cohorts × quarters since signup (AGT-501 + AGT-503, for cohort_brain_view and
-- the strategy brain AGT-903). A cohort is the accounts whose first recognised recurring revenue
-- (metric_revenue.recurring_usd > 0) fell in a quarter; each member's base is its recurring
-- revenue in the cohort's first full quarter (quarters_since = 1), so a partial signup quarter
-- never flatters or hurts a curve. For every complete quarter since (quarters ending on or before
-- as_of, up to var('strategy_quarters')), over the cohort's members:
--   logo_retention_pct   members with recurring revenue in the quarter ÷ members, in %
--   nrr_pct              Σ revenue ÷ Σ base, in %                     (expansion counts)
--   grr_pct              Σ min(revenue, base) ÷ Σ base, in %          (capped per account)
--   expansion_usd        Σ max(revenue − base, 0)
--   contraction_usd      Σ (base − revenue) over members still paying, below their base
--   churned_usd          Σ base over members with no recurring revenue in the quarter
-- so base + expansion − contraction − churned = revenue exactly, per row.
-- The cohort's latest row also carries its members' churn-risk tier mix at as_of
-- (churn_risk_log, the health score with the renewal multiplier); earlier rows have none,
-- as the scores keep var('score_history_weeks') weeks of history, not quarters.
{{ config(tags=['strategy'], order_by=['cohort_quarter', 'quarters_since']) }}

with quarterly as (
    select
        account_id,
        quarter_number(month) as q,
        sum(recurring_usd) as revenue
    from {{ ref('metric_revenue') }}
    group by 1, 2
),

as_of_quarter as (
    select quarter_number({{ as_of_date }}) as qa
),

cohorts as (
    select account_id, min(q) as cohort_q
    from quarterly
    where revenue > 0
    group by account_id
),

members as (
    select c.account_id, c.cohort_q, b.revenue as base
    from cohorts c
    join quarterly b on b.account_id = c.account_id and b.q = c.cohort_q + 1
    cross join as_of_quarter
    where b.revenue > 0 and c.cohort_q + 1 < qa
),

offsets as (
    select arrow_cast(k, 'Int64') as k
    from (select unnest(generate_series(1, {{ var('strategy_quarters') }})) as k) t
),

cells as (
    select
        m.cohort_q,
        o.k,
        m.account_id,
        m.base,
        coalesce(q.revenue, arrow_cast(0, 'Decimal128(28, 2)')) as revenue
    from members m
    cross join offsets o
    cross join as_of_quarter
    left join quarterly q on q.account_id = m.account_id and q.q = m.cohort_q + o.k
    where m.cohort_q + o.k < qa
),

latest as (
    select cohort_q, max(k) as last_k from cells group by cohort_q
),

tiers as (
    select account_id, churn_risk_tier
    from {{ ref('churn_risk_log') }}
    where score_date = {{ as_of_date }}
),

final as (
    select
        c.cohort_q,
        c.k,
        count(*) as cohort_accounts,
        count(case when c.revenue > 0 then 1 end) as retained_accounts,
        sum(c.base) as base_usd,
        sum(c.revenue) as revenue_usd,
        sum(case when c.revenue > c.base then c.revenue - c.base else 0 end) as expansion_usd,
        sum(case when c.revenue > 0 and c.revenue < c.base then c.base - c.revenue else 0 end) as contraction_usd,
        sum(case when c.revenue <= 0 then c.base else 0 end) as churned_usd,
        sum(case when c.revenue < c.base then c.revenue else c.base end) as retained_base_usd,
        count(case when c.k = l.last_k and t.churn_risk_tier = 'Critical' then 1 end) as tier_critical,
        count(case when c.k = l.last_k and t.churn_risk_tier = 'High' then 1 end) as tier_high,
        count(case when c.k = l.last_k and t.churn_risk_tier = 'Medium' then 1 end) as tier_medium,
        count(case when c.k = l.last_k and t.churn_risk_tier = 'Low' then 1 end) as tier_low,
        max(l.last_k) as last_k
    from cells c
    join latest l on l.cohort_q = c.cohort_q
    left join tiers t on t.account_id = c.account_id
    group by c.cohort_q, c.k
)

select
    date_of_quarter_number(cohort_q) as cohort_quarter,
    arrow_cast(cohort_q / 4, 'Utf8') || '-Q' || arrow_cast(cohort_q % 4 + 1, 'Utf8') as cohort,
    arrow_cast(k, 'Int32') as quarters_since,
    date_of_quarter_number(cohort_q + k) as quarter,
    cohort_accounts,
    retained_accounts,
    round(100.0 * retained_accounts / cohort_accounts, 2) as logo_retention_pct,
    round(100.0 * arrow_cast(revenue_usd, 'Float64') / arrow_cast(base_usd, 'Float64'), 2) as nrr_pct,
    round(100.0 * arrow_cast(retained_base_usd, 'Float64') / arrow_cast(base_usd, 'Float64'), 2) as grr_pct,
    arrow_cast(base_usd, 'Decimal128(18, 2)') as base_usd,
    arrow_cast(revenue_usd, 'Decimal128(18, 2)') as revenue_usd,
    arrow_cast(expansion_usd, 'Decimal128(18, 2)') as expansion_usd,
    arrow_cast(contraction_usd, 'Decimal128(18, 2)') as contraction_usd,
    arrow_cast(churned_usd, 'Decimal128(18, 2)') as churned_usd,
    case when k = last_k then tier_critical end as tier_critical,
    case when k = last_k then tier_high end as tier_high,
    case when k = last_k then tier_medium end as tier_medium,
    case when k = last_k then tier_low end as tier_low
from final
