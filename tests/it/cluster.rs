//! The distributed engine: a scheduler and two executors started as processes on loopback,
//! building the test corpus on the cluster; every published table must be byte-identical to
//! the local engine's.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{build, corpus, gtmos, tempdir};

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Processes of a loopback cluster, stopped when dropped.
struct Cluster {
    scheduler: String,
    processes: Vec<(String, Child)>,
}

impl Cluster {
    /// A scheduler and `executors` executors of one task each, working under `dir`.
    fn start(dir: &Path, executors: usize) -> Cluster {
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

fn published(warehouse: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = gtmos::warehouse::Warehouse::new(warehouse).published_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_build_on_a_loopback_cluster_publishes_what_the_local_engine_does() {
    let dir = tempdir();
    let cluster = Cluster::start(dir.path(), 2);
    let (local, remote) = (dir.path().join("local"), dir.path().join("remote"));
    let (code, out, err) = build(corpus(), &local, &[]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let (code_remote, out_remote, err_remote) = build(
        corpus(),
        &remote,
        &["--engine", "ballista", "--scheduler", &cluster.scheduler],
    );
    assert_eq!(code_remote, code, "{out_remote}\n{err_remote}");
    let (a, b) = (published(&local), published(&remote));
    assert_eq!(
        a.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        b.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{name} differs between the local engine and the cluster"
        );
    }
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
