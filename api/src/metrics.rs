//! Prometheus metrics, kept in atomics (no global recorder, so every test's
//! router has its own): [`HttpMetrics`] per route, owned by the router, and
//! [`Metrics`], the service's own counters, owned by the state.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

#[derive(Debug, Default)]
struct RouteCounters {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    /// Responses by class: 2xx, 4xx, 5xx.
    by_class: [AtomicU64; 3],
}

/// Latency histograms and status classes per route.
#[derive(Debug)]
pub struct HttpMetrics {
    /// (method, path) of each route, by the index [`HttpMetrics::observe`] takes.
    labels: Vec<(&'static str, &'static str)>,
    routes: Vec<RouteCounters>,
}

impl HttpMetrics {
    /// Counters for these routes, (method, path) each.
    pub fn new(labels: Vec<(&'static str, &'static str)>) -> Self {
        let routes = labels.iter().map(|_| RouteCounters::default()).collect();
        HttpMetrics { labels, routes }
    }

    /// Records one answered request to route number `route`.
    pub fn observe(&self, route: usize, status: u16, elapsed: Duration) {
        let Some(m) = self.routes.get(route) else { return };
        let seconds = elapsed.as_secs_f64();
        if let Some(b) = LATENCY_BUCKETS.iter().position(|&le| seconds <= le) {
            m.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        m.count.fetch_add(1, Ordering::Relaxed);
        m.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let class = match status {
            500.. => 2,
            400..=499 => 1,
            _ => 0,
        };
        m.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format of the per-route series.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP allot_http_request_duration_seconds Request latency by route.\n# TYPE allot_http_request_duration_seconds histogram\n");
        for ((method, path), m) in self.labels.iter().zip(&self.routes) {
            let labels = format!("method=\"{method}\",route=\"{path}\"");
            let mut cumulative = 0;
            for (le, b) in LATENCY_BUCKETS.iter().zip(&m.buckets) {
                cumulative += b.load(Ordering::Relaxed);
                let _ = writeln!(out, "allot_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let count = m.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "allot_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "allot_http_request_duration_seconds_sum{{{labels}}} {}", m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
            let _ = writeln!(out, "allot_http_request_duration_seconds_count{{{labels}}} {count}");
        }
        out.push_str("# HELP allot_http_responses_total Responses by route and status class.\n# TYPE allot_http_responses_total counter\n");
        for ((method, path), m) in self.labels.iter().zip(&self.routes) {
            for (class, c) in ["2xx", "4xx", "5xx"].iter().zip(&m.by_class) {
                let _ = writeln!(out, "allot_http_responses_total{{method=\"{method}\",route=\"{path}\",class=\"{class}\"}} {}", c.load(Ordering::Relaxed));
            }
        }
    }
}

/// The audit log's counts `/metrics` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditCounts {
    /// Records given up so far.
    pub dropped: u64,
    /// Records queued, not yet written.
    pub pending: usize,
}

/// The service's own counters: decisions and events.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: AtomicU64,
    fallbacks: AtomicU64,
    events: AtomicU64,
    duplicate_events: AtomicU64,
    drift_replans: AtomicU64,
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Records one decision served.
    pub fn count_decision(&self, fallback: bool) {
        self.decisions.fetch_add(1, Ordering::Relaxed);
        if fallback {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one re-plan started by acceptance drift.
    pub fn count_drift_replan(&self) {
        self.drift_replans.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one event posted.
    pub fn count_event(&self, new: bool) {
        let counter = if new { &self.events } else { &self.duplicate_events };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the text exposition format of the counters, the plan served
    /// (`plan`: version, saved at, index bytes, customers), the audit's
    /// counts, and the process.
    pub fn render(&self, out: &mut String, plan: Option<(String, DateTime<Utc>, usize, usize)>, audit: AuditCounts) {
        let AuditCounts { dropped, pending } = audit;
        let _ = writeln!(
            out,
            "# HELP allot_audit_records_dropped_total Audit records given up (refused by the database, or beyond the retry queue's bound).\n# TYPE allot_audit_records_dropped_total counter\nallot_audit_records_dropped_total {dropped}"
        );
        let _ = writeln!(
            out,
            "# HELP allot_audit_pending_records Audit records queued and not yet written to the database (the writer's lag).\n# TYPE allot_audit_pending_records gauge\nallot_audit_pending_records {pending}"
        );
        let counters = [
            ("allot_decisions_total", "Decisions served.", &self.decisions),
            ("allot_fallback_decisions_total", "Decisions answered by the rule-based fallback.", &self.fallbacks),
            ("allot_events_total", "Live events recorded.", &self.events),
            ("allot_duplicate_events_total", "Live events whose id was seen before.", &self.duplicate_events),
            ("allot_drift_replans_total", "Re-plans started because live acceptance drifted from the plan's uptake.", &self.drift_replans),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", c.load(Ordering::Relaxed));
        }
        if let Some((version, saved, bytes, customers)) = plan {
            let age = Utc::now().signed_duration_since(saved).num_milliseconds() as f64 / 1000.0;
            let version = label_value(&version);
            let _ = writeln!(out, "# HELP allot_plan_age_seconds Age of the plan served.\n# TYPE allot_plan_age_seconds gauge\nallot_plan_age_seconds{{version=\"{version}\"}} {age}");
            let _ = writeln!(out, "# HELP allot_plan_index_bytes Memory of the served plan's index.\n# TYPE allot_plan_index_bytes gauge\nallot_plan_index_bytes {bytes}");
            let _ = writeln!(out, "# HELP allot_plan_customers Customers in the served plan.\n# TYPE allot_plan_customers gauge\nallot_plan_customers {customers}");
        }
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}");
        }
    }
}

/// Appends live acceptance against the served plan's uptake: per offer
/// shown, the drift signal `z` and whether it drifts; per decile of planned
/// `p`, the planned and observed acceptance rates (calibration).
pub fn render_drift(out: &mut String, offers: &[crate::drift::OfferDrift], calibration: impl Iterator<Item = (usize, f64, f64, f64)>, demand: &[crate::drift::DemandCell]) {
    let drifting = demand.iter().filter(|c| c.drifting).count();
    let _ = writeln!(out, "# HELP allot_demand_drift_cells Zone x SKU cells whose live demand drifts from the demand plan.\n# TYPE allot_demand_drift_cells gauge\nallot_demand_drift_cells {drifting}");
    if !demand.is_empty() {
        out.push_str("# HELP allot_demand_tracking_signal Sum of daily demand errors over their mean absolute value, per zone x SKU with orders.\n# TYPE allot_demand_tracking_signal gauge\n");
        for c in demand {
            let _ = writeln!(out, "allot_demand_tracking_signal{{zone=\"{}\",sku=\"{}\"}} {}", label_value(&c.zone), label_value(&c.sku), c.tracking_signal);
        }
    }
    let drifting = offers.iter().filter(|o| o.drifting).count();
    let _ = writeln!(out, "# HELP allot_drift_offers Offers whose live acceptance drifts from the plan's uptake.\n# TYPE allot_drift_offers gauge\nallot_drift_offers {drifting}");
    if !offers.is_empty() {
        out.push_str("# HELP allot_drift_z Live acceptances minus the plan's expectation, in standard deviations, per offer shown.\n# TYPE allot_drift_z gauge\n");
        for o in offers {
            let _ = writeln!(out, "allot_drift_z{{offer=\"{}\"}} {}", label_value(&o.offer_id), o.z);
        }
    }
    let rows: Vec<(usize, f64, f64, f64)> = calibration.collect();
    if !rows.is_empty() {
        out.push_str("# HELP allot_calibration_rate Acceptance per showing by decile of the plan's probability (kind: planned or observed).\n# TYPE allot_calibration_rate gauge\n");
        for (decile, _, planned, observed) in &rows {
            let _ = writeln!(out, "allot_calibration_rate{{decile=\"{decile}\",kind=\"planned\"}} {planned}\nallot_calibration_rate{{decile=\"{decile}\",kind=\"observed\"}} {observed}");
        }
        out.push_str("# HELP allot_calibration_showings Showings by decile of the plan's probability.\n# TYPE allot_calibration_showings gauge\n");
        for (decile, shown, _, _) in &rows {
            let _ = writeln!(out, "allot_calibration_showings{{decile=\"{decile}\"}} {shown}");
        }
    }
}

/// Appends offer-driven orders per plan version and warehouse: orders, and
/// how many were picked (their inventory order arrived), delivered and on time.
pub fn render_fulfilment(out: &mut String, rows: &[crate::outcomes::FulfilmentRow]) {
    if rows.is_empty() {
        return;
    }
    let series: [(&str, &str, fn(&crate::outcomes::FulfilmentRow) -> u64); 4] = [
        ("allot_offer_orders_total", "Offer-driven orders (ordered outcomes).", |r| r.orders),
        ("allot_offer_orders_picked_total", "Offer-driven orders whose inventory order arrived (pick-plan adherence).", |r| r.picked),
        ("allot_offer_orders_delivered_total", "Offer-driven orders delivered (fill).", |r| r.delivered),
        ("allot_offer_orders_on_time_total", "Offer-driven orders delivered on time.", |r| r.on_time),
    ];
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for r in rows {
            let _ = writeln!(out, "{name}{{version=\"{}\",warehouse=\"{}\"}} {}", label_value(&r.plan_version), label_value(&r.warehouse_id), value(r));
        }
    }
}

/// A label value in the text exposition format: backslash, double quote and
/// newline escaped, so no value (a plan id read from a file) can end its label
/// or its line. Route labels are the table's templates, never a request's path.
pub fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Resident memory of this process (Linux), for the plan-memory figure.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
