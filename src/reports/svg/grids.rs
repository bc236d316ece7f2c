//! Charts of many figures at once: a heatmap, stacked columns with an optional line, grouped
//! bars, and the sparkline of a headline figure.

use super::{Scale, esc, format_value, open};

/// A grid of figures: rows × columns, None for an empty cell, coloured around `centre`
/// (red below, green above).
#[derive(Debug, Clone)]
pub struct Heat {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Option<f64>>>,
    pub centre: f64,
}

/// The colour of `v` on a red–white–green scale: `t` in [−1, 1], −1 fully red.
fn diverging(t: f64) -> String {
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        (179.0, 38.0, 30.0)
    } else {
        (31.0, 122.0, 77.0)
    };
    let k = t.abs() * 0.85;
    let mix = |c: f64| (255.0 + (c - 255.0) * k).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r), mix(g), mix(b))
}

/// A heatmap with every cell's figure printed in it.
pub fn heatmap(title: &str, desc: &str, heat: &Heat, unit: &str) -> String {
    if heat.rows.is_empty() || heat.columns.is_empty() {
        return String::new();
    }
    let (label_w, cell_w, cell_h, top) = (90.0, 58.0, 24.0, 42.0);
    let w = label_w + cell_w * heat.columns.len() as f64 + 10.0;
    let h = top + cell_h * heat.rows.len() as f64 + 8.0;
    let spread = heat
        .values
        .iter()
        .flatten()
        .flatten()
        .map(|v| (v - heat.centre).abs())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut s = open(title, desc, w, h);
    for (j, c) in heat.columns.iter().enumerate() {
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            label_w + cell_w * (j as f64 + 0.5),
            top - 6.0,
            esc(c)
        ));
    }
    for (i, row) in heat.rows.iter().enumerate() {
        let y = top + cell_h * i as f64;
        s.push_str(&format!(
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + 16.0,
            esc(row)
        ));
        for (j, v) in heat.values[i].iter().enumerate() {
            let Some(v) = v else { continue };
            let x = label_w + cell_w * j as f64;
            s.push_str(&format!(
                r##"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{cw}" height="{ch}" fill="{}" stroke="#fff"><title>{} × {}: {}</title></rect><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{:.1}</text>"##,
                diverging((v - heat.centre) / spread),
                esc(row),
                esc(&heat.columns[j]),
                esc(&format_value(*v, unit)),
                v,
                cw = cell_w - 1.0,
                ch = cell_h - 1.0,
                tx = x + cell_w / 2.0,
                ty = y + 16.0,
            ));
        }
    }
    s.push_str("</svg>");
    s
}

/// A series of stacked columns (or of the line drawn over them).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub colour: String,
    /// Drawn pale and hatched-looking: what is scheduled rather than done.
    pub faded: bool,
}

