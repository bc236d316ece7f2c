-- The recognition stage of `gtmos build` (pipelines/models/recognition/, no closed periods),
-- written by hand in DuckDB SQL over the same inputs: the checked sources in ${INPUTS}/ and
-- the published usage_billable. Run by `cargo bench --bench recognition` through
-- benches/run_duckdb.py; ${INPUTS}, ${OUT}, ${AS_OF_DATE} and ${METHOD} are substituted.
-- The ratable schedule (gtmos' Rust kernel ratable_schedule) and money_mul are expressed in
-- exact integer arithmetic: cents, half away from zero, remainder to the final month.
SET TimeZone = 'UTC';

CREATE TEMP VIEW recognition_lines AS
SELECT l.order_line_id, l.order_id, l.account_id, l.sku_id, l.sku_type, l.quantity,
       l.unit_price_usd, l.overage_unit_price_usd, l.line_amount_usd,
       o.order_date, o.term_start, o.term_end
FROM read_parquet('${INPUTS}/order_lines.parquet') l
JOIN read_parquet('${INPUTS}/orders.parquet') o ON o.order_id = l.order_id
WHERE o.status = 'active';

CREATE TEMP TABLE revenue_schedule AS
WITH lines AS (
    SELECT *,
        CASE WHEN sku_type = 'seat' THEN '${METHOD}' ELSE 'monthly_prorated' END AS method,
        CAST(line_amount_usd * 100 AS HUGEINT) AS cents
    FROM recognition_lines
    WHERE sku_type IN ('seat', 'consumption') AND term_end > term_start
),
months AS (
    SELECT *, CAST(unnest(generate_series(date_trunc('month', term_start),
                                          date_trunc('month', term_end - 1), INTERVAL 1 MONTH)) AS DATE) AS month
    FROM lines
),
days AS (
    SELECT *,
        CAST(least(term_end, CAST(month + INTERVAL 1 MONTH AS DATE)) - greatest(term_start, month) AS HUGEINT) AS days,
        CAST(CAST(month + INTERVAL 1 MONTH AS DATE) - month AS HUGEINT) AS dim
    FROM months
),
weighted AS (
    SELECT *,
        CASE WHEN method = 'daily' THEN days
             ELSE days * CAST(product(CASE WHEN days <> dim THEN dim ELSE 1 END) OVER (PARTITION BY order_line_id) AS HUGEINT) // dim
        END AS weight
    FROM days
),
parts AS (
    SELECT *,
        sign(cents * weight) * ((2 * abs(cents * weight) + sum(weight) OVER w) // (2 * sum(weight) OVER w)) AS part,
        month = max(month) OVER w AS is_last
    FROM weighted
    WINDOW w AS (PARTITION BY order_line_id)
)
SELECT order_line_id, order_id, account_id, sku_id, sku_type, quantity, overage_unit_price_usd,
       order_date, term_start, term_end, method, month,
       CAST(CAST(CASE WHEN is_last THEN cents - (sum(part) OVER (PARTITION BY order_line_id) - part) ELSE part END AS DECIMAL(18, 0)) * 0.01 AS DECIMAL(18, 2)) AS scheduled_usd
FROM parts;

CREATE TEMP TABLE consumption_usage_monthly AS
SELECT l.order_line_id, CAST(date_trunc('month', CAST(u.period_start AS DATE)) AS DATE) AS month,
       sum(u.units_consumed) AS units
FROM read_parquet('${INPUTS}/usage_billable.parquet') u
JOIN (SELECT order_line_id, account_id, sku_id, term_start, term_end FROM recognition_lines WHERE sku_type = 'consumption') l
  ON l.account_id = u.account_id AND l.sku_id = u.sku_id
 AND CAST(u.period_start AS DATE) >= l.term_start AND CAST(u.period_start AS DATE) < l.term_end
GROUP BY 1, 2;

CREATE TEMP TABLE revenue_recognition_log AS
WITH schedule AS (
    SELECT * FROM revenue_schedule WHERE CAST(month + INTERVAL 1 MONTH AS DATE) <= DATE '${AS_OF_DATE}'
),
consumption AS (
    SELECT s.*,
        s.quantity * (least(s.term_end, CAST(s.month + INTERVAL 1 MONTH AS DATE)) - greatest(s.term_start, s.month))
            // (CAST(s.month + INTERVAL 1 MONTH AS DATE) - s.month) AS commit_units,
        coalesce(u.units, 0) AS units
    FROM schedule s
    LEFT JOIN consumption_usage_monthly u ON u.order_line_id = s.order_line_id AND u.month = s.month
    WHERE s.sku_type = 'consumption'
),
overage AS (
    SELECT *,
        CAST(round(greatest(units - commit_units, 0) * 1e9) AS HUGEINT)
            * CAST(overage_unit_price_usd * 1000000 AS HUGEINT) AS nano_micros
    FROM consumption
),
current_books AS (
    SELECT account_id, order_line_id, sku_type, month, CAST(scheduled_usd AS DECIMAL(18, 2)) AS recognized_usd, method
    FROM schedule WHERE sku_type = 'seat'
    UNION ALL
    SELECT account_id, order_line_id, sku_type, month,
        CAST(scheduled_usd + coalesce(CAST(sign(nano_micros) * ((2 * abs(nano_micros) + 10000000000000) // 20000000000000) AS DECIMAL(18, 0)) * 0.01, 0) AS DECIMAL(18, 2)),
        'consumption'
    FROM overage
    UNION ALL
    SELECT l.account_id, l.order_line_id, l.sku_type, CAST(date_trunc('month', m.sign_off_date) AS DATE), m.amount_usd, 'milestone_sign_off'
    FROM read_parquet('${INPUTS}/service_milestones.parquet') m
    JOIN recognition_lines l ON l.order_line_id = m.order_line_id
    WHERE m.customer_sign_off AND m.sign_off_date IS NOT NULL
      AND CAST(date_trunc('month', m.sign_off_date) + INTERVAL 1 MONTH AS DATE) <= DATE '${AS_OF_DATE}'
)
SELECT account_id, order_line_id, sku_type, month, recognized_usd, method,
       false AS prior_period_adjustment, false AS restatement_flag, CAST(NULL AS VARCHAR) AS reason,
       CAST(NULL AS DATE) AS adjusted_month, CAST(NULL AS VARCHAR) AS restatement_id
FROM current_books
UNION ALL
SELECT l.account_id, r.order_line_id, l.sku_type, r.period_start, r.amount_delta_usd, 'restatement',
       false, true, r.reason, NULL, r.restatement_id
FROM read_parquet('${INPUTS}/restatements.parquet') r
JOIN recognition_lines l ON l.order_line_id = r.order_line_id;

CREATE TEMP TABLE deferred_revenue_schedule AS
WITH billed AS (
    SELECT il.order_line_id, CAST(date_trunc('month', i.invoice_date) AS DATE) AS month, sum(il.amount_usd) AS billed_usd
    FROM read_parquet('${INPUTS}/invoice_lines.parquet') il
    JOIN read_parquet('${INPUTS}/invoices.parquet') i ON i.invoice_id = il.invoice_id
    WHERE i.status <> 'void' AND i.invoice_date < DATE '${AS_OF_DATE}'
    GROUP BY 1, 2
),
recognized AS (
    SELECT order_line_id, month, sum(recognized_usd) AS recognized_usd FROM revenue_recognition_log GROUP BY 1, 2
),
activity AS (
    SELECT coalesce(b.order_line_id, r.order_line_id) AS order_line_id, coalesce(b.month, r.month) AS month,
           coalesce(b.billed_usd, 0) AS billed_usd, coalesce(r.recognized_usd, 0) AS recognized_usd
    FROM billed b FULL OUTER JOIN recognized r ON b.order_line_id = r.order_line_id AND b.month = r.month
),
balances AS (
    SELECT *, sum(billed_usd - recognized_usd) OVER (PARTITION BY order_line_id ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS closing_usd
    FROM activity
)
SELECT l.account_id, b.order_line_id, l.sku_type, b.month,
       b.closing_usd - b.billed_usd + b.recognized_usd AS opening_usd, b.billed_usd, b.recognized_usd, b.closing_usd
FROM balances b JOIN recognition_lines l ON l.order_line_id = b.order_line_id;

CREATE TEMP TABLE deferred_revenue_rollforward AS
WITH per_month AS (
    SELECT month, sum(billed_usd) AS billed_usd FROM deferred_revenue_schedule GROUP BY month
),
recognized AS (
    SELECT month,
        sum(CASE WHEN NOT prior_period_adjustment AND NOT restatement_flag THEN recognized_usd ELSE 0 END) AS recognized_usd,
        sum(CASE WHEN prior_period_adjustment THEN recognized_usd ELSE 0 END) AS prior_period_adjustments_usd,
        sum(CASE WHEN restatement_flag THEN recognized_usd ELSE 0 END) AS restatements_usd
    FROM revenue_recognition_log GROUP BY month
),
calendar AS (
    SELECT CAST(unnest(generate_series(min(month), max(month), INTERVAL 1 MONTH)) AS DATE) AS month FROM per_month
),
movements AS (
    SELECT c.month, coalesce(p.billed_usd, 0) AS billed_usd, coalesce(r.recognized_usd, 0) AS recognized_usd,
           coalesce(r.prior_period_adjustments_usd, 0) AS prior_period_adjustments_usd, coalesce(r.restatements_usd, 0) AS restatements_usd
    FROM calendar c LEFT JOIN per_month p ON p.month = c.month LEFT JOIN recognized r ON r.month = c.month
)
SELECT month,
    sum(billed_usd - recognized_usd - prior_period_adjustments_usd - restatements_usd) OVER (ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        - billed_usd + recognized_usd + prior_period_adjustments_usd + restatements_usd AS opening_usd,
    billed_usd, recognized_usd, prior_period_adjustments_usd, restatements_usd,
    sum(billed_usd - recognized_usd - prior_period_adjustments_usd - restatements_usd) OVER (ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS closing_usd
FROM movements;

CREATE TEMP TABLE revenue_waterfall AS
WITH lines AS (
    SELECT order_line_id, CAST(date_trunc('month', order_date) AS DATE) AS booked_month FROM recognition_lines
),
cells AS (
    SELECT l.booked_month, r.month AS recognition_month, sum(r.recognized_usd) AS amount_usd, 'recognized' AS status
    FROM revenue_recognition_log r JOIN lines l ON l.order_line_id = r.order_line_id GROUP BY 1, 2
    UNION ALL
    SELECT l.booked_month, s.month, sum(s.scheduled_usd), 'scheduled'
    FROM revenue_schedule s JOIN lines l ON l.order_line_id = s.order_line_id
    WHERE CAST(s.month + INTERVAL 1 MONTH AS DATE) > DATE '${AS_OF_DATE}'
    GROUP BY 1, 2
)
SELECT booked_month, recognition_month, status, amount_usd,
    sum(CASE WHEN status = 'recognized' THEN amount_usd ELSE 0 END) OVER (PARTITION BY booked_month) AS recognized_to_date_usd,
    sum(CASE WHEN status = 'scheduled' THEN amount_usd ELSE 0 END) OVER (PARTITION BY booked_month) AS remaining_usd
FROM cells;

COPY (SELECT * FROM revenue_recognition_log ORDER BY order_line_id, month, method) TO '${OUT}/revenue_recognition_log.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
COPY (SELECT * FROM deferred_revenue_schedule ORDER BY order_line_id, month) TO '${OUT}/deferred_revenue_schedule.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
COPY (SELECT * FROM deferred_revenue_rollforward ORDER BY month) TO '${OUT}/deferred_revenue_rollforward.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
COPY (SELECT * FROM revenue_waterfall ORDER BY booked_month, recognition_month, status) TO '${OUT}/revenue_waterfall.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
