//! The `s3://` side of [`super`]: fetching snapshots, mirroring warehouses and committing them
//! back through `_head.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};
use serde::{Deserialize, Serialize};

use super::{Kind, cache_dir, files};
use crate::error::{Error, Result};
use crate::snapshot::MANIFEST;
use crate::table_io::{sha256_file, sha256_hex};
use crate::warehouse::{PUBLISHED, symlink};

const HEAD: &str = "_head.json";
const OBJECTS: &str = "objects";
/// Files at least this large are uploaded in parts of this size.
const PART: usize = 16 << 20;

/// The commit point of a warehouse on an object store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Head {
    format: u32,
    /// Where `published` points (`versions/<run_id>`), if anything was published.
    published: Option<String>,
    /// Every file, by path relative to the warehouse, with its sha256.
    files: BTreeMap<String, String>,
    /// sha256 of the head this one replaced (itself kept under `objects/`): the history.
    previous: Option<String>,
}

/// A warehouse mirrored for this process.
struct Mirror {
    url: String,
    remote: Remote,
    dir: PathBuf,
    /// The head it was made from, its bytes' sha256 and the version to replace.
    head: Option<(Head, String, UpdateVersion)>,
    /// Files linked from fetched objects: relative path → (sha256, stamp), so files the
    /// command left alone need not be hashed again.
    known: BTreeMap<String, (String, Stamp)>,
}

static MIRRORS: Mutex<Vec<Mirror>> = Mutex::new(Vec::new());
/// Every local copy this process made, with the location it copies.
static ORIGINS: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

pub(super) fn origin(path: &Path) -> Option<String> {
    let origins = ORIGINS.lock().unwrap_or_else(|e| e.into_inner());
    origins
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, url)| url.clone())
}

pub(super) fn open(url: &str, kind: Kind) -> Result<PathBuf> {
    let mut mirrors = MIRRORS.lock().unwrap_or_else(|e| e.into_inner());
    if kind == Kind::Warehouse
        && let Some(m) = mirrors.iter().find(|m| m.url == url)
    {
        return Ok(m.dir.clone());
    }
    let remote = Remote::connect(url)?;
    let rt = runtime()?;
    let dir = match kind {
        Kind::Snapshot => rt.block_on(fetch_snapshot(&remote))?,
        Kind::Warehouse => {
            let m = rt.block_on(mirror(remote))?;
            let dir = m.dir.clone();
            mirrors.push(m);
            dir
        }
    };
    let mut origins = ORIGINS.lock().unwrap_or_else(|e| e.into_inner());
    origins.push((dir.clone(), url.to_string()));
    Ok(dir)
}

pub(super) fn finish() -> Result<()> {
    let mirrors = std::mem::take(&mut *MIRRORS.lock().unwrap_or_else(|e| e.into_inner()));
    if mirrors.is_empty() {
        return Ok(());
    }
    let rt = runtime()?;
    let mut result = Ok(());
    for m in mirrors {
        if result.is_ok() {
            result = rt.block_on(commit(&m));
        }
        let _ = std::fs::remove_dir_all(&m.dir);
    }
    result
}

