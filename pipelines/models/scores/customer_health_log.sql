-- Customer health (SPEC §9, AGT-501), 100 points, per customer × score date. Seven dimensions,
-- each scored from what happened before the score date (weights and ladders: the health_*
-- vars; a ladder scores 0 at its "zero" end, the full weight at its "full" end, linearly
-- between):
--   usage_trend (22)         mean usage over commitment, last health_usage_window_weeks weeks
--                            ÷ the same span health_usage_baseline_weeks_back weeks earlier
--   exec_sponsor (20)        half each for the champion and the economic buyer: still at the
--                            account and attending a call within health_sponsor_*_days → full
--                            half; there but not seen → a quarter; gone or never named → 0
--   seat_utilization (18)    mean seat utilisation over the same recent weeks
--   nps_csat (14)            mean NPS score (health_nps_window_days) and mean ticket CSAT
--                            (health_csat_window_days), each on its ladder, averaged
--   engagement_recency (12)  days since the last call, held QBR or completed onboarding milestone
--   support_trend (8)        severity-weighted tickets opened in the last
--                            health_support_window_days ÷ the window before (at least
--                            health_support_floor): ≤ 1 full, ≥ 2 zero
--   competitive_threat (6)   share of calls in health_competitor_window_days naming a competitor
-- A dimension without data is listed in data_gap_dimensions and the others are rescaled to
-- 100. In onboarding (milestones still open, at most onboarding_max_days into the contract)
-- usage trend and seat utilisation are scored on onboarding progress (milestones completed ÷
-- milestones due, a milestone being due onboarding_grace_days after its planned date; full
-- while none is due yet) and NPS/CSAT is a data gap. Then the ConvIntelligence adjustment from CSM
-- calls only over the trailing health_conv_window_days (0 to health_conv_adj_max: half on mean
-- sentiment above 0, a quarter on the share of calls where the CSM talked at most
-- health_conv_talk_max of the time, a quarter on the next-step commitment rate), clamped to
-- [0, 100]; the payment modifier last: overdue caps at 77, failed at 62, suspended at 44.
{{ config(tags=['scores'], order_by=['account_id', 'score_date'], build_in_ranges=20000000) }}

with accounts as (
    -- each score date with the start of every window the dimensions look back over
    select
        *,
        score_date - interval '{{ var('health_competitor_window_days') }} days' as competitor_from,
        score_date - interval '{{ var('health_conv_window_days') }} days' as conv_from,
        score_date - interval '{{ var('health_sponsor_champion_days') }} days' as champion_from,
        score_date - interval '{{ var('health_sponsor_buyer_days') }} days' as buyer_from,
        score_date - interval '{{ var('health_nps_window_days') }} days' as nps_from,
        score_date - interval '{{ var('health_support_window_days') }} days' as support_from,
        score_date - interval '{{ var('health_support_window_days') }} days' - interval '{{ var('health_support_window_days') }} days' as support_prior_from,
        score_date - interval '{{ var('health_csat_window_days') }} days' as csat_from,
        arrow_cast(score_date, 'Timestamp(Microsecond, Some("UTC"))') as score_ts
    from {{ ref('score_accounts') }}
),

usage as (
    select
        a.score_id,
        sum(case when u.week < a.k + {{ var('health_usage_window_weeks') }} then u.usage_norm_e9 end) as recent_norm,
        sum(case when u.week < a.k + {{ var('health_usage_window_weeks') }} then u.usage_days end) as recent_days,
        sum(case when u.week >= a.k + {{ var('health_usage_baseline_weeks_back') }} then u.usage_norm_e9 end) as baseline_norm,
        sum(case when u.week >= a.k + {{ var('health_usage_baseline_weeks_back') }} then u.usage_days end) as baseline_days,
        sum(case when u.week < a.k + {{ var('health_usage_window_weeks') }} then u.seat_utilization_e9 end) as seat_sum,
        sum(case when u.week < a.k + {{ var('health_usage_window_weeks') }} then u.seat_days end) as seat_days
    from accounts a
    join {{ ref('usage_weekly') }} u
        on u.account_id = a.account_id
        and u.week >= a.k
        and u.week < a.k + {{ var('health_usage_baseline_weeks_back') }} + {{ var('health_usage_window_weeks') }}
    where u.week < a.k + {{ var('health_usage_window_weeks') }}
        or u.week >= a.k + {{ var('health_usage_baseline_weeks_back') }}
    group by a.score_id
),

