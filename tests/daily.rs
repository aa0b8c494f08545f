//! Daily scans, end to end with the real binary: baselines (and the
//! fingerprints they rest on), exceptions, shadow rules, the parse cache
//! and `--window`.

mod common;
use common::{copy_dir, jsonl, root, text};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use posaudit_gen::{generate, GenFormat, GenOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_posaudit");

/// Run posaudit with its parse cache in `cache` (never the user's).
fn run(args: &[&str], cache: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env("POSAUDIT_CACHE_DIR", cache)
        .output()
        .expect("run posaudit")
}

fn manifest(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

fn fingerprints(fs: &[Value]) -> BTreeSet<String> {
    fs.iter().map(|f| f["fingerprint"].as_str().unwrap().to_string()).collect()
}

/// A month of generated exports, one file a day, with every planted pattern.
fn month(dir: &Path, days: u32, seed: u64) {
    generate(&GenOptions {
        merchants: 150,
        days,
        txns_per_day: 700,
        seed,
        out: dir.to_path_buf(),
        format: GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.15,
        bad_rows: true,
        lookalikes: true,
    })
    .expect("generate");
}

struct Scan {
    out: PathBuf,
    output: Output,
}

fn scan(data: &Path, out: &Path, cache: &Path, as_of: &str, extra: &[&str]) -> Scan {
    let mut args = vec![
        "scan",
        data.to_str().unwrap(),
        "--as-of",
        as_of,
        "--out",
        out.to_str().unwrap(),
        "--fail-on",
        "never",
    ];
    args.extend_from_slice(extra);
    let output = run(&args, cache);
    assert!(output.status.code().is_some_and(|c| c < 2), "scan failed: {}", text(&output));
    Scan {
        out: out.to_path_buf(),
        output,
    }
}

impl Scan {
    fn findings(&self) -> Vec<Value> {
        jsonl(&self.out.join("findings.jsonl"))
    }
}

#[test]
fn a_rerun_on_the_same_data_is_all_unchanged_and_can_fail_on_new_only() {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 12, 501);
    let first = scan(&data, &t.path().join("o1"), &cache, "2026-11-20", &[]);
    let n = first.findings().len();
    assert!(n > 15, "the month should have findings: {n}");
    assert!(
        first.findings().iter().all(|f| f.get("baseline").is_none()),
        "no state without a baseline"
    );

    let base = first.out.to_str().unwrap();
    let again = scan(
        &data,
        &t.path().join("o2"),
        &cache,
        "2026-11-20",
        &["--baseline", base, "--fail-on-new", "high"],
    );
    assert_eq!(again.output.status.code(), Some(0), "nothing new: exit 0 {}", text(&again.output));
    let fs = again.findings();
    assert_eq!(fs.len(), n);
    assert!(fs.iter().all(|f| f["baseline"] == "unchanged"), "every finding unchanged");
    let m = manifest(&again.out);
    assert_eq!(m["baseline"]["new"], 0);
    assert_eq!(m["baseline"]["unchanged"], n);
    assert_eq!(m["baseline"]["resolved"], 0);
    assert_eq!(m["findings"]["new"], 0);
    assert_eq!(std::fs::read_to_string(again.out.join("resolved.jsonl")).unwrap(), "");
    assert!(text(&again.output).contains(&format!("0 new, {n} unchanged, 0 resolved")));

    // Drop three high findings from the baseline: they are new today, and
    // --fail-on-new high fails the run while --fail-on never alone would not.
    let lines: Vec<String> = std::fs::read_to_string(first.out.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let high: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"severity\":\"high\""))
        .map(|(i, _)| i)
        .take(3)
        .collect();
    assert_eq!(high.len(), 3);
    let kept: Vec<&String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !high.contains(i))
        .map(|(_, l)| l)
        .collect();
    let partial = t.path().join("partial.jsonl");
    std::fs::write(&partial, kept.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    // And add one the data no longer has: it is resolved.
    let gone = t.path().join("with-gone.jsonl");
    let mut extra: Value = serde_json::from_str(&lines[high[0]]).unwrap();
    extra["fingerprint"] = "00000000000000000000000000000000".into();
    std::fs::write(
        &gone,
        format!(
            "{}{}\n",
            std::fs::read_to_string(&partial).unwrap(),
            serde_json::to_string(&extra).unwrap()
        ),
    )
    .unwrap();
    let third = run(
        &[
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
            "--out",
            t.path().join("o3").to_str().unwrap(),
            "--baseline",
            gone.to_str().unwrap(),
            "--fail-on-new",
            "high",
            "--format",
            "jsonl,sarif,junit",
        ],
        &cache,
    );
    assert_eq!(third.status.code(), Some(1), "three new high findings fail: {}", text(&third));
    let out3 = t.path().join("o3");
    let fs = jsonl(&out3.join("findings.jsonl"));
    let new: Vec<&Value> = fs.iter().filter(|f| f["baseline"] == "new").collect();
    assert_eq!(new.len(), 3);
    assert!(new.iter().all(|f| f["severity"] == "high"));
    let resolved = jsonl(&out3.join("resolved.jsonl"));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["baseline"], "resolved");
    assert_eq!(resolved[0]["fingerprint"], "00000000000000000000000000000000");

    // SARIF carries the states (resolved as absent) and stays valid.
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(out3.join("findings.sarif")).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let states: BTreeMap<String, usize> = results.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r["baselineState"].as_str().unwrap_or("-").to_string()).or_default() += 1;
        m
    });
    assert_eq!(states.get("new"), Some(&3), "{states:?}");
    assert_eq!(states.get("absent"), Some(&1), "{states:?}");
    assert_eq!(states.get("unchanged"), Some(&(n - 3)), "{states:?}");
    let schema = std::fs::read_to_string(root().join("tests/data/sarif-schema-2.1.0.json"))
        .unwrap()
        .replace(r#"^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$"#, r#"^[a-zA-Z]{2}(-[a-zA-Z]{2})?$"#);
    let schema: Value = serde_json::from_str(&schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&sarif).map(|e| e.to_string()).take(5).collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:?}");

    // JUnit fails only the rules with new high findings.
    let junit = std::fs::read_to_string(out3.join("junit.xml")).unwrap();
    let failures = junit.matches("<failure").count();
    let rules_new: BTreeSet<&str> = new.iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    assert_eq!(failures, rules_new.len(), "{junit}");
    assert!(junit.contains("(new)"));
    let said_new: usize = junit
        .split("<system-out>")
        .skip(1)
        .filter_map(|c| c.split(" new, ").next()?.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(said_new, 3, "each rule's system-out counts its new findings: {junit}");

    // --fail-on-new without a baseline is a usage error.
    let o = run(
        &[
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
            "--out",
            t.path().join("o4").to_str().unwrap(),
            "--fail-on-new",
            "high",
        ],
        &cache,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--fail-on-new needs --baseline"), "{}", text(&o));
}

/// Transaction ids and their days, from the generated daily files.
fn txn_days(data: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(data.join("transactions")).unwrap() {
        let p = e.unwrap().path();
        let mut r = csv::Reader::from_path(&p).unwrap();
        let h = r.headers().unwrap().clone();
        let (id, time) = (
            h.iter().position(|c| c == "txn_id").unwrap(),
            h.iter().position(|c| c == "txn_time").unwrap(),
        );
        for rec in r.records().flatten() {
            out.insert(rec[id].to_string(), rec[time].chars().take(10).collect());
        }
    }
    out
}

/// What a finding is about, whatever its fingerprint: its rule, entity
/// kind and the rows behind it (or its entity, for application findings).
fn meaning(f: &Value) -> String {
    let txns: Vec<&str> = f["txn_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let what = if txns.is_empty() {
        f["entity_id"].as_str().unwrap().to_string()
    } else {
        txns.join(";")
    };
    format!("{}|{}|{}", f["rule_id"].as_str().unwrap(), f["entity_kind"].as_str().unwrap(), what)
}

#[test]
fn a_window_moved_by_a_day_keeps_the_fingerprint_of_everything_found_again() {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 16, 502);
    // Days 10-01 .. 10-15, then 10-02 .. 10-16.
    let a = scan(&data, &t.path().join("a"), &cache, "2026-10-15", &["--window", "15d"]);
    let base = a.out.to_str().unwrap().to_string();
    let b = scan(
        &data,
        &t.path().join("b"),
        &cache,
        "2026-10-16",
        &["--window", "15d", "--baseline", &base],
    );
    let (fa, fb) = (a.findings(), b.findings());
    let days = txn_days(&data);
    let in_both = |f: &Value| {
        f["txn_ids"].as_array().is_some_and(|a| {
            !a.is_empty()
                && a.iter().all(|t| {
                    days.get(t.as_str().unwrap())
                        .is_some_and(|d| d.as_str() >= "2026-10-02" && d.as_str() <= "2026-10-15")
                })
        })
    };
    let by_meaning: BTreeMap<String, &Value> = fb.iter().map(|f| (meaning(f), f)).collect();
    let mut same = 0;
    for f in fa
        .iter()
        .filter(|f| in_both(f) || f["txn_ids"].as_array().is_none_or(|a| a.is_empty()))
    {
        if let Some(g) = by_meaning.get(&meaning(f)) {
            assert_eq!(
                f["fingerprint"], g["fingerprint"],
                "the same finding got a new fingerprint:\n{f}\n{g}"
            );
            assert_eq!(g["baseline"], "unchanged");
            same += 1;
        }
    }
    assert!(same * 10 >= fa.len() * 7, "most findings are found again: {same} of {}", fa.len());
    // The window did what it says: rows of 10-01 were not checked in b.
    let m = manifest(&b.out);
    assert!(m["totals"]["transactions"]["rows_outside_window"].as_u64().unwrap() > 0);
    assert!(
        m["window"]["files_outside"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().ends_with("2026-09-29.csv"))
            || m["window"]["from"] == "2026-10-02"
    );
}