pub(super) fn discard() {
    for m in std::mem::take(&mut *MIRRORS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = std::fs::remove_dir_all(&m.dir);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the object-store client: {e}")))
}

/// A bucket and prefix, and the client that reaches them.
struct Remote {
    url: String,
    bucket: String,
    store: Arc<AmazonS3>,
    prefix: String,
}

impl Remote {
    fn connect(url: &str) -> Result<Remote> {
        let rest = url.trim_start_matches("s3://").trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::usage_hint(
                format!("{url}: no bucket"),
                "give s3://bucket/prefix",
            ));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        if let Some(e) = endpoint {
            // An endpoint given as http:// is meant (a test server, a store on the LAN).
            b = b
                .with_endpoint(&e)
                .with_allow_http(e.starts_with("http://"));
        }
        let store = b
            .build()
            .map_err(|e| Error::usage_hint(format!("{url}: {e}"), "check the AWS_* variables"))?;
        Ok(Remote {
            url: url.to_string(),
            bucket: bucket.to_string(),
            store: Arc::new(store),
            prefix: prefix.to_string(),
        })
    }

    fn path(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn object(&self, sha: &str) -> ObjectPath {
        self.path(&format!("{OBJECTS}/{sha}"))
    }

    /// An object-store failure as an error naming the location, what was done and a likely fix.
    fn error(&self, what: &str, e: object_store::Error) -> Error {
        let text = e.to_string();
        let (message, hint) = if text.contains("NoSuchBucket") {
            (
                format!("{}: bucket `{}` does not exist", self.url, self.bucket),
                "create it, or check the bucket name and AWS_ENDPOINT_URL",
            )
        } else if text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("AccessDenied")
            || matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            )
        {
            (
                format!("{}: the credentials were refused ({what})", self.url),
                "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
            )
        } else {
            (
                format!("{}: cannot {what}", self.url),
                "check AWS_ENDPOINT_URL, AWS_REGION and the network",
            )
        };
        Error::usage_hint(format!("{message}: {}", first_line(&text)), hint)
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Fetch the snapshot at `remote` into the cache (once per distinct listing) and return its
/// directory; [`crate::snapshot`] verifies it against its manifest as it does any snapshot.
async fn fetch_snapshot(remote: &Remote) -> Result<PathBuf> {
    let root = remote.path("");
    let listed: Vec<_> = remote
        .store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|e| remote.error("list the snapshot", e))?;
    let strip = if remote.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", remote.prefix)
    };
    let mut objects: Vec<(String, &object_store::ObjectMeta)> = listed
        .iter()
        .filter_map(|m| Some((m.location.as_ref().strip_prefix(&strip)?.to_string(), m)))
        .collect();
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    if !objects.iter().any(|(rel, _)| rel == MANIFEST) {
        return Err(Error::usage_hint(
            format!("{}: no snapshot here (no {MANIFEST})", remote.url),
            format!(
                "upload a snapshot directory, e.g. `aws s3 sync data/snapshots/default {}`",
                remote.url
            ),
        ));
    }
    let listing: String = objects
        .iter()
        .map(|(rel, m)| format!("{rel}\t{}\t{}\n", m.size, m.e_tag.as_deref().unwrap_or("")))
        .collect();
    let key = sha256_hex(format!("{}\n{listing}", remote.url).as_bytes());
    let cache = cache_dir().join("snapshots");
    let dir = cache.join(&key[..32]);
    if dir.join(MANIFEST).exists() {
        return Ok(dir);
    }
    let tmp = cache.join(format!(".fetch-{}-{}", &key[..16], std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, m) in &objects {
        let bytes = get(remote, &m.location).await?;
        write_new(&tmp.join(rel), &bytes)?;
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process fetched the same snapshot first.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(MANIFEST).exists() {
            return Err(Error::usage(format!(
                "cannot place the fetched snapshot at {}",
                dir.display()
            )));
        }
    }
    Ok(dir)
}

async fn get(remote: &Remote, path: &ObjectPath) -> Result<Vec<u8>> {
    let r = remote
        .store
        .get(path)
        .await
        .map_err(|e| remote.error(&format!("read {path}"), e))?;
    Ok(r.bytes()
        .await
        .map_err(|e| remote.error(&format!("read {path}"), e))?
        .to_vec())
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io("cannot write", path, e))
}

