-- Does the ICP predict? (AGT-201, for icp_outcome_brain_view and the strategy brain AGT-903.)
-- Every account's ICP tier and each ICP dimension's band at as_of (icp_score), against what the
-- account went on to do, per signup-year cohort and over all cohorts ('ALL'):
--   customers           accounts with recognised recurring revenue; the cohort is the year of
--                       the first; accounts never billed are the 'prospect' cohort
--   ltv_to_date_usd     Σ recurring revenue through the month before as_of, per customer
--   nrr_pct             Σ revenue in the last complete quarter ÷ Σ revenue in each customer's
--                       first full quarter, in % (customers whose first full quarter is complete)
--   churn_rate_pct      of those customers, the share with no recurring revenue in the last
--                       complete quarter, in %
--   win_rate_pct        won ÷ (won + lost) over the account's opportunities closed before as_of
-- Dimension bands (the dimension's points ÷ its weight, as icp_score sets them):
--   firmographic  ideal (1), near (≥ 0.5), outside      vertical  target (1), adjacent (0.6), other
--   revenue       full (1), half (0.5), low, unknown    intent    meeting (1), reply (0.6), open, none
-- tech and growth are data gaps for every account (icp_score), so they have no bands here.
{{ config(tags=['strategy'], order_by=['dimension', 'band', 'cohort']) }}

with icp as (
    select
        account_id,
        icp_tier,
        firmographic_points / {{ var('icp_weight_firmographic') }} as firmographic,
        vertical_points / {{ var('icp_weight_vertical') }} as vertical,
        revenue_points / {{ var('icp_weight_revenue') }} as revenue,
        intent_points / {{ var('icp_weight_intent') }} as intent
    from {{ ref('icp_score') }}
),

bands as (
    select account_id, 'icp_tier' as dimension, icp_tier as band from icp
    union all
    select account_id, 'firmographic',
        case when firmographic >= 1 - 1e-9 then 'ideal' when firmographic >= 0.5 - 1e-9 then 'near' else 'outside' end
    from icp
    union all
    select account_id, 'vertical',
        case when vertical >= 1 - 1e-9 then 'target' when vertical >= 0.6 - 1e-9 then 'adjacent' else 'other' end
    from icp
    union all
    select account_id, 'revenue',
        case when revenue is null then 'unknown' when revenue >= 1 - 1e-9 then 'full' when revenue >= 0.5 - 1e-9 then 'half' else 'low' end
    from icp
    union all
    select account_id, 'intent',
        case when intent >= 1 - 1e-9 then 'meeting' when intent >= 0.6 - 1e-9 then 'reply' when intent > 0 then 'open' else 'none' end
    from icp
),

quarterly as (
    select
        account_id,
        quarter_number(month) as q,
        sum(recurring_usd) as revenue
    from {{ ref('metric_revenue') }}
    where month < {{ as_of_date }}
    group by 1, 2
),

as_of_quarter as (
    select quarter_number({{ as_of_date }}) as qa
),

firsts as (
    select account_id, min(q) as first_q, sum(revenue) as ltv
    from quarterly
    where revenue > 0
    group by account_id
),

outcomes as (
    select
        f.account_id,
        arrow_cast(f.first_q / 4, 'Utf8') as cohort,
        f.ltv,
        case when f.first_q + 1 < qa then b.revenue end as base,
        case when f.first_q + 1 < qa then coalesce(l.revenue, arrow_cast(0, 'Decimal128(28, 2)')) end as last_quarter
    from firsts f
    cross join as_of_quarter
    left join quarterly b on b.account_id = f.account_id and b.q = f.first_q + 1
    left join quarterly l on l.account_id = f.account_id and l.q = qa - 1
),

opps as (
    select
        account_id,
        count(case when stage = 'closed_won' then 1 end) as won,
        count(case when stage = 'closed_lost' then 1 end) as lost
    from {{ source('snapshot', 'opportunities') }}
    where stage in ('closed_won', 'closed_lost') and close_date < {{ as_of_date }}
    group by account_id
),

per_account as (
    select
        b.dimension,
        b.band,
        coalesce(o.cohort, 'prospect') as cohort,
        o.account_id is not null as customer,
        o.ltv,
        case when o.base > 0 then o.base end as base,
        case when o.base > 0 then o.last_quarter end as last_quarter,
        coalesce(p.won, 0) as won,
        coalesce(p.lost, 0) as lost
    from bands b
    left join outcomes o on o.account_id = b.account_id
    left join opps p on p.account_id = b.account_id
),

by_cohort as (
    select dimension, band, cohort, customer, ltv, base, last_quarter, won, lost from per_account
    union all
    select dimension, band, 'ALL', customer, ltv, base, last_quarter, won, lost from per_account
),

final as (
    select
        dimension,
        band,
        cohort,
        count(*) as accounts,
        count(case when customer then 1 end) as customers,
        count(base) as customers_with_base,
        count(case when last_quarter <= 0 then 1 end) as churned,
        sum(ltv) as ltv,
        sum(base) as base,
        sum(last_quarter) as last_quarter,
        sum(won) as won,
        sum(lost) as lost
    from by_cohort
    group by dimension, band, cohort
)

select
    dimension,
    band,
    cohort,
    accounts,
    customers,
    churned as churned_customers,
    case when customers_with_base > 0 then round(100.0 * churned / customers_with_base, 2) end as churn_rate_pct,
    case when customers > 0 then arrow_cast(round(arrow_cast(ltv, 'Float64') / customers, 2), 'Decimal128(18, 2)') end as ltv_to_date_usd,
    case when base > 0 then round(100.0 * arrow_cast(last_quarter, 'Float64') / arrow_cast(base, 'Float64'), 2) end as nrr_pct,
    won as opportunities_won,
    lost as opportunities_lost,
    case when won + lost > 0 then round(100.0 * won / (won + lost), 2) end as win_rate_pct
from final