/// Stacked columns per label (positive values up, negative down from zero), an optional line
/// over them, and a legend of the series when `legend` (many series: a note in `desc`).
pub fn columns(
    title: &str,
    desc: &str,
    labels: &[String],
    series: &[Series],
    line: Option<&Series>,
    legend: bool,
    unit: &str,
) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let (w, left, right, top) = (900.0, 78.0, 12.0, 26.0);
    let plot_h = 230.0;
    // The legend flows in lines across the width: (x, line) per entry.
    let mut places = Vec::new();
    let (mut lx, mut lines) = (left, 1usize);
    for ser in series.iter().chain(line) {
        let entry = 28.0 + 6.5 * ser.name.chars().count() as f64;
        if lx + entry > w && lx > left {
            (lx, lines) = (left, lines + 1);
        }
        places.push((lx, lines - 1));
        lx += entry;
    }
    let legend_h = if legend { 18.0 * lines as f64 } else { 0.0 };
    let h = top + plot_h + 34.0 + legend_h;
    let n = labels.len();
    let (mut ups, mut downs) = (vec![0.0; n], vec![0.0; n]);
    for s in series {
        for (i, v) in s.values.iter().enumerate().take(n) {
            if *v >= 0.0 {
                ups[i] += v;
            } else {
                downs[i] += v;
            }
        }
    }
    let y = Scale::over(
        ups.iter()
            .chain(&downs)
            .copied()
            .chain(line.into_iter().flat_map(|l| l.values.iter().copied()))
            .chain([0.0]),
        top + plot_h,
        top,
    );
    let slot = (w - left - right) / n as f64;
    let bar = (slot * 0.72).max(1.0);
    let mut s = open(title, desc, w, h);
    s.push_str(&y.grid(left, w - right, unit));
    let (mut up, mut down) = (vec![0.0; n], vec![0.0; n]);
    for ser in series {
        for (i, v) in ser.values.iter().enumerate().take(n) {
            if *v == 0.0 {
                continue;
            }
            let base = if *v > 0.0 { &mut up[i] } else { &mut down[i] };
            let (a, b) = (y.at(*base), y.at(*base + v));
            *base += v;
            s.push_str(&format!(
                r#"<rect class="column" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="{}"{}><title>{} · {}: {}</title></rect>"#,
                left + slot * i as f64 + (slot - bar) / 2.0,
                a.min(b),
                (a - b).abs().max(0.5),
                ser.colour,
                if ser.faded { r#" fill-opacity="0.35""# } else { "" },
                esc(&labels[i]),
                esc(&ser.name),
                esc(&format_value(*v, unit)),
            ));
        }
    }
    s.push_str(&format!(
        r##"<line x1="{left}" x2="{x2}" y1="{p:.1}" y2="{p:.1}" stroke="#555"/>"##,
        x2 = w - right,
        p = y.at(0.0)
    ));
    if let Some(l) = line {
        let d: String = l
            .values
            .iter()
            .enumerate()
            .take(n)
            .map(|(i, v)| {
                format!(
                    "{}{:.1},{:.1} ",
                    if i == 0 { "M" } else { "L" },
                    left + slot * (i as f64 + 0.5),
                    y.at(*v)
                )
            })
            .collect();
        s.push_str(&format!(
            r#"<path class="line" d="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            d.trim(),
            l.colour
        ));
    }
    // About twelve labels; the last one too when it is not crowded by the one before.
    let every = n.div_ceil(12).max(1);
    for (i, label) in labels.iter().enumerate() {
        let last = i + 1 == n && i % every != 0 && i % every >= every.div_ceil(2);
        if i % every == 0 || last {
            s.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="{}">{}</text>"#,
                left + slot * (i as f64 + 0.5),
                top + plot_h + 16.0,
                if last { "end" } else { "middle" },
                esc(label)
            ));
        }
    }
    if legend {
        for (ser, (lx, row)) in series.iter().chain(line).zip(places) {
            let ly = top + plot_h + 38.0 + 18.0 * row as f64;
            s.push_str(&format!(
                r#"<rect x="{lx}" y="{}" width="12" height="10" fill="{}"{}/><text x="{}" y="{ly}">{}</text>"#,
                ly - 9.0,
                ser.colour,
                if ser.faded { r#" fill-opacity="0.35""# } else { "" },
                lx + 16.0,
                esc(&ser.name)
            ));
        }
    }
    s.push_str("</svg>");
    s
}

/// Grouped horizontal bars on a 0–`max` axis: per label one bar per series, its figure to
/// `decimals` places; None is printed as undefined, never drawn as zero.
pub fn grouped(
    title: &str,
    desc: &str,
    labels: &[String],
    series: &[(&str, Vec<Option<f64>>)],
    max: f64,
    decimals: usize,
) -> String {
    let max = max.max(f64::MIN_POSITIVE);
    if labels.is_empty() || series.is_empty() {
        return String::new();
    }
    let colours = ["#2f5fb3", "#d9822b", "#2e8b57"];
    let (label_w, bar_w, bar_h, top) = (170.0, 330.0, 11.0, 26.0);
    let group_h = bar_h * series.len() as f64 + 8.0;
    let h = top + group_h * labels.len() as f64 + 22.0;
    let mut s = open(title, desc, label_w + bar_w + 70.0, h);
    for (i, label) in labels.iter().enumerate() {
        let y0 = top + group_h * i as f64;
        s.push_str(&format!(
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y0 + bar_h * series.len() as f64 / 2.0 + 4.0,
            esc(label)
        ));
        for (k, (name, values)) in series.iter().enumerate() {
            let y = y0 + bar_h * k as f64;
            match values.get(i).copied().flatten() {
                Some(v) => s.push_str(&format!(
                    r#"<rect class="bar" x="{label_w}" y="{y:.1}" width="{:.1}" height="{}" fill="{}"><title>{} {}: {:.*}</title></rect><text x="{:.1}" y="{:.1}" font-size="10">{:.*}</text>"#,
                    (v / max * bar_w).clamp(0.0, bar_w),
                    bar_h - 1.0,
                    colours[k % colours.len()],
                    esc(label),
                    esc(name),
                    decimals,
                    v,
                    label_w + (v / max * bar_w).clamp(0.0, bar_w) + 3.0,
                    y + bar_h - 2.0,
                    decimals,
                    v
                )),
                None => s.push_str(&format!(
                    r##"<text x="{}" y="{:.1}" font-size="10" fill="#b3261e">{} undefined</text>"##,
                    label_w + 3.0,
                    y + bar_h - 2.0,
                    esc(name)
                )),
            }
        }
    }
    let ly = h - 6.0;
    for (k, (name, _)) in series.iter().enumerate() {
        let lx = label_w + 110.0 * k as f64;
        s.push_str(&format!(
            r#"<rect x="{lx}" y="{}" width="12" height="10" fill="{}"/><text x="{}" y="{ly}">{}</text>"#,
            ly - 9.0,
            colours[k % colours.len()],
            lx + 16.0,
            esc(name)
        ));
    }
    s.push_str("</svg>");
    s
}

