-- Magic Number (SPEC §8): (Rev_q − Rev_{q−1}) × 4 ÷ S&M_{q−1}, on recognised recurring revenue
-- (revenue basis, never ARR), S&M = sales + marketing spend. Quarterly per calendar quarter, and
-- monthly on trailing quarters (the three months ending m against the three before). S&M ≤ 0
-- is a data gap. Periods need six months of history and must have ended by as_of.
{{ config(tags=['metrics'], definition_version='1', order_by=['cadence', 'period', 'segment']) }}

with revenue as materialized (
    select segment, month, sum(recurring_usd) as usd
    from {{ ref('metric_revenue') }}
    group by segment, month
),

spend as (
    select segment, month, sum(amount_usd) as usd
    from {{ ref('spend_by_month') }}
    where category in ('sales', 'marketing')
    group by segment, month
),

months as (select distinct month from revenue),
first_month as (select min(month) as month from revenue),

grid as (
    select m.month, s.segment, coalesce(r.usd, 0) as revenue_usd, sp.usd as spend_usd
    from months m
    cross join {{ ref('segments') }} s
    left join revenue r on r.month = m.month and r.segment = s.segment
    left join spend sp on sp.month = m.month and sp.segment = s.segment
),

with_all as (
    select month, segment, revenue_usd, spend_usd from grid
    union all
    select month, 'ALL', sum(revenue_usd), sum(spend_usd) from grid group by month
),

trailing as (
    select
        month,
        segment,
        cast(sum(revenue_usd) over (partition by segment order by month
            range between interval '2 months' preceding and current row) as double) as revenue_q,
        cast(sum(revenue_usd) over (partition by segment order by month
            range between interval '5 months' preceding and interval '3 months' preceding) as double) as revenue_prior_q,
        cast(sum(spend_usd) over (partition by segment order by month
            range between interval '5 months' preceding and interval '3 months' preceding) as double) as spend_prior_q
    from with_all
),

periods as (
    select 'monthly' as cadence, month as period, * from trailing
    union all
    select 'quarterly', arrow_cast(month - interval '2 months', 'Date32'), *
    from trailing
    where date_part('month', month) in (3, 6, 9, 12)
),

final as (
    select
        cadence,
        'magic_number' as metric_name,
        period,
        segment,
        cast(null as varchar) as channel,
        cast(null as date) as cohort_month,
        case when spend_prior_q > 0
            then (revenue_q - revenue_prior_q) * 4 / spend_prior_q end as metric_value,
        (revenue_q - revenue_prior_q) * 4 as numerator,
        spend_prior_q as denominator,
        not coalesce(spend_prior_q > 0, false) as data_gap,
        case
            when spend_prior_q is null then 'no sales and marketing spend recorded for the prior quarter'
            when spend_prior_q <= 0 then 'sales and marketing spend of the prior quarter is not positive'
        end as data_gap_reason,
        '{"revenue_q": ' || cast(revenue_q as varchar)
            || ', "revenue_prior_q": ' || cast(revenue_prior_q as varchar) || '}' as detail,
        'magic_number' as plan_metric,
        'quarter' as plan_grain,
        arrow_cast(date_trunc('quarter', period), 'Date32') as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from periods
    where month >= (select arrow_cast(month + interval '5 months', 'Date32') from first_month)
)

select * from final
