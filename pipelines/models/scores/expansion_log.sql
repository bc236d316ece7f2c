-- Expansion (SPEC §9, AGT-503) per customer × score date. Signals, each from what happened
-- before the score date (points and thresholds: the expansion_* vars):
--   consumption_overage (+40)  overage units in the latest closed month
--   seat_utilization    (+30)  mean seat utilisation above expansion_seat_pct in each of the
--                              last expansion_seat_months closed months
--   feature_inquiry     (+30)  a call in the last expansion_inquiry_days asking about features
--                              with sentiment above expansion_positive_sentiment
--   new_stakeholder     (+20)  a contact who joined after the first contract, in the last
--                              expansion_stakeholder_days, still there
--   peer_cross_sell     (+15–25) a feature category the account did not use in the last
--                              expansion_peer_window_weeks weeks while at least
--                              expansion_peer_match_rate of its peers did (peers: other
--                              customers of the same segment × vertical × size band, the size
--                              band being the order of magnitude of employee_count; at least
--                              expansion_peer_min_accounts of them); 15 at the match-rate
--                              floor rising linearly to 25 when every peer uses it
-- expansion_score = Σ points, capped at expansion_score_cap. The churn gate runs first:
-- High/Critical → suppressed; an open expansion opportunity → enrichment of it (no new play);
-- otherwise a new play, which needs a CSM's confirmation when churn risk is Medium. No signal →
-- no play. acv_estimate_usd: twelve times the latest closed month's overage amount.
{{ config(tags=['scores'], order_by=['account_id', 'score_date']) }}

with accounts as (
    select * from {{ ref('score_accounts') }}
),

months as (
    select
        account_id,
        arrow_cast(date_trunc('month', arrow_cast(period_start, 'Date32')), 'Date32') as month,
        sum(case when sku_type = 'consumption' then overage_units else 0 end) as overage_units,
        sum(case when sku_type = 'consumption'
            then overage_units * arrow_cast(overage_unit_price_usd, 'Float64') else 0 end) as overage_usd,
        avg(case when sku_type = 'seat' then seat_utilization_pct end) as seat_utilization_pct
    from {{ ref('usage_billable') }}
    where period_start < {{ as_of }}
        and period_start >= {{ as_of }} - interval '{{ var('score_history_weeks') }} weeks' - interval '{{ var('expansion_seat_months') }} months' - interval '1 month'
    group by account_id, arrow_cast(date_trunc('month', arrow_cast(period_start, 'Date32')), 'Date32')
),

usage_signals as (
    select
        a.account_id,
        a.k,
        sum(case when m.month = arrow_cast(date_trunc('month', a.score_date) - interval '1 month', 'Date32')
            then m.overage_units end) as overage_units,
        sum(case when m.month = arrow_cast(date_trunc('month', a.score_date) - interval '1 month', 'Date32')
            then m.overage_usd end) as overage_usd,
        sum(case when m.seat_utilization_pct > {{ var('expansion_seat_pct') }} then 1 else 0 end) as hot_seat_months
    from accounts a
    join months m
        on m.account_id = a.account_id
        and m.month < arrow_cast(date_trunc('month', a.score_date), 'Date32')
        and m.month >= arrow_cast(date_trunc('month', a.score_date) - interval '{{ var('expansion_seat_months') }} months', 'Date32')
    group by a.account_id, a.k
),

inquiries as (
    select a.account_id, a.k, count(*) as calls
    from accounts a
    join {{ source('snapshot', 'conversations') }} c
        on c.account_id = a.account_id
        and c.feature_inquiry
        and c.sentiment_score > {{ var('expansion_positive_sentiment') }}
        and c.call_ts < arrow_cast(a.score_date, 'Timestamp(Microsecond, Some("UTC"))')
        and c.call_ts >= arrow_cast(a.score_date - interval '{{ var('expansion_inquiry_days') }} days', 'Timestamp(Microsecond, Some("UTC"))')
    group by a.account_id, a.k
),

stakeholders as (
    select a.account_id, a.k, count(*) as contacts
    from accounts a
    join {{ source('snapshot', 'contacts') }} c
        on c.account_id = a.account_id
        and c.active_from < a.score_date
        and c.active_from >= a.score_date - interval '{{ var('expansion_stakeholder_days') }} days'
        and c.active_from > a.first_term_start
        and (c.active_to is null or c.active_to >= a.score_date)
    group by a.account_id, a.k
),

feature_weeks as (
    select account_id, feature_category, arrow_cast(week_start + interval '7 days', 'Date32') as week_end
    from {{ source('snapshot', 'feature_engagement') }}
    where week_start + interval '7 days' <= {{ as_of_date }}
        and week_start >= {{ as_of_date }} - interval '{{ var('score_history_weeks') }} weeks' - interval '{{ var('expansion_peer_window_weeks') }} weeks'
    group by account_id, feature_category, arrow_cast(week_start + interval '7 days', 'Date32')
),

used as (
    select distinct a.account_id, a.k, f.feature_category
    from accounts a
    join feature_weeks f
        on f.account_id = a.account_id
        and f.week_end <= a.score_date
        and f.week_end > a.score_date - interval '{{ var('expansion_peer_window_weeks') }} weeks'
),

cohorts as (
    select
        account_id,
        k,
        segment || '|' || vertical || '|' || cast(floor(log10(greatest(employee_count, 1))) as varchar) as cohort
    from accounts
),

