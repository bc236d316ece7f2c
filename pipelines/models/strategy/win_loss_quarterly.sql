-- Win rate, cycle length and loss reasons by segment and close quarter (AGT-703, for
-- win_loss_strategy_view and the strategy brain AGT-903), over the opportunities closed before
-- as_of in the last var('strategy_quarters') quarters, each segment and ALL:
--   win_rate_pct        won ÷ (won + lost), in %
--   avg_cycle_days_won  mean of close_date − created_date over the won, in days
--   won_amount_usd      Σ amount of the won
--   loss_reason_1..3    the most frequent loss reasons of the lost (ties by name), with counts;
--                       a lost opportunity without a reason counts as 'unspecified'
-- Forecast bias is not computed: the snapshot keeps each opportunity's current
-- forecast_category only, not the forecasts submitted during the quarter, so there is no
-- forecast to compare the outcome with. forecast_bias_pct is null and says so, every row.
{{ config(tags=['strategy'], order_by=['quarter', 'segment']) }}

with closed as (
    select
        o.opp_id,
        a.segment,
        date_of_quarter_number(quarter_number(o.close_date)) as quarter,
        o.stage = 'closed_won' as won,
        o.amount_usd,
        day_number(o.close_date) - day_number(o.created_date) as cycle_days,
        coalesce(o.loss_reason, 'unspecified') as loss_reason
    from {{ source('snapshot', 'opportunities') }} o
    join {{ source('snapshot', 'accounts') }} a on a.account_id = o.account_id
    where o.stage in ('closed_won', 'closed_lost')
        and o.close_date < {{ as_of_date }}
        -- the last var('strategy_quarters') quarters
        and quarter_number(o.close_date) >= quarter_number({{ as_of_date }}) - {{ var('strategy_quarters') }}
),

segmented as (
    select * from closed
    union all
    select opp_id, 'ALL', quarter, won, amount_usd, cycle_days, loss_reason from closed
),

totals as (
    select
        quarter,
        segment,
        count(case when won then 1 end) as won,
        count(case when not won then 1 end) as lost,
        avg(case when won then cycle_days end) as avg_cycle_days_won,
        sum(case when won then amount_usd end) as won_amount_usd
    from segmented
    group by quarter, segment
),

reasons as (
    select
        quarter,
        segment,
        loss_reason,
        count(*) as lost,
        row_number() over (partition by quarter, segment order by count(*) desc, loss_reason) as rank
    from segmented
    where not won
    group by quarter, segment, loss_reason
)

select
    t.quarter,
    t.segment,
    t.won + t.lost as opportunities_closed,
    t.won,
    t.lost,
    round(100.0 * t.won / (t.won + t.lost), 2) as win_rate_pct,
    round(t.avg_cycle_days_won, 1) as avg_cycle_days_won,
    arrow_cast(coalesce(t.won_amount_usd, 0), 'Decimal128(18, 2)') as won_amount_usd,
    r1.loss_reason as loss_reason_1,
    r1.lost as loss_reason_1_count,
    r2.loss_reason as loss_reason_2,
    r2.lost as loss_reason_2_count,
    r3.loss_reason as loss_reason_3,
    r3.lost as loss_reason_3_count,
    arrow_cast(null, 'Float64') as forecast_bias_pct,
    'unavailable: the snapshot keeps only each opportunity''s current forecast_category, not the forecasts submitted during the quarter' as forecast_bias_note
from totals t
left join reasons r1 on r1.quarter = t.quarter and r1.segment = t.segment and r1.rank = 1
left join reasons r2 on r2.quarter = t.quarter and r2.segment = t.segment and r2.rank = 2
left join reasons r3 on r3.quarter = t.quarter and r3.segment = t.segment and r3.rank = 3
