-- TOOL-015, the gross-profit decomposition (for gp_decomposition_view; AGT-903's margin
-- retrospectives, AGT-503's tier-migration plays): per customer × metered SKU × complete
-- quarter, realised gross profit (recognised consumption revenue − backend cost) and its change
-- on the quarter before, split by gp_decomposition() (src/strategy/gross_profit.rs) into
-- pricing, utilisation, backend-cost and tier-mix effects that sum exactly to the change. A
-- quarter is refused, with the reason and no effects, when it or the quarter before has a month
-- of consumption revenue without backend cost, or when there is no quarter before to compare with.
-- Its inputs are gp_inputs, one row per customer × SKU × quarter × tier.
{{ config(tags=['strategy'], order_by=['account_id', 'sku_id', 'quarter']) }}

with cells as (
    select
        *,
        named_struct(
            'quarter', quarter,
            'tier', tier,
            'revenue_cents', arrow_cast(revenue_usd * 100, 'Int64'),
            'billed_units', billed_units,
            'months_without_cost', months_without_cost,
            'units', units,
            'cost_cents', arrow_cast(cost_usd * 100, 'Int64')
        ) as cell
    from {{ ref('gp_inputs') }}
),

decomposed as (
    select account_id, sku_id, unnest(gp_decomposition(array_agg(cell))) as x
    from cells
    group by account_id, sku_id
),

per_quarter as (
    select
        account_id,
        sku_id,
        quarter,
        max(revenue_usd) as revenue_usd,
        coalesce(sum(cost_usd), 0) as backend_cost_usd,
        coalesce(sum(units), 0) as units,
        coalesce(sum(case when tier = 'shared' then units end), 0) as shared_units,
        coalesce(sum(case when tier = 'dedicated' then units end), 0) as dedicated_units,
        coalesce(sum(case when tier = 'byoc' then units end), 0) as byoc_units
    from cells
    group by account_id, sku_id, quarter
),

final as (
    select
        p.account_id,
        p.sku_id,
        date_of_quarter_number(p.quarter) as quarter,
        arrow_cast(p.quarter / 4, 'Utf8') || '-Q' || arrow_cast(p.quarter % 4 + 1, 'Utf8') as quarter_label,
        arrow_cast(p.revenue_usd, 'Decimal128(18, 2)') as revenue_usd,
        arrow_cast(p.backend_cost_usd, 'Decimal128(18, 2)') as backend_cost_usd,
        arrow_cast(p.revenue_usd - p.backend_cost_usd, 'Decimal128(18, 2)') as gross_profit_usd,
        case when p.revenue_usd > 0
            then round(100 * arrow_cast(p.revenue_usd - p.backend_cost_usd, 'Float64') / arrow_cast(p.revenue_usd, 'Float64'), 2)
        end as gross_margin_pct,
        p.units,
        case when p.units > 0 then round(100 * p.shared_units / p.units, 1) end as shared_pct,
        case when p.units > 0 then round(100 * p.dedicated_units / p.units, 1) end as dedicated_pct,
        case when p.units > 0 then round(100 * p.byoc_units / p.units, 1) end as byoc_pct,
        d.x['prior_gp_usd'] as prior_gross_profit_usd,
        arrow_cast(
            case when d.x['refusal_reason'] is null
                then p.revenue_usd - p.backend_cost_usd - d.x['prior_gp_usd']
            end, 'Decimal128(18, 2)') as gross_profit_change_usd,
        d.x['pricing_usd'] as pricing_effect_usd,
        d.x['utilisation_usd'] as utilisation_effect_usd,
        d.x['backend_cost_usd'] as backend_cost_effect_usd,
        d.x['tier_mix_usd'] as tier_mix_effect_usd,
        d.x['refusal_reason'] as refusal_reason
    from per_quarter p
    join decomposed d
        on d.account_id = p.account_id and d.sku_id = p.sku_id and d.x['quarter'] = p.quarter
)

select * from final
