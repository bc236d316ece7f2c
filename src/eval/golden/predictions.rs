//! Prediction files (JSONL or Parquet), read with line-precise errors and lined up with the
//! golden examples (Polars).

use super::*;

/// One line of a prediction file.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: String,
    pub prediction: String,
    pub confidence: Option<f64>,
    pub model_id: Option<String>,
    /// 1-based line (JSONL) or row (Parquet).
    pub line: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionLine {
    pub(super) id: String,
    pub(super) prediction: String,
    #[serde(default)]
    pub(super) confidence: Option<f64>,
    #[serde(default)]
    pub(super) model_id: Option<String>,
}

/// Read a prediction file: JSONL, or Parquet (by extension) with columns id, prediction and
/// optional confidence, model_id.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    if path.extension().and_then(|e| e.to_str()) == Some("parquet") {
        return read_parquet_predictions(path);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read the predictions", path, e))?;
    Ok(jsonl::<PredictionLine>(path, &text, "a prediction")?
        .into_iter()
        .map(|(line, p)| Prediction {
            id: p.id,
            prediction: p.prediction,
            confidence: p.confidence,
            model_id: p.model_id,
            line,
        })
        .collect())
}

/// The objects of a JSONL text with their 1-based line numbers (blank lines skipped); the
/// first line that is not a `what` is an error naming it.
pub(crate) fn jsonl<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    what: &str,
) -> Result<Vec<(u64, T)>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line = i as u64 + 1;
            serde_json::from_str(l)
                .map(|v| (line, v))
                .map_err(|e| bad(path, Some(line), format!("not {what}: {e}")))
        })
        .collect()
}

fn read_parquet_predictions(path: &Path) -> Result<Vec<Prediction>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let (schema, batches) = crate::table_io::read_parquet(path)?;
    let col = |name: &str, required: bool| -> Result<Option<usize>> {
        match schema.index_of(name) {
            Ok(i) => Ok(Some(i)),
            Err(_) if !required => Ok(None),
            Err(_) => Err(bad(
                path,
                None,
                format!("no column `{name}` (need id, prediction; optional confidence, model_id)"),
            )
            .with_column(name)),
        }
    };
    let (id, pred, conf, model) = (
        col("id", true)?,
        col("prediction", true)?,
        col("confidence", false)?,
        col("model_id", false)?,
    );
    let mut out = Vec::new();
    for b in &batches {
        let text = |i: Option<usize>, name: &str| -> Result<Option<arrow::array::ArrayRef>> {
            i.map(|i| {
                arrow::compute::cast(b.column(i), &DataType::Utf8).map_err(|e| {
                    bad(path, None, format!("column `{name}` is not text: {e}")).with_column(name)
                })
            })
            .transpose()
        };
        let (ids, preds, models) = (
            text(id, "id")?.expect("required"),
            text(pred, "prediction")?.expect("required"),
            text(model, "model_id")?,
        );
        let confs = conf
            .map(|i| {
                arrow::compute::cast(b.column(i), &DataType::Float64).map_err(|e| {
                    bad(
                        path,
                        None,
                        format!("column `confidence` is not a number: {e}"),
                    )
                    .with_column("confidence")
                })
            })
            .transpose()?;
        for r in 0..b.num_rows() {
            let line = out.len() as u64 + 1;
            let s = |a: &arrow::array::ArrayRef, name: &str| -> Result<String> {
                if a.is_null(r) {
                    return Err(
                        bad(path, Some(line), format!("`{name}` is null")).with_column(name)
                    );
                }
                Ok(a.as_string::<i32>().value(r).to_string())
            };
            out.push(Prediction {
                id: s(&ids, "id")?,
                prediction: s(&preds, "prediction")?,
                confidence: confs.as_ref().and_then(|c| {
                    (!c.is_null(r)).then(|| c.as_primitive::<Float64Type>().value(r))
                }),
                model_id: models.as_ref().and_then(|m| {
                    (!m.is_null(r)).then(|| m.as_string::<i32>().value(r).to_string())
                }),
                line,
            });
        }
    }
    Ok(out)
}

/// Predictions lined up with the golden examples: `row[i]` is the prediction for example i.
#[derive(Debug, Clone)]
pub struct Aligned {
    pub model_id: String,
    pub row: Vec<usize>,
}

