-- Decision node channel.invest (Decision OS playbook 4.2, SPEC §13), on the metric layer's
-- latest trailing-quarter funnel figures per acquisition channel, against the pooled baseline:
--   invest: CAC/SQO ≤ baseline × channel_invest_cac_ratio_max and SQL→Win ≥ baseline +
--           channel_invest_win_uplift_pp → shift +channel_shift_budget_pct % budget to it
--   pause:  CAC/SQO ≥ baseline × channel_pause_cac_ratio_min or attribution validity <
--           channel_pause_validity_min
-- One row per channel, proposing or saying why not. Stale or blocked inputs propose nothing.
{{ config(tags=['decisions'], definition_version='1.0', blocked_inputs='last_good', order_by=['subject']) }}

with metrics as (
    select * from {{ ref('metrics_calc_log') }}
    where metric_name in ('cac_per_sqo', 'sql_to_win_pct', 'attribution_validity')
        and segment = 'ALL' and channel is not null
),

latest as (
    select * from metrics where period = (select max(period) from metrics)
),

channels as (
    select
        channel,
        max(period) as period,
        max(case when metric_name = 'cac_per_sqo' then metric_value end) as cac_per_sqo,
        max(case when metric_name = 'sql_to_win_pct' then metric_value end) as win_pct,
        max(case when metric_name = 'attribution_validity' then metric_value end) as validity,
        bool_or(stale) as stale,
        -- ordered: an aggregate's input order is the engine's (on a cluster, whichever task
        -- finishes first)
        string_agg(case when data_gap then metric_name || ': ' || data_gap_reason end, '; '
                   order by metric_name) as gaps
    from latest
    group by channel
),

judged as (
    select
        c.channel,
        c.period,
        c.cac_per_sqo,
        c.win_pct,
        c.validity,
        b.cac_per_sqo as base_cac_per_sqo,
        b.win_pct as base_win_pct,
        case
            when {{ input_status('metrics_calc_log') }} <> 'ok'
                then 'metrics_calc_log is blocked: ' || {{ blocked_reason('metrics_calc_log') }}
            when c.period is null then 'no funnel metrics in the metric layer'
            when c.stale or b.stale then 'stale inputs: ' || coalesce(c.gaps, b.gaps, 'a metric is stale')
            when c.cac_per_sqo is null or c.win_pct is null or c.validity is null
                or b.cac_per_sqo is null or b.win_pct is null
                then 'inputs missing: ' || coalesce(c.gaps, b.gaps, 'no value')
        end as unavailable
    from channels c
    cross join (select * from channels where channel = 'ALL') b
    where c.channel <> 'ALL'
),

decided as (
    select
        *,
        unavailable is null and (
            cac_per_sqo >= base_cac_per_sqo * {{ var('channel_pause_cac_ratio_min') }}
            or validity < {{ var('channel_pause_validity_min') }}
        ) as pause,
        unavailable is null and
            cac_per_sqo <= base_cac_per_sqo * {{ var('channel_invest_cac_ratio_max') }}
            and win_pct >= base_win_pct + {{ var('channel_invest_win_uplift_pp') }} as invest
    from judged
),

final as (
    select
        'channel.invest' as node,
        channel as subject,
        coalesce(pause or invest, false) as proposes,
        case
            when pause then 'pause channel ' || channel
            when invest then 'shift +{{ var('channel_shift_budget_pct') }} % budget to channel ' || channel
        end as chosen_action,
        case
            when unavailable is not null then unavailable
            when pause and validity < {{ var('channel_pause_validity_min') }}
                then 'attribution validity ' || cast(round(validity, 4) as varchar) || ' < {{ var('channel_pause_validity_min') }}'
            when pause then 'CAC/SQO ' || cast(round(cac_per_sqo / base_cac_per_sqo, 3) as varchar)
                || ' × baseline ≥ {{ var('channel_pause_cac_ratio_min') }}'
            when invest then 'CAC/SQO ' || cast(round(cac_per_sqo / base_cac_per_sqo, 3) as varchar)
                || ' × baseline and SQL→Win ' || cast(round(win_pct - base_win_pct, 2) as varchar) || ' pp above it'
            else 'within thresholds: CAC/SQO ' || cast(round(cac_per_sqo / base_cac_per_sqo, 3) as varchar)
                || ' × baseline, SQL→Win ' || cast(round(win_pct - base_win_pct, 2) as varchar) || ' pp vs baseline'
        end as reason,
        '{"period": "' || coalesce(cast(period as varchar), '') || '"'
            || ', "cac_per_sqo": ' || coalesce(cast(cac_per_sqo as varchar), 'null')
            || ', "baseline_cac_per_sqo": ' || coalesce(cast(base_cac_per_sqo as varchar), 'null')
            || ', "sql_to_win_pct": ' || coalesce(cast(win_pct as varchar), 'null')
            || ', "baseline_sql_to_win_pct": ' || coalesce(cast(base_win_pct as varchar), 'null')
            || ', "attribution_validity": ' || coalesce(cast(validity as varchar), 'null') || '}' as evidence,
        {{ definition_version }} as node_version,
        {{ build_id }} as build_id
    from decided
)

select * from final
