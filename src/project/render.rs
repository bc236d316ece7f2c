//! Rendering templates for one run ([`Renderer`]): `ref()` and `source()` to the engine's
//! relations, `{{ as_of }}` and the run's identity to literals, `inputs_loaded_at()` per input.

use super::*;

/// Renders a project's templates for one run: `ref()` and `source()` become the engine's
/// `models.<name>` and `sources.<table>`, `{{ as_of }}` a UTC timestamp literal.
pub struct Renderer {
    pub(super) vars: BTreeMap<String, String>,
    pub(super) as_of: Option<String>,
    pub(super) as_of_date: Option<String>,
    pub(super) build_id: Option<String>,
    pub(super) snapshot_id: Option<String>,
    pub(super) inputs_hash: Option<String>,
    pub(super) frozen_through: Option<String>,
    /// Per model and source: the sources it reads, with their load-time column if any.
    pub(super) inputs: BTreeMap<String, Vec<(String, Option<String>)>>,
    /// `{{ inputs_loaded_at(…) }}` per model and source, for this as_of and snapshot.
    pub(super) inputs_loaded_at: BTreeMap<String, String>,
    snapshot_as_of: Option<i64>,
    as_of_micros: Option<i64>,
}

impl Renderer {
    /// Without `as_of`, `{{ as_of }}` stays visible (compiling without a snapshot).
    pub fn new(project: &Project, as_of: Option<i64>, build_id: Option<&str>) -> Renderer {
        use crate::calendar::{Day, MICROS_PER_DAY};
        let loaded_at = |t: &str| {
            project
                .registry
                .table(t)
                .and_then(|t| t.loaded_at_field.clone())
        };
        let mut inputs = BTreeMap::new();
        for m in &project.models {
            let sources: Vec<(String, Option<String>)> = project
                .upstream(&m.name)
                .into_iter()
                .filter_map(|r| match r {
                    Ref::Source(t) => Some((t.clone(), loaded_at(&t))),
                    Ref::Model(_) => None,
                })
                .collect();
            inputs.insert(m.name.clone(), sources);
        }
        for s in &project.sources {
            inputs.insert(
                s.table.clone(),
                vec![(s.table.clone(), loaded_at(&s.table))],
            );
        }
        let mut r = Renderer {
            vars: project.vars.clone(),
            as_of: as_of.map(crate::engine::timestamp_literal),
            as_of_date: as_of
                .map(|t| format!("DATE '{}'", Day(t.div_euclid(MICROS_PER_DAY) as i32).iso())),
            build_id: build_id.map(crate::engine::quote),
            snapshot_id: None,
            inputs_hash: None,
            frozen_through: None,
            inputs,
            inputs_loaded_at: BTreeMap::new(),
            snapshot_as_of: None,
            as_of_micros: as_of,
        };
        r.inputs_loaded_at = r.loaded_at_sql();
        r
    }

    /// The snapshot's own as_of: when its tables without a load-time column were exported.
    pub fn with_snapshot_as_of(mut self, micros: i64) -> Renderer {
        self.snapshot_as_of = Some(micros);
        self.inputs_loaded_at = self.loaded_at_sql();
        self
    }

