-- TOOL-013, the cohort retention forecaster (for cohort_forecast_view and the strategy brain
-- AGT-903): every cohort's NRR and logo-retention curve of cohort_retention projected
-- var('cohort_forecast_horizon') quarters past its last complete one, with a 90 % band, by
-- cohort_retention_forecast() (src/strategy/cohort_forecast.rs: development factors over the
-- triangle of all cohorts, weighted by base revenue for NRR and by accounts for logos). A cohort
-- with too little history, or an age no factor can be found for, gets a row with the refusal
-- and no figure. The curves are not re-derived here: the same cells the cohort view shows.
{{ config(tags=['strategy'], order_by=['metric', 'cohort_quarter', 'quarters_since']) }}

with triangles as (
    select
        array_agg(named_struct('cohort', quarter_number(cohort_quarter), 'k', quarters_since,
            'value', nrr_pct, 'weight', arrow_cast(base_usd, 'Float64'))) as nrr,
        array_agg(named_struct('cohort', quarter_number(cohort_quarter), 'k', quarters_since,
            'value', logo_retention_pct, 'weight', arrow_cast(cohort_accounts, 'Float64'))) as logos
    from {{ ref('cohort_retention') }}
),

params as (
    select '{"horizon": {{ var('cohort_forecast_horizon') }}, "max_quarters": {{ var('strategy_quarters') }}, "min_quarters": {{ var('cohort_forecast_min_quarters') }}, "min_cohorts": {{ var('cohort_forecast_min_cohorts') }}, "tail_ages": 4, "z": 1.645}' as p
),

projected as (
    select 'nrr' as metric, unnest(cohort_retention_forecast(nrr, p)) as x from triangles cross join params
    union all
    select 'logo_retention' as metric, unnest(cohort_retention_forecast(logos, p)) as x from triangles cross join params
)

select
    metric,
    date_of_quarter_number(x['cohort']) as cohort_quarter,
    arrow_cast(x['cohort'] / 4, 'Utf8') || '-Q' || arrow_cast(x['cohort'] % 4 + 1, 'Utf8') as cohort,
    x['k'] as quarters_since,
    date_of_quarter_number(x['cohort'] + x['k']) as quarter,
    round(x['value'], 2) as projected_pct,
    round(x['low'], 2) as low_pct,
    round(x['high'], 2) as high_pct,
    round(x['factor'], 6) as development_factor,
    x['tail'] as tail_factor,
    x['refusal_reason'] as refusal_reason
from projected
