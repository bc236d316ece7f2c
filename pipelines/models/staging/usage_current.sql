-- The default read path of the usage metering log: one row per account × SKU × source ×
-- metered period, at its latest accepted version (MAX(record_version), SPEC §6).
{{ config(materialized='view') }}

-- The latest version of each metered period, without grouping or joining the whole log on
-- itself (at 66 M rows, a hash table of every period outgrew a 4 GiB budget). The contract's
-- version_sequence rule leaves a period's accepted versions unique, so a period that was never
-- corrected has one row at version 1, its latest; the corrected ones, at their latest version,
-- are usage_corrections (a small table: the anti join builds its hash table on it).
with versions as (
    select u.*
    from {{ source('snapshot', 'usage_metering_log') }} u
    left anti join {{ ref('usage_corrections') }} c
        on u.account_id = c.account_id
        and u.sku_id = c.sku_id
        and u.period_start = c.period_start
        and u.period_end = c.period_end
        and u.source_system = c.source_system
    where u.record_version <= 1
    union all
    select * exclude (build_id)
    from {{ ref('usage_corrections') }}
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
