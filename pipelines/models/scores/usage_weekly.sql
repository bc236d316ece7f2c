-- Usage per account × week for the Tier-1 scores (SPEC §9): week 0 is the 7 days before as_of,
-- week n the 7 days before that, and so on, so a score dated as_of − 7k reads weeks ≥ k. From
-- the current, non-disputed usage. usage_norm is a day's units over that day's commitment
-- (seats: units = active users over licensed seats; consumption: units over a thirtieth of
-- the monthly commit), so SKUs of different sizes weigh alike in the usage trend. The sums
-- are taken in billionths (the _e9 columns, Int64): integer sums are exact in any order, so the
-- ratios built from them do not depend on how an engine splits the rows across threads.
{{ config(tags=['scores'], order_by=['account_id', 'week']) }}

with days as (
    select
        account_id,
        sku_type,
        units_consumed,
        commit_units,
        seat_utilization_pct,
        day_number({{ as_of_date }}) - day_number(arrow_cast(period_start, 'Date32')) - 1 as age_days
    from {{ ref('usage_billable') }}
    where period_start < {{ as_of }}
        -- the weeks the scores read (as age_days < 7 × weeks below), on the raw column first
        and period_start >= arrow_cast({{ as_of_date }} - interval '{{ var('score_history_weeks') }} weeks'
            - interval '{{ var('health_usage_baseline_weeks_back') }} weeks' - interval '{{ var('health_usage_window_weeks') }} weeks',
            'Timestamp(Microsecond, Some("UTC"))')
        and period_granularity = 'day'
),

final as (
    select
        account_id,
        arrow_cast(age_days / 7, 'Int32') as week,
        sum(case when sku_type = 'seat' then arrow_cast(round(seat_utilization_pct * 1e9), 'Int64') end) as seat_utilization_e9,
        sum(case when sku_type = 'seat' and seat_utilization_pct is not null then 1 else 0 end) as seat_days,
        sum(case when commit_units > 0 then arrow_cast(round(units_consumed
            / case when sku_type = 'consumption' then commit_units / 30 else commit_units end * 1e9), 'Int64') end) as usage_norm_e9,
        sum(case when commit_units > 0 then 1 else 0 end) as usage_days
    from days
    where age_days < 7 * ({{ var('score_history_weeks') }} + {{ var('health_usage_baseline_weeks_back') }} + {{ var('health_usage_window_weeks') }})
    group by account_id, arrow_cast(age_days / 7, 'Int32')
)

select * from final
