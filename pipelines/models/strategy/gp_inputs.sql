-- TOOL-015's inputs (gp_decomposition reads them): per customer × metered SKU × complete
-- quarter × deployment tier, what the decomposition works on —
--   revenue_usd           the quarter's recognised consumption revenue (commit plus overage), as
--                         the books carry it in revenue_recognition_log and the metric layer
--                         reads it: prior-period adjustments and restatements kept out
--   billed_units          Σ each order line's monthly revenue ÷ its list unit price
--   months_without_cost   months of the quarter with consumption revenue and no backend_costs
--                         rows (the feed did not deliver them; a month served at no cost comes
--                         as rows with zero cost)
--   tier, units, cost_usd the backend_costs of the quarter on that tier (no row: no cost at all)
-- The quarter's revenue fields repeat on each of its tier rows.
{{ config(tags=['strategy'], order_by=['account_id', 'sku_id', 'quarter', 'tier']) }}

with covered as (
    select distinct account_id, sku_id, month
    from {{ source('snapshot', 'backend_costs') }}
),

quarters as (
    select
        r.account_id,
        l.sku_id,
        quarter_number(r.month) as quarter,
        sum(r.recognized_usd) as revenue_usd,
        -- in whole millionths summed as integers: the same sum in any order, on any engine
        sum(arrow_cast(round(1000000 * arrow_cast(r.recognized_usd, 'Float64')
            / arrow_cast(l.unit_price_usd, 'Float64')), 'Int64')) / 1000000.0 as billed_units,
        arrow_cast(count(distinct case when c.month is null then r.month end), 'Int32') as months_without_cost
    from {{ ref('revenue_recognition_log') }} r
    join {{ ref('recognition_lines') }} l on l.order_line_id = r.order_line_id
    left join covered c
        on c.account_id = r.account_id and c.sku_id = l.sku_id and c.month = r.month
    where l.sku_type = 'consumption'
        and l.unit_price_usd > 0
        and not r.prior_period_adjustment
        and not r.restatement_flag
        -- complete quarters only: all three months ended by as_of
        and date_of_quarter_number(quarter_number(r.month) + 1) <= {{ as_of_date }}
    group by r.account_id, l.sku_id, quarter_number(r.month)
),

tiers as (
    select
        account_id,
        sku_id,
        quarter_number(month) as quarter,
        deployment_tier as tier,
        sum(units) as units,
        sum(backend_cost_usd) as cost_usd
    from {{ source('snapshot', 'backend_costs') }}
    group by account_id, sku_id, quarter_number(month), deployment_tier
)

select
    q.account_id,
    q.sku_id,
    q.quarter,
    q.revenue_usd,
    q.billed_units,
    q.months_without_cost,
    t.tier,
    t.units,
    t.cost_usd
from quarters q
left join tiers t
    on t.account_id = q.account_id and t.sku_id = q.sku_id and t.quarter = q.quarter
