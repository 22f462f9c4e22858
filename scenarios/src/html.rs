//! What the HTML reports share (the what-if comparison, an experiment's
//! report): one page shell with its style, escaping, the palette and the
//! bar chart, so every report looks alike and opens offline with no script.

use std::fmt::Write as _;

/// Series colours, in order.
pub const PALETTE: [&str; 8] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Grouped vertical bars: one group per category, one bar per series.
pub fn grouped_bars(id: &str, title: &str, categories: &[String], series: &[(String, Vec<f64>)], percent: bool) -> String {
    let (w, h, left, bottom, top) = (760.0, 300.0, 60.0, 60.0, 30.0);
    let max = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::max).max(1e-9);
    let plot_h = h - bottom - top;
    let group_w = (w - left - 10.0) / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).max(1.0);
    let mut svg = format!(r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{}">"#, esc(title));
    let _ = write!(svg, r#"<text x="{left}" y="18" class="title">{}</text>"#, esc(title));
    let _ = write!(svg, r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#888"/>"##, h - bottom, w - 10.0, h - bottom);
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let y = h - bottom - plot_h * k as f64 / 4.0;
        let label = if percent { format!("{:.0}%", 100.0 * v) } else { format!("{v:.0}") };
        let _ = write!(svg, r##"<text x="{}" y="{}" class="axis" text-anchor="end">{label}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/>"##, left - 4.0, y + 4.0, w - 10.0);
    }
    for (c, cat) in categories.iter().enumerate() {
        let gx = left + group_w * c as f64 + group_w * 0.1;
        for (s, (name, values)) in series.iter().enumerate() {
            let v = values.get(c).copied().unwrap_or(0.0).max(0.0);
            let bh = plot_h * v / max;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {v:.3}</title></rect>"#,
                gx + bar_w * s as f64,
                h - bottom - bh,
                PALETTE[s % PALETTE.len()],
                esc(name),
                esc(cat)
            );
        }
        let _ = write!(svg, r#"<text x="{:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"#, gx + group_w * 0.4, h - bottom + 16.0, esc(cat));
    }
    for (s, (name, _)) in series.iter().enumerate() {
        let x = left + 130.0 * s as f64;
        let _ = write!(svg, r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" class="axis">{}</text>"#, h - 22.0, PALETTE[s % PALETTE.len()], x + 14.0, h - 13.0, esc(name));
    }
    svg.push_str("</svg>");
    svg
}

/// A whole page: `body` under the reports' shared style, titled `title`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}\
         table{{border-collapse:collapse;margin:8px 16px 16px 0;font-size:13px}}td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.chart{{display:block;margin:8px 0 24px}}.row{{display:flex;flex-wrap:wrap;gap:12px}}\
         .title{{font-size:14px;font-weight:600}}.axis{{font-size:11px;fill:#444}}.cell{{font-size:10px;fill:#222}}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}
