-- The metric layer of `gtmos build` (pipelines/models/metrics/ and spend_by_month), written by
-- hand in DuckDB SQL over the same inputs: the checked sources in ${INPUTS}/ and the published
-- revenue_recognition_log, as temp tables; `cargo bench --bench metrics` appends each table's
-- write (in the build's order) and data tests, and runs it through benches/run_duckdb.py;
-- ${INPUTS}, ${OUT}, ${AS_OF_DATE}, ${AS_OF_MICROS}, the identifiers ${BUILD_ID},
-- ${SNAPSHOT_ID}, ${INPUTS_HASH} and each model's definition version ${DV_<model>} are
-- substituted (identifiers only, so the outputs can be compared row for row). Same formulas,
-- same exact-decimal sums converted to double before dividing, same data gaps.
SET TimeZone = 'UTC';

CREATE TEMP VIEW accounts AS SELECT * FROM read_parquet('${INPUTS}/accounts.parquet');
CREATE TEMP VIEW opportunities AS SELECT * FROM read_parquet('${INPUTS}/opportunities.parquet');
CREATE TEMP VIEW gtm_spend AS SELECT * FROM read_parquet('${INPUTS}/gtm_spend.parquet');
CREATE TEMP VIEW financials AS SELECT * FROM read_parquet('${INPUTS}/financials.parquet');
CREATE TEMP VIEW fpa_plan AS SELECT * FROM read_parquet('${INPUTS}/fpa_plan.parquet');
CREATE TEMP VIEW price_tests AS SELECT * FROM read_parquet('${INPUTS}/price_tests.parquet');
CREATE TEMP VIEW routing_shadow_log AS SELECT * FROM read_parquet('${INPUTS}/routing_shadow_log.parquet');
CREATE TEMP VIEW revenue_recognition_log AS SELECT * FROM read_parquet('${INPUTS}/revenue_recognition_log.parquet');

CREATE TEMP TABLE spend_by_month AS
SELECT month, segment, channel, category, sum(amount_usd) AS amount_usd
FROM gtm_spend
GROUP BY month, segment, channel, category;

-- the current operating plan (latest non-board reforecast at or before as_of) and the board plan
CREATE TEMP TABLE plan_targets AS
WITH ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY is_board_plan, metric_name, period_grain, period_start, segment
                           ORDER BY reforecast_as_of_date DESC, plan_version DESC) AS rank
    FROM fpa_plan
    WHERE reforecast_as_of_date <= DATE '${AS_OF_DATE}'
),
operating AS (SELECT * FROM ranked WHERE rank = 1 AND NOT is_board_plan),
board AS (SELECT * FROM ranked WHERE rank = 1 AND is_board_plan)
SELECT coalesce(o.metric_name, b.metric_name) AS metric_name,
       coalesce(o.period_grain, b.period_grain) AS period_grain,
       coalesce(o.period_start, b.period_start) AS period_start,
       coalesce(o.segment, b.segment) AS segment,
       o.plan_version, o.reforecast_as_of_date, o.target_value AS plan_target,
       b.plan_version AS board_plan_version, b.target_value AS board_plan_target
FROM operating o
FULL OUTER JOIN board b
  ON b.metric_name = o.metric_name AND b.period_grain = o.period_grain
 AND b.period_start = o.period_start AND b.segment = o.segment;

-- R_a(m): recurring = seat + consumption recognised in the month itself (no prior-period
-- adjustments, no restatements); total = every recognised dollar
CREATE TEMP TABLE metric_revenue AS
WITH recognised AS (
    SELECT account_id, month,
        sum(CASE WHEN sku_type IN ('seat', 'consumption') AND NOT prior_period_adjustment AND NOT restatement_flag
                 THEN recognized_usd ELSE 0 END) AS recurring_usd,
        sum(CASE WHEN prior_period_adjustment OR restatement_flag THEN recognized_usd ELSE 0 END) AS adjustments_usd,
        sum(recognized_usd) AS total_usd
    FROM revenue_recognition_log
    GROUP BY account_id, month
)
SELECT r.account_id, a.segment, a.acquisition_channel, r.month,
       CAST(r.recurring_usd AS DECIMAL(18, 2)) AS recurring_usd,
       CAST(r.adjustments_usd AS DECIMAL(18, 2)) AS adjustments_usd,
       CAST(r.total_usd AS DECIMAL(18, 2)) AS total_usd
FROM recognised r
LEFT JOIN accounts a ON a.account_id = r.account_id;

-- the NRR / GRR base: accounts with recurring revenue 12 months earlier, per month and quarter
CREATE TEMP TABLE retention_base AS
WITH periods AS (
    SELECT 'monthly' AS cadence, account_id, segment, month AS period, recurring_usd AS usd
    FROM metric_revenue
    UNION ALL
    SELECT 'quarterly', account_id, segment, CAST(date_trunc('quarter', month) AS DATE),
           CAST(sum(recurring_usd) AS DECIMAL(18, 2))
    FROM metric_revenue
    GROUP BY account_id, segment, CAST(date_trunc('quarter', month) AS DATE)
),
base AS (
    SELECT cadence, account_id, segment, CAST(period + INTERVAL 12 MONTH AS DATE) AS period, usd AS before_usd
    FROM periods
    WHERE usd > 0
)
SELECT b.cadence, b.period, b.account_id, b.segment, b.before_usd,
       coalesce(p.usd, CAST(0 AS DECIMAL(18, 2))) AS now_usd
FROM base b
LEFT JOIN periods p ON p.cadence = b.cadence AND p.account_id = b.account_id AND p.period = b.period
WHERE (b.cadence = 'monthly' AND b.period + INTERVAL 1 MONTH <= DATE '${AS_OF_DATE}')
   OR (b.cadence = 'quarterly' AND b.period + INTERVAL 3 MONTH <= DATE '${AS_OF_DATE}');

