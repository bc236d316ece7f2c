//! The gate: which nodes of a run are blocked, and why — the one place for every blocking rule.
//!
//! A node is blocked when it may not be (re)published this run; its last good table stays
//! published, marked stale with the reason (SPEC §3, §6). The rules, in the order a run
//! applies them:
//!
//! 1. **Blocked sources.** A source whose contract blocks it (a failing `block` rule, a missing
//!    required table) is blocked: [`Gate::block_source`].
//! 2. **Upstream blocks.** A model that reads a blocked source, or a blocked model, is not built
//!    ([`Gate::upstream_block`]) — unless it declares `blocked_inputs='last_good'`: such a
//!    model (the metric log, for one) is built over the **last good published version** of each
//!    blocked input model ([`Gate::last_good_inputs`]), and its SQL sees which inputs are stale
//!    through `{{ input_status('m') }}` and `{{ blocked_reason('m') }}`. That is how a metric
//!    shows a stale last good value while the others publish. A blocked input with no
//!    published version is read as computed this run, values withheld
//!    ([`Gate::computed_anyway`]).
//! 3. **Test blocks.** A model whose own blocking data test fails is blocked
//!    ([`Gate::block_model`]).
//! 4. **Singular tests.** A failing singular test blocks every model it reads.
//! 5. **Propagation.** Whatever reads a blocked model, directly or not, is blocked too
//!    ([`Gate::propagate`]); a `last_good` model only by an input blocked after it was built
//!    (by a singular test), since it read the others at their last good version.

use std::collections::{BTreeMap, BTreeSet};

use crate::project::template::{InputState, Ref};
use crate::project::{Materialized, Model, Project};
use crate::warehouse::Warehouse;

use super::report::ModelResult;
use super::selection::Selection;

/// The blocked sources and models of one run, with the reason for each.
#[derive(Debug, Default)]
pub struct Gate {
    sources: BTreeMap<String, String>,
    models: BTreeMap<String, String>,
    /// Models some `blocked_inputs='last_good'` model reads, directly or not.
    read_by_last_good: BTreeSet<String>,
}

impl Gate {
    pub fn new(project: &Project) -> Gate {
        Gate {
            read_by_last_good: project
                .models
                .iter()
                .filter(|m| m.reads_last_good)
                .flat_map(|m| project.upstream(&m.name))
                .filter_map(|r| match r {
                    Ref::Model(m) => Some(m),
                    Ref::Source(_) => None,
                })
                .collect(),
            ..Gate::default()
        }
    }

    /// Rule 1: a source its contract blocked.
    pub fn block_source(&mut self, table: &str, why: &str) {
        self.sources.insert(table.to_string(), why.to_string());
    }

    /// Rules 3 and 4: block a model; the first reason given is kept.
    pub fn block_model(&mut self, name: &str, why: impl Into<String>) {
        self.models
            .entry(name.to_string())
            .or_insert_with(|| why.into());
    }

    /// Why `name` is blocked, if it is.
    pub fn model(&self, name: &str) -> Option<&String> {
        self.models.get(name)
    }

    /// Rule 2: why `model` is not built at all — its first input that is a blocked source, or a
    /// blocked model unless it reads those at their last good version.
    pub fn upstream_block(&self, model: &Model) -> Option<String> {
        model.refs.iter().find_map(|r| match r {
            Ref::Source(t) => self
                .sources
                .get(t)
                .map(|why| format!("input source `{t}` is blocked ({why})")),
            Ref::Model(_) if model.reads_last_good => None,
            Ref::Model(m) => self
                .models
                .get(m)
                .map(|_| format!("input model `{m}` is blocked")),
        })
    }

    /// Rule 2, for a `blocked_inputs='last_good'` model: each blocked input model, with whether
    /// its last good version is read (a published table exists) and why it is blocked.
    pub fn last_good_inputs(
        &self,
        project: &Project,
        model: &Model,
        warehouse: &Warehouse,
    ) -> BTreeMap<String, InputState> {
        let mut inputs = BTreeMap::new();
        for r in &model.refs {
            if let Ref::Model(m) = r
                && let Some(why) = self.models.get(m)
            {
                let last_good = warehouse.published_file(m).exists()
                    && project
                        .model(m)
                        .is_some_and(|x| x.materialized == Materialized::Table);
                inputs.insert(
                    m.clone(),
                    InputState {
                        last_good,
                        reason: why.clone(),
                    },
                );
            }
        }
        inputs
    }

    /// Rule 2: a model blocked upstream is still computed (never tested or published) when a
    /// `last_good` model reads it, so that model can show a blocked input that has no published
    /// version.
    pub fn computed_anyway(&self, model: &str) -> bool {
        self.read_by_last_good.contains(model)
    }

    /// Rule 4: a singular test over these inputs is skipped when one of them is blocked.
    pub fn any_blocked(&self, refs: &[Ref]) -> bool {
        refs.iter().any(|r| match r {
            Ref::Model(m) => self.models.contains_key(m),
            Ref::Source(x) => self.sources.contains_key(x),
        })
    }

