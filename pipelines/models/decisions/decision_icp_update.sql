-- Decision node icp.update (Decision OS playbook 4.3, SPEC §13), per segment band (SMB, MM,
-- ENT) on the metric layer:
--   add:    SQL→Win ≥ the all-segment rate + icp_win_diff_pp in each of the last
--           icp_min_months months, and CAC payback improved by ≥ icp_payback_improvement_months
--           (latest quarter vs the one before) → emphasise the band in the ICP
--   remove: SQL→Win ≤ the all-segment rate − icp_win_diff_pp in each of those months, and
--           payback worsened by ≥ icp_payback_improvement_months → de-emphasise the band
-- Stale or blocked inputs propose nothing.
{{ config(tags=['decisions'], definition_version='1.0', blocked_inputs='last_good', order_by=['subject']) }}

with log as (
    select * from {{ ref('metrics_calc_log') }}
),

win as (
    select period, segment, metric_value, stale, data_gap, data_gap_reason
    from log
    where metric_name = 'sql_to_win_pct' and channel is null
),

recent_months as (
    select distinct period from win order by period desc limit {{ var('icp_min_months') }}
),

win_vs_all as (
    select
        w.segment,
        count(*) as months,
        min(w.metric_value - a.metric_value) as min_diff_pp,
        max(w.metric_value - a.metric_value) as max_diff_pp,
        bool_or(w.stale or a.stale) as stale,
        bool_or(w.metric_value is null or a.metric_value is null) as missing
    from win w
    join win a on a.period = w.period and a.segment = 'ALL'
    where w.period in (select period from recent_months) and w.segment <> 'ALL'
    group by w.segment
),

payback as (
    select
        segment,
        period,
        metric_value,
        stale,
        lag(metric_value) over (partition by segment order by period) as prior_value,
        row_number() over (partition by segment order by period desc) as recency
    from log
    where metric_name = 'cac_payback_months' and cadence = 'quarterly'
),

judged as (
    select
        s.segment,
        w.months,
        w.min_diff_pp,
        w.max_diff_pp,
        p.metric_value as payback_months,
        p.prior_value as prior_payback_months,
        p.prior_value - p.metric_value as payback_improvement_months,
        case
            when {{ input_status('metrics_calc_log') }} <> 'ok'
                then 'metrics_calc_log is blocked: ' || {{ blocked_reason('metrics_calc_log') }}
            when coalesce(w.stale, false) or coalesce(p.stale, false)
                then 'stale inputs: win rate or CAC payback of ' || s.segment || ' is stale (blocked upstream)'
            when w.months is null or w.months < {{ var('icp_min_months') }} or w.missing
                then 'inputs missing: fewer than {{ var('icp_min_months') }} months of win rates'
            when p.metric_value is null or p.prior_value is null
                then 'inputs missing: no CAC payback for the latest two quarters'
        end as unavailable
    from {{ ref('segments') }} s
    left join win_vs_all w on w.segment = s.segment
    left join (select * from payback where recency = 1) p on p.segment = s.segment
),

decided as (
    select
        *,
        unavailable is null and min_diff_pp >= {{ var('icp_win_diff_pp') }}
            and payback_improvement_months >= {{ var('icp_payback_improvement_months') }} as add_band,
        unavailable is null and max_diff_pp <= -{{ var('icp_win_diff_pp') }}
            and -payback_improvement_months >= {{ var('icp_payback_improvement_months') }} as remove_band
    from judged
),

final as (
    select
        'icp.update' as node,
        segment as subject,
        coalesce(add_band or remove_band, false) as proposes,
        case
            when add_band then 'add segment band ' || segment || ' to the ICP'
            when remove_band then 'remove segment band ' || segment || ' from the ICP'
        end as chosen_action,
        case
            when unavailable is not null then unavailable
            when add_band or remove_band then 'win rate ' || cast(round(min_diff_pp, 2) as varchar) || ' to '
                || cast(round(max_diff_pp, 2) as varchar) || ' pp vs all segments for '
                || cast(months as varchar) || ' months; payback ' || cast(round(payback_improvement_months, 2) as varchar)
                || ' months better'
            else 'within thresholds: win rate ' || cast(round(min_diff_pp, 2) as varchar) || ' to '
                || cast(round(max_diff_pp, 2) as varchar) || ' pp vs all segments; payback '
                || cast(round(payback_improvement_months, 2) as varchar) || ' months better'
        end as reason,
        '{"months": ' || coalesce(cast(months as varchar), 'null')
            || ', "min_win_diff_pp": ' || coalesce(cast(min_diff_pp as varchar), 'null')
            || ', "max_win_diff_pp": ' || coalesce(cast(max_diff_pp as varchar), 'null')
            || ', "payback_months": ' || coalesce(cast(payback_months as varchar), 'null')
            || ', "prior_payback_months": ' || coalesce(cast(prior_payback_months as varchar), 'null') || '}' as evidence,
        {{ definition_version }} as node_version,
        {{ build_id }} as build_id
    from decided
)

select * from final
