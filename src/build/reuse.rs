//! Incremental builds: a table whose inputs, definition and rendered SQL are exactly those of
//! the build that wrote its published version is not computed again. Its rows are the
//! published ones, stamped with this build's `build_id` and written through the same sorted
//! writer, so the file is byte for byte what computing it would give; its data tests run again
//! over it.
//!
//! The state is `_steps.json` in each published version (so it commits with the tables it
//! describes, in the same switch): per table, the fingerprint it was built from and the sha256
//! of the file it wrote. A fingerprint is a hash over
//!
//! - the environment: the gtmos version and executable (a rebuilt binary recomputes), the
//!   engine settings and the close state;
//! - the model's definition (SQL file, config, contract, tests) and its SQL as rendered for this
//!   run — `as_of`, `snapshot_id`, vars and last good inputs render into it;
//! - each input's identity: a source's is a hash of its snapshot files (the manifest's sha256,
//!   verified before the run), its contract, the registry entry, the tables its rules read and,
//!   for an append-only source or a contract that reads it, `as_of`; a model's is its own
//!   fingerprint (so a change anywhere upstream reaches every reader); a last good input's is
//!   the sha256 of the version read.
//!
//! Anything not covered recomputes: a model whose SQL reads the build id, one built or sorted in
//! ranges, one whose published file is not the one recorded, and every model under
//! `--full-refresh`. Each model's decision and its reason go to the summary and the run log.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::project::{Model, Project, SourceContract};
use crate::snapshot::Snapshot;
use crate::table_io::{sha256_file, sha256_hex};
use crate::warehouse::{CloseState, PublishState, Warehouse};

/// The state file in each published version.
pub const STEPS_FILE: &str = "_steps.json";

/// What the published version's tables were built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub models: BTreeMap<String, ModelMemo>,
}

/// How one published table was built: the parts of its fingerprint, and the file it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMemo {
    pub fingerprint: String,
    pub environment: String,
    pub definition: String,
    pub sql: String,
    /// Each input (`source:<table>`, `model:<name>`, `last_good:<name>`) and its identity.
    pub inputs: BTreeMap<String, String>,
    /// sha256 of the published file it wrote, and whether it was sorted on its key alone.
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub keyed: bool,
}

impl ModelMemo {
    fn new(
        environment: &str,
        definition: String,
        sql: String,
        inputs: BTreeMap<String, String>,
    ) -> ModelMemo {
        let mut text = format!("{environment}\n{definition}\n{sql}\n");
        for (k, v) in &inputs {
            text.push_str(&format!("{k}={v}\n"));
        }
        ModelMemo {
            fingerprint: sha256_hex(text.as_bytes()),
            environment: environment.to_string(),
            definition,
            sql,
            inputs,
            sha256: String::new(),
            keyed: false,
        }
    }

    /// Why a table built from `self` cannot be the one `old` describes; None: it is.
    fn differs_from(&self, old: &ModelMemo) -> Option<String> {
        if self.environment != old.environment {
            return Some("gtmos, the engine settings or the close changed".into());
        }
        if self.definition != old.definition {
            return Some("its definition changed".into());
        }
        for (k, v) in &self.inputs {
            match old.inputs.get(k) {
                None => return Some(format!("it reads `{k}`, which it did not")),
                Some(o) if o != v => return Some(format!("input `{k}` changed")),
                Some(_) => {}
            }
        }
        if let Some(k) = old.inputs.keys().find(|k| !self.inputs.contains_key(*k)) {
            return Some(format!("it no longer reads `{k}`"));
        }
        if self.sql != old.sql {
            return Some("its SQL renders differently (as_of, snapshot or vars)".into());
        }
        None
    }
}

/// What the build does with one table model.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Its published rows are this build's: restamped, not computed.
    Reuse { keyed: bool },
    /// Computed, and why.
    Recompute(String),
}

impl Decision {
    /// For the run log: `reused` or `recomputed: <why>`.
    pub fn describe(&self) -> String {
        match self {
            Decision::Reuse { .. } => "reused".into(),
            Decision::Recompute(why) => format!("recomputed: {why}"),
        }
    }
}

/// A run's view of the state: what the published version was built from, and what this run
/// builds from.
pub struct Reuse {
    previous: StepState,
    published: PublishState,
    full_refresh: bool,
    environment: String,
    /// Identities of what this run has read or built so far (`source:…`, `model:…`).
    identities: BTreeMap<String, String>,
    /// Memos of the tables this run wrote (built or reused), for the next state.
    next: BTreeMap<String, ModelMemo>,
}

