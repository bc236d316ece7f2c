-- The usage path of `gtmos build` — the usage log's contract, `usage_current` and
-- `usage_billable` with their data tests — written for DuckDB as an expert would: rules over
-- narrow projections, each row's position from the Parquet reader (`file_row_number`), hash
-- aggregates where order does not matter, a window only where it does. Hand-written; run by
-- `cargo bench --bench usage_path` over the same Parquet files as gtmos, and its outputs
-- (usage_billable, the quarantined rows with their rule) compared with gtmos' row for row.
-- ${SNAPSHOT}: the corpus; ${INPUTS}: the checked accounts, orders and order lines;
-- ${AS_OF}: the snapshot's as_of; ${OUT}: where to write.
SET TimeZone = 'UTC';
-- phase contract
CREATE VIEW raw AS
SELECT * EXCLUDE (file_row_number), file_row_number AS rid
FROM read_parquet('${SNAPSHOT}/usage_metering_log.parquet', file_row_number = true);
-- phase contract
CREATE TEMP TABLE account_keys AS
SELECT DISTINCT account_id FROM read_parquet('${INPUTS}/accounts.parquet');
-- phase contract
CREATE TEMP TABLE active_terms AS
SELECT l.account_id, l.sku_id, o.term_start, o.term_end
FROM read_parquet('${INPUTS}/order_lines.parquet') l
JOIN read_parquet('${INPUTS}/orders.parquet') o USING (order_id)
WHERE o.status = 'active';
-- phase contract
-- A NaN or infinite measurement would be dead-lettered before the rules (gtmos counts them).
SELECT count(*) FROM raw
WHERE NOT (isfinite(units_consumed) AND isfinite(commit_units) AND isfinite(overage_units)
           AND isfinite(seat_utilization_pct));
-- phase contract
-- unmatched_usage: usage whose period starts in no active term of its account and SKU.
CREATE TEMP TABLE unmatched AS
SELECT DISTINCT u.usage_id FROM raw u
ANTI JOIN active_terms r
  ON u.account_id = r.account_id AND u.sku_id = r.sku_id
  AND CAST(u.period_start AS DATE) >= r.term_start AND CAST(u.period_start AS DATE) < r.term_end
WHERE u.usage_id IS NOT NULL;
-- phase contract
-- The row rules in declared order: the first one each failing row fails.
CREATE TEMP TABLE flags AS
SELECT rid, pos FROM (
  SELECT u.rid, CASE
    WHEN u.usage_id IS NULL THEN 0
    WHEN u.account_id IS NULL THEN 1
    WHEN k.account_id IS NULL THEN 2
    WHEN u.sku_id IS NULL THEN 3
    WHEN u.sku_type IS NULL THEN 4
    WHEN u.sku_type NOT IN ('consumption', 'seat', 'hybrid') THEN 5
    WHEN u.period_start IS NULL THEN 6
    WHEN u.period_end IS NULL THEN 7
    WHEN u.period_granularity IS NULL THEN 8
    WHEN u.period_granularity NOT IN ('day', 'month') THEN 9
    WHEN u.units_consumed IS NULL THEN 10
    WHEN u.units_consumed < 0 OR NOT isfinite(u.units_consumed) THEN 11
    WHEN u.commit_units IS NULL THEN 12
    WHEN u.overage_units IS NULL THEN 13
    WHEN u.unit_price_usd IS NULL THEN 14
    WHEN u.seat_utilization_pct < 0 OR u.seat_utilization_pct > 100
      OR NOT isfinite(u.seat_utilization_pct) THEN 15
    WHEN u.source_system IS NULL THEN 16
    WHEN u.ingest_event_id IS NULL THEN 17
    WHEN u.ingest_batch_id IS NULL THEN 18
    WHEN u.received_at IS NULL THEN 19
    WHEN u.effective_at IS NULL THEN 20
    WHEN u.record_version IS NULL THEN 21
    WHEN u.audit_status IS NULL THEN 22
    WHEN u.audit_status NOT IN ('pending_recon', 'verified', 'disputed') THEN 23
    WHEN NOT (u.period_end > u.period_start) THEN 24
    WHEN NOT (u.period_end <= TIMESTAMPTZ '${AS_OF}') THEN 25
    WHEN m.usage_id IS NOT NULL THEN 28
  END AS pos
  FROM raw u
  LEFT JOIN account_keys k ON u.account_id = k.account_id
  LEFT JOIN unmatched m ON u.usage_id = m.usage_id
) WHERE pos IS NOT NULL;
-- phase contract
-- duplicate_event: of the rows still in the flow, every copy of a (source_system,
-- ingest_event_id) but the first received (ties by usage_id, then position).
CREATE TEMP TABLE replays AS
WITH s AS (
  SELECT rid, source_system, ingest_event_id, received_at, usage_id FROM raw
  WHERE rid NOT IN (SELECT rid FROM flags WHERE pos < 26)
),
firsts AS (
  SELECT source_system, ingest_event_id, min_by(rid, (received_at, usage_id, rid)) AS keep
  FROM s GROUP BY ALL HAVING count(*) > 1
)
SELECT s.rid FROM s JOIN firsts f USING (source_system, ingest_event_id) WHERE s.rid <> f.keep;
-- phase contract
-- non_monotonic_version: within a metered period, versions 1, 2, 3, … in order received.
CREATE TEMP TABLE bad_versions AS
SELECT rid FROM (
  SELECT rid, record_version,
    row_number() OVER (PARTITION BY account_id, sku_id, period_start, period_end, source_system
                       ORDER BY received_at, usage_id, rid) AS n
  FROM raw
  WHERE rid NOT IN (SELECT rid FROM flags WHERE pos < 27) AND rid NOT IN (SELECT rid FROM replays)
) WHERE record_version <> n;
-- phase contract
CREATE TEMP TABLE labels AS
SELECT rid, min(pos) AS pos FROM (
  SELECT rid, pos FROM flags
  UNION ALL SELECT rid, 26 FROM replays
  UNION ALL SELECT rid, 27 FROM bad_versions
) GROUP BY rid;
-- phase contract
CREATE TEMP TABLE rule_names AS SELECT * FROM (VALUES
  (0, 'not_null_usage_id'), (1, 'not_null_account_id'), (2, 'orphan_account_id'),
  (3, 'not_null_sku_id'), (4, 'not_null_sku_type'), (5, 'enum_integrity'),
  (6, 'not_null_period_start'), (7, 'not_null_period_end'), (8, 'not_null_period_granularity'),
  (9, 'enum_integrity'), (10, 'not_null_units_consumed'), (11, 'negative_units'),
  (12, 'not_null_commit_units'), (13, 'not_null_overage_units'), (14, 'not_null_unit_price_usd'),
  (15, 'seat_utilization_out_of_range'), (16, 'not_null_source_system'),
  (17, 'missing_ingest_event_id'), (18, 'not_null_ingest_batch_id'), (19, 'not_null_received_at'),
  (20, 'not_null_effective_at'), (21, 'not_null_record_version'), (22, 'not_null_audit_status'),
  (23, 'enum_integrity'), (24, 'inverted_period'), (25, 'future_dated_period'),
  (26, 'duplicate_event'), (27, 'non_monotonic_version'), (28, 'unmatched_usage')
) v(pos, rule);
-- phase contract
COPY (SELECT u.* EXCLUDE (rid) FROM raw u ANTI JOIN labels l USING (rid))
TO '${OUT}/usage_metering_log.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
-- phase contract
COPY (SELECT u.* EXCLUDE (rid), n.rule FROM raw u JOIN labels l USING (rid) JOIN rule_names n USING (pos))
TO '${OUT}/quarantine.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
-- phase contract
-- The checks on the accepted rows: unique_usage_id, late_arrival, effective_at_drift ...
CREATE VIEW accepted AS SELECT * FROM read_parquet('${OUT}/usage_metering_log.parquet');
-- phase contract
SELECT
  (SELECT count(*) FROM accepted
   WHERE usage_id IN (SELECT usage_id FROM accepted GROUP BY usage_id HAVING count(*) > 1)),
  count(*) FILTER (WHERE record_version = 1 AND received_at > period_end + INTERVAL 24 HOURS),
  count(*) FILTER (WHERE NOT (effective_at BETWEEN period_start AND period_end))
