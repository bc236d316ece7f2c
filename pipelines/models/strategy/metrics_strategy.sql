-- The metric layer over up to var('strategy_quarters') quarters (AGT-702, for
-- metrics_strategy_view and the strategy brain AGT-903): quarterly NRR, GRR, Magic Number, CAC
-- payback and Rule of 40 (each margin) for all segments, straight from metrics_calc_log — the
-- same figures, plan and data-gap flags the metric layer publishes, never recomputed — with:
--   change_qoq / change_yoy   value − the value 1 / 4 quarters before (null across a gap)
--   trend                     the sign of change_yoy: up, down or flat (|change| < 1e-9)
--   higher_is_better          false for CAC payback (months), true for the others
--   quarters_of_history       how many of the window's quarters have a value
-- A blocked metric arrives as metrics_calc_log carries it (its last good values, stale = true),
-- so this model reads its input at its last good version rather than blocking with it.
{{ config(tags=['strategy'], blocked_inputs='last_good', order_by=['metric_name', 'period']) }}

with quarterly as (
    select
        metric_name,
        period,
        metric_value,
        plan_target,
        board_plan_target,
        pct_of_plan,
        data_gap,
        data_gap_reason,
        stale,
        definition_version
    from {{ ref('metrics_calc_log') }}
    where cadence = 'quarterly'
        and segment = 'ALL'
        and channel is null
        and cohort_month is null
        and metric_name in ('nrr', 'grr', 'magic_number', 'cac_payback_months',
            'rule_of_40_ebitda', 'rule_of_40_fcf', 'rule_of_40_operating')
        and period < {{ as_of_date }}
        -- the last var('strategy_quarters') quarters before as_of's
        and quarter_number(period) >= quarter_number({{ as_of_date }}) - {{ var('strategy_quarters') }}
),

changes as (
    select
        *,
        metric_value - lag(metric_value, 1) over (partition by metric_name order by period) as change_qoq,
        metric_value - lag(metric_value, 4) over (partition by metric_name order by period) as change_yoy,
        count(metric_value) over (partition by metric_name) as quarters_of_history
    from quarterly
)

select
    * replace (round(change_qoq, 4) as change_qoq, round(change_yoy, 4) as change_yoy),
    case
        when change_yoy is null then null
        when change_yoy > 1e-9 then 'up'
        when change_yoy < -1e-9 then 'down'
        else 'flat'
    end as trend,
    metric_name <> 'cac_payback_months' as higher_is_better
from changes
