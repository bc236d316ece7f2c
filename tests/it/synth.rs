//! The synthetic corpus: determinism, conformance to the schema registry, referential
//! integrity, finance consistency, and each archetype's story told by the data.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use arrow::array::Array;
use gtmos::snapshot::{Manifest, Snapshot};
use gtmos::synth::params::SynthParams;

use crate::common::*;

/// Per-table sha256 of the corpus for seed 42, 40 accounts, default window. A change here
/// means the generator's output changed: bump `GENERATOR_VERSION` and update the pins.
const GOLDEN: &[(&str, &str)] = &[
    (
        "accounts",
        "afdd1d1566909d6f4d2b2d323e306220bbdb92f32022def11ab9e5eabc609cfb",
    ),
    (
        "agent_decisions",
        "29dcf53831d9b98084207855344c74ff3d38fd9fe57af99a073c852ca346ab8e",
    ),
    (
        "backend_costs",
        "ee96f63775ef1d03b9a5e78c32d62d490ba8292e9dbf497794b1b12c5bc93844",
    ),
    (
        "cadence_events",
        "41438613420a5f4945ac5a88aa07f850044e879cf5f68a6c540db381bc2c23f3",
    ),
    (
        "contacts",
        "6752c47d972fa03273029436b9c0877174a26bd12f664cf8365c8a05cd7d2bd0",
    ),
    (
        "conversations",
        "20ff795666e0ea864b35c261a36694f5444ddb1f7f25c9da3bef953c8c2321f7",
    ),
    (
        "decision_outcomes",
        "7683c52772da810246748c067374589b3cbf4165a5054bf57d04983301aaa71e",
    ),
    (
        "feature_engagement",
        "d2230eee5d1abe2324de4c442594ddc6ae3e046c364436d575a343f4846586cd",
    ),
    (
        "financials",
        "f30d6a0a0e063fe60ef857313493e8dc3276f070b4708ed75631f6e2e90373f0",
    ),
    (
        "fpa_plan",
        "17d2543853f8384e1a1aa0275353fe091ead430c04c06cb14ad111760db4a5f4",
    ),
    (
        "gtm_spend",
        "40ea978f1299dd533ced6f4dc7eec9792744ee46bff7d31e1982f87a9bd17d7f",
    ),
    (
        "invoice_lines",
        "67153d67a835056756cb1abfb3e5b22beb5be55d688b1e9bdfa18df75c0c807f",
    ),
    (
        "invoices",
        "bed0c10f012a7a7748a35b912141f8106a65dce59c30f81f39d7bdbad126e03e",
    ),
    (
        "nps_responses",
        "1ca6acd204c46a5b81f58320144278009d8460c48e95a93244f7c2faed0cc0ce",
    ),
    (
        "onboarding_log",
        "1f6c17013c8f93116c7d65a414ff51e7297299db743afa3df41eaa5aff71f93a",
    ),
    (
        "opportunities",
        "e0cc764595e9373233281496430e2c6eb516fa385f36d406a689df58c4c5edb2",
    ),
    (
        "order_lines",
        "2850ab84900d9340ef33535bcae59ba71c3d62224801372024d2d707933f5f60",
    ),
    (
        "orders",
        "3d3a641a6797333986301d109233798cc924197bf59175301a411113870861c0",
    ),
    (
        "payment_events",
        "643d0049a58f047c12cdd9e86a91c0e1947c7972eb89012abcbf45d99fe6df24",
    ),
    (
        "price_tests",
        "7a473e57487583d7a51a6156264968277651f3cb32e3bd9316e233d4477c69ce",
    ),
    (
        "qbr_log",
        "fd3de6fccce817f50192d06310288ed55bd0f08e5725ecd957ed2bbe65d95fc4",
    ),
    (
        "reference_billing",
        "f5f9239e44bf828be4430d1af8b4d4d2cd1e061bcf51aa8808626b4387946b0c",
    ),
    (
        "reference_gl",
        "a6e39e15336db2ca6ad05c7f1b54ae4cac0b5172fed8aef7b7c0ae61fbbe2b82",
    ),
    (
        "reference_usage",
        "d61599f1c0660f021a00ff24d05ac23cd476fe9ca9ef33cdeb4fc5016e3266b6",
    ),
    (
        "reps",
        "e432cc95d8c129944ad35c28f6506efac5ba4ae55687fba2b861f9b6af369e5e",
    ),
    (
        "restatements",
        "d4161f754e640b60fec1531fafd8d8d41e091d7285af358ae32d7cc54639bd20",
    ),
    (
        "routing_shadow_log",
        "76a936c74035ef9680af1b417f9ce9745b5a250c341e1551116bcc52df056413",
    ),
    (
        "service_milestones",
        "39181eb223bb3e8ba6605e8c0dc0ec8a6d295dce923d2fc1d93aee4c25a4e86b",
    ),
    (
        "support_tickets",
        "5a3de0e23701935c21d129f370bd27ab1e3786137f380b4a3cf6eac2c6ae88dd",
    ),
    (
        "technical_milestones",
        "efcc64d49bc993768e34e6cb9cc90fcfabc776e791bedbc343f2fc0acb12eff5",
    ),
    (
        "usage_metering_log",
        "0b4a47f2afb5fb6ea1a516ab5b8e17cc63871ba7b240439e9ef48a4fc4e28894",
    ),
];