CREATE TEMP TABLE metric_retention AS
WITH by_segment AS (
    SELECT cadence, period, segment, sum(now_usd) AS kept_usd, sum(least(now_usd, before_usd)) AS capped_usd,
           sum(before_usd) AS before_usd, count(*) AS accounts
    FROM retention_base GROUP BY cadence, period, segment
    UNION ALL
    SELECT cadence, period, 'ALL', sum(now_usd), sum(least(now_usd, before_usd)), sum(before_usd), count(*)
    FROM retention_base GROUP BY cadence, period
),
grid AS (
    SELECT p.cadence, p.period, s.segment
    FROM (SELECT DISTINCT cadence, period FROM retention_base) p
    CROSS JOIN (VALUES ('SMB'), ('MM'), ('ENT'), ('ALL')) s(segment)
),
metrics AS (
    SELECT 'nrr' AS metric_name, g.cadence, g.period, g.segment,
           CAST(b.kept_usd AS DOUBLE) AS numerator, CAST(b.before_usd AS DOUBLE) AS denominator, b.accounts
    FROM grid g LEFT JOIN by_segment b ON b.cadence = g.cadence AND b.period = g.period AND b.segment = g.segment
    UNION ALL
    SELECT 'grr', g.cadence, g.period, g.segment,
           CAST(b.capped_usd AS DOUBLE), CAST(b.before_usd AS DOUBLE), b.accounts
    FROM grid g LEFT JOIN by_segment b ON b.cadence = g.cadence AND b.period = g.period AND b.segment = g.segment
)
SELECT cadence, metric_name, period, segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN denominator > 0 THEN 100 * numerator / denominator END AS metric_value,
       numerator, denominator,
       NOT coalesce(denominator > 0, false) AS data_gap,
       CASE WHEN NOT coalesce(denominator > 0, false)
            THEN 'no account in the segment had recurring revenue 12 months earlier' END AS data_gap_reason,
       '{"accounts_in_base": ' || CAST(coalesce(accounts, 0) AS VARCHAR) || '}' AS detail,
       metric_name AS plan_metric, 'month' AS plan_grain,
       CASE WHEN cadence = 'monthly' THEN period ELSE CAST(period + INTERVAL 2 MONTH AS DATE) END AS plan_period,
       '${DV_metric_retention}' AS definition_version, '${BUILD_ID}' AS build_id
FROM metrics;

-- Magic Number: (Rev_q − Rev_{q−1}) × 4 ÷ S&M_{q−1}; quarterly and monthly on trailing quarters
CREATE TEMP TABLE metric_magic_number AS
WITH revenue AS (
    SELECT segment, month, sum(recurring_usd) AS usd FROM metric_revenue GROUP BY segment, month
),
spend AS (
    SELECT segment, month, sum(amount_usd) AS usd FROM spend_by_month
    WHERE category IN ('sales', 'marketing') GROUP BY segment, month
),
grid AS (
    SELECT m.month, s.segment, coalesce(r.usd, 0) AS revenue_usd, sp.usd AS spend_usd
    FROM (SELECT DISTINCT month FROM revenue) m
    CROSS JOIN (VALUES ('SMB'), ('MM'), ('ENT')) s(segment)
    LEFT JOIN revenue r ON r.month = m.month AND r.segment = s.segment
    LEFT JOIN spend sp ON sp.month = m.month AND sp.segment = s.segment
),
with_all AS (
    SELECT month, segment, revenue_usd, spend_usd FROM grid
    UNION ALL
    SELECT month, 'ALL', sum(revenue_usd), sum(spend_usd) FROM grid GROUP BY month
),
trailing_q AS (
    SELECT month, segment,
        CAST(sum(revenue_usd) OVER (PARTITION BY segment ORDER BY month
             RANGE BETWEEN INTERVAL 2 MONTH PRECEDING AND CURRENT ROW) AS DOUBLE) AS revenue_q,
        CAST(sum(revenue_usd) OVER (PARTITION BY segment ORDER BY month
             RANGE BETWEEN INTERVAL 5 MONTH PRECEDING AND INTERVAL 3 MONTH PRECEDING) AS DOUBLE) AS revenue_prior_q,
        CAST(sum(spend_usd) OVER (PARTITION BY segment ORDER BY month
             RANGE BETWEEN INTERVAL 5 MONTH PRECEDING AND INTERVAL 3 MONTH PRECEDING) AS DOUBLE) AS spend_prior_q
    FROM with_all
),
periods AS (
    SELECT 'monthly' AS cadence, month AS period, * FROM trailing_q
    UNION ALL
    SELECT 'quarterly', CAST(month - INTERVAL 2 MONTH AS DATE), * FROM trailing_q
    WHERE date_part('month', month) IN (3, 6, 9, 12)
)
SELECT cadence, 'magic_number' AS metric_name, period, segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN spend_prior_q > 0 THEN (revenue_q - revenue_prior_q) * 4 / spend_prior_q END AS metric_value,
       (revenue_q - revenue_prior_q) * 4 AS numerator,
       spend_prior_q AS denominator,
       NOT coalesce(spend_prior_q > 0, false) AS data_gap,
       CASE WHEN spend_prior_q IS NULL THEN 'no sales and marketing spend recorded for the prior quarter'
            WHEN spend_prior_q <= 0 THEN 'sales and marketing spend of the prior quarter is not positive'
       END AS data_gap_reason,
       '{"revenue_q": ' || CAST(revenue_q AS VARCHAR) || ', "revenue_prior_q": ' || CAST(revenue_prior_q AS VARCHAR) || '}' AS detail,
       'magic_number' AS plan_metric, 'quarter' AS plan_grain,
       CAST(date_trunc('quarter', period) AS DATE) AS plan_period,
       '${DV_metric_magic_number}' AS definition_version, '${BUILD_ID}' AS build_id
