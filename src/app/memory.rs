//! Will a scan fit in memory? An estimate from the input files' sizes,
//! against what the machine has free, made before anything is read.
//!
//! Why: a scan that does not fit is killed by the system without a word
//! (an in-memory scan of a 1.9 GB CSV was killed at 24 GB, issue #12).
//! Warned before the read, an operator reruns with `--partitions`, which
//! holds about 1.7 GB for 10M transactions; `--partitions auto` takes the
//! number from the same estimate.

use crate::input::InputPlan;

/// Peak memory of an in-memory scan per byte of input, measured with the
/// full pack (README, sessions 10 and 11): 10.7M transactions as one 2.19
/// GB CSV peaked at 8.2-8.4 GiB, about 4.0 bytes per byte (31 daily files
/// alike); as typed Parquet (450 MB) at 8.0 GiB, about 19. A margin is
/// added to both.
const PER_TEXT_BYTE: f64 = 4.5;
const PER_COMPRESSED_BYTE: f64 = 21.0;
/// What a scan holds whatever its input: 1M rows in 220 MB of CSV peaked
/// at 1,290 MiB, 345 MiB over 4.5 bytes per byte; 68 MB at 465 MiB, 160
/// over; the 1.8 MB demo at 118 MiB.
const BASE: u64 = 384 << 20;
/// What a partitioned scan holds besides its share of the data (10M rows
/// in 8 partitions peaked at 2.0 GB, of which 1.1 GB the share; 1.7 GB
/// since the read hands on 32 MB parts: the rest is kept as a margin).
const PARTITIONED_BASE: u64 = 1 << 30;

/// An in-memory scan's peak, estimated from the sizes of its files.
pub(crate) fn estimate(plan: &InputPlan) -> u64 {
    let bytes: f64 = plan
        .files
        .values()
        .flatten()
        .filter_map(|p| {
            let len = std::fs::metadata(p).ok()?.len() as f64;
            let compressed = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "parquet" | "xlsx"));
            Some(len * if compressed { PER_COMPRESSED_BYTE } else { PER_TEXT_BYTE })
        })
        .sum();
    BASE + bytes as u64
}

/// Memory free for the scan: the system's available memory, or less when
/// the process runs under a control group's limit (a container, a CI
/// job). `POSAUDIT_MEMORY_AVAILABLE` (bytes, or with K, M, G) says it
/// instead. None where neither is known.
pub(crate) fn available() -> Option<u64> {
    if let Some(v) = std::env::var_os("POSAUDIT_MEMORY_AVAILABLE") {
        return v.to_str().and_then(parse_size);
    }
    let system = read("/proc/meminfo").and_then(|s| kib_field(&s, "MemAvailable:"));
    [system, cgroup_free()].into_iter().flatten().min()
}

/// Partitions for `--partitions auto`: 1 (in memory) when the estimate is
/// within four fifths of what is free, else enough that each holds its
/// share in half of it.
pub(crate) fn auto_partitions(need: u64, free: u64) -> usize {
    if need as f64 <= 0.8 * free as f64 {
        return 1;
    }
    let room = (free / 2).saturating_sub(PARTITIONED_BASE).max(256 << 20);
    (need.div_ceil(room) as usize).clamp(2, crate::app::options::MAX_PARTITIONS)
}

/// The warning for an in-memory scan that will not fit, if it will not.
pub(crate) fn warning(need: u64, free: u64) -> Option<String> {
    (need > free).then(|| {
        format!(
            "scanning these inputs in memory takes about {} and {} is free: the system may stop the scan for want of memory. \
             `--partitions auto` ({} partitions here) spills them to disk beside --out and holds much less; the findings are the same",
            gib(need),
            gib(free),
            auto_partitions(need, free)
        )
    })
}

