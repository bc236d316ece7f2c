//! What a run builds: `--select`ors resolved to models, everything upstream of them, and the
//! sources their contracts need.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::project::template::Ref;
use crate::project::{Model, Project};

/// What a run builds: the selected models with everything upstream, and the sources they need.
#[derive(Debug, Clone)]
pub struct Selection {
    pub models: BTreeSet<String>,
    pub sources: BTreeSet<String>,
}

impl Selection {
    pub fn resolve(project: &Project, selectors: &[String]) -> Result<Selection> {
        if selectors.is_empty() {
            return Ok(Selection {
                models: project.models.iter().map(|m| m.name.clone()).collect(),
                sources: project.sources.iter().map(|s| s.table.clone()).collect(),
            });
        }
        let mut models = BTreeSet::new();
        for sel in selectors {
            let matched: Vec<&Model> = match sel.strip_prefix("tag:") {
                Some(tag) => project
                    .models
                    .iter()
                    .filter(|m| m.tags.iter().any(|t| t == tag))
                    .collect(),
                None => project.model(sel).into_iter().collect(),
            };
            if matched.is_empty() {
                return Err(Error::usage_hint(
                    format!("--select `{sel}` matches no model"),
                    "select a model by name, or every model with a tag: tag:recognition",
                ));
            }
            models.extend(matched.into_iter().map(|m| m.name.clone()));
        }
        let mut sources = BTreeSet::new();
        for m in models.clone() {
            for r in project.upstream(&m) {
                match r {
                    Ref::Model(x) => {
                        models.insert(x);
                    }
                    Ref::Source(x) => {
                        sources.insert(x);
                    }
                }
            }
        }
        // Contracts read the sources their tests reference.
        let mut stack: Vec<String> = sources.iter().cloned().collect();
        while let Some(t) = stack.pop() {
            if let Some(c) = project.source(&t) {
                for d in &c.depends_on {
                    if sources.insert(d.clone()) {
                        stack.push(d.clone());
                    }
                }
            }
        }
        Ok(Selection { models, sources })
    }
}
