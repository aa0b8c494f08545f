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

/// Whether mimalloc asks the system for transparent huge pages (2 MB) for
/// the memory it maps (its default: yes). A scan in memory reads its
/// columns through random row numbers (a reorder of every column, groups'
/// gathers, hash tables over 10M keys): with 4 KB pages each such read
/// can miss the TLB, and the 3.5 GB a scan holds are faulted in 4 KB at a
/// time. On the 10M-row month (session 49, interleaved pairs, 2 threads)
/// huge pages made every in-memory scan faster: one CSV 33.2/36.8/40.8/
/// 35.4 s → 30.9/33.2/34.0/29.5 s, typed Parquet 29.3/27.2/28.9 →
/// 24.1/26.5/26.0 s, 30 daily CSVs 40.3/33.8/29.5 → 32.6/26.2/28.4 s;
/// minor page faults 4.0M → 0.2M; peak 3.6 → 3.7-3.8 GB. (Measured when
/// the scan peaked at 4.7 GB, commit e0fbf163, they had made the read and
/// the preparation slower and only the rules faster: both have changed
/// since.) A partitioned scan reads without them (`huge_pages`).
/// Set `MIMALLOC_ALLOW_THP=0` to go without them.
pub const ALLOW_THP: bool = true;

/// Set the allocator's options (`PURGE_DELAY_MS`), unless the environment
/// sets them (`MIMALLOC_PURGE_DELAY`, which mimalloc reads itself). Call
/// first thing in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay(PURGE_DELAY_MS);
    }
    huge_pages(ALLOW_THP);
}

/// Huge pages for the memory mapped from now on (`ALLOW_THP`), or not
/// (unless the environment sets `MIMALLOC_ALLOW_THP`: the operator's
/// choice stands). A partitioned scan reads without them and evaluates its
/// passes with them. Its read parses a part, spills it and frees its
/// buffers, part after part, and purges in between split huge pages; its
/// passes read back a partition at a time and reuse memory like a scan in
/// memory. `--partitions 8` on the 10M-row month (session 49, two
/// interleaved pairs each): with huge pages throughout, 42.0/46.0 s
/// against 37.5/42.4 s without (the read slower); without them for the
/// read only, the passes took 21.4/19.7 s against 23.2/25.3 s.
pub fn huge_pages(on: bool) {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it at each map.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, on as _) };
    }
}

/// How long freed memory is held for reuse while `HoldFreed` lives (ms).
/// A rule allocates and frees buffers of the rows' size one after another
/// (its filtered copy, its groups, its aggregates), and the next rule the
/// same; handed back after `PURGE_DELAY_MS`, each comes back from the
/// kernel as fresh pages to fault in and zero: 29% of the rules' time on
/// the 10M-row month (perf). Held for 3 s (and for 1 s) the rules took
/// 18.5 s (19.5 s) instead of 23.7 s; `--partitions 8`'s 8 passes 32.9 s
/// instead of 48.5 s (one run each, `--verbose`).
pub const HELD_PURGE_DELAY_MS: i64 = 3000;

/// Under this much resident memory `HoldFreed` holds freed memory whatever
/// the scan's peak so far: a scan of a few hundred megabytes is not kept
/// from reusing its own memory. A partitioned scan's peak so far, as its
/// passes start, is its read's (under 1 GB at 10M rows): alone, it would
/// hold almost nothing for the passes, which at 10M rows then peaked at
/// about 1.5 GB anyway (session 26: 1,494-1,548 MiB).
pub const HOLD_FLOOR_MIB: u64 = 1536;

