//! Inline SVG charts for the HTML reports: no scripts, no external assets, readable offline.
//! Every chart is an `<svg role="img">` with an `aria-label`, a `<title>` and a `<desc>` (its
//! text alternative); the page shows its numbers in a table beside it. Charts scale down to
//! the page width (their `viewBox`), so a phone sees the whole chart.

mod grids;
mod plots;

pub use grids::{Heat, Series, columns, grouped, heatmap, sparkline};
pub use plots::{Bin, Curve, ForestRow, Look, curves, forest, reliability, sequence, share};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The opening of a chart: its size, accessible name, text alternative and visible title.
fn open(title: &str, desc: &str, w: f64, h: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{t}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><title>{t}</title><desc>{d}</desc><text x="0" y="14" font-weight="600">{t}</text>"#,
        t = esc(title),
        d = esc(desc),
    )
}

/// A linear map of [lo, hi] onto [a, b], padded so nothing sits on the edge.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl Scale {
    /// Over the finite values given (at least a unit-wide range), with 6 % padding.
    fn over(values: impl IntoIterator<Item = f64>, a: f64, b: f64) -> Scale {
        let (mut lo, mut hi) = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let d = if lo.abs() > 1e-9 { lo.abs() * 0.1 } else { 1.0 };
            (lo, hi) = (lo - d, hi + d);
        }
        let pad = (hi - lo) * 0.06;
        Scale {
            lo: lo - pad,
            hi: hi + pad,
            a,
            b,
        }
    }

    fn at(&self, v: f64) -> f64 {
        self.a + (self.b - self.a) * (v - self.lo) / (self.hi - self.lo)
    }

    /// Horizontal gridlines at this (vertical) scale's ticks from x = `left` to `right`, each
    /// labelled at its left.
    fn grid(&self, left: f64, right: f64, unit: &str) -> String {
        self.ticks()
            .iter()
            .map(|t| {
                format!(
                    r##"<line x1="{left}" x2="{right}" y1="{p:.1}" y2="{p:.1}" stroke="#eee"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{l}</text>"##,
                    p = self.at(*t),
                    tx = left - 4.0,
                    ty = self.at(*t) + 4.0,
                    l = esc(&format_value(*t, unit)),
                )
            })
            .collect()
    }

    /// Three round-ish tick values inside the range.
    fn ticks(&self) -> [f64; 3] {
        let pad = (self.hi - self.lo) * 0.06 / 1.12;
        let (lo, hi) = (self.lo + pad, self.hi - pad);
        [lo, (lo + hi) / 2.0, hi]
    }
}

/// A horizontal bar chart: one labelled bar per item, values printed at the bar's end.
pub fn bars(title: &str, items: &[(String, f64)], unit: &str) -> String {
    if items.is_empty() {
        return String::new();
    }
    let (label_w, bar_w, row_h, top) = (330.0, 360.0, 18.0, 22.0);
    let max = items
        .iter()
        .map(|i| i.1)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = top + row_h * items.len() as f64 + 6.0;
    let desc = items
        .iter()
        .map(|(l, v)| format!("{l}: {}", format_value(*v, unit)))
        .collect::<Vec<_>>()
        .join("; ");
    let mut s = open(title, &desc, label_w + bar_w + 90.0, height);
    for (i, (label, v)) in items.iter().enumerate() {
        let y = top + row_h * i as f64;
        let label = if label.chars().count() > 52 {
            format!(
                "…{}",
                label
                    .chars()
                    .skip(label.chars().count() - 51)
                    .collect::<String>()
            )
        } else {
            label.clone()
        };
        let len = (v / max * bar_w).max(if *v > 0.0 { 1.0 } else { 0.0 });
        s.push_str(&format!(
            r##"<text x="{lx}" y="{ty}" text-anchor="end">{l}</text><rect x="{x}" y="{y}" width="{len:.1}" height="{h}" fill="#2f5fb3" rx="2"/><text x="{vx:.1}" y="{ty}">{v}</text>"##,
            lx = label_w - 6.0,
            ty = y + 12.0,
            l = esc(&label),
            x = label_w,
            h = row_h - 5.0,
            vx = label_w + len + 4.0,
            v = esc(&format_value(*v, unit)),
        ));
    }
    s.push_str("</svg>");
    s
}

