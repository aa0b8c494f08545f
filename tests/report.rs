//! The officer's view, end to end with the real binary: cases scored from
//! the scoring file, the Excel workbook read back, and the HTML report
//! driven in headless Chromium.

mod common;
use common::copy_dir;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    common::posaudit_command()
        .args(args)
        .current_dir(root())
        .output()
        .expect("run posaudit")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn scan_demo(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["scan", "fixtures/demo", "--as-of", "2026-11-20", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    o
}

#[test]
fn every_merchant_with_findings_has_one_case_scored_from_the_scoring_file() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    scan_demo(&out, &[]);
    let findings = jsonl(&out.join("findings.jsonl"));
    let cases = jsonl(&out.join("cases.jsonl"));
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    for f in &findings {
        for m in f["merchant_ids"].as_array().unwrap() {
            *named.entry(m.as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    assert_eq!(cases.len(), named.len(), "one case per merchant named by a finding");
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(c["rank"], i + 1);
        let m = c["merchant_id"].as_str().unwrap();
        assert_eq!(
            c["findings"].as_u64().unwrap() as usize,
            named[m],
            "{m}: every finding that names it"
        );
        let fps: usize = c["by_family"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_array().unwrap().len())
            .sum();
        assert_eq!(fps, named[m]);
        if i > 0 {
            assert!(cases[i - 1]["score"].as_f64() >= c["score"].as_f64(), "ranked by score");
        }
    }
    // Multi-merchant findings count for each merchant they name.
    let multi = findings
        .iter()
        .find(|f| f["merchant_ids"].as_array().unwrap().len() > 1)
        .expect("a shared-account finding");
    for m in multi["merchant_ids"].as_array().unwrap() {
        let c = cases.iter().find(|c| c["merchant_id"] == *m).unwrap();
        let all: Vec<&Value> = c["by_family"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|v| v.as_array().unwrap())
            .collect();
        assert!(all.contains(&&multi["fingerprint"]));
    }
    // The typologies of the demo's plants fire.
    let typologies: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c["typologies"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()))
        .collect();
    assert!(
        typologies.contains("TYP-CASHOUT") && typologies.contains("TYP-2Q"),
        "{typologies:?}"
    );
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["cases"]["count"], cases.len());
    assert_eq!(manifest["cases"]["top"][0]["merchant_id"], cases[0]["merchant_id"]);
    let csv = std::fs::read_to_string(out.join("cases.csv")).unwrap();
    assert_eq!(csv.lines().count(), cases.len() + 1);
}

#[test]
fn a_weight_in_the_scoring_file_changes_the_ranking() {
    let t = tempfile::tempdir().unwrap();
    let before = t.path().join("before");
    scan_demo(&before, &[]);
    let cases = jsonl(&before.join("cases.jsonl"));
    // The last-ranked case with a single rule: weigh that rule up a
    // hundredfold and its merchant comes first.
    let low = cases
        .iter()
        .rev()
        .find(|c| c["rules"].as_object().unwrap().len() == 1 && c["open"].as_u64() > Some(0))
        .expect("a case of one rule");
    let rule = low["rules"].as_object().unwrap().keys().next().unwrap().clone();
    let merchant = low["merchant_id"].as_str().unwrap();
    assert_ne!(cases[0]["merchant_id"], merchant);

    let pack = t.path().join("rules");
    copy_dir(&root().join("rules"), &pack);
    let scoring: String = std::fs::read_to_string(pack.join("scoring.yaml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("  {rule}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        pack.join("scoring.yaml"),
        scoring.replace("rule_weights:\n", &format!("rule_weights:\n  {rule}: 100\n")),
    )
    .unwrap();
    let after = t.path().join("after");
    scan_demo(&after, &["--rules", pack.to_str().unwrap()]);
    let cases = jsonl(&after.join("cases.jsonl"));
    let top: Vec<&str> = cases
        .iter()
        .take_while(|c| c["score"] == cases[0]["score"])
        .map(|c| c["merchant_id"].as_str().unwrap())
        .collect();
    assert!(
        top.contains(&merchant),
        "{merchant} ({rule} x100) should rank first: {:?}",
        &cases[0]
    );

    // A case threshold moves case severities: with `critical: 0` every case is critical.
    let scoring = std::fs::read_to_string(root().join("rules/scoring.yaml")).unwrap();
    std::fs::write(
        pack.join("scoring.yaml"),
        scoring.replace(
            "case_severity: {info: 0, low: 3, medium: 15, high: 40, critical: 100}",
            "case_severity: {info: 0, low: 0, medium: 0, high: 0, critical: 0}",
        ),
    )
    .unwrap();
    let all = t.path().join("all");
    scan_demo(&all, &["--rules", pack.to_str().unwrap()]);
    assert!(jsonl(&all.join("cases.jsonl")).iter().all(|c| c["severity"] == "critical"));
}

#[test]
fn a_broken_scoring_file_is_an_error_at_its_line() {
    let t = tempfile::tempdir().unwrap();
    let pack = t.path().join("rules");
    copy_dir(&root().join("rules"), &pack);
    let scoring = std::fs::read_to_string(pack.join("scoring.yaml")).unwrap();
    std::fs::write(
        pack.join("scoring.yaml"),
        scoring.replace("SUS-SPLIT-01, SUS-CARD-01", "SUS-SPLIT-99, SUS-CARD-01"),
    )
    .unwrap();
    let o = run(&["rules", "check", pack.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("TYP-CASHOUT: no rule `SUS-SPLIT-99` in the pack"), "{}", text(&o));
    let o = run(&[
        "scan",
        "fixtures/demo",
        "--rules",
        pack.to_str().unwrap(),
        "--out",
        t.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    std::fs::write(pack.join("scoring.yaml"), scoring.replace("repeat_share:", "repeat_shares:")).unwrap();
    let o = run(&["rules", "check", pack.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let line = scoring.lines().position(|l| l.starts_with("repeat_share:")).unwrap() + 1;
    assert!(
        text(&o).contains(&format!("scoring.yaml:{line}:1: unknown field `repeat_shares`")),
        "{}",
        text(&o)
    );

    // A failing scoring case fails `rules test`.
    std::fs::write(
        pack.join("scoring.yaml"),
        scoring.replace(
            "expect: {typologies: [TYP-2Q], severity: critical}",
            "expect: {typologies: [TYP-2Q], severity: low}",
        ),
    )
    .unwrap();
    let o = run(&["rules", "test", pack.to_str().unwrap(), "--filter", "scoring"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("FAIL scoring :: settlement to another account plus a shared account is 二清"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("severity critical, expected low"), "{}", text(&o));
}
