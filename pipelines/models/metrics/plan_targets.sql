-- Plan targets per metric × grain × period × segment (SPEC §8): the current operating plan is
-- the latest non-board reforecast dated at or before as_of that covers the period; the board
-- plan is the latest board-approved version at or before as_of.
{{ config(tags=['metrics'], order_by=['metric_name', 'period_grain', 'period_start', 'segment']) }}

with plan as (
    select *
    from {{ source('snapshot', 'fpa_plan') }}
    where reforecast_as_of_date <= {{ as_of_date }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by is_board_plan, metric_name, period_grain, period_start, segment
            order by reforecast_as_of_date desc, plan_version desc
        ) as rank
    from plan
),

operating as (select * from ranked where rank = 1 and not is_board_plan),
board as (select * from ranked where rank = 1 and is_board_plan),

final as (
    select
        coalesce(o.metric_name, b.metric_name) as metric_name,
        coalesce(o.period_grain, b.period_grain) as period_grain,
        coalesce(o.period_start, b.period_start) as period_start,
        coalesce(o.segment, b.segment) as segment,
        o.plan_version,
        o.reforecast_as_of_date,
        o.target_value as plan_target,
        b.plan_version as board_plan_version,
        b.target_value as board_plan_target
    from operating o
    full outer join board b
        on b.metric_name = o.metric_name
        and b.period_grain = o.period_grain
        and b.period_start = o.period_start
        and b.segment = o.segment
)

select * from final