    /// Rule 5: block whatever reads a blocked model, then record every model's reason in
    /// `results`.
    pub fn propagate(
        &mut self,
        project: &Project,
        selection: &Selection,
        results: &mut [ModelResult],
    ) {
        for model in project
            .models
            .iter()
            .filter(|m| selection.models.contains(&m.name))
        {
            if self.models.contains_key(&model.name) {
                continue;
            }
            // A model that reads last good versions was built knowing which inputs were
            // blocked; only an input blocked afterwards (by a singular test) blocks it.
            let read_last_good: &[String] = results
                .iter()
                .find(|r| r.name == model.name)
                .map(|r| r.read_last_good.as_slice())
                .unwrap_or_default();
            let inputs = if model.reads_last_good {
                model.refs.iter().cloned().collect()
            } else {
                project.upstream(&model.name)
            };
            if let Some(up) = inputs.into_iter().find_map(|r| match r {
                Ref::Model(m) if self.models.contains_key(&m) && !read_last_good.contains(&m) => {
                    Some(m)
                }
                _ => None,
            }) {
                self.models
                    .insert(model.name.clone(), format!("input model `{up}` is blocked"));
            }
        }
        for m in results.iter_mut() {
            if m.blocked.is_none() {
                m.blocked = self.models.get(&m.name).cloned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project of models `a` → `b` → `c`, and `log` reading `b` at its last good version.
    fn project(dir: &std::path::Path) -> Project {
        crate::project::test_project(
            dir,
            &[
                ("models/a.sql", "select 1 as x"),
                ("models/b.sql", "select x from {{ ref('a') }}"),
                ("models/c.sql", "select x from {{ ref('b') }}"),
                (
                    "models/log.sql",
                    "{{ config(blocked_inputs='last_good') }}\nselect x from {{ ref('b') }}",
                ),
            ],
        )
    }

    fn result(name: &str, read_last_good: &[&str]) -> ModelResult {
        ModelResult {
            name: name.into(),
            file: name.into(),
            materialized: Materialized::Table,
            rows: 0,
            seconds: 0.0,
            tests: Vec::new(),
            blocked: None,
            sha256: None,
            read_last_good: read_last_good.iter().map(|s| s.to_string()).collect(),
            decision: None,
        }
    }

    #[test]
    fn a_blocked_model_blocks_its_readers_but_a_last_good_reader_builds_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path());
        let all = Selection::resolve(&p, &[]).unwrap();
        let mut gate = Gate::new(&p);
        assert!(gate.computed_anyway("b") && gate.computed_anyway("a"));
        assert!(!gate.computed_anyway("c"));

        gate.block_model("b", "rule `r` failed on 2 rows");
        gate.block_model("b", "a later reason is not kept");
        let c = p.model("c").unwrap();
        assert_eq!(
            gate.upstream_block(c).as_deref(),
            Some("input model `b` is blocked")
        );
        let log = p.model("log").unwrap();
        assert_eq!(gate.upstream_block(log), None);
        // b has never been published: the log reads it as computed, and knows why.
        let wh = Warehouse::new(&dir.path().join("wh"));
        let inputs = gate.last_good_inputs(&p, log, &wh);
        assert_eq!(
            inputs["b"],
            InputState {
                last_good: false,
                reason: "rule `r` failed on 2 rows".into()
            }
        );

        let mut results = vec![
            result("a", &[]),
            result("b", &[]),
            result("c", &[]),
            result("log", &["b"]),
        ];
        gate.propagate(&p, &all, &mut results);
        let blocked: Vec<(&str, Option<&str>)> = results
            .iter()
            .map(|r| (r.name.as_str(), r.blocked.as_deref()))
            .collect();
        assert_eq!(
            blocked,
            [
                ("a", None),
                ("b", Some("rule `r` failed on 2 rows")),
                ("c", Some("input model `b` is blocked")),
                ("log", None),
            ]
        );
    }

    #[test]
    fn an_input_blocked_after_a_last_good_reader_was_built_blocks_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path());
        let all = Selection::resolve(&p, &[]).unwrap();
        let mut gate = Gate::new(&p);
        // Nothing was blocked while the models were built; then a singular test over b failed.
        gate.block_model("b", "singular test `t` failed (1 rows)");
        let mut results = vec![result("b", &[]), result("log", &[])];
        gate.propagate(&p, &all, &mut results);
        assert_eq!(
            results[1].blocked.as_deref(),
            Some("input model `b` is blocked")
        );
        assert!(gate.any_blocked(&[Ref::Model("b".into())]));
        assert!(!gate.any_blocked(&[Ref::Model("a".into())]));
        gate.block_source("s", "missing");
        assert!(gate.any_blocked(&[Ref::Source("s".into())]));
    }
}