calls as (
    select
        account_id,
        arrow_cast(call_ts, 'Date32') as call_date,
        call_owner_role,
        attendee_contact_ids,
        sentiment_score,
        talk_ratio,
        next_step_committed,
        coalesce(cardinality(competitors_mentioned), 0) > 0 as names_competitor
    from {{ source('snapshot', 'conversations') }}
    where call_ts < {{ as_of }}
),

-- the latest call before each score date: calls bucketed by week before as_of (as in
-- usage_weekly; a call in week w is before the score date of every k <= w), the oldest weeks
-- in one bucket
call_weeks as (
    select
        account_id,
        least((day_number({{ as_of_date }}) - day_number(call_date) - 1) / 7, {{ var('score_history_weeks') }}) as week,
        max(call_date) as last_call_date
    from calls
    where call_date < {{ as_of_date }}
    group by 1, 2
),

last_calls as (
    select a.score_id, max(w.last_call_date) as last_call_date
    from accounts a
    join call_weeks w on w.account_id = a.account_id and w.week >= a.k
    group by a.score_id
),

-- the calls inside the windows
call_stats as (
    select
        a.score_id,
        sum(case when c.call_date >= a.competitor_from
            then 1 else 0 end) as calls_competitor_window,
        sum(case when c.call_date >= a.competitor_from
            and c.names_competitor then 1 else 0 end) as competitor_calls,
        sum(case when c.call_owner_role = 'CSM'
            and c.call_date >= a.conv_from
            then 1 else 0 end) as csm_calls,
        sum(case when c.call_owner_role = 'CSM'
            and c.call_date >= a.conv_from
            then arrow_cast(round(c.sentiment_score * 1e9), 'Int64') end) as csm_sentiment_e9,
        count(case when c.call_owner_role = 'CSM'
            and c.call_date >= a.conv_from
            then c.sentiment_score end) as csm_sentiment_calls,
        avg(case when c.call_owner_role = 'CSM'
            and c.call_date >= a.conv_from
            then case when c.talk_ratio <= {{ var('health_conv_talk_max') }} then 1.0 else 0.0 end end) as csm_listening_share,
        avg(case when c.call_owner_role = 'CSM'
            and c.call_date >= a.conv_from
            then case when c.next_step_committed then 1.0 else 0.0 end end) as csm_next_step_rate
    from accounts a
    join calls c
        on c.account_id = a.account_id
        and c.call_date < a.score_date
        and c.call_date >= least(a.competitor_from, a.conv_from)
    group by a.score_id
),

qbrs as (
    select a.score_id, max(q.held_date) as last_qbr_date
    from accounts a
    join {{ source('snapshot', 'qbr_log') }} q
        on q.account_id = a.account_id and q.status = 'held' and q.held_date < a.score_date
    group by a.score_id
),

sponsors as (
    select contact_id, account_id, persona, active_from, active_to
    from {{ source('snapshot', 'contacts') }}
    where persona in ('economic_buyer', 'champion')
),

-- each contact's latest attended call per week before as_of, bucketed as call_weeks: a
-- sponsor attended a call within its window before the score date when the latest call it
-- attended before that date is inside the window
attendance_weeks as (
    select
        account_id,
        contact_id,
        least((day_number({{ as_of_date }}) - day_number(call_date) - 1) / 7, {{ var('score_history_weeks') }}) as week,
        max(call_date) as last_seen_date
    from (select account_id, call_date, unnest(attendee_contact_ids) as contact_id from calls) t
    where call_date < {{ as_of_date }}
    group by 1, 2, 3
),

