//! Charts of estimates and their uncertainty: forest plots, a confidence sequence across looks,
//! a reliability diagram, a split against its design.

use super::{Scale, esc, format_value, open};

/// One row of a forest plot: a point estimate, its intervals (drawn thick for the first, thin
/// below it for the second) and thresholds of its own (a margin, a band edge), each labelled.
#[derive(Debug, Clone, Default)]
pub struct ForestRow {
    pub label: String,
    pub value: Option<f64>,
    pub intervals: Vec<(f64, f64)>,
    pub marks: Vec<(f64, String)>,
}

const INTERVAL_STYLES: [&str; 2] = [
    r##"stroke="#2f5fb3" stroke-width="3""##,
    r##"stroke="#8a8a8a" stroke-width="1.5""##,
];

/// A forest plot: one row per estimate on a shared axis, the reference line (`zero`, e.g. no
/// difference) dashed, each row's thresholds as red ticks. `interval_names` names the first
/// and second interval in the legend.
pub fn forest(
    title: &str,
    desc: &str,
    rows: &[ForestRow],
    interval_names: &[&str],
    zero: Option<f64>,
    unit: &str,
) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let (label_w, plot_w, row_h, top) = (190.0, 460.0, 26.0, 30.0);
    let h = top + row_h * rows.len() as f64 + 44.0;
    let x = Scale::over(
        rows.iter()
            .flat_map(|r| {
                r.value
                    .into_iter()
                    .chain(r.intervals.iter().flat_map(|i| [i.0, i.1]))
                    .chain(r.marks.iter().map(|m| m.0))
            })
            .chain(zero),
        label_w,
        label_w + plot_w,
    );
    let mut s = open(title, desc, label_w + plot_w + 20.0, h);
    let bottom = top + row_h * rows.len() as f64;
    for t in x.ticks() {
        s.push_str(&format!(
            r##"<line x1="{p:.1}" x2="{p:.1}" y1="{top}" y2="{bottom}" stroke="#eee"/><text x="{p:.1}" y="{ty}" text-anchor="middle">{l}</text>"##,
            p = x.at(t),
            ty = bottom + 14.0,
            l = esc(&format_value(t, unit)),
        ));
    }
    if let Some(z) = zero {
        s.push_str(&format!(
            r##"<line class="zero" x1="{p:.1}" x2="{p:.1}" y1="{top}" y2="{bottom}" stroke="#555" stroke-dasharray="4 3"/>"##,
            p = x.at(z)
        ));
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        s.push_str(&format!(
            r#"<text x="{lx}" y="{ty:.1}" text-anchor="end">{l}</text>"#,
            lx = label_w - 8.0,
            ty = y + 4.0,
            l = esc(&r.label)
        ));
        for (k, (lo, hi)) in r.intervals.iter().enumerate().take(2) {
            let dy = if k == 0 { 0.0 } else { 6.0 };
            s.push_str(&format!(
                r#"<line class="interval" x1="{:.1}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" {}><title>{} {}: [{}, {}]</title></line>"#,
                x.at(*lo),
                x.at(*hi),
                INTERVAL_STYLES[k],
                esc(&r.label),
                esc(interval_names.get(k).copied().unwrap_or("interval")),
                esc(&format_value(*lo, unit)),
                esc(&format_value(*hi, unit)),
                yy = y + dy,
            ));
        }
        for (v, what) in &r.marks {
            s.push_str(&format!(
                r##"<line class="threshold" x1="{p:.1}" x2="{p:.1}" y1="{a:.1}" y2="{b:.1}" stroke="#b3261e" stroke-width="2"><title>{l} {w}: {v}</title></line>"##,
                p = x.at(*v),
                a = y - 9.0,
                b = y + 9.0,
                l = esc(&r.label),
                w = esc(what),
                v = esc(&format_value(*v, unit)),
            ));
        }
        match r.value {
            Some(v) => s.push_str(&format!(
                r##"<circle class="estimate" cx="{:.1}" cy="{y:.1}" r="4.5" fill="#1d2430"><title>{} {}</title></circle>"##,
                x.at(v),
                esc(&r.label),
                esc(&format_value(v, unit)),
            )),
            None => s.push_str(&format!(
                r##"<text x="{}" y="{:.1}" fill="#b3261e">undefined</text>"##,
                label_w + 4.0,
                y + 4.0
            )),
        }
    }
    // Legend.
    let ly = h - 10.0;
    let mut lx = label_w;
    s.push_str(&format!(
        r##"<circle cx="{lx}" cy="{c}" r="4" fill="#1d2430"/><text x="{t}" y="{ly}">estimate</text>"##,
        c = ly - 4.0,
        t = lx + 8.0
    ));
    lx += 70.0;
    for (k, name) in interval_names.iter().enumerate().take(2) {
        s.push_str(&format!(
            r#"<line x1="{lx}" x2="{l2}" y1="{c}" y2="{c}" {}/><text x="{t}" y="{ly}">{}</text>"#,
            INTERVAL_STYLES[k],
            esc(name),
            l2 = lx + 18.0,
            c = ly - 4.0,
            t = lx + 22.0
        ));
        lx += 30.0 + 6.5 * name.chars().count() as f64;
    }
    s.push_str(&format!(
        r##"<line x1="{lx}" x2="{lx}" y1="{a}" y2="{b}" stroke="#b3261e" stroke-width="2"/><text x="{t}" y="{ly}">threshold</text>"##,
        a = ly - 11.0,
        b = ly + 2.0,
        t = lx + 6.0
    ));
    s.push_str("</svg>");
    s
}