FROM periods
WHERE month >= (SELECT CAST(min(month) + INTERVAL 5 MONTH AS DATE) FROM revenue);

-- CAC payback, company-quarterly: S&M_{q−1} ÷ (new recurring revenue × gross margin)
CREATE TEMP TABLE metric_cac_payback AS
WITH first_revenue AS (
    SELECT account_id, segment, CAST(date_trunc('quarter', min(month)) AS DATE) AS quarter
    FROM metric_revenue WHERE recurring_usd > 0 GROUP BY account_id, segment
),
new_revenue AS (
    SELECT f.segment, f.quarter, sum(r.recurring_usd) AS usd, count(*) AS accounts
    FROM first_revenue f
    JOIN metric_revenue r ON r.account_id = f.account_id AND r.month = CAST(f.quarter + INTERVAL 2 MONTH AS DATE)
    GROUP BY f.segment, f.quarter
),
spend AS (
    SELECT segment, CAST(date_trunc('quarter', month) AS DATE) AS quarter, sum(amount_usd) AS usd
    FROM spend_by_month WHERE category IN ('sales', 'marketing') GROUP BY 1, 2
),
quarters AS (SELECT DISTINCT CAST(date_trunc('quarter', month) AS DATE) AS quarter FROM metric_revenue),
grid AS (
    SELECT q.quarter, s.segment, coalesce(n.usd, 0) AS new_usd, coalesce(n.accounts, 0) AS accounts,
           sp.usd AS spend_prior_q
    FROM quarters q
    CROSS JOIN (VALUES ('SMB'), ('MM'), ('ENT')) s(segment)
    LEFT JOIN new_revenue n ON n.quarter = q.quarter AND n.segment = s.segment
    LEFT JOIN spend sp ON sp.quarter = CAST(q.quarter - INTERVAL 3 MONTH AS DATE) AND sp.segment = s.segment
    WHERE q.quarter > (SELECT min(quarter) FROM quarters)
      AND q.quarter + INTERVAL 3 MONTH <= DATE '${AS_OF_DATE}'
),
with_all AS (
    SELECT * FROM grid
    UNION ALL
    SELECT quarter, 'ALL', sum(new_usd), sum(accounts), sum(spend_prior_q) FROM grid GROUP BY quarter
),
inputs AS (
    SELECT w.quarter, w.segment, w.accounts, CAST(w.spend_prior_q AS DOUBLE) AS spend_prior_q,
           CAST(w.new_usd AS DOUBLE) AS new_usd, f.gross_margin_pct
    FROM with_all w LEFT JOIN financials f ON f.quarter_start = w.quarter
)
SELECT 'quarterly' AS cadence, 'cac_payback_months' AS metric_name, quarter AS period, segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN spend_prior_q > 0 AND new_usd > 0 AND gross_margin_pct > 0
            THEN spend_prior_q / (new_usd * gross_margin_pct / 100) END AS metric_value,
       spend_prior_q AS numerator,
       new_usd * gross_margin_pct / 100 AS denominator,
       NOT coalesce(spend_prior_q > 0 AND new_usd > 0 AND gross_margin_pct > 0, false) AS data_gap,
       CASE WHEN spend_prior_q IS NULL THEN 'no sales and marketing spend recorded for the prior quarter'
            WHEN spend_prior_q <= 0 THEN 'sales and marketing spend of the prior quarter is not positive'
            WHEN gross_margin_pct IS NULL THEN 'no gross margin for the quarter in financials'
            WHEN gross_margin_pct <= 0 THEN 'gross margin of the quarter is not positive'
            WHEN new_usd <= 0 THEN 'no new recurring revenue in the quarter'
       END AS data_gap_reason,
       '{"new_accounts": ' || CAST(accounts AS VARCHAR) || ', "new_recurring_usd": ' || CAST(new_usd AS VARCHAR)
           || ', "gross_margin_pct": ' || coalesce(CAST(gross_margin_pct AS VARCHAR), 'null') || '}' AS detail,
       'cac_payback_months' AS plan_metric, 'quarter' AS plan_grain, quarter AS plan_period,
       '${DV_metric_cac_payback}' AS definition_version, '${BUILD_ID}' AS build_id
FROM inputs;