-- per persona the best of its contacts: present and seen 1, present 0.5, else 0 (a contact is
-- seen when the latest call it attended before the score date is inside the persona's window)
sponsor_points as (
    select
        a.score_id,
        max(case when s.persona = 'champion' then
            case when s.active_from < a.score_date and (s.active_to is null or s.active_to >= a.score_date)
                then case when w.last_seen_date >= a.champion_from then 1.0 else 0.5 end
                else 0.0 end end) as champion_part,
        max(case when s.persona = 'economic_buyer' then
            case when s.active_from < a.score_date and (s.active_to is null or s.active_to >= a.score_date)
                then case when w.last_seen_date >= a.buyer_from then 1.0 else 0.5 end
                else 0.0 end end) as buyer_part,
        max(case when s.active_to >= a.score_date - interval '7 days' and s.active_to < a.score_date
            then 1 else 0 end) = 1 as sponsor_departure_flag
    from accounts a
    join sponsors s on s.account_id = a.account_id
    left join attendance_weeks w
        on w.contact_id = s.contact_id and w.account_id = s.account_id and w.week >= a.k
    group by a.score_id
),

nps as (
    select a.score_id, avg(arrow_cast(n.score, 'Float64')) as mean_nps, count(*) as responses
    from accounts a
    join {{ source('snapshot', 'nps_responses') }} n
        on n.account_id = a.account_id
        and n.response_date < a.score_date
        and n.response_date >= a.nps_from
    group by a.score_id
),

ticket_days as (
    select
        account_id,
        arrow_cast(opened_at, 'Date32') as opened_date,
        arrow_cast(closed_at, 'Date32') as closed_date,
        case severity
            when 'P1' then {{ var('health_support_weight_p1') }}
            when 'P2' then {{ var('health_support_weight_p2') }}
            when 'P3' then {{ var('health_support_weight_p3') }}
            else {{ var('health_support_weight_p4') }} end as weight,
        csat_score
    from {{ source('snapshot', 'support_tickets') }}
),

tickets as (
    select
        a.score_id,
        sum(case when t.opened_date >= a.support_from
            then t.weight else 0 end) as recent_weight,
        sum(case when t.opened_date < a.support_from
            then t.weight else 0 end) as prior_weight,
        avg(case when t.closed_date < a.score_date
                and t.closed_date >= a.csat_from
            then t.csat_score end) as mean_csat
    from accounts a
    join ticket_days t
        on t.account_id = a.account_id
        and t.opened_date < a.score_date
        and t.opened_date >= a.support_prior_from
    group by a.score_id
),

onboarding as (
    select
        a.score_id,
        sum(case when o.completed_date < a.score_date then 1 else 0 end) as completed,
        sum(case when o.planned_date + interval '{{ var('onboarding_grace_days') }} days' < a.score_date then 1 else 0 end) as due,
        count(*) as milestones,
        max(case when o.completed_date < a.score_date then o.completed_date end) as last_milestone_date
    from accounts a
    join {{ source('snapshot', 'onboarding_log') }} o on o.account_id = a.account_id
    group by a.score_id
),

payment_states as (
    select event_id, invoice_id, account_id, new_state, event_ts
    from {{ source('snapshot', 'payment_events') }}
    where event_ts < {{ as_of }}
),

payment_intervals as (
    -- each non-current state with the time the invoice's next event replaced it (events in
    -- (event_ts, event_id) order); a self-join, as only those few states need it
    select p.account_id, p.new_state, p.event_ts, min(n.event_ts) as next_event_ts
    from payment_states p
    left join payment_states n
        on n.invoice_id = p.invoice_id
        and (n.event_ts > p.event_ts or (n.event_ts = p.event_ts and n.event_id > p.event_id))
    where p.new_state <> 'current'
    group by p.event_id, p.account_id, p.new_state, p.event_ts
),

payments as (
    -- the account's worst invoice state at the score date (the latest event of each invoice)
    select
        a.score_id,
        max(case p.new_state when 'suspended' then 3 when 'failed' then 2 when 'overdue' then 1 else 0 end) as severity
    from accounts a
    join payment_intervals p
        on p.account_id = a.account_id
        and p.event_ts < a.score_ts
        and (p.next_event_ts is null or p.next_event_ts >= a.score_ts)
    group by a.score_id
),