/// One look of a sequential test: its label, the estimate and the interval at that look.
#[derive(Debug, Clone)]
pub struct Look {
    pub label: String,
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// An estimate across looks with its interval as a shaded band, the reference line at zero
/// and thresholds as dotted red lines.
pub fn sequence(
    title: &str,
    desc: &str,
    looks: &[Look],
    thresholds: &[(f64, String)],
    unit: &str,
) -> String {
    if looks.is_empty() {
        return String::new();
    }
    let (w, h, left, right, top, bottom) = (380.0, 170.0, 70.0, 14.0, 24.0, 30.0);
    let n = looks.len();
    let xs = |i: usize| super::spread(i, n, left, w - left - right);
    let y = Scale::over(
        looks
            .iter()
            .flat_map(|l| [l.value, l.low, l.high])
            .flatten()
            .chain(thresholds.iter().map(|t| t.0))
            .chain([0.0]),
        h - bottom,
        top,
    );
    let mut s = open(title, desc, w, h);
    s.push_str(&y.grid(left, w - right, unit));
    s.push_str(&format!(
        r##"<line class="zero" x1="{left}" x2="{x2}" y1="{p:.1}" y2="{p:.1}" stroke="#555" stroke-dasharray="4 3"/>"##,
        x2 = w - right,
        p = y.at(0.0)
    ));
    for (v, what) in thresholds {
        s.push_str(&format!(
            r##"<line class="threshold" x1="{left}" x2="{x2}" y1="{p:.1}" y2="{p:.1}" stroke="#b3261e" stroke-dasharray="2 2"><title>{w}: {v}</title></line>"##,
            x2 = w - right,
            p = y.at(*v),
            w = esc(what),
            v = esc(&format_value(*v, unit)),
        ));
    }
    // The band: a polygon over the looks that have an interval (a bar when there is one look).
    let banded: Vec<(usize, f64, f64)> = looks
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l.low?, l.high?)))
        .filter(|(_, a, b)| a.is_finite() && b.is_finite())
        .collect();
    if banded.len() == 1 {
        let (i, a, b) = banded[0];
        s.push_str(&format!(
            r##"<rect class="band" x="{:.1}" y="{:.1}" width="12" height="{:.1}" fill="#2f5fb3" fill-opacity="0.25"/>"##,
            xs(i) - 6.0,
            y.at(b),
            (y.at(a) - y.at(b)).max(1.0)
        ));
    } else if banded.len() > 1 {
        let mut d = String::new();
        for (k, (i, _, b)) in banded.iter().enumerate() {
            d.push_str(&format!(
                "{}{:.1},{:.1} ",
                if k == 0 { "M" } else { "L" },
                xs(*i),
                y.at(*b)
            ));
        }
        for (i, a, _) in banded.iter().rev() {
            d.push_str(&format!("L{:.1},{:.1} ", xs(*i), y.at(*a)));
        }
        s.push_str(&format!(
            r##"<path class="band" d="{}Z" fill="#2f5fb3" fill-opacity="0.2"/>"##,
            d
        ));
    }
    let mut d = String::new();
    for (i, l) in looks.iter().enumerate() {
        if let Some(v) = l.value.filter(|v| v.is_finite()) {
            d.push_str(&format!(
                "{}{:.1},{:.1} ",
                if d.is_empty() { "M" } else { "L" },
                xs(i),
                y.at(v)
            ));
            s.push_str(&format!(
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#2f5fb3"><title>{}: {}{}</title></circle>"##,
                xs(i),
                y.at(v),
                esc(&l.label),
                esc(&format_value(v, unit)),
                match (l.low, l.high) {
                    (Some(a), Some(b)) => esc(&format!(
                        " [{}, {}]",
                        format_value(a, unit),
                        format_value(b, unit)
                    )),
                    _ => String::new(),
                }
            ));
        }
        if i == 0 || i + 1 == n || n <= 6 {
            // The outermost labels end inside the chart.
            let anchor = match (i, n) {
                (_, 1) => "middle",
                (0, _) => "start",
                (i, n) if i + 1 == n => "end",
                _ => "middle",
            };
            s.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                xs(i),
                h - bottom + 14.0,
                esc(&l.label)
            ));
        }
    }
    if !d.is_empty() {
        s.push_str(&format!(
            r##"<path class="estimate" d="{}" fill="none" stroke="#2f5fb3" stroke-width="2"/>"##,
            d.trim()
        ));
    }
    s.push_str("</svg>");
    s
}

