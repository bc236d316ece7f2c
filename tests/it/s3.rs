//! Snapshots and warehouses on S3: each test starts an S3-compatible server on loopback
//! (`moto_server`, PyPI `moto[server]`, which `.ci/run` installs) with credential checking on,
//! and runs gtmos against it as a user would, through the standard AWS variables.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::build::built_warehouse;
use crate::cluster::{Cluster, free_port};
use crate::common::{
    assert_same_tables, corpus, gtmos_env, log_rows, project_dir, published, tempdir,
};

/// Sets up the server through boto3 (moto's own dependency): a user allowed everything, its
/// access key (printed), and the buckets named on the command line. The server lets the first
/// three requests through unauthenticated: exactly the user, its policy and its key.
const SETUP: &str = r#"
import boto3, json, sys
ep = sys.argv[1]
iam = boto3.client("iam", endpoint_url=ep, aws_access_key_id="setup", aws_secret_access_key="setup", region_name="us-east-1")
iam.create_user(UserName="gtmos")
iam.put_user_policy(UserName="gtmos", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="gtmos")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"], region_name="us-east-1")
for b in sys.argv[2:]:
    s3.create_bucket(Bucket=b)
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

/// Runs moto's server (`PORT` as the argument). With credential checking on, moto 5.2 checks
/// signatures against the request's query string as decoded (`prefix=wh/`), while clients sign
/// it encoded (`prefix=wh%2F`): every listing under a prefix would be refused. The query is
/// encoded again before moto checks it.
const SERVER: &str = r#"
import sys
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit
import moto.core.authorization as auth
checked = auth.ActionAuthenticatorMixin._authenticate_and_authorize_action
def encoded(self, iam_request_cls, resource="*"):
    u = urlsplit(self.uri)
    q = "&".join(quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~")
                 for k, v in parse_qsl(u.query, keep_blank_values=True))
    self.uri = urlunsplit(u._replace(query=q))
    return checked(self, iam_request_cls, resource)
auth.ActionAuthenticatorMixin._authenticate_and_authorize_action = encoded
from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"#;

/// `put BUCKET PREFIX DIR`: upload a directory; `get BUCKET KEY`: an object's bytes to stdout.
const CLIENT: &str = r#"
import boto3, os, sys
ep, key, secret, op, bucket = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
if op == "put":
    prefix, root = sys.argv[6:8]
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            s3.upload_file(p, bucket, prefix + "/" + os.path.relpath(p, root))
else:
    sys.stdout.buffer.write(s3.get_object(Bucket=bucket, Key=sys.argv[6])["Body"].read())
"#;

const BUCKET: &str = "gtmos-test";

/// A moto server on a free loopback port, stopped when dropped.
struct S3 {
    endpoint: String,
    key: String,
    secret: String,
    /// The server's log and gtmos' cache (`cache/`).
    dir: tempfile::TempDir,
    server: Child,
}