/// Rewrite a copy of `data`: `rename` daily files, `reorder` the rows of
/// every file (the header stays first).
fn altered(data: &Path, to: &Path, rename: bool, reorder: bool) {
    copy_dir(data, to);
    let tx = to.join("transactions");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&tx).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let header = lines.remove(0);
        if reorder {
            lines.reverse();
        }
        let target = if rename {
            tx.join(format!(
                "pos_export_{}.csv",
                p.file_stem().unwrap().to_str().unwrap().replace('-', "")
            ))
        } else {
            p.clone()
        };
        std::fs::remove_file(&p).unwrap();
        std::fs::write(target, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    }
    if reorder {
        let apps = to.join("applications.csv");
        let text = std::fs::read_to_string(&apps).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let header = lines.remove(0);
        let third = lines.len() / 3;
        lines.rotate_left(third);
        std::fs::write(&apps, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    }
}

/// The same findings, found again: nothing new, nothing resolved, and
/// only where they were read from differs.
fn assert_same_findings(first: &Scan, second: &Scan) {
    let m = manifest(&second.out);
    assert_eq!(m["baseline"]["new"], 0, "{}", text_of(second));
    assert_eq!(m["baseline"]["resolved"], 0);
    assert_eq!(fingerprints(&first.findings()), fingerprints(&second.findings()));
    let strip = |fs: Vec<Value>| -> Vec<Value> {
        let mut v: Vec<Value> = fs
            .into_iter()
            .map(|mut f| {
                f.as_object_mut().unwrap().remove("source");
                f.as_object_mut().unwrap().remove("baseline");
                f
            })
            .collect();
        v.sort_by_key(|f| f["fingerprint"].as_str().unwrap().to_string());
        v
    };
    assert_eq!(strip(first.findings()), strip(second.findings()));
}