/// One period of a trend: its label, the value (None = a data gap), whether it is stale (a
/// blocked metric's last good value), and the plan and board targets.
#[derive(Debug, Clone)]
pub struct Point {
    pub label: String,
    pub value: Option<f64>,
    pub stale: bool,
    pub plan: Option<f64>,
    pub board: Option<f64>,
}

/// A line chart of a metric over periods: the actuals (stale points hollow and orange, gaps
/// marked ×), the operating plan dashed and the board plan dotted, each labelled in a legend.
pub fn trend(title: &str, points: &[Point], unit: &str) -> String {
    if points.is_empty() {
        return String::new();
    }
    let (w, h, left, right, top, bottom) = (560.0, 190.0, 64.0, 28.0, 26.0, 38.0);
    let values: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.value, p.plan, p.board])
        .flatten()
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let n = points.len();
    let x = |i: usize| spread(i, n, left, w - left - right);
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let fig = |v: Option<f64>| v.map_or("gap".to_string(), |v| format_value(v, unit));
    let desc = points
        .iter()
        .map(|p| {
            format!(
                "{}: {}{}{}",
                p.label,
                fig(p.value),
                if p.stale { " (stale)" } else { "" },
                p.plan
                    .map_or(String::new(), |v| format!(", plan {}", fig(Some(v))))
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut s = open(title, &desc, w, h);
    for v in [lo + pad, (lo + hi) / 2.0, hi - pad] {
        s.push_str(&format!(
            r##"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11">{l}</text>"##,
            x2 = w - right,
            y = y(v),
            tx = left - 4.0,
            ty = y(v) + 4.0,
            l = esc(&format_value(v, unit)),
        ));
    }
    let path = |get: &dyn Fn(&Point) -> Option<f64>| -> String {
        let mut d = String::new();
        let mut pen = false;
        for (i, p) in points.iter().enumerate() {
            match get(p).filter(|v| v.is_finite()) {
                Some(v) => {
                    d.push_str(&format!(
                        "{}{:.1},{:.1} ",
                        if pen { "L" } else { "M" },
                        x(i),
                        y(v)
                    ));
                    pen = true;
                }
                None => pen = false,
            }
        }
        d
    };
    for (get, style, class) in [
        (
            &(|p: &Point| p.board) as &dyn Fn(&Point) -> Option<f64>,
            r##"stroke="#8a8a8a" stroke-dasharray="2 3""##,
            "board",
        ),
        (
            &|p: &Point| p.plan,
            r##"stroke="#2e8b57" stroke-dasharray="6 4""##,
            "plan",
        ),
        (
            &|p: &Point| p.value,
            r##"stroke="#2f5fb3" stroke-width="2""##,
            "actual",
        ),
    ] {
        let d = path(get);
        if !d.is_empty() {
            s.push_str(&format!(
                r#"<path class="{class}" d="{}" fill="none" {style}/>"#,
                d.trim()
            ));
        }
    }
    for (i, p) in points.iter().enumerate() {
        match p.value.filter(|v| v.is_finite()) {
            Some(v) if p.stale => s.push_str(&format!(
                r##"<circle class="stale" cx="{:.1}" cy="{:.1}" r="4" fill="#fff" stroke="#d9822b" stroke-width="2"><title>{} stale: last good value {}</title></circle>"##,
                x(i), y(v), esc(&p.label), esc(&format_value(v, unit))
            )),
            Some(v) => s.push_str(&format!(
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#2f5fb3"><title>{} {}</title></circle>"##,
                x(i), y(v), esc(&p.label), esc(&format_value(v, unit))
            )),
            None => s.push_str(&format!(
                r##"<text class="gap" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#b33">×<title>{} data gap</title></text>"##,
                x(i), h - bottom - 2.0, esc(&p.label)
            )),
        }
        if i == 0 || i + 1 == n || n <= 8 || i % (n / 6).max(1) == 0 {
            s.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
                x(i),
                h - bottom + 14.0,
                esc(&p.label)
            ));
        }
    }
    s.push_str(&format!(
        r##"<g font-size="11"><line x1="{l}" x2="{l2}" y1="{ly}" y2="{ly}" stroke="#2f5fb3" stroke-width="2"/><text x="{t1}" y="{ty}">actual</text><line x1="{p}" x2="{p2}" y1="{ly}" y2="{ly}" stroke="#2e8b57" stroke-dasharray="6 4"/><text x="{t2}" y="{ty}">plan</text><line x1="{b}" x2="{b2}" y1="{ly}" y2="{ly}" stroke="#8a8a8a" stroke-dasharray="2 3"/><text x="{t3}" y="{ty}">board plan</text><circle cx="{sx}" cy="{ly}" r="4" fill="#fff" stroke="#d9822b" stroke-width="2"/><text x="{t4}" y="{ty}">stale</text></g>"##,
        l = left, l2 = left + 18.0, ly = h - 8.0, ty = h - 4.0, t1 = left + 22.0,
        p = left + 80.0, p2 = left + 98.0, t2 = left + 102.0,
        b = left + 150.0, b2 = left + 168.0, t3 = left + 172.0,
        sx = left + 258.0, t4 = left + 266.0,
    ));
    s.push_str("</svg>");
    s
}