-- CAC payback, Decision OS cohort form: (S&M ÷ new accounts) ÷ max(first-full-month CM per account, 1e-6)
CREATE TEMP TABLE metric_cac_payback_cohort AS
WITH revenue AS (
    SELECT account_id, segment, acquisition_channel AS channel, month, recurring_usd FROM metric_revenue
),
cohorts AS (
    SELECT account_id, segment, channel, min(month) AS cohort_month
    FROM revenue WHERE recurring_usd > 0 GROUP BY account_id, segment, channel
),
cohort_revenue AS (
    SELECT c.segment, c.channel, c.cohort_month, count(*) AS accounts, sum(coalesce(r.recurring_usd, 0)) AS usd
    FROM cohorts c
    LEFT JOIN revenue r ON r.account_id = c.account_id AND r.month = CAST(c.cohort_month + INTERVAL 1 MONTH AS DATE)
    GROUP BY c.segment, c.channel, c.cohort_month
),
spend AS (
    SELECT segment, channel, month, sum(amount_usd) AS usd FROM spend_by_month
    WHERE category IN ('sales', 'marketing') GROUP BY segment, channel, month
),
cells AS (
    SELECT coalesce(c.segment, s.segment) AS segment, coalesce(c.channel, s.channel) AS channel,
           coalesce(c.cohort_month, s.month) AS cohort_month, coalesce(c.accounts, 0) AS accounts,
           coalesce(c.usd, 0) AS revenue_usd, s.usd AS spend_usd
    FROM cohort_revenue c
    FULL OUTER JOIN spend s ON s.segment = c.segment AND s.channel = c.channel AND s.month = c.cohort_month
),
with_all AS (
    SELECT * FROM cells
    UNION ALL
    SELECT 'ALL', channel, cohort_month, sum(accounts), sum(revenue_usd), sum(spend_usd)
    FROM cells GROUP BY channel, cohort_month
),
inputs AS (
    SELECT w.segment, w.channel, w.cohort_month, w.accounts, CAST(w.spend_usd AS DOUBLE) AS spend_usd,
           CAST(w.revenue_usd AS DOUBLE) AS revenue_usd, f.gross_margin_pct
    FROM with_all w
    LEFT JOIN financials f ON f.quarter_start = CAST(date_trunc('quarter', w.cohort_month + INTERVAL 1 MONTH) AS DATE)
    WHERE w.cohort_month > (SELECT min(month) FROM revenue)
      AND w.cohort_month + INTERVAL 2 MONTH <= DATE '${AS_OF_DATE}'
)
SELECT 'monthly' AS cadence, 'cac_payback_cohort_months' AS metric_name, cohort_month AS period, segment, channel,
       cohort_month,
       CASE WHEN accounts >= ${PAYBACK_MIN_COHORT} AND gross_margin_pct IS NOT NULL AND spend_usd IS NOT NULL
            THEN (spend_usd / accounts) / greatest(revenue_usd * gross_margin_pct / 100 / accounts, 1e-6) END AS metric_value,
       CASE WHEN accounts > 0 THEN spend_usd / accounts END AS numerator,
       CASE WHEN accounts > 0 THEN revenue_usd * gross_margin_pct / 100 / accounts END AS denominator,
       NOT (accounts >= ${PAYBACK_MIN_COHORT} AND gross_margin_pct IS NOT NULL AND spend_usd IS NOT NULL) AS data_gap,
       CASE WHEN accounts = 0 THEN 'no new accounts in the cohort'
            WHEN accounts < ${PAYBACK_MIN_COHORT} THEN 'cohort of ' || CAST(accounts AS VARCHAR)
                 || ' new accounts is below the minimum of ${PAYBACK_MIN_COHORT}'
            WHEN spend_usd IS NULL THEN 'no sales and marketing spend recorded for the cohort month'
            WHEN gross_margin_pct IS NULL THEN 'no gross margin for the quarter in financials'
       END AS data_gap_reason,
       '{"new_accounts": ' || CAST(accounts AS VARCHAR) || ', "spend_usd": ' || coalesce(CAST(spend_usd AS VARCHAR), 'null')
           || ', "first_full_month_revenue_usd": ' || CAST(revenue_usd AS VARCHAR) || '}' AS detail,
       CAST(NULL AS VARCHAR) AS plan_metric, CAST(NULL AS VARCHAR) AS plan_grain, CAST(NULL AS DATE) AS plan_period,
       '${DV_metric_cac_payback_cohort}' AS definition_version, '${BUILD_ID}' AS build_id
FROM inputs;

-- Rule of 40, quarterly on TTM: revenue growth % + margin % (EBITDA, FCF, operating income)
CREATE TEMP TABLE metric_rule_of_40 AS
WITH revenue AS (SELECT month, sum(total_usd) AS usd FROM metric_revenue GROUP BY month),
ttm AS (
    SELECT month,
        CAST(sum(usd) OVER (ORDER BY month RANGE BETWEEN INTERVAL 11 MONTH PRECEDING AND CURRENT ROW) AS DOUBLE) AS ttm_usd,
        CAST(sum(usd) OVER (ORDER BY month RANGE BETWEEN INTERVAL 23 MONTH PRECEDING AND INTERVAL 12 MONTH PRECEDING) AS DOUBLE) AS prior_ttm_usd,
        min(month) OVER (ORDER BY month RANGE BETWEEN INTERVAL 23 MONTH PRECEDING AND CURRENT ROW) AS window_start
    FROM revenue
),
fin AS (
    SELECT quarter_start,
        CAST(sum(revenue_usd) OVER w AS DOUBLE) AS revenue_usd,
        CAST(sum(ebitda_usd) OVER w AS DOUBLE) AS ebitda_usd,
        CAST(sum(fcf_usd) OVER w AS DOUBLE) AS fcf_usd,
        CAST(sum(operating_income_usd) OVER w AS DOUBLE) AS operating_income_usd,
        count(*) OVER w AS quarters
    FROM financials
    WINDOW w AS (ORDER BY quarter_start RANGE BETWEEN INTERVAL 9 MONTH PRECEDING AND CURRENT ROW)
),
quarters AS (
    SELECT CAST(t.month - INTERVAL 2 MONTH AS DATE) AS quarter, t.ttm_usd, t.prior_ttm_usd,
           t.window_start = CAST(t.month - INTERVAL 23 MONTH AS DATE) AS full_history,
           f.revenue_usd, f.ebitda_usd, f.fcf_usd, f.operating_income_usd, coalesce(f.quarters, 0) AS quarters
    FROM ttm t LEFT JOIN fin f ON f.quarter_start = CAST(t.month - INTERVAL 2 MONTH AS DATE)
    WHERE date_part('month', t.month) IN (3, 6, 9, 12)
),
variants AS (
    SELECT 'rule_of_40_ebitda' AS metric_name, q.*, ebitda_usd AS margin_usd FROM quarters q
    UNION ALL
    SELECT 'rule_of_40_fcf', q.*, fcf_usd FROM quarters q
    UNION ALL
    SELECT 'rule_of_40_operating', q.*, operating_income_usd FROM quarters q
),
judged AS (
    SELECT *,
        CASE WHEN NOT full_history THEN 'needs 24 months of recognised revenue'
             WHEN prior_ttm_usd <= 0 THEN 'no recognised revenue in the prior twelve months'
             WHEN quarters < 4 THEN 'needs four quarters of financials'
             WHEN revenue_usd <= 0 THEN 'financials revenue of the trailing year is not positive'
        END AS gap,
        (ttm_usd - prior_ttm_usd) / prior_ttm_usd * 100 AS growth_pct,
        margin_usd / revenue_usd * 100 AS margin_pct
    FROM variants
)
SELECT 'quarterly' AS cadence, metric_name, quarter AS period, s.segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN s.segment = 'ALL' AND gap IS NULL THEN growth_pct + margin_pct END AS metric_value,
       CASE WHEN s.segment = 'ALL' AND gap IS NULL THEN growth_pct END AS numerator,
       CASE WHEN s.segment = 'ALL' AND gap IS NULL THEN margin_pct END AS denominator,
       s.segment <> 'ALL' OR gap IS NOT NULL AS data_gap,
       CASE WHEN s.segment <> 'ALL' THEN 'margins are reported company-wide (financials has no segment)' ELSE gap END AS data_gap_reason,
       '{"ttm_revenue_usd": ' || coalesce(CAST(ttm_usd AS VARCHAR), 'null')
           || ', "prior_ttm_revenue_usd": ' || coalesce(CAST(prior_ttm_usd AS VARCHAR), 'null')
           || ', "margin_usd": ' || coalesce(CAST(margin_usd AS VARCHAR), 'null')
           || ', "financials_revenue_usd": ' || coalesce(CAST(revenue_usd AS VARCHAR), 'null') || '}' AS detail,
       'rule_of_40' AS plan_metric, 'quarter' AS plan_grain, quarter AS plan_period,
       '${DV_metric_rule_of_40}' AS definition_version, '${BUILD_ID}' AS build_id
