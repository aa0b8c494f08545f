//! `alloc::HoldFreed` with the allocator the binaries use: freed memory
//! stays resident for reuse under the ceiling, goes back to the system
//! when the process reaches it, and goes back when the hold ends. A test
//! binary of its own, with one test: the resident memory it reads is this
//! test's alone.

use std::time::{Duration, Instant};

use posaudit::alloc::{rss_mib, HoldFreed, HELD_PURGE_DELAY_MS};

#[global_allocator]
static GLOBAL: posaudit::alloc::MiMalloc = posaudit::alloc::MiMalloc;

fn rss() -> u64 {
    rss_mib("VmRSS:").expect("resident memory is read on this system")
}

/// Allocate `mib` MiB in 4 MiB buffers (the size of a rule's columns at
/// 1M rows), write every page, and free them all.
fn touch_and_free(mib: usize) {
    let buffers: Vec<Vec<u8>> = (0..mib / 4).map(|i| vec![i as u8 | 1; 4 << 20]).collect();
    assert!(buffers.iter().all(|b| b[b.len() - 1] != 0));
    drop(buffers);
}

/// Wait up to `limit` for the resident memory to fall below `mib`.
fn falls_below(mib: u64, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if rss() < mib {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn freed_memory_is_held_under_the_ceiling_and_handed_back_at_it_and_at_the_end() {
    posaudit::alloc::configure();
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || rss_mib("VmRSS:").is_none() {
        // The operator's setting stands, or nothing can be watched.
        assert_eq!(HoldFreed::under(u64::MAX).ceiling_mib(), None);
        return;
    }
    touch_and_free(64); // The allocator's own start-up, before the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let base = rss();

    // Far under the ceiling: 256 MiB freed stay resident for reuse.
    let held = HoldFreed::under(u64::MAX);
    assert_eq!(held.ceiling_mib(), Some(u64::MAX));
    touch_and_free(256);
    std::thread::sleep(Duration::from_millis(400));
    let holding = rss();
    assert!(
        holding >= base + 200,
        "256 MiB freed under no ceiling are held: {base} MiB before, {holding} after"
    );
    // Reused, not taken again: the same again does not grow the process.
    touch_and_free(256);
    assert!(rss() < holding + 64, "held memory is reused: {holding} MiB held, {} now", rss());
    // The hold ends: what is held goes back at once, not after the delay.
    drop(held);
    assert!(
        falls_below(base + 64, Duration::from_millis(HELD_PURGE_DELAY_MS as u64 / 3)).is_some(),
        "handed back when the hold ends: {base} MiB before, {} after",
        rss()
    );

    // A ceiling 128 MiB above: the watcher hands the 256 MiB back as soon
    // as they are freed, long before the delay would.
    let base = rss();
    let held = HoldFreed::under(base + 128);
    touch_and_free(256);
    let took = falls_below(base + 128, Duration::from_millis(HELD_PURGE_DELAY_MS as u64 / 3));
    assert!(took.is_some(), "handed back at the ceiling: {base} MiB before, {} after", rss());
    drop(held);
}
