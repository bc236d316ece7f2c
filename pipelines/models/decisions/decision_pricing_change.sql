-- Decision node pricing.change (Decision OS playbook 4.1, SPEC §13), per segment on its latest
-- price test and CAC payback in the metric layer:
--   elasticity E ∈ [pricing_elasticity_min, pricing_elasticity_max], projected CM/seat uplift
--   ≥ pricing_cm_uplift_min_usd, and payback not worse by more than
--   pricing_payback_worse_max_months → raise the list price by the tested change, clamped to
--   [pricing_change_min_pct, pricing_change_max_pct]; hold discount ladders.
-- Payback after the change = payback × CM/seat ÷ (CM/seat + uplift): margin per account scales
-- with margin per seat. Stale or blocked inputs propose nothing.
{{ config(tags=['decisions'], definition_version='1.0', blocked_inputs='last_good', order_by=['subject']) }}

with log as (
    select * from {{ ref('metrics_calc_log') }}
),

tests as (
    select
        segment,
        period,
        max(case when metric_name = 'price_elasticity' then metric_value end) as elasticity,
        max(case when metric_name = 'price_elasticity' then denominator end) as price_change_pct,
        max(case when metric_name = 'cm_per_seat_usd' then metric_value end) as cm_per_seat,
        max(case when metric_name = 'cm_per_seat_uplift_usd' then metric_value end) as uplift,
        bool_or(stale) as stale,
        row_number() over (partition by segment order by period desc) as recency
    from log
    where metric_name in ('price_elasticity', 'cm_per_seat_usd', 'cm_per_seat_uplift_usd')
    group by segment, period
),

payback as (
    select segment, metric_value, stale,
        row_number() over (partition by segment order by period desc) as recency
    from log
    where metric_name = 'cac_payback_months' and cadence = 'quarterly'
),

judged as (
    select
        s.segment,
        t.period,
        t.elasticity,
        t.price_change_pct,
        t.cm_per_seat,
        t.uplift,
        p.metric_value as payback_months,
        p.metric_value * t.cm_per_seat / (t.cm_per_seat + t.uplift) - p.metric_value as payback_change_months,
        case
            when {{ input_status('metrics_calc_log') }} <> 'ok'
                then 'metrics_calc_log is blocked: ' || {{ blocked_reason('metrics_calc_log') }}
            when coalesce(t.stale, false) or coalesce(p.stale, false)
                then 'stale inputs: price test or CAC payback of ' || s.segment || ' is stale (blocked upstream)'
            when t.period is null then 'inputs missing: no price test for the segment'
            when t.elasticity is null or t.cm_per_seat is null or t.uplift is null
                then 'inputs missing: the price test has data gaps'
            when p.metric_value is null then 'inputs missing: no CAC payback for the segment''s latest quarter'
        end as unavailable
    from {{ ref('segments') }} s
    left join (select * from tests where recency = 1) t on t.segment = s.segment
    left join (select * from payback where recency = 1) p on p.segment = s.segment
),

decided as (
    select
        *,
        unavailable is null
            and elasticity >= {{ var('pricing_elasticity_min') }}
            and elasticity <= {{ var('pricing_elasticity_max') }}
            and uplift >= {{ var('pricing_cm_uplift_min_usd') }}
            and payback_change_months <= {{ var('pricing_payback_worse_max_months') }} as raise,
        least(greatest(price_change_pct, {{ var('pricing_change_min_pct') }}), {{ var('pricing_change_max_pct') }}) as change_pct
    from judged
),

final as (
    select
        'pricing.change' as node,
        segment as subject,
        coalesce(raise, false) as proposes,
        case when raise then 'raise the ' || segment || ' list price +' || cast(round(change_pct, 1) as varchar)
            || ' %; hold discount ladders' end as chosen_action,
        case
            when unavailable is not null then unavailable
            when raise then 'E ' || cast(round(elasticity, 3) as varchar) || ' in range, CM/seat +$'
                || cast(round(uplift, 2) as varchar) || ', payback ' || cast(round(payback_change_months, 2) as varchar) || ' months'
            else 'outside thresholds: E ' || cast(round(elasticity, 3) as varchar) || ', CM/seat uplift $'
                || cast(round(uplift, 2) as varchar) || ', payback change ' || cast(round(payback_change_months, 2) as varchar) || ' months'
        end as reason,
        '{"test_period": "' || coalesce(cast(period as varchar), '') || '"'
            || ', "elasticity": ' || coalesce(cast(elasticity as varchar), 'null')
            || ', "price_change_pct": ' || coalesce(cast(price_change_pct as varchar), 'null')
            || ', "cm_per_seat_usd": ' || coalesce(cast(cm_per_seat as varchar), 'null')
            || ', "cm_per_seat_uplift_usd": ' || coalesce(cast(uplift as varchar), 'null')
            || ', "payback_months": ' || coalesce(cast(payback_months as varchar), 'null')
            || ', "payback_change_months": ' || coalesce(cast(payback_change_months as varchar), 'null') || '}' as evidence,
        {{ definition_version }} as node_version,
        {{ build_id }} as build_id
    from decided
)

select * from final