fn small(threads: usize) -> (tempfile::TempDir, Manifest) {
    let dir = tempdir();
    let out = dir.path().join("snap");
    let p = SynthParams {
        accounts: 40,
        ..SynthParams::default()
    };
    let r = gtmos::synth::generate(&p, &out, threads, false).expect("synth");
    (dir, r.manifest)
}

#[test]
fn output_is_pinned_and_independent_of_threads() {
    let (_a, one) = small(1);
    let (_b, two) = small(2);
    assert_eq!(one.tables, two.tables, "--threads 1 and --threads 2 differ");
    assert_eq!(
        one.extras, two.extras,
        "oracle differs between thread counts"
    );
    assert_eq!(one.snapshot_id, two.snapshot_id);
    let actual: BTreeMap<&str, &str> = one
        .tables
        .iter()
        .map(|(k, v)| (k.as_str(), v.sha256.as_str()))
        .collect();
    if GOLDEN.is_empty() || std::env::var("GTMOS_PRINT_GOLDEN").is_ok() {
        for (k, v) in &actual {
            eprintln!("    (\"{k}\", \"{v}\"),");
        }
    }
    let golden: BTreeMap<&str, &str> = GOLDEN.iter().copied().collect();
    assert_eq!(
        actual, golden,
        "generator output drifted from the pinned hashes"
    );
}

#[test]
fn manifest_describes_the_files() {
    let dir = corpus();
    let snap = Snapshot::open(dir, registry()).expect("opens against the registry");
    let m = &snap.manifest;
    assert_eq!(m.as_of, "2026-01-01T00:00:00Z");
    assert_eq!(
        m.created_at, m.as_of,
        "synthetic corpora are stamped with their as_of, not the clock"
    );
    assert!(m.digest_ok());
    assert_eq!(m.source["seed"], 7);
    assert_eq!(m.source["accounts"], 160);
    assert!(snap.verify_hashes().unwrap().is_empty());
    for (name, t) in &m.tables {
        assert_eq!(Table::read(dir, name).rows as u64, t.rows, "{name}");
    }
    for table in registry().tables() {
        assert!(m.tables.contains_key(&table.name), "{} missing", table.name);
    }
    assert!(
        m.extras.contains_key("oracle/accounts.parquet")
            && m.extras.contains_key("oracle/canary.json")
    );
}