-- Floating-point values are summed as integers of billionths (the _e9 sums): a float sum taken
-- in another order (another thread count, another engine) differs in the last bit, and a ratio
-- that lands exactly on a rounding midpoint (usage of 9/1024 over its baseline is 1.0087890625)
-- would then round either way. Every input is rounded to 9 decimals.
inputs as (
    select
        a.account_id,
        a.k,
        a.score_date,
        coalesce(o.completed < o.milestones, false)
            and a.days_into_contract <= {{ var('onboarding_max_days') }} as in_onboarding,
        case when o.due > 0 then least(1.0, arrow_cast(o.completed, 'Float64') / o.due) else 1.0 end as onboarding_progress,
        case when u.recent_days >= {{ var('health_usage_min_days') }} and u.baseline_days >= {{ var('health_usage_min_days') }}
                and u.baseline_norm > 0
            then round((arrow_cast(u.recent_norm, 'Float64') / u.recent_days)
                / (arrow_cast(u.baseline_norm, 'Float64') / u.baseline_days), 9) end as usage_ratio,
        case when u.seat_days > 0 then round(arrow_cast(u.seat_sum, 'Float64') / 1e9 / u.seat_days, 9) end as seat_utilization_pct,
        sp.champion_part,
        sp.buyer_part,
        coalesce(sp.sponsor_departure_flag, false) as sponsor_departure_flag,
        round(n.mean_nps, 9) as mean_nps,
        round(t.mean_csat, 9) as mean_csat,
        round(coalesce(t.recent_weight, 0), 9) as support_recent_weight,
        round(coalesce(t.prior_weight, 0), 9) as support_prior_weight,
        day_number(a.score_date)
            - day_number(greatest(lc.last_call_date, q.last_qbr_date, o.last_milestone_date)) as days_since_touch,
        c.calls_competitor_window,
        c.competitor_calls,
        coalesce(c.csm_calls, 0) as csm_calls,
        round(arrow_cast(c.csm_sentiment_e9, 'Float64') / 1e9 / c.csm_sentiment_calls, 9) as csm_sentiment,
        round(c.csm_listening_share, 9) as csm_listening_share,
        round(c.csm_next_step_rate, 9) as csm_next_step_rate,
        coalesce(p.severity, 0) as payment_severity
    -- Every score date with whatever each dimension found for it, as right joins: the engine
    -- builds its hash table on the left side, so each (narrow) dimension is the one hashed and
    -- the score dates, their row growing join by join, stream through once.
    from payments p
    right join (onboarding o
    right join (tickets t
    right join (nps n
    right join (sponsor_points sp
    right join (qbrs q
    right join (last_calls lc
    right join (call_stats c
    right join (usage u
    right join accounts a
        on u.score_id = a.score_id)
        on c.score_id = a.score_id)
        on lc.score_id = a.score_id)
        on q.score_id = a.score_id)
        on sp.score_id = a.score_id)
        on n.score_id = a.score_id)
        on t.score_id = a.score_id)
        on o.score_id = a.score_id)
        on p.score_id = a.score_id
),

points as (
    select
        *,
        case
            when in_onboarding then {{ var('health_weight_usage_trend') }} * onboarding_progress
            when usage_ratio is not null then {{ var('health_weight_usage_trend') }}
                * greatest(0.0, least(1.0, (usage_ratio - {{ var('health_usage_ratio_zero') }})
                    / ({{ var('health_usage_ratio_full') }} - {{ var('health_usage_ratio_zero') }})))
        end as usage_trend_points,
        case when champion_part is not null or buyer_part is not null
            then {{ var('health_weight_exec_sponsor') }} * (coalesce(champion_part, 0.0) + coalesce(buyer_part, 0.0)) / 2
        end as exec_sponsor_points,
        case
            when in_onboarding then {{ var('health_weight_seat_utilization') }} * onboarding_progress
            when seat_utilization_pct is not null then {{ var('health_weight_seat_utilization') }}
                * greatest(0.0, least(1.0, (seat_utilization_pct - {{ var('health_seat_zero_pct') }})
                    / ({{ var('health_seat_full_pct') }} - {{ var('health_seat_zero_pct') }})))
        end as seat_utilization_points,
        case when not in_onboarding and (mean_nps is not null or mean_csat is not null)
            then {{ var('health_weight_nps_csat') }} * (
                coalesce(greatest(0.0, least(1.0, (mean_nps - {{ var('health_nps_zero') }})
                    / ({{ var('health_nps_full') }} - {{ var('health_nps_zero') }}))), 0.0)
                + coalesce(greatest(0.0, least(1.0, (mean_csat - {{ var('health_csat_zero') }})
                    / ({{ var('health_csat_full') }} - {{ var('health_csat_zero') }}))), 0.0)
            ) / (case when mean_nps is not null then 1 else 0 end + case when mean_csat is not null then 1 else 0 end)
        end as nps_csat_points,
        case when days_since_touch is not null
            then {{ var('health_weight_engagement_recency') }}
                * greatest(0.0, least(1.0, arrow_cast({{ var('health_recency_zero_days') }} - days_since_touch, 'Float64')
                    / ({{ var('health_recency_zero_days') }} - {{ var('health_recency_full_days') }})))
        end as engagement_recency_points,
        {{ var('health_weight_support_trend') }}
            * greatest(0.0, least(1.0, 2.0 - arrow_cast(support_recent_weight, 'Float64')
                / greatest(arrow_cast(support_prior_weight, 'Float64'), {{ var('health_support_floor') }}))) as support_trend_points,
        case when calls_competitor_window > 0
            then {{ var('health_weight_competitive_threat') }}
                * (1.0 - least(1.0, (arrow_cast(competitor_calls, 'Float64') / calls_competitor_window)
                    / {{ var('health_competitor_share_zero') }}))
        end as competitive_threat_points,
        case when csm_calls > 0
            then {{ var('health_conv_adj_max') }} * (
                0.5 * greatest(0.0, least(1.0, csm_sentiment))
                + 0.25 * csm_listening_share
                + 0.25 * csm_next_step_rate)
            else 0.0
        end as conv_intelligence_adj
    from inputs
),

