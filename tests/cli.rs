//! End-to-end tests: the real binary on real files.

mod common;
use common::copy_dir;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use posaudit_gen::{generate, GenFormat, GenOptions, Plant};
use serde_json::Value;

const AS_OF: &str = "2026-11-20";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn posaudit(args: &[&str]) -> Output {
    common::posaudit_command()
        .args(args)
        .current_dir(root())
        .output()
        .expect("run posaudit")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn scan(dir: &Path, out: &Path, extra: &[&str]) -> Output {
    scan_env(dir, out, &[], extra)
}

/// `scan` with environment variables set for the run.
fn scan_env(dir: &Path, out: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut args = vec!["scan", dir.to_str().unwrap(), "--as-of", AS_OF, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::posaudit_command()
        .args(&args)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("run posaudit")
}

fn findings(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("findings.jsonl"))
        .expect("findings.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn by_rule(fs: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in fs {
        *m.entry(f["rule_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    m
}

fn gen_opts(out: &Path, violations: f64) -> GenOptions {
    GenOptions {
        merchants: 120,
        days: 14,
        txns_per_day: 600,
        seed: 42,
        out: out.to_path_buf(),
        format: GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: violations,
        bad_rows: true,
        lookalikes: false,
    }
}

/// Merchants a finding is about: its merchant, or those in its evidence.
fn merchants_of(f: &Value) -> Vec<String> {
    match f["merchant_id"].as_str() {
        Some(m) => vec![m.to_string()],
        None => f["evidence"]["merchant_ids"]
            .as_str()
            .unwrap_or("")
            .split(';')
            .map(str::to_string)
            .collect(),
    }
}

/// For each rule: the merchants that should have its findings, from the
/// generator's plant table, against those that do. Clean merchants have none.
fn check_planted(seed: u64, lookalikes: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut opts = gen_opts(&data, 0.5);
    opts.seed = seed;
    opts.lookalikes = lookalikes;
    // More violators than plants, so that every plant is planted.
    opts.merchants = 2 * Plant::ALL.len() + 20;
    let summary = generate(&opts).unwrap();
    let kinds: BTreeSet<String> = summary.planted.iter().map(|(_, p)| format!("{p:?}")).collect();
    assert_eq!(kinds.len(), Plant::ALL.len(), "seed {seed}: every plant is planted");
    let out = tmp.path().join("out");
    let o = scan(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let fs = findings(&out);

    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, p) in &summary.planted {
        for r in p.rules() {
            expected.entry(r.to_string()).or_default().insert(m.clone());
        }
    }
    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &fs {
        actual
            .entry(f["rule_id"].as_str().unwrap().to_string())
            .or_default()
            .extend(merchants_of(f));
    }
    for rule in expected.keys().chain(actual.keys()).collect::<BTreeSet<_>>() {
        assert_eq!(
            actual.get(rule),
            expected.get(rule),
            "seed {seed}, rule {rule}: merchants with findings vs planted"
        );
    }
    let planted: BTreeSet<&String> = summary.planted.iter().map(|(m, _)| m).collect();
    for f in &fs {
        for m in merchants_of(f) {
            assert!(planted.contains(&m), "seed {seed}: clean merchant {m} has a finding: {f}");
        }
    }
}

#[test]
fn every_planted_violation_is_found_on_exactly_its_merchants_and_clean_merchants_have_none() {
    let rules = posaudit::app::pack::load_pack(&[root().join("rules")]).into_result().unwrap();
    // Fires only with a cap the acquirer sets (the shipped table has none);
    // its own cases test it with a table of their own.
    let needs_acquirer_table = ["LIM-MICRO-03"];
    for lr in rules.rules.iter().filter(|lr| !needs_acquirer_table.contains(&lr.rule.id.as_str())) {
        assert!(
            Plant::ALL.iter().any(|p| p.rules().contains(&lr.rule.id.as_str())),
            "no plant for {}",
            lr.rule.id
        );
    }
    for seed in [42, 7, 2026] {
        check_planted(seed, false);
    }
    // And on a background with honest look-alikes, where clean merchants
    // still have no finding.
    for seed in [11, 2027] {
        check_planted(seed, true);
    }
}

#[test]
fn demo_scan_gives_exact_findings_rejections_and_reconciled_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = scan(&root().join("fixtures/demo"), &out, &["--format", "jsonl,csv,parquet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // polars prints deprecation notices on stderr; an officer should never
    // see one (a members filter once printed 18 per scan).
    assert!(!stderr(&o).to_lowercase().contains("deprecat"), "{}", stderr(&o));
    let fs = findings(&out);
    // Every rule of the pack the demo was made for fires but DOC-XW-02
    // (below); counts follow the plant table (three plants repeat,
    // some plants hit several transactions).
    let expected: BTreeMap<String, usize> = [
        ("DOC-DOCS-01", 1),
        ("DOC-FEE-01", 1),
        ("DOC-ID-01", 1),
        ("DOC-ID-02", 1),
        ("DOC-ID-03", 1),
        ("DOC-ID-04", 1),
        ("DOC-ID-05", 1),
        ("DOC-ID-06", 1),
        ("DOC-ID-07", 1),
        ("DOC-LIC-01", 2),
        ("DOC-LIC-02", 1),
        // Added after the demo: the generator of then named an individual
        // business's corporate account 有限公司 where its licence says 店,
        // and gave extras the planted merchant's account name.
        ("DOC-LIC-03", 17),
        ("DOC-MCC-01", 1),
        // Added after the demo: the generator of then changed four planted
        // merchants' MCC (unknown code, night trading, MCC jumping) without
        // issuing them a number for it.
        ("DOC-MID-01", 4),
        // Added after the demo: the generator of then gave the extra
        // merchants of three plants (shared account, shared terminal, card
        // hopper) the contact mobile of the planted one, under other people.
        ("DOC-PHONE-01", 3),
        ("DOC-PROC-01", 1),
        ("DOC-PROC-02", 1),
        ("DOC-PROC-03", 1),
        ("DOC-STL-01", 1),
        ("DOC-STL-02", 1),
        ("DOC-STL-03", 1),
        ("DOC-STL-04", 1),
        ("DOC-TERM-01", 1),
        ("DOC-USCC-01", 2),
        ("DOC-USCC-02", 2),
        ("DOC-XW-01", 1),
        // DOC-XW-02 no longer fires here: the demo's five merchants of one
        // person share one MCC, which the rule now takes for a chain.
        ("FEE-ADD-01", 1),
        ("FEE-CAP-01", 1),
        ("FEE-CHG-01", 1),
        // Added after the demo: its short-notice change is a 0.08 point rise.
        ("FEE-CHG-02", 1),
        ("FEE-DEP-01", 1),
        ("FEE-DEP-02", 1),
        ("FEE-OPT-01", 1),
        ("FEE-REC-01", 7),
        ("FEE-SIM-01", 1),
        ("FEE-SIM-02", 1),
        ("FEE-SIM-03", 1),
        ("LIM-AML-01", 1),
        ("LIM-MICRO-01", 1),
        ("LIM-MICRO-02", 1),
        ("LIM-QR-01", 1),
        ("LIM-TERM-01", 1),
        ("LIM-VOL-01", 2),
        ("SUS-2Q-01", 2),
        ("SUS-CARD-01", 1),
        ("SUS-CASH-01", 1),
        // Rules added after the demo, on its plants: the static-QR payer's
        // three equal payments, and the split purchases' burst.
        ("SUS-CASH-02", 1),
        // 1, not 2 since the volume floor: the demo's credit-share plant
        // put 2,000 yuan of credit on a quiet merchant.
        ("SUS-CASH-03", 1),
        // The round-amount cash-out merchant's 8,000 credit tickets, far
        // above the usual ticket of its MCC (a rule added after the demo).
        ("SUS-CASH-04", 1),
        ("SUS-DORM-01", 1),
        ("SUS-DUP-01", 1),
        ("SUS-LOC-01", 2),
        ("SUS-LOC-02", 2),
        ("SUS-LOC-03", 2),
        ("SUS-MCC-01", 6),
        ("SUS-MCC-02", 3),
        ("SUS-NEW-01", 1),
        ("SUS-REF-01", 1),
        ("SUS-REF-02", 2),
        ("SUS-SPLIT-01", 1),
        ("SUS-TIME-01", 1),
        ("SUS-TIME-02", 1),
        ("SUS-UNDER-01", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_rule(&fs), expected);
    let families: BTreeSet<&str> = fs.iter().map(|f| f["family"].as_str().unwrap()).collect();
    assert_eq!(families.len(), 4, "{families:?}");

    // A split-transaction finding names its three transactions and explains itself.
    let split = fs.iter().find(|f| f["rule_id"] == "SUS-SPLIT-01").unwrap();
    assert_eq!(split["txn_ids"].as_array().unwrap().len(), 3);
    assert_eq!(split["evidence"]["count"], "3");
    assert!(split["message"].as_str().unwrap().contains("3 credit purchases"), "{split}");
    assert!(split["source"]["file"].as_str().unwrap().ends_with(".csv"));

    // The fee finding shows the contract's fee next to the charged one, exactly.
    let fee = fs
        .iter()
        .find(|f| f["rule_id"] == "FEE-REC-01" && f["evidence"]["card_type"] == "credit")
        .unwrap();
    let ev = &fee["evidence"];
    let charged: f64 = ev["fee"].as_str().unwrap().parse().unwrap();
    let expected_fee: f64 = ev["expected_fee"].as_str().unwrap().parse().unwrap();
    assert!(charged - expected_fee > 3.0, "{fee}");
    assert_eq!(ev["contract_rate_applied"], "0.006");

    // Rejected rows: file, line, column and reason.
    let rejected = std::fs::read_to_string(out.join("rejected.csv")).unwrap();
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines[0], "input,file,line,column,value,reason");
    assert_eq!(lines.len(), 4, "{rejected}");
    assert!(
        lines[1].contains("2026-10-14.csv,606,amount,-50.00,`-50.00` is negative"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(",607,txn_time,2026-02-30 10:00:00,"), "{}", lines[2]);
    assert!(lines[3].contains(",608,txn_type,cashback,"), "{}", lines[3]);

    // Counts reconcile per file and per input, in the manifest and the summary.
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for f in m["inputs"].as_array().unwrap() {
        let (r, a, j) = (
            f["rows_read"].as_u64().unwrap(),
            f["rows_accepted"].as_u64().unwrap(),
            f["rows_rejected"].as_u64().unwrap(),
        );
        assert_eq!(r, a + j, "{f}");
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
    }
    let t = &m["totals"]["transactions"];
    assert_eq!(t["rows_rejected"], 3);
    assert_eq!(t["rows_read"].as_u64().unwrap(), t["rows_accepted"].as_u64().unwrap() + 3);
    assert_eq!(m["as_of"], AS_OF);
    assert_eq!(m["findings"]["total"].as_u64().unwrap() as usize, fs.len());
    assert_eq!(m["rules"]["digest"].as_str().unwrap().len(), 64);
    assert_eq!(m["exit_code"], 1);
    assert!(
        stdout(&o).contains("8590 rows read =       8587 accepted +      3 rejected"),
        "{}",
        stdout(&o)
    );

    // CSV and Parquet carry the same findings.
    let csv_rows = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    assert_eq!(csv::Reader::from_reader(csv_rows.as_bytes()).records().count(), fs.len());
    assert!(std::fs::metadata(out.join("findings.parquet")).unwrap().len() > 0);
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn reruns_are_byte_identical_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let demo = root().join("fixtures/demo");
    scan(&demo, &a, &["--format", "jsonl,csv,parquet", "--threads", "1"]);
    scan(&demo, &b, &["--format", "jsonl,csv,parquet", "--threads", "2"]);
    for f in ["findings.jsonl", "findings.csv", "findings.parquet", "rejected.csv"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
}

#[test]
fn card_and_id_numbers_never_appear_unmasked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let demo = root().join("fixtures/demo");
    let o = scan(&demo, &out, &["--format", "jsonl,csv"]);
    let mut secrets = BTreeSet::new();
    let mut apps = csv::Reader::from_path(demo.join("applications.csv")).unwrap();
    let h = apps.headers().unwrap().clone();
    let (id_col, acct_col) = (
        h.iter().position(|c| c == "legal_rep_id_number").unwrap(),
        h.iter().position(|c| c == "settlement_account_number").unwrap(),
    );
    for r in apps.records() {
        let r = r.unwrap();
        secrets.insert(r[id_col].to_string());
        secrets.insert(r[acct_col].to_string());
    }
    for day in std::fs::read_dir(demo.join("transactions")).unwrap() {
        let mut rdr = csv::Reader::from_path(day.unwrap().path()).unwrap();
        for r in rdr.records().flatten() {
            if let Some(acct) = r.get(18).filter(|a| a.len() >= 12) {
                secrets.insert(acct.to_string());
            }
        }
    }
    let mut texts = vec![stdout(&o)];
    for f in ["findings.jsonl", "findings.csv", "rejected.csv", "manifest.json"] {
        texts.push(std::fs::read_to_string(out.join(f)).unwrap());
    }
    for s in &secrets {
        for t in &texts {
            assert!(!t.contains(s.as_str()), "unmasked {s} in output");
        }
    }
    // And the masked forms are there, so the check above is not vacuous.
    let all = texts.join("\n");
    assert!(all.contains("**********"), "masked ID numbers expected");
    assert!(all.contains("******"), "masked card numbers expected");
}

fn write_rule(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

const GOOD_HEAD: &str = "title: t\nfamily: transaction_limits\nseverity: low\nbasis: {text: x}\nsource: transactions\n";

fn bad_rules_message(file: &str, body: &str) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(tmp.path(), file, body);
    let out = tmp.path().join("out");
    let o = posaudit(&[
        "scan",
        "fixtures/demo",
        "--rules",
        tmp.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!out.join("findings.jsonl").exists(), "no data is scanned with invalid rules");
    let err = stderr(&o).replace(tmp.path().to_str().unwrap(), "RULES");
    (o.status.code(), err)
}

#[test]
fn each_kind_of_bad_rule_is_named_with_file_line_rule_and_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown_key.yaml",
            format!("id: T-1\n{GOOD_HEAD}wher: \"amount > 1\"\nmessage: m\n"),
            "RULES/unknown_key.yaml:7:1: rule T-1: field `wher`: unknown field `wher`, expected one of",
        ),
        (
            "unknown_column.yaml",
            format!("id: T-2\n{GOOD_HEAD}where: \"amout > 1\"\nmessage: m\n"),
            "RULES/unknown_column.yaml:7:1: rule T-2: field `where`: unknown column `amout`",
        ),
        (
            "bad_sql.yaml",
            format!("id: T-3\n{GOOD_HEAD}where: \"amount >> AND 1\"\nmessage: m\n"),
            "RULES/bad_sql.yaml:7:1: rule T-3: field `where`: SQL does not parse",
        ),
        (
            "bad_having.yaml",
            format!("id: T-4\n{GOOD_HEAD}group_by: [merchant_id]\nhaving: \"SUM(amunt) > 5\"\nmessage: m\n"),
            "RULES/bad_having.yaml:8:1: rule T-4: field `having`: unknown column `amunt`",
        ),
        (
            "bad_value.yaml",
            "id: T-5\ntitle: t\nfamily: transaction_limits\nseverity: urgent\nbasis: {text: x}\nsource: transactions\nmessage: m\n"
                .to_string(),
            "RULES/bad_value.yaml:4:11: rule T-5: field `severity`: unknown variant `urgent`",
        ),
        (
            "syntax.yaml",
            "id: T-6\ntitle: [unclosed\n".to_string(),
            "RULES/syntax.yaml:3:1: YAML syntax:",
        ),
        (
            "unused_param.yaml",
            format!("id: T-7\n{GOOD_HEAD}params:\n  limit: 5\nwhere: \"amount > 1\"\nmessage: m\n"),
            "RULES/unused_param.yaml:7:1: rule T-7: field `params.limit`: parameter `limit` is not used by any condition",
        ),
        (
            "bad_window.yaml",
            format!("id: T-8\n{GOOD_HEAD}group_by: [merchant_id]\nwindow: 2w\nmessage: m\n"),
            "RULES/bad_window.yaml:8:1: rule T-8: field `window`: `2w` is not a calendar window",
        ),
    ];
    for (file, body, expected) in cases {
        let (code, err) = bad_rules_message(file, &body);
        assert_eq!(code, Some(3), "{file}: {err}");
        assert!(err.contains(expected), "{file}: expected `{expected}` in:\n{err}");
    }
}

#[test]
fn duplicate_rule_ids_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let body = format!("id: T-DUP\n{GOOD_HEAD}message: m\n");
    write_rule(tmp.path(), "a.yaml", &body);
    write_rule(tmp.path(), "b.yaml", &body);
    let o = posaudit(&["rules", "check", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("b.yaml:1:1: rule T-DUP: field `id`: duplicate rule id (first defined in"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_required_column_stops_before_any_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&gen_opts(&data, 0.0)).unwrap();
    let apps = std::fs::read_to_string(data.join("applications.csv")).unwrap();
    std::fs::write(data.join("applications.csv"), apps.replacen("merchant_type", "merchant_kind", 1)).unwrap();
    let out = tmp.path().join("out");
    let o = scan(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("applications.csv: required column `merchant_type` of the applications input is missing"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join("findings.jsonl").exists());
}

#[test]
fn missing_input_and_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let o = scan(tmp.path(), &tmp.path().join("out"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no applications input"), "{}", stderr(&o));
    let o = posaudit(&["scan", "fixtures/demo", "--as-of", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    let o = posaudit(&["scan", "fixtures/demo", "--fail-on", "urgent"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn fail_on_sets_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    assert_eq!(
        scan(&demo, &tmp.path().join("a"), &["--fail-on", "critical"]).status.code(),
        Some(1)
    );
    assert_eq!(scan(&demo, &tmp.path().join("b"), &["--fail-on", "never"]).status.code(), Some(0));
    // Clean data: exit 0 at the default threshold, and no findings at all.
    let data = tmp.path().join("clean");
    let mut opts = gen_opts(&data, 0.0);
    opts.bad_rows = false;
    generate(&opts).unwrap();
    let out = tmp.path().join("c");
    let o = scan(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(findings(&out).is_empty(), "{:?}", by_rule(&findings(&out)));
}

#[test]
fn rules_needing_an_absent_optional_input_are_skipped_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&gen_opts(&data, 0.5)).unwrap();
    std::fs::remove_file(data.join("fees.csv")).unwrap();
    let out = tmp.path().join("out");
    let o = scan(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FEE-SIM-01     skipped: needs the fees input, which was not given"),
        "{}",
        stdout(&o)
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let run = m["rule_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "FEE-SIM-01")
        .unwrap();
    assert_eq!(run["status"], "skipped");
}

/// A real-world export: Chinese headers, amounts in fen, compact times,
/// `|` delimiter, GBK encoding. Through a mapping it gives the same
/// findings as the canonical files.
#[test]
fn mapped_gbk_export_gives_the_same_findings_as_canonical_input() {
    let tmp = tempfile::tempdir().unwrap();
    let canon = tmp.path().join("canon");
    let mut opts = gen_opts(&canon, 0.4);
    opts.bad_rows = false;
    generate(&opts).unwrap();
    let mapped = tmp.path().join("mapped");
    std::fs::create_dir_all(mapped.join("transactions")).unwrap();
    for f in ["applications.csv", "fees.csv", "fee_changes.csv"] {
        std::fs::copy(canon.join(f), mapped.join(f)).unwrap();
    }
    let headers = [
        ("txn_id", "交易流水号"),
        ("merchant_id", "商户编号"),
        ("txn_time", "交易时间"),
        ("amount", "交易金额(分)"),
        ("fee", "手续费(分)"),
    ];
    for day in std::fs::read_dir(canon.join("transactions")).unwrap() {
        let path = day.unwrap().path();
        let mut rdr = csv::Reader::from_path(&path).unwrap();
        let h: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
        let mut out = String::new();
        let renamed: Vec<String> = h
            .iter()
            .map(|c| {
                headers
                    .iter()
                    .find(|(a, _)| a == c)
                    .map(|(_, b)| b.to_string())
                    .unwrap_or(c.clone())
            })
            .collect();
        out.push_str(&renamed.join("|"));
        out.push('\n');
        for r in rdr.records() {
            let r = r.unwrap();
            let fields: Vec<String> = h
                .iter()
                .zip(r.iter())
                .map(|(c, v)| match c.as_str() {
                    "amount" | "fee" => {
                        let (y, f) = v.split_once('.').unwrap();
                        (y.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()).to_string()
                    }
                    "txn_time" => v.replace(['-', ' ', ':'], ""),
                    _ => v.to_string(),
                })
                .collect();
            out.push_str(&fields.join("|"));
            out.push('\n');
        }
        let (gbk, _, _) = encoding_rs::GBK.encode(&out);
        std::fs::write(mapped.join("transactions").join(path.file_name().unwrap()), gbk).unwrap();
    }
    std::fs::write(
        mapped.join("mapping.yaml"),
        "transactions:\n  encoding: gbk\n  delimiter: \"|\"\n  amount_unit: fen\n  datetime_format: \"%Y%m%d%H%M%S\"\n  columns:\n    交易流水号: txn_id\n    商户编号: merchant_id\n    交易时间: txn_time\n    交易金额(分): amount\n    手续费(分): fee\n",
    )
    .unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let oa = scan(&canon, &a, &[]);
    let ob = scan(&mapped, &b, &[]);
    assert_eq!(oa.status.code(), ob.status.code(), "{}", stderr(&ob));
    let strip = |fs: Vec<Value>| -> Vec<(String, String, String)> {
        fs.into_iter()
            .map(|f| (f["fingerprint"].to_string(), f["message"].to_string(), f["evidence"].to_string()))
            .collect()
    };
    let (fa, fb) = (strip(findings(&a)), strip(findings(&b)));
    assert!(!fa.is_empty());
    assert_eq!(fa, fb);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["totals"]["transactions"]["rows_rejected"], 0);
}

#[test]
fn parquet_inputs_give_the_same_findings_as_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, p) = (tmp.path().join("csv"), tmp.path().join("pq"));
    generate(&gen_opts(&c, 0.4)).unwrap();
    let mut opts = gen_opts(&p, 0.4);
    opts.format = GenFormat::Parquet;
    generate(&opts).unwrap();
    assert!(p.join("transactions/2026-10-01.parquet").exists());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    scan(&c, &a, &[]);
    let o = scan(&p, &b, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let fp = |fs: Vec<Value>| -> Vec<String> { fs.iter().map(|f| f["fingerprint"].to_string()).collect() };
    assert_eq!(fp(findings(&a)), fp(findings(&b)));
}

/// The inputs of `from` (contract CSV) rewritten as Parquet of the
/// contract's types (money as decimals, times as datetimes, ...), as
/// `examples/typed_parquet` writes them.
fn typed_parquet(from: &std::path::Path, to: &std::path::Path) {
    use polars::prelude::*;
    use posaudit::input::InputKind;
    let write = |kind: InputKind, csv: &std::path::Path, out: &std::path::Path| {
        let parsed = posaudit::input::read::read_csv_bytes(kind, &std::fs::read(csv).unwrap(), &Default::default()).unwrap();
        let mut df = posaudit::input::typed::contract_frame(parsed.df).unwrap();
        ParquetWriter::new(std::fs::File::create(out).unwrap()).finish(&mut df).unwrap();
    };
    std::fs::create_dir_all(to.join("transactions")).unwrap();
    for kind in [InputKind::Applications, InputKind::Fees, InputKind::FeeChanges] {
        write(
            kind,
            &from.join(format!("{}.csv", kind.name())),
            &to.join(format!("{}.parquet", kind.name())),
        );
    }
    for e in std::fs::read_dir(from.join("transactions")).unwrap() {
        let p = e.unwrap().path();
        write(
            InputKind::Transactions,
            &p,
            &to.join("transactions").join(p.with_extension("parquet").file_name().unwrap()),
        );
    }
}

#[test]
fn typed_parquet_inputs_give_the_same_findings_as_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, p) = (tmp.path().join("csv"), tmp.path().join("typed"));
    generate(&gen_opts(&c, 0.4)).unwrap();
    typed_parquet(&c, &p);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    scan(&c, &a, &[]);
    let o = scan(&p, &b, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Source lines differ (a CSV file has a header row); the rest is equal.
    let meaning = |fs: Vec<Value>| -> Vec<Value> {
        fs.into_iter()
            .map(|mut f| {
                f.as_object_mut().unwrap().remove("source");
                f
            })
            .collect()
    };
    let (fa, fb) = (meaning(findings(&a)), meaning(findings(&b)));
    assert!(!fa.is_empty());
    assert!(fa == fb, "typed Parquet gives other findings than CSV");
    let m = |d: &std::path::Path| -> Value { serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap() };
    // The rows CSV rejects cannot be written as typed values: the rest is
    // accepted alike.
    for input in ["applications", "transactions", "fees", "fee_changes"] {
        assert_eq!(
            m(&a)["totals"][input]["rows_accepted"],
            m(&b)["totals"][input]["rows_accepted"],
            "{input}"
        );
    }
}

#[test]
fn generator_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    generate(&gen_opts(&a, 0.4)).unwrap();
    generate(&gen_opts(&b, 0.4)).unwrap();
    for f in ["applications.csv", "fees.csv", "transactions/2026-10-07.csv"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn rules_list_and_explain_print_from_the_yaml() {
    let o = posaudit(&["rules", "list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("LIM-QR-01      transaction_limits   medium    Static-QR payments by one payer above 500 yuan in a day"),
        "{out}"
    );
    let o = posaudit(&["rules", "explain", "LIM-QR-01"]);
    let out = stdout(&o);
    assert!(out.contains("parameter: daily_limit = 500"), "{out}");
    assert!(out.contains("basis [V]: 条码支付业务规范"), "{out}");
    // What runs: the compiled rule, parameters substituted, window typed.
    assert!(out.contains("having:    SUM(amount) > 500"), "{out}");
    assert!(out.contains("window:    day (calendar, on txn_time)"), "{out}");
    assert!(out.contains("--partitions: by merchant"), "{out}");
    let o = posaudit(&["rules", "explain", "SUS-SPLIT-01"]);
    let out = stdout(&o);
    assert!(out.contains("rolling:   10 minutes ending at each row"), "{out}");
    let o = posaudit(&["rules", "explain", "SUS-CARD-01"]);
    assert!(stdout(&o).contains("--partitions: by card_hash"), "{}", stdout(&o));
    let o = posaudit(&["rules", "explain", "NOPE-01"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn shipped_pack_passes_its_cases_and_every_rule_has_a_hit_and_a_near_miss() {
    let o = posaudit(&["rules", "test"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let pack = posaudit::app::pack::load_pack(&[root().join("rules")]).into_result().unwrap();
    let cases: usize = pack.rules.iter().map(|r| r.rule.tests.len()).sum();
    // The scoring file's cases run too, as `scoring :: ...`.
    let scoring = out.lines().filter(|l| l.starts_with("PASS scoring :: ")).count();
    assert!(scoring >= 9, "{out}");
    assert!(out.ends_with(&format!("{} passed, 0 failed\n", cases + scoring)), "{out}");
    assert!(pack.case_gaps().is_empty(), "{:?}", pack.case_gaps());
    // The four families are all there.
    let families: BTreeSet<_> = pack.rules.iter().map(|r| r.rule.family).collect();
    assert_eq!(families.len(), 4);
}

#[test]
fn a_mutated_pack_fails_the_cases_that_pin_it_with_a_readable_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_dir(&root().join("rules"), &rules);
    let qr = rules.join("transaction_limits/LIM-QR-01.yaml");
    let text = std::fs::read_to_string(&qr).unwrap();
    std::fs::write(&qr, text.replace("daily_limit: 500", "daily_limit: 700")).unwrap();
    let split = rules.join("suspicious_patterns/SUS-SPLIT-01.yaml");
    let text = std::fs::read_to_string(&split).unwrap();
    std::fs::write(&split, text.replace("COUNT(*) >= ${min_count}", "COUNT(*) < ${min_count}")).unwrap();

    let o = posaudit(&["rules", "test", rules.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL LIM-QR-01 :: three payments of 200 in a day"), "{out}");
    assert!(out.contains(r#"expected hits ["M1|P1"], got []; missing ["M1|P1"]"#), "{out}");
    assert!(out.contains("FAIL SUS-SPLIT-01 :: three in twelve minutes"), "{out}");
    assert!(out.contains("unexpected"), "{out}");
    assert!(out.contains("PASS LIM-QR-01 :: the third payment the next day"), "{out}");
    // --filter runs one rule's cases only.
    let o = posaudit(&["rules", "test", rules.to_str().unwrap(), "--filter", "DOC-ID-01"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).ends_with("4 passed, 0 failed\n"), "{}", stdout(&o));
}

#[test]
fn the_rule_catalogue_is_generated_from_the_rules_and_up_to_date() {
    let o = posaudit(&["rules", "doc"]);
    assert_eq!(o.status.code(), Some(0));
    let committed = std::fs::read_to_string(root().join("docs/rules.md")).unwrap();
    assert!(
        stdout(&o) == committed,
        "docs/rules.md is stale: run `cargo run -- rules doc > docs/rules.md`"
    );
    assert!(committed.contains("### SUS-SPLIT-01") && committed.contains("- parameter `min_count` = `3`"));
}

#[test]
fn a_rule_needing_an_absent_optional_column_is_skipped_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Enough violators for every plant, the cross-province one included.
    let mut opts = gen_opts(&data, 0.5);
    opts.merchants = 200;
    generate(&opts).unwrap();
    // Drop the terminal coordinates (lat, lon) from every daily export.
    for day in std::fs::read_dir(data.join("transactions")).unwrap() {
        let path = day.unwrap().path();
        let mut rdr = csv::Reader::from_path(&path).unwrap();
        let h = rdr.headers().unwrap().clone();
        let keep: Vec<usize> = (0..h.len()).filter(|&i| &h[i] != "lat" && &h[i] != "lon").collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(keep.iter().map(|&i| &h[i])).unwrap();
        for r in rdr.records() {
            let r = r.unwrap();
            w.write_record(keep.iter().map(|&i| r.get(i).unwrap_or(""))).unwrap();
        }
        std::fs::write(&path, w.into_inner().unwrap()).unwrap();
    }
    let out = tmp.path().join("out");
    let o = scan(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("SUS-LOC-03     skipped: column `distance_km` is absent from the transactions input (derived: distance from the terminal's install point (needs lat, lon, install_lat, install_lon))"), "{}", stdout(&o));
    assert!(!by_rule(&findings(&out)).contains_key("SUS-LOC-03"));
    // The other location rules do not need coordinates and still run.
    assert!(by_rule(&findings(&out)).contains_key("SUS-LOC-02"));
}

#[test]
fn a_reference_table_in_the_scanned_folder_replaces_the_packs_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&gen_opts(&data, 0.5)).unwrap();
    let out_default = tmp.path().join("a");
    scan(&data, &out_default, &[]);
    let before = by_rule(&findings(&out_default)).get("LIM-TERM-01").copied().unwrap_or(0);
    std::fs::write(
        data.join("terminal_models.csv"),
        "terminal_model,terminal_kind,max_single_txn_amount,has_gps\nLKL-A8,smart_pos,100.00,true\nLKL-V9,traditional_pos,50000.00,true\nLKL-Q5,mpos,20000.00,false\n",
    )
    .unwrap();
    let out = tmp.path().join("b");
    scan(&data, &out, &["--fail-on", "never"]);
    let after = by_rule(&findings(&out)).get("LIM-TERM-01").copied().unwrap_or(0);
    assert!(
        after > before + 10,
        "a 100-yuan limit on LKL-A8 must add findings: {before} -> {after}"
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let t = m["reference_tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "terminal_models.csv")
        .unwrap();
    assert!(t["source"].as_str().unwrap().ends_with("data/terminal_models.csv"), "{t}");
    // A malformed table is an input error that names the table and line.
    std::fs::write(
        data.join("terminal_models.csv"),
        "terminal_model,terminal_kind,max_single_txn_amount,has_gps\nLKL-A8,smart_pos,lots,true\n",
    )
    .unwrap();
    let o = scan(&data, &tmp.path().join("c"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("terminal_models.csv: line 2: `lots` is not a valid max_single_txn_amount"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn partitioned_runs_give_byte_identical_findings_to_the_in_memory_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut opts = gen_opts(&data, 0.5);
    opts.seed = 2026;
    generate(&opts).unwrap();
    for dir in [root().join("fixtures/demo"), data] {
        let whole = tmp.path().join("whole");
        let o = scan(&dir, &whole, &["--format", "jsonl,csv"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        for n in ["2", "5"] {
            let part = tmp.path().join(format!("part{n}"));
            let o = scan(&dir, &part, &["--format", "jsonl,csv", "--partitions", n]);
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            for f in ["findings.jsonl", "findings.csv", "rejected.csv", "cases.jsonl", "cases.csv"] {
                assert!(
                    std::fs::read(whole.join(f)).unwrap() == std::fs::read(part.join(f)).unwrap(),
                    "{f} differs with {n} partitions on {}",
                    dir.display()
                );
            }
            // Many small spill batches, written as files finish parsing on
            // several threads, and partitions evaluated each alone (small
            // partitions are otherwise gathered, as above: these inputs are
            // below one gathering's size) or a few together: the same bytes.
            for min_rows in ["0", "3000"] {
                let batched = tmp.path().join(format!("batched{n}-{min_rows}"));
                let mut args = vec!["scan", dir.to_str().unwrap(), "--as-of", AS_OF, "--out", batched.to_str().unwrap()];
                args.extend(["--format", "jsonl,csv", "--partitions", n, "--threads", "3"]);
                let o = common::posaudit_command()
                    .args(&args)
                    .current_dir(root())
                    .env("POSAUDIT_SPILL_BATCH_ROWS", "700")
                    .env("POSAUDIT_PARTITION_MIN_ROWS", min_rows)
                    .output()
                    .unwrap();
                assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
                for f in ["findings.jsonl", "rejected.csv", "cases.jsonl"] {
                    assert!(
                        std::fs::read(whole.join(f)).unwrap() == std::fs::read(batched.join(f)).unwrap(),
                        "{f} differs with {n} partitions in small batches, min rows {min_rows}, on {}",
                        dir.display()
                    );
                }
            }
            // The spill folder is gone once the run ends.
            let left: Vec<_> = std::fs::read_dir(&part)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            // findings.jsonl and .csv, rejected.csv, cases.jsonl and .csv,
            // manifest.json.
            assert_eq!(left.len(), 6, "{left:?}");
        }
    }
}

#[test]
fn multi_merchant_findings_name_every_merchant_in_every_output() {
    use polars::prelude::*;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = scan(
        &root().join("fixtures/demo"),
        &out,
        &["--format", "jsonl,csv,parquet,sarif,junit", "--fail-on", "low"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let fs = findings(&out);
    // Findings about a card, an account or a person that several merchants share.
    let multi: Vec<&Value> = fs
        .iter()
        .filter(|f| f["merchant_ids"].as_array().is_some_and(|m| m.len() > 1))
        .collect();
    let rules: BTreeSet<&str> = multi.iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    for r in ["SUS-CARD-01", "DOC-STL-04", "DOC-XW-01", "DOC-TERM-01"] {
        assert!(rules.contains(r), "{r} has no multi-merchant finding; rules with one: {rules:?}");
    }
    for f in &fs {
        let ids: Vec<String> = f["merchant_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted, "merchant_ids are sorted and unique");
        if let Some(m) = f["merchant_id"].as_str() {
            assert!(ids.iter().any(|i| i == m), "the primary merchant is among merchant_ids");
        }
        if let Some(e) = f["evidence"]["merchant_ids"].as_str() {
            assert_eq!(ids.join(";"), e, "merchant_ids equal the members' merchants");
        }
    }
    let by_fp: BTreeMap<&str, &Value> = fs.iter().map(|f| (f["fingerprint"].as_str().unwrap(), f)).collect();
    let joined = |fp: &str| {
        by_fp[fp]["merchant_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(";")
    };
    // CSV
    let mut r = csv::Reader::from_path(out.join("findings.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let (fpi, mi) = (
        h.iter().position(|c| c == "fingerprint").unwrap(),
        h.iter().position(|c| c == "merchant_ids").unwrap(),
    );
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(&rec[mi], joined(&rec[fpi]));
        n += 1;
    }
    assert_eq!(n, fs.len());
    // Parquet
    let df = ParquetReader::new(std::fs::File::open(out.join("findings.parquet")).unwrap())
        .finish()
        .unwrap();
    let fpc = df.column("fingerprint").unwrap().str().unwrap().clone();
    let mc = df.column("merchant_ids").unwrap().str().unwrap().clone();
    for i in 0..df.height() {
        assert_eq!(mc.get(i).unwrap_or(""), joined(fpc.get(i).unwrap()));
    }
    // SARIF
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(out.join("findings.sarif")).unwrap()).unwrap();
    for res in sarif["runs"][0]["results"].as_array().unwrap() {
        let fp = res["partialFingerprints"]["posaudit/v1"].as_str().unwrap();
        let ids: Vec<&str> = res["properties"]["merchant_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ids.join(";"), joined(fp));
    }
    // JUnit: each failing rule lists its findings with their merchants.
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    for f in &multi {
        let ids: Vec<&str> = f["merchant_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(
            xml.contains(&format!("[{}]", ids.join(", "))),
            "JUnit lacks the merchants of {}",
            f["fingerprint"]
        );
    }
    // Per-merchant counts count a multi-merchant finding for each merchant.
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for f in &fs {
        for id in f["merchant_ids"].as_array().unwrap() {
            *expected.entry(id.as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    let got: BTreeMap<String, u64> = m["findings"]["by_merchant"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, expected);
    let member = multi[0]["merchant_ids"][1].as_str().unwrap();
    assert!(got[member] >= 1);
}

/// Codes in `mcc:` fields of a YAML text.
fn mcc_codes_in(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"mcc: "?([0-9A-Za-z]+)"?"#).unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

#[test]
fn the_mcc_table_holds_every_code_the_generator_and_the_rule_cases_use() {
    let table = std::fs::read_to_string(root().join("rules/reference/mcc.csv")).unwrap();
    let codes: BTreeSet<&str> = table.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert!(codes.len() > 900, "every ISO 18245 code: {}", codes.len());
    for c in ["5331", "5712", "5813", "5814"] {
        assert!(codes.contains(c), "{c}, a common real code, is missing");
    }
    for (c, _) in posaudit_gen::merchant::MCCS.iter().chain(posaudit_gen::merchant::WIDE_MCCS) {
        assert!(codes.contains(c), "generator code {c}");
    }
    let gen = root().join("crates/posaudit-gen/src");
    let gen_src = std::fs::read_to_string(gen.join("apply.rs")).unwrap() + &std::fs::read_to_string(gen.join("lib.rs")).unwrap();
    let re = regex::Regex::new(r#"mcc = (?:if [^{]*\{ )?"([0-9]{4})""#).unwrap();
    for c in re.captures_iter(&gen_src) {
        // 9999 is the generator's planted invalid code (DOC-MCC-01).
        if &c[1] != "9999" {
            assert!(codes.contains(&c[1]), "planted code {}", &c[1]);
        }
    }
    let mut files = Vec::new();
    for fam in ["document_validity", "transaction_limits", "fee_transparency", "suspicious_patterns"] {
        for e in std::fs::read_dir(root().join("rules").join(fam)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for c in mcc_codes_in(&text) {
            // DOC-MCC-01's firing cases are invalid codes on purpose.
            if f.ends_with("DOC-MCC-01.yaml") && (c == "9999" || c == "58A2") {
                continue;
            }
            assert!(codes.contains(c.as_str()), "{}: code {c} is not in the table", f.display());
        }
    }
}

#[test]
fn a_replacement_mcc_table_lacking_a_valid_code_warns_once_instead_of_flagging_merchants() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&root().join("fixtures/demo"), &data);
    // An acquirer's own table without 5411 (supermarkets) and 5812.
    let table = std::fs::read_to_string(root().join("rules/reference/mcc.csv")).unwrap();
    let own: Vec<&str> = table
        .lines()
        .filter(|l| !l.starts_with("5411,") && !l.starts_with("5812,"))
        .collect();
    std::fs::write(data.join("mcc.csv"), own.join("\n") + "\n").unwrap();
    let out = tmp.path().join("out");
    let o = scan(&data, &out, &["--fail-on", "never"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("the MCC table lacks")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("5411, 5812") && warnings[0].contains("mcc.csv"),
        "{}",
        warnings[0]
    );
    let mcc01 = findings(&out).iter().filter(|f| f["rule_id"] == "DOC-MCC-01").count();
    let base = tempfile::tempdir().unwrap();
    scan(&root().join("fixtures/demo"), base.path(), &["--fail-on", "never"]);
    let mcc01_base = findings(base.path()).iter().filter(|f| f["rule_id"] == "DOC-MCC-01").count();
    assert_eq!(mcc01, mcc01_base, "valid codes missing from the table are not DOC-MCC-01 findings");
}

/// `rules eval` on generated data with its labels; the JSON report.
fn eval_report(data: &Path, labels: &Path, extra: &[&str]) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("eval.json");
    let mut args = vec![
        "rules",
        "eval",
        data.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--as-of",
        AS_OF,
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = posaudit(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("| **overall** |"), "{}", stdout(&o));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn rules_eval_measures_precision_and_recall_per_family_on_fresh_seeds() {
    // Seeds and sizes not used while writing the rules; 2,000+ merchants
    // once; a month of a heavy-tailed 400 (where planted merchants of every
    // size turned up generator defects: see the README).
    for (seed, merchants, per_day, days) in [
        (9101, 150, 700, 20),
        (9202, 150, 700, 20),
        (9303, 150, 700, 20),
        (9404, 150, 700, 20),
        (9505, 150, 700, 20),
        (9606, 2000, 4000, 20),
        (9707, 400, 2500, 30),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut opts = gen_opts(&data, 0.15);
        (opts.seed, opts.merchants, opts.txns_per_day, opts.days) = (seed, merchants, per_day, days);
        // Honest look-alikes in the clean background: many MCCs, night
        // businesses, chains under one legal representative, shoppers.
        opts.lookalikes = true;
        generate(&opts).unwrap();
        let e = eval_report(&data, &data.join("labels.csv"), &[]);
        assert_eq!(e["min_severity"], "medium");
        for fam in e["families"].as_array().unwrap() {
            let (p, r) = (fam["precision"].as_f64(), fam["recall"].as_f64());
            assert!(p.is_none_or(|p| p >= 0.95), "seed {seed}: precision of {}: {fam}", fam["name"]);
            assert!(r.is_none_or(|r| r >= 0.98), "seed {seed}: recall of {}: {fam}", fam["name"]);
            assert_eq!(fam["unlabelled"], 0, "the generator labels every merchant");
        }
        assert!(
            e["overall"]["true_positives"].as_u64().unwrap() > 10,
            "seed {seed}: {}",
            e["overall"]
        );
    }
}

#[test]
fn rules_eval_counts_false_alarms_misses_and_unlabelled_merchants_from_the_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut opts = gen_opts(&data, 0.3);
    opts.seed = 77;
    generate(&opts).unwrap();
    let base = eval_report(&data, &data.join("labels.csv"), &[]);
    let labels = std::fs::read_to_string(data.join("labels.csv")).unwrap();
    let mut lines: Vec<String> = labels.lines().map(str::to_string).collect();
    // An analyst dismisses one confirmed finding (a false alarm), confirms a
    // DOC-ID-01 violation on a clean merchant (a miss), and one clean
    // merchant is left unlabelled.
    let found: BTreeSet<String> = base["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["true_positives"].as_u64().unwrap() > 0 && r["name"] != "DOC-ID-01")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let card = lines
        .iter()
        .position(|l| l.split(',').nth(1).is_some_and(|r| found.contains(r)))
        .expect("a planted violation at medium or above");
    let fields: Vec<String> = lines[card].split(',').map(str::to_string).collect();
    let (card_m, card_rule) = (fields[0].clone(), fields[1].clone());
    lines[card] = format!("{card_m},{card_rule},{},dismissed", fields[2]);
    let clean: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.ends_with(",,,dismissed"))
        .map(|(i, _)| i)
        .collect();
    let missed_m = lines[clean[0]].split(',').next().unwrap().to_string();
    lines[clean[0]] = format!("{missed_m},DOC-ID-01,document_validity,confirmed");
    lines.remove(clean[1]);
    let edited = tmp.path().join("labels.csv");
    std::fs::write(&edited, lines.join("\n") + "\n").unwrap();
    let e = eval_report(&data, &edited, &[]);
    let rule = |e: &Value, id: &str| e["rules"].as_array().unwrap().iter().find(|r| r["name"] == id).unwrap().clone();
    let (c0, c1) = (rule(&base, &card_rule), rule(&e, &card_rule));
    assert_eq!(
        c1["false_positives"].as_u64(),
        Some(c0["false_positives"].as_u64().unwrap() + 1),
        "{c1}"
    );
    assert_eq!(c1["true_positives"].as_u64(), Some(c0["true_positives"].as_u64().unwrap() - 1));
    let (d0, d1) = (rule(&base, "DOC-ID-01"), rule(&e, "DOC-ID-01"));
    assert_eq!(
        d1["false_negatives"].as_u64(),
        Some(d0["false_negatives"].as_u64().unwrap() + 1),
        "{d1}"
    );
    assert!(d1["recall"].as_f64().unwrap() < 1.0);
    // Low-severity rules are left out at the default (medium), and counted with --min-severity low.
    let low = eval_report(&data, &data.join("labels.csv"), &["--min-severity", "low"]);
    assert!(low["rules"].as_array().unwrap().len() > base["rules"].as_array().unwrap().len());
    // A bad labels file names its line.
    std::fs::write(&edited, "merchant_id,rule_id,family,disposition\nM1,,,maybe\n").unwrap();
    let o = posaudit(&[
        "rules",
        "eval",
        data.to_str().unwrap(),
        "--labels",
        edited.to_str().unwrap(),
        "--as-of",
        AS_OF,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("labels.csv:2: disposition `maybe`"), "{}", stderr(&o));
}

#[test]
fn the_catalogue_coverage_names_real_rules_and_every_entry_of_the_research() {
    let text = std::fs::read_to_string(root().join("rules/catalogue.csv")).unwrap();
    let pack = posaudit::app::pack::load_pack(&[root().join("rules")]).into_result().unwrap();
    let ids: BTreeSet<&str> = pack.rules.iter().map(|r| r.rule.id.as_str()).collect();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut entries = BTreeSet::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        assert!(["implemented", "partly", "not implemented"].contains(&&rec[1]), "{rec:?}");
        for rule in rec[2].split_whitespace() {
            // A rule id, or the pack's scoring file (case-level entries).
            assert!(ids.contains(rule) || rule == "scoring.yaml", "{}: no rule {rule}", &rec[0]);
        }
        if &rec[1] == "implemented" {
            assert!(!rec[2].is_empty(), "{} is implemented by which rule?", &rec[0]);
        } else {
            assert!(!rec[3].is_empty(), "{} says nothing about what is missing", &rec[0]);
        }
        entries.insert(rec[0].to_string());
    }
    assert!(entries.len() >= 80, "{}", entries.len());
    // The research's catalogue, where shared/ is beside the clone (as in CI).
    let research = root().join("../shared/domain-research.md");
    if let Ok(md) = std::fs::read_to_string(&research) {
        let re = regex::Regex::new(r"(?m)^\| ((?:DOC|LIM|FEE|SUS)-[A-Z0-9]+-[0-9]+) \|").unwrap();
        for c in re.captures_iter(&md) {
            assert!(entries.contains(&c[1]), "catalogue entry {} is not in rules/catalogue.csv", &c[1]);
        }
    }
}

/// A rule with its own cases, in a pack of its own.
fn one_rule_pack(name: &str, body: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(tmp.path(), name, body);
    tmp
}

#[test]
fn a_window_written_with_spaces_means_the_same_day_window_and_says_so() {
    // Regression: ` 1d` validated, ran as a day window, and labelled its
    // findings `month` with `{day}` left unfilled.
    let pack = one_rule_pack(
        "T-DAY.yaml",
        &format!(
            "id: T-DAY\n{GOOD_HEAD}group_by: [merchant_id]\nwindow: \" 1d\"\nhaving: \"COUNT(*) >= 10\"\nentity: merchant\nmessage: \"{{merchant_id}} had {{count}} payments on {{day}}\"\n"
        ),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = scan(
        &root().join("fixtures/demo"),
        &out,
        &["--rules", pack.path().to_str().unwrap(), "--fail-on", "never"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fs = findings(&out);
    assert!(!fs.is_empty(), "the demo has busy days");
    for f in &fs {
        let day = f["evidence"]["day"].as_str().unwrap_or_else(|| panic!("a day, not a month: {f}"));
        assert_eq!(day.len(), 10, "{f}");
        assert!(f["evidence"].get("month").is_none(), "{f}");
        assert!(f["message"].as_str().unwrap().ends_with(day), "{f}");
    }
}

#[test]
fn an_aggregate_over_a_whole_input_runs_under_partitions_too() {
    // Regression: a grouped transactions rule without `group_by` was split
    // as `Whole`, loaded only the applications under `--partitions`, and
    // was skipped there without a word.
    let pack = one_rule_pack(
        "T-ALL.yaml",
        &format!(
            "id: T-ALL\n{GOOD_HEAD}where: \"txn_type = 'refund'\"\nwindow: 1d\nhaving: \"COUNT(*) >= 2\"\nmessage: \"{{count}} refunds on {{day}}\"\n\
             tests:\n  - name: two refunds in a day at two merchants\n    applications: [{{}}, {{merchant_id: M2, application_id: A2, terminal_sn: SN2}}]\n    transactions:\n      - {{txn_id: T1, txn_type: purchase}}\n      - {{txn_id: T2, txn_type: refund, original_txn_id: T1, amount: \"10.00\"}}\n      - {{txn_id: T3, merchant_id: M2, terminal_sn: SN2, txn_type: purchase}}\n      - {{txn_id: T4, merchant_id: M2, terminal_sn: SN2, txn_type: refund, original_txn_id: T3, amount: \"10.00\"}}\n    hits: [\"\"]\n  - name: one refund\n    transactions:\n      - {{txn_id: T1, txn_type: purchase}}\n      - {{txn_id: T2, txn_type: refund, original_txn_id: T1, amount: \"10.00\"}}\n    hits: []\n"
        ),
    );
    // Its cases run in memory and in 2 and 5 partitions, and must agree.
    let o = posaudit(&["rules", "test", pack.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let tmp = tempfile::tempdir().unwrap();
    let memory = tmp.path().join("memory");
    let parted = tmp.path().join("parted");
    let rules = pack.path().to_str().unwrap();
    scan(&root().join("fixtures/demo"), &memory, &["--rules", rules, "--fail-on", "never"]);
    let o = scan(
        &root().join("fixtures/demo"),
        &parted,
        &["--rules", rules, "--fail-on", "never", "--partitions", "4"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let a = std::fs::read_to_string(memory.join("findings.jsonl")).unwrap();
    let b = std::fs::read_to_string(parted.join("findings.jsonl")).unwrap();
    assert!(!a.is_empty(), "the demo has days with refunds");
    assert_eq!(a, b);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(parted.join("manifest.json")).unwrap()).unwrap();
    assert!(m.to_string().contains("\"ran\""), "{m}");
    assert!(!m.to_string().contains("\"skipped\""), "{m}");
}

#[test]
fn one_big_file_read_in_parts_gives_what_one_piece_gives() {
    // The demo's days in one file, with its three bad rows, read in parts
    // (POSAUDIT_PART_BYTES makes a small file "big"): the same findings,
    // rejected rows (with their line numbers) and file digest as reading
    // it in one piece on one thread. Under --partitions the parts go to
    // the partitions as they are parsed, never held as one frame: the
    // same again, with a window that leaves some rows out.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let demo = root().join("fixtures/demo");
    for f in ["applications.csv", "fees.csv", "fee_changes.csv"] {
        std::fs::copy(demo.join(f), data.join(f)).unwrap();
    }
    let mut days: Vec<_> = std::fs::read_dir(demo.join("transactions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    days.sort();
    let mut all = String::new();
    for (i, d) in days.iter().enumerate() {
        let text = std::fs::read_to_string(d).unwrap();
        let body = if i == 0 {
            text.as_str()
        } else {
            text.split_once('\n').map_or("", |(_, b)| b)
        };
        all.push_str(body);
    }
    std::fs::write(data.join("transactions.csv"), &all).unwrap();
    let run = |threads: &str, name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let o = common::posaudit_command()
            .args([
                "scan",
                data.to_str().unwrap(),
                "--as-of",
                AS_OF,
                "--out",
                out.to_str().unwrap(),
                "--threads",
                threads,
            ])
            .args(extra)
            .env("POSAUDIT_PART_BYTES", "20000")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        out
    };
    let one = run("1", "one", &[]);
    let parts = run("2", "parts", &[]);
    let parted = run("2", "parted", &["--partitions", "3"]);
    for f in ["findings.jsonl", "rejected.csv"] {
        let expected = std::fs::read_to_string(one.join(f)).unwrap();
        assert_eq!(expected, std::fs::read_to_string(parts.join(f)).unwrap(), "{f}");
        assert_eq!(expected, std::fs::read_to_string(parted.join(f)).unwrap(), "{f} under --partitions");
    }
    let counts = |out: &Path| {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        m["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let n = |k: &str| f[k].as_u64().unwrap_or(0);
                (n("rows_read"), n("rows_accepted"), n("rows_rejected"), n("rows_outside_window"))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&one), counts(&parted));
    let windowed = run("1", "windowed", &["--window", "5d"]);
    let windowed_parted = run("2", "windowed-parted", &["--window", "5d", "--partitions", "3"]);
    assert_eq!(counts(&windowed), counts(&windowed_parted));
    assert!(
        counts(&windowed).iter().any(|c| c.3 > 0),
        "the window leaves rows out: {:?}",
        counts(&windowed)
    );
    assert_eq!(
        std::fs::read_to_string(windowed.join("findings.jsonl")).unwrap(),
        std::fs::read_to_string(windowed_parted.join("findings.jsonl")).unwrap()
    );
    let rejected = std::fs::read_to_string(parts.join("rejected.csv")).unwrap();
    assert_eq!(rejected.lines().count(), 4, "{rejected}");
    let digest = |out: &Path| {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        m["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["sha256"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(digest(&one), digest(&parts));
    assert!(all.len() > 20_000 * 4, "the file is cut in several parts");
}

#[test]
fn a_text_function_on_a_categorical_column_finds_what_a_plain_comparison_finds() {
    // Enumerations, merchant and terminal are categoricals while rules
    // run; `UPPER`, `LIKE` and `SUBSTR` need text, and such a rule reads
    // the columns it names as text instead of failing. Two categorical
    // columns compare as they are (one set of categories for all). The
    // grouped rule's evidence shows the value as text.
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    std::fs::create_dir(&pack).unwrap();
    write_rule(&pack, "T-PLAIN.yaml", &format!("id: T-PLAIN\n{GOOD_HEAD}where: \"txn_type = 'refund' AND status = 'approved'\"\nevidence: [txn_type]\nmessage: \"{{txn_id}}\"\n"));
    write_rule(&pack, "T-TEXT.yaml", &format!("id: T-TEXT\n{GOOD_HEAD}where: \"UPPER(txn_type) = 'REFUND' AND status LIKE 'approv%'\"\nevidence: [txn_type]\nmessage: \"{{txn_id}}\"\n"));
    // Every approved refund of the demo is at a merchant whose id starts
    // with 822, on a terminal whose serial is not the merchant's id.
    write_rule(&pack, "T-MID.yaml", &format!("id: T-MID\n{GOOD_HEAD}where: \"txn_type = 'refund' AND status = 'approved' AND SUBSTR(merchant_id, 1, 3) = '822'\"\nevidence: [txn_type]\nmessage: \"{{txn_id}}\"\n"));
    write_rule(&pack, "T-TWO.yaml", &format!("id: T-TWO\n{GOOD_HEAD}where: \"txn_type = 'refund' AND status = 'approved' AND terminal_sn <> merchant_id\"\nevidence: [txn_type]\nmessage: \"{{txn_id}}\"\n"));
    write_rule(&pack, "T-GROUP.yaml", &format!("id: T-GROUP\n{GOOD_HEAD}where: \"txn_type IN ('refund', 'reversal')\"\ngroup_by: [merchant_id, txn_type]\nwindow: 1M\nhaving: \"COUNT(*) >= 1\"\nentity: merchant\nevidence: [txn_type]\nmessage: \"{{merchant_id}} {{txn_type}} {{count}}\"\n"));
    let out = tmp.path().join("out");
    let o = scan(
        &root().join("fixtures/demo"),
        &out,
        &["--rules", pack.to_str().unwrap(), "--fail-on", "never"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fs = findings(&out);
    let messages = |id: &str| -> Vec<String> {
        let mut m: Vec<String> = fs
            .iter()
            .filter(|f| f["rule_id"] == id)
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect();
        m.sort();
        m
    };
    assert!(!messages("T-PLAIN").is_empty(), "the demo has approved refunds");
    assert_eq!(messages("T-TEXT"), messages("T-PLAIN"));
    assert_eq!(messages("T-MID"), messages("T-PLAIN"));
    assert_eq!(messages("T-TWO"), messages("T-PLAIN"));
    let grouped = messages("T-GROUP");
    assert!(!grouped.is_empty());
    assert!(
        grouped.iter().all(|m| m.contains(" refund ") || m.contains(" reversal ")),
        "{grouped:?}"
    );
    for f in fs.iter().filter(|f| f["rule_id"] != "T-GROUP") {
        assert_eq!(f["evidence"]["txn_type"], "refund", "{f}");
    }
    let m = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(!m.contains("\"failed\"") && !m.contains("\"skipped\""), "{m}");
}

#[test]
fn a_scan_too_big_for_the_memory_free_is_warned_before_reading_and_auto_partitions_find_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    // In memory with almost nothing free: the scan runs, warned first.
    let in_memory = tmp.path().join("in-memory");
    let o = scan_env(&demo, &in_memory, &[("POSAUDIT_MEMORY_AVAILABLE", "1M")], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("warning: scanning these inputs in memory takes about") && err.contains("`--partitions auto`"),
        "{err}"
    );
    // Not with --quiet, and not with the memory to spare.
    let o = scan_env(
        &demo,
        &tmp.path().join("quiet"),
        &[("POSAUDIT_MEMORY_AVAILABLE", "1M")],
        &["--quiet"],
    );
    assert!(!stderr(&o).contains("warning:"), "{}", stderr(&o));
    let o = scan_env(&demo, &tmp.path().join("roomy"), &[("POSAUDIT_MEMORY_AVAILABLE", "64G")], &[]);
    assert!(!stderr(&o).contains("warning:"), "{}", stderr(&o));

    // `--partitions auto` with almost nothing free splits the scan, with
    // the findings, cases and rejected rows of the scan in memory.
    let split = tmp.path().join("auto-small");
    let o = scan_env(
        &demo,
        &split,
        &[("POSAUDIT_MEMORY_AVAILABLE", "1M")],
        &["--partitions", "auto", "--verbose"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let chosen = err
        .lines()
        .find_map(|l| {
            l.strip_prefix("--partitions auto: ")?
                .rsplit(": ")
                .next()?
                .strip_suffix(" partitions")?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no partitions chosen: {err}"));
    assert!(chosen >= 2, "{err}");
    assert!(
        err.contains(&format!("({chosen} partitions)")),
        "the scan did not run partitioned: {err}"
    );
    // Where the partitioned run's time went, step by step: the peer pass
    // (the pack has rules with peers) and the merchant pass, once per
    // gathering of partitions.
    for step in [
        "  peer pass: derived columns and joins: ",
        "  peer pass: peer rules' groups: ",
        "  peer statistics: ",
        "  peer pass: spilled rows read back: ",
        "  merchant pass: spilled rows read back: ",
        "  merchant pass: derived columns and joins: ",
        "  merchant pass: rules: ",
    ] {
        assert!(err.contains(step), "no `{step}` line: {err}");
    }
    assert!(!err.contains("warning:"), "{err}");
    for f in ["findings.jsonl", "cases.jsonl", "rejected.csv"] {
        assert_eq!(
            std::fs::read(in_memory.join(f)).unwrap(),
            std::fs::read(split.join(f)).unwrap(),
            "{f} differs between memory and --partitions auto"
        );
    }
    // The manifest says how each run was evaluated.
    let partitions = |dir: &Path| -> u64 {
        let m: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        m["partitions"].as_u64().unwrap()
    };
    assert_eq!(partitions(&in_memory), 1);
    assert_eq!(partitions(&split), chosen as u64);
    // With the memory to spare, auto stays in memory.
    let o = scan_env(
        &demo,
        &tmp.path().join("auto-roomy"),
        &[("POSAUDIT_MEMORY_AVAILABLE", "64G")],
        &["--partitions", "auto", "--verbose"],
    );
    let err = stderr(&o);
    assert!(err.contains("--partitions auto: ") && err.contains(": in memory"), "{err}");
    assert!(!err.contains(" partitions)"), "{err}");
    // A word that is neither a number nor auto is a usage error naming both.
    let o = posaudit(&["scan", "fixtures/demo", "--partitions", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("or `auto`"), "{}", stderr(&o));
}