impl Reuse {
    pub fn new(
        project: &Project,
        warehouse: &Warehouse,
        close: &CloseState,
        full_refresh: bool,
    ) -> Result<Reuse> {
        let environment = sha256_hex(
            format!(
                "gtmos {} {}\n{:?}\n{}",
                env!("CARGO_PKG_VERSION"),
                executable(),
                project.engine,
                serde_json::to_string(close).unwrap_or_default()
            )
            .as_bytes(),
        );
        Ok(Reuse {
            previous: read_state(&warehouse.published_dir())?,
            published: warehouse.state()?,
            full_refresh,
            environment,
            identities: BTreeMap::new(),
            next: BTreeMap::new(),
        })
    }

    /// Record a source's identity for this run (after its contract ran).
    pub fn source(
        &mut self,
        project: &Project,
        snapshot: &Snapshot,
        contract: &SourceContract,
        as_of: i64,
    ) {
        let id = source_identity(project, snapshot, contract, as_of);
        self.identities
            .insert(format!("source:{}", contract.table), id);
    }

    /// The memo of `model` as this run would build it from `sql`, reading its inputs
    /// (`last_good`: the models read at their last good version); or why it has none (an
    /// input without an identity this run).
    pub fn memo(
        &self,
        model: &Model,
        sql: &str,
        last_good: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<ModelMemo, String> {
        use crate::project::template::Ref;
        let mut inputs = BTreeMap::new();
        for r in &model.refs {
            let (key, id) = match r {
                // Read at its last good version: that version's bytes, or none yet.
                Ref::Model(m) if last_good(m) => (
                    format!("last_good:{m}"),
                    Some(
                        self.published
                            .tables
                            .get(m)
                            .and_then(|t| t.sha256.clone())
                            .unwrap_or_else(|| "never published".into()),
                    ),
                ),
                Ref::Model(m) => {
                    let k = format!("model:{m}");
                    let id = self.identities.get(&k).cloned();
                    (k, id)
                }
                Ref::Source(t) => {
                    let k = format!("source:{t}");
                    let id = self.identities.get(&k).cloned();
                    (k, id)
                }
            };
            let id = id.ok_or_else(|| format!("input `{key}` has no identity this run"))?;
            inputs.insert(key, id);
        }
        Ok(ModelMemo::new(
            &self.environment,
            sha256_hex(format!("{model:?}").as_bytes()),
            sha256_hex(sql.as_bytes()),
            inputs,
        ))
    }

    /// Record a model's identity for its readers.
    pub fn built(&mut self, model: &str, memo: &ModelMemo) {
        self.identities
            .insert(format!("model:{model}"), memo.fingerprint.clone());
    }

    /// Whether this run may take `model`'s published rows rather than compute them.
    /// `must_compute`: why it must be computed whatever the state says, if it must.
    pub fn decide(
        &self,
        warehouse: &Warehouse,
        model: &str,
        memo: &std::result::Result<ModelMemo, String>,
        must_compute: Option<String>,
    ) -> Result<Decision> {
        if self.full_refresh {
            return Ok(Decision::Recompute("--full-refresh".into()));
        }
        if let Some(why) = must_compute {
            return Ok(Decision::Recompute(why));
        }
        let memo = match memo {
            Ok(m) => m,
            Err(why) => return Ok(Decision::Recompute(why.clone())),
        };
        let Some(old) = self.previous.models.get(model) else {
            return Ok(Decision::Recompute("no earlier build of it".into()));
        };
        if let Some(why) = memo.differs_from(old) {
            return Ok(Decision::Recompute(why));
        }
        let recorded = self.published.tables.get(model);
        if recorded.is_none_or(|t| t.stale || t.sha256.as_deref() != Some(old.sha256.as_str())) {
            return Ok(Decision::Recompute(
                "its published version is not the one recorded".into(),
            ));
        }
        // The bytes it will read are the ones recorded (a file changed in place would give
        // other rows under the same fingerprint).
        let file = warehouse.published_file(model);
        if sha256_file(&file)? != old.sha256 {
            return Ok(Decision::Recompute(
                "its published file does not hash to the recorded sha256".into(),
            ));
        }
        Ok(Decision::Reuse { keyed: old.keyed })
    }

    /// A table this run wrote (computed or reused), for the next state.
    pub fn wrote(&mut self, model: &str, mut memo: ModelMemo, sha256: &str, keyed: bool) {
        memo.sha256 = sha256.to_string();
        memo.keyed = keyed;
        self.next.insert(model.to_string(), memo);
    }

    /// The next version's state: the tables this run published with what they were built
    /// from; every other table (blocked, or not selected) keeps its entry, as its file is
    /// carried over unchanged.
    pub fn next_state(&self, published: &[String]) -> StepState {
        let mut models = self.previous.models.clone();
        for (name, memo) in &self.next {
            if published.contains(name) {
                models.insert(name.clone(), memo.clone());
            }
        }
        StepState { models }
    }
}

/// The running executable's size and modification time: a rebuilt gtmos (a changed kernel
/// under the same version number) computes everything once. Only ever costs a recomputation.
fn executable() -> String {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} bytes, modified {modified}", m.len())
        })
        .unwrap_or_else(|_| "unknown executable".into())
}