FROM judged j
CROSS JOIN (VALUES ('SMB'), ('MM'), ('ENT'), ('ALL')) s(segment)
WHERE quarter + INTERVAL 3 MONTH <= DATE '${AS_OF_DATE}';

-- Pipeline coverage, weekly for the 26 weeks ended by as_of: open pipeline closing this quarter
-- ÷ (new-bookings target − closed-won to date)
CREATE TEMP TABLE metric_pipeline_coverage AS
WITH opps AS (
    SELECT o.opp_id, a.segment, o.stage, o.amount_usd, o.created_date, o.close_date,
           CAST(date_trunc('quarter', o.close_date) AS DATE) AS close_quarter
    FROM opportunities o LEFT JOIN accounts a ON a.account_id = o.account_id
),
weeks AS (
    SELECT CAST(w AS DATE) AS week_start, CAST(w + INTERVAL 7 DAY AS DATE) AS week_end,
           CAST(date_trunc('quarter', w) AS DATE) AS quarter
    FROM (SELECT unnest(generate_series(
              date_trunc('week', CAST(DATE '${AS_OF_DATE}' - INTERVAL 182 DAY AS TIMESTAMP)),
              CAST(DATE '${AS_OF_DATE}' - INTERVAL 7 DAY AS TIMESTAMP),
              INTERVAL 7 DAY)) AS w) t
),
by_segment AS (
    SELECT w.week_start, w.quarter, o.segment,
        sum(CASE WHEN o.close_quarter = w.quarter AND o.created_date < w.week_end
                  AND (o.stage NOT IN ('closed_won', 'closed_lost') OR o.close_date >= w.week_end)
                 THEN o.amount_usd ELSE 0 END) AS open_pipeline_usd,
        sum(CASE WHEN o.stage = 'closed_won' AND o.close_date >= w.quarter AND o.close_date < w.week_end
                 THEN o.amount_usd ELSE 0 END) AS closed_won_usd
    FROM weeks w JOIN opps o ON o.close_quarter = w.quarter
    GROUP BY w.week_start, w.quarter, o.segment
),
grid AS (
    SELECT w.week_start, w.quarter, s.segment,
           coalesce(b.open_pipeline_usd, 0) AS open_pipeline_usd, coalesce(b.closed_won_usd, 0) AS closed_won_usd
    FROM weeks w
    CROSS JOIN (VALUES ('SMB'), ('MM'), ('ENT')) s(segment)
    LEFT JOIN by_segment b ON b.week_start = w.week_start AND b.segment = s.segment
),
with_all AS (
    SELECT * FROM grid
    UNION ALL
    SELECT week_start, quarter, 'ALL', sum(open_pipeline_usd), sum(closed_won_usd) FROM grid GROUP BY week_start, quarter
),
inputs AS (
    SELECT w.week_start, w.quarter, w.segment, CAST(w.open_pipeline_usd AS DOUBLE) AS open_pipeline_usd,
           CAST(w.closed_won_usd AS DOUBLE) AS closed_won_usd, p.plan_target
    FROM with_all w
    LEFT JOIN plan_targets p ON p.metric_name = 'new_bookings' AND p.period_grain = 'quarter'
         AND p.period_start = w.quarter AND p.segment = w.segment
)
SELECT 'weekly' AS cadence, 'pipeline_coverage' AS metric_name, week_start AS period, segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN plan_target - closed_won_usd > 0 THEN open_pipeline_usd / (plan_target - closed_won_usd) END AS metric_value,
       open_pipeline_usd AS numerator,
       plan_target - closed_won_usd AS denominator,
       NOT coalesce(plan_target - closed_won_usd > 0, false) AS data_gap,
       CASE WHEN plan_target IS NULL THEN 'no new_bookings plan target for the quarter'
            WHEN plan_target - closed_won_usd <= 0 THEN 'the quarter''s new_bookings target is already met'
       END AS data_gap_reason,
       '{"closed_won_usd": ' || CAST(closed_won_usd AS VARCHAR)
           || ', "new_bookings_target": ' || coalesce(CAST(plan_target AS VARCHAR), 'null') || '}' AS detail,
       'pipeline_coverage' AS plan_metric, 'quarter' AS plan_grain, quarter AS plan_period,
       '${DV_metric_pipeline_coverage}' AS definition_version, '${BUILD_ID}' AS build_id