#[test]
fn every_table_conforms_to_the_schema_registry() {
    let dir = corpus();
    let faults = Table::read(dir, "oracle/faults");
    let labelled: HashSet<String> = faults.s("key").into_iter().collect();
    for t in registry().tables() {
        let path = dir.join(format!("{}.parquet", t.name));
        let (schema, _) = gtmos::table_io::read_parquet_schema(&path).unwrap();
        assert_eq!(
            schema.as_ref(),
            t.arrow_schema().as_ref(),
            "{}: schema differs from the registry",
            t.name
        );
        let table = Table::read(dir, &t.name);
        let key = t
            .columns
            .iter()
            .find(|c| c.unique)
            .map(|c| table.s(&c.name));
        for c in &t.columns {
            let arr = &table.cols[&c.name];
            for i in 0..table.rows {
                let row_key = key.as_ref().map(|k| k[i].clone()).unwrap_or_default();
                if !c.nullable && arr.is_null(i) {
                    assert!(
                        labelled.contains(&row_key),
                        "{}.{} is null in unlabelled row {row_key}",
                        t.name,
                        c.name
                    );
                }
            }
            if let Some(domain) = &c.accepted_values {
                for (i, v) in table.str(&c.name).iter().enumerate() {
                    if let Some(v) = v {
                        let row_key = key.as_ref().map(|k| k[i].clone()).unwrap_or_default();
                        assert!(
                            domain.contains(v) || labelled.contains(&row_key),
                            "{}.{} = {v} outside its domain",
                            t.name,
                            c.name
                        );
                    }
                }
            }
            if c.unique {
                let vals = table.str(&c.name);
                let distinct: HashSet<&Option<String>> = vals.iter().collect();
                assert_eq!(
                    distinct.len(),
                    vals.len(),
                    "{}.{} is not unique",
                    t.name,
                    c.name
                );
            }
        }
    }
}

