//! `gtmos decisions list|show|approve|reject|execute|revert`: read the decision log and append
//! status changes to it (SPEC §13).

use serde_json::json;

use crate::cli::{DecisionsArgs, DecisionsCommand, Locations};
use crate::decisions::{self, Change, Entry, Roster};
use crate::error::{Error, Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::settings::Paths;

pub fn run(a: DecisionsArgs) -> Result<Outcome> {
    let paths = Paths::resolve(&Locations {
        project: a.project.clone(),
        snapshot: None,
        warehouse: a.warehouse.clone(),
    })?;
    let wh = &paths.warehouse;
    // The roster is read only for changes; without a project, `--by` names a role.
    let roster = || -> Result<Roster> {
        let file = paths.project.join(crate::project::PROJECT_FILE);
        if a.project.is_none() && !file.exists() {
            return Ok(Roster::default());
        }
        Roster::load(&file)
    };
    match a.command {
        DecisionsCommand::List { status, node } => {
            if let Some(s) = &status
                && !decisions::STATUSES.contains(&s.as_str())
            {
                return Err(Error::usage(format!(
                    "--status {s}: a decision is {}",
                    decisions::STATUSES.join(", ")
                )));
            }
            if !wh.exists() {
                return Err(Error::usage_hint(
                    format!("no warehouse at {}", wh.display()),
                    "pass --warehouse DIR (or GTMOS_WAREHOUSE) of a warehouse a build wrote",
                ));
            }
            let all = decisions::read_log(wh)?;
            let rows: Vec<Entry> = decisions::current(&all)
                .into_iter()
                .filter(|e| status.as_ref().is_none_or(|s| &e.status == s))
                .filter(|e| node.as_ref().is_none_or(|n| &e.node == n))
                .collect();
            match a.format {
                Format::Json => out_json(
                    &json!({ "decisions": rows.iter().map(Entry::to_json).collect::<Vec<_>>() }),
                )?,
                Format::Text => {
                    if rows.is_empty() {
                        out(&format!(
                            "no decisions in {} (a build appends the proposals of its decision nodes)\n",
                            wh.display()
                        ))?;
                    }
                    let mut s = String::new();
                    for e in &rows {
                        s.push_str(&format!(
                            "{}  {:<18} {:<15} {:<10} {}  (owner {}, review {})\n",
                            e.decision_id,
                            e.status,
                            e.node,
                            e.subject.as_deref().unwrap_or(""),
                            e.chosen_action.as_deref().unwrap_or(""),
                            e.owner.as_deref().unwrap_or("—"),
                            e.review_date.as_deref().unwrap_or("—"),
                        ));
                    }
                    out(&s)?;
                }
            }
        }
        DecisionsCommand::Show { id } => {
            let history: Vec<Entry> = decisions::read_log(wh)?
                .into_iter()
                .filter(|e| e.decision_id == id)
                .collect();
            let Some(cur) = decisions::current(&history).into_iter().next() else {
                return Err(Error::usage_hint(
                    format!("no decision `{id}` in {}", wh.display()),
                    "`gtmos decisions list` shows the ids",
                ));
            };
            match a.format {
                Format::Json => out_json(&json!({
                    "decision": cur.to_json(),
                    "approvals": approvals_json(&cur, &history),
                    "history": history.iter().map(Entry::to_json).collect::<Vec<_>>(),
                }))?,
                Format::Text => {
                    let mut s = format!(
                        "{} {} — {}\n  node       {} {}\n  subject    {}\n  owner      {}; approvers {}{}\n  evidence   {}\n  thresholds {}\n  risk       {}\n  reversal   {}\n  review     {}\n  inputs     snapshot {} (inputs_hash {})\n  history\n",
                        cur.decision_id,
                        cur.status,
                        cur.chosen_action.as_deref().unwrap_or(""),
                        cur.node,
                        cur.node_version.as_deref().unwrap_or(""),
                        cur.subject.as_deref().unwrap_or(""),
                        cur.owner.as_deref().unwrap_or("—"),
                        cur.required_approvers().join(", "),
                        approvals_text(&cur, &history),
                        cur.evidence.as_deref().unwrap_or("{}"),
                        cur.selected_thresholds.as_deref().unwrap_or("{}"),
                        cur.risk_notes.as_deref().unwrap_or("—"),
                        cur.reversal_plan.as_deref().unwrap_or("—"),
                        cur.review_date.as_deref().unwrap_or("—"),
                        cur.inputs_version.as_deref().unwrap_or(""),
                        cur.inputs_hash.as_deref().unwrap_or(""),
                    );
                    for e in &history {
                        s.push_str(&format!(
                            "    {}  {:<18} by {}{}{}{}\n",
                            e.timestamp,
                            e.status,
                            e.changed_by.as_deref().unwrap_or("—"),
                            e.acted_as
                                .as_deref()
                                .filter(|r| Some(*r) != e.changed_by.as_deref())
                                .map(|r| format!(" as {r}"))
                                .unwrap_or_default(),
                            e.note
                                .as_deref()
                                .map(|n| format!(": {n}"))
                                .unwrap_or_default(),
                            e.reversal_outcome
                                .as_deref()
                                .filter(|_| e.status == "reverted")
                                .map(|o| format!(" (outcome: {o})"))
                                .unwrap_or_default(),
                        ));
                    }
                    out(&s)?;
                }
            }
        }
        DecisionsCommand::Approve { id, by, note } => change(
            a.format,
            wh,
            &roster()?,
            &id,
            Change::Approve,
            &by,
            note,
            None,
        )?,
        DecisionsCommand::Reject { id, by, note } => change(
            a.format,
            wh,
            &roster()?,
            &id,
            Change::Reject,
            &by,
            note,
            None,
        )?,
        DecisionsCommand::Execute { id, by, note } => change(
            a.format,
            wh,
            &roster()?,
            &id,
            Change::Execute,
            &by,
            note,
            None,
        )?,
        DecisionsCommand::Revert {
            id,
            by,
            outcome,
            note,
        } => change(
            a.format,
            wh,
            &roster()?,
            &id,
            Change::Revert,
            &by,
            note,
            Some(outcome),
        )?,
    }
    Ok(Outcome::Success)
}

/// Record one status change and print the row it appended.
#[allow(clippy::too_many_arguments)]
fn change(
    format: Format,
    wh: &std::path::Path,
    roster: &Roster,
    id: &str,
    c: Change,
    by: &str,
    note: Option<String>,
    outcome: Option<String>,
) -> Result<()> {
    let row = decisions::change(wh, id, c, by, roster, note.as_deref(), outcome.as_deref())?;
    print_change(format, row)
}

/// Approver roles with who approved as each, and those still awaited.
fn approvals_json(cur: &Entry, history: &[Entry]) -> serde_json::Value {
    let done = decisions::approvals(history);
    json!({
        "required": cur.required_approvers(),
        "approved": done.iter().map(|(role, who)| json!({"role": role, "by": who})).collect::<Vec<_>>(),
        "awaiting": awaiting(cur, &done),
    })
}

fn awaiting(cur: &Entry, done: &[(String, String)]) -> Vec<String> {
    cur.required_approvers()
        .into_iter()
        .filter(|r| !done.iter().any(|(d, _)| d == r))
        .collect()
}

fn approvals_text(cur: &Entry, history: &[Entry]) -> String {
    let done = decisions::approvals(history);
    let waiting = awaiting(cur, &done);
    if done.is_empty() || !matches!(cur.status.as_str(), "partially_approved" | "approved") {
        return String::new();
    }
    let mut s = format!(
        " (approved by {})",
        done.iter()
            .map(|(role, who)| if role == who {
                role.clone()
            } else {
                format!("{who} as {role}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !waiting.is_empty() {
        s.push_str(&format!("; awaiting {}", waiting.join(", ")));
    }
    s
}

fn print_change(format: Format, e: Entry) -> Result<()> {
    match format {
        Format::Json => out_json(&json!({ "decision": e.to_json() })),
        Format::Text => out(&format!(
            "{} is now {} (by {}{}, {})\n",
            e.decision_id,
            e.status,
            e.changed_by.as_deref().unwrap_or(""),
            e.acted_as
                .as_deref()
                .filter(|r| Some(*r) != e.changed_by.as_deref())
                .map(|r| format!(" as {r}"))
                .unwrap_or_default(),
            e.timestamp
        )),
    }
}
