//! The same build on the local engine and on a loopback Ballista cluster (a scheduler and two
//! executors on this machine), side by side: time, peak resident memory per process, and the
//! shuffle volume per stage read from the executors' logs. Both warehouses' published tables
//! are compared byte for byte.
//!
//! Same total memory: the local build gets `GTMOS_MEMORY_MB` (default 4096); each executor
//! half of it. The build process itself still reads results back and writes every table, as
//! it does locally. Each executor runs half the cores' tasks at once.
//!
//! `cargo bench --features distributed --bench cluster` (release). `GTMOS_BENCH_ACCOUNTS` sets
//! the corpus size (default 100,000).

mod common;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("port")
        .port()
}

/// One build: seconds, and the peak RSS (MiB) of the build process and of each of `watched`.
fn build(
    snapshot: &Path,
    warehouse: &Path,
    extra: &[&str],
    watched: &[(String, u32)],
) -> (f64, f64, Vec<(String, f64)>) {
    let (seconds, peak, _) =
        common::gtmos_build(env!("CARGO_BIN_EXE_gtmos"), snapshot, warehouse, extra);
    // The cluster's processes are still running: their VmHWM is their peak so far.
    let others = watched
        .iter()
        .map(|(name, pid)| (name.clone(), common::peak_rss_mib_of(*pid)))
        .collect();
    (seconds, peak, others)
}

/// One stage's shuffle writes: tasks, rows, bytes, and seconds summed over its tasks.
type Stage = (u64, u64, u64, f64);

/// Per `job/stage`, from the executors'
/// `shuffle JOB/STAGE task N: R rows, B bytes in P partitions, T s` lines.
fn shuffle_stages(logs: &[PathBuf]) -> BTreeMap<String, Stage> {
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    for log in logs {
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        for line in text.lines() {
            let Some(rest) = line.split("shuffle ").nth(1) else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            // [JOB/STAGE, task, N:, R, rows,, B, bytes, in, P, partitions,, T, s]
            if words.len() < 12 || words[1] != "task" {
                continue;
            }
            let num = |i: usize| words[i].trim_end_matches(',').parse::<f64>().unwrap_or(0.0);
            let e = stages.entry(words[0].to_string()).or_default();
            e.0 += 1;
            e.1 += num(3) as u64;
            e.2 += num(5) as u64;
            e.3 += num(10);
        }
    }
    stages
}

struct Cluster {
    scheduler: String,
    processes: Vec<(String, Child)>,
    logs: Vec<PathBuf>,
}

impl Cluster {
    fn start(dir: &Path, executors: usize) -> Cluster {
        std::fs::create_dir_all(dir).expect("cluster dir");
        let port = free_port();
        let memory = (common::memory_limit() >> 20) / executors;
        let concurrency = (common::threads() / executors).max(1);
        let spawn = |name: &str, args: Vec<String>| {
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
            let child = Command::new(env!("CARGO_BIN_EXE_gtmos"))
                .args(args)
                .env("GTMOS_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("gtmos");
            (name.to_string(), child)
        };
        let mut processes = vec![spawn(
            "scheduler",
            vec![
                "scheduler".into(),
                "--bind-host".into(),
                "127.0.0.1".into(),
                "--external-host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
            ],
        )];
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let scheduler = format!("df://127.0.0.1:{port}");
        let mut logs = Vec::new();
        for i in 0..executors {
            let work = dir.join(format!("executor-{i}-work"));
            std::fs::create_dir_all(&work).expect("work dir");
            let name = format!("executor-{i}");
            logs.push(dir.join(format!("{name}.log")));
            processes.push(spawn(
                &name,
                vec![
                    "executor".into(),
                    "--scheduler".into(),
                    scheduler.clone(),
                    "--bind-host".into(),
                    "127.0.0.1".into(),
                    "--external-host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    free_port().to_string(),
                    "--grpc-port".into(),
                    free_port().to_string(),
                    "--concurrency".into(),
                    concurrency.to_string(),
                    "--memory-mb".into(),
                    memory.to_string(),
                    "--work-dir".into(),
                    work.to_string_lossy().into_owned(),
                ],
            ));
        }
        // Executors register within a heartbeat.
        std::thread::sleep(Duration::from_secs(3));
        Cluster {
            scheduler,
            processes,
            logs,
        }
    }

    fn pids(&self) -> Vec<(String, u32)> {
        self.processes
            .iter()
            .map(|(n, c)| (n.clone(), c.id()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, p) in &mut self.processes {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

fn main() {
    let accounts = common::accounts();
    let corpus = common::corpus(accounts);
    let base = common::base().join(format!("cluster-{accounts}"));
    let _ = std::fs::remove_dir_all(&base);
    let (local, remote) = (base.join("wh-local"), base.join("wh-cluster"));
    println!(
        "cluster bench: {accounts} accounts, {} MiB in all, {} cores",
        common::memory_limit() >> 20,
        common::threads()
    );
    let (sl, ml, _) = build(&corpus, &local, &[], &[]);
    println!("  local engine                    {sl:8.1} s  peak {ml:7.0} MiB");
    let cluster = Cluster::start(&base.join("cluster"), 2);
    let (sc, mc, others) = build(
        &corpus,
        &remote,
        &["--engine", "ballista", "--scheduler", &cluster.scheduler],
        &cluster.pids(),
    );
    println!("  cluster (scheduler + 2 executors) {sc:6.1} s  build process peak {mc:7.0} MiB");
    for (name, mib) in &others {
        println!("    {name:<12} peak {mib:7.0} MiB");
    }
    let stages = shuffle_stages(&cluster.logs);
    let (tasks, rows, bytes, secs) = stages.values().fold((0, 0, 0, 0.0), |a, s| {
        (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3)
    });
    let jobs: std::collections::BTreeSet<&str> =
        stages.keys().filter_map(|k| k.split('/').next()).collect();
    println!(
        "  shuffle: {} jobs, {} stages, {tasks} tasks, {rows} rows, {:.1} MiB written, {secs:.1} task-seconds",
        jobs.len(),
        stages.len(),
        bytes as f64 / 1048576.0
    );
    let mut largest: Vec<(&String, &Stage)> = stages.iter().collect();
    largest.sort_by_key(|(_, s)| std::cmp::Reverse(s.2));
    println!("  largest stages by shuffle bytes (job/stage: tasks, rows, MiB, task-seconds):");
    for (stage, (t, r, b, s)) in largest.iter().take(10) {
        println!(
            "    {stage:<20} {t:4} {r:12} {:9.1} {s:8.1}",
            *b as f64 / 1048576.0
        );
    }
    let (a, b) = (common::published(&local), common::published(&remote));
    let differing: Vec<&str> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0.as_str())
        .collect();
    println!(
        "  published tables: {} local, {} cluster, {} differing {:?}",
        a.len(),
        b.len(),
        differing.len(),
        differing
    );
    println!("  cluster / local time: {:.2}", sc / sl);
    drop(cluster);
}