#[test]
fn foreign_keys_resolve_except_the_labelled_orphans() {
    let dir = corpus();
    let o = Table::read(dir, "oracle/faults");
    let orphans: BTreeSet<String> = o
        .s("fault_class")
        .into_iter()
        .zip(o.s("key"))
        .filter(|(c, _)| c == "orphan_account_id")
        .map(|(_, k)| k)
        .collect();
    assert!(!orphans.is_empty());
    let mut checked = 0;
    for t in registry().tables() {
        let table = Table::read(dir, &t.name);
        for c in &t.columns {
            let Some(rel) = &c.relationship else { continue };
            let targets: HashSet<String> = Table::read(dir, &rel.to)
                .str(&rel.field)
                .into_iter()
                .flatten()
                .collect();
            let key = t
                .columns
                .iter()
                .find(|x| x.unique)
                .map(|x| table.s(&x.name));
            let dangling: BTreeSet<String> = table
                .str(&c.name)
                .iter()
                .enumerate()
                .filter(|(_, v)| v.as_ref().is_some_and(|v| !targets.contains(v)))
                .map(|(i, v)| {
                    key.as_ref()
                        .map(|k| k[i].clone())
                        .unwrap_or_else(|| v.clone().unwrap())
                })
                .collect();
            if t.name == "usage_metering_log" && c.name == "account_id" {
                assert_eq!(
                    dangling, orphans,
                    "usage orphans must be exactly the labelled ones"
                );
            } else {
                assert!(
                    dangling.is_empty(),
                    "{}.{} → {}.{} dangling: {dangling:?}",
                    t.name,
                    c.name,
                    rel.to,
                    rel.field
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} relationships checked");
}

#[test]
fn finance_tables_are_consistent() {
    let dir = corpus();
    let orders = Table::read(dir, "orders");
    let term: HashMap<String, (i32, i32, String)> = orders
        .s("order_id")
        .into_iter()
        .zip(
            orders
                .date("term_start")
                .into_iter()
                .zip(orders.date("term_end"))
                .zip(orders.s("status")),
        )
        .map(|(id, ((s, e), st))| (id, (s.unwrap(), e.unwrap(), st)))
        .collect();
    let lines = Table::read(dir, "order_lines");
    let ms = Table::read(dir, "service_milestones");
    let mut milestone_sum: HashMap<String, i128> = HashMap::new();
    for (l, a) in ms.s("order_line_id").into_iter().zip(ms.dec("amount_usd")) {
        *milestone_sum.entry(l).or_default() += a.unwrap();
    }
    let months = |s: i32, e: i32| {
        let (a, b) = (gtmos::calendar::Day(s), gtmos::calendar::Day(e));
        (b.month_index() - a.month_index()) as i128
    };
    let mut line_amount = HashMap::new();
    let mut line_status = HashMap::new();
    let (l_id, l_order, l_kind) = (
        lines.s("order_line_id"),
        lines.s("order_id"),
        lines.s("sku_type"),
    );
    let (l_qty, l_price, l_amount) = (
        lines.i64("quantity"),
        lines.dec("unit_price_usd"),
        lines.dec("line_amount_usd"),
    );
    for i in 0..lines.rows {
        let (id, order, kind) = (l_id[i].clone(), l_order[i].clone(), l_kind[i].clone());
        let (qty, price, amount) = (
            l_qty[i].unwrap() as i128,
            l_price[i].unwrap(),
            l_amount[i].unwrap(),
        );
        let (s, e, status) = &term[&order];
        match kind.as_str() {
            // quantity × unit price (6 decimals) × term months = amount (2 decimals)
            "seat" | "consumption" => {
                assert_eq!(qty * price * months(*s, *e), amount * 10_000, "line {id}")
            }
            _ => assert_eq!(
                milestone_sum[&id], amount,
                "services line {id} = sum of milestones"
            ),
        }
        line_amount.insert(id.clone(), amount);
        line_status.insert(id, status.clone());
    }
    // Invoices: amount = Σ lines; never for cancelled or superseded orders; recurring billing ≤ line amount.
    let inv = Table::read(dir, "invoices");
    let il = Table::read(dir, "invoice_lines");
    let mut per_invoice: HashMap<String, i128> = HashMap::new();
    let mut recurring_billed: HashMap<String, i128> = HashMap::new();
    let kind: HashMap<String, String> = inv
        .s("invoice_id")
        .into_iter()
        .zip(inv.s("billing_type"))
        .collect();
    for ((i, l), a) in il
        .s("invoice_id")
        .into_iter()
        .zip(il.s("order_line_id"))
        .zip(il.dec("amount_usd"))
    {
        *per_invoice.entry(i.clone()).or_default() += a.unwrap();
        assert_eq!(
            line_status[&l], "active",
            "invoice line on a {} order",
            line_status[&l]
        );
        if kind[&i] == "recurring" {
            *recurring_billed.entry(l).or_default() += a.unwrap();
        }
    }
    for (id, a) in inv.s("invoice_id").into_iter().zip(inv.dec("amount_usd")) {
        assert_eq!(per_invoice[&id], a.unwrap(), "invoice {id} = Σ its lines");
    }
    for (l, billed) in recurring_billed {
        assert!(
            billed <= line_amount[&l],
            "line {l} billed {billed} > {}",
            line_amount[&l]
        );
    }
    // Payment events reference invoices of the same account and never follow as_of.
    let pe = Table::read(dir, "payment_events");
    let inv_account: HashMap<String, String> = inv
        .s("invoice_id")
        .into_iter()
        .zip(inv.s("account_id"))
        .collect();
    let as_of = day(2026, 1, 1) as i64 * 86_400_000_000;
    for ((i, a), ts) in pe
        .s("invoice_id")
        .into_iter()
        .zip(pe.s("account_id"))
        .zip(pe.ts("event_ts"))
    {
        assert_eq!(inv_account[&i], a);
        assert!(ts.unwrap() < as_of);
    }
    // Paid invoices have a success event; troubled accounts exist.
    let states: BTreeSet<String> = pe.s("new_state").into_iter().collect();
    assert!(
        states.contains("failed") && states.contains("overdue"),
        "{states:?}"
    );
}

// ---------- archetype stories ----------

struct Accounts {
    by_archetype: BTreeMap<String, Vec<usize>>,
    id: Vec<String>,
    first_start: Vec<Option<i32>>,
    churn: Vec<Option<i32>>,
    dep: Vec<Option<i32>>,
    champion: Vec<Option<String>>,
    spike: Vec<(Option<i32>, Option<i32>)>,
    period: Vec<Option<i64>>,
}

fn accounts() -> Accounts {
    let t = Table::read(corpus(), "oracle/accounts");
    let mut by_archetype: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in t.str("archetype").into_iter().enumerate() {
        if let Some(a) = a {
            by_archetype.entry(a).or_default().push(i);
        }
    }
    Accounts {
        by_archetype,
        id: t.s("account_id"),
        first_start: t.date("first_term_start"),
        churn: t.date("churn_date"),
        dep: t.date("champion_departure_date"),
        champion: t.str("champion_contact_id"),
        spike: t
            .date("spike_start")
            .into_iter()
            .zip(t.date("spike_end"))
            .collect(),
        period: t.i64("season_period_days"),
    }
}

/// Daily units per account × SKU from the current view (labelled faults left out).
fn daily_units() -> HashMap<(String, String), BTreeMap<i32, f64>> {
    let o = Table::read(corpus(), "oracle/faults");
    let labelled: HashSet<String> = o.s("key").into_iter().collect();
    let t = Table::read(corpus(), "usage_metering_log");
    let mut m: HashMap<(String, String), BTreeMap<i32, f64>> = HashMap::new();
    for ((((id, a), s), start), u) in t
        .s("usage_id")
        .into_iter()
        .zip(t.s("account_id"))
        .zip(t.s("sku_id"))
        .zip(t.ts("period_start"))
        .zip(t.f64("units_consumed"))
    {
        if !labelled.contains(&id) {
            m.entry((a, s))
                .or_default()
                .insert((start.unwrap() / 86_400_000_000) as i32, u.unwrap());
        }
    }
    m
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn window(series: &BTreeMap<i32, f64>, from: i32, to: i32) -> f64 {
    mean(series.range(from..to).map(|(_, v)| *v))
}

/// Monthly mean seat utilisation per account.
fn monthly_seat_util() -> HashMap<String, BTreeMap<i32, f64>> {
    let t = Table::read(corpus(), "usage_metering_log");
    let mut sums: HashMap<String, BTreeMap<i32, (f64, f64)>> = HashMap::new();
    for ((a, start), p) in t
        .s("account_id")
        .into_iter()
        .zip(t.ts("period_start"))
        .zip(t.f64("seat_utilization_pct"))
    {
        if let Some(p) = p.filter(|p| *p <= 100.0) {
            let m = gtmos::calendar::Day((start.unwrap() / 86_400_000_000) as i32).month_index();
            let e = sums.entry(a).or_default().entry(m).or_default();
            e.0 += p;
            e.1 += 1.0;
        }
    }
    sums.into_iter()
        .map(|(a, m)| (a, m.into_iter().map(|(k, (s, n))| (k, s / n)).collect()))
        .collect()
}

fn of(acc: &Accounts, archetype: &str) -> Vec<usize> {
    let v = acc.by_archetype.get(archetype).cloned().unwrap_or_default();
    assert!(!v.is_empty(), "no {archetype} accounts in the corpus");
    v
}

#[test]
fn champion_loss_decliner_loses_its_champion_then_usage_and_sentiment() {
    let acc = accounts();
    let units = daily_units();
    let contacts = Table::read(corpus(), "contacts");
    let active_to: HashMap<String, Option<i32>> = contacts
        .s("contact_id")
        .into_iter()
        .zip(contacts.date("active_to"))
        .collect();
    let persona: HashMap<String, String> = contacts
        .s("contact_id")
        .into_iter()
        .zip(contacts.s("persona"))
        .collect();
    let calls = Table::read(corpus(), "conversations");
    let (c_acc, c_role, c_ts, c_sent) = (
        calls.s("account_id"),
        calls.s("call_owner_role"),
        calls.ts("call_ts"),
        calls.f64("sentiment_score"),
    );
    for i in of(&acc, "champion_loss_decliner") {
        let dep = acc.dep[i].expect("departure date");
        let champ = acc.champion[i].clone().expect("champion");
        assert_eq!(persona[&champ], "champion");
        assert_eq!(
            active_to[&champ],
            Some(dep),
            "champion {champ} has active_to = departure"
        );
        let seats = &units[&(acc.id[i].clone(), "SEAT-PLATFORM".to_string())];
        let (before, after) = (window(seats, dep - 60, dep), window(seats, dep, dep + 60));
        assert!(
            after < before,
            "{}: seats after {after} !< before {before}",
            acc.id[i]
        );
        if let Some(c) = units.get(&(acc.id[i].clone(), "API-CALLS".to_string())) {
            assert!(
                window(c, dep, dep + 60) < window(c, dep - 60, dep),
                "{}: consumption did not fall",
                acc.id[i]
            );
        }
        let sentiment = |from: i32, to: i32| {
            mean(
                (0..calls.rows)
                    .filter(|&k| {
                        let d = (c_ts[k].unwrap() / 86_400_000_000) as i32;
                        c_acc[k] == acc.id[i] && c_role[k] == "CSM" && d >= from && d < to
                    })
                    .map(|k| c_sent[k].unwrap()),
            )
        };
        let (sb, sa) = (sentiment(dep - 60, dep), sentiment(dep, dep + 60));
        assert!(
            sa < sb,
            "{}: CSM sentiment after {sa} !< before {sb}",
            acc.id[i]
        );
    }
}

#[test]
fn expansion_ready_runs_into_overage_with_seats_above_80_percent() {
    let acc = accounts();
    let util = monthly_seat_util();
    let lines = Table::read(corpus(), "order_lines");
    let il = Table::read(corpus(), "invoices");
    let overage_accounts: HashSet<String> = il
        .s("account_id")
        .into_iter()
        .zip(il.s("billing_type"))
        .filter(|(_, t)| t == "consumption")
        .map(|(a, _)| a)
        .collect();
    assert!(lines.rows > 0);
    for i in of(&acc, "expansion_ready") {
        let id = &acc.id[i];
        assert!(
            overage_accounts.contains(id),
            "{id}: no month with consumption overage"
        );
        let months: Vec<f64> = util[id].values().copied().collect();
        let run = months.windows(2).any(|w| w[0] > 80.0 && w[1] > 80.0);
        assert!(
            run,
            "{id}: no two consecutive months above 80 %: {months:?}"
        );
    }
}

#[test]
fn seasonal_accounts_repeat_their_cycle_at_least_twice() {
    let acc = accounts();
    let units = daily_units();
    for i in of(&acc, "seasonal") {
        let period = acc.period[i].expect("period") as i32;
        let id = &acc.id[i];
        let series = units
            .get(&(id.clone(), "API-CALLS".to_string()))
            .unwrap_or_else(|| &units[&(id.clone(), "SEAT-PLATFORM".to_string())]);
        let (first, last) = (
            *series.keys().next().unwrap(),
            *series.keys().last().unwrap(),
        );
        assert!(
            last - first + 1 >= 2 * period,
            "{id}: {} days < two cycles of {period}",
            last - first + 1
        );
        // Correlated with itself one period later, anti-correlated half a period later.
        let corr = |lag: i32| {
            let pairs: Vec<(f64, f64)> = series
                .iter()
                .filter_map(|(d, v)| series.get(&(d + lag)).map(|w| (*v, *w)))
                .collect();
            let (mx, my) = (
                mean(pairs.iter().map(|p| p.0)),
                mean(pairs.iter().map(|p| p.1)),
            );
            let cov = mean(pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)));
            let (sx, sy) = (
                mean(pairs.iter().map(|p| (p.0 - mx).powi(2))).sqrt(),
                mean(pairs.iter().map(|p| (p.1 - my).powi(2))).sqrt(),
            );
            cov / (sx * sy)
        };
        assert!(
            corr(period) > 0.3,
            "{id}: lag-{period} correlation {}",
            corr(period)
        );
        assert!(
            corr(period / 2) < 0.0,
            "{id}: half-period correlation {}",
            corr(period / 2)
        );
    }
}

#[test]
fn stalled_onboarding_has_overdue_milestones() {
    let acc = accounts();
    let ob = Table::read(corpus(), "onboarding_log");
    let (o_acc, o_status, o_planned, o_done) = (
        ob.s("account_id"),
        ob.s("status"),
        ob.date("planned_date"),
        ob.date("completed_date"),
    );
    let as_of = day(2026, 1, 1);
    for i in of(&acc, "stalled_onboarding") {
        let id = &acc.id[i];
        let rows: Vec<usize> = (0..ob.rows).filter(|&k| &o_acc[k] == id).collect();
        assert_eq!(rows.len(), 7);
        let overdue = rows.iter().filter(|&&k| o_status[k] == "overdue").count();
        assert!(overdue >= 1, "{id}: no overdue milestone");
        for &k in &rows {
            if o_status[k] == "overdue" {
                assert!(o_planned[k].unwrap() < as_of && o_done[k].is_none());
            }
        }
        let age = as_of - acc.first_start[i].unwrap();
        assert!(
            (60..=123).contains(&age),
            "{id}: {age} days into its contract"
        );
    }
}

#[test]
fn spike_then_crash_spikes_over_3x_then_falls_below_its_baseline() {
    let acc = accounts();
    let units = daily_units();
    for i in of(&acc, "spike_then_crash") {
        let id = &acc.id[i];
        let (s, e) = (acc.spike[i].0.unwrap(), acc.spike[i].1.unwrap());
        let c = &units[&(id.clone(), "API-CALLS".to_string())];
        let baseline = window(c, s - 30, s);
        let peak = c.range(s..e).map(|(_, v)| *v).fold(0.0, f64::max);
        let after = window(c, e + 10, e + 40);
        assert!(
            peak > 3.0 * baseline,
            "{id}: peak {peak} vs baseline {baseline}"
        );
        assert!(
            after < baseline,
            "{id}: after {after} !< baseline {baseline}"
        );
    }
}

#[test]
fn ideal_power_users_use_broadly_and_stay() {
    let acc = accounts();
    let util = monthly_seat_util();
    let fe = Table::read(corpus(), "feature_engagement");
    let nps = Table::read(corpus(), "nps_responses");
    let (f_acc, f_week, f_id) = (
        fe.s("account_id"),
        fe.date("week_start"),
        fe.s("feature_id"),
    );
    let (n_acc, n_score) = (nps.s("account_id"), nps.i64("score"));
    let since = day(2025, 11, 1);
    for i in of(&acc, "ideal_power_user") {
        let id = &acc.id[i];
        assert!(acc.churn[i].is_none(), "{id} churned");
        let features: HashSet<String> = (0..fe.rows)
            .filter(|&k| &f_acc[k] == id && f_week[k].unwrap() >= since)
            .map(|k| f_id[k].clone())
            .collect();
        assert!(
            features.len() >= 15,
            "{id}: only {} features",
            features.len()
        );
        let last = *util[id].values().last().unwrap();
        assert!((60.0..=85.0).contains(&last), "{id}: utilisation {last}");
        let scores = mean(
            (0..nps.rows)
                .filter(|&k| &n_acc[k] == id)
                .map(|k| n_score[k].unwrap() as f64),
        );
        assert!(scores.is_nan() || scores >= 8.0, "{id}: NPS {scores}");
    }
}

#[test]
fn activating_accounts_ramp_up_on_schedule() {
    let acc = accounts();
    let units = daily_units();
    let ob = Table::read(corpus(), "onboarding_log");
    let (o_acc, o_status) = (ob.s("account_id"), ob.s("status"));
    let as_of = day(2026, 1, 1);
    for i in of(&acc, "activating") {
        let id = &acc.id[i];
        let start = acc.first_start[i].unwrap();
        assert!(as_of - start < 60, "{id}: {} days in", as_of - start);
        let seats = &units[&(id.clone(), "SEAT-PLATFORM".to_string())];
        assert!(
            window(seats, as_of - 10, as_of) > 1.5 * window(seats, start, start + 7),
            "{id}: no ramp"
        );
        let overdue = (0..ob.rows)
            .filter(|&k| &o_acc[k] == id && o_status[k] == "overdue")
            .count();
        assert_eq!(overdue, 0, "{id}: activating accounts are on schedule");
    }
}

#[test]
fn surface_only_adopters_use_few_core_features_lightly() {
    let acc = accounts();
    let util = monthly_seat_util();
    let fe = Table::read(corpus(), "feature_engagement");
    let (f_acc, f_cat, f_id) = (
        fe.s("account_id"),
        fe.s("feature_category"),
        fe.s("feature_id"),
    );
    for i in of(&acc, "surface_only_adopter") {
        let id = &acc.id[i];
        let rows: Vec<usize> = (0..fe.rows).filter(|&k| &f_acc[k] == id).collect();
        assert!(!rows.is_empty());
        assert!(
            rows.iter().all(|&k| f_cat[k] == "core"),
            "{id}: non-core feature used"
        );
        let distinct: HashSet<String> = rows.iter().map(|&k| f_id[k].clone()).collect();
        assert!(distinct.len() <= 5, "{id}: {} features", distinct.len());
        let mean_util = mean(util[id].values().copied());
        assert!(mean_util < 50.0, "{id}: utilisation {mean_util}");
    }
}

#[test]
fn canary_experiment_is_randomised_by_account_with_a_pre_period() {
    let d = Table::read(corpus(), "agent_decisions");
    let (d_arm, d_acc, d_at, d_model) = (
        d.str("arm"),
        d.s("account_id"),
        d.ts("decided_at"),
        d.s("model_version"),
    );
    let arms: HashMap<String, BTreeSet<String>> = (0..d.rows)
        .filter_map(|k| d_arm[k].clone().map(|a| (d_acc[k].clone(), a)))
        .fold(HashMap::new(), |mut m, (acc, arm)| {
            m.entry(acc).or_default().insert(arm);
            m
        });
    assert!(
        arms.values().all(|s| s.len() == 1),
        "an account saw both arms"
    );
    let c: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corpus().join("oracle/canary.json")).unwrap(),
    )
    .unwrap();
    let exp_start = c["experiment"]["start"].as_str().unwrap().to_string();
    let start_day = gtmos::calendar::Day::parse(&exp_start).unwrap().micros();
    let models: BTreeSet<(bool, String)> = (0..d.rows)
        .map(|k| {
            (
                d_at[k].unwrap() >= start_day && d_arm[k].is_some(),
                d_model[k].clone(),
            )
        })
        .collect();
    assert!(models.contains(&(false, c["control_model"].as_str().unwrap().to_string())));
    assert!(models.contains(&(true, c["variant_model"].as_str().unwrap().to_string())));
    // The default variant's regression: more replies, far fewer positive ones.
    let rate = |arm: &str, k: &str| c["expected_rates"][arm][k].as_f64().unwrap();
    assert!(rate("variant", "reply") > rate("control", "reply"));
    assert!(rate("variant", "positive_reply") < 0.5 * rate("control", "positive_reply"));
    let pre = (0..d.rows)
        .filter(|&k| d_at[k].unwrap() < start_day)
        .count();
    assert!(pre > 0, "no pre-period decisions");
}

