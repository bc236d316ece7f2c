//! Who may act on decisions (SPEC §13): the `decision_roster` of gtmos_project.yml, people and
//! the roles they hold, and the roles of the model decisions no project node declares.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The owner and approvers of the model decisions (`model.promotion` of `gtmos eval`,
/// `canary.rollout` of `gtmos canary`), which no project node declares.
pub const MODEL_OWNER: &str = "ML eval owner";
pub const MODEL_APPROVERS: [&str; 2] = ["ML eval owner", "RevOps"];

/// Who may act on decisions: people and the roles they hold (`decision_roster` in
/// gtmos_project.yml). Empty when the project declares none; then `--by` names a role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    pub people: std::collections::BTreeMap<String, Vec<String>>,
}

impl Roster {
    /// The `decision_roster:` mapping (person → list of roles) of a project file, if any.
    pub fn load(project_file: &Path) -> Result<Roster> {
        let text = std::fs::read_to_string(project_file)
            .map_err(|e| Error::io("cannot read", project_file, e))?;
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            decision_roster: std::collections::BTreeMap<String, Vec<String>>,
        }
        let f: File = serde_yaml_ng::from_str(&text).map_err(|e| {
            Error::pipeline(
                project_file,
                format!("decision_roster must map each person to a list of roles: {e}"),
            )
        })?;
        if let Some((who, _)) = f.decision_roster.iter().find(|(_, roles)| roles.is_empty()) {
            return Err(Error::pipeline(
                project_file,
                format!("decision_roster: `{who}` holds no role"),
            ));
        }
        Ok(Roster {
            people: f.decision_roster,
        })
    }

    /// The roles `by` acts in: a roster person's roles; with no roster, `by` is a role itself.
    pub fn roles_of(&self, by: &str) -> Result<Vec<String>> {
        if self.people.is_empty() {
            return Ok(vec![by.to_string()]);
        }
        self.people.get(by).cloned().ok_or_else(|| {
            Error::usage_hint(
                format!("`{by}` is not in the project's decision_roster"),
                format!(
                    "the roster names: {}",
                    self.people.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}