pub(crate) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A size for a person: KiB under a megabyte, MiB under a gigabyte ("0.1
/// GiB" says little).
pub(crate) fn size(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes.div_ceil(1 << 10))
    } else if bytes < 1 << 30 {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    } else {
        gib(bytes)
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A `Name: 123 kB` line of /proc/meminfo or a cgroup's memory.stat.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// A control group's limit less what its processes hold (page cache
/// counts as free: the kernel gives it back), cgroup v2 then v1.
fn cgroup_free() -> Option<u64> {
    let number = |p: &str| read(p).and_then(|s| s.trim().parse::<u64>().ok());
    let stat = |p: &str, field: &str| {
        read(p).and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field).and_then(|v| v.trim().parse::<u64>().ok()))
        })
    };
    if let (Some(limit), Some(used)) = (number("/sys/fs/cgroup/memory.max"), number("/sys/fs/cgroup/memory.current")) {
        let cache = stat("/sys/fs/cgroup/memory.stat", "file ").unwrap_or(0);
        return Some(limit.saturating_sub(used.saturating_sub(cache)));
    }
    let limit = number("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|l| *l < 1 << 60)?;
    let used = number("/sys/fs/cgroup/memory/memory.usage_in_bytes")?;
    let cache = stat("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file ").unwrap_or(0);
    Some(limit.saturating_sub(used.saturating_sub(cache)))
}

/// `123`, `512M`, `6G` (binary units).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mult = match s[i..].to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                "K" => 1u64 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                "" => 1,
                _ => return None,
            };
            (&s[..i], mult)
        }
        None => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_files_weigh_more_than_text_per_byte() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("transactions.csv");
        let parquet = dir.path().join("transactions.parquet");
        std::fs::write(&csv, vec![b'x'; 1 << 20]).unwrap();
        std::fs::write(&parquet, vec![b'x'; 1 << 20]).unwrap();
        let plan = |p: &std::path::Path| {
            let mut plan = InputPlan::default();
            plan.files.insert(crate::input::InputKind::Transactions, vec![p.to_path_buf()]);
            plan
        };
        let text = estimate(&plan(&csv)) - BASE;
        let packed = estimate(&plan(&parquet)) - BASE;
        assert_eq!(text, (PER_TEXT_BYTE * (1 << 20) as f64) as u64);
        assert!(packed > 4 * text);
        // A file that is not there counts nothing.
        assert_eq!(estimate(&plan(&dir.path().join("gone.csv"))), BASE);
    }

    #[test]
    fn sizes_read_in_kib_under_a_megabyte_and_mib_under_a_gigabyte() {
        assert_eq!(size(0), "0 KiB");
        assert_eq!(size(1000), "1 KiB");
        assert_eq!(size(5 << 10), "5 KiB");
        assert_eq!(size((1 << 20) + 1), "2 MiB");
        assert_eq!(size(111 << 20), "111 MiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
    }

    #[test]
    fn auto_stays_in_memory_when_it_fits_and_splits_enough_when_not() {
        const G: u64 = 1 << 30;
        assert_eq!(auto_partitions(8 * G, 20 * G), 1);
        assert_eq!(auto_partitions(16 * G, 20 * G), 1);
        // 40 GB with 20 free: halves of 9 GB after the base, so 5.
        assert_eq!(auto_partitions(40 * G, 20 * G), 5);
        let n = auto_partitions(9 * G, 4 * G);
        assert!(n >= 2);
        assert!(9 * G / n as u64 + PARTITIONED_BASE <= 4 * G, "{n} partitions do not fit");
        // Almost nothing free: the most partitions, not a division by zero.
        assert_eq!(auto_partitions(10_000 * G, 0), crate::app::options::MAX_PARTITIONS);
    }

    #[test]
    fn the_warning_names_both_sizes_and_the_way_out_only_when_needed() {
        const G: u64 = 1 << 30;
        assert!(warning(8 * G, 20 * G).is_none());
        let w = warning(40 * G, 20 * G).unwrap();
        assert!(w.contains("40.0 GiB") && w.contains("20.0 GiB"), "{w}");
        assert!(
            w.contains("--partitions auto (5 partitions here)") || w.contains("`--partitions auto` (5 partitions here)"),
            "{w}"
        );
    }

    #[test]
    fn sizes_read_as_an_operator_writes_them() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("6G"), Some(6 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1G"), None);
    }

    #[test]
    fn meminfo_fields_are_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(kib_field(text, "MemAvailable:"), Some(20_000_000 * 1024));
        assert_eq!(kib_field(text, "SwapFree:"), None);
    }
}
