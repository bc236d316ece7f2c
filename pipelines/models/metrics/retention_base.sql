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

-- each period's revenue as the "now" of its own period and, when positive, as the "before" of
-- the period 12 months later: one pass over the periods and one aggregate, where a base joined
-- back to the periods would compute them twice. The same rows as that join, as an account's
-- periods are unique (metric_revenue's blocking key test on account_id, month; its account_id
-- comes from the revenue log's, never null).
sides as (
    select
        p.cadence,
        p.account_id,
        p.segment,
        case when s.is_before then arrow_cast(p.period + interval '12 months', 'Date32') else p.period end as period,
        case when not s.is_before then p.usd end as now_usd,
        case when s.is_before and p.usd > 0 then p.usd end as before_usd
    from periods p
    cross join (values (false), (true)) s(is_before)
),

final as (
    select
        cadence,
        period,
        account_id,
        max(case when before_usd is not null then segment end) as segment,
        max(before_usd) as before_usd,
        coalesce(max(now_usd), arrow_cast(0, 'Decimal128(18, 2)')) as now_usd
    from sides
    group by cadence, period, account_id
    having max(before_usd) is not null
        and ((cadence = 'monthly' and period + interval '1 month' <= {{ as_of_date }})
            or (cadence = 'quarterly' and period + interval '3 months' <= {{ as_of_date }}))
)

select * from final
