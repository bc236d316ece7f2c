-- Pipeline coverage (SPEC §8), weekly: open pipeline closing this quarter ÷ (the quarter's
-- new-bookings plan target − closed-won to date), per segment and ALL, for the 26 weeks
-- (Monday to Sunday) that ended by as_of. An opportunity counts as open at a week's end when it
-- was created before it and had not closed by then; the quarter is the week's Monday's.
{{ config(tags=['metrics'], definition_version='1', order_by=['period', 'segment']) }}

with opportunities as (
    select
        o.opp_id,
        a.segment,
        o.stage,
        o.amount_usd,
        o.created_date,
        o.close_date,
        arrow_cast(date_trunc('quarter', o.close_date), 'Date32') as close_quarter
    from {{ source('snapshot', 'opportunities') }} o
    left join {{ source('snapshot', 'accounts') }} a on a.account_id = o.account_id
),

weeks as (
    select
        arrow_cast(w, 'Date32') as week_start,
        arrow_cast(w + interval '7 days', 'Date32') as week_end,
        arrow_cast(date_trunc('quarter', w), 'Date32') as quarter
    from (
        select unnest(generate_series(
            date_trunc('week', arrow_cast({{ as_of_date }} - interval '182 days', 'Timestamp(Microsecond, None)')),
            arrow_cast({{ as_of_date }} - interval '7 days', 'Timestamp(Microsecond, None)'),
            interval '7 days'
        )) as w
    ) t
),

by_segment as (
    select
        w.week_start,
        w.quarter,
        o.segment,
        sum(case when o.close_quarter = w.quarter
                and o.created_date < w.week_end
                and (o.stage not in ('closed_won', 'closed_lost') or o.close_date >= w.week_end)
            then o.amount_usd else 0 end) as open_pipeline_usd,
        sum(case when o.stage = 'closed_won'
                and o.close_date >= w.quarter and o.close_date < w.week_end
            then o.amount_usd else 0 end) as closed_won_usd
    from weeks w
    join opportunities o on o.close_quarter = w.quarter
    group by w.week_start, w.quarter, o.segment
),

grid as (
    select w.week_start, w.quarter, s.segment,
        coalesce(b.open_pipeline_usd, 0) as open_pipeline_usd,
        coalesce(b.closed_won_usd, 0) as closed_won_usd
    from weeks w
    cross join {{ ref('segments') }} s
    left join by_segment b on b.week_start = w.week_start and b.segment = s.segment
),

with_all as (
    select * from grid
    union all
    select week_start, quarter, 'ALL', sum(open_pipeline_usd), sum(closed_won_usd)
    from grid
    group by week_start, quarter
),

inputs as (
    select
        w.week_start,
        w.quarter,
        w.segment,
        -- summed exactly as decimals, then converted: float sums depend on the order of rows
        cast(w.open_pipeline_usd as double) as open_pipeline_usd,
        cast(w.closed_won_usd as double) as closed_won_usd,
        p.plan_target
    from with_all w
    left join {{ ref('plan_targets') }} p
        on p.metric_name = 'new_bookings'
        and p.period_grain = 'quarter'
        and p.period_start = w.quarter
        and p.segment = w.segment
),

final as (
    select
        'weekly' as cadence,
        'pipeline_coverage' as metric_name,
        week_start as period,
        segment,
        cast(null as varchar) as channel,
        cast(null as date) as cohort_month,
        case when plan_target - closed_won_usd > 0
            then open_pipeline_usd / (plan_target - closed_won_usd) end as metric_value,
        open_pipeline_usd as numerator,
        plan_target - closed_won_usd as denominator,
        not coalesce(plan_target - closed_won_usd > 0, false) as data_gap,
        case
            when plan_target is null then 'no new_bookings plan target for the quarter'
            when plan_target - closed_won_usd <= 0 then 'the quarter''s new_bookings target is already met'
        end as data_gap_reason,
        '{"closed_won_usd": ' || cast(closed_won_usd as varchar)
            || ', "new_bookings_target": ' || coalesce(cast(plan_target as varchar), 'null') || '}' as detail,
        'pipeline_coverage' as plan_metric,
        'quarter' as plan_grain,
        quarter as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from inputs
)

select * from final
