-- CAC payback, company-quarterly form (SPEC §8), in months:
--   S&M_{q−1} ÷ (new recurring revenue × gross margin)
-- new recurring revenue = recognised recurring revenue in the quarter's last month of the
-- accounts whose first revenue month falls in the quarter; gross margin from `financials`
-- (company-wide, so segments share it). The first quarter of data is skipped: accounts already
-- paying before it would look new.
{{ config(tags=['metrics'], definition_version='1', order_by=['period', 'segment']) }}

with revenue as (
    select account_id, segment, month, recurring_usd
    from {{ ref('metric_revenue') }}
),

first_revenue as (
    select
        account_id,
        segment,
        arrow_cast(date_trunc('quarter', min(month)), 'Date32') as quarter
    from revenue
    where recurring_usd > 0
    group by account_id, segment
),

new_revenue as (
    select f.segment, f.quarter, sum(r.recurring_usd) as usd, count(*) as accounts
    from first_revenue f
    join revenue r
        on r.account_id = f.account_id
        and r.month = arrow_cast(f.quarter + interval '2 months', 'Date32')
    group by f.segment, f.quarter
),

spend as (
    select segment, arrow_cast(date_trunc('quarter', month), 'Date32') as quarter, sum(amount_usd) as usd
    from {{ ref('spend_by_month') }}
    where category in ('sales', 'marketing')
    group by segment, arrow_cast(date_trunc('quarter', month), 'Date32')
),

quarters as (
    select distinct arrow_cast(date_trunc('quarter', month), 'Date32') as quarter
    from revenue
),

grid as (
    select
        q.quarter,
        s.segment,
        coalesce(n.usd, 0) as new_usd,
        coalesce(n.accounts, 0) as accounts,
        sp.usd as spend_prior_q
    from quarters q
    cross join {{ ref('segments') }} s
    left join new_revenue n on n.quarter = q.quarter and n.segment = s.segment
    left join spend sp
        on sp.quarter = arrow_cast(q.quarter - interval '3 months', 'Date32') and sp.segment = s.segment
    where q.quarter > (select min(quarter) from quarters)
        and q.quarter + interval '3 months' <= {{ as_of_date }}
),

with_all as (
    select * from grid
    union all
    select quarter, 'ALL', sum(new_usd), sum(accounts), sum(spend_prior_q) from grid group by quarter
),

inputs as (
    select
        w.quarter,
        w.segment,
        w.accounts,
        cast(w.spend_prior_q as double) as spend_prior_q,
        cast(w.new_usd as double) as new_usd,
        f.gross_margin_pct
    from with_all w
    left join {{ source('snapshot', 'financials') }} f on f.quarter_start = w.quarter
),

final as (
    select
        'quarterly' as cadence,
        'cac_payback_months' as metric_name,
        quarter as period,
        segment,
        cast(null as varchar) as channel,
        cast(null as date) as cohort_month,
        case when spend_prior_q > 0 and new_usd > 0 and gross_margin_pct > 0
            then spend_prior_q / (new_usd * gross_margin_pct / 100) end as metric_value,
        spend_prior_q as numerator,
        new_usd * gross_margin_pct / 100 as denominator,
        not coalesce(spend_prior_q > 0 and new_usd > 0 and gross_margin_pct > 0, false) as data_gap,
        case
            when spend_prior_q is null then 'no sales and marketing spend recorded for the prior quarter'
            when spend_prior_q <= 0 then 'sales and marketing spend of the prior quarter is not positive'
            when gross_margin_pct is null then 'no gross margin for the quarter in financials'
            when gross_margin_pct <= 0 then 'gross margin of the quarter is not positive'
            when new_usd <= 0 then 'no new recurring revenue in the quarter'
        end as data_gap_reason,
        '{"new_accounts": ' || cast(accounts as varchar)
            || ', "new_recurring_usd": ' || cast(new_usd as varchar)
            || ', "gross_margin_pct": ' || coalesce(cast(gross_margin_pct as varchar), 'null') || '}' as detail,
        'cac_payback_months' as plan_metric,
        'quarter' as plan_grain,
        quarter as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from inputs
)

select * from final
