//! The export samples in fixtures/exports/ (written by its make.py from the
//! demo): each format read with its preset and with the mapping `mapping
//! infer` drafts gives exactly the findings and row counts of the same rows
//! in the contract's own form (`canonical/`), which make.py writes by its
//! own reading of the format, not through posaudit.

mod common;
use common::{jsonl, root, run, text};

use std::path::Path;

use serde_json::Value;

/// Findings without where they were read from (file names and line
/// numbers differ by construction), by fingerprint.
fn meaning(out: &Path) -> Vec<Value> {
    let mut v: Vec<Value> = jsonl(&out.join("findings.jsonl"))
        .into_iter()
        .map(|mut f| {
            f.as_object_mut().unwrap().remove("source");
            f
        })
        .collect();
    v.sort_by_key(|f| f["fingerprint"].as_str().unwrap().to_string());
    v
}

fn totals(out: &Path) -> Value {
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    m["totals"].clone()
}

fn scan(args: &[&str], out: &Path) {
    let mut all = vec![
        "scan",
        "--as-of",
        "2026-11-20",
        "--fail-on",
        "never",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let o = run(&all);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// The sample of `format` read through `mapping` against its canonical twin.
fn reads_as_its_twin(format: &str, mapping: &str, out: &Path) -> Vec<Value> {
    let dir = root().join("fixtures/exports").join(format);
    let apps = dir.join("applications.csv");
    let txns = dir.join("transactions");
    scan(
        &[
            "--applications",
            apps.to_str().unwrap(),
            "--transactions",
            txns.to_str().unwrap(),
            "--mapping",
            mapping,
        ],
        &out.join("export"),
    );
    scan(&[dir.join("canonical").to_str().unwrap()], &out.join("canonical"));
    let (got, want) = (meaning(&out.join("export")), meaning(&out.join("canonical")));
    assert_eq!(
        totals(&out.join("export")),
        totals(&out.join("canonical")),
        "{format}: the same rows are read and accepted"
    );
    assert_eq!(totals(&out.join("export"))["transactions"]["rows_rejected"], 0, "{format}");
    assert_eq!(got.len(), want.len(), "{format}: as many findings");
    assert!(got == want, "{format}: the export gives other findings than its canonical twin");
    want
}

/// The rules of the transaction findings.
fn transaction_rules(findings: &[Value]) -> Vec<String> {
    let mut r: Vec<String> = findings
        .iter()
        .filter(|f| f["entity_kind"] != "application")
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect();
    r.sort();
    r.dedup();
    r
}

fn infer(format: &str, out: &Path) -> (String, String) {
    let dir = root().join("fixtures/exports").join(format).join("transactions");
    let mapping = out.join("inferred.yaml");
    let mut args = vec!["mapping".to_string(), "infer".into(), "--out".into(), mapping.display().to_string()];
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    args.extend(files);
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let draft = std::fs::read_to_string(&mapping).unwrap();
    (mapping.display().to_string(), draft)
}

fn check_format(format: &str, expected_rules: &[&str], recognised: bool) {
    let t = tempfile::tempdir().unwrap();
    let preset = format!("preset:{format}");
    let want = reads_as_its_twin(format, &preset, &t.path().join("preset"));
    assert_eq!(
        transaction_rules(&want),
        expected_rules,
        "{format}: the sample's transaction findings"
    );

    let (mapping, draft) = infer(format, t.path());
    assert!(!draft.contains("# MISSING"), "{format}: nothing left to map by hand:\n{draft}");
    assert_eq!(
        draft.contains(&format!("this is {preset}")),
        recognised,
        "{format}: the draft names the preset when it recognises the format:\n{draft}"
    );
    let inferred = reads_as_its_twin(format, &mapping, &t.path().join("inferred"));
    assert!(inferred == want);
}

#[test]
fn a_wechat_pay_bill_reads_as_its_canonical_rows() {
    check_format("wechat", &["LIM-QR-01", "SUS-CASH-02"], true);
}

#[test]
fn an_alipay_business_detail_bill_reads_as_its_canonical_rows() {
    check_format("alipay", &["SUS-DUP-01"], true);
}

#[test]
fn a_unionpay_style_reconciliation_file_reads_as_its_canonical_rows() {
    check_format(
        "unionpay",
        &[
            "FEE-ADD-01",
            "FEE-CAP-01",
            "FEE-REC-01",
            "LIM-TERM-01",
            "SUS-CASH-01",
            "SUS-CASH-03",
            "SUS-LOC-02",
        ],
        true,
    );
}

#[test]
fn a_lakala_style_export_reads_as_its_canonical_rows_and_infer_needs_no_preset_for_it() {
    check_format(
        "lakala",
        &[
            "LIM-VOL-01",
            "SUS-DORM-01",
            "SUS-MCC-01",
            "SUS-MCC-02",
            "SUS-NEW-01",
            "SUS-REF-01",
            "SUS-TIME-01",
        ],
        false,
    );
}

#[test]
fn an_unknown_preset_is_named_with_the_ones_there_are() {
    let o = run(&["scan", "fixtures/demo", "--mapping", "preset:paypal", "--out", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("no preset `paypal`: the presets are preset:wechat, preset:alipay, preset:unionpay, preset:lakala"),
        "{}",
        text(&o)
    );
}