/// One curve of a [`curves`] chart: observed points (x, y), then projected ones with a band
/// (x, y, low, high), drawn dashed over a shaded band.
#[derive(Debug, Clone, Default)]
pub struct Curve {
    pub label: String,
    pub observed: Vec<(f64, f64)>,
    pub projected: Vec<(f64, f64, f64, f64)>,
}

const CURVE_COLOURS: [&str; 8] = [
    "#2f5fb3", "#d9822b", "#2e8b57", "#8e44ad", "#b3261e", "#17a2b8", "#8a6d3b", "#5b6678",
];

/// Several curves on shared axes (e.g. cohorts' retention by quarters since signup), each
/// continued by its projection, dashed, inside its band; a legend names them.
pub fn curves(title: &str, desc: &str, curves: &[Curve], x_label: &str, unit: &str) -> String {
    if curves
        .iter()
        .all(|c| c.observed.is_empty() && c.projected.is_empty())
    {
        return String::new();
    }
    let (w, left, right, top, plot_h) = (640.0, 56.0, 14.0, 26.0, 220.0);
    let legend_rows = curves.len().div_ceil(4);
    let h = top + plot_h + 36.0 + 16.0 * legend_rows as f64;
    let xs = Scale::over(
        curves.iter().flat_map(|c| {
            c.observed
                .iter()
                .map(|p| p.0)
                .chain(c.projected.iter().map(|p| p.0))
        }),
        left,
        w - right,
    );
    let ys = Scale::over(
        curves.iter().flat_map(|c| {
            c.observed
                .iter()
                .map(|p| p.1)
                .chain(c.projected.iter().flat_map(|p| [p.2, p.3]))
        }),
        top + plot_h,
        top,
    );
    let mut s = open(title, desc, w, h);
    s.push_str(&ys.grid(left, w - right, unit));
    for t in xs.ticks() {
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            xs.at(t),
            top + plot_h + 14.0,
            esc(&format_value(t.round(), ""))
        ));
    }
    s.push_str(&format!(
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (left + w - right) / 2.0,
        top + plot_h + 28.0,
        esc(x_label)
    ));
    for (i, c) in curves.iter().enumerate() {
        let colour = CURVE_COLOURS[i % CURVE_COLOURS.len()];
        let path = |pts: &mut dyn Iterator<Item = (f64, f64)>| -> String {
            pts.enumerate()
                .map(|(j, (x, y))| {
                    format!(
                        "{}{:.1},{:.1}",
                        if j == 0 { "M" } else { " L" },
                        xs.at(x),
                        ys.at(y)
                    )
                })
                .collect()
        };
        if !c.projected.is_empty() {
            // The band starts at the last observed point, where the projection starts.
            let anchor = c.observed.last().map(|p| (p.0, p.1, p.1, p.1));
            let band: Vec<(f64, f64, f64, f64)> = anchor
                .into_iter()
                .chain(c.projected.iter().copied())
                .collect();
            let mut d = path(&mut band.iter().map(|p| (p.0, p.3)));
            for p in band.iter().rev() {
                d.push_str(&format!(" L{:.1},{:.1}", xs.at(p.0), ys.at(p.2)));
            }
            s.push_str(&format!(
                r#"<path class="band" d="{d} Z" fill="{colour}" fill-opacity="0.12"><title>{}: projected band</title></path>"#,
                esc(&c.label)
            ));
            let line = path(&mut band.iter().map(|p| (p.0, p.1)));
            s.push_str(&format!(
                r#"<path class="projected" d="{line}" fill="none" stroke="{colour}" stroke-width="1.5" stroke-dasharray="5 3"/>"#
            ));
        }
        if !c.observed.is_empty() {
            let line = path(&mut c.observed.iter().copied());
            s.push_str(&format!(
                r#"<path class="observed" d="{line}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></path>"#,
                esc(&c.label)
            ));
        }
        let (lx, ly) = (
            left + 140.0 * (i % 4) as f64,
            top + plot_h + 46.0 + 16.0 * (i / 4) as f64,
        );
        s.push_str(&format!(
            r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{ly}">{}</text>"#,
            lx + 16.0,
            ly - 4.0,
            ly - 4.0,
            lx + 20.0,
            esc(&c.label)
        ));
    }
    s.push_str("</svg>");
    s
}

