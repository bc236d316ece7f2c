//! Decision nodes and the append-only decision log (SPEC §13).
//!
//! Each node of the project file (`decision_nodes:`) is evaluated every build by its model:
//! one row per subject with `proposes`, `chosen_action`, `reason` (also why nothing was
//! proposed: stale or blocked inputs, thresholds not met) and `evidence`. After publishing,
//! every proposal is appended to `logs/decision_log` as a `proposed` row. Its id is derived
//! from (node, node version, inputs hash, subject, action), so rebuilding the same snapshot
//! proposes nothing twice. Status changes (`gtmos decisions approve|reject|execute|revert`)
//! are new rows, never updates; the current state of a decision is its latest row.
//!
//! The workflow is an approval chain: a decision is `approved` only once every approver role
//! the node lists has approved (`partially_approved` until then), then `executed`, and may be
//! `reverted` after either. Who may act is checked: `--by` is one of the decision's roles (its
//! owner or an approver) or a person of the project's `decision_roster` holding one, and each
//! row records the role it acted as (`acted_as`). An out-of-order change is refused (exit 2).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::builder::TableBuilder;
use crate::calendar::{Day, MICROS_PER_DAY, format_ts};
use crate::error::{Error, Result};
use crate::logs::{self, DECISION_LOG};
use crate::project::DecisionNode;
pub use crate::project::roster::{MODEL_APPROVERS, MODEL_OWNER, Roster};
use crate::table_io::sha256_hex;

/// Every status a decision can be in.
pub const STATUSES: [&str; 6] = [
    "proposed",
    "partially_approved",
    "approved",
    "rejected",
    "executed",
    "reverted",
];

/// One row of the decision log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub decision_id: String,
    pub timestamp: String,
    pub node: String,
    pub node_version: Option<String>,
    pub subject: Option<String>,
    /// The snapshot the decision was computed from.
    pub inputs_version: Option<String>,
    pub inputs_hash: Option<String>,
    pub build_id: Option<String>,
    /// JSON object of the thresholds in force.
    pub selected_thresholds: Option<String>,
    /// JSON object of the metric values used.
    pub evidence: Option<String>,
    pub chosen_action: Option<String>,
    pub status: String,
    pub owner: Option<String>,
    /// JSON array of the approvers the node requires.
    pub approvers: Option<String>,
    /// Who made this status change (`gtmos build` for proposals).
    pub changed_by: Option<String>,
    pub note: Option<String>,
    pub risk_notes: Option<String>,
    pub reversal_plan: Option<String>,
    pub reversal_outcome: Option<String>,
    pub review_date: Option<String>,
    pub run_id: Option<String>,
    /// The role a person's status change acted as (an approver role, or the owner).
    #[serde(default)]
    pub acted_as: Option<String>,
}

impl Entry {
    /// The row as JSON, with its structured fields (approvers, thresholds, evidence) as JSON
    /// values rather than JSON text inside a string.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            for k in ["approvers", "selected_thresholds", "evidence"] {
                if let Some(Value::String(text)) = m.get(k)
                    && let Ok(parsed) = serde_json::from_str::<Value>(text)
                {
                    m.insert(k.to_string(), parsed);
                }
            }
        }
        v
    }

    /// The approver roles the decision needs (its owner's when the node lists none).
    pub fn required_approvers(&self) -> Vec<String> {
        let listed: Vec<String> = self
            .approvers
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default();
        if listed.is_empty() {
            self.owner.iter().cloned().collect()
        } else {
            listed
        }
    }
}

/// A node model's row that proposes an action.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub subject: String,
    pub chosen_action: String,
    pub reason: String,
    pub evidence: String,
    pub node_version: String,
}

/// What a build did for one node: proposals recorded (new ones), or why it proposed nothing.
#[derive(Debug, Clone, Serialize)]
pub struct NodeOutcome {
    pub node: String,
    /// The model that evaluated it (one row per subject).
    pub model: String,
    pub proposed: Vec<String>,
    pub new: usize,
    /// Why the node proposed nothing (blocked model, or every subject within thresholds).
    pub none_because: Option<String>,
}