/// Line predictions up with the examples, or list every problem: ids not in the golden set,
/// examples without a prediction, ids predicted twice, labels outside the task, confidences
/// outside [0, 1] or not numbers, more than one model in a file. Nothing is dropped.
pub fn align(golden: &Golden, preds: &[Prediction], path: &Path) -> Result<Aligned> {
    let m = match_keys(
        &golden
            .examples
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        &preds.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
    )?;
    let mut problems: Vec<String> = Vec::new();
    let at = |r: u32| format!("line {}", preds[r as usize].line);
    // Ids predicted more than once.
    for lines in &m.dup_right {
        problems.push(format!(
            "id `{}` predicted {} times ({})",
            preds[lines[0] as usize].id,
            lines.len(),
            lines.iter().map(|&r| at(r)).collect::<Vec<_>>().join(", ")
        ));
    }
    // Ids not in the golden set.
    for &r in &m.right_only {
        problems.push(format!(
            "{}: id `{}` is not in the golden set",
            at(r),
            clip(&preds[r as usize].id)
        ));
    }
    // Examples without a prediction.
    if !m.left_only.is_empty() {
        let ids: Vec<&str> = m
            .left_only
            .iter()
            .map(|&r| golden.examples[r as usize].id.as_str())
            .collect();
        problems.push(format!(
            "{} golden example(s) have no prediction: {}",
            ids.len(),
            short_list(&ids)
        ));
    }
    // Labels outside the example's task.
    let mut wrong: Vec<(u32, u32)> = m
        .pairs
        .iter()
        .filter(|&&(g, p)| {
            let task = &golden.examples[g as usize].task;
            !golden.manifest.tasks[task]
                .labels
                .contains(&preds[p as usize].prediction)
        })
        .map(|&(g, p)| (p, g))
        .collect();
    wrong.sort_unstable();
    for (r, gr) in wrong {
        let pr = &preds[r as usize];
        let task = &golden.examples[gr as usize].task;
        problems.push(format!(
            "{}: `{}` is not a label of task {task} (labels: {})",
            at(r),
            clip(&pr.prediction),
            golden.manifest.tasks[task].labels.join(", ")
        ));
    }
    for (i, pr) in preds.iter().enumerate() {
        if let Some(c) = pr.confidence
            && !(0.0..=1.0).contains(&c)
        {
            problems.push(format!(
                "{}: confidence {c} is outside [0, 1]",
                at(i as u32)
            ));
        }
    }
    let with_conf = preds.iter().filter(|p| p.confidence.is_some()).count();
    if with_conf != 0 && with_conf != preds.len() {
        // Name the lines of the minority: the ones that break "all or none".
        let has = with_conf * 2 < preds.len();
        let lines: Vec<u64> = preds
            .iter()
            .filter(|p| p.confidence.is_some() == has)
            .map(|p| p.line)
            .collect();
        let mut shown: Vec<String> = lines.iter().take(SHOWN).map(u64::to_string).collect();
        if lines.len() > SHOWN {
            shown.push(format!("… and {} more", lines.len() - SHOWN));
        }
        problems.push(format!(
            "{with_conf} of {} predictions carry a confidence: all or none must (calibration needs every one); {} {}: line {}",
            preds.len(),
            if has { "with one" } else { "without one" },
            if lines.len() == 1 { "is" } else { "are" },
            shown.join(", ")
        ));
    }
    let models: std::collections::BTreeSet<&str> = preds
        .iter()
        .map(|p| p.model_id.as_deref().unwrap_or(""))
        .collect();
    if models.len() > 1 || models.contains("") {
        let first = |m: &str| {
            preds
                .iter()
                .find(|p| p.model_id.as_deref().unwrap_or("") == m)
                .map_or(0, |p| p.line)
        };
        problems.push(format!(
            "model_id must be present on every line and the same throughout; found {}",
            models
                .iter()
                .map(|m| if m.is_empty() {
                    format!("none (first at line {})", first(m))
                } else {
                    format!("`{m}` (first at line {})", first(m))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    refuse(path, "the predictions", problems)?;
    let mut row = vec![0usize; golden.examples.len()];
    for &(g, p) in &m.pairs {
        row[g as usize] = p as usize;
    }
    Ok(Aligned {
        model_id: models.into_iter().next().unwrap_or_default().to_string(),
        row,
    })
}