/// One confidence bin of a reliability diagram (the eval's own bins).
pub use crate::eval::metrics::Bin;

/// A reliability diagram: per confidence bin, the share correct against the mean confidence
/// (bars), the diagonal of perfect calibration, each bin's count in its tooltip and label.
pub fn reliability(title: &str, desc: &str, bins: &[Bin]) -> String {
    if bins.iter().all(|b| b.n == 0) {
        return String::new();
    }
    let (w, h, left, top, size) = (300.0, 300.0, 44.0, 24.0, 230.0);
    let px = |v: f64| left + size * v;
    let py = |v: f64| top + size * (1.0 - v);
    let mut s = open(title, desc, w, h);
    for t in [0.0, 0.5, 1.0] {
        s.push_str(&format!(
            r##"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{t}</text><text x="{xx:.1}" y="{by}" text-anchor="middle">{t}</text>"##,
            x2 = left + size,
            y = py(t),
            tx = left - 4.0,
            ty = py(t) + 4.0,
            xx = px(t),
            by = top + size + 14.0,
        ));
    }
    s.push_str(&format!(
        r##"<line class="diagonal" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#8a8a8a" stroke-dasharray="4 3"/>"##,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    ));
    for b in bins.iter().filter(|b| b.n > 0) {
        s.push_str(&format!(
            r##"<rect class="bin" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2f5fb3" fill-opacity="0.75"><title>confidence {:.2}–{:.2}: {} items, mean confidence {:.3}, correct {:.3}</title></rect><circle cx="{:.1}" cy="{:.1}" r="3" fill="#b3261e"/>"##,
            px(b.low) + 1.0,
            py(b.accuracy),
            (px(b.high) - px(b.low) - 2.0).max(1.0),
            (py(0.0) - py(b.accuracy)).max(0.0),
            b.low,
            b.high,
            b.n,
            b.confidence,
            b.accuracy,
            px(b.confidence),
            py(b.accuracy),
        ));
    }
    s.push_str(&format!(
        r#"<text x="{}" y="{}" text-anchor="middle">mean confidence</text><text x="10" y="{}" transform="rotate(-90 10 {})" text-anchor="middle">share correct</text></svg>"#,
        left + size / 2.0,
        h - 4.0,
        top + size / 2.0,
        top + size / 2.0
    ));
    s
}

/// A split drawn as one bar divided at the observed share, the designed share marked.
pub fn share(title: &str, desc: &str, parts: &[(String, f64)], expected_first: f64) -> String {
    let total: f64 = parts.iter().map(|p| p.1).sum();
    if total <= 0.0 {
        return String::new();
    }
    let (w, left, bar) = (560.0, 10.0, 520.0);
    let mut s = open(title, desc, w, 80.0);
    let colours = ["#2f5fb3", "#d9822b", "#2e8b57"];
    let mut x = left;
    for (k, (label, v)) in parts.iter().enumerate() {
        let len = bar * v / total;
        s.push_str(&format!(
            r##"<rect x="{x:.1}" y="24" width="{len:.1}" height="24" fill="{}"><title>{}: {} ({:.1} %)</title></rect><text x="{tx:.1}" y="40" fill="#fff">{}</text>"##,
            colours[k % colours.len()],
            esc(label),
            format_value(*v, ""),
            100.0 * v / total,
            esc(&format!("{label} {}", format_value(*v, ""))),
            tx = x + 6.0,
        ));
        x += len;
    }
    let e = left + bar * expected_first;
    s.push_str(&format!(
        r##"<line class="threshold" x1="{e:.1}" x2="{e:.1}" y1="18" y2="54" stroke="#1d2430" stroke-width="2" stroke-dasharray="3 2"/><text x="{e:.1}" y="68" text-anchor="middle">designed split {:.0} %</text></svg>"##,
        100.0 * expected_first
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forest_plot_places_estimates_intervals_and_thresholds_on_one_axis() {
        let rows = vec![
            ForestRow {
                label: "macro_f1".into(),
                value: Some(0.0),
                intervals: vec![(-0.1, 0.1)],
                marks: vec![(-0.05, "non-inferiority margin".into())],
            },
            ForestRow {
                label: "kappa <κ>".into(),
                value: None,
                ..Default::default()
            },
        ];
        let s = forest("Δ", "deltas", &rows, &["95 % interval"], Some(0.0), "");
        assert!(s.contains("<title>Δ</title><desc>deltas</desc>"));
        assert!(s.contains("kappa &lt;κ&gt;") && s.contains("undefined"));
        // Range [−0.1, 0.1] padded by 6 % on each side over 460 px from x = 190: the zero
        // line and the estimate at 0 sit in the middle, at 420.
        assert!(s.contains(r#"class="zero" x1="420.0""#), "{s}");
        assert!(s.contains(r#"cx="420.0""#));
        // −0.1 → 190 + 460 × 0.012 / 0.224 = 214.6; −0.05 → 190 + 460 × 0.062 / 0.224 = 317.3.
        assert!(s.contains(r#"x1="214.6" x2="625.4""#), "{s}");
        assert!(s.contains(r#"class="threshold" x1="317.3""#), "{s}");
        assert_eq!(forest("t", "", &[], &[], None, ""), "");
    }

    #[test]
    fn a_reliability_diagram_draws_each_filled_bin_at_its_accuracy() {
        let bins = [
            Bin {
                low: 0.5,
                high: 0.6,
                n: 0,
                confidence: 0.0,
                accuracy: 0.0,
            },
            Bin {
                low: 0.9,
                high: 1.0,
                n: 4,
                confidence: 0.95,
                accuracy: 0.75,
            },
        ];
        let s = reliability("r", "d", &bins);
        assert_eq!(s.matches(r#"class="bin""#).count(), 1);
        // y of 0.75 = 24 + 230 × 0.25 = 81.5; x of 0.9 = 44 + 207 + 1 = 252.
        assert!(s.contains(r#"x="252.0" y="81.5""#), "{s}");
        assert!(s.contains("4 items, mean confidence 0.950, correct 0.750"));
        assert_eq!(reliability("r", "d", &bins[..1]), "");
    }

    #[test]
    fn curves_continue_into_their_projection_inside_its_band() {
        let c = Curve {
            label: "2024-Q1".into(),
            observed: vec![(1.0, 100.0), (2.0, 90.0)],
            projected: vec![(3.0, 81.0, 70.0, 92.0)],
        };
        let s = curves("NRR", "d", &[c, Curve::default()], "quarters", "%");
        assert_eq!(s.matches(r#"class="observed""#).count(), 1);
        assert_eq!(s.matches(r#"class="projected""#).count(), 1);
        // The projection starts at the last observed point (x = 2): M at its x.
        let projected = s.split(r#"class="projected" d=""#).nth(1).unwrap();
        let observed = s.split(r#"class="observed" d=""#).nth(1).unwrap();
        let last_observed = observed
            .split('"')
            .next()
            .unwrap()
            .rsplit(" L")
            .next()
            .unwrap();
        assert!(projected.starts_with(&format!("M{last_observed}")), "{s}");
        assert_eq!(curves("t", "", &[], "", ""), "");
    }

    #[test]
    fn a_sequence_shades_the_band_and_a_split_marks_its_design() {
        let looks: Vec<Look> = (0..3)
            .map(|i| Look {
                label: format!("d{i}"),
                value: Some(0.01),
                low: Some(-0.02 + 0.005 * i as f64),
                high: Some(0.04 - 0.005 * i as f64),
            })
            .collect();
        let s = sequence("cs", "looks", &looks, &[(-0.01, "margin".into())], "");
        assert!(s.contains(r#"class="band" d="M"#) && s.contains(r#"class="threshold""#));
        assert_eq!(s.matches("<circle").count(), 3);
        let split = share(
            "srm",
            "d",
            &[("control".into(), 60.0), ("variant".into(), 40.0)],
            0.5,
        );
        // The design's 50 % mark at 10 + 260 = 270; control's bar 60 % of 520 = 312 wide.
        assert!(split.contains(r#"x1="270.0""#) && split.contains(r#"width="312.0""#));
    }
}