/// How often `HoldFreed`'s watcher reads the process's resident memory:
/// freeing what is held takes a few milliseconds, and 10 ms of faulting
/// in new pages is a few tens of megabytes.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// While it lives, memory the process frees is held for reuse
/// (`HELD_PURGE_DELAY_MS`) as long as the process's resident memory stays
/// under a ceiling; a watcher thread hands everything held back to the
/// system whenever it is at or over. Dropping it hands back what is held
/// and restores `PURGE_DELAY_MS`.
pub struct HoldFreed {
    ceiling_mib: Option<u64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl HoldFreed {
    /// Hold freed memory under the scan's peak so far or `HOLD_FLOOR_MIB`,
    /// whichever is more: the rules then reuse their memory without raising
    /// the peak the derived columns set (10M rows: 3,660 MiB before and
    /// 3,669 after, against 4,159 MiB when held for 1 s with no ceiling).
    pub fn under_peak() -> HoldFreed {
        HoldFreed::under(rss_mib("VmHWM:").unwrap_or(0).max(HOLD_FLOOR_MIB))
    }

    /// Hold freed memory under `ceiling_mib`. Holds nothing where the
    /// environment sets `MIMALLOC_PURGE_DELAY` (the operator's choice
    /// stands) or where the system does not say the resident memory.
    pub fn under(ceiling_mib: u64) -> HoldFreed {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut hold = HoldFreed {
            ceiling_mib: None,
            stop: stop.clone(),
            watcher: None,
        };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || rss_mib("VmRSS:").is_none() {
            return hold;
        }
        let watcher = std::thread::Builder::new().name("posaudit-memory".into()).spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if rss_mib("VmRSS:").is_some_and(|rss| rss >= ceiling_mib) {
                    hand_back();
                }
                std::thread::sleep(WATCH_EVERY);
            }
        });
        // Without a watcher nothing would keep the ceiling: hold nothing.
        if let Ok(w) = watcher {
            set_purge_delay(HELD_PURGE_DELAY_MS);
            hold.watcher = Some(w);
            hold.ceiling_mib = Some(ceiling_mib);
        }
        hold
    }

    /// The ceiling freed memory is held under, if any is held (`--verbose`).
    pub fn ceiling_mib(&self) -> Option<u64> {
        self.ceiling_mib
    }
}

impl Drop for HoldFreed {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = w.join();
            set_purge_delay(PURGE_DELAY_MS);
            hand_back();
        }
    }
}

/// Purge every arena's freed memory now. mimalloc's arenas are the
/// process's, not a thread's: a purge from the watcher frees what the
/// rules' threads freed.
fn hand_back() {
    // SAFETY: takes no pointer; mimalloc guards its arenas' purge itself.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

fn set_purge_delay(ms: i64) {
    // SAFETY: sets an integer option; mimalloc reads options at each use,
    // from any thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as _) };
}

/// `mi_option_allow_thp` in mimalloc 3's `mi_option_t` (the bindings do
/// not name it either).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

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
    fn the_options_configured_are_mimallocs_purge_delay_and_huge_pages_which_a_partitioned_read_turns_off() {
        // mimalloc 3's purge delay is 1000 ms by default and its huge
        // pages are allowed (1), and no option next to either has that
        // default (the options at 42 and 44 are 16 and 0): the options at
        // these places are them. An option the environment sets,
        // `configure` leaves. One test: `configure` sets both.
        // A C `long`: 64 bits here, 32 on Windows.
        #[allow(clippy::useless_conversion)]
        let get = |option| i64::from(unsafe { libmimalloc_sys::mi_option_get(option) });
        let before = [get(MI_OPTION_PURGE_DELAY), get(MI_OPTION_ALLOW_THP)];
        configure();
        let after = [get(MI_OPTION_PURGE_DELAY), get(MI_OPTION_ALLOW_THP)];
        let options = [
            ("MIMALLOC_PURGE_DELAY", 1000, PURGE_DELAY_MS),
            ("MIMALLOC_ALLOW_THP", 1, i64::from(ALLOW_THP)),
        ];
        for (i, (var, default, ours)) in options.into_iter().enumerate() {
            if std::env::var_os(var).is_some() {
                assert_eq!(after[i], before[i], "{var} is left as the environment set it");
            } else {
                assert_eq!((before[i], after[i]), (default, ours), "{var}");
            }
        }
        // A partitioned scan's read turns huge pages off and its passes
        // back on (`huge_pages`); the environment's choice stands.
        let ours_to_set = std::env::var_os("MIMALLOC_ALLOW_THP").is_none();
        huge_pages(false);
        assert_eq!(get(MI_OPTION_ALLOW_THP), if ours_to_set { 0 } else { after[1] });
        huge_pages(ALLOW_THP);
        assert_eq!(get(MI_OPTION_ALLOW_THP), after[1]);
    }
}
