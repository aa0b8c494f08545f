//! The rule-change workflow: lint, rule tests, impact diff, and the
//! machine-readable outputs CI systems read (SARIF, JUnit).

mod common;
use common::copy_dir;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], cwd: &Path) -> Output {
    common::posaudit_command()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run posaudit")
}

fn posaudit(args: &[&str]) -> Output {
    run(args, &root())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn sarif_errors(doc: &Value) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("tests/data/sarif-schema-2.1.0.json")).unwrap();
    // The official schema's `run.language` pattern has a stray `]` that
    // strict regex engines reject when compiling the schema; posaudit never
    // writes `language`, so mending that one pattern changes no verdict.
    let text = text.replace(r#"^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$"#, r#"^[a-zA-Z]{2}(-[a-zA-Z]{2})?$"#);
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

const HEAD: &str =
    "title: t\nfamily: transaction_limits\nseverity: low\nbasis: {text: x}\nsource: transactions\ntitle_zh: 测试\nmessage_zh: 消息\n";
const CASES: &str = "tests:\n  - {name: fires, transactions: [{amount: \"2.00\"}], hits: [T1]}\n  - {name: silent, transactions: [{amount: \"0.50\"}], hits: []}\n";

fn pack_with(files: &[(&str, String)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("rules/reference"), &tmp.path().join("reference"));
    for (name, body) in files {
        std::fs::write(tmp.path().join(name), body).unwrap();
    }
    tmp
}

#[test]
fn rules_check_passes_the_shipped_pack_and_writes_valid_sarif() {
    let tmp = tempfile::tempdir().unwrap();
    let sarif = tmp.path().join("lint.sarif");
    let o = posaudit(&["rules", "check", "--output", &format!("sarif={}", sarif.display())]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("74 rules: 0 errors, 0 warnings"), "{}", text(&o.stdout));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif_errors(&doc), Vec::<String>::new());
    assert_eq!(doc["runs"][0]["results"].as_array().unwrap().len(), 0);
}

