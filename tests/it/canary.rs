//! The canary statistics against reference values computed once with scipy
//! (tests/fixtures/canary_reference.py and its stored output; no Python at test time).

use gtmos::canary::stats::{self, Moments};
use serde_json::Value;

fn reference() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/canary_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn close(ours: f64, theirs: &Value, tol: f64, what: &str) {
    let t = f(theirs);
    assert!(
        (ours - t).abs() <= tol * t.abs().max(1e-300) || (ours - t).abs() < 1e-14,
        "{what}: gtmos {ours}, scipy {t}"
    );
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn every_statistic_matches_scipy() {
    let r = reference();
    for c in r["srm"].as_array().unwrap() {
        let (stat, df, p) = stats::chi_square_gof(&counts(&c["observed"]), &floats(&c["shares"]));
        close(stat, &c["statistic"], 1e-12, "SRM chi-square");
        assert_eq!(df, 1.0);
        close(p, &c["p"], 1e-9, "SRM p");
    }
    for c in r["wilson"].as_array().unwrap() {
        let (lo, hi) = stats::wilson(f(&c["x"]), f(&c["n"]), 0.95);
        close(lo, &c["low"], 1e-9, "Wilson low");
        close(hi, &c["high"], 1e-9, "Wilson high");
    }
    for c in r["two_proportion"].as_array().unwrap() {
        let z = stats::two_proportion_z(f(&c["x1"]), f(&c["n1"]), f(&c["x2"]), f(&c["n2"]));
        close(z.p, &c["p"], 1e-9, "two-proportion p");
    }
    for c in r["fisher"].as_array().unwrap() {
        let t: Vec<u64> = c["table"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(counts)
            .collect();
        close(
            stats::fisher_exact(t[0], t[1], t[2], t[3]),
            &c["p"],
            1e-9,
            "Fisher p",
        );
    }
    for c in r["binomial"].as_array().unwrap() {
        let p = stats::binomial_test(
            c["k"].as_u64().unwrap(),
            c["n"].as_u64().unwrap(),
            f(&c["p0"]),
        );
        close(p, &c["p"], 1e-9, "binomial p");
    }
    let s = &r["samples"];
    let w = stats::welch(
        &Moments::of(&floats(&s["a"])),
        &Moments::of(&floats(&s["b"])),
        0.95,
    );
    for (ours, key) in [
        (w.t, "t"),
        (w.df, "df"),
        (w.p, "p"),
        (w.low, "low"),
        (w.high, "high"),
    ] {
        close(ours, &r["welch"][key], 1e-9, &format!("Welch {key}"));
    }
    let m = stats::mann_whitney(&floats(&s["x"]), &floats(&s["y"]));
    close(m.u, &r["mann_whitney"]["u"], 1e-12, "Mann–Whitney U");
    close(
        m.p.unwrap(),
        &r["mann_whitney"]["p"],
        1e-9,
        "Mann–Whitney p",
    );
}

#[test]
fn two_poisson_rates_are_compared_exactly() {
    // 3 duplicate incidents in 1,000 control decisions against 9 in 1,000 variant decisions:
    // conditional on 12 incidents, the variant's count is Binomial(12, 0.5); P(X ≥ 9) =
    // (220 + 66 + 12 + 1) / 4096 = 299 / 4096, two-sided (symmetric) 598 / 4096.
    let p = stats::poisson_rates_exact(3, 1000.0, 9, 1000.0);
    assert!((p - 598.0 / 4096.0).abs() < 1e-12, "{p}");
}