FROM inputs;

-- The funnel metrics of the playbooks, monthly on the trailing three months: CAC per SQO,
-- SQL-to-win %, attribution validity
CREATE TEMP TABLE metric_gtm_funnel AS
WITH opps AS (
    SELECT coalesce(a.acquisition_channel, 'unknown') AS channel, coalesce(a.segment, 'unknown') AS segment,
           o.opp_type, o.stage, o.created_date, o.close_date,
           CASE WHEN o.owner_rep_id IS NOT NULL AND o.amount_usd IS NOT NULL AND a.acquisition_channel IS NOT NULL
                THEN 1 ELSE 0 END AS attributable
    FROM opportunities o LEFT JOIN accounts a ON a.account_id = o.account_id
),
months AS (
    SELECT DISTINCT CAST(date_trunc('month', created_date) AS DATE) AS month FROM opps
    WHERE created_date < CAST(date_trunc('month', DATE '${AS_OF_DATE}') AS DATE)
),
spans AS (
    SELECT month, CAST(month - INTERVAL 2 MONTH AS DATE) AS window_start, CAST(month + INTERVAL 1 MONTH AS DATE) AS window_end
    FROM months WHERE month >= (SELECT CAST(min(month) + INTERVAL 2 MONTH AS DATE) FROM months)
),
monthly AS (
    SELECT channel, segment, month, sum(sqos) AS sqos, sum(won) AS won, sum(lost) AS lost,
           sum(attributable) AS attributable, sum(created) AS created
    FROM (
        SELECT channel, segment, CAST(date_trunc('month', created_date) AS DATE) AS month,
               CASE WHEN opp_type = 'new_logo' THEN 1 ELSE 0 END AS sqos, 0 AS won, 0 AS lost, attributable, 1 AS created
        FROM opps
        UNION ALL
        SELECT channel, segment, CAST(date_trunc('month', close_date) AS DATE), 0,
               CASE WHEN opp_type = 'new_logo' AND stage = 'closed_won' THEN 1 ELSE 0 END,
               CASE WHEN opp_type = 'new_logo' AND stage = 'closed_lost' THEN 1 ELSE 0 END, 0, 0
        FROM opps WHERE close_date IS NOT NULL
    ) x
    GROUP BY channel, segment, month
),
by_channel AS (
    SELECT w.month, c.channel, coalesce(sum(m.sqos), 0) AS sqos, coalesce(sum(m.won), 0) AS won,
           coalesce(sum(m.lost), 0) AS lost, coalesce(sum(m.attributable), 0) AS attributable,
           coalesce(sum(m.created), 0) AS created
    FROM spans w CROSS JOIN (SELECT DISTINCT channel FROM opps) c
    LEFT JOIN monthly m ON m.channel = c.channel AND m.month >= w.window_start AND m.month < w.window_end
    GROUP BY w.month, c.channel
),
by_segment AS (
    SELECT w.month, g.segment, coalesce(sum(m.won), 0) AS won, coalesce(sum(m.lost), 0) AS lost
    FROM spans w CROSS JOIN (SELECT DISTINCT segment FROM opps) g
    LEFT JOIN monthly m ON m.segment = g.segment AND m.month >= w.window_start AND m.month < w.window_end
    GROUP BY w.month, g.segment
),
spend AS (
    SELECT w.month, s.channel, sum(s.amount_usd) AS usd
    FROM spans w JOIN spend_by_month s ON s.month >= w.window_start AND s.month < w.window_end
    WHERE s.category IN ('sales', 'marketing')
    GROUP BY w.month, s.channel
),
channels AS (
    SELECT c.month, c.channel, c.sqos, c.won, c.lost, c.attributable, c.created, s.usd AS spend_usd
    FROM by_channel c LEFT JOIN spend s ON s.month = c.month AND s.channel = c.channel
    UNION ALL
    SELECT c.month, 'ALL', c.sqos, c.won, c.lost, c.attributable, c.created, s.usd
    FROM (SELECT month, sum(sqos) AS sqos, sum(won) AS won, sum(lost) AS lost, sum(attributable) AS attributable,
                 sum(created) AS created
          FROM by_channel GROUP BY month) c
    LEFT JOIN (SELECT month, sum(usd) AS usd FROM spend GROUP BY month) s ON s.month = c.month
),
metrics AS (
    SELECT 'cac_per_sqo' AS metric_name, month, 'ALL' AS segment, channel,
           CAST(spend_usd AS DOUBLE) AS numerator, CAST(sqos AS DOUBLE) AS denominator,
           CASE WHEN spend_usd IS NULL THEN 'no sales and marketing spend recorded for the channel'
                WHEN sqos = 0 THEN 'no new-logo opportunities created in the window' END AS gap
    FROM channels
    UNION ALL
    SELECT 'sql_to_win_pct', month, 'ALL', channel, CAST(won AS DOUBLE), CAST(won + lost AS DOUBLE),
           CASE WHEN won + lost = 0 THEN 'no new-logo opportunity closed in the window' END
    FROM channels
    UNION ALL
    SELECT 'attribution_validity', month, 'ALL', channel, CAST(attributable AS DOUBLE), CAST(created AS DOUBLE),
           CASE WHEN created = 0 THEN 'no opportunity created in the window' END
    FROM channels
    UNION ALL
    SELECT 'sql_to_win_pct', month, segment, CAST(NULL AS VARCHAR), CAST(won AS DOUBLE), CAST(won + lost AS DOUBLE),
           CASE WHEN won + lost = 0 THEN 'no new-logo opportunity closed in the window' END
    FROM by_segment
    UNION ALL
    SELECT 'sql_to_win_pct', month, 'ALL', CAST(NULL AS VARCHAR), CAST(sum(won) AS DOUBLE), CAST(sum(won + lost) AS DOUBLE),
           CASE WHEN sum(won + lost) = 0 THEN 'no new-logo opportunity closed in the window' END
    FROM by_segment GROUP BY month
)
SELECT 'monthly' AS cadence, metric_name, month AS period, segment, channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN gap IS NULL THEN numerator * CASE WHEN metric_name = 'sql_to_win_pct' THEN 100 ELSE 1 END / denominator END AS metric_value,
       numerator, denominator, gap IS NOT NULL AS data_gap, gap AS data_gap_reason,
       '{"window_months": 3}' AS detail,
       CAST(NULL AS VARCHAR) AS plan_metric, CAST(NULL AS VARCHAR) AS plan_grain, CAST(NULL AS DATE) AS plan_period,
       '${DV_metric_gtm_funnel}' AS definition_version, '${BUILD_ID}' AS build_id
