//! `gtmos synth`: a deterministic, labelled synthetic corpus (SPEC §5).
//!
//! Reads nothing but its parameters; hands every later stage a complete snapshot (all tables of
//! the schema registry, `manifest.json`) plus `oracle/` with the ground truth tests assert
//! against. The flow:
//!
//! 1. [`plan`]: archetypes dealt with exact counts, faults assigned to eligible accounts;
//! 2. accounts are generated in fixed chunks, in parallel, each from its own RNG streams
//!    ([`lifecycle`] → [`crm`], [`usage`], [`billing`], [`engagement`], [`canary`]);
//! 3. chunks are written in order by one writer thread per table, through bounded channels, so
//!    memory stays bounded and the bytes never depend on `--threads`;
//! 4. [`company`] tables (spend, financials, plan, general ledger) come from exact integer totals;
//! 5. the staging directory is renamed into place only when everything is written.

pub mod billing;
pub mod canary;
pub mod catalog;
pub mod company;
pub mod crm;
pub mod engagement;
pub mod lifecycle;
pub mod margin;
pub mod nights;
pub mod oracle;
pub mod params;
pub mod plan;
pub mod rng;
pub mod summary;
pub mod tables;
pub mod usage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use arrow::array::RecordBatch;
use rayon::prelude::*;

use self::params::{Resolved, SynthParams};
use self::plan::Plan;
use self::summary::Summary;
use self::tables::{CHUNK_TABLES, Tables};
use crate::error::{Error, Outcome, Result};
use crate::printer::Progress;
use crate::schema::Registry;
use crate::snapshot::{MANIFEST, Manifest, TableEntry};
use crate::table_io::{self, TableWriter, WrittenFile};

/// Accounts per chunk: the unit of parallel work and of ordered writing.
const CHUNK_ACCOUNTS: u32 = 64;