/// The state a published version records (empty when it has none: a warehouse from before
/// incremental builds, or none yet).
pub fn read_state(version: &Path) -> Result<StepState> {
    let path = version.join(STEPS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::data(format!("cannot read the build state: {e}")).with_path(&path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StepState::default()),
        Err(e) => Err(Error::io("cannot read", &path, e)),
    }
}

pub fn write_state(version: &Path, state: &StepState) -> Result<()> {
    let text = serde_json::to_string_pretty(state)
        .map_err(|e| Error::Internal(format!("cannot write the build state: {e}")))?;
    crate::table_io::write_atomic(&version.join(STEPS_FILE), text.as_bytes()).map(|_| ())
}

/// A source's identity: its snapshot files, its contract and registry entry, the tables its
/// rules read, and `as_of` when the rows it accepts can depend on it.
fn source_identity(
    project: &Project,
    snapshot: &Snapshot,
    contract: &SourceContract,
    as_of: i64,
) -> String {
    let table = project.registry.table(&contract.table);
    let definition = format!("{contract:?}\n{table:?}");
    let mut text = format!("{definition}\n");
    // The vars its rules render.
    for (name, value) in &project.vars {
        if mentions(&definition, name) {
            text.push_str(&format!("var {name}={value}\n"));
        }
    }
    let entry = |name: &str| {
        snapshot
            .manifest
            .tables
            .get(name)
            .map(|e| e.sha256.clone())
            .unwrap_or_else(|| "absent".into())
    };
    text.push_str(&format!("{}={}\n", contract.table, entry(&contract.table)));
    // Every other table the contract names (its relationships and `exists` rules): a whole
    // word of its text. Naming one it does not read only costs a recomputation.
    for name in snapshot.manifest.tables.keys() {
        if name != &contract.table && mentions(&definition, name) {
            text.push_str(&format!("{name}={}\n", entry(name)));
        }
    }
    if table.is_some_and(|t| t.append_only) || definition.contains("as_of") {
        text.push_str(&format!("as_of={as_of}\n"));
    }
    sha256_hex(text.as_bytes())
}

/// `word` occurs in `text` not as part of a longer identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memo(sql: &str, inputs: &[(&str, &str)]) -> ModelMemo {
        ModelMemo::new(
            "env",
            "def".into(),
            sql.into(),
            inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_memo_differs_by_the_first_part_that_changed() {
        let a = memo("q", &[("source:s", "1"), ("model:m", "2")]);
        assert_eq!(a.differs_from(&a.clone()), None);
        assert_eq!(
            memo("q", &[("source:s", "1"), ("model:m", "3")]).differs_from(&a),
            Some("input `model:m` changed".into())
        );
        assert_eq!(
            memo("q2", &[("source:s", "1"), ("model:m", "2")]).differs_from(&a),
            Some("its SQL renders differently (as_of, snapshot or vars)".into())
        );
        assert_eq!(
            memo("q", &[("source:s", "1")]).differs_from(&a),
            Some("it no longer reads `model:m`".into())
        );
        let mut other_env = a.clone();
        other_env.environment = "env2".into();
        assert!(other_env.differs_from(&a).unwrap().contains("gtmos"));
        assert_ne!(
            memo("q", &[("source:s", "1")]).fingerprint,
            a.fingerprint,
            "every part is in the fingerprint"
        );
    }

    #[test]
    fn a_table_is_mentioned_only_as_a_whole_word() {
        assert!(mentions("to: accounts, field", "accounts"));
        assert!(mentions("source('snapshot', 'orders')", "orders"));
        assert!(!mentions("account_id", "accounts"));
        assert!(!mentions("order_lines", "orders"));
        assert!(!mentions("usage_metering_log_x", "usage_metering_log"));
    }
}
