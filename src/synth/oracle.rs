//! The oracle of a synthetic corpus: the ground truth tests assert against, written beside the
//! snapshot under `oracle/`.
//!
//! - `oracle/accounts.parquet`: every account's archetype and the parameters of its story
//!   (when the champion left, where the spike was, the seasonal period, the canary arm, …);
//! - `oracle/faults.parquet`: every labelled row — injected faults, corrections, restatements,
//!   reference discrepancies — with its table, key and class, and what the pipeline must do
//!   with it (`expected`: duplicate, warn, reject, quarantine, exclude, supersede, restate,
//!   discrepancy, block);
//! - `oracle/margin.parquet`: the margin events TOOL-015 must recover, one row per account and
//!   event — a list-price increase (its renewal day, new ÷ old price), a shared-tier cost shock
//!   (its first month, new ÷ old unit cost), a tier migration (its first month, share of traffic
//!   moved to dedicated), a month the cost feed missed ([`super::margin`]);
//! - `oracle/canary.json`: the experiment, its true effects and the expected rates per arm;
//! - `oracle/summary.json`: counts per archetype and per fault class (requested and placed).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::params::FaultClass;
use super::tables::{OracleFaults, Tb};
use crate::schema::ColumnType;

/// The schema of an oracle table (`oracle/accounts`, `oracle/faults`), or None for other names.
pub fn schema(table: &str) -> Option<SchemaRef> {
    let v = ColumnType::Varchar.arrow();
    let d = ColumnType::Date.arrow();
    let f = |n: &str, t: &DataType| Field::new(n, t.clone(), true);
    let fields = match table {
        "oracle/accounts" => vec![
            f("account_id", &v),
            f("archetype", &v),
            f("segment", &v),
            f("first_term_start", &d),
            f("churn_date", &d),
            f("champion_contact_id", &v),
            f("champion_departure_date", &d),
            f("spike_start", &d),
            f("spike_end", &d),
            f("spike_multiplier", &DataType::Float64),
            f("crash_level", &DataType::Float64),
            f("season_period_days", &DataType::Int32),
            f("canary_arm", &v),
        ],
        "oracle/margin" => vec![
            f("account_id", &v),
            f("event", &v),
            f("effective_date", &d),
            f("deployment_tier", &v),
            f("magnitude", &DataType::Float64),
        ],
        "oracle/faults" => vec![
            f("fault_class", &v),
            f("table_name", &v),
            f("key_column", &v),
            f("key", &v),
            f("expected", &v),
            f("detail", &v),
            f("month", &d),
        ],
        _ => return None,
    };
    Some(Arc::new(Schema::new(fields)))
}

/// Label one row in `oracle/faults`: its class, where it is, and what the pipeline must do.
pub fn label(
    o: &mut Tb<OracleFaults>,
    class: FaultClass,
    key_column: &str,
    key: &str,
    detail: &str,
    month: Option<i32>,
) {
    o.b.str(o.c.fault_class, class.name());
    o.b.str(o.c.table_name, class.table());
    o.b.str(o.c.key_column, key_column);
    o.b.str(o.c.key, key);
    o.b.str(o.c.expected, class.expected().name());
    o.b.str(o.c.detail, detail);
    o.b.opt_date(o.c.month, month);
    o.b.end_row();
}
