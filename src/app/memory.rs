//! Will a scan fit in memory? An estimate from the input files' sizes,
//! against what the machine has free, made before anything is read.
//!
//! Why: a scan that does not fit is killed by the system without a word
//! (an in-memory scan of a 1.9 GB CSV was killed at 24 GB, issue #12).
//! Warned before the read, an operator reruns with `--partitions`, which
//! holds about 1.7 GB for 10M transactions; `--partitions auto` takes the
//! number from the same estimate.

use crate::input::InputPlan;

/// Peak memory of an in-memory scan per byte of CSV, measured with the
/// full pack (session 31, release build, 2 threads): the 10M month as one
/// 2.19 GB CSV peaked at 3,451-3,794 MiB over five runs (1.65-1.82 bytes
/// a byte with no base), the 1M month (220 MB) at 771 MiB, and a 3M month
/// of another seed (`--seed 3131`, 658 MB), not used before, at 1,542 MiB.
/// 2.4 bytes a byte over `BASE` is 1.42x, 1.15x and 1.23x those. It was
/// 4.5 until session 31, from peaks of 8.2-8.4 GiB that later sessions
/// cut. A CSV with narrower rows than these (199 bytes a transaction)
/// holds more per byte: the estimate is of bytes, not rows, so that it
/// needs no read of the file.
const PER_TEXT_BYTE: f64 = 2.4;
/// Peak memory per row of a Parquet file (counted in its footer, not
/// read): its bytes say little, as codecs, dictionaries and types pack
/// rows very differently (these files: 41-45 bytes a row). The 10M month
/// as typed Parquet (10.86M rows of all inputs) peaked at 3,516-3,876 MiB
/// in one file (339-374 bytes a row, with no base); the 1M month (1.09M
/// rows) at 595 MiB; the 3M month of another seed as text Parquet (3.21M
/// rows, beside 18 MB of CSV) at 1,547 MiB. 440 bytes a row is 1.27x,
/// 1.41x and 1.15x those. Until session 31 a Parquet byte counted
/// 21 bytes, 2.8x the 10M file's peak since its reading in batches.
const PER_PARQUET_ROW: u64 = 440;
/// Peak memory per byte of an Excel workbook, whose cells are all held
/// while it is read. Not measured since session 11's estimate of 21 bytes
/// a byte for compressed inputs; kept, as an overestimate errs toward
/// partitions.
const PER_WORKBOOK_BYTE: f64 = 21.0;
/// What a scan holds whatever its input (the 1.8 MB demo peaks at 93
/// MiB; at 1M rows, the rows' share is about half of the peak).
const BASE: u64 = 384 << 20;
/// What a partitioned scan holds besides its share of the data (10M rows
/// in 8 partitions peaked at 2.0 GB, of which 1.1 GB the share; 1.4 GB
/// since the read hands on 32 MB parts: the rest is kept as a margin).
const PARTITIONED_BASE: u64 = 1 << 30;

/// An in-memory scan's peak, estimated from the sizes of its files (and
/// a Parquet file's row count).
pub(crate) fn estimate(plan: &InputPlan) -> u64 {
    let bytes: f64 = plan.files.values().flatten().filter_map(|p| file_estimate(p)).sum();
    BASE + bytes as u64
}

/// What reading and scanning one file adds to the peak, by its format.
/// Nothing for a file that is not there; a Parquet file whose footer
/// does not read is weighed by its size as a workbook is.
fn file_estimate(path: &std::path::Path) -> Option<f64> {
    let len = std::fs::metadata(path).ok()?.len() as f64;
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    Some(match extension.as_deref() {
        Some("parquet") => match crate::input::parquet_rows(path) {
            Some(rows) => (rows as u64 * PER_PARQUET_ROW) as f64,
            None => len * PER_WORKBOOK_BYTE,
        },
        Some("xlsx") => len * PER_WORKBOOK_BYTE,
        _ => len * PER_TEXT_BYTE,
    })
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
    use polars::prelude::*;

    #[test]
    fn text_is_weighed_by_its_bytes_parquet_by_its_rows_and_a_workbook_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let plan = |p: &std::path::Path| {
            let mut plan = InputPlan::default();
            plan.files.insert(crate::input::InputKind::Transactions, vec![p.to_path_buf()]);
            plan
        };
        let csv = dir.path().join("transactions.csv");
        std::fs::write(&csv, vec![b'x'; 1 << 20]).unwrap();
        assert_eq!(estimate(&plan(&csv)) - BASE, (PER_TEXT_BYTE * (1 << 20) as f64) as u64);
        // 5,000 rows in a Parquet file of a few kilobytes: its rows count,
        // not its bytes.
        let parquet = dir.path().join("transactions.parquet");
        let mut df = df!("txn_id" => (0..5_000i64).collect::<Vec<_>>(), "amount" => vec!["1.00"; 5_000]).unwrap();
        ParquetWriter::new(std::fs::File::create(&parquet).unwrap())
            .finish(&mut df)
            .unwrap();
        assert!(std::fs::metadata(&parquet).unwrap().len() < 100_000);
        assert_eq!(estimate(&plan(&parquet)) - BASE, 5_000 * PER_PARQUET_ROW);
        // A file named Parquet that is not one, and a workbook: by bytes.
        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, vec![b'x'; 1 << 10]).unwrap();
        assert_eq!(estimate(&plan(&junk)) - BASE, (PER_WORKBOOK_BYTE * 1024.0) as u64);
        let xlsx = dir.path().join("transactions.XLSX");
        std::fs::write(&xlsx, vec![b'x'; 1 << 10]).unwrap();
        assert_eq!(estimate(&plan(&xlsx)) - BASE, (PER_WORKBOOK_BYTE * 1024.0) as u64);
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
