//! The distributed engine: a scheduler and two executors started as processes on loopback,
//! building the test corpus on the cluster; every published table must be byte-identical to
//! the local engine's.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gtmos::engine::{Engine, EngineConfig, MODELS, Runner, SCRATCH};

use crate::build::built_warehouse;
use crate::common::{Table, assert_same_tables, build, corpus, gtmos, published, tempdir};

/// A free loopback port (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Processes of a loopback cluster, stopped when dropped.
pub(crate) struct Cluster {
    pub(crate) scheduler: String,
    processes: Vec<(String, Child)>,
}

impl Cluster {
    /// A scheduler and `executors` executors of one task each, working under `dir`.
    pub(crate) fn start(dir: &Path, executors: usize) -> Cluster {
        let port = free_port();
        let log = |name: &str| std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let spawn = |name: &str, args: &[String]| {
            let child = Command::new(env!("CARGO_BIN_EXE_gtmos"))
                .args(args)
                .stdout(Stdio::from(log(name)))
                .stderr(Stdio::from(log(&format!("{name}.err"))))
                .spawn()
                .expect("gtmos starts");
            (name.to_string(), child)
        };
        let mut processes = vec![spawn(
            "scheduler",
            &[
                "scheduler".into(),
                "--bind-host".into(),
                "127.0.0.1".into(),
                "--external-host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--executor-timeout-seconds".into(),
                "10".into(),
            ],
        )];
        wait_for_port(port);
        let scheduler = format!("df://127.0.0.1:{port}");
        for i in 0..executors {
            let work = dir.join(format!("executor-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            processes.push(spawn(
                &format!("executor-{i}"),
                &[
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
                    "1".into(),
                    "--work-dir".into(),
                    work.to_string_lossy().into_owned(),
                    "--memory-mb".into(),
                    "512".into(),
                ],
            ));
        }
        Cluster {
            scheduler,
            processes,
        }
    }
}

