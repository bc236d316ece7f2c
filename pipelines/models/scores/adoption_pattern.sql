-- Adoption pattern (SPEC §9, TOOL-008 core) per customer at the build's as_of, from weekly
-- feature engagement: the recent window is the last adoption_recent_weeks full weeks, the prior
-- window the adoption_prior_weeks weeks before it.
--   breadth      features used in the recent window
--   gini         concentration of the recent window's events across the features used
--                (0 = spread evenly; G = 2 Σ i·x_(i) ÷ (n Σ x) − (n + 1) ÷ n, x ascending)
--   max_teams    the most teams active on any feature in the recent window
--   abandoned    features used in the prior window, not in the recent one; new: the reverse
-- Patterns, first rule that holds:
--   activating         under adoption_activating_days into the contract (so never
--                      surface_only), or under adoption_ramp_max_days with at least
--                      adoption_ramp_new_features new features
--   declining          at least adoption_declining_min_abandoned abandoned, more than new
--   deeply_integrated  breadth ≥ adoption_broad_min_features across ≥ adoption_broad_min_teams teams
--   siloed_by_team     breadth ≥ adoption_siloed_min_features within ≤ adoption_siloed_max_teams team
--   surface_only       otherwise (narrow use)
-- An account with no feature engagement in either window has no pattern (a data gap).
{{ config(tags=['scores'], order_by=['account_id']) }}

with accounts as (
    select * from {{ ref('score_accounts') }} where k = 0
),

weeks as (
    select
        account_id,
        feature_id,
        feature_category,
        events,
        teams_active,
        (day_number({{ as_of_date }}) - day_number(week_start) - 7) / 7 as week
    from {{ source('snapshot', 'feature_engagement') }}
    where week_start + interval '7 days' <= {{ as_of_date }}
        and week_start + interval '7 days' > {{ as_of_date }}
            - interval '{{ var('adoption_recent_weeks') }} weeks' - interval '{{ var('adoption_prior_weeks') }} weeks'
),

features as (
    select
        account_id,
        feature_id,
        max(feature_category) as feature_category,
        sum(case when week < {{ var('adoption_recent_weeks') }} then events else 0 end) as recent_events,
        max(case when week < {{ var('adoption_recent_weeks') }} then 1 else 0 end) as recent,
        max(case when week >= {{ var('adoption_recent_weeks') }} then 1 else 0 end) as prior,
        max(case when week < {{ var('adoption_recent_weeks') }} then teams_active else 0 end) as recent_teams
    from weeks
    group by account_id, feature_id
),

ranked as (
    select
        *,
        row_number() over (partition by account_id, recent order by recent_events, feature_id) as i
    from features
),

stats as (
    select
        account_id,
        sum(recent) as breadth,
        sum(case when recent = 1 and prior = 0 then 1 else 0 end) as new_features,
        sum(case when recent = 0 and prior = 1 then 1 else 0 end) as abandoned_features,
        max(recent_teams) as max_teams,
        max(case when recent = 1 and feature_category = 'integration' then 1 else 0 end) = 1 as integrations_active,
        sum(case when recent = 1 then recent_events else 0 end) as recent_events,
        sum(case when recent = 1 then i * recent_events else 0 end) as weighted_rank_sum
    from ranked
    group by account_id
),

final as (
    select
        a.account_id,
        a.score_date,
        a.days_into_contract,
        coalesce(s.breadth, 0) as breadth,
        case when s.breadth > 0 and s.recent_events > 0
            then 2.0 * s.weighted_rank_sum / (s.breadth * s.recent_events) - (s.breadth + 1.0) / s.breadth
        end as gini,
        coalesce(s.max_teams, 0) as max_teams,
        coalesce(s.new_features, 0) as new_features,
        coalesce(s.abandoned_features, 0) as abandoned_features,
        coalesce(s.integrations_active, false) as integrations_active,
        case
            when s.account_id is null then cast(null as varchar)
            when a.days_into_contract < {{ var('adoption_activating_days') }} then 'activating'
            when s.abandoned_features >= {{ var('adoption_declining_min_abandoned') }}
                and s.abandoned_features > s.new_features then 'declining'
            when a.days_into_contract < {{ var('adoption_ramp_max_days') }}
                and s.new_features >= {{ var('adoption_ramp_new_features') }} then 'activating'
            when s.breadth >= {{ var('adoption_broad_min_features') }}
                and s.max_teams >= {{ var('adoption_broad_min_teams') }} then 'deeply_integrated'
            when s.breadth >= {{ var('adoption_siloed_min_features') }}
                and s.max_teams <= {{ var('adoption_siloed_max_teams') }} then 'siloed_by_team'
            else 'surface_only'
        end as pattern,
        case when s.account_id is null then 'no feature engagement in the last '
            || cast({{ var('adoption_recent_weeks') }} + {{ var('adoption_prior_weeks') }} as varchar) || ' weeks' end as data_gap_reason,
        {{ build_id }} as build_id
    from accounts a
    left join stats s on s.account_id = a.account_id
)

select * from final