/// Scan a month, scan it again altered, with the first as the baseline:
/// the same findings, with the same fingerprints.
fn fingerprints_survive(seed: u64, rename: bool, reorder: bool) {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 10, seed);
    let first = scan(&data, &t.path().join("o1"), &cache, "2026-11-20", &[]);
    let base = first.out.to_str().unwrap().to_string();
    let changed = t.path().join("changed");
    altered(&data, &changed, rename, reorder);
    let second = scan(&changed, &t.path().join("o2"), &cache, "2026-11-20", &["--baseline", &base]);
    assert_same_findings(&first, &second);
}

#[test]
fn renamed_files_change_no_fingerprint() {
    fingerprints_survive(503, true, false);
}

#[test]
fn reordered_rows_change_no_fingerprint() {
    fingerprints_survive(508, false, true);
}

fn text_of(s: &Scan) -> String {
    text(&s.output)
}

fn write_exceptions(path: &Path, items: &str) {
    std::fs::write(path, format!("exceptions:\n{items}")).unwrap();
}

#[test]
fn exceptions_suppress_expire_go_stale_and_are_checked() {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 8, 504);
    let first = scan(&data, &t.path().join("o1"), &cache, "2026-11-20", &[]);
    let fs = first.findings();
    let high: Vec<&Value> = fs
        .iter()
        .filter(|f| f["severity"] == "high" && f["merchant_ids"].as_array().unwrap().len() == 1)
        .collect();
    assert!(high.len() >= 2);
    let (a, b) = (high[0], high[1]);
    let by_rule = fs
        .iter()
        .filter(|f| {
            f["rule_id"] == a["rule_id"] && f["merchant_id"] == a["merchant_id"] && f["merchant_ids"].as_array().unwrap().len() == 1
        })
        .count();
    let x = t.path().join("exceptions.yaml");
    write_exceptions(
        &x,
        &format!(
            "  - id: EXC-1
    rule: {}
    merchant: '{}'
    owner: 王芳
    reason: 实地核查，经营正常
    ticket: RISK-114
    expires: 2027-03-31
  - id: EXC-2
    fingerprint: {}
    owner: Li Lei
    reason: reviewed
    decided: 2026-09-01
    expires: 2026-10-31
  - id: EXC-3
    rule: {}
    merchant: '000000000000000'
    owner: Li Lei
    reason: a merchant that has no finding
    expires: 2027-01-31
",
            a["rule_id"].as_str().unwrap(),
            a["merchant_id"].as_str().unwrap(),
            b["fingerprint"].as_str().unwrap(),
            a["rule_id"].as_str().unwrap(),
        ),
    );
    let xs = x.to_str().unwrap();
    let s = scan(
        &data,
        &t.path().join("o2"),
        &cache,
        "2026-11-20",
        &["--exceptions", xs, "--format", "jsonl,csv,sarif"],
    );
    let out = s.findings();
    assert_eq!(out.len(), fs.len(), "suppressed findings are written, never dropped");
    let suppressed: Vec<&Value> = out.iter().filter(|f| f["status"] == "suppressed").collect();
    assert_eq!(suppressed.len(), by_rule);
    assert!(suppressed.iter().all(|f| f["exception_id"] == "EXC-1"));
    assert!(out
        .iter()
        .filter(|f| f["status"] != "suppressed")
        .all(|f| f["status"] == "open" && f.get("exception_id").is_none()));
    let m = manifest(&s.out);
    assert_eq!(m["exceptions"]["suppressed"], by_rule);
    assert_eq!(m["exceptions"]["expired"][0]["id"], "EXC-2");
    assert_eq!(m["exceptions"]["expired"][0]["findings_open_again"], 1);
    assert_eq!(m["exceptions"]["stale"], serde_json::json!(["EXC-3"]));
    let said = text_of(&s);
    assert!(
        said.contains("expired EXC-2 (Li Lei, until 2026-10-31): 1 findings it covered are open again"),
        "{said}"
    );
    assert!(said.contains("stale (matched nothing today): EXC-3"), "{said}");
    let csv = std::fs::read_to_string(s.out.join("findings.csv")).unwrap();
    assert_eq!(csv.matches(",suppressed,EXC-1,").count(), by_rule);
    let sarif = std::fs::read_to_string(s.out.join("findings.sarif")).unwrap();
    assert_eq!(sarif.matches("\"exception_id\": \"EXC-1\"").count(), by_rule);

    // Suppressed findings do not fail the run: suppress every high and
    // critical finding by fingerprint and --fail-on high passes.
    let items: String = fs
        .iter()
        .filter(|f| f["severity"] == "high" || f["severity"] == "critical")
        .enumerate()
        .map(|(i, f)| {
            format!(
                "  - id: X{i}\n    fingerprint: {}\n    owner: a\n    reason: b\n    expires: 2026-12-31\n",
                f["fingerprint"].as_str().unwrap()
            )
        })
        .collect();
    let all = t.path().join("all.yaml");
    write_exceptions(&all, &items);
    let args = |x: &Path, out: &str| -> Vec<String> {
        [
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
            "--out",
            t.path().join(out).to_str().unwrap(),
            "--fail-on",
            "high",
            "--exceptions",
            x.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let o = run(&args(&all, "o3").iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&args(&x, "o4").iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert_eq!(o.status.code(), Some(1), "other high findings still fail");

    // A malformed exception is an error at its file and line (exit 3),
    // in `scan` and in `rules check`.
    let bad = t.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&x)
            .unwrap()
            .replace("    ticket: RISK-114", "    tikcet: RISK-114"),
    )
    .unwrap();
    let o = run(&args(&bad, "o5").iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains(&format!("{}:7:5", bad.display())), "{}", text(&o));
    assert!(text(&o).contains("unknown field `tikcet`"));
    assert!(
        !t.path().join("o5").join("findings.jsonl").exists(),
        "nothing is scanned with a bad exceptions file"
    );
    let o = run(&["rules", "check", "--exceptions", bad.to_str().unwrap()], &cache);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("tikcet"));
    let unknown = t.path().join("unknown.yaml");
    std::fs::write(
        &unknown,
        std::fs::read_to_string(&x)
            .unwrap()
            .replacen(&format!("rule: {}", a["rule_id"].as_str().unwrap()), "rule: SUS-NOPE-01", 1),
    )
    .unwrap();
    let o = run(&["rules", "check", "--exceptions", unknown.to_str().unwrap()], &cache);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o).contains(&format!("{}:3:5", unknown.display())) && text(&o).contains("no rule `SUS-NOPE-01`"),
        "{}",
        text(&o)
    );
    // A good file checks clean, with the expired one as a warning.
    let o = run(&["rules", "check", "--exceptions", xs], &cache);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("exception EXC-2 expired on 2026-10-31"), "{}", text(&o));

    // exceptions.yaml beside the rules is found without --exceptions.
    let pack = t.path().join("rules");
    copy_dir(&root().join("rules"), &pack);
    std::fs::copy(&x, pack.join("exceptions.yaml")).unwrap();
    let s = scan(
        &data,
        &t.path().join("o6"),
        &cache,
        "2026-11-20",
        &["--rules", pack.to_str().unwrap()],
    );
    assert_eq!(manifest(&s.out)["exceptions"]["suppressed"], by_rule);
    let o = run(&["rules", "check", pack.to_str().unwrap()], &cache);
    assert_eq!(o.status.code(), Some(0), "an exceptions file is not a rule file: {}", text(&o));
}

