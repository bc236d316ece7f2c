//! Brain-ready views (SPEC §10): every view materialised with its view_metadata, staleness that
//! flips exactly at the threshold, composites within their token budget by the tokenizer's own
//! count (dropping the oldest detail first, on the record), the contracts hash, and
//! `gtmos views list|show`.

use std::path::{Path, PathBuf};

use gtmos::views::{Catalog, Tokenizer};
use serde_json::{Value, json};

use crate::common::*;

fn catalog() -> Catalog {
    gtmos::project::Project::load(&project_dir())
        .unwrap()
        .views
        .expect("the project declares its views")
}

#[test]
fn every_view_is_materialised_with_its_metadata_and_every_composite_fits() {
    let (wh, _, out) = crate::build::built_for_report();
    assert!(out.contains("views      26 views"), "{out}");
    assert!(out.contains("5 unavailable (catalogued with why)"), "{out}");
    let published = wh.join("published");
    let cat = catalog();
    assert_eq!(cat.views.len(), 26);
    assert_eq!(cat.unavailable.len(), 5);
    assert_eq!(
        cat.views
            .iter()
            .filter(|v| v.kind == gtmos::views::ViewKind::AccountComponent)
            .count(),
        11
    );
    for v in &cat.views {
        let t = Table::read(&published, &gtmos::views::model_name(&v.name));
        for c in gtmos::views::METADATA {
            assert!(t.cols.contains_key(c), "{}: no {c}", v.name);
        }
        if let Some(n) = v.limit {
            assert!(t.i64("view_rank").iter().all(|r| r.unwrap() as usize <= n));
        }
        assert!(
            t.f64("staleness_threshold_hours")
                .iter()
                .all(|h| *h == Some(v.staleness_threshold_hours))
        );
    }
    // The catalog: one row per view, one for the composite and one per unavailable view (stale,
    // with why), the hash on every row.
    let catalog_rows = Table::read(&published, "view_catalog");
    assert_eq!(catalog_rows.rows, 32);
    let reasons = catalog_rows.str("unavailable_reason");
    let names = catalog_rows.s("view_name");
    for u in &cat.unavailable {
        let i = names.iter().position(|n| *n == u.name).unwrap();
        assert!(
            reasons[i].as_deref().unwrap().contains(&u.reason),
            "{}",
            u.name
        );
    }
    assert_eq!(reasons.iter().filter(|r| r.is_some()).count(), 5);
    assert!(
        catalog_rows
            .s("brain_view_contracts_hash")
            .iter()
            .all(|h| *h == cat.hash)
    );
    // Every composite is within its budget by the tokenizer's own count, and says so.
    let tok = Tokenizer::new(&cat.tokenizer).unwrap();
    let composites = Table::read(&published, "account_composite");
    assert!(composites.rows >= 100, "{} composites", composites.rows);
    let (docs, tokens) = (composites.s("document"), composites.i64("tokens"));
    for (doc, t) in docs.iter().zip(&tokens) {
        let n = tok.count(doc);
        assert_eq!(n as i64, t.unwrap());
        assert!(n <= cat.composite.token_budget, "{n} tokens");
        let v: Value = serde_json::from_str(doc).unwrap();
        assert_eq!(v["components"].as_object().unwrap().len(), 11);
        assert_eq!(v["brain_view_contracts_hash"], json!(cat.hash));
        for (_, c) in v["components"].as_object().unwrap() {
            assert!(c.get("is_stale").is_some() && c.get("last_refresh_timestamp").is_some());
        }
    }
    // Every whole-population document (cross-population and strategy views) is within its
    // view's budget by the tokenizer's own recount, and the catalog's count is that count.
    let (docs, maxes, budgets) = (
        catalog_rows.str("document"),
        catalog_rows.i64("tokens_max"),
        catalog_rows.i64("token_budget"),
    );
    let kinds = catalog_rows.s("kind");
    let mut strategy = 0;
    for i in 0..catalog_rows.rows {
        let Some(doc) = &docs[i] else { continue };
        let n = tok.count(doc) as i64;
        assert_eq!(Some(n), maxes[i], "{}", names[i]);
        assert!(n <= budgets[i].unwrap(), "{}: {n} tokens", names[i]);
        strategy += usize::from(kinds[i] == "strategy");
    }
    assert_eq!(strategy, 6, "the six strategy views have documents");
    // The run log records the hash.
    let runs = std::fs::read_dir(wh.join("logs/run_log")).unwrap();
    for f in runs {
        let t = Table::read_file(&f.unwrap().path());
        assert_eq!(t.s("brain_view_contracts_hash"), vec![cat.hash.clone()]);
    }
}

