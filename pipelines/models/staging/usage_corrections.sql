-- The metered periods that were corrected (a row above version 1, SPEC §6), each at its latest
-- version: the rows usage_current takes instead of those periods' version 1. Corrections are
-- rare (208 of 6.6 M rows at 10,000 accounts), and stored as a table the engine knows this one
-- is small, so usage_current builds its hash tables on it and never on the whole log.
{{ config(order_by=['account_id', 'sku_id', 'period_start', 'period_end', 'source_system']) }}

with corrected as (
    select *
    from {{ source('snapshot', 'usage_metering_log') }}
    where record_version > 1
),

-- The contract's version_sequence rule leaves a period's versions unique: one row is the
-- highest. (Its version 1, superseded, never is the latest.)
latest as (
    select account_id, sku_id, period_start, period_end, source_system,
        max(record_version) as record_version
    from corrected
    group by account_id, sku_id, period_start, period_end, source_system
),

final as (
    select c.*
    from corrected c
    join latest l
        on c.account_id = l.account_id
        and c.sku_id = l.sku_id
        and c.period_start = l.period_start
        and c.period_end = l.period_end
        and c.source_system = l.source_system
        and c.record_version = l.record_version
)

select * from final
