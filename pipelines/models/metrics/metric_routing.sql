-- Routing evidence for the routing.policy playbook (SPEC §13), weekly (Monday to Sunday,
-- weeks ended by as_of) per segment, from the candidate rule set's shadow log:
--   routing_shadow_match_pct        leads the candidate routes to the same rep (or leaves
--                                   unassigned alike), %
--   routing_current_p_route_2m_pct  leads the live rules route within 2 minutes, %
--   routing_candidate_p_route_2m_pct  the same for the candidate (the SLO it must not regress)
--   routing_candidate_unassigned_pct  leads the candidate leaves unassigned, %
--   routing_candidate_fairness_gini Gini of the candidate's assignments across the segment's
--                                   reps over the week and the three before (reps seen by
--                                   either rule set; 0 = perfectly even)
-- Segment ALL pools the percentages; fairness is per segment only (the node takes the least
-- fair one).
{{ config(tags=['metrics'], definition_version='1', order_by=['metric_name', 'period', 'segment']) }}

with events as materialized (
    select
        *,
        arrow_cast(date_trunc('week', arrow_cast(routed_at, 'Timestamp(Microsecond, None)')), 'Date32') as week
    from {{ source('snapshot', 'routing_shadow_log') }}
    where routed_at < {{ as_of }}
),

weeks as (
    select distinct week from events
    where week + interval '7 days' <= {{ as_of_date }}
),

rates as materialized (
    select
        week,
        segment,
        count(*) as leads,
        sum(case when candidate_rep_id is not distinct from current_rep_id then 1 else 0 end) as matched,
        sum(case when current_route_seconds < 120 then 1 else 0 end) as current_fast,
        sum(case when candidate_route_seconds < 120 then 1 else 0 end) as candidate_fast,
        sum(case when candidate_rep_id is null then 1 else 0 end) as unassigned
    from events
    where week in (select week from weeks)
    group by week, segment
),

rates_all as (
    select * from rates
    union all
    select week, 'ALL', sum(leads), sum(matched), sum(current_fast), sum(candidate_fast), sum(unassigned)
    from rates
    group by week
),

-- Per week, segment and rep: the candidate's assignments over four weeks (0 for a rep only
-- the live rules used), summed from per-week counts.
rep_weeks as (
    select week, segment, rep_id, sum(assigned) as n
    from (
        select week, segment, candidate_rep_id as rep_id, 1 as assigned from events where candidate_rep_id is not null
        union all
        select week, segment, current_rep_id, 0 from events where current_rep_id is not null
    ) e
    group by week, segment, rep_id
),

reps as (
    select w.week, r.segment, r.rep_id, sum(r.n) as n
    from weeks w
    join rep_weeks r on r.week > arrow_cast(w.week - interval '28 days', 'Date32') and r.week <= w.week
    group by w.week, r.segment, r.rep_id
),

ranked as (
    select
        week, segment, n,
        row_number() over (partition by week, segment order by n, rep_id) as i,
        count(*) over (partition by week, segment) as reps,
        sum(n) over (partition by week, segment) as total
    from reps
),

gini as (
    -- G = 2 Σ i·x_(i) ÷ (n Σ x) − (n + 1) ÷ n, x sorted ascending
    select week, segment,
        case when max(total) > 0
            then 2.0 * sum(i * n) / (max(reps) * max(total)) - (max(reps) + 1.0) / max(reps) end as value,
        max(reps) as reps
    from ranked
    group by week, segment
),

metrics as (
    select 'routing_shadow_match_pct' as metric_name, week, segment,
        cast(matched as double) as num, cast(leads as double) as den from rates_all
    union all
    select 'routing_current_p_route_2m_pct', week, segment, cast(current_fast as double), cast(leads as double) from rates_all
    union all
    select 'routing_candidate_p_route_2m_pct', week, segment, cast(candidate_fast as double), cast(leads as double) from rates_all
    union all
    select 'routing_candidate_unassigned_pct', week, segment, cast(unassigned as double), cast(leads as double) from rates_all
),

final as (
    select
        'weekly' as cadence, metric_name, week as period, segment,
        cast(null as varchar) as channel, cast(null as date) as cohort_month,
        case when den > 0 then 100 * num / den end as metric_value,
        num as numerator, den as denominator,
        not coalesce(den > 0, false) as data_gap,
        case when not coalesce(den > 0, false) then 'no routed leads in the week' end as data_gap_reason,
        '{}' as detail,
        cast(null as varchar) as plan_metric, cast(null as varchar) as plan_grain, cast(null as date) as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from metrics
    union all
    select
        'weekly', 'routing_candidate_fairness_gini', week, segment,
        cast(null as varchar), cast(null as date),
        value as metric_value, value as numerator, cast(reps as double) as denominator,
        value is null as data_gap, case when value is null then 'no assignments in the four weeks' end,
        '{"window_weeks": 4}',
        cast(null as varchar), cast(null as varchar), cast(null as date),
        {{ definition_version }},
        {{ build_id }}
    from gini
)

select * from final