/// The deterministic id of a proposal.
pub fn decision_id(
    node: &str,
    node_version: &str,
    inputs_hash: &str,
    subject: &str,
    action: &str,
) -> String {
    let h = sha256_hex(
        format!("{node}\n{node_version}\n{inputs_hash}\n{subject}\n{action}").as_bytes(),
    );
    format!("d-{}", &h[..16])
}

/// Every row of the log, in append order.
pub fn read_log(warehouse: &Path) -> Result<Vec<Entry>> {
    let dir = DECISION_LOG.dir(warehouse);
    logs::read_json(warehouse, &DECISION_LOG)?
        .into_iter()
        .map(|m| {
            serde_json::from_value(Value::Object(m)).map_err(|e| {
                Error::Internal(format!("{}: a row is not a decision: {e}", dir.display()))
            })
        })
        .collect()
}

/// The current state of every decision (its latest row), oldest proposal first.
pub fn current(entries: &[Entry]) -> Vec<Entry> {
    let mut order: Vec<String> = Vec::new();
    let mut latest: std::collections::BTreeMap<String, Entry> = std::collections::BTreeMap::new();
    for e in entries {
        if !latest.contains_key(&e.decision_id) {
            order.push(e.decision_id.clone());
        }
        // Later rows win; rows of one instant keep append order.
        let replace = latest
            .get(&e.decision_id)
            .is_none_or(|prev| micros(&e.timestamp) >= micros(&prev.timestamp));
        if replace {
            latest.insert(e.decision_id.clone(), e.clone());
        }
    }
    order
        .into_iter()
        .filter_map(|id| latest.remove(&id))
        .collect()
}

fn micros(ts: &str) -> i64 {
    crate::calendar::parse_ts(ts).unwrap_or(i64::MIN)
}

/// Append rows to the log (one new file; concurrent appends never collide).
pub fn append(warehouse: &Path, run_id: &str, rows: &[Entry]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut b = TableBuilder::new(DECISION_LOG.name, DECISION_LOG.schema())?;
    let c = DecisionCols::new(&b)?;
    for e in rows {
        let ts = crate::calendar::parse_ts(&e.timestamp)?;
        b.str(c.decision_id, &e.decision_id);
        b.ts(c.timestamp, ts);
        b.str(c.node, &e.node);
        b.opt_str(c.node_version, e.node_version.as_deref());
        b.opt_str(c.subject, e.subject.as_deref());
        b.opt_str(c.inputs_version, e.inputs_version.as_deref());
        b.opt_str(c.inputs_hash, e.inputs_hash.as_deref());
        b.opt_str(c.build_id, e.build_id.as_deref());
        b.opt_str(c.selected_thresholds, e.selected_thresholds.as_deref());
        b.opt_str(c.evidence, e.evidence.as_deref());
        b.opt_str(c.chosen_action, e.chosen_action.as_deref());
        b.str(c.status, &e.status);
        b.opt_str(c.owner, e.owner.as_deref());
        b.opt_str(c.approvers, e.approvers.as_deref());
        b.opt_str(c.changed_by, e.changed_by.as_deref());
        b.opt_str(c.note, e.note.as_deref());
        b.opt_str(c.risk_notes, e.risk_notes.as_deref());
        b.opt_str(c.reversal_plan, e.reversal_plan.as_deref());
        b.opt_str(c.reversal_outcome, e.reversal_outcome.as_deref());
        b.opt_date(
            c.review_date,
            e.review_date
                .as_deref()
                .and_then(|d| Day::parse(d).ok())
                .map(|d| d.0),
        );
        b.opt_str(c.run_id, e.run_id.as_deref());
        b.opt_str(c.acted_as, e.acted_as.as_deref());
        b.end_row();
    }
    logs::append(warehouse, &DECISION_LOG, run_id, &b.finish()?)?;
    Ok(())
}

crate::table_columns! { struct DecisionCols {
    decision_id: crate::builder::StrCol, timestamp: crate::builder::TsCol, node: crate::builder::StrCol,
    node_version: crate::builder::StrCol, subject: crate::builder::StrCol,
    inputs_version: crate::builder::StrCol, inputs_hash: crate::builder::StrCol, build_id: crate::builder::StrCol,
    selected_thresholds: crate::builder::StrCol, evidence: crate::builder::StrCol,
    chosen_action: crate::builder::StrCol, status: crate::builder::StrCol, owner: crate::builder::StrCol,
    approvers: crate::builder::StrCol, changed_by: crate::builder::StrCol, note: crate::builder::StrCol,
    risk_notes: crate::builder::StrCol, reversal_plan: crate::builder::StrCol,
    reversal_outcome: crate::builder::StrCol, review_date: crate::builder::DateCol, run_id: crate::builder::StrCol,
    acted_as: crate::builder::StrCol,
} }

