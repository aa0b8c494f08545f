//! The allocator the binaries use, and the memory they hold.
//!
//! A scan allocates and frees many buffers of hundreds of megabytes (polars
//! columns, joins, sorts) from two threads or more. polars recommends a
//! dedicated allocator over the system one for this; posaudit uses
//! mimalloc (`#[global_allocator]` in each binary).

pub use mimalloc::MiMalloc;

/// How long mimalloc holds memory a scan has freed before handing it back
/// to the system, in milliseconds. Its own default (1 s, and 10 s for its
/// arenas) keeps the buffers of a step (a rule's filtered copy, a sort, a
/// join) resident while the next steps allocate theirs, so the process's
/// peak is more than what it ever holds at once. At 100 ms the 10M-row
/// month's peak fell from 5,121 to 4,719 MiB with no change in wall time
/// beyond noise (three interleaved pairs); at 10 ms to 4,715 MiB, but 7%
/// slower (freed pages come back zeroed by the kernel at their next use).
pub const PURGE_DELAY_MS: i64 = 100;

/// Set the allocator's options (`PURGE_DELAY_MS`), unless the environment
/// sets them (`MIMALLOC_PURGE_DELAY`, which mimalloc reads itself). Call
/// first thing in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads options at each
        // use, from any thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _) };
    }
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (between
/// `mi_option_eager_commit_delay`, 14, and `mi_option_use_numa_nodes`, 16,
/// which the bindings name; this one they do not).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The process's resident memory (`VmRSS:`) or its peak so far
/// (`VmHWM:`) in MiB, where the system says it (Linux: /proc/self/status),
/// for `--verbose`'s phase and step lines.
pub fn rss_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_configured_is_mimallocs_purge_delay() {
        // mimalloc 3's purge delay is 1000 ms by default, and no option
        // next to it has that default: the option at this place is it.
        // (Unless the environment set it; then `configure` leaves it.)
        // A C `long`: 64 bits here, 32 on Windows.
        #[allow(clippy::useless_conversion)]
        let get = || i64::from(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) });
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(set) => {
                configure();
                assert_eq!(get().to_string(), set.trim());
            }
            Err(_) => {
                assert_eq!(get(), 1000);
                configure();
                assert_eq!(get(), PURGE_DELAY_MS);
            }
        }
    }
}