#[test]
fn rules_check_reports_each_lint_problem_with_file_rule_and_field() {
    let cases: Vec<(&str, String, &str, i32)> = vec![
        (
            "no_cases.yaml",
            format!("id: T-1\n{HEAD}where: \"amount > 1\"\nmessage: m\n"),
            "no_cases.yaml: rule T-1: field `tests`: the rule needs a case that fires and a near miss that stays silent (add them under `tests`)",
            3,
        ),
        (
            "only_hit.yaml",
            format!("id: T-2\n{HEAD}where: \"amount > 1\"\nmessage: m\ntests:\n  - {{name: fires, transactions: [{{amount: \"2.00\"}}], hits: [T1]}}\n"),
            "only_hit.yaml:11:1: rule T-2: field `tests`: the rule needs a near miss that stays silent",
            3,
        ),
        (
            "unused_param.yaml",
            format!("id: T-3\n{HEAD}params: {{limit: 5}}\nwhere: \"amount > 1\"\nmessage: m\n{CASES}"),
            "unused_param.yaml:9:1: rule T-3: field `params.limit`: parameter `limit` is not used by any condition",
            3,
        ),
        (
            "unknown_column.yaml",
            format!("id: T-4\n{HEAD}where: \"amont > 1\"\nmessage: m\n{CASES}"),
            "unknown_column.yaml:9:1: rule T-4: field `where`: unknown column `amont`",
            3,
        ),
        (
            "placeholder.yaml",
            format!("id: T-5\n{HEAD}where: \"amount > 1\"\nmessage: \"m {{nothing}}\"\n{CASES}"),
            "warning: placeholder.yaml:10:1: rule T-5: field `message`: placeholder `{nothing}` is never filled",
            0,
        ),
        (
            "fraction.yaml",
            format!("id: T-8\n{HEAD}where: \"amount >= 0.95 * 500 AND mcc <> '0.5'\"\nmessage: m\n{CASES}"),
            "warning: fraction.yaml:9:1: rule T-8: field `where`: `0.95` written in the SQL is a float",
            0,
        ),
        (
            "no_basis.yaml",
            format!("id: T-6\ntitle: t\ntitle_zh: 测试\nmessage_zh: m\nfamily: transaction_limits\nseverity: low\nsource: transactions\nwhere: \"amount > 1\"\nmessage: m\n{CASES}"),
            "warning: no_basis.yaml:1:1: rule T-6: field `id`: no `basis`: findings will not say why they matter",
            0,
        ),
    ];
    let cases = cases.into_iter().chain([(
        "no_chinese.yaml",
        format!(
            "id: T-7\n{}where: \"amount > 1\"\nmessage: m\n{CASES}",
            HEAD.replace("title_zh: 测试\n", "")
        ),
        "no_chinese.yaml:2:1: rule T-7: field `title`: the rule needs `title_zh`: its Chinese text",
        3,
    )]);
    for (file, body, expected, code) in cases {
        let pack = pack_with(&[(file, body)]);
        let o = posaudit(&["rules", "check", pack.path().to_str().unwrap()]);
        let err = text(&o.stderr).replace(&format!("{}/", pack.path().display()), "");
        assert_eq!(o.status.code(), Some(code), "{file}: {err}");
        assert!(err.contains(expected), "{file}: expected `{expected}` in:\n{err}");
        if code == 0 {
            // --strict turns the warning into a failure.
            let o = posaudit(&["rules", "check", "--strict", pack.path().to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(3), "{file} --strict");
        }
    }
}

#[test]
fn rules_check_names_a_missing_or_malformed_reference_table() {
    let pack = pack_with(&[("ok.yaml", format!("id: T-1\n{HEAD}where: \"amount > 1\"\nmessage: m\n{CASES}"))]);
    std::fs::write(
        pack.path().join("reference/mcc.csv"),
        "mcc,description,fee_class\n5812,x,standard\n",
    )
    .unwrap();
    let o = posaudit(&["rules", "check", pack.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("mcc.csv: reference table: column `daytime` is missing"),
        "{}",
        text(&o.stderr)
    );
    // With errors, the SARIF carries them at the rule file's line.
    let tmp = tempfile::tempdir().unwrap();
    let bad = pack_with(&[("bad.yaml", format!("id: T-2\n{HEAD}where: \"amont > 1\"\nmessage: m\n{CASES}"))]);
    let sarif = tmp.path().join("lint.sarif");
    let o = posaudit(&[
        "rules",
        "check",
        bad.path().to_str().unwrap(),
        "--output",
        &format!("sarif={}", sarif.display()),
    ]);
    assert_eq!(o.status.code(), Some(3));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif_errors(&doc), Vec::<String>::new());
    let r = &doc["runs"][0]["results"][0];
    assert_eq!(r["level"], "error");
    assert_eq!(r["locations"][0]["physicalLocation"]["region"]["startLine"], 9);
    assert!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("bad.yaml"));
}

