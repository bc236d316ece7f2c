-- Account priority (SPEC §9, AGT-206) per account at the build's as_of, on a 0–100 scale:
-- priority_weight_fit × fit + priority_weight_intent × intent + priority_weight_opportunity ×
-- opportunity, each a fraction:
--   fit          the ICP score ÷ 100
--   intent       the strongest engagement in the last priority_intent_window_days days, each
--                event's value (meeting booked priority_intent_meeting, reply
--                priority_intent_reply, open priority_intent_open; out of 100) decayed by
--                e^(−hours since the event ÷ priority_intent_decay_hours)
--   opportunity  open opportunity amount ÷ priority_opportunity_full_usd (at most 1), or the
--                latest expansion score ÷ 100 when higher
-- priority_rank orders all accounts (1 = first to work); ties go to the account id.
{{ config(tags=['scores'], order_by=['account_id']) }}

with fit as (
    select account_id, icp_score, icp_tier from {{ ref('icp_score') }}
),

intent_events as (
    select
        account_id,
        event_type,
        event_ts,
        (arrow_cast({{ as_of }}, 'Int64') - arrow_cast(event_ts, 'Int64')) / 3600000000.0 as hours_ago,
        case event_type
            when 'meeting_booked' then {{ var('priority_intent_meeting') }}
            when 'replied' then {{ var('priority_intent_reply') }}
            when 'opened' then {{ var('priority_intent_open') }}
        end / 100.0 as base
    from {{ source('snapshot', 'cadence_events') }}
    where event_ts < {{ as_of }}
        and event_ts >= {{ as_of }} - interval '{{ var('priority_intent_window_days') }} days'
        and event_type in ('meeting_booked', 'replied', 'opened')
),

intent as (
    select
        account_id,
        max(base * exp(-hours_ago / {{ var('priority_intent_decay_hours') }})) as intent,
        min(hours_ago) as hours_since_last_intent
    from intent_events
    group by account_id
),

open_pipeline as (
    select account_id, sum(amount_usd) as open_amount_usd
    from {{ source('snapshot', 'opportunities') }}
    where stage not in ('closed_won', 'closed_lost')
        and created_date < {{ as_of_date }}
    group by account_id
),

expansion as (
    select account_id, expansion_score
    from {{ ref('expansion_log') }}
    where score_date = {{ as_of_date }}
),

parts as (
    select
        f.account_id,
        f.icp_score,
        f.icp_tier,
        f.icp_score / 100.0 as fit,
        coalesce(i.intent, 0.0) as intent,
        i.hours_since_last_intent,
        coalesce(o.open_amount_usd, 0) as open_pipeline_usd,
        e.expansion_score,
        greatest(
            least(1.0, arrow_cast(coalesce(o.open_amount_usd, 0), 'Float64') / {{ var('priority_opportunity_full_usd') }}),
            coalesce(e.expansion_score, 0) / 100.0
        ) as opportunity
    from fit f
    left join intent i on i.account_id = f.account_id
    left join open_pipeline o on o.account_id = f.account_id
    left join expansion e on e.account_id = f.account_id
),

scored as (
    select
        *,
        {{ var('priority_weight_fit') }} * fit
            + {{ var('priority_weight_intent') }} * intent
            + {{ var('priority_weight_opportunity') }} * opportunity as raw_priority
    from parts
),

final as (
    select
        account_id,
        {{ as_of_date }} as as_of_date,
        round(raw_priority, 2) as priority_score,
        row_number() over (order by raw_priority desc, account_id) as priority_rank,
        round({{ var('priority_weight_fit') }} * fit, 2) as fit_points,
        round({{ var('priority_weight_intent') }} * intent, 2) as intent_points,
        round({{ var('priority_weight_opportunity') }} * opportunity, 2) as opportunity_points,
        icp_score,
        icp_tier,
        round(hours_since_last_intent, 2) as hours_since_last_intent,
        open_pipeline_usd,
        expansion_score,
        {{ build_id }} as build_id
    from scored
)

select * from final