    /// `{{ inputs_loaded_at('x') }}`: the newest input `x` was built from — the newest load
    /// time, at or before as_of, of the sources it reads (or of `x` itself, a source) that
    /// declare a `loaded_at_field`; without any, the snapshot's export (its as_of, never later
    /// than the build's). A view over `x` is stale when nothing new reached it within its
    /// threshold: every feed it reads stopped, or the build judges a snapshot at a later as_of
    /// than the snapshot's. Null when its only inputs have no rows (read as stale).
    fn loaded_at_sql(&self) -> BTreeMap<String, String> {
        use crate::engine::{SOURCES, ident, timestamp_literal};
        let as_of = self.as_of.clone().unwrap_or_else(|| "{{ as_of }}".into());
        let exported = match (self.snapshot_as_of, self.as_of_micros) {
            (Some(s), Some(a)) => timestamp_literal(s.min(a)),
            _ => as_of.clone(),
        };
        self.inputs
            .iter()
            .map(|(name, sources)| {
                let mut terms: Vec<String> = sources
                    .iter()
                    .filter_map(|(t, field)| {
                        field.as_ref().map(|f| {
                            format!(
                                "(select max({f}) from {SOURCES}.{t} where {f} <= {as_of})",
                                f = ident(f),
                                t = ident(t)
                            )
                        })
                    })
                    .collect();
                let sql = match terms.len() {
                    0 if sources.is_empty() => {
                        "arrow_cast(NULL, 'Timestamp(µs, \"UTC\")')".to_string()
                    }
                    0 => exported.clone(),
                    1 => terms.remove(0),
                    _ => format!("greatest({})", terms.join(", ")),
                };
                (name.clone(), sql)
            })
            .collect()
    }

    /// The last month already frozen in `closed_periods/` (its first day), for `{{ frozen_through }}`.
    pub fn with_frozen_through(mut self, month: Option<crate::calendar::Day>) -> Renderer {
        self.frozen_through = month.map(|d| format!("DATE '{}'", d.iso()));
        self
    }

    /// The snapshot's id and inputs hash, for `{{ snapshot_id }}` and `{{ inputs_hash }}`.
    pub fn with_snapshot(mut self, snapshot_id: &str, inputs_hash: &str) -> Renderer {
        self.snapshot_id = Some(crate::engine::quote(snapshot_id));
        self.inputs_hash = Some(crate::engine::quote(inputs_hash));
        self
    }

    pub fn relation(r: &Ref) -> String {
        use crate::engine::{MODELS, SOURCES, ident};
        match r {
            Ref::Model(m) => format!("{MODELS}.{}", ident(m)),
            Ref::Source(t) => format!("{SOURCES}.{}", ident(t)),
        }
    }

    /// Render a parsed file; errors name the file and line.
    pub fn file(&self, file: &Path, pieces: &[Piece]) -> Result<String> {
        self.render(file, pieces, &Renderer::relation, None, &|_| None)
    }

    /// Render a model for one run: `relation` resolves its inputs (the last good version of a
    /// blocked one, for models that read it) and `input_state` says which inputs were blocked.
    pub fn model(
        &self,
        project: &Project,
        model: &Model,
        relation: &dyn Fn(&Ref) -> String,
        input_state: &dyn Fn(&str) -> Option<template::InputState>,
    ) -> Result<String> {
        let version = project
            .definition_version(&model.name)
            .map(|v| crate::engine::quote(&v));
        self.render(&model.file, &model.pieces, relation, version, input_state)
    }

    pub(super) fn render(
        &self,
        file: &Path,
        pieces: &[Piece],
        relation: &dyn Fn(&Ref) -> String,
        definition_version: Option<String>,
        input_state: &dyn Fn(&str) -> Option<template::InputState>,
    ) -> Result<String> {
        let ctx = template::RenderContext {
            vars: &self.vars,
            as_of: self.as_of.clone(),
            as_of_date: self.as_of_date.clone(),
            build_id: self.build_id.clone(),
            snapshot_id: self.snapshot_id.clone(),
            inputs_hash: self.inputs_hash.clone(),
            frozen_through: self.frozen_through.clone(),
            relation,
            definition_version,
            input_state,
            inputs_loaded_at: &self.inputs_loaded_at,
        };
        template::render(pieces, &ctx)
            .map_err(|e| Error::pipeline(file, format!("line {}: {}", e.line, e.message)))
    }

    /// Render a test expression or other snippet.
    pub fn text(&self, text: &str) -> Result<String> {
        let pieces = template::parse(text)
            .map_err(|e| Error::usage(format!("template `{text}`: {}", e.message)))?;
        self.file(Path::new("(expression)"), &pieces)
    }
}
