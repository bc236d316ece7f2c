-- Pricing evidence for the pricing.change playbook (SPEC §13), one row per segment × price
-- test (period = the test's first month), from `price_tests` and the gross margin:
--   price_elasticity        E = %Δ seats per account ÷ %Δ price (numerator, denominator)
--   cm_per_seat_usd         contribution margin per seat-month at list: P × GM
--   cm_per_seat_uplift_usd  projected change of CM per current seat if the tested price is
--                           adopted: (P(1+p) − C)(1 + E·p) − (P − C), C = P × (1 − GM)
-- GM is the latest quarter of `financials` starting at or before the test.
{{ config(tags=['metrics'], definition_version='1', order_by=['metric_name', 'period', 'segment']) }}

with tests as (
    select
        t.*,
        cast(t.list_price_usd as double) as price,
        t.price_change_pct / 100 as p,
        (cast(t.test_seats as double) / t.test_accounts)
            / (cast(t.control_seats as double) / t.control_accounts) - 1 as seat_change,
        row_number() over (partition by t.segment, t.start_date order by t.test_id desc) as rank
    from {{ source('snapshot', 'price_tests') }} t
    where t.end_date <= {{ as_of_date }}
),

margins as (
    select test_id, gm_pct
    from (
        select
            t.test_id,
            f.gross_margin_pct as gm_pct,
            row_number() over (partition by t.test_id order by f.quarter_start desc) as rank
        from tests t
        join {{ source('snapshot', 'financials') }} f on f.quarter_start <= t.start_date
    ) x
    where rank = 1
),

judged as (
    select
        t.test_id, t.segment, t.start_date, t.price, t.p, t.price_change_pct, t.seat_change,
        m.gm_pct,
        t.seat_change / t.p as elasticity,
        t.price * m.gm_pct / 100 as cm,
        (t.price * (1 + t.p) - t.price * (1 - m.gm_pct / 100)) * (1 + (t.seat_change / t.p) * t.p)
            - t.price * m.gm_pct / 100 as uplift
    from tests t
    left join margins m on m.test_id = t.test_id
    where t.rank = 1
),

metrics as (
    select 'price_elasticity' as metric_name, *, elasticity as value,
        seat_change * 100 as num, price_change_pct as den, cast(null as varchar) as gap
    from judged
    union all
    select 'cm_per_seat_usd', *, cm as value, price as num, gm_pct as den,
        case when gm_pct is null then 'no gross margin in financials at or before the test' end
    from judged
    union all
    select 'cm_per_seat_uplift_usd', *, uplift as value, uplift as num, cast(null as double) as den,
        case when gm_pct is null then 'no gross margin in financials at or before the test' end
    from judged
),

final as (
    select
        'monthly' as cadence,
        metric_name,
        arrow_cast(date_trunc('month', start_date), 'Date32') as period,
        segment,
        cast(null as varchar) as channel,
        cast(null as date) as cohort_month,
        case when gap is null then value end as metric_value,
        num as numerator,
        den as denominator,
        gap is not null as data_gap,
        gap as data_gap_reason,
        '{"test_id": "' || test_id || '", "price_change_pct": ' || cast(price_change_pct as varchar)
            || ', "list_price_usd": ' || cast(price as varchar) || '}' as detail,
        cast(null as varchar) as plan_metric,
        cast(null as varchar) as plan_grain,
        cast(null as date) as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from metrics
)

select * from final
