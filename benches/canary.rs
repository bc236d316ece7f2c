//! `gtmos canary` at scale: 10,000,000 decisions (half in a pre-period, half in the
//! experiment, one million accounts randomised by account) with their outcomes, read from
//! Parquet, tallied per account and compared (every metric's per-arm rates and
//! intervals, fixed-horizon and always-valid tests, Holm, the verdict) — side by side with
//! pandas + scipy computing the same per-arm statistics on the same files
//! (`benches/canary_pandas.py`).
//!
//! `cargo bench --bench canary` (release build; `pip install pandas pyarrow scipy`).
//! `GTMOS_BENCH_DECISIONS` sets the size (default 10,000,000).

mod common;

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use gtmos::canary::{self, compare, traffic};
use gtmos::schema::Registry;
use gtmos::table_io::TableWriter;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const DAY: i64 = 86_400_000_000;
/// Decisions per account in each period.
const PER_PERIOD: usize = 5;

fn main() {
    let n: usize = std::env::var("GTMOS_BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = common::base().join(format!("canary-{n}"));
    if !dir.join("decision_outcomes.parquet").exists() {
        write_inputs(&dir, n);
    }
    let as_of = 84 * DAY;
    let cfg = canary::load_config(&common::root().join("pipelines/canary.yml")).expect("config");

    let start = Instant::now();
    // As `gtmos canary` reads a snapshot: only the columns the comparison needs, both tables
    // at once.
    let read = |f: &str, cols: &[&str]| traffic::read_table(&dir.join(f), cols).expect("read");
    let (dec, out) = rayon::join(
        || read("agent_decisions.parquet", &traffic::DECISION_COLUMNS),
        || read("decision_outcomes.parquet", &traffic::OUTCOME_COLUMNS),
    );
    let read_s = start.elapsed().as_secs_f64();
    let t = traffic::from_batches(&dec, &out, "exp-bench", as_of).expect("traffic");
    let tally_s = start.elapsed().as_secs_f64() - read_s;
    let c = compare::compare(&t.accounts, &cfg, false);
    let gtmos_s = start.elapsed().as_secs_f64();
    let cuped_start = Instant::now();
    let cu = compare::compare(&t.accounts, &cfg, true);
    let cuped_s = cuped_start.elapsed().as_secs_f64();
    let peak = common::peak_rss_mib();
    let m = c
        .metrics
        .iter()
        .find(|m| m.metric == "meeting_rate")
        .unwrap();
    let mc = cu
        .metrics
        .iter()
        .find(|m| m.metric == "meeting_rate")
        .unwrap();
    println!(
        "canary: {} decisions ({} in the experiment), {} outcomes, {} accounts, {} threads, {} build",
        t.decisions * 2,
        t.decisions,
        t.outcomes,
        t.accounts.len(),
        common::threads(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "  gtmos: {gtmos_s:.2}s (reading Parquet {read_s:.2}s, per-account tallies {tally_s:.2}s, statistics and verdict {:.3}s; CUPED adds {cuped_s:.3}s); peak memory {peak:.0} MiB; verdict {}",
        gtmos_s - read_s - tally_s,
        c.verdict
    );
    println!(
        "  gtmos meeting rate: control {:.6}, variant {:.6}, delta {:.6}, z p {:.3e}, always-valid p {:.3e}; CUPED variance reduction {:.1} %",
        m.control.value.unwrap(),
        m.variant.value.unwrap(),
        m.delta.unwrap(),
        m.p_fixed.unwrap(),
        m.p_sequential.unwrap(),
        mc.cuped.map_or(0.0, |c| c.variance_reduction * 100.0)
    );
    let py = std::process::Command::new("python3")
        .arg(common::root().join("benches/canary_pandas.py"))
        .arg(&dir)
        .output();
    match py {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let mut it = text.lines();
            let secs: f64 = it.next().and_then(|l| l.parse().ok()).unwrap_or(f64::NAN);
            println!(
                "  pandas + scipy: {secs:.2}s; ratio {:.1}× (pandas ÷ gtmos)",
                secs / gtmos_s
            );
            for l in it {
                println!("  pandas {l}");
            }
        }
        Ok(o) => eprintln!("pandas run failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("python3 not runnable: {e}"),
    }
}

fn uniform(r: &mut ChaCha8Rng) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `n` decisions over n / 10 accounts — five in the pre-period and five in the experiment
/// each — with outcomes from the corpus' funnel (the variant replies 10 % and books 15 % more),
/// written once in the registry's types.
fn write_inputs(dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let reg = Registry::embedded().unwrap();
    let ds = reg.table("agent_decisions").unwrap().arrow_schema();
    let os = reg.table("decision_outcomes").unwrap().arrow_schema();
    let mut dw =
        TableWriter::create(&dir.join("agent_decisions.parquet"), ds.clone(), &[]).unwrap();
    let mut ow =
        TableWriter::create(&dir.join("decision_outcomes.parquet"), os.clone(), &[]).unwrap();
    let mut r = ChaCha8Rng::seed_from_u64(7);
    let accounts = n / (2 * PER_PERIOD);
    let chunk = 100_000 / (2 * PER_PERIOD);
    let mut did = 0u64;
    let mut oid = 0u64;
    for first in (0..accounts).step_by(chunk) {
        let (mut d_id, mut d_at, mut d_acct, mut d_exp, mut d_arm, mut d_model, mut d_cost) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut o_id, mut o_dec, mut o_at, mut o_type, mut o_pipe) =
            (vec![], vec![], vec![], vec![], vec![]);
        for a in first..(first + chunk).min(accounts) {
            let variant = r.next_u32() & 1 == 1;
            let resp = (0.4 + 1.2 * uniform(&mut r)).min(4.0);
            let acct = format!("A{a:07}");
            for period in 0..2 {
                for _ in 0..PER_PERIOD {
                    did += 1;
                    let id = format!("D{did:010}");
                    let at =
                        (period * 42) as i64 * DAY + (uniform(&mut r) * 42.0 * DAY as f64) as i64;
                    let g = period == 1 && variant;
                    d_id.push(id.clone());
                    d_at.push(at);
                    d_acct.push(acct.clone());
                    d_exp.push((period == 1).then_some("exp-bench"));
                    d_arm.push((period == 1).then_some(if variant {
                        "variant"
                    } else {
                        "control"
                    }));
                    d_model.push(if g {
                        "gtm-agent-3.3-rc1"
                    } else {
                        "gtm-agent-3.2"
                    });
                    d_cost.push((20_000.0 + uniform(&mut r) * 380_000.0) as i128);
                    let mut push = |kind: &'static str, delay: i64, pipe: Option<i128>| {
                        oid += 1;
                        o_id.push(format!("O{oid:011}"));
                        o_dec.push(id.clone());
                        o_at.push((at + delay).min(84 * DAY - 1));
                        o_type.push(kind);
                        o_pipe.push(pipe);
                    };
                    let lift = |x: f64, e: f64| if g { x * (1.0 + e) } else { x };
                    let mut executed = true;
                    if uniform(&mut r) < 0.05 {
                        push("trust_block", 1_000_000, None);
                        let rejected = uniform(&mut r) < 0.4;
                        push(
                            if rejected {
                                "human_rejected"
                            } else {
                                "human_approved"
                            },
                            3_600_000_000,
                            None,
                        );
                        executed = !rejected;
                    }
                    if !executed {
                        continue;
                    }
                    if uniform(&mut r) < 0.004 {
                        push("duplicate_incident", 60_000_000, None);
                    }
                    if uniform(&mut r) < 0.003 {
                        push("cooldown_violation", 60_000_000, None);
                    }
                    if uniform(&mut r) < (lift(0.12, 0.10) * resp).min(0.95) {
                        push("reply", 7_200_000_000, None);
                        if uniform(&mut r) < 0.40 {
                            push("positive_reply", 7_260_000_000, None);
                            if uniform(&mut r) < lift(0.35, 0.15) {
                                push("meeting_booked", 2 * DAY, None);
                                if uniform(&mut r) < 0.5 {
                                    push(
                                        "opportunity_created",
                                        9 * DAY,
                                        Some(
                                            (2_000_000.0 + uniform(&mut r) * 20_000_000.0) as i128,
                                        ),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        let ts = |v: Vec<i64>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
        };
        let dcols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(d_id)),
            ts(d_at),
            Arc::new(StringArray::from(d_acct)),
            Arc::new(StringArray::from(vec![None::<&str>; d_model.len()])),
            Arc::new(StringArray::from(vec!["tam"; d_model.len()])),
            Arc::new(StringArray::from(vec!["email_generation"; d_model.len()])),
            Arc::new(StringArray::from(d_exp)),
            Arc::new(StringArray::from(d_arm)),
            Arc::new(StringArray::from(d_model.clone())),
            Arc::new(StringArray::from(vec!["policy-2025.11"; d_model.len()])),
            Arc::new(Float64Array::from(vec![0.8; d_model.len()])),
            Arc::new(StringArray::from(vec!["pass"; d_model.len()])),
            Arc::new(
                Decimal128Array::from(d_cost)
                    .with_precision_and_scale(18, 6)
                    .unwrap(),
            ),
        ];
        dw.write(&RecordBatch::try_new(ds.clone(), dcols).unwrap())
            .unwrap();
        let ocols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(o_id)),
            Arc::new(StringArray::from(o_dec)),
            ts(o_at),
            Arc::new(StringArray::from(o_type)),
            Arc::new(
                Decimal128Array::from(o_pipe)
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
        ];
        ow.write(&RecordBatch::try_new(os.clone(), ocols).unwrap())
            .unwrap();
    }
    dw.finish().unwrap();
    ow.finish().unwrap();
}
