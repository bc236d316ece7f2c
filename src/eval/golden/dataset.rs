//! The golden datasets the manifest pins, loaded and checked, and the input-error helpers
//! every eval reader shares (one error listing each problem with its line).

use super::*;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub tasks: BTreeMap<String, TaskManifest>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskManifest {
    pub file: String,
    pub sha256: String,
    pub examples: usize,
    pub critical: usize,
    pub labels: Vec<String>,
    pub ordinal: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub id: String,
    pub task: String,
    pub input: serde_json::Value,
    pub label: String,
    pub critical: bool,
    pub version: String,
    pub rationale: String,
}

/// The golden datasets, checked against their manifest.
#[derive(Debug, Clone)]
pub struct Golden {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub examples: Vec<Example>,
}

/// Every problem found in an input file, as one error (the first 50 listed), or Ok when none.
pub(crate) fn refuse(path: &Path, what: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    let mut problems = problems;
    // In file order: problems naming a line by their line number, the rest first.
    problems.sort_by_key(|p| (line_of(p), p.clone()));
    let mut shown: Vec<String> = problems.into_iter().take(SHOWN).collect();
    if n > SHOWN {
        shown.push(format!("… and {} more", n - SHOWN));
    }
    Err(bad(
        path,
        None,
        format!("{n} problem(s) in {what}:\n  {}", shown.join("\n  ")),
    ))
}

/// A value quoted in an error, cut to 80 characters (a 1 MB label is not echoed whole).
pub(crate) fn clip(v: &str) -> String {
    match v.char_indices().nth(80) {
        Some((i, _)) => format!("{}… ({} bytes)", &v[..i], v.len()),
        None => v.to_string(),
    }
}

/// How many problems or ids an error lists before counting the rest.
pub(crate) const SHOWN: usize = 20;

/// The line a problem names (`line N: …`), for sorting; none sorts first.
fn line_of(problem: &str) -> Option<u64> {
    let rest = problem.strip_prefix("line ")?;
    rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())]
        .parse()
        .ok()
}

/// A long list for an error message: sorted, the first [`SHOWN`], the rest counted.
pub(crate) fn short_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut v: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    v.sort_unstable();
    let mut s = v[..v.len().min(SHOWN)].join(", ");
    if v.len() > SHOWN {
        s.push_str(&format!(" … and {} more", v.len() - SHOWN));
    }
    s
}

pub(crate) fn bad(path: &Path, line: Option<u64>, message: impl Into<String>) -> Error {
    let e = Error::data(message).with_path(path);
    match line {
        Some(l) => e.with_row(l),
        None => e,
    }
}

impl Golden {
    pub fn load(dir: &Path) -> Result<Golden> {
        let mpath = dir.join("manifest.json");
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| Error::io("cannot read the golden manifest", &mpath, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            bad(
                &mpath,
                Some(e.line() as u64),
                format!("not a golden manifest: {e}"),
            )
        })?;
        let mut examples = Vec::new();
        for (task, t) in &manifest.tasks {
            let path = dir.join(&t.file);
            let bytes = std::fs::read(&path)
                .map_err(|e| Error::io("cannot read a golden dataset", &path, e))?;
            let sha = crate::table_io::sha256_hex(&bytes);
            if sha != t.sha256 {
                return Err(bad(
                    &path,
                    None,
                    format!(
                        "sha256 {sha} does not match the manifest's {} (edited without regenerating the manifest?)",
                        t.sha256
                    ),
                ));
            }
            let text = String::from_utf8(bytes)
                .map_err(|e| bad(&path, None, format!("not UTF-8 text: {e}")))?;
            let before = examples.len();
            for (line, e) in jsonl::<Example>(&path, &text, "a golden example")? {
                let line_no = Some(line);
                if &e.task != task || !t.labels.contains(&e.label) || e.version != manifest.version
                {
                    return Err(bad(
                        &path,
                        line_no,
                        format!(
                            "example {}: task `{}`, label `{}`, version `{}` do not fit the manifest (task `{task}`, labels {:?}, version {})",
                            e.id, e.task, e.label, e.version, t.labels, manifest.version
                        ),
                    ));
                }
                examples.push(e);
            }
            let found = &examples[before..];
            let crit = found.iter().filter(|e| e.critical).count();
            if found.len() != t.examples || crit != t.critical {
                return Err(bad(
                    &path,
                    None,
                    format!(
                        "{} examples ({crit} critical), the manifest says {} ({})",
                        found.len(),
                        t.examples,
                        t.critical
                    ),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = examples.iter().find(|e| !seen.insert(e.id.as_str())) {
            return Err(bad(
                dir,
                None,
                format!("golden id `{}` appears twice", dup.id),
            ));
        }
        Ok(Golden {
            dir: dir.to_path_buf(),
            manifest,
            examples,
        })
    }
}
