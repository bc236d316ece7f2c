-- NRR and GRR (SPEC §8), monthly and quarterly, per segment and ALL, from retention_base:
--   NRR = Σ_{a∈C} R_a(m) ÷ Σ_{a∈C} R_a(m−12)          (churned accounts count with 0)
--   GRR = Σ_{a∈C} min(R_a(m), R_a(m−12)) ÷ Σ_{a∈C} R_a(m−12)
-- in percent. A segment with no account in C is a data gap, not 0 %.
{{ config(tags=['metrics'], definition_version='1', order_by=['metric_name', 'cadence', 'period', 'segment']) }}

with base as (
    select * from {{ ref('retention_base') }}
),

by_segment as (
    select
        cadence, period, segment,
        sum(now_usd) as kept_usd,
        sum(least(now_usd, before_usd)) as capped_usd,
        sum(before_usd) as before_usd,
        count(*) as accounts
    from base
    group by cadence, period, segment
    union all
    select
        cadence, period, 'ALL' as segment,
        sum(now_usd), sum(least(now_usd, before_usd)), sum(before_usd), count(*)
    from base
    group by cadence, period
),

grid as (
    select p.cadence, p.period, s.segment
    from (select distinct cadence, period from base) p
    cross join (select segment from {{ ref('segments') }} union all select 'ALL') s(segment)
),

metrics as (
    select 'nrr' as metric_name, g.cadence, g.period, g.segment,
        cast(b.kept_usd as double) as numerator, cast(b.before_usd as double) as denominator,
        b.accounts
    from grid g left join by_segment b
        on b.cadence = g.cadence and b.period = g.period and b.segment = g.segment
    union all
    select 'grr', g.cadence, g.period, g.segment,
        cast(b.capped_usd as double), cast(b.before_usd as double), b.accounts
    from grid g left join by_segment b
        on b.cadence = g.cadence and b.period = g.period and b.segment = g.segment
),

final as (
    select
        cadence,
        metric_name,
        period,
        segment,
        cast(null as varchar) as channel,
        cast(null as date) as cohort_month,
        case when denominator > 0 then 100 * numerator / denominator end as metric_value,
        numerator,
        denominator,
        not coalesce(denominator > 0, false) as data_gap,
        case when not coalesce(denominator > 0, false)
            then 'no account in the segment had recurring revenue 12 months earlier' end as data_gap_reason,
        '{"accounts_in_base": ' || cast(coalesce(accounts, 0) as varchar) || '}' as detail,
        -- plan targets exist per month (a quarter is judged against its last month)
        metric_name as plan_metric,
        'month' as plan_grain,
        case when cadence = 'monthly' then period
            else arrow_cast(period + interval '2 months', 'Date32') end as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from metrics
)

select * from final
