-- Consumption forecast (SPEC §9, TOOL-004 core) per customer × consumption SKU at the build's
-- as_of: the daily units of the current, undisputed usage over the last forecast_history_days
-- days go through consumption_forecast() (src/forecast.rs), which refuses under
-- forecast_min_history_days days, classifies the trend (linear / exponential / seasonal / cliff
-- / flat), and predicts the day the month-to-date total passes the monthly commit within
-- forecast_horizon_days, with a [low, high] interval that widens for short histories.
-- The commit is the one on the SKU's latest metered day.
{{ config(tags=['scores'], order_by=['account_id', 'sku_id']) }}

with customers as (
    select account_id from {{ ref('score_accounts') }} where k = 0
),

daily as (
    select
        u.account_id,
        u.sku_id,
        arrow_cast(u.period_start, 'Date32') as day,
        sum(u.units_consumed) as units,
        max(u.commit_units) as commit_units
    from {{ ref('usage_billable') }} u
    join customers c on c.account_id = u.account_id
    where u.sku_type = 'consumption'
        and u.period_granularity = 'day'
        and u.period_start < {{ as_of }}
        and u.period_start >= {{ as_of }} - interval '{{ var('forecast_history_days') }} days'
    group by u.account_id, u.sku_id, arrow_cast(u.period_start, 'Date32')
),

-- Each series' days in any order (the forecast sorts them): an unordered array_agg of one
-- struct per day keeps day and units together and aggregates column-wise.
series as (
    select
        account_id,
        sku_id,
        array_agg(named_struct('day', day, 'units', units)) as usage,
        last_value(commit_units order by day) as commit_units
    from daily
    group by account_id, sku_id
),

forecast as (
    select
        account_id,
        sku_id,
        commit_units,
        consumption_forecast(usage, {{ as_of_date }}, commit_units, '{
            "min_history_days": {{ var('forecast_min_history_days') }},
            "horizon_days": {{ var('forecast_horizon_days') }},
            "season_min_days": {{ var('forecast_season_min_days') }},
            "season_max_days": {{ var('forecast_season_max_days') }},
            "season_min_corr": {{ var('forecast_season_min_corr') }},
            "season_min_amplitude": {{ var('forecast_season_min_amplitude') }},
            "cliff_min_ratio": {{ var('forecast_cliff_min_ratio') }},
            "cliff_max_rss_share": {{ var('forecast_cliff_max_rss_share') }},
            "cliff_min_segment_days": {{ var('forecast_cliff_min_segment_days') }},
            "flat_max_growth_30d": {{ var('forecast_flat_max_growth_30d') }},
            "interval_z": {{ var('forecast_interval_z') }},
            "full_history_days": {{ var('forecast_full_history_days') }}
        }') as f
    from series
),

final as (
    select
        account_id,
        sku_id,
        {{ as_of_date }} as as_of_date,
        f['history_days'] as history_days,
        f['observed_days'] as observed_days,
        f['refusal_reason'] as refusal_reason,
        f['pattern'] as pattern,
        f['growth_rate_30d'] as growth_rate_30d,
        f['volatility'] as volatility,
        f['seasonality_detected'] as seasonality_detected,
        f['season_period_days'] as season_period_days,
        f['season_strength'] as season_strength,
        f['cliff_date'] as cliff_date,
        f['cliff_change'] as cliff_change,
        f['forecast_next_30d_units'] as forecast_next_30d_units,
        f['month_to_date_units'] as month_to_date_units,
        commit_units,
        {{ var('forecast_horizon_days') }} as horizon_days,
        f['overage_outlook'] as overage_outlook,
        f['predicted_overage_date'] as predicted_overage_date,
        f['overage_date_low'] as overage_date_low,
        f['overage_date_high'] as overage_date_high,
        f['interval_widening'] as interval_widening,
        f['interpretation'] as interpretation,
        {{ build_id }} as build_id
    from forecast
)

select * from final