FROM metrics
WHERE segment <> 'unknown' AND coalesce(channel, '') <> 'unknown';

-- Pricing evidence per segment × price test: elasticity, CM per seat, projected CM uplift
CREATE TEMP TABLE metric_pricing AS
WITH tests AS (
    SELECT t.*, CAST(t.list_price_usd AS DOUBLE) AS price, t.price_change_pct / 100 AS p,
           (CAST(t.test_seats AS DOUBLE) / t.test_accounts) / (CAST(t.control_seats AS DOUBLE) / t.control_accounts) - 1 AS seat_change,
           row_number() OVER (PARTITION BY t.segment, t.start_date ORDER BY t.test_id DESC) AS rank
    FROM price_tests t WHERE t.end_date <= DATE '${AS_OF_DATE}'
),
margins AS (
    SELECT test_id, gm_pct FROM (
        SELECT t.test_id, f.gross_margin_pct AS gm_pct,
               row_number() OVER (PARTITION BY t.test_id ORDER BY f.quarter_start DESC) AS rank
        FROM tests t JOIN financials f ON f.quarter_start <= t.start_date
    ) x WHERE rank = 1
),
judged AS (
    SELECT t.test_id, t.segment, t.start_date, t.price, t.p, t.price_change_pct, t.seat_change, m.gm_pct,
           t.seat_change / t.p AS elasticity,
           t.price * m.gm_pct / 100 AS cm,
           (t.price * (1 + t.p) - t.price * (1 - m.gm_pct / 100)) * (1 + (t.seat_change / t.p) * t.p) - t.price * m.gm_pct / 100 AS uplift
    FROM tests t LEFT JOIN margins m ON m.test_id = t.test_id
    WHERE t.rank = 1
),
metrics AS (
    SELECT 'price_elasticity' AS metric_name, *, elasticity AS value, seat_change * 100 AS num,
           price_change_pct AS den, CAST(NULL AS VARCHAR) AS gap
    FROM judged
    UNION ALL
    SELECT 'cm_per_seat_usd', *, cm, price, gm_pct,
           CASE WHEN gm_pct IS NULL THEN 'no gross margin in financials at or before the test' END
    FROM judged
    UNION ALL
    SELECT 'cm_per_seat_uplift_usd', *, uplift, uplift, CAST(NULL AS DOUBLE),
           CASE WHEN gm_pct IS NULL THEN 'no gross margin in financials at or before the test' END
    FROM judged
)
SELECT 'monthly' AS cadence, metric_name, CAST(date_trunc('month', start_date) AS DATE) AS period, segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN gap IS NULL THEN value END AS metric_value,
       num AS numerator, den AS denominator, gap IS NOT NULL AS data_gap, gap AS data_gap_reason,
       '{"test_id": "' || test_id || '", "price_change_pct": ' || CAST(price_change_pct AS VARCHAR)
           || ', "list_price_usd": ' || CAST(price AS VARCHAR) || '}' AS detail,
       CAST(NULL AS VARCHAR) AS plan_metric, CAST(NULL AS VARCHAR) AS plan_grain, CAST(NULL AS DATE) AS plan_period,
       '${DV_metric_pricing}' AS definition_version, '${BUILD_ID}' AS build_id
FROM metrics;

