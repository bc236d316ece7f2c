//! Inline SVG charts for the HTML reports: no scripts, no external assets, readable offline.

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{t}" width="{w}" height="{height}" viewBox="0 0 {w} {height}"><title>{t}</title><text x="0" y="14" font-weight="600">{t}</text>"#,
        t = esc(title),
        w = label_w + bar_w + 90.0
    );
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
}