/// The documents of the fixture's published views, and what assembling them came to.
fn assemble(
    cat: &Catalog,
    wh: &Path,
    accounts_per_chunk: usize,
) -> (gtmos::views::Assembled, Vec<gtmos::views::Composite>) {
    let mut composites = Vec::new();
    let a = gtmos::views::assemble(
        cat,
        &wh.join("published"),
        "2026-01-01T00:00:00Z",
        "b1",
        accounts_per_chunk,
        &mut |c| {
            assert!(c.len() <= accounts_per_chunk);
            composites.extend(c);
            Ok(())
        },
    )
    .unwrap();
    (a, composites)
}

#[test]
fn composites_do_not_depend_on_how_many_accounts_are_assembled_at_a_time() {
    let (wh, _, _) = crate::build::built_for_report();
    let cat = catalog();
    let (whole, expected) = assemble(&cat, wh, usize::MAX);
    assert!(expected.len() > 100, "{} composites", expected.len());
    // Chunks that end mid-way through the accounts of every view, and one account each.
    for per_chunk in [7, 1] {
        let (a, got) = assemble(&cat, wh, per_chunk);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                (&g.account_id, &g.document, g.tokens, g.dropped_rows),
                (&e.account_id, &e.document, e.tokens, e.dropped_rows)
            );
        }
        assert_eq!(
            serde_json::to_value(&a.catalog).unwrap(),
            serde_json::to_value(&whole.catalog).unwrap()
        );
    }
}

#[test]
fn a_tight_budget_drops_the_oldest_detail_first_and_records_it() {
    let (wh, _, _) = crate::build::built_for_report();
    let mut cat = catalog();
    cat.composite.token_budget = 1500;
    let (a, composites) = assemble(&cat, wh, gtmos::views::COMPOSITE_CHUNK);
    assert_eq!(a.composites, composites.len());
    let tok = Tokenizer::new(&cat.tokenizer).unwrap();
    let mut fitted = 0;
    for c in &composites {
        assert!(
            tok.count(&c.document) <= 1500,
            "{}: {} tokens",
            c.account_id,
            c.tokens
        );
        let v: Value = serde_json::from_str(&c.document).unwrap();
        let dropped = v["dropped"].as_array().unwrap();
        assert_eq!(
            dropped
                .iter()
                .map(|d| d["rows"].as_u64().unwrap() as usize)
                .sum::<usize>(),
            c.dropped_rows
        );
        for d in dropped {
            fitted += 1;
            let name = d["component"].as_str().unwrap();
            let view = cat.view(name).unwrap();
            // What is kept is never older than what was dropped.
            if let (Some(col), Some(through)) = (&view.time_column, d["through"].as_str()) {
                for row in v["components"][name]["rows"].as_array().unwrap() {
                    let kept = row[col].as_str().unwrap_or("9999");
                    assert!(
                        &kept[..10] >= through,
                        "{name}: kept {kept} older than dropped {through}"
                    );
                }
            }
        }
    }
    assert!(fitted > 10, "only {fitted} components needed fitting");
}

/// A snapshot with one account and one call at `call_ts`.
fn call_snapshot(dir: &Path, call_ts: &str) -> PathBuf {
    let snap = dir.join("snap");
    let call = json!({"conv_id": "CV-1", "account_id": "A1", "owner_rep_id": "REP-1",
        "call_ts": call_ts, "call_owner_role": "CSM", "duration_minutes": 30,
        "attendee_contact_ids": [], "sentiment_score": 0.5, "talk_ratio": 0.4,
        "next_step_committed": true, "competitors_mentioned": [], "objections": [],
        "feature_inquiry": false, "summary": "QBR prep"});
    mini_snapshot(
        &snap,
        "2026-01-01T00:00:00Z",
        vec![
            ("accounts", rows("accounts", &[account_row("A1", "SMB")])),
            ("reps", rows("reps", &[rep_row()])),
            ("conversations", rows("conversations", &[call])),
        ],
    );
    snap
}

