//! Fault points for crash tests inside the event write path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Environment variable naming a fault point inside the event write path, for
/// crash tests: `before_commit:N` or `after_commit:N` aborts the process at
/// the N-th event written (1-based) just before, or just after, its commit.
pub const FAULT_ENV: &str = "ALLOT_TEST_LIVE_FAULT";

/// Aborts the process when the crash-test fault point `point` is reached for
/// the N-th time named by [`FAULT_ENV`]; free when the variable is unset.
pub(crate) fn fault(point: &str) {
    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let value = std::env::var(FAULT_ENV).ok()?;
        let (p, n) = value.split_once(':')?;
        Some((p.to_string(), n.parse().ok()?))
    });
    if let Some((p, n)) = plan {
        if p == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("allot serve: {FAULT_ENV}={p}:{n} reached, aborting");
            std::process::abort();
        }
    }
}