#[test]
fn shadow_rules_are_evaluated_but_kept_apart() {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 8, 505);
    let plain = scan(&data, &t.path().join("o1"), &cache, "2026-11-20", &[]);
    let fs = plain.findings();
    // The rule with the most high findings goes into shadow.
    let mut highs: BTreeMap<String, usize> = BTreeMap::new();
    for f in fs.iter().filter(|f| f["severity"] == "high" || f["severity"] == "critical") {
        *highs.entry(f["rule_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let (rule, n) = highs.iter().max_by_key(|(_, n)| **n).map(|(r, n)| (r.clone(), *n)).unwrap();

    let s = scan(
        &data,
        &t.path().join("o2"),
        &cache,
        "2026-11-20",
        &["--shadow", &rule, "--format", "jsonl,junit"],
    );
    let officer = s.findings();
    let shadow = jsonl(&s.out.join("shadow-findings.jsonl"));
    assert!(officer.iter().all(|f| f["rule_id"] != rule.as_str()));
    assert_eq!(
        shadow.iter().filter(|f| f["rule_id"] == rule.as_str()).count(),
        fs.iter().filter(|f| f["rule_id"] == rule.as_str()).count()
    );
    assert_eq!(officer.len() + shadow.len(), fs.len());
    let m = manifest(&s.out);
    assert_eq!(m["shadow"]["rules"], serde_json::json!([rule]));
    assert_eq!(m["shadow"]["findings"], shadow.len());
    assert!(!std::fs::read_to_string(s.out.join("junit.xml"))
        .unwrap()
        .contains(&format!("name=\"{rule}\"")));
    assert!(text_of(&s).contains("in shadow"));

    // Out of the exit code: if the rule held the only high findings, the
    // run passes; either way there are n fewer failing findings.
    let only = highs.len() == 1;
    let o = run(
        &[
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
            "--out",
            t.path().join("o3").to_str().unwrap(),
            "--shadow",
            &rule,
        ],
        &cache,
    );
    assert_eq!(o.status.code(), Some(if only { 0 } else { 1 }));
    assert!(n > 0);

    // `status: shadow` in the rule file does the same, and `rules diff`
    // reports the shadow findings.
    let pack = t.path().join("rules");
    copy_dir(&root().join("rules"), &pack);
    let file = find_rule_file(&pack, &rule);
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find(&format!("id: {rule}\n")).expect("rule id line");
    let line_end = at + text[at..].find('\n').unwrap() + 1;
    let indent = &text[text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0)..at];
    let indent: String = indent.chars().map(|c| if c == '-' { ' ' } else { c }).collect();
    std::fs::write(&file, format!("{}{indent}status: shadow\n{}", &text[..line_end], &text[line_end..])).unwrap();
    let s = scan(
        &data,
        &t.path().join("o4"),
        &cache,
        "2026-11-20",
        &["--rules", pack.to_str().unwrap()],
    );
    assert_eq!(jsonl(&s.out.join("shadow-findings.jsonl")).len(), shadow.len());
    let o = run(
        &[
            "rules",
            "diff",
            "--base",
            root().join("rules").to_str().unwrap(),
            "--rules",
            pack.to_str().unwrap(),
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
        ],
        &cache,
    );
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(said.contains(&format!("| {rule} (shadow) | changed |")), "{said}");
    assert!(
        said.contains(&format!("{} of the new pack's findings come from shadow rules", shadow.len())),
        "{said}"
    );
}

fn find_rule_file(pack: &Path, id: &str) -> PathBuf {
    let mut stack = vec![pack.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") && std::fs::read_to_string(&p).unwrap().contains(&format!("id: {id}\n")) {
                return p;
            }
        }
    }
    panic!("no file defines {id}");
}

