-- What recognition and billing may use: one row per account × SKU × source × metered period,
-- the current version, disputed rows excluded (SPEC §6, §7).
-- Most readers keep a recent window of it (the scores read the last 25 weeks of two years), so
-- their filters run while the table is decoded (pushdown_filters): the other columns are
-- decoded only for the rows in the window (usage_weekly at 100,000 accounts: 2.5 s → 1.7 s).
{{ config(order_by=['account_id', 'sku_id', 'period_start', 'source_system'], sort_in_ranges=4000000,
    pushdown_filters=true) }}

with final as (
    select
        usage_id,
        account_id,
        sku_id,
        sku_type,
        source_system,
        period_start,
        period_end,
        period_granularity,
        units_consumed,
        commit_units,
        overage_units,
        unit_price_usd,
        overage_unit_price_usd,
        seat_utilization_pct,
        record_version,
        audit_status,
        received_at
    from {{ ref('usage_current') }}
    where not is_disputed
)

select * from final