-- Routing evidence from the candidate rule set's shadow log, weekly per segment
CREATE TEMP TABLE metric_routing AS
WITH events AS (
    SELECT *, CAST(date_trunc('week', routed_at) AS DATE) AS week
    FROM routing_shadow_log
    WHERE routed_at < make_timestamp(${AS_OF_MICROS})
),
weeks AS (SELECT DISTINCT week FROM events WHERE week + INTERVAL 7 DAY <= DATE '${AS_OF_DATE}'),
rates AS (
    SELECT week, segment, count(*) AS leads,
        sum(CASE WHEN candidate_rep_id IS NOT DISTINCT FROM current_rep_id THEN 1 ELSE 0 END) AS matched,
        sum(CASE WHEN current_route_seconds < 120 THEN 1 ELSE 0 END) AS current_fast,
        sum(CASE WHEN candidate_route_seconds < 120 THEN 1 ELSE 0 END) AS candidate_fast,
        sum(CASE WHEN candidate_rep_id IS NULL THEN 1 ELSE 0 END) AS unassigned
    FROM events WHERE week IN (SELECT week FROM weeks)
    GROUP BY week, segment
),
rates_all AS (
    SELECT * FROM rates
    UNION ALL
    SELECT week, 'ALL', sum(leads), sum(matched), sum(current_fast), sum(candidate_fast), sum(unassigned)
    FROM rates GROUP BY week
),
rep_weeks AS (
    SELECT week, segment, rep_id, sum(assigned) AS n
    FROM (
        SELECT week, segment, candidate_rep_id AS rep_id, 1 AS assigned FROM events WHERE candidate_rep_id IS NOT NULL
        UNION ALL
        SELECT week, segment, current_rep_id, 0 FROM events WHERE current_rep_id IS NOT NULL
    ) e
    GROUP BY week, segment, rep_id
),
reps AS (
    SELECT w.week, r.segment, r.rep_id, sum(r.n) AS n
    FROM weeks w JOIN rep_weeks r ON r.week > CAST(w.week - INTERVAL 28 DAY AS DATE) AND r.week <= w.week
    GROUP BY w.week, r.segment, r.rep_id
),
ranked AS (
    SELECT week, segment, n,
        row_number() OVER (PARTITION BY week, segment ORDER BY n, rep_id) AS i,
        count(*) OVER (PARTITION BY week, segment) AS reps,
        sum(n) OVER (PARTITION BY week, segment) AS total
    FROM reps
),
gini AS (
    -- G = 2 Σ i·x_(i) ÷ (n Σ x) − (n + 1) ÷ n, x sorted ascending
    SELECT week, segment,
        CASE WHEN max(total) > 0
             THEN CAST(2 * sum(i * n) AS DOUBLE) / CAST(max(reps) * max(total) AS DOUBLE)
                  - CAST(max(reps) + 1 AS DOUBLE) / CAST(max(reps) AS DOUBLE) END AS value,
        max(reps) AS reps
    FROM ranked GROUP BY week, segment
),
metrics AS (
    SELECT 'routing_shadow_match_pct' AS metric_name, week, segment, CAST(matched AS DOUBLE) AS num, CAST(leads AS DOUBLE) AS den FROM rates_all
    UNION ALL
    SELECT 'routing_current_p_route_2m_pct', week, segment, CAST(current_fast AS DOUBLE), CAST(leads AS DOUBLE) FROM rates_all
    UNION ALL
    SELECT 'routing_candidate_p_route_2m_pct', week, segment, CAST(candidate_fast AS DOUBLE), CAST(leads AS DOUBLE) FROM rates_all
    UNION ALL
    SELECT 'routing_candidate_unassigned_pct', week, segment, CAST(unassigned AS DOUBLE), CAST(leads AS DOUBLE) FROM rates_all
)
SELECT 'weekly' AS cadence, metric_name, week AS period, segment,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS DATE) AS cohort_month,
       CASE WHEN den > 0 THEN 100 * num / den END AS metric_value,
       num AS numerator, den AS denominator,
       NOT coalesce(den > 0, false) AS data_gap,
       CASE WHEN NOT coalesce(den > 0, false) THEN 'no routed leads in the week' END AS data_gap_reason,
       '{}' AS detail,
       CAST(NULL AS VARCHAR) AS plan_metric, CAST(NULL AS VARCHAR) AS plan_grain, CAST(NULL AS DATE) AS plan_period,
       '${DV_metric_routing}' AS definition_version, '${BUILD_ID}' AS build_id
FROM metrics
UNION ALL
SELECT 'weekly', 'routing_candidate_fairness_gini', week, segment, CAST(NULL AS VARCHAR), CAST(NULL AS DATE),
       value, value, CAST(reps AS DOUBLE), value IS NULL,
       CASE WHEN value IS NULL THEN 'no assignments in the four weeks' END,
       '{"window_weeks": 4}', CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS DATE),
       '${DV_metric_routing}', '${BUILD_ID}'
FROM gini;

-- every metric of the build with the plan comparison and the prior period
CREATE TEMP TABLE metrics_calc_log AS
WITH computed AS (
    SELECT * FROM metric_retention
    UNION ALL SELECT * FROM metric_magic_number
    UNION ALL SELECT * FROM metric_cac_payback
    UNION ALL SELECT * FROM metric_cac_payback_cohort
    UNION ALL SELECT * FROM metric_rule_of_40
    UNION ALL SELECT * FROM metric_pipeline_coverage
    UNION ALL SELECT * FROM metric_gtm_funnel
    UNION ALL SELECT * FROM metric_pricing
    UNION ALL SELECT * FROM metric_routing
)
SELECT '${BUILD_ID}' AS build_id, '${SNAPSHOT_ID}' AS snapshot_id, DATE '${AS_OF_DATE}' AS as_of,
       g.cadence, g.metric_name, g.period, g.segment, g.channel, g.cohort_month,
       g.metric_value, g.numerator, g.denominator,
       p.plan_version, p.reforecast_as_of_date AS plan_reforecast_as_of, p.plan_target, p.board_plan_target,
       lag(g.metric_value) OVER (PARTITION BY g.metric_name, g.cadence, g.segment, g.channel ORDER BY g.period) AS prior_period_value,
       CASE WHEN p.plan_target <> 0 THEN g.metric_value / p.plan_target END AS pct_of_plan,
       g.data_gap, g.data_gap_reason, false AS stale, g.build_id AS computed_in_build, g.detail,
       g.definition_version, '${INPUTS_HASH}' AS inputs_hash
FROM computed g
LEFT JOIN plan_targets p
  ON p.metric_name = g.plan_metric AND p.period_grain = g.plan_grain
 AND p.period_start = g.plan_period AND p.segment = g.segment;