#[test]
fn one_scan_writes_jsonl_sarif_and_junit_together_and_the_sarif_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let (sarif, junit, out) = (
        tmp.path().join("ci/findings.sarif"),
        tmp.path().join("ci/junit.xml"),
        tmp.path().join("out"),
    );
    let o = posaudit(&[
        "scan",
        "fixtures/demo",
        "--as-of",
        "2026-11-20",
        "--out",
        out.to_str().unwrap(),
        "--output",
        &format!("sarif={}", sarif.display()),
        "--output",
        &format!("junit={}", junit.display()),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let lines = std::fs::read_to_string(out.join("findings.jsonl")).unwrap().lines().count();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(sarif_errors(&doc), Vec::<String>::new());
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), lines);
    let rules = doc["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 74);
    // Every result points at its rule, its input file and line, and carries the fingerprint.
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert_eq!(r["partialFingerprints"]["posaudit/v1"].as_str().unwrap().len(), 32);
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].as_str().unwrap().starts_with("fixtures/demo/"));
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 2);
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 74);
    assert!(xml.contains(r#"<testcase name="SUS-2Q-01" classname="scan""#), "{xml}");
    assert!(xml.contains("findings at or above high"));
}

#[test]
fn rules_test_writes_one_junit_case_per_rule_case() {
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("rules.xml");
    let o = posaudit(&["rules", "test", "--output", &format!("junit={}", junit.display())]);
    assert_eq!(o.status.code(), Some(0));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = text(&o.stdout).lines().filter(|l| l.starts_with("PASS ")).count();
    assert_eq!(xml.matches("<testcase ").count(), cases);
    assert!(
        xml.contains(r#"<testcase name="three payments of 200 in a day" classname="rules.LIM-QR-01"/>"#),
        "{xml}"
    );
    // A folder without rules is invalid rules: a gate that checks nothing.
    let empty = tempfile::tempdir().unwrap();
    copy_dir(&root().join("rules/reference"), &empty.path().join("reference"));
    let o = posaudit(&["rules", "test", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no rule files"), "{}", text(&o.stderr));
    // Rules without cases fail unless allowed.
    std::fs::write(
        empty.path().join("r.yaml"),
        "id: SUS-T-01\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nbasis: {text: t}\nsource: transactions\nwhere: amount > 1\nmessage: \"{txn_id}\"\n",
    )
    .unwrap();
    let o = posaudit(&["rules", "test", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let o = posaudit(&["rules", "test", empty.path().to_str().unwrap(), "--allow-empty"]);
    assert_eq!(o.status.code(), Some(0));
}

fn diff_json(args: &[&str], cwd: &Path) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("diff.json");
    let mut all: Vec<&str> = args.to_vec();
    let j = json.display().to_string();
    all.extend(["--json", &j]);
    let o = run(&all, cwd);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn rules_diff_reports_exactly_the_findings_a_threshold_change_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("rules");
    copy_dir(&root().join("rules"), &new);
    let loc = new.join("suspicious_patterns/SUS-LOC-03.yaml");
    std::fs::write(&loc, std::fs::read_to_string(&loc).unwrap().replace("max_km: 5", "max_km: 50")).unwrap();

    // The base run's SUS-LOC-03 findings are exactly what the change removes.
    let out = tmp.path().join("base-scan");
    posaudit(&["scan", "fixtures/demo", "--as-of", "2026-11-20", "--out", out.to_str().unwrap()]);
    let base_loc: BTreeSet<String> = std::fs::read_to_string(out.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|f| f["rule_id"] == "SUS-LOC-03")
        .map(|f| f["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert!(!base_loc.is_empty());

    let diff_args = [
        "rules",
        "diff",
        "--base",
        "rules",
        "--rules",
        new.to_str().unwrap(),
        "fixtures/demo",
        "--as-of",
        "2026-11-20",
    ];
    let d = diff_json(&diff_args, &root());
    assert_eq!(d["added"], 0);
    assert_eq!(d["removed"].as_u64().unwrap() as usize, base_loc.len());
    for r in d["rules"].as_array().unwrap() {
        if r["rule_id"] == "SUS-LOC-03" {
            assert_eq!(r["change"], "changed");
            let removed: BTreeSet<String> = r["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["fingerprint"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(removed, base_loc);
            assert_eq!(r["new_findings"], 0);
        } else {
            assert_eq!(r["change"], "unchanged", "{r}");
            assert_eq!(
                r["added"].as_array().unwrap().len() + r["removed"].as_array().unwrap().len(),
                0,
                "{r}"
            );
        }
    }
    // The Markdown for the pull request names the rule and the counts.
    let o = posaudit(&diff_args);
    let md = text(&o.stdout);
    assert!(
        md.contains(&format!(
            "| SUS-LOC-03 | changed | {} | 0 | 0 | {} | 0 |",
            base_loc.len(),
            base_loc.len()
        )),
        "{md}"
    );
}

#[test]
fn rules_diff_takes_the_base_from_a_git_revision() {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(&root().join("rules"), &repo.path().join("rules"));
    let git = |args: &[&str]| {
        let o = Command::new("git").args(args).current_dir(repo.path()).output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
    };
    git(&["init", "-q"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "add", "rules"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "pack"]);
    let qr = repo.path().join("rules/transaction_limits/LIM-QR-01.yaml");
    std::fs::write(
        &qr,
        std::fs::read_to_string(&qr)
            .unwrap()
            .replace("daily_limit: 500", "daily_limit: 700"),
    )
    .unwrap();
    let demo = root().join("fixtures/demo");
    let d = diff_json(
        &["rules", "diff", "--base", "HEAD", demo.to_str().unwrap(), "--as-of", "2026-11-20"],
        repo.path(),
    );
    assert_eq!(d["base"], "git:HEAD");
    let qr = d["rules"].as_array().unwrap().iter().find(|r| r["rule_id"] == "LIM-QR-01").unwrap();
    assert_eq!(qr["change"], "changed");
    assert_eq!(qr["removed"].as_array().unwrap().len(), 1, "{qr}");
    assert_eq!(d["removed"], 1);
    assert_eq!(d["added"], 0);
}
