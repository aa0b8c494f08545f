//! The `posaudit-gen` binary as a user runs it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_posaudit-gen");

#[test]
fn gen_refuses_an_empty_population_with_a_message_not_a_panic() {
    // Regression: `posaudit gen --merchants 0` panicked.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("g");
    for (flag, value) in [
        ("--merchants", "0"),
        ("--days", "0"),
        ("--txns-per-day", "0"),
        ("--violations", "1.5"),
    ] {
        let o = Command::new(BIN)
            .args(["--out", out.to_str().unwrap(), flag, value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let mut opts = posaudit_gen::GenOptions {
        merchants: 0,
        days: 14,
        txns_per_day: 100,
        seed: 1,
        out: out.clone(),
        format: posaudit_gen::GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.1,
        bad_rows: false,
        lookalikes: true,
    };
    assert!(posaudit_gen::generate(&opts).is_err(), "the library says so too");
    opts.merchants = 10;
    assert!(posaudit_gen::generate(&opts).is_ok());
}

#[test]
fn the_binary_writes_inputs_and_labels_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("g");
    let o = Command::new(BIN)
        .args([
            "--out",
            out.to_str().unwrap(),
            "--merchants",
            "30",
            "--days",
            "3",
            "--format",
            "parquet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("wrote "));
    // Parquet is for the transaction files; the small inputs stay CSV.
    for f in ["applications.csv", "labels.csv", "transactions/2026-11-01.parquet"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let o = Command::new(BIN)
        .args(["--out", out.to_str().unwrap(), "--format", "xlsx"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("csv or parquet"));
}
