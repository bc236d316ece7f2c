use super::trailing_median::median;
use super::*;

/// A one-thread engine spilling into a temporary directory (kept alive by the caller).
fn engine() -> (tempfile::TempDir, super::super::Engine) {
    let dir = tempfile::tempdir().unwrap();
    let e = super::super::Engine::new(
        &super::super::EngineConfig::default(),
        1,
        dir.path(),
        64 << 20,
    )
    .unwrap();
    (dir, e)
}

/// Medians per row as SQL computes them over a frame of `days` days.
/// A query's rows, each value as Arrow displays it (null as "").
fn displayed(batches: &[arrow::array::RecordBatch]) -> Vec<Vec<String>> {
    let b = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
    (0..b.num_rows())
        .map(|r| {
            b.columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap())
                .collect()
        })
        .collect()
}

fn medians(rows: &[(&str, i32, f64)], days: i32, min_history: i32) -> Vec<Option<f64>> {
    let (_dir, e) = engine();
    let values: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (k, d, x))| format!("({i}, '{k}', arrow_cast({d}, 'Date32'), {x:.1})"))
        .collect();
    let b = e
        .query(
            &format!(
                "select i, trailing_median(x, d, {min_history}, {days}) over (partition by k order by d) m \
                 from (values {}) t(i, k, d, x) order by i",
                values.join(", ")
            ),
            "test",
        )
        .unwrap();
    b.iter()
        .flat_map(|b| {
            b.column(1)
                .as_primitive::<Float64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn median_of_the_prior_window_only() {
    // Days 0..5 with values 1..6; a 3-day frame, at least 2 prior rows.
    let rows: Vec<(&str, i32, f64)> = (0..6).map(|d| ("a", d, f64::from(d + 1))).collect();
    // day 0: none; day 1: [1] (<2); day 2: [1,2] → 1.5; day 3: [1,2,3] → 2;
    // day 4: [2,3,4] → 3 (day 1 is 3 days back, kept); day 5: [3,4,5] → 4
    assert_eq!(
        medians(&rows, 3, 2),
        vec![None, None, Some(1.5), Some(2.0), Some(3.0), Some(4.0)]
    );
}

#[test]
fn equal_times_do_not_see_each_other() {
    let rows = [
        ("a", 0, 10.0),
        ("a", 1, 20.0),
        ("a", 1, 1000.0),
        ("b", 1, 7.0),
    ];
    assert_eq!(
        medians(&rows, 30, 1),
        vec![None, Some(10.0), Some(10.0), None]
    );
}

#[test]
fn even_counts_average_the_middle_pair() {
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0], 1), Some(2.5));
    assert_eq!(median(&mut [5.0], 1), Some(5.0));
    assert_eq!(median(&mut [5.0], 2), None);
}

fn schedule(amount_cents: i128, start: &str, end: &str, method: &str) -> Vec<(String, i128)> {
    let (s, e) = (Day::parse(start).unwrap(), Day::parse(end).unwrap());
    let w = schedule_weights(s, e, method).unwrap();
    let parts = allocate(amount_cents, &w.iter().map(|x| x.1).collect::<Vec<_>>());
    w.iter()
        .zip(parts)
        .map(|((m, _), p)| (m.iso(), p))
        .collect()
}

