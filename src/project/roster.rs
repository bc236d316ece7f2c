//! Who may act on decisions (SPEC §13): the `decision_roster` of gtmos_project.yml, people and
//! the roles they hold, and the roles of the model decisions no project node declares.

use std::path::Path;

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
        let f: super::files::ProjectFile = super::files::read(project_file, "project file")?;
        Roster::of(project_file, f.decision_roster)
    }

    /// A declared roster, checked: every person holds a role.
    pub fn of(
        project_file: &Path,
        people: std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<Roster> {
        if let Some((who, _)) = people.iter().find(|(_, roles)| roles.is_empty()) {
            return Err(Error::pipeline(
                project_file,
                format!("decision_roster: `{who}` holds no role"),
            ));
        }
        Ok(Roster { people })
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