#[test]
fn the_parse_cache_gives_the_same_run_and_keeps_no_number_in_the_clear() {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 10, 506);
    let cold = scan(&data, &t.path().join("cold"), &cache, "2026-11-20", &["--format", "jsonl,csv"]);
    let warm = scan(&data, &t.path().join("warm"), &cache, "2026-11-20", &["--format", "jsonl,csv"]);
    let none = scan(
        &data,
        &t.path().join("none"),
        &cache,
        "2026-11-20",
        &["--format", "jsonl,csv", "--no-cache"],
    );
    let files = 3 + std::fs::read_dir(data.join("transactions")).unwrap().count() as u64;
    let (mc, mw) = (manifest(&cold.out), manifest(&warm.out));
    assert_eq!(mc["cache"]["misses"], files);
    assert_eq!(mw["cache"]["hits"], files, "{}", mw["cache"]);
    assert!(manifest(&none.out).get("cache").is_none());
    for f in ["findings.jsonl", "findings.csv", "rejected.csv"] {
        let a = std::fs::read(cold.out.join(f)).unwrap();
        assert_eq!(a, std::fs::read(warm.out.join(f)).unwrap(), "{f} differs from the cache");
        assert_eq!(a, std::fs::read(none.out.join(f)).unwrap(), "{f} differs without the cache");
    }
    assert_eq!(mc["inputs"], mw["inputs"], "counts and digests reconcile from the cache");
    assert!(
        mw["totals"]["transactions"]["rows_rejected"].as_u64().unwrap() > 0,
        "the month has bad rows"
    );

    // No ID, card or account number of the inputs is in a cache file.
    let mut numbers = BTreeSet::new();
    for name in ["applications.csv", "transactions"] {
        let p = data.join(name);
        let paths: Vec<PathBuf> = if p.is_dir() {
            std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect()
        } else {
            vec![p]
        };
        for p in paths {
            let mut r = csv::Reader::from_path(&p).unwrap();
            let h = r.headers().unwrap().clone();
            let cols: Vec<usize> = h
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(*c, "legal_rep_id_number" | "settlement_account_number" | "contact_mobile"))
                .map(|(i, _)| i)
                .collect();
            for rec in r.records().flatten() {
                for &c in &cols {
                    if rec.get(c).is_some_and(|v| v.len() >= 11) {
                        numbers.insert(rec[c].to_string());
                    }
                }
            }
        }
    }
    assert!(numbers.len() > 100);
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len() as u64, files);
    for e in &entries {
        let bytes = std::fs::read(e).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !numbers.iter().any(|n| text.contains(n.as_str())),
            "{} holds a number in the clear",
            e.display()
        );
        assert!(!text.contains("merchant_id"), "{} is not encrypted", e.display());
    }

    // The folder the cache made is the user's alone; a folder the user
    // names keeps its permissions (pointing at a shared folder must not
    // lock others out of it).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
        let shared = t.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        scan(
            &data,
            &t.path().join("shared-out"),
            &cache,
            "2026-11-20",
            &["--cache-dir", shared.to_str().unwrap()],
        );
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(std::fs::read_dir(&shared).unwrap().count() > 0, "entries were written there");
    }

    // A damaged entry is parsed again, with the same result.
    let victim = &entries[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(victim, bytes).unwrap();
    let again = scan(&data, &t.path().join("again"), &cache, "2026-11-20", &[]);
    let m = manifest(&again.out);
    assert_eq!(m["cache"]["failures"], 1);
    assert_eq!(m["cache"]["hits"], files - 1);
    assert_eq!(
        std::fs::read(again.out.join("findings.jsonl")).unwrap(),
        std::fs::read(cold.out.join("findings.jsonl")).unwrap()
    );

    // A changed file is a different entry; a small limit evicts the least
    // recently used.
    let day = std::fs::read_dir(data.join("transactions"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&day).unwrap();
    std::fs::write(&day, text.replacen("\n", "\n\n", 2)).unwrap();
    let changed = scan(&data, &t.path().join("changed"), &cache, "2026-11-20", &["--cache-size", "64K"]);
    let m = manifest(&changed.out);
    assert_eq!(m["cache"]["misses"], 1, "{}", m["cache"]);
    assert!(m["cache"]["evicted_bytes"].as_u64().unwrap() > 0);
    let left: u64 = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(left <= 64 << 10, "{left} bytes left over a 64K limit");
}

#[test]
fn a_window_reads_only_its_days_and_reconciles() {
    let t = tempfile::tempdir().unwrap();
    let (data, cache) = (t.path().join("data"), t.path().join("cache"));
    month(&data, 20, 507);
    let s = scan(
        &data,
        &t.path().join("o"),
        &cache,
        "2026-10-20",
        &[
            "--transactions",
            data.join("transactions/*.csv").to_str().unwrap(),
            "--window",
            "7d",
        ],
    );
    let m = manifest(&s.out);
    assert_eq!(m["window"]["from"], "2026-10-14");
    assert_eq!(m["window"]["to"], "2026-10-20");
    // 10-13 is read for its minutes after midnight; 10-01 .. 10-12 are not.
    let outside: Vec<String> = m["window"]["files_outside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(outside.iter().any(|f| f.ends_with("2026-10-12.csv")));
    assert!(!outside.iter().any(|f| f.ends_with("2026-10-13.csv")));
    let read: Vec<&Value> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["input"] == "transactions")
        .collect();
    assert!(read.iter().all(|i| !i["file"].as_str().unwrap().ends_with("2026-10-12.csv")));
    for i in &read {
        let n = |k: &str| i[k].as_u64().unwrap_or(0);
        assert_eq!(
            n("rows_read"),
            n("rows_accepted") + n("rows_rejected") + n("rows_outside_window"),
            "{i}"
        );
    }
    assert!(read.iter().any(|i| i["rows_outside_window"].as_u64().unwrap_or(0) > 0));
    // Every transaction behind a finding is in the window.
    let days = txn_days(&data);
    for f in s.findings() {
        for id in f["txn_ids"].as_array().into_iter().flatten() {
            let d = &days[id.as_str().unwrap()];
            assert!(d.as_str() >= "2026-10-14" && d.as_str() <= "2026-10-20", "{id} on {d}");
        }
    }
    let o = run(
        &[
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2027-03-01",
            "--window",
            "7d",
            "--out",
            t.path().join("o2").to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("no transaction file is dated in the window 2027-02-23 to 2027-03-01"),
        "{}",
        text(&o)
    );
}
