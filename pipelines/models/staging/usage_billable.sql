-- What recognition and billing may use: one row per account × SKU × source × metered period,
-- the current version, disputed rows excluded (SPEC §6, §7).
{{ config(order_by=['account_id', 'sku_id', 'period_start', 'source_system'], sort_in_ranges=4000000) }}

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
