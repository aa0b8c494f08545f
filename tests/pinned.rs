//! The findings, byte for byte. A refactoring (the compiled rule form, the
//! module layers) must not change a single byte of what a scan writes; a
//! rule or generator change that does must update these digests and say
//! why in its commit.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_posaudit");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Scan `data` (relative to `cwd`: findings name their source files) in
/// memory and in 3 partitions; both must write the same bytes, and those
/// bytes must have the pinned digests.
fn assert_pinned(cwd: &Path, data: &str, jsonl: &str, csv: &str) {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [("memory", vec![]), ("partitioned", vec!["--partitions", "3"])] {
        let out = tmp.path().join(name);
        let mut args = vec![
            "scan",
            data,
            "--as-of",
            "2026-11-20",
            "--format",
            "jsonl,csv",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = Command::new(BIN).args(&args).current_dir(cwd).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(sha256(&out.join("findings.jsonl")), jsonl, "{name}: findings.jsonl of {data}");
        assert_eq!(sha256(&out.join("findings.csv")), csv, "{name}: findings.csv of {data}");
    }
}

#[test]
fn the_demo_findings_are_pinned_byte_for_byte() {
    assert_pinned(
        &root(),
        "fixtures/demo",
        "d9b1e153b2705a8c9427ea8f5ab0c78b5203922d0a92730c577aa84047278644",
        "bd695ebfc501654bc9c4b8b16ad8e148e8a8a9fd76acb0381d17c9e711167b77",
    );
}

#[test]
fn generated_findings_are_pinned_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // What `posaudit-gen --out data --merchants 150 --days 14
    // --txns-per-day 700 --seed 4242 --violations 0.3 --start 2026-10-01` writes.
    posaudit_gen::generate(&posaudit_gen::GenOptions {
        merchants: 150,
        days: 14,
        txns_per_day: 700,
        seed: 4242,
        out: data.clone(),
        format: posaudit_gen::GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.3,
        bad_rows: false,
        lookalikes: true,
    })
    .unwrap();
    assert_pinned(
        tmp.path(),
        "data",
        "5292ba2669865c9475e5f116ad6325ca71904ef7ec49233063a30d6d25d64b58",
        "22e91ff6163073746090dc75873d27e7400961ccf6ef0cd0ec8c47244b044fa0",
    );
}
