//! The `posaudit-gen` binary as a user runs it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_posaudit-gen");

/// Run the binary writing into `out` with these further arguments.
fn gen(out: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("--out").arg(out).args(args).output().unwrap()
}

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
        let o = gen(&out, &[flag, value]);
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
    let o = gen(&out, &["--merchants", "30", "--days", "3", "--format", "parquet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("wrote "));
    // Parquet is for the transaction files; the small inputs stay CSV.
    for f in ["applications.csv", "labels.csv", "transactions/2026-11-01.parquet"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let o = gen(&out, &["--format", "xlsx"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("csv or parquet"));
}

#[test]
fn every_file_written_has_the_contracts_columns_in_its_order() {
    // The data contract is declared once (posaudit::contract); the
    // generator's files must agree with it column for column, row by row.
    use posaudit::input::InputKind;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("g");
    let o = gen(&out, &["--merchants", "60", "--days", "3", "--violations", "0.5"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let day = std::fs::read_dir(out.join("transactions")).unwrap().next().unwrap().unwrap().path();
    for (kind, path) in [
        (InputKind::Applications, out.join("applications.csv")),
        (InputKind::Transactions, day),
        (InputKind::Fees, out.join("fees.csv")),
        (InputKind::FeeChanges, out.join("fee_changes.csv")),
    ] {
        let contract: Vec<&str> = kind.columns().iter().map(|c| c.name).collect();
        let mut r = csv::ReaderBuilder::new().flexible(true).from_path(&path).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(header, contract, "{}", path.display());
        let mut rows = 0;
        for rec in r.records() {
            let rec = rec.unwrap();
            rows += 1;
            assert_eq!(rec.len(), contract.len(), "{} row {rows}: {rec:?}", path.display());
        }
        assert!(rows > 0, "{}", path.display());
    }
}
