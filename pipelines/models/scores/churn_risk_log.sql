-- Churn risk (SPEC §9, AGT-502) per customer × score date: effective = health × the renewal
-- multiplier (≤ 30 days to renewal 0.85, 31–60 0.92, 61–90 0.96, beyond 1.0). Tiers on the
-- effective score: Critical below churn_high_min (0–44), High below churn_medium_min (45–62),
-- Medium below churn_low_min (63–77), Low from there (78–100). Alerts against the previous
-- score date: the effective score dropped by churn_alert_drop_points or more, the tier changed,
-- or a sponsor (champion or economic buyer) left in the week; alert_type is the first of
-- sponsor_departure, tier_transition, score_drop that fired, alerts lists them all. A Low-tier
-- account is passed to expansion as a candidate.
{{ config(tags=['scores'], order_by=['account_id', 'score_date']) }}

with scored as (
    select
        h.account_id,
        h.score_date,
        h.health_score,
        h.sponsor_departure_flag,
        a.renewal_date,
        a.days_to_renewal,
        case
            when a.days_to_renewal <= 30 then {{ var('churn_multiplier_30d') }}
            when a.days_to_renewal <= 60 then {{ var('churn_multiplier_60d') }}
            when a.days_to_renewal <= 90 then {{ var('churn_multiplier_90d') }}
            else 1.0
        end as renewal_multiplier
    from {{ ref('customer_health_log') }} h
    join {{ ref('score_accounts') }} a on a.account_id = h.account_id and a.score_date = h.score_date
),

tiered as (
    select
        *,
        round(health_score * renewal_multiplier, 2) as effective_risk_score,
        case
            when round(health_score * renewal_multiplier, 2) < {{ var('churn_high_min') }} then 'Critical'
            when round(health_score * renewal_multiplier, 2) < {{ var('churn_medium_min') }} then 'High'
            when round(health_score * renewal_multiplier, 2) < {{ var('churn_low_min') }} then 'Medium'
            else 'Low'
        end as churn_risk_tier
    from scored
),

compared as (
    select
        *,
        lag(effective_risk_score) over (partition by account_id order by score_date) as previous_score,
        lag(churn_risk_tier) over (partition by account_id order by score_date) as previous_tier
    from tiered
),

alerted as (
    select
        *,
        sponsor_departure_flag as sponsor_alert,
        coalesce(previous_tier <> churn_risk_tier, false) as tier_alert,
        coalesce(previous_score - effective_risk_score >= {{ var('churn_alert_drop_points') }}, false) as drop_alert
    from compared
),

final as (
    select
        account_id,
        score_date,
        effective_risk_score,
        churn_risk_tier,
        health_score,
        renewal_multiplier,
        days_to_renewal as renewal_proximity_days,
        renewal_date,
        previous_score as previous_effective_score,
        previous_tier,
        case
            when sponsor_alert then 'sponsor_departure'
            when tier_alert then 'tier_transition'
            when drop_alert then 'score_drop'
        end as alert_type,
        '[' || concat_ws(', ',
            case when sponsor_alert then '"sponsor_departure"' end,
            case when tier_alert then '"tier_transition"' end,
            case when drop_alert then '"score_drop"' end
        ) || ']' as alerts,
        churn_risk_tier = 'Low' as expansion_candidate,
        {{ build_id }} as build_id
    from alerted
)

select * from final