cohort_sizes as (
    select k, cohort, count(*) as accounts from cohorts group by k, cohort
),

cohort_use as (
    select c.k, c.cohort, u.feature_category, count(*) as users
    from used u
    join cohorts c on c.account_id = u.account_id and c.k = u.k
    group by c.k, c.cohort, u.feature_category
),

peer_gaps as (
    -- categories the account did not use that enough of its peers did
    select
        c.account_id,
        c.k,
        cu.feature_category,
        arrow_cast(cu.users, 'Float64') / (s.accounts - 1) as match_rate
    from cohorts c
    join cohort_sizes s on s.k = c.k and s.cohort = c.cohort
    join cohort_use cu on cu.k = c.k and cu.cohort = c.cohort
    left join used u on u.account_id = c.account_id and u.k = c.k and u.feature_category = cu.feature_category
    where u.account_id is null
        and s.accounts - 1 >= {{ var('expansion_peer_min_accounts') }}
        and arrow_cast(cu.users, 'Float64') / (s.accounts - 1) >= {{ var('expansion_peer_match_rate') }}
),

best_gap as (
    select account_id, k, feature_category, match_rate
    from (
        select *, row_number() over (partition by account_id, k order by match_rate desc, feature_category) as rank
        from peer_gaps
    ) g
    where rank = 1
),

open_opps as (
    select a.account_id, a.k, min(o.opp_id) as opp_id
    from accounts a
    join {{ source('snapshot', 'opportunities') }} o
        on o.account_id = a.account_id
        and o.opp_type = 'expansion'
        and o.created_date < a.score_date
        and (o.stage not in ('closed_won', 'closed_lost') or o.close_date >= a.score_date)
    group by a.account_id, a.k
),

signals as (
    select
        a.account_id,
        a.score_date,
        r.churn_risk_tier,
        case when coalesce(us.overage_units, 0) > 0 then {{ var('expansion_overage_points') }} else 0 end as overage_points,
        case when coalesce(us.hot_seat_months, 0) >= {{ var('expansion_seat_months') }} then {{ var('expansion_seat_points') }} else 0 end as seat_points,
        case when i.calls > 0 then {{ var('expansion_inquiry_points') }} else 0 end as inquiry_points,
        case when s.contacts > 0 then {{ var('expansion_stakeholder_points') }} else 0 end as stakeholder_points,
        case when g.match_rate is not null
            then arrow_cast(round({{ var('expansion_peer_min_points') }}
                + ({{ var('expansion_peer_max_points') }} - {{ var('expansion_peer_min_points') }})
                * (g.match_rate - {{ var('expansion_peer_match_rate') }}) / (1 - {{ var('expansion_peer_match_rate') }})), 'Int64')
            else 0 end as peer_points,
        g.feature_category as peer_gap_category,
        g.match_rate as peer_match_rate,
        o.opp_id as open_opp_id,
        round(12 * coalesce(us.overage_usd, 0.0), 2) as acv_estimate_usd
    from accounts a
    join {{ ref('churn_risk_log') }} r on r.account_id = a.account_id and r.score_date = a.score_date
    left join usage_signals us on us.account_id = a.account_id and us.k = a.k
    left join inquiries i on i.account_id = a.account_id and i.k = a.k
    left join stakeholders s on s.account_id = a.account_id and s.k = a.k
    left join best_gap g on g.account_id = a.account_id and g.k = a.k
    left join open_opps o on o.account_id = a.account_id and o.k = a.k
),

scored as (
    select
        *,
        least({{ var('expansion_score_cap') }},
            overage_points + seat_points + inquiry_points + stakeholder_points + peer_points) as expansion_score
    from signals
),

final as (
    select
        account_id,
        score_date,
        expansion_score,
        case
            when expansion_score = 0 then cast(null as varchar)
            when churn_risk_tier in ('High', 'Critical') then 'suppressed'
            when open_opp_id is not null then 'enrichment'
            else 'new_play'
        end as play_type,
        case when expansion_score > 0 and churn_risk_tier in ('High', 'Critical')
            then 'churn_risk_' || lower(churn_risk_tier) end as suppressed_reason,
        expansion_score > 0 and churn_risk_tier = 'Medium' and open_opp_id is null as csm_confirm_required,
        open_opp_id is not null as open_opp_exists,
        case when expansion_score > 0 and churn_risk_tier not in ('High', 'Critical') then open_opp_id end as enriched_opp_id,
        churn_risk_tier,
        overage_points,
        seat_points,
        inquiry_points,
        stakeholder_points,
        peer_points,
        peer_gap_category,
        peer_match_rate,
        '[' || concat_ws(', ',
            case when overage_points > 0 then '{"signal": "consumption_overage", "points": ' || cast(overage_points as varchar) || '}' end,
            case when seat_points > 0 then '{"signal": "seat_utilization", "points": ' || cast(seat_points as varchar) || '}' end,
            case when inquiry_points > 0 then '{"signal": "feature_inquiry", "points": ' || cast(inquiry_points as varchar) || '}' end,
            case when stakeholder_points > 0 then '{"signal": "new_stakeholder", "points": ' || cast(stakeholder_points as varchar) || '}' end,
            case when peer_points > 0 then '{"signal": "peer_cross_sell", "points": ' || cast(peer_points as varchar)
                || ', "category": "' || peer_gap_category || '"}' end
        ) || ']' as signal_sources,
        acv_estimate_usd,
        {{ build_id }} as build_id
    from scored
)

select * from final