/// What a build knows when it records proposals.
pub struct BuildContext<'a> {
    pub warehouse: &'a Path,
    pub run_id: &'a str,
    pub build_id: &'a str,
    pub snapshot_id: &'a str,
    pub inputs_hash: &'a str,
    pub as_of: i64,
    pub vars: &'a std::collections::BTreeMap<String, String>,
}

/// The proposals of a node's published evaluation table.
pub fn proposals(table: &Path) -> Result<Vec<Proposal>> {
    let s = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    Ok(crate::table_io::json_rows(table)?
        .into_iter()
        .filter(|m| m.get("proposes") == Some(&Value::Bool(true)))
        .map(|m| Proposal {
            subject: s(&m, "subject"),
            chosen_action: s(&m, "chosen_action"),
            reason: s(&m, "reason"),
            evidence: s(&m, "evidence"),
            node_version: s(&m, "node_version"),
        })
        .collect())
}

/// Append a `proposed` row for every proposal not already in the log.
/// Ids already in the log (read once per build, then kept current by [`record`]).
pub fn known_ids(warehouse: &Path) -> Result<std::collections::BTreeSet<String>> {
    Ok(read_log(warehouse)?
        .into_iter()
        .map(|e| e.decision_id)
        .collect())
}

/// Append a `proposed` row for every proposal whose id is not in `known` (and add it there).
pub fn record(
    cx: &BuildContext,
    node: &DecisionNode,
    found: &[Proposal],
    known: &mut std::collections::BTreeSet<String>,
) -> Result<NodeOutcome> {
    let now = format_ts(logs::now_micros());
    let thresholds: serde_json::Map<String, Value> = node
        .thresholds
        .iter()
        .map(|k| {
            let v = cx.vars.get(k).cloned().unwrap_or_default();
            let v = v
                .parse::<f64>()
                .map(|x| serde_json::json!(x))
                .unwrap_or(Value::String(v));
            (k.clone(), v)
        })
        .collect();
    let review =
        Day((cx.as_of.div_euclid(MICROS_PER_DAY)) as i32 + node.review_after_days as i32).iso();
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for p in found {
        let id = decision_id(
            &node.name,
            &p.node_version,
            cx.inputs_hash,
            &p.subject,
            &p.chosen_action,
        );
        ids.push(id.clone());
        if !known.insert(id.clone()) {
            continue;
        }
        rows.push(Entry {
            decision_id: id,
            timestamp: now.clone(),
            node: node.name.clone(),
            node_version: Some(p.node_version.clone()),
            subject: Some(p.subject.clone()),
            inputs_version: Some(cx.snapshot_id.to_string()),
            inputs_hash: Some(cx.inputs_hash.to_string()),
            build_id: Some(cx.build_id.to_string()),
            selected_thresholds: Some(Value::Object(thresholds.clone()).to_string()),
            evidence: Some(p.evidence.clone()),
            chosen_action: Some(p.chosen_action.clone()),
            status: "proposed".into(),
            owner: Some(node.owner.clone()),
            approvers: Some(serde_json::json!(node.approvers).to_string()),
            changed_by: Some("gtmos build".into()),
            note: Some(p.reason.clone()),
            risk_notes: node.risk_notes.clone(),
            reversal_plan: node.reversal_plan.clone(),
            reversal_outcome: None,
            review_date: Some(review.clone()),
            run_id: Some(cx.run_id.to_string()),
            acted_as: None,
        });
    }
    append(cx.warehouse, cx.run_id, &rows)?;
    Ok(NodeOutcome {
        node: node.name.clone(),
        model: node.model.clone(),
        new: rows.len(),
        none_because: ids
            .is_empty()
            .then(|| "every subject within its thresholds".to_string()),
        proposed: ids,
    })
}