/// A local mirror of the warehouse at `remote`: every file its head names, fetched (and
/// checked) into the object cache and linked into a directory of this process's own.
async fn mirror(remote: Remote) -> Result<Mirror> {
    // Listing the prefix tells a missing bucket or refused credentials from an empty warehouse.
    remote
        .store
        .list_with_delimiter(Some(&remote.path("")))
        .await
        .map_err(|e| remote.error("list the warehouse", e))?;
    let head = match remote.store.get(&remote.path(HEAD)).await {
        Ok(r) => {
            let version = UpdateVersion {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            let bytes = r
                .bytes()
                .await
                .map_err(|e| remote.error(&format!("read {HEAD}"), e))?;
            let head: Head = serde_json::from_slice(&bytes)
                .ok()
                .filter(|h: &Head| h.format == 1)
                .ok_or_else(|| {
                    Error::data(format!(
                        "{}/{HEAD}: not a warehouse head this gtmos reads (format 1)",
                        remote.url
                    ))
                })?;
            Some((head, sha256_hex(&bytes), version))
        }
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(remote.error(&format!("read {HEAD}"), e)),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mirrors = cache_dir().join("warehouses");
    remove_abandoned(&mirrors);
    let dir = mirrors.join(format!("{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let mut known = BTreeMap::new();
    if let Some((h, _, _)) = &head {
        for (rel, sha) in &h.files {
            let object = fetch_object(&remote, sha).await?;
            let to = dir.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io("cannot create", parent, e))?;
            }
            std::fs::hard_link(&object, &to)
                .or_else(|_| std::fs::copy(&object, &to).map(|_| ()))
                .map_err(|e| Error::io("cannot place", &to, e))?;
            known.insert(rel.clone(), (sha.clone(), stamp(&to)));
        }
        if let Some(target) = &h.published {
            symlink(Path::new(target), &dir.join(PUBLISHED))?;
        }
    }
    Ok(Mirror {
        url: remote.url.clone(),
        remote,
        dir,
        head,
        known,
    })
}

/// Remove the mirrors of processes that ended without removing theirs (killed ones): each is
/// named after its process id.
fn remove_abandoned(mirrors: &Path) {
    let Ok(entries) = std::fs::read_dir(mirrors) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name.split('-').next().unwrap_or("");
        if !pid.is_empty() && Path::new("/proc").is_dir() && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The cached copy of object `sha`, fetched and checked against its name when missing.
async fn fetch_object(remote: &Remote, sha: &str) -> Result<PathBuf> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::data(format!(
            "{}/{HEAD}: `{sha}` is not a sha256",
            remote.url
        )));
    }
    let path = cache_dir().join(OBJECTS).join(sha);
    if path.exists() {
        return Ok(path);
    }
    let bytes = get(remote, &remote.object(sha)).await?;
    let got = sha256_hex(&bytes);
    if got != sha {
        return Err(Error::data(format!(
            "{}/{OBJECTS}/{sha}: its bytes hash to {got}; the object was changed or damaged",
            remote.url
        )));
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_new(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot place", &path, e))?;
    Ok(path)
}

/// Send the mirror's changes: new objects first, then the head, replaced only if it is still
/// the one the mirror was made from. A mirror nothing changed sends nothing.
async fn commit(m: &Mirror) -> Result<()> {
    let (old, old_sha, version) = match &m.head {
        Some((h, sha, v)) => (h.clone(), Some(sha.clone()), Some(v.clone())),
        None => (Head::default(), None, None),
    };
    let mut next = Head {
        format: 1,
        published: std::fs::read_link(m.dir.join(PUBLISHED))
            .ok()
            .map(|t| t.to_string_lossy().to_string()),
        files: BTreeMap::new(),
        previous: old_sha,
    };
    // A fetched file the command left alone, at its path or linked to another (the next
    // version carries the current one's files over as links), is not hashed again.
    let fetched: BTreeMap<&Stamp, &String> = m
        .known
        .values()
        .filter(|(_, stamp)| stamp.is_some())
        .map(|(sha, stamp)| (stamp, sha))
        .collect();
    for rel in files(&m.dir)? {
        let path = m.dir.join(&rel);
        let sha = match fetched.get(&stamp(&path)) {
            Some(sha) => (*sha).clone(),
            None => sha256_file(&path)?,
        };
        next.files.insert(rel, sha);
    }
    if next.files == old.files && next.published == old.published {
        return Ok(());
    }
    // The logs' promise, checked before anything is sent.
    if let Some(rel) = log_not_kept(&old, &next) {
        return Err(Error::Internal(format!(
            "{}: log file {rel} would be changed or removed (logs are append-only); nothing \
             was published",
            m.url
        )));
    }
    // Each content the old head lacks, once (from the first file that has it).
    let mut sent: BTreeSet<&String> = old.files.values().collect();
    for (rel, sha) in &next.files {
        if sent.insert(sha) {
            upload(&m.remote, &m.dir.join(rel), sha).await?;
        }
    }
    crate::build::failpoint("store.head")?;
    let mut text = serde_json::to_string_pretty(&next).unwrap_or_default();
    text.push('\n');
    // The head itself is kept as an object too: `previous` chains them into a history.
    let head_sha = sha256_hex(text.as_bytes());
    put(
        &m.remote,
        &m.remote.object(&head_sha),
        text.clone().into_bytes(),
        PutMode::Overwrite,
    )
    .await?;
    let mode = match version {
        Some(v) => PutMode::Update(v),
        None => PutMode::Create,
    };
    match m
        .remote
        .store
        .put_opts(
            &m.remote.path(HEAD),
            PutPayload::from(text.into_bytes()),
            PutOptions::from(mode),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
        ) => Err(Error::usage_hint(
            format!(
                "{}: another run changed the warehouse while this one ran; nothing of this \
                     run was published",
                m.url
            ),
            "run the command again",
        )),
        Err(e) => Err(m.remote.error(&format!("write {HEAD}"), e)),
    }
}

/// A log file of `old` that `next` does not keep byte for byte, if any.
fn log_not_kept<'a>(old: &'a Head, next: &Head) -> Option<&'a str> {
    old.files
        .iter()
        .filter(|(rel, _)| rel.starts_with("logs/"))
        .find(|(rel, sha)| next.files.get(*rel) != Some(*sha))
        .map(|(rel, _)| rel.as_str())
}

