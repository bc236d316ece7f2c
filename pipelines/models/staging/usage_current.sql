-- The default read path of the usage metering log: one row per account × SKU × source ×
-- metered period, at its latest accepted version (MAX(record_version), SPEC §6).
{{ config(materialized='view') }}

-- The latest version of each key as a hash aggregate joined back, not a window: the
-- contract's version_sequence rule leaves versions 1, 2, 3, … unique per key, so the row
-- with the key's highest record_version is exactly one, and no sort of the wide row is needed.
with latest as (
    select account_id, sku_id, period_start, period_end, source_system,
        max(record_version) as record_version
    from {{ source('snapshot', 'usage_metering_log') }}
    group by account_id, sku_id, period_start, period_end, source_system
),

versions as (
    select u.*
    from {{ source('snapshot', 'usage_metering_log') }} u
    join latest l
        on u.account_id = l.account_id
        and u.sku_id = l.sku_id
        and u.period_start = l.period_start
        and u.period_end = l.period_end
        and u.source_system = l.source_system
        and u.record_version = l.record_version
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
)

select * from final
