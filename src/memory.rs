//! Peak memory of this process, for the plan summary and `allot bench`.

/// Peak resident memory of this process in KiB (`VmHWM`), which also counts
/// HiGHS's C++ allocations.
pub fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the kernel's peak-RSS counter (Linux: `5` to `/proc/self/clear_refs`),
/// so the next [`peak_kib`] covers one phase only.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