impl Cluster {
    /// Kill a process of the cluster at once (SIGKILL), as a crashed machine would stop.
    fn kill(&mut self, name: &str) {
        let (_, p) = self
            .processes
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("a process of that name");
        p.kill().unwrap();
        p.wait().unwrap();
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

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the scheduler did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_build_on_a_loopback_cluster_publishes_what_the_local_engine_does() {
    let dir = tempdir();
    let cluster = Cluster::start(dir.path(), 2);
    let (local, remote) = (built_warehouse(), dir.path().join("remote"));
    let (code_remote, out_remote, err_remote) = build(
        corpus(),
        &remote,
        &["--engine", "ballista", "--scheduler", &cluster.scheduler],
    );
    assert!(
        code_remote == 0 || code_remote == 1,
        "{out_remote}\n{err_remote}"
    );
    assert_same_tables(
        &published(local),
        &published(&remote),
        "the local engine and the cluster",
    );
    // The contracts too: every test's outcome and failure count (the usage anomaly rule runs
    // gtmos' trailing_median window function on the executors), and the quarantined rows.
    assert_eq!(outcomes(local), outcomes(&remote));
    assert_eq!(quarantined(local), quarantined(&remote));
}

/// (node, test, status, failures) of every data test of the warehouse's one build.
fn outcomes(warehouse: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in files_under(&warehouse.join("logs").join("contract_results")) {
        let t = Table::read_file(&f);
        let (node, rule, test) = (t.str("node"), t.str("rule"), t.str("test"));
        let (column, status, failures) = (t.str("column_name"), t.str("status"), t.i64("failures"));
        for i in 0..t.rows {
            out.push(format!(
                "{:?} {:?} {:?} {:?} {:?} {:?}",
                node[i], rule[i], test[i], column[i], status[i], failures[i]
            ));
        }
    }
    out.sort();
    assert!(!out.is_empty());
    out
}

/// Each quarantined row's table, rule and values, without the run id.
fn quarantined(warehouse: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in files_under(&warehouse.join("quarantine")) {
        let table = f.parent().unwrap().file_name().unwrap().to_string_lossy();
        for b in gtmos::table_io::read_parquet(&f).unwrap().1 {
            for i in 0..b.num_rows() {
                let mut row = gtmos::contracts::record_json(&b, i);
                row.as_object_mut().unwrap().remove("run_id");
                out.push(format!("{table}: {row}"));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty());
    out
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}

/// Rows of `sql` as JSON lines, on `runner`, over the same in-memory table `models.t`: 60
/// accounts × 45 daily values, registered in several batches.
fn run_sql(runner: &Runner, spill: &Path, sql: &str) -> Vec<String> {
    use std::sync::Arc;

    use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    let engine = Engine::start(&EngineConfig::default(), 2, spill, 256 << 20, runner).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("account", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("v", DataType::Float64, false),
    ]));
    let day = 86_400_000_000i64;
    let batches = (0..6)
        .map(|chunk| {
            let (mut a, mut ts, mut v) = (vec![], vec![], vec![]);
            for acct in chunk * 10..chunk * 10 + 10 {
                for d in 0..45i64 {
                    a.push(format!("A{acct:03}"));
                    ts.push(1_700_000_000_000_000 + d * day);
                    // A spike every 17th day, on a ramp with a per-account slope.
                    let spike = if d % 17 == 16 { 40.0 } else { 1.0 };
                    v.push(spike * (10.0 + d as f64 * (acct % 7) as f64 * 0.25));
                }
            }
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(a)),
                    Arc::new(TimestampMicrosecondArray::from(ts)),
                    Arc::new(Float64Array::from(v)),
                ],
            )
            .unwrap()
        })
        .collect::<Vec<_>>();
    // The same rows as a contract reads a source: numbered, from a file of several row groups.
    let file = spill.join("t.parquet");
    let mut w = gtmos::table_io::TableWriter::create(&file, schema.clone(), &[])
        .unwrap()
        .row_group_rows(500);
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    engine
        .register_numbered(SCRATCH, "numbered", &[file], &schema)
        .unwrap();
    engine
        .register_batches(MODELS, "t", schema, batches)
        .unwrap();
    let mut out = Vec::new();
    for b in engine.query(sql, "test query").unwrap() {
        for i in 0..b.num_rows() {
            out.push(gtmos::contracts::record_json(&b, i).to_string());
        }
    }
    out
}