/// A small line of recent values (gaps break it), the plan as a dashed line, the last value
/// dotted. Its title names the figure; its description lists the values.
pub fn sparkline(title: &str, values: &[Option<f64>], plan: Option<f64>, unit: &str) -> String {
    if values.iter().all(|v| v.is_none_or(|v| !v.is_finite())) {
        return String::new();
    }
    let (w, h) = (150.0, 40.0);
    let desc = values
        .iter()
        .map(|v| v.map_or("gap".to_string(), |v| format_value(v, unit)))
        .collect::<Vec<_>>()
        .join(", ");
    let y = Scale::over(values.iter().flatten().copied().chain(plan), h - 3.0, 3.0);
    let n = values.len();
    let x = |i: usize| super::spread(i, n, 2.0, w - 4.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="spark" role="img" aria-label="{t}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><title>{t}</title><desc>{d}</desc>"#,
        t = esc(title),
        d = esc(&format!("last {n} periods: {desc}")),
    );
    if let Some(p) = plan.filter(|p| p.is_finite()) {
        s.push_str(&format!(
            r##"<line class="plan" x1="0" x2="{w}" y1="{p:.1}" y2="{p:.1}" stroke="#2e8b57" stroke-dasharray="4 3"/>"##,
            p = y.at(p)
        ));
    }
    let mut d = String::new();
    let mut pen = false;
    let mut last = None;
    for (i, v) in values.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if pen { "L" } else { "M" },
                    x(i),
                    y.at(v)
                ));
                pen = true;
                last = Some((x(i), y.at(v)));
            }
            None => pen = false,
        }
    }
    s.push_str(&format!(
        r##"<path class="actual" d="{}" fill="none" stroke="#2f5fb3" stroke-width="1.5"/>"##,
        d.trim()
    ));
    if let Some((cx, cy)) = last {
        s.push_str(&format!(
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="2.5" fill="#2f5fb3"/>"##
        ));
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heatmap_colours_around_its_centre_and_prints_each_cell() {
        let heat = Heat {
            rows: vec!["2024-Q1".into()],
            columns: vec!["0".into(), "1".into(), "2".into()],
            values: vec![vec![Some(100.0), Some(80.0), None]],
            centre: 100.0,
        };
        let s = heatmap("NRR", "cohorts", &heat, "%");
        assert_eq!(s.matches(r#"class="cell""#).count(), 2);
        assert!(
            s.contains(r##"fill="#ffffff""##),
            "the centre is white: {s}"
        );
        // 80 is the furthest from the centre: red (179, 38, 30) at 85 %, each channel
        // 255 + (c − 255) × 0.85: (190.4, 70.6, 63.8).
        assert!(s.contains(r##"fill="#be4740""##), "{s}");
        assert!(s.contains("2024-Q1 × 1: 80 %"));
        assert_eq!(diverging(1.0), "#418e68");
    }

    #[test]
    fn stacked_columns_go_up_and_down_from_zero() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let series = [
            Series {
                name: "billed".into(),
                values: vec![10.0, 0.0],
                colour: "#2e8b57".into(),
                faded: false,
            },
            Series {
                name: "recognised".into(),
                values: vec![-10.0, -5.0],
                colour: "#2f5fb3".into(),
                faded: true,
            },
        ];
        let s = columns("roll", "d", &labels, &series, None, true, "$");
        // Three non-zero values, three rectangles; the legend names both series.
        assert_eq!(s.matches(r#"class="column""#).count(), 3);
        assert!(s.contains(">billed<") && s.contains(">recognised<"));
        // Range [−10, 10] padded to ±11.2 over 230 px: 10 up from zero is 102.7 px tall.
        assert!(s.contains(r##"height="102.7" fill="#2e8b57""##), "{s}");
    }

    #[test]
    fn grouped_bars_and_sparklines_show_gaps_as_gaps() {
        let s = grouped(
            "per class",
            "d",
            &["a".into(), "b".into()],
            &[
                ("precision", vec![Some(0.5), None]),
                ("recall", vec![Some(1.0), Some(0.25)]),
            ],
            1.0,
            3,
        );
        assert_eq!(s.matches(r#"class="bar""#).count(), 3);
        assert!(s.contains(">0.250<"));
        assert!(s.contains("precision undefined") && s.contains(r#"width="165.0""#));
        let sp = sparkline("NRR", &[Some(1.0), None, Some(3.0)], Some(2.0), "%");
        assert!(sp.contains("last 3 periods: 1 %, gap, 3 %"));
        assert_eq!(sp.matches('M').count(), 2, "{sp}");
        assert!(sp.contains(r#"class="plan""#));
        assert_eq!(sparkline("x", &[None], None, ""), "");
    }
}