#[test]
fn ratable_schedules_match_the_spec_oracles() {
    // SPEC §7: $120 from 2024-06-15 to 2024-10-13, daily.
    assert_eq!(
        schedule(12_000, "2024-06-15", "2024-10-13", "daily"),
        vec![
            ("2024-06-01".into(), 1_600),
            ("2024-07-01".into(), 3_100),
            ("2024-08-01".into(), 3_100),
            ("2024-09-01".into(), 3_000),
            ("2024-10-01".into(), 1_200)
        ]
    );
    // SPEC §7: $365 for a year from 2019-01-01 → 31, 28, 31, …
    let y = schedule(36_500, "2019-01-01", "2020-01-01", "daily");
    assert_eq!(y.len(), 12);
    assert_eq!(
        &y[..3],
        &[
            ("2019-01-01".into(), 3_100),
            ("2019-02-01".into(), 2_800),
            ("2019-03-01".into(), 3_100)
        ]
    );
    // A leap-year term: February 2024 has 29 days.
    assert_eq!(
        schedule(36_600, "2024-01-01", "2025-01-01", "daily")[1],
        ("2024-02-01".into(), 2_900)
    );
    // A mid-month quarterly term (exact fractions computed independently): remainder on the last month.
    assert_eq!(
        schedule(30_000, "2024-01-15", "2024-04-15", "daily")
            .iter()
            .map(|x| x.1)
            .collect::<Vec<_>>(),
        vec![5_604, 9_560, 10_220, 4_616]
    );
    assert_eq!(
        schedule(30_000, "2024-01-15", "2024-04-15", "monthly_prorated")
            .iter()
            .map(|x| x.1)
            .collect::<Vec<_>>(),
        vec![5_456, 9_950, 9_950, 4_644]
    );
    assert_eq!(
        schedule(120_000, "2024-01-01", "2025-01-01", "monthly_prorated")[1].1,
        10_000,
        "full months are equal"
    );
    assert!(schedule_weights(Day(0), Day(1), "weekly").is_none());
    assert!(schedule(100, "2024-02-01", "2024-02-01", "daily").is_empty());
}

#[test]
fn bad_arguments_are_plan_errors() {
    let (_dir, e) = engine();
    for sql in [
        "select trailing_median('x', 1, 1, 30) over () from (values (1)) t(a)",
        "select trailing_median(a, a, 30, 1) over () from (values (1)) t(a)",
        "select trailing_median(a, DATE '2024-01-01', 1) over () from (values (1)) t(a)",
        // not ordered by the time: an execution error, not a wrong median
        "select trailing_median(a, d, 1, 30) over (order by a) from (values (1, DATE '2024-01-02'), (2, DATE '2024-01-01')) t(a, d)",
        "select day_number(a) from (values (1)) t(a)",
        "select date_of_day_number(DATE '2024-01-01')",
    ] {
        assert!(e.query(sql, "test").is_err(), "{sql}");
    }
}

#[test]
fn day_numbers_count_days_since_the_epoch_both_ways() {
    let (_dir, e) = engine();
    // 2024-03-01 is day 19,783: 54 years of 365 days, 13 leap days (1972…2020), then
    // 31 + 29 days of 2024 before March.
    let b = e
        .query(
            "select day_number(DATE '2024-03-01') as n, \
             day_number(d) - day_number(DATE '2024-02-01') as in_feb, \
             date_of_day_number(day_number(d) + 1) as next, \
             date_of_day_number(arrow_cast(0, 'Int64')) as epoch \
             from (values (DATE '2024-02-29'), (NULL)) t(d)",
            "test",
        )
        .unwrap();
    let rows = displayed(&b);
    assert_eq!(
        rows,
        [
            ["19783", "28", "2024-03-01", "1970-01-01"],
            ["19783", "", "", "1970-01-01"],
        ]
    );
}

#[test]
fn quarter_numbers_are_consecutive_across_years_both_ways() {
    let (_dir, e) = engine();
    // 2024-Q1 = 2024 × 4 + 0 = 8096; 2023-12-31 is in 2023-Q4 = 8095; 2024-05-15 in Q2 = 8097.
    let b = e
        .query(
            "select quarter_number(d) as q, \
             date_of_quarter_number(quarter_number(d)) as first, \
             date_of_quarter_number(quarter_number(d) + 4) as a_year_on \
             from (values (DATE '2023-12-31'), (DATE '2024-01-01'), (DATE '2024-05-15'), (NULL)) t(d)",
            "test",
        )
        .unwrap();
    let rows = displayed(&b);
    assert_eq!(
        rows,
        [
            ["8095", "2023-10-01", "2024-10-01"],
            ["8096", "2024-01-01", "2025-01-01"],
            ["8097", "2024-04-01", "2025-04-01"],
            ["", "", ""],
        ]
    );
    assert!(e.query("select quarter_number(1)", "test").is_err());
}