#[test]
fn a_left_join_on_true_and_a_trailing_median_give_the_local_rows_on_the_cluster() {
    let dir = tempdir();
    let cluster = Cluster::start(dir.path(), 2);
    let remote = Runner::Ballista {
        scheduler: cluster.scheduler.clone(),
    };
    // The preserved side is one row; the other side is grouped into several partitions, one
    // of which holds the match. A cluster once returned the row unmatched from every other
    // partition too.
    let join = "SELECT c.x, l.account, l.n \
                FROM (SELECT 'kept' AS x) c \
                LEFT JOIN (SELECT account, COUNT(*) AS n FROM models.t \
                           WHERE account = 'A007' GROUP BY account) l ON true";
    let local = run_sql(&Runner::Local, &dir.path().join("spill-local"), join);
    assert_eq!(
        local,
        vec![r#"{"account":"A007","n":"45","x":"kept"}"#.to_string()]
    );
    assert_eq!(
        run_sql(&remote, &dir.path().join("spill-remote"), join),
        local
    );
    // A numbered scan (a contract's read of its source) of several row groups: every row once,
    // with its position. A cluster once read it once per task.
    let numbered = "SELECT COUNT(*) AS n, SUM(_row) AS s, COUNT(DISTINCT _row) AS d \
                    FROM scratch.numbered";
    let local = run_sql(&Runner::Local, &dir.path().join("spill-local"), numbered);
    assert_eq!(
        local,
        vec![r#"{"d":"2700","n":"2700","s":"3643650"}"#.to_string()]
    );
    assert_eq!(
        run_sql(&remote, &dir.path().join("spill-remote"), numbered),
        local
    );
    // gtmos' window function, its series spread over the executors.
    let median = "SELECT account, ts, v, \
                  trailing_median(v, ts, 3, 30) OVER (PARTITION BY account ORDER BY ts) AS m \
                  FROM models.t ORDER BY account, ts";
    let local = run_sql(&Runner::Local, &dir.path().join("spill-local"), median);
    assert_eq!(local.len(), 60 * 45);
    // Each series' first three days have too little history.
    assert_eq!(
        local.iter().filter(|r| r.contains(r#""m":null"#)).count(),
        60 * 3
    );
    assert_eq!(
        run_sql(&remote, &dir.path().join("spill-remote"), median),
        local
    );
}

/// DataFusion runs one of two windows over a partition in opposite orders reversed; the plan
/// sent to the executors lost the reversal, so `lag` ran the other way (docs/cluster.md).
#[test]
fn two_windows_in_opposite_orders_give_the_local_rows_on_the_cluster() {
    let dir = tempdir();
    let cluster = Cluster::start(dir.path(), 2);
    let remote = Runner::Ballista {
        scheduler: cluster.scheduler.clone(),
    };
    let windows = "SELECT account, ts, v, prior, recency FROM ( \
                   SELECT account, ts, v, \
                   lag(v) OVER (PARTITION BY account ORDER BY ts) AS prior, \
                   row_number() OVER (PARTITION BY account ORDER BY ts DESC) AS recency \
                   FROM models.t) w WHERE recency <= 2 ORDER BY account, ts";
    let local = run_sql(&Runner::Local, &dir.path().join("spill-local"), windows);
    assert_eq!(local.len(), 60 * 2);
    assert!(
        local.iter().all(|r| !r.contains(r#""prior":null"#)),
        "{local:?}"
    );
    assert_eq!(
        run_sql(&remote, &dir.path().join("spill-remote"), windows),
        local
    );
}

/// An executor killed mid-build: the build finishes on the other one and publishes what a
/// complete build publishes, or fails with exit 2 and leaves the published state; it never
/// hangs (it did with tasks handed out by the scheduler: docs/cluster.md).
#[test]
fn an_executor_killed_mid_build_leaves_a_complete_build_or_the_published_state() {
    let dir = tempdir();
    // The warehouse of a complete build, copied (links and all).
    let wh = dir.path().join("wh");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(built_warehouse())
        .arg(&wh)
        .status()
        .unwrap();
    assert!(cp.success());
    let before = published(&wh);
    // What a complete build with these vars publishes (another build id: every table differs).
    let vars = ["--vars", "{score_history_weeks: 12}"];
    let expected = dir.path().join("expected");
    let (code, out, err) = build(corpus(), &expected, &vars);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    assert!(published(&expected) != before);
    let mut cluster = Cluster::start(dir.path(), 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gtmos"))
        .args([
            "build",
            "--project",
            crate::common::project_dir().to_str().unwrap(),
            "--snapshot",
            corpus().to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--no-report",
            "--threads",
            "2",
            "--engine",
            "ballista",
            "--scheduler",
            &cluster.scheduler,
        ])
        .args(vars)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Into the build (its contracts alone take seconds), then one executor goes.
    std::thread::sleep(Duration::from_secs(4));
    cluster.kill("executor-1");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the build did not end after an executor died"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        // It finished on the executor left: what a complete build publishes.
        Some(0 | 1) => assert!(published(&wh) == published(&expected), "{err}"),
        // It failed: exit 2, a message, and the published state as it was.
        Some(2) => {
            assert!(err.contains("error"), "{err}");
            assert!(published(&wh) == before, "{err}");
        }
        other => panic!("exit {other:?}: {err}"),
    }
    eprintln!(
        "after the executor died the build exited {:?}",
        output.status.code()
    );
}

#[test]
fn an_unreachable_scheduler_is_a_usage_error() {
    let dir = tempdir();
    let port = free_port();
    let (code, _, err) = build(
        corpus(),
        &dir.path().join("wh"),
        &[
            "--engine",
            "ballista",
            "--scheduler",
            &format!("df://127.0.0.1:{port}"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot reach the scheduler"), "{err}");
    let (code, _, err) = gtmos(&["build", "--engine", "ballista"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs the scheduler"), "{err}");
}