rescaled as (
    select
        *,
        case when usage_trend_points is null then 0 else {{ var('health_weight_usage_trend') }} end
            + case when exec_sponsor_points is null then 0 else {{ var('health_weight_exec_sponsor') }} end
            + case when seat_utilization_points is null then 0 else {{ var('health_weight_seat_utilization') }} end
            + case when nps_csat_points is null then 0 else {{ var('health_weight_nps_csat') }} end
            + case when engagement_recency_points is null then 0 else {{ var('health_weight_engagement_recency') }} end
            + {{ var('health_weight_support_trend') }}
            + case when competitive_threat_points is null then 0 else {{ var('health_weight_competitive_threat') }} end
            as available_weight,
        coalesce(usage_trend_points, 0.0) + coalesce(exec_sponsor_points, 0.0) + coalesce(seat_utilization_points, 0.0)
            + coalesce(nps_csat_points, 0.0) + coalesce(engagement_recency_points, 0.0) + support_trend_points
            + coalesce(competitive_threat_points, 0.0) as points_sum
    from points
),

scored as (
    select
        *,
        round(greatest(0.0, least(100.0, 100.0 * points_sum / available_weight + conv_intelligence_adj)), 2) as raw_health_score
    from rescaled
),

final as (
    select
        account_id,
        score_date,
        case payment_severity
            when 3 then least(raw_health_score, {{ var('health_cap_suspended') }})
            when 2 then least(raw_health_score, {{ var('health_cap_failed') }})
            when 1 then least(raw_health_score, {{ var('health_cap_overdue') }})
            else raw_health_score
        end as health_score,
        raw_health_score,
        round(usage_trend_points, 2) as usage_trend_points,
        round(exec_sponsor_points, 2) as exec_sponsor_points,
        round(seat_utilization_points, 2) as seat_utilization_points,
        round(nps_csat_points, 2) as nps_csat_points,
        round(engagement_recency_points, 2) as engagement_recency_points,
        round(support_trend_points, 2) as support_trend_points,
        round(competitive_threat_points, 2) as competitive_threat_points,
        '[' || concat_ws(', ',
            case when usage_trend_points is null then '"usage_trend"' end,
            case when exec_sponsor_points is null then '"exec_sponsor"' end,
            case when seat_utilization_points is null then '"seat_utilization"' end,
            case when nps_csat_points is null then '"nps_csat"' end,
            case when engagement_recency_points is null then '"engagement_recency"' end,
            case when competitive_threat_points is null then '"competitive_threat"' end
        ) || ']' as data_gap_dimensions,
        available_weight,
        round(conv_intelligence_adj, 2) as conv_intelligence_adj,
        csm_calls as csm_calls_in_window,
        case payment_severity when 3 then 'suspended' when 2 then 'failed' when 1 then 'overdue' else 'current' end
            as payment_health_status,
        case payment_severity
            when 3 then 'cap_{{ var('health_cap_suspended') }}'
            when 2 then 'cap_{{ var('health_cap_failed') }}'
            when 1 then 'cap_{{ var('health_cap_overdue') }}'
            else 'none'
        end as payment_modifier_applied,
        in_onboarding,
        sponsor_departure_flag,
        usage_ratio,
        seat_utilization_pct,
        days_since_touch,
        {{ build_id }} as build_id
    from scored
)

select
    account_id,
    score_date,
    health_score,
    round(health_score - lag(health_score) over (partition by account_id order by score_date), 2) as score_delta,
    raw_health_score,
    usage_trend_points,
    exec_sponsor_points,
    seat_utilization_points,
    nps_csat_points,
    engagement_recency_points,
    support_trend_points,
    competitive_threat_points,
    data_gap_dimensions,
    available_weight,
    conv_intelligence_adj,
    csm_calls_in_window,
    payment_health_status,
    payment_modifier_applied,
    in_onboarding,
    sponsor_departure_flag,
    usage_ratio,
    seat_utilization_pct,
    days_since_touch,
    build_id
from final
