//! `gtmos eval golden` at scale: 1,000,000 predictions across the four tasks, percentile
//! bootstrap intervals from 1,000 resamples, side by side with scikit-learn computing the
//! same report on the same files (`benches/eval_sklearn.py`).
//!
//! `cargo bench --bench eval` (release build; `pip install scikit-learn pandas pyarrow`).
//! `GTMOS_BENCH_PREDICTIONS` sets the size (default 1,000,000). scikit-learn runs
//! `GTMOS_SKLEARN_RESAMPLES` resamples (default 20) and its time is extrapolated linearly to
//! 1,000 (each resample is the same work); both figures are printed.

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use gtmos::eval::golden::{self, BaselineConfig, BootstrapConfig, GateConfig, Golden};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

fn main() {
    let n: usize = std::env::var("GTMOS_BENCH_PREDICTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let small = Golden::load(&common::root().join("golden")).expect("golden");
    let dir = common::base().join(format!("eval-{n}"));
    let preds_path = dir.join("predictions.parquet");
    if !preds_path.exists() {
        write_inputs(&small, &dir, n);
    }
    let resamples = 1000;
    let start = Instant::now();
    let g = Golden::load(&dir).expect("large golden");
    let preds = golden::read_predictions(&preds_path).expect("predictions");
    let aligned = golden::align(&g, &preds, &preds_path).expect("aligned");
    let read_s = start.elapsed().as_secs_f64();
    let cfg = GateConfig {
        bootstrap: BootstrapConfig {
            resamples,
            confidence: 0.95,
            seed: 1,
        },
        calibration_bins: 10,
        baseline: BaselineConfig {
            metric: "accuracy".into(),
            non_inferiority_margin: 0.05,
        },
        tasks: Default::default(),
    };
    let report = golden::evaluate(&g, &cfg, &preds, &aligned, None, &preds_path).expect("report");
    let gtmos_s = start.elapsed().as_secs_f64();
    let acc: Vec<String> = report
        .tasks
        .iter()
        .map(|t| {
            format!(
                "{} {:.4}",
                t.task,
                t.metrics["accuracy"].value.unwrap_or(f64::NAN)
            )
        })
        .collect();

    let sk_resamples: usize = std::env::var("GTMOS_SKLEARN_RESAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let out = std::process::Command::new("python3")
        .arg(common::root().join("benches/eval_sklearn.py"))
        .arg(&dir)
        .arg(sk_resamples.to_string())
        .output();
    println!(
        "eval golden: {n} predictions over 4 tasks, {resamples} bootstrap resamples, {} threads, {} build",
        common::threads(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "  gtmos: {gtmos_s:.2}s (of which reading, checking and aligning the files with Polars {read_s:.2}s); accuracy {}",
        acc.join(", ")
    );
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let mut it = text.lines();
            let fixed: f64 = it.next().and_then(|l| l.parse().ok()).unwrap_or(f64::NAN);
            let per: f64 = it.next().and_then(|l| l.parse().ok()).unwrap_or(f64::NAN);
            let total = fixed + per * resamples as f64;
            println!(
                "  scikit-learn: {fixed:.2}s for the point report + {per:.3}s per resample ({sk_resamples} run) → {total:.1}s at {resamples} resamples; ratio {:.1}× (scikit-learn ÷ gtmos)",
                total / gtmos_s
            );
            for l in it {
                println!("  scikit-learn {l}");
            }
        }
        Ok(o) => eprintln!(
            "scikit-learn run failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("python3 not runnable: {e}"),
    }
}

/// A golden set of `n` examples (the real examples repeated under new ids, so every label and
/// rationale is a real one) and a candidate's predictions (right about 90 % of the time, with
/// confidences), written once.
fn write_inputs(small: &Golden, dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir.join("datasets")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let per_task = n / small.manifest.tasks.len();
    let mut manifest = small.manifest.clone();
    let (mut ids, mut preds, mut confs) = (Vec::new(), Vec::new(), Vec::new());
    for (task, tm) in manifest.tasks.iter_mut() {
        let ex: Vec<_> = small.examples.iter().filter(|e| &e.task == task).collect();
        let path = dir.join(&tm.file);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut critical = 0;
        for i in 0..per_task {
            let mut e = ex[i % ex.len()].clone();
            e.id = format!("{}-{i}", e.id);
            critical += usize::from(e.critical);
            writeln!(f, "{}", serde_json::to_string(&e).unwrap()).unwrap();
            let u = rng.next_u32() as f64 / u32::MAX as f64;
            let right = u < 0.9;
            let p = if right {
                e.label.clone()
            } else {
                tm.labels[(rng.next_u32() as usize) % tm.labels.len()].clone()
            };
            ids.push(e.id);
            preds.push(p);
            confs.push(
                ((0.5 + 0.5 * (rng.next_u32() as f64 / u32::MAX as f64)) * 1000.0).round() / 1000.0,
            );
        }
        f.flush().unwrap();
        drop(f);
        tm.examples = per_task;
        tm.critical = critical;
        tm.sha256 = gtmos::table_io::sha256_file(&path).unwrap();
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("prediction", DataType::Utf8, false),
        Field::new("confidence", DataType::Float64, false),
        Field::new("model_id", DataType::Utf8, false),
    ]));
    let models = vec!["bench-model"; ids.len()];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(preds)),
            Arc::new(Float64Array::from(confs)),
            Arc::new(StringArray::from(models)),
        ],
    )
    .unwrap();
    gtmos::table_io::write_table(&dir.join("predictions.parquet"), schema, &[], &[batch]).unwrap();
}