/// A status change a person makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Approve,
    Reject,
    Execute,
    Revert,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Approve => "approved",
            Change::Reject => "rejected",
            Change::Execute => "executed",
            Change::Revert => "reverted",
        }
    }

    /// The statuses a decision may be in for this change.
    fn from(self) -> &'static [&'static str] {
        match self {
            Change::Approve | Change::Reject => &["proposed", "partially_approved"],
            Change::Execute => &["approved"],
            Change::Revert => &["approved", "executed"],
        }
    }
}

/// The approver roles that have approved since the decision was proposed, in order.
pub fn approvals(history: &[Entry]) -> Vec<(String, String)> {
    history
        .iter()
        .filter(|e| matches!(e.status.as_str(), "partially_approved" | "approved"))
        .filter_map(|e| {
            Some((
                e.acted_as.clone()?,
                e.changed_by.clone().unwrap_or_default(),
            ))
        })
        .collect()
}

/// Record a status change as a new row; returns it. Exit-2 errors name what is wrong.
pub fn change(
    warehouse: &Path,
    id: &str,
    change: Change,
    by: &str,
    roster: &Roster,
    note: Option<&str>,
    outcome: Option<&str>,
) -> Result<Entry> {
    // The state is read and the change appended under the log's lock: of concurrent changes,
    // each sees the ones before it.
    let _lock = logs::lock(warehouse, &DECISION_LOG)?;
    let all = read_log(warehouse)?;
    let history: Vec<Entry> = all.into_iter().filter(|e| e.decision_id == id).collect();
    let Some(cur) = current(&history).into_iter().next() else {
        return Err(Error::usage_hint(
            format!(
                "no decision `{id}` in {}",
                DECISION_LOG.dir(warehouse).display()
            ),
            "`gtmos decisions list` shows the ids",
        ));
    };
    if !change.from().contains(&cur.status.as_str()) {
        return Err(Error::usage(format!(
            "decision {id} is {}; it can be {} only when {}",
            cur.status,
            change.verb(),
            change.from().join(" or ")
        )));
    }
    let by = by.trim();
    if by.is_empty() {
        return Err(Error::usage("--by must name who makes the change"));
    }
    if change == Change::Revert && outcome.is_none_or(|o| o.trim().is_empty()) {
        return Err(Error::usage(
            "a revert needs --outcome: what the reversal did",
        ));
    }
    let roles = roster.roles_of(by)?;
    let required = cur.required_approvers();
    let done = approvals(&history);
    let (status, acted_as) = match change {
        Change::Approve => {
            if let Some((role, _)) = done.iter().find(|(_, who)| who == by) {
                return Err(Error::usage(format!(
                    "{by} already approved decision {id} (as {role}); each approval is by another person"
                )));
            }
            let outstanding: Vec<&String> = required
                .iter()
                .filter(|r| !done.iter().any(|(d, _)| d == *r))
                .collect();
            let Some(role) = outstanding.iter().find(|r| roles.contains(r)) else {
                return Err(Error::usage(format!(
                    "{by} cannot approve decision {id}: it awaits {}",
                    outstanding
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let status = if outstanding.len() == 1 {
                "approved"
            } else {
                "partially_approved"
            };
            (status, (*role).clone())
        }
        Change::Reject | Change::Execute | Change::Revert => {
            // Approvers may reject; the owner or an approver executes and reverts.
            let allowed: Vec<&String> = match change {
                Change::Reject => required.iter().collect(),
                _ => cur.owner.iter().chain(required.iter()).collect(),
            };
            let Some(role) = allowed.iter().find(|r| roles.contains(r)) else {
                return Err(Error::usage(format!(
                    "{by} cannot mark decision {id} {}: that is for {}",
                    change.verb(),
                    allowed
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            (change.verb(), (*role).clone())
        }
    };
    let run_id = logs::new_run_id();
    let row = Entry {
        timestamp: format_ts(logs::now_micros().max(micros(&cur.timestamp))),
        status: status.into(),
        changed_by: Some(by.to_string()),
        note: note.map(str::to_string),
        reversal_outcome: outcome.map(str::to_string).or(cur.reversal_outcome.clone()),
        run_id: Some(run_id.clone()),
        acted_as: Some(acted_as),
        ..cur
    };
    append(warehouse, &run_id, std::slice::from_ref(&row))?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, ts: &str, status: &str) -> Entry {
        Entry {
            decision_id: id.into(),
            timestamp: ts.into(),
            node: "n".into(),
            node_version: None,
            subject: None,
            inputs_version: None,
            inputs_hash: None,
            build_id: None,
            selected_thresholds: None,
            evidence: None,
            chosen_action: None,
            status: status.into(),
            owner: None,
            approvers: None,
            changed_by: None,
            note: None,
            risk_notes: None,
            reversal_plan: None,
            reversal_outcome: None,
            review_date: None,
            run_id: None,
            acted_as: None,
        }
    }

    #[test]
    fn the_latest_row_is_the_state_and_proposal_order_is_kept() {
        let rows = [
            entry("b", "2025-01-01T00:00:00Z", "proposed"),
            entry("a", "2025-01-02T00:00:00Z", "proposed"),
            entry("b", "2025-01-03T00:00:00Z", "approved"),
            entry("b", "2025-01-04T00:00:00Z", "reverted"),
        ];
        let cur = current(&rows);
        assert_eq!(
            cur.iter()
                .map(|e| (e.decision_id.as_str(), e.status.as_str()))
                .collect::<Vec<_>>(),
            vec![("b", "reverted"), ("a", "proposed")]
        );
    }

    #[test]
    fn ids_depend_on_every_part() {
        let a = decision_id("n", "1", "h", "s", "x");
        assert_eq!(a, decision_id("n", "1", "h", "s", "x"));
        for b in [
            decision_id("m", "1", "h", "s", "x"),
            decision_id("n", "2", "h", "s", "x"),
            decision_id("n", "1", "g", "s", "x"),
            decision_id("n", "1", "h", "t", "x"),
            decision_id("n", "1", "h", "s", "y"),
        ] {
            assert_ne!(a, b);
        }
        assert!(a.starts_with("d-") && a.len() == 18);
    }

    #[test]
    fn a_roster_names_people_and_each_approval_is_a_different_person() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gtmos_project.yml");
        std::fs::write(
            &file,
            "name: x\ndecision_roster:\n  Dana: [Finance, SalesOps]\n  Sam: [SalesOps]\n  Lee: [CRO]\n",
        )
        .unwrap();
        let roster = Roster::load(&file).unwrap();
        let wh = dir.path().join("wh");
        let mut proposal = entry("d-1", "2025-01-01T00:00:00Z", "proposed");
        proposal.owner = Some("CRO".into());
        proposal.approvers = Some(r#"["Finance","SalesOps"]"#.into());
        append(&wh, "r0", &[proposal]).unwrap();
        let go = |c: Change, by: &str| change(&wh, "d-1", c, by, &roster, None, Some("undone"));
        let err = |r: Result<Entry>| r.unwrap_err().to_string();
        // A role name is not a person once a roster exists.
        assert!(
            err(go(Change::Approve, "Finance")).contains("not in the project's decision_roster")
        );
        let first = go(Change::Approve, "Dana").unwrap();
        assert_eq!(
            (first.status.as_str(), first.acted_as.as_deref()),
            ("partially_approved", Some("Finance"))
        );
        // Dana also holds SalesOps, but one person fills one approval.
        assert!(err(go(Change::Approve, "Dana")).contains("already approved"));
        assert!(err(go(Change::Approve, "Lee")).contains("it awaits SalesOps"));
        let second = go(Change::Approve, "Sam").unwrap();
        assert_eq!(
            (second.status.as_str(), second.acted_as.as_deref()),
            ("approved", Some("SalesOps"))
        );
        let done = go(Change::Execute, "Lee").unwrap();
        assert_eq!(
            (done.status.as_str(), done.acted_as.as_deref()),
            ("executed", Some("CRO"))
        );
        assert_eq!(go(Change::Revert, "Sam").unwrap().status, "reverted");
        assert!(err(go(Change::Execute, "Lee")).contains("is reverted"));

        std::fs::write(&file, "decision_roster:\n  Dana: []\n").unwrap();
        assert!(
            Roster::load(&file)
                .unwrap_err()
                .to_string()
                .contains("holds no role")
        );
    }
}