impl S3 {
    fn start() -> S3 {
        let port = free_port();
        let dir = tempdir();
        let log = dir.path().join("moto.log");
        let mut server = Command::new("python3")
            .args(["-c", SERVER, &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("python3 runs");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if server.try_wait().unwrap().is_some() {
                let err = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the S3 server stopped (pip install 'moto[server]'; .ci/run does):\n{err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let keys = String::from_utf8(python(SETUP, &[&endpoint, BUCKET])).unwrap();
        let (key, secret) = keys.trim().split_once(' ').unwrap();
        S3 {
            endpoint,
            key: key.into(),
            secret: secret.into(),
            dir,
            server,
        }
    }

    /// What a gtmos process needs to reach the server.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
            (
                "GTMOS_CACHE_DIR",
                self.dir.path().join("cache").to_string_lossy().into(),
            ),
        ]
    }

    fn client(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec![self.endpoint.as_str(), &self.key, &self.secret];
        all.extend_from_slice(args);
        python(CLIENT, &all)
    }

    fn upload(&self, prefix: &str, dir: &Path) {
        self.client(&["put", BUCKET, prefix, dir.to_str().unwrap()]);
    }

    fn get(&self, key: &str) -> Vec<u8> {
        self.client(&["get", BUCKET, key])
    }

    /// The warehouse's head under `prefix`.
    fn head(&self, prefix: &str) -> serde_json::Value {
        serde_json::from_slice(&self.get(&format!("{prefix}/_head.json"))).unwrap()
    }

    /// The files of the warehouse under `prefix` whose paths start with `under`, written below
    /// `to` at their paths.
    fn download(&self, prefix: &str, under: &str, to: &Path) {
        let head = self.head(prefix);
        for (rel, sha) in head["files"].as_object().unwrap() {
            if rel.starts_with(under) {
                let path = to.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let sha = sha.as_str().unwrap();
                std::fs::write(path, self.get(&format!("{prefix}/objects/{sha}"))).unwrap();
            }
        }
    }

    /// Each published table of the warehouse under `prefix` with its bytes, fetched from the
    /// objects its head names.
    fn published(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let head = self.head(prefix);
        let version = format!("{}/", head["published"].as_str().unwrap());
        let mut out: Vec<(String, Vec<u8>)> = head["files"]
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(rel, sha)| {
                let name = rel.strip_prefix(&version)?;
                name.ends_with(".parquet").then(|| {
                    let sha = sha.as_str().unwrap();
                    (
                        name.to_string(),
                        self.get(&format!("{prefix}/objects/{sha}")),
                    )
                })
            })
            .collect();
        out.sort();
        out
    }
}

/// A Python script's standard output; it must succeed.
fn python(script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `gtmos build` of `snapshot` into `warehouse` (either may be `s3://`), with `env` set.
fn build_command(
    snapshot: &str,
    warehouse: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gtmos"));
    c.arg("build")
        .arg("--project")
        .arg(project_dir())
        .args(["--snapshot", snapshot, "--warehouse", warehouse])
        .args(["--no-report", "--threads", "2"])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(project_dir());
    c
}

/// [`build_command`] run to its end: exit code, stdout, stderr.
fn build_at(
    snapshot: &str,
    warehouse: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> (i32, String, String) {
    let out = build_command(snapshot, warehouse, extra, env)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshot_url() -> String {
    format!("s3://{BUCKET}/snapshots/corpus")
}

#[test]
fn a_build_from_s3_to_s3_on_the_cluster_publishes_the_local_bytes() {
    let dir = tempdir();
    let s3 = S3::start();
    s3.upload("snapshots/corpus", corpus());
    let cluster = Cluster::start(dir.path(), 2);
    let (code_s3, out, err) = build_at(
        &snapshot_url(),
        &format!("s3://{BUCKET}/warehouse"),
        &["--engine", "ballista", "--scheduler", &cluster.scheduler],
        &s3.env(),
    );
    assert!(code_s3 == 0 || code_s3 == 1, "{out}\n{err}");
    assert_same_tables(
        &published(built_warehouse()),
        &s3.published("warehouse"),
        "a local build and s3 on the cluster",
    );
    // The run log names the snapshot by its location, not by the local copy built from.
    s3.download("warehouse", "logs/run_log/", dir.path());
    let runs = log_rows(dir.path(), "run_log");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["snapshot_dir"], snapshot_url().as_str());
}

#[test]
fn a_run_killed_before_its_head_moves_leaves_the_published_state_and_logs_only_grow() {
    let s3 = S3::start();
    s3.upload("snapshots/corpus", corpus());
    let wh = format!("s3://{BUCKET}/wh");
    let (code, out, err) = build_at(&snapshot_url(), &wh, &[], &s3.env());
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let first = s3.get("wh/_head.json");
    let vars = ["--vars", "{score_history_weeks: 12}"];
    // Killed after its objects went up, just before the head; and killed mid-publish.
    for point in ["store.head:abort", "publish.table:abort"] {
        let mut env = s3.env();
        env.push(("GTMOS_FAILPOINT", point.into()));
        let (code, out, err) = build_at(&snapshot_url(), &wh, &vars, &env);
        assert!(code != 0 && code != 1, "{point}: {code}\n{out}\n{err}");
        assert_eq!(s3.get("wh/_head.json"), first, "{point} moved the head");
    }
    // Readers see the first build whole.
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out, err) = gtmos_env(&["views", "--warehouse", &wh, "list"], &project_dir(), &env);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("account_profile") && out.contains(" fresh "),
        "{out}"
    );
    assert_eq!(s3.get("wh/_head.json"), first, "a reader moved the head");
    // The next complete run publishes, chains its head to the first, and keeps every log file.
    let (code, out, err) = build_at(&snapshot_url(), &wh, &vars, &s3.env());
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let (old, new) = (
        serde_json::from_slice::<serde_json::Value>(&first).unwrap(),
        s3.head("wh"),
    );
    assert_ne!(old["published"], new["published"]);
    assert_eq!(
        new["previous"].as_str().unwrap(),
        gtmos::table_io::sha256_hex(&first)
    );
    let logs: Vec<_> = old["files"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(rel, _)| rel.starts_with("logs/"))
        .collect();
    assert!(!logs.is_empty());
    for (rel, sha) in logs {
        assert_eq!(&new["files"][rel], sha, "{rel}");
    }
    // The first build's version is kept as the one before, every file with its bytes.
    let kept = format!("{}/", old["published"].as_str().unwrap());
    for (rel, sha) in old["files"].as_object().unwrap() {
        if rel.starts_with(&kept) {
            assert_eq!(&new["files"][rel], sha, "{rel}");
        }
    }
    assert!(
        new["files"].as_object().unwrap().len() > old["files"].as_object().unwrap().len(),
        "the second run appended to the logs"
    );
}

#[test]
fn a_missing_bucket_and_refused_credentials_exit_2_naming_them() {
    let s3 = S3::start();
    s3.upload("snapshots/corpus", corpus());
    let (code, out, err) = build_at(&snapshot_url(), "s3://no-such-bucket/wh", &[], &s3.env());
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("bucket `no-such-bucket` does not exist"),
        "{err}"
    );
    let (code, _, err) = build_at(
        "s3://no-such-bucket/snap",
        "s3://gtmos-test/wh",
        &[],
        &s3.env(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-bucket"), "{err}");
    for (var, value) in [
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY"),
    ] {
        let mut env = s3.env();
        env.retain(|(k, _)| *k != var);
        env.push((var, value.into()));
        let (code, out, err) = build_at(&snapshot_url(), "s3://gtmos-test/wh", &[], &env);
        assert_eq!(code, 2, "{var}: {out}\n{err}");
        assert!(err.contains("credentials were refused"), "{var}: {err}");
    }
    // Nothing was written by the refused runs.
    let (code, out, err) = build_at(&snapshot_url(), "s3://gtmos-test/wh", &[], &s3.env());
    assert!(code == 0 || code == 1, "{out}\n{err}");
    assert!(s3.head("wh")["previous"].is_null());
}

#[test]
fn a_run_overtaken_by_another_publishes_nothing_and_says_so() {
    let s3 = S3::start();
    s3.upload("snapshots/corpus", corpus());
    let wh = format!("s3://{BUCKET}/race");
    let snapshot = snapshot_url();
    // First with no head (if-none-match), then from one (if-match): both start from the same
    // head, and the slow one waits just before its commit while the other finishes.
    for round in 0..2 {
        race(&s3, &wh, &snapshot, round);
    }
}

fn race(s3: &S3, wh: &str, snapshot: &str, round: usize) {
    // The slow run is held before it moves the head until the fast one has published.
    let go = tempdir();
    let go = go.path().join("go");
    let mut env = s3.env();
    env.push((
        "GTMOS_FAILPOINT",
        format!("store.head:wait={}", go.display()),
    ));
    let vars = format!("{{score_history_weeks: {}}}", 10 + round);
    let slow = build_command(snapshot, wh, &["--vars", &vars], &env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out, err) = build_at(snapshot, wh, &[], &s3.env());
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let fast = s3.get("race/_head.json");
    std::fs::write(&go, b"").unwrap();
    let slow = slow.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&slow.stderr);
    assert_eq!(slow.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another run changed the warehouse while this one ran"),
        "{err}"
    );
    assert_eq!(
        s3.get("race/_head.json"),
        fast,
        "the overtaken run moved the head"
    );
}
