-- The default read path of the usage metering log: one row per account × SKU × source ×
-- metered period, at its latest accepted version (MAX(record_version), SPEC §6).
{{ config(materialized='view') }}

with versions as (
    select
        *,
        row_number() over (
            partition by account_id, sku_id, period_start, period_end, source_system
            order by record_version desc
        ) as version_rank
    from {{ source('snapshot', 'usage_metering_log') }}
),

final as (
    select
        -- ids
        usage_id,
        account_id,
        sku_id,
        sku_type,
        source_system,
        ingest_event_id,
        -- period
        period_start,
        period_end,
        period_granularity,
        -- measures
        units_consumed,
        commit_units,
        overage_units,
        unit_price_usd,
        overage_unit_price_usd,
        seat_utilization_pct,
        -- lineage
        record_version,
        prior_version_id,
        correction_reason,
        audit_status,
        audit_status = 'disputed' as is_disputed,
        -- timestamps
        received_at,
        effective_at
    from versions
    where version_rank = 1
)

select * from final
