//! The pipelines' unit tests (`unit_tests:` beside the models: the SPEC's worked oracles) pass
//! through the CLI, and a wrong expectation fails it with the differing rows.

use crate::common::*;

fn unit_test_files(project: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(project.join("models")).unwrap() {
        let f = d.unwrap().path().join("_unit_tests.yml");
        if f.exists() {
            out.push(f);
        }
    }
    out.sort();
    out
}

#[test]
fn the_projects_unit_tests_pass() {
    let dir = tempdir();
    let project = project_dir();
    let (code, out, err) = gtmos(
        &[
            "test",
            "--project",
            &project.to_string_lossy(),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failed"], 0, "{out}");
    // The SPEC §7–§9 oracles are there: at least one test per family.
    let models: Vec<&str> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["model"].as_str().unwrap())
        .collect();
    for m in [
        "metric_retention",
        "metric_magic_number",
        "metric_cac_payback",
        "metric_rule_of_40",
        "revenue_schedule",
        "customer_health_log",
        "churn_risk_log",
    ] {
        assert!(models.contains(&m), "no unit test of {m}: {models:?}");
    }
    assert!(unit_test_files(&project).len() >= 3);
}

#[test]
fn a_wrong_expectation_fails_with_the_rows_that_differ() {
    let dir = tempdir();
    let project = dir.path().join("pipelines");
    copy_dir(&project_dir(), &project);
    let f = project.join("models/metrics/_unit_tests.yml");
    let text = std::fs::read_to_string(&f).unwrap();
    // The Magic Number oracle is 1.00; claim 1.01 for SMB's quarter.
    let good = "{ cadence: quarterly, period: 2024-04-01, segment: SMB, metric_value: 1.0,";
    assert!(text.contains(good));
    std::fs::write(&f, text.replace(good, &good.replace("1.0,", "1.01,"))).unwrap();
    let (code, out, err) = gtmos(
        &[
            "test",
            "--project",
            &project.to_string_lossy(),
            "--select",
            "metric_magic_number",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("FAIL  magic_number_spec_oracle"), "{out}");
    assert!(
        out.contains("expected, not returned: {cadence: quarterly, period: 2024-04-01, segment: SMB, metric_value: 1.01"),
        "{out}"
    );
    assert!(out.contains("0 of 1 unit tests passed"), "{out}");
}
