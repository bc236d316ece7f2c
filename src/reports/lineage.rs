//! The lineage page: per published table, the sources and models it is built from (the
//! project's DAG) as an indented tree, each node with its row count and, for a table, the
//! build that produced the version in `published/`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::build::BuildReport;
use crate::project::template::Ref;
use crate::project::{Materialized, Project};
use crate::warehouse::PublishState as State;

/// One line of a tree: how deep, what it is, its rows and the build behind it. A node already
/// drawn higher in the same tree is listed again without its inputs (`repeated`).
fn node(
    r: &BuildReport,
    project: &Project,
    state: &State,
    what: &Ref,
    depth: usize,
    seen: &mut BTreeSet<Ref>,
    out: &mut Vec<Value>,
) {
    let repeated = !seen.insert(what.clone());
    match what {
        Ref::Source(s) => {
            let src = r.sources.iter().find(|x| &x.table == s);
            out.push(json!({
                "depth": depth, "kind": "source", "name": s, "repeated": repeated,
                "rows": src.map(|x| x.rows_accepted),
                "detail": src.map(|x| format!("{} read, {} quarantined, {} dead-lettered", x.rows_in, x.quarantined.values().sum::<u64>(), x.dead_lettered)),
                "snapshot": r.snapshot_id,
            }));
        }
        Ref::Model(m) => {
            let model = project.model(m);
            let table = model.is_some_and(|x| x.materialized == Materialized::Table);
            let s = state.tables.get(m);
            let run = r.models.iter().find(|x| &x.name == m);
            out.push(json!({
                "depth": depth, "kind": if table { "table" } else { "view" }, "name": m, "repeated": repeated,
                "rows": if table { s.map(|s| s.rows) } else { run.map(|x| x.rows) },
                "build_id": s.and_then(|s| s.build_id.clone()),
                "run": s.and_then(|s| s.published_by_run.clone()),
                "stale": s.is_some_and(|s| s.stale),
            }));
            if repeated {
                return;
            }
            for x in model.map(|m| m.refs.clone()).unwrap_or_default() {
                node(r, project, state, &x, depth + 1, seen, out);
            }
        }
    }
}

/// Every table model of the run with its tree of inputs, in the project's build order.
pub fn lineage(r: &BuildReport, project: &Project, state: &State) -> Value {
    let tables: Vec<Value> = project
        .models
        .iter()
        .filter(|m| m.materialized == Materialized::Table)
        .map(|m| {
            let mut lines = Vec::new();
            node(
                r,
                project,
                state,
                &Ref::Model(m.name.clone()),
                0,
                &mut BTreeSet::new(),
                &mut lines,
            );
            let up = project.upstream(&m.name);
            json!({
                "name": m.name,
                "sources": up.iter().filter(|x| matches!(x, Ref::Source(_))).count(),
                "models": up.iter().filter(|x| matches!(x, Ref::Model(_))).count(),
                "lines": lines,
            })
        })
        .collect();
    json!({"tables": tables})
}