async fn put(remote: &Remote, path: &ObjectPath, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
    remote
        .store
        .put_opts(path, PutPayload::from(bytes), PutOptions::from(mode))
        .await
        .map(|_| ())
        .map_err(|e| remote.error(&format!("write {path}"), e))
}

/// Upload one file as `objects/<sha>` (in parts when large), unless the store has it already.
async fn upload(remote: &Remote, file: &Path, sha: &str) -> Result<()> {
    let to = remote.object(sha);
    if remote.store.head(&to).await.is_ok() {
        return Ok(());
    }
    let size = std::fs::metadata(file)
        .map_err(|e| Error::io("cannot read", file, e))?
        .len();
    if size < PART as u64 {
        let bytes = std::fs::read(file).map_err(|e| Error::io("cannot read", file, e))?;
        return put(remote, &to, bytes, PutMode::Overwrite).await;
    }
    let upload = remote
        .store
        .put_multipart(&to)
        .await
        .map_err(|e| remote.error(&format!("write {to}"), e))?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut f = std::fs::File::open(file).map_err(|e| Error::io("cannot open", file, e))?;
    let mut buf = vec![0u8; PART];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", file, e))?;
        if n == 0 {
            break;
        }
        w.wait_for_capacity(4)
            .await
            .map_err(|e| remote.error(&format!("write {to}"), e))?;
        w.write(&buf[..n]);
    }
    w.finish()
        .await
        .map(|_| ())
        .map_err(|e| remote.error(&format!("write {to}"), e))
}

/// A file's inode, size and modification time: equal stamps, same bytes (gtmos replaces files,
/// it never writes into one).
type Stamp = Option<(u64, u64, i64, i64)>;

#[cfg(unix)]
fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

#[cfg(not(unix))]
fn stamp(_path: &Path) -> Stamp {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(files: &[(&str, &str)]) -> Head {
        Head {
            format: 1,
            published: Some("versions/r1".into()),
            files: files
                .iter()
                .map(|(r, s)| (r.to_string(), s.to_string()))
                .collect(),
            previous: None,
        }
    }

    #[test]
    fn a_head_may_add_log_files_but_not_change_or_drop_one() {
        let old = head(&[("logs/runs/a.parquet", "1"), ("versions/r1/t.parquet", "2")]);
        let grown = head(&[
            ("logs/runs/a.parquet", "1"),
            ("logs/runs/b.parquet", "3"),
            ("versions/r2/t.parquet", "4"),
        ]);
        assert_eq!(log_not_kept(&old, &grown), None);
        let changed = head(&[("logs/runs/a.parquet", "9")]);
        assert_eq!(log_not_kept(&old, &changed), Some("logs/runs/a.parquet"));
        let dropped = head(&[("versions/r1/t.parquet", "2")]);
        assert_eq!(log_not_kept(&old, &dropped), Some("logs/runs/a.parquet"));
    }

    #[test]
    fn a_location_names_its_bucket_and_prefix() {
        let r = Remote::connect("s3://bucket/some/prefix/").unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        assert_eq!(r.object("ab").as_ref(), "some/prefix/objects/ab");
        let r = Remote::connect("s3://bucket").unwrap();
        assert_eq!(r.path(HEAD).as_ref(), "_head.json");
        assert_eq!(Remote::connect("s3:///x").err().unwrap().exit_code(), 2);
    }
}
