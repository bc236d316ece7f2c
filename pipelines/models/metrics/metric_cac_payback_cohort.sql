-- CAC payback, Decision OS cohort form (SPEC §8), at grain segment × acquisition channel ×
-- cohort month (the accounts' first recurring-revenue month):
--   CAC        = sales + marketing spend of the cohort month for the segment and channel
--                ÷ new accounts of the cohort
--   Monthly_CM = the cohort's recurring revenue in its first full month (cohort month + 1)
--                × gross margin ÷ new accounts
--   payback_months = CAC ÷ max(Monthly_CM, 1e-6)
-- numerator = CAC, denominator = Monthly_CM. Its QA tests (CAC ≥ 0 and Monthly_CM ≥ 0;
-- payback < 36 months; CAC ≤ $1M) block publishing (_models.yml). Segment ALL pools a channel's
-- segments. A cohort smaller than var('payback_min_cohort_accounts') is a data gap: one account
-- is an anecdote, not a payback. The first month of data is skipped (accounts already paying
-- would look new).
{{ config(tags=['metrics'], definition_version='1', order_by=['cohort_month', 'segment', 'channel']) }}

with revenue as (
    select account_id, segment, acquisition_channel as channel, month, recurring_usd
    from {{ ref('metric_revenue') }}
),

cohorts as (
    select account_id, segment, channel, min(month) as cohort_month
    from revenue
    where recurring_usd > 0
    group by account_id, segment, channel
),

cohort_revenue as (
    select c.segment, c.channel, c.cohort_month, count(*) as accounts, sum(coalesce(r.recurring_usd, 0)) as usd
    from cohorts c
    left join revenue r
        on r.account_id = c.account_id
        and r.month = arrow_cast(c.cohort_month + interval '1 month', 'Date32')
    group by c.segment, c.channel, c.cohort_month
),

spend as (
    select segment, channel, month, sum(amount_usd) as usd
    from {{ ref('spend_by_month') }}
    where category in ('sales', 'marketing')
    group by segment, channel, month
),

cells as (
    select
        coalesce(c.segment, s.segment) as segment,
        coalesce(c.channel, s.channel) as channel,
        coalesce(c.cohort_month, s.month) as cohort_month,
        coalesce(c.accounts, 0) as accounts,
        coalesce(c.usd, 0) as revenue_usd,
        s.usd as spend_usd
    from cohort_revenue c
    full outer join spend s
        on s.segment = c.segment and s.channel = c.channel and s.month = c.cohort_month
),

with_all as (
    select * from cells
    union all
    select 'ALL', channel, cohort_month, sum(accounts), sum(revenue_usd), sum(spend_usd)
    from cells
    group by channel, cohort_month
),

inputs as (
    select
        w.segment,
        w.channel,
        w.cohort_month,
        w.accounts,
        cast(w.spend_usd as double) as spend_usd,
        cast(w.revenue_usd as double) as revenue_usd,
        f.gross_margin_pct
    from with_all w
    left join {{ source('snapshot', 'financials') }} f
        on f.quarter_start = arrow_cast(date_trunc('quarter', w.cohort_month + interval '1 month'), 'Date32')
    where w.cohort_month > (select min(month) from revenue)
        and w.cohort_month + interval '2 months' <= {{ as_of_date }}
),

final as (
    select
        'monthly' as cadence,
        'cac_payback_cohort_months' as metric_name,
        cohort_month as period,
        segment,
        channel,
        cohort_month,
        case when accounts >= {{ var('payback_min_cohort_accounts') }} and gross_margin_pct is not null
                and spend_usd is not null
            then (spend_usd / accounts)
                / greatest(revenue_usd * gross_margin_pct / 100 / accounts, 1e-6) end as metric_value,
        case when accounts > 0 then spend_usd / accounts end as numerator,
        case when accounts > 0 then revenue_usd * gross_margin_pct / 100 / accounts end as denominator,
        not (accounts >= {{ var('payback_min_cohort_accounts') }} and gross_margin_pct is not null
            and spend_usd is not null) as data_gap,
        case
            when accounts = 0 then 'no new accounts in the cohort'
            when accounts < {{ var('payback_min_cohort_accounts') }} then 'cohort of ' || cast(accounts as varchar)
                || ' new accounts is below the minimum of {{ var('payback_min_cohort_accounts') }}'
            when spend_usd is null then 'no sales and marketing spend recorded for the cohort month'
            when gross_margin_pct is null then 'no gross margin for the quarter in financials'
        end as data_gap_reason,
        '{"new_accounts": ' || cast(accounts as varchar)
            || ', "spend_usd": ' || coalesce(cast(spend_usd as varchar), 'null')
            || ', "first_full_month_revenue_usd": ' || cast(revenue_usd as varchar) || '}' as detail,
        cast(null as varchar) as plan_metric,
        cast(null as varchar) as plan_grain,
        cast(null as date) as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from inputs
)

select * from final
