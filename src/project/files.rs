//! The project's own YAML files as typed declarations: `gtmos_project.yml` and the model
//! properties files under `models/`. Every level denies unknown keys, so a misspelt key is an
//! error naming the file, line and column instead of a setting silently left at its default.
//! (Sources are declared in `crate::schema`; views in `crate::views`; the canary config in
//! `crate::canary`.) Data tests stay YAML values here: each is a name or a one-key map whose
//! arguments [`super::data_tests::parse_test`] checks per test kind.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::unit_tests::UnitTestDecl;
use crate::error::{Error, Result};

/// Read and parse one YAML file as `T`; errors name the file and, for a misspelt or
/// misplaced key, its line.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::pipeline(path, format!("invalid {what}: {e}")))
}

/// `gtmos_project.yml` (dbt's `dbt_project.yml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    pub name: Option<String>,
    pub version: Option<Value>,
    #[serde(rename = "source-paths")]
    pub source_paths: Option<Paths>,
    #[serde(rename = "model-paths")]
    pub model_paths: Option<Paths>,
    #[serde(rename = "test-paths")]
    pub test_paths: Option<Paths>,
    #[serde(rename = "view-paths")]
    pub view_paths: Option<Paths>,
    /// Values SQL reads with `{{ var('name') }}`: scalars only.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Defaults per data-test name (a test's own arguments win).
    #[serde(default)]
    pub data_tests: BTreeMap<String, Value>,
    #[serde(default)]
    pub models: ModelDefaults,
    #[serde(default)]
    pub engine: EngineDecl,
    #[serde(default)]
    pub freshness_slos: Vec<SloDecl>,
    #[serde(default)]
    pub decision_nodes: Vec<DecisionNodeDecl>,
    /// Person → the roles they act in (see [`super::roster`]).
    #[serde(default)]
    pub decision_roster: BTreeMap<String, Vec<String>>,
}

/// A path key: one directory, or a list whose first entry is used.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Paths {
    One(String),
    Many(Vec<String>),
}

impl Paths {
    pub fn first(&self) -> Option<&str> {
        match self {
            Paths::One(s) => Some(s),
            Paths::Many(v) => v.first().map(String::as_str),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDefaults {
    pub materialized: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineDecl {
    pub target_partitions: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloDecl {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub sources: Vec<String>,
    pub max_age_hours: f64,
    pub target: f64,
    pub window_days: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionNodeDecl {
    pub name: String,
    pub model: String,
    pub owner: String,
    #[serde(default)]
    pub approvers: Vec<String>,
    #[serde(default)]
    pub thresholds: Vec<String>,
    pub risk_notes: Option<String>,
    pub reversal_plan: Option<String>,
    #[serde(default = "fourteen")]
    pub review_after_days: i64,
}

fn fourteen() -> i64 {
    14
}

/// A model properties file (`models/**/*.yml`): models and their unit tests.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsFile {
    #[allow(dead_code)]
    pub version: Option<u32>,
    #[serde(default)]
    pub models: Vec<ModelDecl>,
    #[serde(default)]
    pub unit_tests: Vec<UnitTestDecl>,
}

/// One model's properties.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDecl {
    pub name: String,
    pub description: Option<String>,
    /// The same keys as the SQL file's `{{ config(…) }}`, which wins (as in dbt).
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    #[serde(default)]
    pub columns: Vec<ModelColumnDecl>,
    #[serde(default, alias = "tests")]
    pub data_tests: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelColumnDecl {
    pub name: String,
    pub description: Option<String>,
    pub data_type: Option<String>,
    #[serde(default, alias = "tests")]
    pub data_tests: Vec<Value>,
}

/// The keys a model's config may set (in its YAML `config:` or its SQL `{{ config(…) }}`).
pub const MODEL_CONFIG_KEYS: &[&str] = &[
    "enabled",
    "materialized",
    "order_by",
    "tags",
    "freeze",
    "blocked_inputs",
    "definition_version",
    "sort_in_ranges",
    "build_in_ranges",
    "pushdown_filters",
];

/// The keys a singular test's `{{ config(…) }}` may set.
pub const SINGULAR_TEST_CONFIG_KEYS: &[&str] = &["severity", "error_if", "warn_if"];

/// An unknown config key, if any, as an error naming the file.
pub fn check_config_keys<'a>(
    file: &Path,
    owner: &str,
    keys: impl IntoIterator<Item = &'a String>,
    known: &[&str],
) -> Result<()> {
    for k in keys {
        if !known.contains(&k.as_str()) {
            return Err(Error::pipeline(
                file,
                format!(
                    "{owner}: unknown config key `{k}` (known: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gtmos_project.yml");
        std::fs::write(
            &f,
            "name: t\nvars:\n  a: 1\nengine:\n  target_partiton: 2\n",
        )
        .unwrap();
        let e = read::<ProjectFile>(&f, "project file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `target_partiton`"), "{e}");
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("gtmos_project.yml"), "{e}");

        let m = dir.path().join("m.yml");
        std::fs::write(
            &m,
            "models:\n  - name: x\n    columns:\n      - name: a\n        data_typ: varchar\n",
        )
        .unwrap();
        let e = read::<ModelsFile>(&m, "model properties")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `data_typ`"), "{e}");
        assert!(e.contains("line 5"), "{e}");
    }

    #[test]
    fn test_defaults_name_known_tests_and_their_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let load = |defaults: &str| {
            let root = dir.path().join("pipelines");
            std::fs::create_dir_all(root.join("models")).unwrap();
            std::fs::write(
                root.join("gtmos_project.yml"),
                format!("name: t\ndata_tests:\n{defaults}"),
            )
            .unwrap();
            super::super::Project::load(&root).map(|_| ())
        };
        std::fs::create_dir_all(dir.path().join("pipelines/sources")).unwrap();
        assert!(load("  not_null: { on_fail: quarantine }\n").is_ok());
        let e = load("  not_nul: { on_fail: quarantine }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown data test `not_nul`"), "{e}");
        let e = load("  accepted_values: { on_fial: quarantine }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`accepted_values` has no argument `on_fial`"),
            "{e}"
        );
    }

    #[test]
    fn paths_take_one_directory_or_a_list() {
        let p: ProjectFile =
            serde_yaml_ng::from_str("model-paths: [m2, m3]\ntest-paths: t2\n").unwrap();
        assert_eq!(p.model_paths.unwrap().first(), Some("m2"));
        assert_eq!(p.test_paths.unwrap().first(), Some("t2"));
    }

    #[test]
    fn unknown_config_keys_are_named() {
        let keys = ["order_by".to_string(), "matrialized".to_string()];
        let e = check_config_keys(Path::new("m.sql"), "model `m`", &keys, MODEL_CONFIG_KEYS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown config key `matrialized`"), "{e}");
    }
}
