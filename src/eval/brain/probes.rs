//! The validators' calibration probes (`gtmos eval probes`): synthetic answers, read from
//! `probes.yml` in the catalog directory, each breaking one rule (which must fire, alone) or
//! a negative control (every validator silent). A probe's answer is a base answer of the file
//! with a JSON merge patch (RFC 7396) applied, so each probe shows exactly what it breaks.

use super::*;

/// A synthetic output run through the validators: a violation the named rule must catch, or
/// a negative control every validator must pass in silence.
#[derive(Debug, Clone)]
pub struct Probe {
    pub id: String,
    pub rule: Rule,
    /// True: `rule` must fire. False: a negative control — no validator may fire.
    pub fires: bool,
    pub what: String,
    pub output: BrainOutput,
    pub question: Option<Question>,
    pub writer: Option<String>,
}

/// What a probe run found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub id: String,
    pub rule: &'static str,
    pub expects: &'static str,
    pub what: String,
    pub passed: bool,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbesFile {
    answers: BTreeMap<String, serde_json::Value>,
    questions: BTreeMap<String, Question>,
    probes: Vec<ProbeDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeDecl {
    id: String,
    rule: Rule,
    fires: bool,
    what: String,
    answer: String,
    #[serde(default)]
    patch: Option<serde_json::Value>,
    question: Option<String>,
    writer: Option<String>,
}

/// RFC 7396: an object patches key by key (null removes the key); anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Every probe of `dir/probes.yml`, checked: each names a known answer and question, its
/// answer is a valid output, and every rule has a violation and a negative control.
pub fn load_probes(dir: &Path) -> Result<Vec<Probe>> {
    let path = dir.join("probes.yml");
    let (file, _): (ProbesFile, _) = yaml(&path, "a probe file")?;
    let mut problems = Vec::new();
    let mut probes = Vec::new();
    let mut ids = BTreeSet::new();
    for d in file.probes {
        if !ids.insert(d.id.clone()) {
            problems.push(format!("probe {} is listed twice", d.id));
        }
        let Some(base) = file.answers.get(&d.answer) else {
            problems.push(format!("probe {}: no answer `{}`", d.id, d.answer));
            continue;
        };
        let question = match &d.question {
            None => None,
            Some(q) => match file.questions.get(q) {
                Some(q) => Some(q.clone()),
                None => {
                    problems.push(format!("probe {}: no question `{q}`", d.id));
                    continue;
                }
            },
        };
        let mut answer = base.clone();
        if let Some(p) = &d.patch {
            merge_patch(&mut answer, p);
        }
        let output: BrainOutput = match serde_json::from_value(answer) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("probe {}: not a brain output: {e}", d.id));
                continue;
            }
        };
        probes.push(Probe {
            id: d.id,
            rule: d.rule,
            fires: d.fires,
            what: d.what,
            output,
            question,
            writer: d.writer,
        });
    }
    for (rule, _) in VALIDATORS {
        for (fires, what) in [(true, "violation probe"), (false, "negative control")] {
            if !probes.iter().any(|p| p.rule == *rule && p.fires == fires) {
                problems.push(format!("rule {} has no {what}", rule.name()));
            }
        }
    }
    refuse(&path, "the probe file", problems)?;
    Ok(probes)
}

/// Run every probe through every validator.
pub fn run_probes(rubric: &Rubric, probes: &[Probe]) -> Vec<ProbeResult> {
    probes
        .iter()
        .map(|p| {
            let ctx = Context {
                rubric,
                question: p.question.as_ref(),
                writer: p.writer.as_deref(),
            };
            let issues = validate_all(&p.output, &ctx);
            // A violation must be caught by its own rule and by no other (each probe breaks
            // one thing); a negative control must leave every validator silent.
            let passed = if p.fires {
                !issues.is_empty() && issues.iter().all(|i| i.rule == p.rule)
            } else {
                issues.is_empty()
            };
            ProbeResult {
                id: p.id.clone(),
                rule: p.rule.name(),
                expects: if p.fires { "fires" } else { "silent" },
                what: p.what.clone(),
                passed,
                issues,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge_patch(
            &mut t,
            &serde_json::json!({"a": null, "b": {"c": 9}, "l": [], "n": "x"}),
        );
        assert_eq!(
            t,
            serde_json::json!({"b": {"c": 9, "d": 3}, "l": [], "n": "x"})
        );
    }

    #[test]
    fn a_probe_file_missing_a_negative_control_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/brain_eval/probes.yml");
        let text = std::fs::read_to_string(src).unwrap();
        // Drop L1b, lever_mapping's only negative control.
        let cut = text.find("  - id: L1b").unwrap();
        std::fs::write(dir.path().join("probes.yml"), &text[..cut]).unwrap();
        let e = load_probes(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("rule lever_mapping has no negative control"),
            "{e}"
        );
    }
}