/// What `synth` wrote.
#[derive(Debug, Clone)]
pub struct SynthReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Generate a corpus into `out`, replacing a previous corpus there.
pub fn generate(
    params: &SynthParams,
    out: &Path,
    threads: usize,
    progress: bool,
) -> Result<SynthReport> {
    let p = params.resolve()?;
    let started = Instant::now();
    let staging = prepare_staging(out)?;
    let result = generate_into(params, &p, &staging, threads, progress);
    match result {
        Ok(manifest) => {
            swap_into_place(&staging, out)?;
            let rows = manifest.tables.values().map(|t| t.rows).sum();
            let bytes = dir_size(out);
            Ok(SynthReport {
                dir: out.to_path_buf(),
                manifest,
                rows,
                bytes,
                seconds: started.elapsed().as_secs_f64(),
            })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// A fresh staging directory beside `out`; refuses to replace a directory that is not a snapshot.
fn prepare_staging(out: &Path) -> Result<PathBuf> {
    if out.exists() {
        let is_dir = out.is_dir();
        let empty = is_dir
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !is_dir || (!empty && !out.join(MANIFEST).exists()) {
            return Err(Error::usage_hint(
                format!(
                    "refusing to replace {}: it exists and is not a gtmos snapshot",
                    out.display()
                ),
                "choose another --out, or remove the directory first",
            ));
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::io("cannot create output directory", parent, e))?;
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("snapshot");
    let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("cannot clear", &staging, e))?;
    }
    std::fs::create_dir_all(staging.join("oracle"))
        .map_err(|e| Error::io("cannot create output directory", &staging, e))?;
    Ok(staging)
}

fn swap_into_place(staging: &Path, out: &Path) -> Result<()> {
    let old = staging.with_extension("old");
    if out.exists() {
        std::fs::rename(out, &old)
            .map_err(|e| Error::io("cannot move aside the previous snapshot", out, e))?;
    }
    std::fs::rename(staging, out)
        .map_err(|e| Error::io("cannot move the new snapshot into place", out, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .map_err(|e| Error::io("cannot remove the previous snapshot", &old, e))?;
    }
    Ok(())
}

/// Relative path of a table's file in the snapshot.
fn table_file(name: &str) -> String {
    format!("{name}.parquet")
}

type Batch = (&'static str, RecordBatch);

struct Writers {
    senders: BTreeMap<&'static str, SyncSender<RecordBatch>>,
    handles: Vec<(&'static str, JoinHandle<Result<WrittenFile>>)>,
}

impl Writers {
    fn start(reg: &Registry, dir: &Path, names: &[&'static str]) -> Result<Writers> {
        let mut senders = BTreeMap::new();
        let mut handles = Vec::new();
        for &name in names {
            let schema = tables::builder(reg, name)?.finish()?.schema();
            let plain = reg
                .table(name)
                .map(|t| t.plain_columns())
                .unwrap_or_default();
            let mut w = TableWriter::create(&dir.join(table_file(name)), schema, &plain)?;
            let (tx, rx): (SyncSender<RecordBatch>, Receiver<RecordBatch>) = sync_channel(4);
            let h = std::thread::Builder::new()
                .name(format!("write-{name}"))
                .spawn(move || {
                    for b in rx {
                        w.write(&b)?;
                    }
                    w.finish()
                })
                .map_err(|e| Error::io("cannot start a writer thread for", Path::new(name), e))?;
            senders.insert(name, tx);
            handles.push((name, h));
        }
        Ok(Writers { senders, handles })
    }

    /// Hand a batch to its table's writer; a writer that stopped reports its error at `finish`.
    fn send(&self, name: &str, b: RecordBatch) -> bool {
        if b.num_rows() == 0 {
            return true;
        }
        match self.senders.get(name) {
            Some(tx) => tx.send(b).is_ok(),
            None => false,
        }
    }

    fn finish(self) -> Result<BTreeMap<&'static str, WrittenFile>> {
        drop(self.senders);
        let mut out = BTreeMap::new();
        let mut first_err = None;
        for (name, h) in self.handles {
            match h.join() {
                Ok(Ok(w)) => {
                    out.insert(name, w);
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(Error::Internal(format!(
                        "writer thread for `{name}` panicked"
                    )));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

fn generate_into(
    params: &SynthParams,
    p: &Resolved,
    dir: &Path,
    threads: usize,
    show: bool,
) -> Result<Manifest> {
    let reg = Registry::embedded()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("synth-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the thread pool: {e}")))?;
    let plan = pool.install(|| plan::build(p));

    let mut names: Vec<&'static str> = CHUNK_TABLES.to_vec();
    names.push("oracle/faults");
    let writers = Writers::start(reg, dir, &names)?;
    let mut summary = Summary::new(p);
    let chunks: Vec<(u32, u32)> = (0..p.accounts as u32)
        .step_by(CHUNK_ACCOUNTS as usize)
        .map(|from| (from, (from + CHUNK_ACCOUNTS).min(p.accounts as u32)))
        .collect();
    let bar = Progress::with_enabled("synth", p.accounts, show);
    let window = (threads.max(1) * 2).max(2);
    let mut failed = None;
    'outer: for group in chunks.chunks(window) {
        let results: Vec<Result<(Vec<Batch>, Summary)>> = pool.install(|| {
            group
                .par_iter()
                .map(|(from, to)| generate_chunk(p, reg, &plan, *from, *to))
                .collect()
        });
        for (res, (from, to)) in results.into_iter().zip(group) {
            let (batches, s) = match res {
                Ok(x) => x,
                Err(e) => {
                    failed = Some(e);
                    break 'outer;
                }
            };
            summary.merge(&s);
            for (name, b) in batches {
                if !writers.send(name, b) {
                    break 'outer; // the writer's own error is reported by finish()
                }
            }
            bar.advance((to - from) as u64);
        }
    }
    bar.finish();
    if let Some(e) = failed {
        let _ = writers.finish();
        return Err(e);
    }

    // Company tables and their oracle rows, once every account is in the totals.
    let company = company::generate(p, reg, &plan.roster, &plan.faults, &summary)?;
    let mut written: Vec<WrittenFile> = Vec::new();
    let mut company_files = BTreeMap::new();
    for (name, b) in company {
        if name == "oracle/faults" {
            writers.send(name, b);
        } else {
            let plain = reg
                .table(name)
                .map(|t| t.plain_columns())
                .unwrap_or_default();
            let w = table_io::write_table(&dir.join(table_file(name)), b.schema(), &plain, &[b])?;
            company_files.insert(name, w);
        }
    }
    let mut files = writers.finish()?;
    files.extend(company_files);

    let mut tables_map = BTreeMap::new();
    let mut extras = BTreeMap::new();
    for (name, w) in &files {
        if name.starts_with("oracle/") {
            extras.insert(table_file(name), w.sha256.clone());
        } else {
            tables_map.insert(
                name.to_string(),
                TableEntry {
                    path: table_file(name),
                    rows: w.rows,
                    sha256: w.sha256.clone(),
                    files: Vec::new(),
                },
            );
        }
        written.push(w.clone());
    }
    // Empty tables still exist as files with their schema.
    for t in reg.tables() {
        if !tables_map.contains_key(&t.name) {
            let w = table_io::write_table(
                &dir.join(table_file(&t.name)),
                t.arrow_schema(),
                &t.plain_columns(),
                &[],
            )?;
            tables_map.insert(
                t.name.clone(),
                TableEntry {
                    path: table_file(&t.name),
                    rows: 0,
                    sha256: w.sha256,
                    files: Vec::new(),
                },
            );
        }
    }
    for name in ["oracle/accounts", "oracle/margin", "oracle/faults"] {
        if let std::collections::btree_map::Entry::Vacant(e) = extras.entry(table_file(name)) {
            let schema = oracle::schema(name)
                .ok_or_else(|| Error::Internal(format!("no schema for {name}")))?;
            let w = table_io::write_table(&dir.join(table_file(name)), schema, &[], &[])?;
            e.insert(w.sha256);
        }
    }

    let canary = canary::oracle_json(p, &summary);
    let summary_json = oracle_summary(p, &plan, &summary);
    for (name, v) in [
        ("oracle/canary.json", canary),
        ("oracle/summary.json", summary_json),
    ] {
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        let w = table_io::write_atomic(&dir.join(name), text.as_bytes())?;
        extras.insert(name.to_string(), w.sha256);
    }

    let as_of = p.as_of.micros();
    let source = serde_json::to_value(params)
        .map_err(|e| Error::Internal(format!("parameters do not serialise: {e}")))?;
    let manifest = Manifest::new(as_of, as_of, source, tables_map, extras);
    manifest.write(dir)?;
    Ok(manifest)
}

fn generate_chunk(
    p: &Resolved,
    reg: &Registry,
    plan: &Plan,
    from: u32,
    to: u32,
) -> Result<(Vec<Batch>, Summary)> {
    let mut t = Tables::new(reg)?;
    let mut s = Summary::new(p);
    for idx in from..to {
        account(p, plan, idx, &mut t, &mut s);
    }
    Ok((t.finish()?, s))
}

/// Every row of one account.
fn account(p: &Resolved, plan: &Plan, idx: u32, t: &mut Tables, s: &mut Summary) {
    let a = &plan.accounts[idx as usize];
    let faults = plan.faults.for_account(idx);
    let lc = a.is_customer().then(|| lifecycle::Lifecycle::build(p, a));
    let people = crm::account_and_contacts(p, a, lc.as_ref(), &plan.roster, t);
    crm::opportunities(p, a, lc.as_ref(), &people, faults, t);
    if let Some(lc) = &lc {
        let used = usage::generate(p, a, lc, faults, t);
        billing::generate(
            &billing::BillingCtx {
                p,
                a,
                lc,
                usage: &used,
                faults,
            },
            t,
            s,
        );
        usage::reference(p, a, &used, faults, t);
        margin::generate(p, a, lc, &used, t);
        engagement::feature_engagement(p, a, lc, t);
        engagement::support_tickets(p, a, lc, t);
        engagement::nps(p, a, lc, &people, t);
        engagement::qbrs(p, a, lc, &people, t);
        engagement::onboarding(p, a, lc, t);
        engagement::technical_milestones(p, a, lc, t);
        *s.archetypes.entry(lc.archetype).or_default() += 1;
    } else {
        s.prospects += 1;
    }
    engagement::conversations(p, a, lc.as_ref(), &people, t);
    crm::cadence(p, a, lc.as_ref(), &people, t);
    let active_to = lc.as_ref().map(|l| l.active_to).unwrap_or(p.as_of);
    let arm = canary::generate(p, a, &people, active_to, t, s);
    oracle_account(p, a, lc.as_ref(), &people, arm, t);
}

fn oracle_account(
    p: &Resolved,
    a: &plan::AccountPlan,
    lc: Option<&lifecycle::Lifecycle>,
    people: &crm::People,
    arm: Option<usize>,
    t: &mut Tables,
) {
    let o = &mut t.oracle_accounts;
    o.b.str(o.c.account_id, &plan::account_id(a.idx));
    o.b.opt_str(o.c.archetype, a.archetype.map(|x| x.name()));
    o.b.str(o.c.segment, catalog::SEGMENTS[a.segment]);
    o.b.opt_date(o.c.first_term_start, a.first_term_start.map(|d| d.0));
    if let Some(lc) = lc {
        o.b.opt_date(o.c.churn_date, lc.churn_date.map(|d| d.0));
        if let Some(dep) = lc.story.champion_departure {
            o.b.opt_str(
                o.c.champion_contact_id,
                people.champion.map(|i| people.contacts[i].id.as_str()),
            );
            o.b.date(o.c.champion_departure_date, dep.0);
        }
        if let Some((st, en, mult, crash)) = lc.story.spike {
            o.b.date(o.c.spike_start, st.0);
            o.b.date(o.c.spike_end, en.0);
            o.b.f64(o.c.spike_multiplier, mult);
            o.b.f64(o.c.crash_level, crash);
        }
        if let Some((period, _, _)) = lc.story.season {
            o.b.i32(o.c.season_period_days, period);
        }
    }
    let _ = p;
    o.b.opt_str(o.c.canary_arm, arm.map(|x| ["control", "variant"][x]));
    o.b.end_row();
}

fn oracle_summary(p: &Resolved, plan: &Plan, s: &Summary) -> serde_json::Value {
    let archetypes: serde_json::Map<String, serde_json::Value> = s
        .archetypes
        .iter()
        .map(|(a, n)| (a.name().to_string(), serde_json::json!(n)))
        .collect();
    let faults: serde_json::Map<String, serde_json::Value> = plan
        .faults
        .counts
        .iter()
        .map(|(f, (want, placed))| {
            (
                f.name().to_string(),
                serde_json::json!({"table": f.table(), "expected": f.expected().name(), "requested": want, "placed": placed}),
            )
        })
        .collect();
    serde_json::json!({
        "accounts": p.accounts,
        "customers": s.archetypes.values().sum::<u64>(),
        "prospects": s.prospects,
        "archetypes": archetypes,
        "faults": faults,
    })
}

/// Result of `synth --verify`: tables (and oracle files) whose regenerated bytes differ.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub checked: Vec<String>,
    pub differing: Vec<String>,
}

impl VerifyReport {
    pub fn outcome(&self) -> Outcome {
        if self.differing.is_empty() {
            Outcome::Success
        } else {
            Outcome::GateFailed
        }
    }
}

/// Regenerate the corpus in `dir` from its manifest's parameters and compare every file's bytes.
pub fn verify(dir: &Path, threads: usize, progress: bool) -> Result<VerifyReport> {
    let manifest = Manifest::read(dir)?;
    let mpath = dir.join(MANIFEST);
    if !manifest.digest_ok() {
        return Err(Error::data(
            "manifest.json was edited after it was written (its digest does not match)",
        )
        .with_path(&mpath)
        .with_hint("regenerate the corpus with `gtmos synth`"));
    }
    let params: SynthParams = serde_json::from_value(manifest.source.clone()).map_err(|e| {
        Error::data(format!("`source` does not hold synth parameters: {e}"))
            .with_path(&mpath)
            .with_hint("--verify works on corpora written by `gtmos synth`")
    })?;
    params.resolve().map_err(|e| {
        Error::data(format!("`source` parameters are invalid: {e}")).with_path(&mpath)
    })?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("snapshot");
    let regen = parent.join(format!(".{name}.verify-{}", std::process::id()));
    let result = generate(&params, &regen, threads, progress);
    let report = result.map(|r| {
        let mut checked = Vec::new();
        let mut differing = Vec::new();
        let recorded: BTreeMap<String, String> = manifest
            .tables
            .values()
            .map(|t| (t.path.clone(), t.sha256.clone()))
            .chain(manifest.extras.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        let fresh: BTreeMap<String, String> = r
            .manifest
            .tables
            .values()
            .map(|t| (t.path.clone(), t.sha256.clone()))
            .chain(
                r.manifest
                    .extras
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            )
            .collect();
        let all: std::collections::BTreeSet<&String> =
            recorded.keys().chain(fresh.keys()).collect();
        for path in all {
            checked.push(path.clone());
            let on_disk = table_io::sha256_file(&dir.join(path)).ok();
            let same = recorded.get(path) == fresh.get(path) && on_disk.as_ref() == fresh.get(path);
            if !same {
                differing.push(path.clone());
            }
        }
        VerifyReport { checked, differing }
    });
    let _ = std::fs::remove_dir_all(&regen);
    report
}
