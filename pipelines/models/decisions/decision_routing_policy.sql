-- Decision node routing.policy (Decision OS playbook 4.4, SPEC §13), on the latest week of the
-- candidate rule set's shadow metrics (segment ALL):
--   shadow match ≥ routing_shadow_match_min_pct, no SLO regression (candidate P(route < 2m) ≥
--   the live rules'), fairness Gini ≤ routing_fairness_gini_max in every segment, unassigned ≤
--   routing_unassigned_max_pct → promote the candidate rule set.
-- Stale or blocked inputs propose nothing.
{{ config(tags=['decisions'], definition_version='1.0', blocked_inputs='last_good', order_by=['subject']) }}

with all_segments as (
    select * from {{ ref('metrics_calc_log') }}
    where metric_name like 'routing_%'
),

log as (
    select * from all_segments where segment = 'ALL'
),

-- Fairness is judged per segment: the least fair segment of the latest week.
fairness as (
    select max(metric_value) as gini, bool_or(stale) as stale, bool_or(metric_value is null) as missing
    from all_segments
    where metric_name = 'routing_candidate_fairness_gini'
        and period = (select max(period) from all_segments)
),

latest as (
    select
        period,
        max(case when metric_name = 'routing_shadow_match_pct' then metric_value end) as match_pct,
        max(case when metric_name = 'routing_current_p_route_2m_pct' then metric_value end) as current_p2m,
        max(case when metric_name = 'routing_candidate_p_route_2m_pct' then metric_value end) as candidate_p2m,
        max(case when metric_name = 'routing_candidate_unassigned_pct' then metric_value end) as unassigned_pct,
        bool_or(stale) as stale
    from log
    where period = (select max(period) from log)
    group by period
),

candidate as (
    select coalesce(max(candidate_ruleset), 'candidate') as ruleset
    from {{ source('snapshot', 'routing_shadow_log') }}
),

judged as (
    select
        c.ruleset,
        l.*,
        case when f.missing then null else f.gini end as gini,
        case
            when {{ input_status('metrics_calc_log') }} <> 'ok'
                then 'metrics_calc_log is blocked: ' || {{ blocked_reason('metrics_calc_log') }}
            when l.period is null then 'inputs missing: no routing shadow metrics'
            when l.stale or f.stale then 'stale inputs: routing shadow metrics are stale (blocked upstream)'
            when l.match_pct is null or l.current_p2m is null or l.candidate_p2m is null
                or l.unassigned_pct is null or f.gini is null or f.missing
                then 'inputs missing: a routing metric is a data gap'
        end as unavailable
    from candidate c
    left join latest l on true
    left join fairness f on true
),

decided as (
    select
        *,
        unavailable is null
            and match_pct >= {{ var('routing_shadow_match_min_pct') }}
            and candidate_p2m >= current_p2m
            and gini <= {{ var('routing_fairness_gini_max') }}
            and unassigned_pct <= {{ var('routing_unassigned_max_pct') }} as promote
    from judged
),

final as (
    select
        'routing.policy' as node,
        ruleset as subject,
        coalesce(promote, false) as proposes,
        case when promote then 'promote routing rule set ' || ruleset end as chosen_action,
        case
            when unavailable is not null then unavailable
            when promote then 'shadow match ' || cast(round(match_pct, 2) as varchar) || ' %, P(route<2m) '
                || cast(round(candidate_p2m, 2) as varchar) || ' % vs ' || cast(round(current_p2m, 2) as varchar)
                || ' %, Gini ' || cast(round(gini, 3) as varchar) || ', unassigned ' || cast(round(unassigned_pct, 2) as varchar) || ' %'
            else 'outside thresholds: shadow match ' || cast(round(match_pct, 2) as varchar) || ' %, P(route<2m) '
                || cast(round(candidate_p2m, 2) as varchar) || ' % vs ' || cast(round(current_p2m, 2) as varchar)
                || ' %, Gini ' || cast(round(gini, 3) as varchar) || ', unassigned ' || cast(round(unassigned_pct, 2) as varchar) || ' %'
        end as reason,
        '{"week": "' || coalesce(cast(period as varchar), '') || '"'
            || ', "shadow_match_pct": ' || coalesce(cast(match_pct as varchar), 'null')
            || ', "current_p_route_2m_pct": ' || coalesce(cast(current_p2m as varchar), 'null')
            || ', "candidate_p_route_2m_pct": ' || coalesce(cast(candidate_p2m as varchar), 'null')
            || ', "candidate_unassigned_pct": ' || coalesce(cast(unassigned_pct as varchar), 'null')
            || ', "candidate_fairness_gini": ' || coalesce(cast(gini as varchar), 'null') || '}' as evidence,
        {{ definition_version }} as node_version,
        {{ build_id }} as build_id
    from decided
)

select * from final
