-- metrics_calc_log (SPEC §8): every metric × cadence × period × segment of this build, with
-- numerator and denominator for audit, the plan comparison and publish gating per metric.
-- Each metric model is gated on its own: when one is blocked this run, its rows here are its
-- last good published values, marked stale, with data_gap = true and the reason, while the
-- other metrics publish fresh values. A blocked metric with no good version yet keeps its
-- rows with metric_value null.
{{ config(tags=['metrics'], blocked_inputs='last_good', order_by=['metric_name', 'cadence', 'segment', 'channel', 'period']) }}

with computed as (
    -- By name: each metric model publishes the declared metric output contract (_models.yml).
    select *, {{ input_status('metric_retention') }} as input_status, {{ blocked_reason('metric_retention') }} as blocked_reason
    from {{ ref('metric_retention') }}
    union all by name
    select *, {{ input_status('metric_magic_number') }} as input_status, {{ blocked_reason('metric_magic_number') }} as blocked_reason
    from {{ ref('metric_magic_number') }}
    union all by name
    select *, {{ input_status('metric_cac_payback') }} as input_status, {{ blocked_reason('metric_cac_payback') }} as blocked_reason
    from {{ ref('metric_cac_payback') }}
    union all by name
    select *, {{ input_status('metric_cac_payback_cohort') }} as input_status, {{ blocked_reason('metric_cac_payback_cohort') }} as blocked_reason
    from {{ ref('metric_cac_payback_cohort') }}
    union all by name
    select *, {{ input_status('metric_rule_of_40') }} as input_status, {{ blocked_reason('metric_rule_of_40') }} as blocked_reason
    from {{ ref('metric_rule_of_40') }}
    union all by name
    select *, {{ input_status('metric_pipeline_coverage') }} as input_status, {{ blocked_reason('metric_pipeline_coverage') }} as blocked_reason
    from {{ ref('metric_pipeline_coverage') }}
    union all by name
    select *, {{ input_status('metric_gtm_funnel') }} as input_status, {{ blocked_reason('metric_gtm_funnel') }} as blocked_reason
    from {{ ref('metric_gtm_funnel') }}
    union all by name
    select *, {{ input_status('metric_pricing') }} as input_status, {{ blocked_reason('metric_pricing') }} as blocked_reason
    from {{ ref('metric_pricing') }}
    union all by name
    select *, {{ input_status('metric_routing') }} as input_status, {{ blocked_reason('metric_routing') }} as blocked_reason
    from {{ ref('metric_routing') }}
),

gated as (
    select
        cadence, metric_name, period, segment, channel, cohort_month,
        case when input_status = 'blocked' then null else metric_value end as metric_value,
        numerator,
        denominator,
        data_gap or input_status <> 'ok' as data_gap,
        case input_status
            when 'stale' then 'blocked this build (' || blocked_reason || '); the last good value is shown, stale'
            when 'blocked' then 'blocked this build (' || blocked_reason || '); no good value has been published yet'
            else data_gap_reason
        end as data_gap_reason,
        input_status <> 'ok' as stale,
        build_id as computed_in_build,
        detail,
        plan_metric,
        plan_grain,
        plan_period,
        definition_version
    from computed
),

plan_targets as (
    select * from {{ ref('plan_targets') }}
),

final as (
    select
        {{ build_id }} as build_id,
        {{ snapshot_id }} as snapshot_id,
        {{ as_of_date }} as as_of,
        g.cadence,
        g.metric_name,
        g.period,
        g.segment,
        g.channel,
        g.cohort_month,
        g.metric_value,
        g.numerator,
        g.denominator,
        p.plan_version,
        p.reforecast_as_of_date as plan_reforecast_as_of,
        p.plan_target,
        p.board_plan_target,
        lag(g.metric_value) over (
            partition by g.metric_name, g.cadence, g.segment, g.channel order by g.period
        ) as prior_period_value,
        case when p.plan_target <> 0 then g.metric_value / p.plan_target end as pct_of_plan,
        g.data_gap,
        g.data_gap_reason,
        g.stale,
        g.computed_in_build,
        g.detail,
        g.definition_version,
        {{ inputs_hash }} as inputs_hash
    from gated g
    left join plan_targets p
        on p.metric_name = g.plan_metric
        and p.period_grain = g.plan_grain
        and p.period_start = g.plan_period
        and p.segment = g.segment
)

select * from final