#[test]
fn is_stale_flips_exactly_when_as_of_passes_refresh_plus_threshold() {
    let threshold = catalog()
        .view("conversations")
        .unwrap()
        .staleness_threshold_hours;
    assert_eq!(threshold, 72.0);
    let dir = tempdir();
    // The last call 72 h before midnight on 2026-01-04.
    let snap = call_snapshot(dir.path(), "2026-01-01T00:00:00Z");
    let stale_at = |as_of: &str, wh: &str| -> bool {
        let wh = dir.path().join(wh);
        let (code, out, err) = build(
            &snap,
            &wh,
            &["--select", "view_conversations", "--as-of", as_of],
        );
        assert!(code == 0 || code == 1, "{out}\n{err}");
        let t = Table::read(&wh.join("published"), "view_conversations");
        assert_eq!(t.rows, 1, "{out}");
        t.bool("is_stale")[0].unwrap()
    };
    assert!(!stale_at("2026-01-03T23:59:59Z", "wh1"));
    assert!(
        !stale_at("2026-01-04T00:00:00Z", "wh2"),
        "exactly at the threshold: fresh"
    );
    assert!(
        stale_at("2026-01-04T00:00:01Z", "wh3"),
        "one second past: stale"
    );
}

#[test]
fn changing_a_view_contract_changes_the_hash() {
    let dir = tempdir();
    let copy = dir.path().join("pipelines");
    copy_dir(&project_dir(), &copy);
    let load = |d: &Path| {
        gtmos::project::Project::load(d)
            .unwrap()
            .views
            .unwrap()
            .hash
    };
    let original = load(&project_dir());
    assert_eq!(load(&copy), original, "same contract, same hash");
    // Comments and key order are not the contract.
    let file = copy.join("views/brain_views.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("# a new comment\n{text}")).unwrap();
    assert_eq!(load(&copy), original);
    // A threshold, a budget, a projection: each changes it.
    for (from, to) in [
        (
            "staleness_threshold_hours: 72",
            "staleness_threshold_hours: 73",
        ),
        ("token_budget: 8000", "token_budget: 7000"),
        (
            "sentiment_score, next_step_committed",
            "next_step_committed",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
        assert_ne!(load(&copy), original, "{from} → {to}");
    }
}

#[test]
fn views_list_and_show_print_the_catalog_and_one_composite() {
    let (wh, _, _) = crate::build::built_for_report();
    let w = wh.to_str().unwrap();
    let (code, out, err) = gtmos(&["views", "list", "--warehouse", w, "--format", "json"], wh);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["views"].as_array().unwrap().len(), 32);
    assert_eq!(v["brain_view_contracts_hash"], json!(catalog().hash));
    let (code, out, _) = gtmos(&["views", "list", "--warehouse", w], wh);
    assert_eq!(code, 0);
    assert!(
        out.contains("account_composite") && out.contains("conversations"),
        "{out}"
    );
    // `views show … --format json`, which must succeed.
    let show = |what: &str| -> Value {
        let args = ["views", "show", what, "--warehouse", w, "--format", "json"];
        let (code, out, err) = gtmos(&args, wh);
        assert_eq!(code, 0, "{what}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let account =
        Table::read(&wh.join("published"), "account_composite").s("account_id")[0].clone();
    let v = show(&account);
    assert_eq!(v["document"]["account_id"], json!(account));
    assert!(v["tokens"].as_i64().unwrap() > 0);
    let (code, _, err) = gtmos(&["views", "show", "NO-SUCH", "--warehouse", w], wh);
    assert_eq!(code, 2);
    assert!(err.contains("NO-SUCH"), "{err}");
    // A strategy view's document, as the strategy brain reads it.
    let v = show("cohort_brain_view");
    assert_eq!(v["view"], "cohort_brain_view");
    assert!(!v["document"]["rows"].as_array().unwrap().is_empty());
    assert!(v["document"]["rows"][0]["nrr_pct"].is_number());
    // TOOL-015's view: its top rows and its roll-up per quarter.
    let v = show("gp_decomposition_view");
    assert!(!v["document"]["rows"].as_array().unwrap().is_empty());
    assert!(v["document"]["aggregate"][0]["refused"].is_number());
    // An unavailable one: exit 1, and why, for the brain to cite.
    let (code, out, _) = gtmos(
        &["views", "show", "forecast_strategy_view", "--warehouse", w],
        wh,
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("forecast_strategy_view is unavailable")
            && out.contains("no forecast submissions are recorded"),
        "{out}"
    );
}

/// (view, last refresh µs, threshold hours, is_stale) of every row of a build's view_catalog.
fn catalog_staleness(wh: &Path) -> Vec<(String, Option<i64>, f64, bool)> {
    let t = Table::read(&wh.join("published"), "view_catalog");
    let names = t.s("view_name");
    let refreshed = t.ts("last_refresh_timestamp");
    let hours = t.f64("staleness_threshold_hours");
    let stale = t.bool("is_stale");
    (0..names.len())
        .map(|i| {
            (
                names[i].clone(),
                refreshed[i],
                hours[i].unwrap(),
                stale[i].unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_view_goes_stale_once_as_of_passes_its_threshold() {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let p = gtmos::synth::params::SynthParams {
        accounts: 60,
        ..Default::default()
    };
    gtmos::synth::generate(&p, &snap, 2, false).unwrap();
    let (code, out, err) = build(&snap, &dir.path().join("wh0"), &[]);
    assert!(code == 0, "{out}{err}");
    let base = catalog_staleness(&dir.path().join("wh0"));
    assert_eq!(base.len(), 32, "26 views, the composite and 5 unavailable");
    // Every view's refresh is a time of its inputs, never as_of itself: none is in the future,
    // and those over models computed at as_of are judged by what reached them.
    let snapshot_as_of = gtmos::calendar::parse_ts("2026-01-01T00:00:00Z").unwrap();
    for (v, refreshed, _, _) in &base {
        assert!(refreshed.is_none_or(|r| r <= snapshot_as_of), "{v}");
    }
    // Later and later as_ofs: a day, a fortnight, a quarter, a year and a day after the
    // snapshot. At each, a view is stale exactly when as_of is past its refresh + threshold.
    let hour = 3_600_000_000i64;
    let mut became_stale = std::collections::BTreeSet::new();
    for (k, hours_later) in [30, 15 * 24, 100 * 24, 367 * 24].iter().enumerate() {
        let as_of = snapshot_as_of + hours_later * hour;
        let wh = dir.path().join(format!("wh{}", k + 1));
        let ts = gtmos::calendar::format_ts(as_of);
        let (code, out, err) = build(&snap, &wh, &["--as-of", &ts]);
        assert!(code == 0, "{out}{err}");
        let now = catalog_staleness(&wh);
        for ((v, refreshed, hours, stale), (v0, refreshed0, ..)) in now.iter().zip(&base) {
            assert_eq!(v, v0);
            // Only rows the snapshot dates after its own as_of (calls, QBRs scheduled ahead)
            // can move a refresh forward; it never passes as_of. A view whose window holds no
            // rows any more has no refresh to show (and is stale).
            assert!(
                refreshed.is_none()
                    || refreshed >= refreshed0 && refreshed.is_none_or(|r| r <= as_of),
                "{v}: {refreshed0:?} → {refreshed:?} at {ts}"
            );
            let due = refreshed.is_none_or(|r| as_of - r > (hours * hour as f64) as i64);
            if v != "account_composite" {
                assert_eq!(
                    *stale, due,
                    "{v} at {ts}: refreshed {refreshed:?}, threshold {hours} h"
                );
            } else if due {
                assert!(*stale, "the composite at {ts}");
            }
            if *stale {
                became_stale.insert(v.clone());
            }
        }
        // The first step leaves the slow views fresh; the last leaves nothing fresh.
        if k == 0 {
            assert!(
                now.iter().any(|x| !x.3),
                "some view is still fresh a day later"
            );
        }
        if k == 3 {
            assert!(now.iter().all(|x| x.3), "a year later every view is stale");
        }
    }
    assert_eq!(became_stale.len(), 32);
}
