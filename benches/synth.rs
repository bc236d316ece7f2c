//! Synth throughput and memory, and the cost of merely writing the same tables.
//!
//! `cargo bench --bench synth` generates corpora of 10,000 and 100,000 accounts × 2 years
//! (override with `GTMOS_BENCH_ACCOUNTS=10000,100000`) and prints, per size:
//! rows, seconds, rows per second and peak resident memory of the generating process; then the
//! time to write the same tables with the same Parquet settings, table by table, from memory —
//! with gtmos' own writer and, when `python3 -c "import pyarrow"` works, with pyarrow
//! (`benches/rewrite_pyarrow.py`). The ratio synth ÷ write-only shows what generation costs
//! beyond encoding.
//!
//! Each measurement runs in a child process so its peak memory (VmHWM) is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Child: generate a corpus and print `rows seconds peak_mib`.
fn child_synth(accounts: u64, out: &Path) {
    let params = gtmos::synth::params::SynthParams {
        accounts,
        ..Default::default()
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let r = gtmos::synth::generate(&params, out, threads, false).expect("synth failed");
    println!("{} {} {}", r.rows, r.seconds, peak_rss_mib());
}

/// Child: read each table of a snapshot into memory and time writing it again.
fn child_rewrite(dir: &Path, scratch: &Path) {
    let manifest = gtmos::snapshot::Manifest::read(dir).expect("manifest");
    std::fs::create_dir_all(scratch).expect("scratch dir");
    let reg = gtmos::schema::Registry::embedded().expect("registry");
    let mut seconds = 0.0;
    for (name, entry) in &manifest.tables {
        let (schema, batches) =
            gtmos::table_io::read_parquet(&dir.join(&entry.path)).expect("read");
        let plain = reg
            .table(name)
            .map(|t| t.plain_columns())
            .unwrap_or_default();
        let t = Instant::now();
        gtmos::table_io::write_table(&scratch.join(&entry.path), schema, &plain, &batches)
            .expect("write");
        seconds += t.elapsed().as_secs_f64();
    }
    let _ = std::fs::remove_dir_all(scratch);
    println!("{seconds} {}", peak_rss_mib());
}

fn run_child(args: &[String]) -> Vec<f64> {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe).args(args).output().expect("child");
    if !out.status.success() {
        panic!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn pyarrow_rewrite(dir: &Path) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/rewrite_pyarrow.py");
    let out = Command::new("python3").arg(script).arg(dir).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "pyarrow rewrite skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 4 && args[1] == "--child-synth" {
        return child_synth(args[2].parse().expect("accounts"), Path::new(&args[3]));
    }
    if args.len() >= 4 && args[1] == "--child-rewrite" {
        return child_rewrite(Path::new(&args[2]), Path::new(&args[3]));
    }
    let sizes: Vec<u64> = std::env::var("GTMOS_BENCH_ACCOUNTS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("synth benchmark: 2024-01-01..2025-12-31, seed 42, {cores} threads, release build");
    println!(
        "{:>9} {:>13} {:>9} {:>13} {:>10} {:>14} {:>10} {:>14} {:>10}",
        "accounts",
        "rows",
        "synth s",
        "rows/s",
        "peak MiB",
        "write-only s",
        "ratio",
        "pyarrow s",
        "ratio"
    );
    for n in sizes {
        let dir = base.join(format!("synth-{n}"));
        let s = run_child(&[
            "--child-synth".into(),
            n.to_string(),
            dir.display().to_string(),
        ]);
        let (rows, secs, peak) = (s[0], s[1], s[2]);
        let w = run_child(&[
            "--child-rewrite".into(),
            dir.display().to_string(),
            base.join("rewrite").display().to_string(),
        ]);
        let py = pyarrow_rewrite(&dir);
        println!(
            "{:>9} {:>13.0} {:>9.2} {:>13.0} {:>10.0} {:>14.2} {:>10.2} {:>14} {:>10}",
            n,
            rows,
            secs,
            rows / secs,
            peak,
            w[0],
            secs / w[0],
            py.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into()),
            py.map(|x| format!("{:.2}", secs / x))
                .unwrap_or_else(|| "-".into()),
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