FROM accepted;
-- phase contract
-- ... and usage_anomaly: units above 10× the median of the account × SKU × source's previous
-- 30 days (at least 7 readings).
SELECT count(*) FROM (
  SELECT units_consumed,
    CASE WHEN count(units_consumed) OVER w >= 7 THEN median(units_consumed) OVER w END AS med
  FROM accepted
  WINDOW w AS (PARTITION BY account_id, sku_id, source_system ORDER BY period_start
               RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING)
) WHERE NOT (units_consumed <= 10 * coalesce(med, units_consumed));
-- phase usage_current
-- usage_current: each metered period's latest version (a view, as in gtmos) and its test.
CREATE VIEW usage_current AS
SELECT u.*, u.audit_status = 'disputed' AS is_disputed FROM accepted u
SEMI JOIN (
  SELECT account_id, sku_id, period_start, period_end, source_system,
         max(record_version) AS record_version
  FROM accepted GROUP BY ALL
) l USING (account_id, sku_id, period_start, period_end, source_system, record_version);
-- phase usage_current
SELECT count(*) FROM usage_current
WHERE usage_id IN (SELECT usage_id FROM usage_current GROUP BY usage_id HAVING count(*) > 1);
-- phase usage_billable
-- usage_billable: sorted as gtmos publishes it, then its four tests.
COPY (
  SELECT usage_id, account_id, sku_id, sku_type, source_system, period_start, period_end,
         period_granularity, units_consumed, commit_units, overage_units, unit_price_usd,
         overage_unit_price_usd, seat_utilization_pct, record_version, audit_status, received_at
  FROM usage_current WHERE NOT is_disputed
  ORDER BY account_id, sku_id, period_start, source_system
) TO '${OUT}/usage_billable.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
-- phase usage_billable
CREATE VIEW billable AS SELECT * FROM read_parquet('${OUT}/usage_billable.parquet');
-- phase usage_billable
SELECT
  count(*) FILTER (WHERE usage_id IS NULL),
  (SELECT count(*) FROM billable
   WHERE usage_id IN (SELECT usage_id FROM billable GROUP BY usage_id HAVING count(*) > 1)),
  count(*) FILTER (WHERE audit_status NOT IN ('pending_recon', 'verified')),
  (SELECT count(*) FROM (SELECT account_id, sku_id, source_system, period_start, period_end
                         FROM billable GROUP BY ALL HAVING count(*) > 1))
FROM billable;
