-- Rule of 40 (SPEC §8), quarterly on a trailing-twelve-month basis, in three variants:
--   growth % = (TTM recognised revenue − TTM a year earlier) ÷ TTM a year earlier × 100
--              (total recognised revenue: every recognised dollar, adjustments included)
--   margin % = Σ margin ÷ Σ revenue over the four quarters of `financials` ending with q
--              (EBITDA, free cash flow or operating income)
--   rule_of_40_<variant> = growth % + margin %
-- Margins are reported company-wide, so segment rows are data gaps. A quarter needs 24 months
-- of recognised revenue and four quarters of financials.
{{ config(tags=['metrics'], definition_version='1', order_by=['metric_name', 'period', 'segment']) }}

with revenue as (
    select month, sum(total_usd) as usd
    from {{ ref('metric_revenue') }}
    group by month
),

ttm as (
    select
        month,
        cast(sum(usd) over (order by month
            range between interval '11 months' preceding and current row) as double) as ttm_usd,
        cast(sum(usd) over (order by month
            range between interval '23 months' preceding and interval '12 months' preceding) as double) as prior_ttm_usd,
        min(month) over (order by month
            range between interval '23 months' preceding and current row) as window_start
    from revenue
),

financials as (
    select
        quarter_start,
        cast(sum(revenue_usd) over w as double) as revenue_usd,
        cast(sum(ebitda_usd) over w as double) as ebitda_usd,
        cast(sum(fcf_usd) over w as double) as fcf_usd,
        cast(sum(operating_income_usd) over w as double) as operating_income_usd,
        count(*) over w as quarters
    from {{ source('snapshot', 'financials') }}
    window w as (order by quarter_start range between interval '9 months' preceding and current row)
),

quarters as (
    select
        arrow_cast(t.month - interval '2 months', 'Date32') as quarter,
        t.ttm_usd,
        t.prior_ttm_usd,
        t.window_start = arrow_cast(t.month - interval '23 months', 'Date32') as full_history,
        f.revenue_usd,
        f.ebitda_usd,
        f.fcf_usd,
        f.operating_income_usd,
        coalesce(f.quarters, 0) as quarters
    from ttm t
    left join financials f on f.quarter_start = arrow_cast(t.month - interval '2 months', 'Date32')
    where date_part('month', t.month) in (3, 6, 9, 12)
),

variants as (
    select 'rule_of_40_ebitda' as metric_name, q.*, ebitda_usd as margin_usd from quarters q
    union all
    select 'rule_of_40_fcf', q.*, fcf_usd as margin_usd from quarters q
    union all
    select 'rule_of_40_operating', q.*, operating_income_usd as margin_usd from quarters q
),

judged as (
    select
        *,
        case
            when not full_history then 'needs 24 months of recognised revenue'
            when prior_ttm_usd <= 0 then 'no recognised revenue in the prior twelve months'
            when quarters < 4 then 'needs four quarters of financials'
            when revenue_usd <= 0 then 'financials revenue of the trailing year is not positive'
        end as gap,
        (ttm_usd - prior_ttm_usd) / prior_ttm_usd * 100 as growth_pct,
        margin_usd / revenue_usd * 100 as margin_pct
    from variants
),

segments as (
    select s.segment, j.*
    from judged j
    cross join (select segment from {{ ref('segments') }} union all select 'ALL') s(segment)
),

final as (
    select
        'quarterly' as cadence,
        metric_name,
        quarter as period,
        segment,
        cast(null as varchar) as channel,
        cast(null as date) as cohort_month,
        case when segment = 'ALL' and gap is null then growth_pct + margin_pct end as metric_value,
        case when segment = 'ALL' and gap is null then growth_pct end as numerator,
        case when segment = 'ALL' and gap is null then margin_pct end as denominator,
        segment <> 'ALL' or gap is not null as data_gap,
        case when segment <> 'ALL' then 'margins are reported company-wide (financials has no segment)'
            else gap end as data_gap_reason,
        '{"ttm_revenue_usd": ' || coalesce(cast(ttm_usd as varchar), 'null')
            || ', "prior_ttm_revenue_usd": ' || coalesce(cast(prior_ttm_usd as varchar), 'null')
            || ', "margin_usd": ' || coalesce(cast(margin_usd as varchar), 'null')
            || ', "financials_revenue_usd": ' || coalesce(cast(revenue_usd as varchar), 'null') || '}' as detail,
        'rule_of_40' as plan_metric,
        'quarter' as plan_grain,
        quarter as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from segments
    where quarter + interval '3 months' <= {{ as_of_date }}
)

select * from final
