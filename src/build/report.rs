//! The record of a run: what each stage did, for the CLI summary, the logs and the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::contracts::{FreshnessResult, SourceResult, TestResult};
use crate::project::Materialized;

/// One line of the run log's `steps`: a stage's unit of work, its time and its rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: String,
    pub kind: &'static str,
    pub seconds: f64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub quarantined: u64,
    pub status: String,
    /// For a table model: `reused`, or `recomputed: <why>` (see [`super::reuse`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<String>,
}

impl Step {
    /// A step named `<kind>.<name>` (`inputs.verify`, `views.assemble`) that went as planned.
    pub fn ok(kind: &'static str, name: &str, seconds: f64) -> Step {
        Step {
            step: format!("{kind}.{name}"),
            kind,
            seconds,
            rows_in: 0,
            rows_out: 0,
            quarantined: 0,
            status: "ok".into(),
            incremental: None,
        }
    }

    /// A source's contract: rows read, accepted and set aside (quarantined or dead-lettered).
    pub fn of_source(r: &SourceResult) -> Step {
        Step {
            rows_in: r.rows_in,
            rows_out: r.rows_accepted,
            quarantined: r.quarantined.values().sum::<u64>() + r.dead_lettered,
            status: if r.blocked.is_some() {
                "blocked".into()
            } else if r.present {
                "ok".into()
            } else {
                "absent".into()
            },
            ..Step::ok("source", &r.table, r.seconds)
        }
    }

    /// A model: the rows it wrote, blocked or not.
    pub fn of_model(r: &ModelResult) -> Step {
        Step {
            rows_out: r.rows,
            status: if r.blocked.is_some() {
                "blocked".into()
            } else {
                "ok".into()
            },
            incremental: r.decision.as_ref().map(|d| d.describe()),
            ..Step::ok("model", &r.name, r.seconds)
        }
    }

    /// A singular test (named by its node): its failing rows and status.
    pub fn of_test(r: &TestResult, seconds: f64) -> Step {
        Step {
            rows_out: r.failures,
            status: r.status.name().into(),
            ..Step::ok("test", &r.node, seconds)
        }
    }
}

/// One model of the run: what it wrote, its tests, and why it was not published.
#[derive(Debug, Clone)]
pub struct ModelResult {
    pub name: String,
    pub file: PathBuf,
    pub materialized: Materialized,
    pub rows: u64,
    pub seconds: f64,
    pub tests: Vec<TestResult>,
    /// Why it was not (re)published.
    pub blocked: Option<String>,
    pub sha256: Option<String>,
    /// Blocked inputs it read at their last good version (`blocked_inputs='last_good'`).
    pub read_last_good: Vec<String>,
    /// For a table model: reused from the published version, or computed and why.
    pub decision: Option<super::reuse::Decision>,
}

/// Everything a run did, for the summary, the logs and the report.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The command that ran (see [`BuildOptions::command`]) and its `--select`ors.
    pub command: &'static str,
    pub select: Vec<String>,
    pub run_id: String,
    pub build_id: String,
    pub snapshot_id: String,
    pub snapshot_dir: PathBuf,
    pub as_of: i64,
    pub inputs_hash: String,
    pub pipelines_hash: String,
    pub project_name: String,
    pub project_version: String,
    pub effective_config: serde_json::Value,
    pub started_at: i64,
    pub seconds: f64,
    pub sources: Vec<SourceResult>,
    pub models: Vec<ModelResult>,
    pub singular: Vec<TestResult>,
    pub steps: Vec<Step>,
    pub published: Vec<String>,
    pub blocked: Vec<(String, String)>,
    pub report_dir: Option<PathBuf>,
    pub warehouse: PathBuf,
    /// Months frozen by this run (first days), and why a requested close did not advance.
    pub closed: Vec<String>,
    pub close_held: Option<String>,
    /// What each decision node evaluated this run proposed.
    pub decisions: Vec<crate::decisions::NodeOutcome>,
    /// sha256 over the brain-ready view contracts (SPEC §10), when the project has them.
    pub brain_view_contracts_hash: Option<String>,
    /// The brain-ready documents this run published: (composites, token max, stale views).
    pub views: Option<ViewsSummary>,
}

/// What the views stage published.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewsSummary {
    pub views: usize,
    pub composites: usize,
    pub composite_tokens_max: usize,
    pub composite_token_budget: usize,
    pub dropped_rows: usize,
    pub stale: Vec<String>,
    /// Views the contract calls for that the snapshot cannot support (listed in the catalog).
    pub unavailable: Vec<String>,
}

impl BuildReport {
    /// A full nightly build: `gtmos build` of every model. Only it refreshes `reports/latest`.
    pub fn is_full(&self) -> bool {
        self.command == "build" && self.select.is_empty()
    }

    /// The command as a user would have typed it, for headlines: `build`,
    /// `build --select tag:metrics`, `recognize`, `reconcile`.
    pub fn command_line(&self) -> String {
        // recognize and reconcile add their own tag first; only the user's selectors count.
        let own = match self.command {
            "recognize" | "reconcile" => 1,
            _ => 0,
        };
        let user: Vec<&str> = self.select.iter().skip(own).map(String::as_str).collect();
        if user.is_empty() {
            self.command.to_string()
        } else {
            format!("{} --select {}", self.command, user.join(","))
        }
    }

    pub fn outcome(&self) -> &'static str {
        if self.blocked.is_empty() {
            "success"
        } else {
            "blocked"
        }
    }

    pub fn all_tests(&self) -> impl Iterator<Item = &TestResult> {
        self.sources
            .iter()
            .flat_map(|s| s.tests.iter())
            .chain(self.models.iter().flat_map(|m| m.tests.iter()))
            .chain(self.singular.iter())
    }

    pub fn warnings(&self) -> u64 {
        self.all_tests()
            .filter(|t| t.status == crate::project::data_tests::Status::Warn)
            .count() as u64
            + self.freshness().filter(|f| f.status != "pass").count() as u64
    }

    pub fn freshness(&self) -> impl Iterator<Item = &FreshnessResult> {
        self.sources.iter().filter_map(|s| s.freshness.as_ref())
    }

    pub fn quarantined_rows(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.quarantined.values().sum::<u64>())
            .sum()
    }

    pub fn dead_lettered_rows(&self) -> u64 {
        self.sources.iter().map(|s| s.dead_lettered).sum()
    }
}

/// Tables a build published, blocked, and the rules that quarantined rows, for the CLI summary.
pub fn quarantine_summary(r: &BuildReport) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for s in &r.sources {
        for (rule, n) in &s.quarantined {
            *m.entry((s.table.clone(), rule.clone())).or_default() += n;
        }
    }
    m
}

/// Sources whose tests warned (names only).
pub fn warned_sources(r: &BuildReport) -> BTreeSet<String> {
    r.sources
        .iter()
        .filter(|s| {
            s.tests
                .iter()
                .any(|t| t.status != crate::project::data_tests::Status::Pass)
        })
        .map(|s| s.table.clone())
        .collect()
}