/// `Params::default()` as the JSON the pipeline passes.
fn default_params_json() -> String {
    let p = crate::forecast::Params::default();
    format!(
        r#"{{"min_history_days": {}, "horizon_days": {}, "season_min_days": {},
        "season_max_days": {}, "season_min_corr": {}, "season_min_amplitude": {},
        "cliff_min_ratio": {}, "cliff_max_rss_share": {}, "cliff_min_segment_days": {},
        "flat_max_growth_30d": {}, "interval_z": {}, "full_history_days": {}}}"#,
        p.min_history_days,
        p.horizon_days,
        p.season_min_days,
        p.season_max_days,
        p.season_min_corr,
        p.season_min_amplitude,
        p.cliff_min_ratio,
        p.cliff_max_rss_share,
        p.cliff_min_segment_days,
        p.flat_max_growth_30d,
        p.interval_z,
        p.full_history_days
    )
}

#[test]
fn the_forecast_takes_each_series_days_in_any_order() {
    use crate::forecast::{Input, Params, forecast};
    let (_dir, e) = engine();
    // Series a: 60 days of linear growth, listed newest first, plus a day without units
    // (missing, not zero); series b: 10 days, too short to forecast.
    let mut values: Vec<String> = (0..60)
        .rev()
        .map(|d| format!("('a', {d}, {})", 100 + 2 * d))
        .collect();
    values.push("('a', 61, NULL)".into());
    values.extend((0..10).map(|d| format!("('b', {d}, 5)")));
    let sql = format!(
        "select k, f['observed_days'], f['pattern'], f['refusal_reason'], \
         f['forecast_next_30d_units'] from (select k, consumption_forecast(\
         array_agg(named_struct('day', arrow_cast(d, 'Date32'), 'units', u)), \
         arrow_cast(62, 'Date32'), 1000.0, '{}') f \
         from (values {}) t(k, d, u) group by k) order by k",
        default_params_json(),
        values.join(", ")
    );
    let batches = e.query(&sql, "test").unwrap();
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let days: Vec<i32> = (0..60).collect();
    let units: Vec<f64> = (0..60).map(|d| f64::from(100 + 2 * d)).collect();
    let expected = forecast(
        &Input {
            days: &days,
            units: &units,
            as_of: 62,
            commit_units: Some(1000.0),
        },
        &Params::default(),
    );
    let observed = b.column(1).as_primitive::<arrow::datatypes::Int32Type>();
    let pattern = b.column(2).as_string::<i32>();
    let refusal = b.column(3).as_string::<i32>();
    let next_30d = b.column(4).as_primitive::<Float64Type>();
    assert_eq!(observed.values().to_vec(), vec![60, 10]);
    assert_eq!(pattern.value(0), expected.pattern.unwrap().name());
    assert_eq!(pattern.value(0), "linear");
    assert!(refusal.is_null(0));
    // The same figure to the last bit as the sorted series gives.
    assert_eq!(next_30d.value(0), expected.next_30d_units.unwrap());
    assert!(pattern.is_null(1));
    assert_eq!(
        refusal.value(1),
        "10 days of usage history, fewer than the 30 required"
    );
}

#[test]
fn the_forecast_names_the_usage_it_needs() {
    let (_dir, e) = engine();
    let err = e
        .query(
            &format!(
                "select consumption_forecast(array_agg(arrow_cast(d, 'Date32')), \
                 arrow_cast(10, 'Date32'), 1.0, '{}') from (values (1), (2)) t(d)",
                default_params_json()
            ),
            "test",
        )
        .unwrap_err();
    let err = format!("{err:?}");
    assert!(
        err.contains("usage must be a list of struct<day date, units number>"),
        "{err}"
    );
}
