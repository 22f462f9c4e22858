//! The comparison as one self-contained HTML file: tables and charts drawn as
//! inline SVG, so the report opens offline, in any browser, with no script.
//! Each chart is an `<svg>` with a stable id (`chart-kpis`, `chart-stock`,
//! `chart-bids-<run>`, `chart-reservations`) that tests look for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::whatif::compare::{Comparison, RunOutputs};
use crate::error::StoreError;
use crate::html::{esc, grouped_bars, page, PALETTE};

/// Horizontal bars of relative deltas around zero: one row per KPI and variant.
fn delta_bars(id: &str, comparison: &Comparison) -> String {
    let kpis: Vec<_> = comparison.lines.iter().filter(|l| l.section == "kpi").collect();
    let rows = kpis.len() * comparison.variants.len();
    let (w, row_h, label_w) = (760.0, 18.0, 260.0);
    let h = 40.0 + row_h * rows as f64 + 30.0;
    let max = kpis.iter().flat_map(|l| (0..l.variants.len()).filter_map(|i| l.relative(i))).fold(0.0f64, |m, r| m.max(r.abs())).max(0.01);
    let zero = label_w + (w - label_w - 20.0) / 2.0;
    let half = (w - label_w - 20.0) / 2.0;
    let mut svg = format!(r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="KPI changes">"#);
    let _ = write!(svg, r#"<text x="10" y="18" class="title">KPI change vs {} (relative)</text>"#, esc(&comparison.base));
    let _ = write!(svg, r##"<line x1="{zero}" y1="26" x2="{zero}" y2="{}" stroke="#888"/>"##, h - 24.0);
    let mut y = 34.0;
    for l in &kpis {
        for (i, v) in comparison.variants.iter().enumerate() {
            let r = l.relative(i).unwrap_or(0.0);
            let len = half * r.abs() / max;
            let x = if r >= 0.0 { zero } else { zero - len };
            let _ = write!(
                svg,
                r#"<text x="{}" y="{:.1}" class="axis" text-anchor="end">{} · {}</text><rect x="{x:.1}" y="{y:.1}" width="{len:.1}" height="{:.1}" fill="{}"><title>{:+.2}%</title></rect><text x="{:.1}" y="{:.1}" class="axis">{:+.1}%</text>"#,
                label_w - 6.0,
                y + 12.0,
                esc(&l.item),
                esc(v),
                row_h - 4.0,
                PALETTE[(i + 1) % PALETTE.len()],
                100.0 * r,
                if r >= 0.0 { zero + len + 4.0 } else { zero + 4.0 },
                y + 12.0,
                100.0 * r
            );
            y += row_h;
        }
    }
    let _ = write!(svg, r#"<text x="{zero}" y="{}" class="axis" text-anchor="middle">0 (±{:.0}% at the edges)</text>"#, h - 8.0, 100.0 * max);
    svg.push_str("</svg>");
    svg
}

/// Bid-price heatmap of one run: zones × the most constrained SKUs of all runs.
fn heatmap(id: &str, run: &RunOutputs, zones: &[String], skus: &[String], max: f64) -> String {
    let (cell_w, cell_h, left, top) = (64.0, 22.0, 70.0, 40.0);
    let (w, h) = (left + cell_w * skus.len() as f64 + 10.0, top + cell_h * zones.len() as f64 + 10.0);
    let mut svg = format!(r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="bid prices of {}">"#, esc(&run.name));
    let _ = write!(svg, r#"<text x="10" y="16" class="title">Bid prices: {}</text>"#, esc(&run.name));
    for (j, sku) in skus.iter().enumerate() {
        let _ = write!(svg, r#"<text x="{:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"#, left + cell_w * (j as f64 + 0.5), top - 6.0, esc(sku));
    }
    for (i, zone) in zones.iter().enumerate() {
        let y = top + cell_h * i as f64;
        let _ = write!(svg, r#"<text x="{}" y="{:.1}" class="axis" text-anchor="end">{}</text>"#, left - 6.0, y + 15.0, esc(zone));
        for (j, sku) in skus.iter().enumerate() {
            let v = run.bid_prices.get(&(zone.clone(), sku.clone())).copied().unwrap_or(0.0);
            let t = (v / max).clamp(0.0, 1.0);
            let (r, g, b) = (255.0 - 30.0 * t, 255.0 - 180.0 * t, 255.0 - 200.0 * t);
            let _ = write!(
                svg,
                r##"<rect x="{:.1}" y="{y:.1}" width="{cell_w}" height="{cell_h}" fill="rgb({r:.0},{g:.0},{b:.0})" stroke="#fff"><title>{} {}: {v:.2}</title></rect><text x="{:.1}" y="{:.1}" class="cell" text-anchor="middle">{v:.1}</text>"##,
                left + cell_w * j as f64,
                esc(zone),
                esc(sku),
                left + cell_w * (j as f64 + 0.5),
                y + 15.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The report page.
pub fn html(comparison: &Comparison, base: &RunOutputs, variants: &[RunOutputs]) -> String {
    let runs: Vec<&RunOutputs> = std::iter::once(base).chain(variants).collect();
    let mut body = String::new();
    let _ = write!(body, "<h1>What-if comparison: {} vs {}</h1>", esc(&comparison.base), esc(&comparison.variants.join(", ")));

    // KPI table.
    body.push_str("<h2>Key figures</h2><table><tr><th>KPI</th>");
    let _ = write!(body, "<th>{}</th>", esc(&comparison.base));
    for v in &comparison.variants {
        let _ = write!(body, "<th>{}</th><th>Δ</th>", esc(v));
    }
    body.push_str("</tr>");
    for l in comparison.lines.iter().filter(|l| l.section == "kpi") {
        let _ = write!(body, "<tr><td>{}</td><td>{:.2}</td>", esc(&l.item), l.base);
        for i in 0..l.variants.len() {
            let rel = l.relative(i).map_or("n/a".to_string(), |r| format!("{:+.1}%", 100.0 * r));
            let _ = write!(body, "<td>{:.2}</td><td>{:+.2} ({rel})</td>", l.variants[i], l.delta(i));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    body.push_str(&delta_bars("chart-kpis", comparison));

    let series_of = |section: &str| -> (Vec<String>, Vec<(String, Vec<f64>)>) {
        let lines: Vec<_> = comparison.lines.iter().filter(|l| l.section == section).collect();
        let cats = lines.iter().map(|l| l.item.clone()).collect();
        let mut series = vec![(comparison.base.clone(), lines.iter().map(|l| l.base).collect())];
        for (i, v) in comparison.variants.iter().enumerate() {
            series.push((v.clone(), lines.iter().map(|l| l.variants[i]).collect()));
        }
        (cats, series)
    };
    body.push_str("<h2>Stock utilisation by warehouse</h2><p>Units reserved for offer demand over units available.</p>");
    let (cats, series) = series_of("stock_utilisation");
    body.push_str(&grouped_bars("chart-stock", "Stock utilisation by warehouse", &cats, &series, true));
    body.push_str("<h2>Reservations by tier</h2>");
    let (cats, series) = series_of("reserved_by_tier");
    body.push_str(&grouped_bars("chart-reservations", "Units reserved by tier", &cats, &series, false));
    body.push_str("<h2>Pick load by warehouse</h2>");
    let (cats, series) = series_of("pick_load");
    body.push_str(&grouped_bars("chart-pick-load", "Units to pick by warehouse", &cats, &series, false));

    // Model version 2: volume rules and channels, when the runs have them.
    let rule_lines: Vec<_> = comparison.lines.iter().filter(|l| l.section == "rule_measure").collect();
    if !rule_lines.is_empty() {
        body.push_str("<h2>Volume rules</h2><p>Each rule's measure, and its shadow price: what one more unit of its bound is worth.</p><table><tr><th>rule</th>");
        for name in std::iter::once(&comparison.base).chain(&comparison.variants) {
            let _ = write!(body, "<th>{} measure</th><th>{} price</th>", esc(name), esc(name));
        }
        body.push_str("</tr>");
        let price_of = |rule: &str| comparison.lines.iter().find(|l| l.section == "rule_shadow_price" && l.item == rule);
        for l in rule_lines {
            let _ = write!(body, "<tr><td>{}</td>", esc(&l.item));
            let prices = price_of(&l.item);
            for (k, measured) in std::iter::once(l.base).chain(l.variants.iter().copied()).enumerate() {
                let price = prices.map_or(0.0, |p| if k == 0 { p.base } else { p.variants[k - 1] });
                let _ = write!(body, "<td>{measured:.2}</td><td>{price:.3}</td>");
            }
            body.push_str("</tr>");
        }
        body.push_str("</table>");
    }
    if comparison.lines.iter().any(|l| l.section == "channel_contacts" && l.item != allot_optimizer::DEFAULT_CHANNEL) {
        body.push_str("<h2>Contacts by channel</h2>");
        let (cats, series) = series_of("channel_contacts");
        body.push_str(&grouped_bars("chart-channels", "Contacts by channel", &cats, &series, false));
    }

    // Bid-price heatmaps over the most constrained SKUs.
    let mut peak: BTreeMap<&String, f64> = BTreeMap::new();
    let mut zones: BTreeSet<String> = BTreeSet::new();
    for r in &runs {
        for ((z, s), &p) in &r.bid_prices {
            zones.insert(z.clone());
            let e = peak.entry(s).or_insert(0.0);
            *e = e.max(p);
        }
    }
    let mut skus: Vec<(&String, f64)> = peak.into_iter().collect();
    skus.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let max = skus.first().map_or(1.0, |s| s.1).max(1e-9);
    let skus: Vec<String> = skus.into_iter().take(10).map(|(s, _)| s.clone()).collect();
    let zones: Vec<String> = zones.into_iter().collect();
    body.push_str("<h2>Bid prices</h2><p>Marginal value of one more unit delivered, zones × the 10 most constrained SKUs.</p><div class=\"row\">");
    for (k, r) in runs.iter().enumerate() {
        body.push_str(&heatmap(&format!("chart-bids-{k}"), r, &zones, &skus, max));
    }
    body.push_str("</div>");

    // What changed.
    body.push_str("<h2>What changed</h2><table><tr><th>variant</th><th>customers whose offers changed</th><th>binding appeared</th><th>binding vanished</th><th>SKUs moved most (reserved units)</th><th>zones moved most (offers served)</th></tr>");
    let fmt = |m: &[(String, f64)]| m.iter().map(|(k, d)| format!("{} {d:+.1}", esc(k))).collect::<Vec<_>>().join(", ");
    for (i, v) in comparison.variants.iter().enumerate() {
        let e = &comparison.eligibility[i];
        let (a, g) = &comparison.binding[i];
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{} ({} gained, {} lost)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(v),
            e.customers_changed,
            e.gained,
            e.lost,
            esc(&a.join(", ")),
            esc(&g.join(", ")),
            fmt(&comparison.movers[i].0),
            fmt(&comparison.movers[i].1)
        );
    }
    body.push_str("</table>");
    for (i, v) in comparison.variants.iter().enumerate() {
        let samples: Vec<String> = comparison.eligibility[i]
            .samples
            .iter()
            .map(|(c, g, l)| format!("{}: +[{}] −[{}]", esc(c), esc(&g.join(", ")), esc(&l.join(", "))))
            .collect();
        if !samples.is_empty() {
            let _ = write!(body, "<p><b>{}</b> examples: {}</p>", esc(v), samples.join("; "));
        }
    }

    // Shadow prices for planners.
    body.push_str("<h2>What one more unit is worth</h2><p>From the plan's duals: the objective gained per unit of extra capacity. The first line of each run is the capacity increase that would pay off most.</p><div class=\"row\">");
    for r in &runs {
        let _ = write!(body, "<table><tr><th colspan=\"3\">{}</th></tr><tr><th>constraint</th><th>value per unit</th><th>capacity</th></tr>", esc(&r.name));
        for m in r.marginal_values.iter().take(8) {
            let cap = m.capacity.map_or("unlimited".to_string(), |c| format!("{c:.1}"));
            let _ = write!(body, "<tr><td>{} {}</td><td>{:.2}</td><td>{cap}</td></tr>", esc(&m.constraint), esc(&m.key), m.value_per_unit);
        }
        if r.marginal_values.is_empty() {
            body.push_str("<tr><td colspan=\"3\">no binding capacity</td></tr>");
        }
        body.push_str("</table>");
    }
    body.push_str("</div>");

    page(&format!("allot what-if: {}", comparison.base), &body)
}

/// Writes `comparison.csv` and `report.html` into `dir`.
pub fn write_report(dir: &Path, comparison: &Comparison, base: &RunOutputs, variants: &[RunOutputs]) -> Result<Vec<PathBuf>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
    let csv = dir.join("comparison.csv");
    crate::files::write_atomic(&csv, |f| std::io::Write::write_all(f, comparison.csv().as_bytes()).map_err(|e| StoreError::io("cannot write", &csv, e)))?;
    let page_path = dir.join("report.html");
    let page = html(comparison, base, variants);
    crate::files::write_atomic(&page_path, |f| std::io::Write::write_all(f, page.as_bytes()).map_err(|e| StoreError::io("cannot write", &page_path, e)))?;
    Ok(vec![csv, page_path])
}