#[test]
fn nothing_in_the_snapshot_happens_after_as_of() {
    let as_of = day(2026, 1, 1) as i64 * 86_400_000_000;
    for (table, column) in [
        ("usage_metering_log", "received_at"),
        ("payment_events", "event_ts"),
        ("conversations", "call_ts"),
        ("cadence_events", "event_ts"),
        ("agent_decisions", "decided_at"),
        ("decision_outcomes", "outcome_at"),
        ("support_tickets", "opened_at"),
        ("support_tickets", "closed_at"),
        ("accounts", "updated_at"),
        ("contacts", "updated_at"),
        ("opportunities", "updated_at"),
    ] {
        let t = Table::read(corpus(), table);
        let late = t
            .ts(column)
            .into_iter()
            .flatten()
            .filter(|v| *v >= as_of)
            .count();
        assert_eq!(late, 0, "{table}.{column}: {late} values at or after as_of");
    }
    // The last day's usage arrives after the snapshot: freshness sees an ingestion lag, not a gap.
    let u = Table::read(corpus(), "usage_metering_log");
    let latest = u.ts("received_at").into_iter().flatten().max().unwrap();
    assert!(
        as_of - latest < 24 * 3_600_000_000,
        "usage is {} h stale",
        (as_of - latest) / 3_600_000_000
    );
}
