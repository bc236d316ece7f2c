-- ICP score (SPEC §9, AGT-201) per account — prospects and customers — at the build's as_of:
-- six dimensions, weights icp_weight_* (sum 100); a dimension without data is listed in
-- data_gap_dimensions and the rest are rescaled to 100. Tier T1 from icp_tier1_min, T2 from
-- icp_tier2_min, else T3. Segment is a routing input, not a dimension (seed changelog).
--   firmographic  employees within [icp_ideal_min_employees, icp_ideal_max_employees]: 1; within
--                 half the minimum to twice the maximum: 0.5; otherwise 0.2; × icp_other_geo_factor
--                 outside icp_preferred_geos
--   vertical      icp_target_verticals 1, icp_adjacent_verticals 0.6, any other 0.3
--   revenue       annual revenue ≥ icp_revenue_full_usd 1, ≥ icp_revenue_half_usd 0.5, else 0.2;
--                 a data gap when unknown (0, as CRMs record an unenriched account)
--   tech, growth  data gaps: the snapshot carries no technographic or growth enrichment
--   intent        the strongest outreach response in the last icp_intent_window_days days:
--                 meeting booked 1, reply 0.6, open 0.25, nothing 0
{{ config(tags=['scores'], order_by=['account_id']) }}

with accounts as (
    select account_id, segment, vertical, geo, employee_count, annual_revenue_usd
    from {{ source('snapshot', 'accounts') }}
),

intent as (
    select
        account_id,
        max(case event_type when 'meeting_booked' then 1.0 when 'replied' then 0.6 when 'opened' then 0.25 else 0.0 end) as intent_fraction
    from {{ source('snapshot', 'cadence_events') }}
    where event_ts < {{ as_of }}
        and event_ts >= {{ as_of }} - interval '{{ var('icp_intent_window_days') }} days'
    group by account_id
),

fractions as (
    select
        a.account_id,
        a.segment,
        a.vertical,
        (case
            when a.employee_count between {{ var('icp_ideal_min_employees') }} and {{ var('icp_ideal_max_employees') }} then 1.0
            when a.employee_count between {{ var('icp_ideal_min_employees') }} / 2 and 2 * {{ var('icp_ideal_max_employees') }} then 0.5
            else 0.2
        end) * (case when a.geo in ({{ var('icp_preferred_geos') }}) then 1.0 else {{ var('icp_other_geo_factor') }} end) as firmographic,
        case
            when a.vertical in ({{ var('icp_target_verticals') }}) then 1.0
            when a.vertical in ({{ var('icp_adjacent_verticals') }}) then 0.6
            else 0.3
        end as vertical_fit,
        case
            when a.annual_revenue_usd is null or a.annual_revenue_usd <= 0 then null
            when a.annual_revenue_usd >= {{ var('icp_revenue_full_usd') }} then 1.0
            when a.annual_revenue_usd >= {{ var('icp_revenue_half_usd') }} then 0.5
            else 0.2
        end as revenue,
        coalesce(i.intent_fraction, 0.0) as intent
    from accounts a
    left join intent i on i.account_id = a.account_id
),

points as (
    select
        *,
        {{ var('icp_weight_firmographic') }} * firmographic as firmographic_points,
        {{ var('icp_weight_vertical') }} * vertical_fit as vertical_points,
        {{ var('icp_weight_revenue') }} * revenue as revenue_points,
        arrow_cast(null, 'Float64') as tech_points,
        arrow_cast(null, 'Float64') as growth_points,
        {{ var('icp_weight_intent') }} * intent as intent_points,
        {{ var('icp_weight_firmographic') }} + {{ var('icp_weight_vertical') }} + {{ var('icp_weight_intent') }}
            + case when revenue is null then 0 else {{ var('icp_weight_revenue') }} end as weight_available
    from fractions
),

scored as (
    select
        *,
        100.0 * (firmographic_points + vertical_points + coalesce(revenue_points, 0) + intent_points)
            / weight_available as raw_score
    from points
),

final as (
    select
        account_id,
        {{ as_of_date }} as as_of_date,
        segment,
        vertical,
        firmographic_points,
        vertical_points,
        revenue_points,
        tech_points,
        growth_points,
        intent_points,
        weight_available as available_weight,
        '[' || concat_ws(', ',
            case when revenue_points is null then '"revenue"' end,
            '"tech"',
            '"growth"'
        ) || ']' as data_gap_dimensions,
        round(raw_score, 2) as icp_score,
        case
            when raw_score >= {{ var('icp_tier1_min') }} then 'T1'
            when raw_score >= {{ var('icp_tier2_min') }} then 'T2'
            else 'T3'
        end as icp_tier,
        {{ build_id }} as build_id
    from scored
)

select * from final
