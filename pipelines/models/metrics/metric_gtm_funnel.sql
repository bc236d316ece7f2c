-- Funnel metrics the Decision OS playbooks read (SPEC §13), monthly on the trailing three
-- months ending with the month (all months ended by as_of):
--   cac_per_sqo           per acquisition channel: sales + marketing spend of the channel ÷
--                         new-logo opportunities created from its accounts (the SQOs)
--   sql_to_win_pct        per channel and per segment: closed-won ÷ (closed-won + closed-lost)
--                         of new-logo opportunities closed in the window, in percent
--   attribution_validity  per channel: share of the window's opportunities that are fully
--                         attributable (owner, amount and an account with a known channel);
--                         opportunities quarantined by the contracts never reach this count
-- Channel rows have segment ALL; channel ALL is the pooled baseline.
{{ config(tags=['metrics'], definition_version='1', order_by=['metric_name', 'period', 'segment', 'channel']) }}

with opportunities as materialized (
    select
        coalesce(a.acquisition_channel, 'unknown') as channel,
        coalesce(a.segment, 'unknown') as segment,
        o.opp_type,
        o.stage,
        o.created_date,
        o.close_date,
        case when o.owner_rep_id is not null and o.amount_usd is not null
            and a.acquisition_channel is not null then 1 else 0 end as attributable
    from {{ source('snapshot', 'opportunities') }} o
    left join {{ source('snapshot', 'accounts') }} a on a.account_id = o.account_id
),

months as (
    select distinct arrow_cast(date_trunc('month', created_date), 'Date32') as month
    from opportunities
    where created_date < arrow_cast(date_trunc('month', {{ as_of_date }}), 'Date32')
),

spans as (
    select month, arrow_cast(month - interval '2 months', 'Date32') as window_start,
        arrow_cast(month + interval '1 month', 'Date32') as window_end
    from months
    where month >= (select arrow_cast(min(month) + interval '2 months', 'Date32') from months)
),

-- Per channel, segment and month: opportunities created, and new-logo ones closed; a window is
-- three whole months, so its counts are sums of these.
monthly as materialized (
    select channel, segment, month,
        sum(sqos) as sqos, sum(won) as won, sum(lost) as lost,
        sum(attributable) as attributable, sum(created) as created
    from (
        select channel, segment, arrow_cast(date_trunc('month', created_date), 'Date32') as month,
            case when opp_type = 'new_logo' then 1 else 0 end as sqos, 0 as won, 0 as lost,
            attributable, 1 as created
        from opportunities
        union all
        select channel, segment, arrow_cast(date_trunc('month', close_date), 'Date32'), 0,
            case when opp_type = 'new_logo' and stage = 'closed_won' then 1 else 0 end,
            case when opp_type = 'new_logo' and stage = 'closed_lost' then 1 else 0 end,
            0, 0
        from opportunities
        where close_date is not null
    ) x
    group by channel, segment, month
),

by_channel as (
    select
        w.month,
        c.channel,
        coalesce(sum(m.sqos), 0) as sqos,
        coalesce(sum(m.won), 0) as won,
        coalesce(sum(m.lost), 0) as lost,
        coalesce(sum(m.attributable), 0) as attributable,
        coalesce(sum(m.created), 0) as created
    from spans w
    cross join (select distinct channel from opportunities) c
    left join monthly m
        on m.channel = c.channel and m.month >= w.window_start and m.month < w.window_end
    group by w.month, c.channel
),

by_segment as (
    select
        w.month,
        g.segment,
        coalesce(sum(m.won), 0) as won,
        coalesce(sum(m.lost), 0) as lost
    from spans w
    cross join (select distinct segment from opportunities) g
    left join monthly m
        on m.segment = g.segment and m.month >= w.window_start and m.month < w.window_end
    group by w.month, g.segment
),

spend as (
    select w.month, s.channel, sum(s.amount_usd) as usd
    from spans w
    join {{ ref('spend_by_month') }} s
        on s.month >= w.window_start and s.month < w.window_end
    where s.category in ('sales', 'marketing')
    group by w.month, s.channel
),

channels as (
    select c.month, c.channel, c.sqos, c.won, c.lost, c.attributable, c.created, s.usd as spend_usd
    from by_channel c
    left join spend s on s.month = c.month and s.channel = c.channel
    union all
    select c.month, 'ALL', c.sqos, c.won, c.lost, c.attributable, c.created, s.usd
    from (
        select month, sum(sqos) as sqos, sum(won) as won, sum(lost) as lost,
            sum(attributable) as attributable, sum(created) as created
        from by_channel
        group by month
    ) c
    left join (select month, sum(usd) as usd from spend group by month) s on s.month = c.month
),

metrics as (
    select 'cac_per_sqo' as metric_name, month, 'ALL' as segment, channel,
        cast(spend_usd as double) as numerator, cast(sqos as double) as denominator,
        case when spend_usd is null then 'no sales and marketing spend recorded for the channel'
            when sqos = 0 then 'no new-logo opportunities created in the window' end as gap
    from channels
    union all
    select 'sql_to_win_pct', month, 'ALL', channel, cast(won as double), cast(won + lost as double),
        case when won + lost = 0 then 'no new-logo opportunity closed in the window' end
    from channels
    union all
    select 'attribution_validity', month, 'ALL', channel, cast(attributable as double), cast(created as double),
        case when created = 0 then 'no opportunity created in the window' end
    from channels
    union all
    select 'sql_to_win_pct', month, segment, cast(null as varchar), cast(won as double), cast(won + lost as double),
        case when won + lost = 0 then 'no new-logo opportunity closed in the window' end
    from by_segment
    union all
    select 'sql_to_win_pct', month, 'ALL', cast(null as varchar), cast(sum(won) as double), cast(sum(won + lost) as double),
        case when sum(won + lost) = 0 then 'no new-logo opportunity closed in the window' end
    from by_segment
    group by month
),

final as (
    select
        'monthly' as cadence,
        metric_name,
        month as period,
        segment,
        channel,
        cast(null as date) as cohort_month,
        case when gap is null then
            -- scaled before dividing: 100 × 12 ÷ 20 is exactly 60, 12 ÷ 20 × 100 is not
            numerator * case when metric_name = 'sql_to_win_pct' then 100 else 1 end / denominator
        end as metric_value,
        numerator,
        denominator,
        gap is not null as data_gap,
        gap as data_gap_reason,
        '{"window_months": 3}' as detail,
        cast(null as varchar) as plan_metric,
        cast(null as varchar) as plan_grain,
        cast(null as date) as plan_period,
        {{ definition_version }} as definition_version,
        {{ build_id }} as build_id
    from metrics
    where segment <> 'unknown' and coalesce(channel, '') <> 'unknown'
)

select * from final
