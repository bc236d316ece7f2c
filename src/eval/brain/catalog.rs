//! The question catalog, the rubric and the prompt-tuner registry under
//! `golden/brain_eval/`, loaded and checked against each other.

use super::*;

/// The writer whose taxonomy applies when none is named (legacy callers must not validate
/// against the pipeline brain's smaller enum by accident).
pub const DEFAULT_WRITER: &str = "AGT-902";

// ---------------------------------------------------------------------------------------------
// Catalog, rubric, registry

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub writer: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub question: String,
    pub subject: String,
    pub uses_stale_fixture: bool,
    #[serde(default)]
    pub stale_source: Option<String>,
    #[serde(default)]
    pub must_cite_tools: Vec<String>,
    #[serde(default)]
    pub must_cite_sources: Vec<String>,
    pub ground_truth: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: String,
    questions: Vec<Question>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hard {
    pub hallucination_rate_max: f64,
    pub staleness_recognition_min: f64,
    pub lever_mapping_min: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Soft {
    pub citation_rate_min: f64,
    pub diagnosis_accuracy_min: f64,
    pub calibration_gap_max: f64,
    pub coherence_min: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PassWithNotes {
    pub min_soft_met: usize,
    pub max_shortfall_points: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub confidence: f64,
    pub prove_rate: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    pub hard: Hard,
    pub soft: Soft,
    pub pass_with_notes: PassWithNotes,
    pub evidence: Evidence,
    pub staleness_disclosure_phrases: Vec<String>,
    pub taxonomies: BTreeMap<String, Vec<String>>,
    pub levers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tuner {
    pub user_id: String,
    pub brain: String,
    pub since: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registry {
    tuners: Vec<Tuner>,
}

/// `golden/brain_eval/`: the catalog, the rubric and the prompt-tuner registry.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub dir: PathBuf,
    pub version: String,
    pub sha256: String,
    pub questions: Vec<Question>,
    pub rubric: Rubric,
    pub tuners: Vec<Tuner>,
}

/// A YAML file parsed, with the sha256 of the very bytes parsed.
pub(super) fn yaml<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<(T, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let sha = crate::table_io::sha256_hex(text.as_bytes());
    serde_yaml_ng::from_str(&text)
        .map(|v| (v, sha))
        .map_err(|e| {
            bad(
                path,
                e.location().map(|l| l.line() as u64),
                format!("not {what}: {e}"),
            )
        })
}

impl Catalog {
    pub fn load(dir: &Path) -> Result<Catalog> {
        let path = dir.join("catalog.yml");
        let (file, sha256): (CatalogFile, _) = yaml(&path, "a brain eval catalog")?;
        let rpath = dir.join("rubric.yml");
        let (rubric, _): (Rubric, _) = yaml(&rpath, "a brain eval rubric")?;
        let tuners = yaml::<Registry>(&dir.join("prompt_tuners.yml"), "a prompt-tuner registry")?
            .0
            .tuners;
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        for q in &file.questions {
            if !seen.insert(q.id.as_str()) {
                problems.push(format!("question {} is listed twice", q.id));
            }
            if !rubric.taxonomies.contains_key(&q.writer) {
                problems.push(format!(
                    "question {}: writer {} has no taxonomy in rubric.yml",
                    q.id, q.writer
                ));
            }
            if q.uses_stale_fixture != q.stale_source.is_some() {
                problems.push(format!(
                    "question {}: a stale-fixture question names its stale_source, and only it does",
                    q.id
                ));
            }
        }
        for action in rubric.levers.keys() {
            if !rubric.taxonomies[DEFAULT_WRITER].contains(action) {
                problems.push(format!(
                    "rubric.yml: lever for `{action}`, which is not in {DEFAULT_WRITER}'s taxonomy"
                ));
            }
        }
        if let Some(t) = rubric.taxonomies.get(DEFAULT_WRITER) {
            for a in t {
                if !rubric.levers.contains_key(a) {
                    problems.push(format!(
                        "rubric.yml: {DEFAULT_WRITER} action `{a}` has no lever"
                    ));
                }
            }
        } else {
            problems.push(format!("rubric.yml: no taxonomy for {DEFAULT_WRITER}"));
        }
        refuse(&path, "the brain eval catalog", problems)?;
        Ok(Catalog {
            dir: dir.to_path_buf(),
            version: file.version,
            sha256,
            questions: file.questions,
            rubric,
            tuners,
        })
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}
