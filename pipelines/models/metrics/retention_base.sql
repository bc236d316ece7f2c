-- The audit trail of NRR and GRR (SPEC §8): one row per account in the base C of a period —
-- accounts with recurring revenue 12 months earlier — with that revenue (before_usd) and the
-- period's (now_usd; 0 for an account that churned). New logos have no row: they are not in C.
-- Monthly periods are months; quarterly periods compare a quarter's three months with the
-- same quarter a year earlier. Only periods that have ended by as_of.
{{ config(tags=['metrics'], order_by=['cadence', 'period', 'account_id']) }}

with revenue as (
    select account_id, segment, month, recurring_usd
    from {{ ref('metric_revenue') }}
),

periods as (
    select 'monthly' as cadence, account_id, segment, month as period, recurring_usd as usd
    from revenue
    union all
    select
        'quarterly' as cadence,
        account_id,
        segment,
        arrow_cast(date_trunc('quarter', month), 'Date32') as period,
        arrow_cast(sum(recurring_usd), 'Decimal128(18, 2)') as usd
    from revenue
    group by account_id, segment, arrow_cast(date_trunc('quarter', month), 'Date32')
),

base as (
    select
        cadence,
        account_id,
        segment,
        arrow_cast(period + interval '12 months', 'Date32') as period,
        usd as before_usd
    from periods
    where usd > 0
),

final as (
    select
        b.cadence,
        b.period,
        b.account_id,
        b.segment,
        b.before_usd,
        coalesce(p.usd, arrow_cast(0, 'Decimal128(18, 2)')) as now_usd
    from base b
    left join periods p
        on p.cadence = b.cadence and p.account_id = b.account_id and p.period = b.period
    where (b.cadence = 'monthly' and b.period + interval '1 month' <= {{ as_of_date }})
        or (b.cadence = 'quarterly' and b.period + interval '3 months' <= {{ as_of_date }})
)

select * from final
