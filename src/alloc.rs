//! The allocator the binaries use, and the memory they hold.
//!
//! A scan allocates and frees many buffers of hundreds of megabytes (polars
//! columns, joins, sorts) from two threads or more. polars recommends a
//! dedicated allocator over the system one for this; posaudit uses
//! mimalloc (`#[global_allocator]` in each binary).

pub use mimalloc::MiMalloc;

/// The process's resident memory (`VmRSS:`) or its peak so far
/// (`VmHWM:`) in MiB, where the system says it (Linux: /proc/self/status),
/// for `--verbose`'s phase and step lines.
pub fn rss_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
