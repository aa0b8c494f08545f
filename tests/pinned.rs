//! The findings, byte for byte. A refactoring (the compiled rule form, the
//! module layers) must not change a single byte of what a scan writes; a
//! rule or generator change that does must update these digests and say
//! why in its commit.

mod common;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Scan `data` (relative to `cwd`: findings name their source files) in
/// memory and in 3 partitions, with and without the parse cache; all must
/// write the same bytes, and those
/// bytes must have the pinned digests.
fn assert_pinned(cwd: &Path, data: &str, jsonl: &str, csv: &str) {
    let tmp = tempfile::tempdir().unwrap();
    // The first two read through the parse cache (the second from it), the
    // last parses every file.
    for (name, extra) in [
        ("memory", vec![]),
        ("partitioned", vec!["--partitions", "3"]),
        ("no cache", vec!["--no-cache"]),
    ] {
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
        let o = common::posaudit_command().args(&args).current_dir(cwd).output().unwrap();
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
        "b6c20efad0eb19a5bf988b4fc65126618ede7bf3164af32335ba7ebc9e69d6d2",
        "ec1beff33922b64dea79bb4a4a54c935728089faf1ff872b5d77a5bcc6ba4545",
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
        "97d3884871eb859102ff1f68569124d53f4011f6f81616d4d76c51d3d640996b",
        "7d9c3189ab2000de526fd7cd86a0fb4af67e44842da4a229aa65d0322221f756",
    );
}
