//! Nightly snapshots of one company (`gtmos synth --nights`): each night a day after the one
//! before, sharing its files, and holding what a build at its as_of would read.

use std::collections::BTreeMap;
use std::path::Path;

use gtmos::snapshot::{Manifest, Snapshot};
use gtmos::synth::nights::write_nights;
use gtmos::warehouse::Warehouse;

use crate::common::*;

const DAY: i64 = 86_400_000_000;

#[test]
fn nights_share_their_partitions_and_add_one_a_night() {
    let dir = tempdir();
    let nights = write_nights(corpus(), dir.path(), 3).unwrap();
    assert_eq!(nights.len(), 3);
    let corpus_m = Manifest::read(corpus()).unwrap();
    let last = corpus_m.as_of_micros().unwrap();
    let reg = registry();
    let opened: Vec<Snapshot> = nights
        .iter()
        .map(|n| Snapshot::open(&dir.path().join(&n.dir), reg).unwrap())
        .collect();
    for (k, snap) in opened.iter().enumerate() {
        snap.verify().unwrap();
        assert_eq!(
            snap.manifest.as_of_micros().unwrap(),
            last - (2 - k as i64) * DAY
        );
        assert_eq!(nights[k].snapshot_id, snap.manifest.snapshot_id);
    }
    for (name, entry) in &corpus_m.tables {
        let t = reg.table(name).unwrap();
        let per_night: Vec<_> = opened.iter().map(|s| &s.manifest.tables[name]).collect();
        if !t.append_only {
            // Current state: the corpus' own file every night.
            for e in &per_night {
                assert_eq!(
                    (e.sha256.as_str(), e.rows),
                    (entry.sha256.as_str(), entry.rows)
                );
            }
            continue;
        }
        for (k, e) in per_night.iter().enumerate() {
            assert_eq!(e.files.len(), k + 1, "{name}: one partition a night");
            if k > 0 {
                // Every earlier partition unchanged, byte for byte.
                assert_eq!(e.files[..k], per_night[k - 1].files[..], "{name}");
                assert_eq!(nights[k].new_rows[name], e.files[k].rows);
            }
        }
        // The last night holds every row the corpus knew at its as_of: all of them.
        assert_eq!(per_night[2].rows, entry.rows, "{name}");
    }
    let added: u64 = nights[1].new_rows.values().sum();
    assert!(added > 0, "a night adds rows: {:?}", nights[1].new_rows);
    // A partition is written once: later nights link the same file.
    let file = |k: usize| {
        let e = &opened[k].manifest.tables["usage_metering_log"];
        dir.path()
            .join(&nights[k].dir)
            .join(&e.path)
            .join(&e.files[0].path)
    };
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(file(0)).unwrap().ino(),
        std::fs::metadata(file(2)).unwrap().ino()
    );
    // Written again, the nights are the same bytes.
    let again = write_nights(corpus(), dir.path(), 3).unwrap();
    assert_eq!(
        again.iter().map(|n| &n.snapshot_id).collect::<Vec<_>>(),
        nights.iter().map(|n| &n.snapshot_id).collect::<Vec<_>>()
    );
}

/// A night is the corpus as known at its as_of: its build publishes what a build of the corpus
/// at that as_of publishes, but for the ids that name the snapshot and the build.
#[test]
fn a_night_builds_what_the_corpus_builds_at_its_as_of() {
    let dir = tempdir();
    let nights = write_nights(corpus(), dir.path(), 2).unwrap();
    let night = &nights[0];
    let (a, b) = (dir.path().join("wh-night"), dir.path().join("wh-corpus"));
    let (code, _, err) = build(&dir.path().join(&night.dir), &a, &[]);
    assert!(code < 2, "{err}");
    let (code, _, err) = build(corpus(), &b, &["--as-of", &night.as_of]);
    assert!(code < 2, "{err}");
    let ids = |wh: &Path, snap: &Path| -> Vec<String> {
        let m = Manifest::read(snap).unwrap();
        let build_id = Table::read_file(&Warehouse::new(wh).published_file("metric_revenue"))
            .s("build_id")[0]
            .clone();
        vec![build_id, m.snapshot_id.clone(), m.inputs_hash()]
    };
    let (ids_a, ids_b) = (ids(&a, &dir.path().join(&night.dir)), ids(&b, corpus()));
    let published = |wh: &Path, ids: &[String]| -> BTreeMap<String, Vec<String>> {
        let w = Warehouse::new(wh);
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(w.published_dir()).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            // The brain-ready views fit documents that carry the build id into token budgets:
            // another id of another length can drop another row. Every model is compared.
            if p.extension().and_then(|x| x.to_str()) != Some("parquet")
                || name.starts_with("view_")
                || name == "account_composite"
            {
                continue;
            }
            let (schema, batches) = gtmos::table_io::read_parquet(&p).unwrap();
            let mut rows = Vec::new();
            for b in &batches {
                for r in 0..b.num_rows() {
                    let mut line = String::new();
                    for (i, f) in schema.fields().iter().enumerate() {
                        let v =
                            arrow::util::display::array_value_to_string(b.column(i), r).unwrap();
                        line.push_str(&format!("{}={v};", f.name()));
                    }
                    for (k, id) in ids.iter().enumerate() {
                        line = line.replace(id.as_str(), &format!("<id{k}>"));
                        // Short forms (the first 16 hex digits) appear in documents too.
                        line = line.replace(&id[..16.min(id.len())], &format!("<id{k}>"));
                    }
                    rows.push(line);
                }
            }
            out.insert(name, rows);
        }
        out
    };
    let (pa, pb) = (published(&a, &ids_a), published(&b, &ids_b));
    assert_eq!(pa.keys().collect::<Vec<_>>(), pb.keys().collect::<Vec<_>>());
    assert!(pa.len() > 25, "the models are compared: {:?}", pa.keys());
    for (table, rows) in &pa {
        let other = &pb[table];
        assert_eq!(rows.len(), other.len(), "{table}");
        if let Some((x, y)) = rows.iter().zip(other).find(|(x, y)| x != y) {
            let at = x.chars().zip(y.chars()).take_while(|(a, b)| a == b).count();
            let near = |s: &str| {
                s.chars()
                    .skip(at.saturating_sub(80))
                    .take(200)
                    .collect::<String>()
            };
            panic!(
                "{table} differs:\n  night:  …{}\n  corpus: …{}",
                near(x),
                near(y)
            );
        }
    }
}

#[test]
fn synth_nights_writes_the_corpus_the_nights_and_their_index() {
    let dir = tempdir();
    let out = dir.path().join("company");
    let (code, stdout, err) = gtmos(
        &[
            "synth",
            "--accounts",
            "40",
            "--nights",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("2 nights in") && stdout.contains("night-02"),
        "{stdout}"
    );
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("nights.json")).unwrap()).unwrap();
    assert_eq!(index[1]["dir"], "night-02");
    let corpus = Manifest::read(&out.join("corpus")).unwrap();
    assert_eq!(index[1]["as_of"], corpus.as_of);
    Snapshot::open(&out.join("night-01"), registry())
        .unwrap()
        .verify()
        .unwrap();
    for bad in [
        &["--nights", "0"][..],
        &["--nights", "2", "--verify", "x"][..],
    ] {
        let mut args = vec!["synth", "--out", out.to_str().unwrap()];
        args.extend_from_slice(bad);
        let (code, _, err) = gtmos(&args, dir.path());
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
}