fn format_value(v: f64, unit: &str) -> String {
    let n = if v.abs() >= 100.0 {
        super::amount(v.round())
    } else {
        super::amount((v * 100.0).round() / 100.0)
    };
    if unit.is_empty() {
        n
    } else {
        format!("{n} {unit}")
    }
}

/// Where point `i` of `n` sits when they are spread evenly over `width` from `from`: the first at
/// `from`, the last at `from + width`, a lone one in the middle.
fn spread(i: usize, n: usize, from: f64, width: f64) -> f64 {
    from + width
        * if n <= 1 {
            0.5
        } else {
            i as f64 / (n - 1) as f64
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_escape_labels_and_scale() {
        let s = bars(
            "Rows <quarantined>",
            &[("a&b".into(), 10.0), ("c".into(), 5.0)],
            "rows",
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("a&amp;b") && s.contains("Rows &lt;quarantined&gt;"));
        assert!(s.contains(r#"width="360.0""#) && s.contains(r#"width="180.0""#));
        assert!(s.contains("10 rows"));
        assert!(bars("t", &[("x".into(), 1_234_567.4)], "$").contains("1,234,567 $"));
        assert_eq!(bars("x", &[], ""), "");
    }

    #[test]
    fn trends_draw_plan_lines_and_mark_stale_points_and_gaps() {
        let p = |l: &str, v: Option<f64>, stale: bool| Point {
            label: l.into(),
            value: v,
            stale,
            plan: Some(100.0),
            board: Some(110.0),
        };
        let s = trend(
            "NRR <ALL>",
            &[
                p("2025-01", Some(98.0), false),
                p("2025-02", None, false),
                p("2025-03", Some(101.0), true),
            ],
            "%",
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>") && s.contains("NRR &lt;ALL&gt;"));
        assert!(s.contains(r#"class="plan""#) && s.contains(r#"class="board""#));
        assert_eq!(s.matches(r#"class="stale""#).count(), 1);
        assert_eq!(s.matches(r#"class="gap""#).count(), 1);
        // The gap breaks the actual line into two pieces.
        let actual = s.split(r#"class="actual" d=""#).nth(1).unwrap();
        assert_eq!(actual.split('"').next().unwrap().matches('M').count(), 2);
        assert_eq!(trend("t", &[], ""), "");
    }
}
