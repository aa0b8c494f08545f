//! The rule pack on Apache Spark against the embedded engine: `posaudit
//! prepare`, `posaudit export spark`, the job run by PySpark in local mode,
//! `posaudit import spark`; the findings must equal a scan's, byte for
//! byte (and so by fingerprint, rule by rule).
//!
//! Needs Java 17 and PySpark (`.ci/run` installs both). Where they are
//! missing the Spark runs are skipped with a note, unless
//! POSAUDIT_REQUIRE_SPARK=1 (CI), when that is a failure.

mod common;
use common::{jsonl, root, run, text};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("POSAUDIT_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether PySpark and Java are here; if not, why.
fn spark_missing() -> Option<String> {
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        return Some("no `java` on PATH (Spark needs Java 17)".into());
    }
    let py = Command::new(python()).args(["-c", "import pyspark"]).output();
    match py {
        Ok(o) if o.status.success() => None,
        _ => Some(format!("`{} -c 'import pyspark'` fails", python())),
    }
}

fn require_spark() -> bool {
    match spark_missing() {
        None => true,
        Some(why) => {
            if std::env::var("POSAUDIT_REQUIRE_SPARK").is_ok_and(|v| v == "1") {
                panic!("POSAUDIT_REQUIRE_SPARK=1 but {why}");
            }
            eprintln!("skipping the Spark run: {why}");
            false
        }
    }
}

/// Export the shipped pack once per test.
fn export(job: &Path) {
    let o = run(&["export", "spark", "--out", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Findings per rule: fingerprints.
fn by_rule(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in jsonl(path) {
        m.entry(f["rule_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["fingerprint"].as_str().unwrap().to_string());
    }
    m
}

/// Scan `data` in memory and through Spark (prepared in `partitions`
/// map tasks, 1: one); the findings must be the same.
fn both_ways(inputs: &[&str], as_of: &str, work: &Path, job: &Path, partitions: usize) {
    let scan = work.join("scan");
    let mut args = vec!["scan", "--as-of", as_of, "--out", scan.to_str().unwrap(), "--fail-on", "never"];
    args.extend_from_slice(inputs);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut preps = Vec::new();
    let mut accepted = 0u64;
    let mut rejected = 0u64;
    for k in 0..partitions {
        let prep = work.join(format!("prepared-{k}"));
        let mut args = vec!["prepare", "--as-of", as_of, "--out", prep.to_str().unwrap()];
        args.extend_from_slice(inputs);
        let part = format!("{k}/{partitions}");
        if partitions > 1 {
            args.extend(["--partition", part.as_str()]);
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(prep.join("prepared.json")).unwrap()).unwrap();
        accepted += m["frames"]["transactions"]["rows"].as_u64().unwrap_or(0);
        rejected += m["rows_rejected"].as_u64().unwrap();
        preps.push(prep);
    }
    // The partitions' rows add up to the scan's: nothing lost, nothing twice.
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(scan.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(accepted, manifest["totals"]["transactions"]["rows_accepted"].as_u64().unwrap());
    let all_rejected: u64 = manifest["totals"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["rows_rejected"].as_u64().unwrap())
        .sum();
    assert_eq!(rejected, all_rejected);
    let prep = preps[0].clone();
    let hits = work.join("hits");
    let o = Command::new(python())
        .arg(job.join("posaudit_spark.py"))
        .args(["--master", "local[2]", "--prepared"])
        .args(&preps)
        .arg("--hits")
        .arg(&hits)
        .output()
        .expect("run the Spark job");
    assert!(o.status.success(), "the Spark job failed:\n{}", text(&o));
    let status: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hits.join("status.json")).unwrap()).unwrap();
    // The rules that did not run, and why, are the scan's.
    let not_ran: BTreeMap<String, String> = status
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["status"] != "ran")
        .map(|(id, s)| {
            (
                id.clone(),
                format!("{}: {}", s["status"].as_str().unwrap(), s["reason"].as_str().unwrap_or("")),
            )
        })
        .collect();
    let scan_not_ran: BTreeMap<String, String> = manifest["rule_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "ran")
        .map(|r| {
            (
                r["rule_id"].as_str().unwrap().to_string(),
                format!("{}: {}", r["status"].as_str().unwrap(), r["reason"].as_str().unwrap_or("")),
            )
        })
        .collect();
    assert_eq!(
        not_ran.keys().collect::<Vec<_>>(),
        scan_not_ran.keys().collect::<Vec<_>>(),
        "the same rules do not run"
    );
    for (id, why) in &not_ran {
        // The engine may add what a derived column is made of.
        assert!(
            scan_not_ran[id].starts_with(why.as_str()),
            "{id}: Spark says `{why}`, the scan `{}`",
            scan_not_ran[id]
        );
    }
    let found = work.join("found");
    let mut args = vec![
        "import",
        "spark",
        "--prepared",
        prep.to_str().unwrap(),
        "--hits",
        hits.to_str().unwrap(),
        "--out",
        found.to_str().unwrap(),
    ];
    // The pack the scan and prepare were given, if not the shipped one.
    if let Some(i) = inputs.iter().position(|a| *a == "--rules") {
        args.extend(["--rules", inputs[i + 1]]);
    }
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (want, got) = (by_rule(&scan.join("findings.jsonl")), by_rule(&found.join("findings.jsonl")));
    for rule in want.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
        let (w, g) = (
            want.get(rule).cloned().unwrap_or_default(),
            got.get(rule).cloned().unwrap_or_default(),
        );
        assert!(
            w == g,
            "{rule}: the engine found {} ({} not on Spark), Spark {} ({} not in the engine)",
            w.len(),
            w.difference(&g).count(),
            g.len(),
            g.difference(&w).count()
        );
    }
    assert!(!want.is_empty());
    assert_eq!(
        std::fs::read_to_string(found.join("findings.jsonl")).unwrap(),
        std::fs::read_to_string(scan.join("findings.jsonl")).unwrap(),
        "the findings files are byte-identical (evidence, messages, masking, order)"
    );
}

#[test]
fn every_shipped_rule_exports_to_spark_sql() {
    let t = tempfile::tempdir().unwrap();
    let job = t.path().join("job");
    export(&job);
    let rules: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(job.join("rules.json")).unwrap()).unwrap();
    let ids: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut files = 0;
    for family in std::fs::read_dir(root().join("rules")).unwrap() {
        let family = family.unwrap().path();
        if family.is_dir() && family.file_name().is_some_and(|n| n != "reference") {
            files += std::fs::read_dir(&family).unwrap().count();
        }
    }
    assert_eq!(ids.len(), files, "one query per rule file");
    assert!(rules["refused"].as_object().unwrap().is_empty());
    for id in ids {
        let sql = std::fs::read_to_string(job.join("sql").join(format!("{id}.sql"))).unwrap();
        assert!(sql.contains("SELECT"), "{id}");
    }
    assert!(job.join("posaudit_spark.py").is_file());
}

#[test]
fn a_rule_the_translation_cannot_express_is_named_and_stops_the_export() {
    let t = tempfile::tempdir().unwrap();
    let rules = t.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("X-NEST-01.yaml"),
        "id: X-NEST-01\ntitle: nested aggregates in a rolling window\ntitle_zh: 嵌套聚合\nfamily: suspicious_patterns\nseverity: low\n\
         source: transactions\nwhere: \"status = 'approved'\"\ngroup_by: [merchant_id]\nrolling: 1d\n\
         having: \"SUM(amount) > 10 * MAX(amount)\"\nmeasures:\n  spread: \"MAX(amount) - MIN(amount)\"\n\
         message: \"{merchant_id}\"\nmessage_zh: \"{merchant_id}\"\nbasis:\n  text: a test\n  mark: I\n  sources: []\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("X-OK-01.yaml"),
        "id: X-OK-01\ntitle: a row rule\ntitle_zh: 行规则\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n\
         where: \"amount > 100\"\nmessage: \"{merchant_id}\"\nmessage_zh: \"{merchant_id}\"\nbasis:\n  text: a test\n  mark: I\n  sources: []\n",
    )
    .unwrap();
    // Both translate as written.
    let job = t.path().join("job");
    let o = run(&[
        "export",
        "spark",
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        job.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(
        rules.join("X-NEST-01.yaml"),
        std::fs::read_to_string(rules.join("X-NEST-01.yaml"))
            .unwrap()
            .replace("SUM(amount) > 10 * MAX(amount)", "SUM(amount - MIN(amount)) > 10"),
    )
    .unwrap();
    let job2 = t.path().join("job2");
    let o = run(&[
        "export",
        "spark",
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        job2.to_str().unwrap(),
    ]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(3), "{said}");
    assert!(
        said.contains("X-NEST-01: not exported: having: an aggregate inside an aggregate"),
        "{said}"
    );
    assert!(said.contains("nothing written (--partial writes the others)"), "{said}");
    assert!(!job2.exists());
    let o = run(&[
        "export",
        "spark",
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        job2.to_str().unwrap(),
        "--partial",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let readme = std::fs::read_to_string(job2.join("README.md")).unwrap();
    assert!(readme.contains("- X-NEST-01: having: an aggregate inside an aggregate"), "{readme}");
    assert!(job2.join("sql/X-OK-01.sql").is_file());
    assert!(!job2.join("sql/X-NEST-01.sql").exists());
    let jobfile: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(job2.join("rules.json")).unwrap()).unwrap();
    assert!(jobfile["refused"]["X-NEST-01"].is_string());
}

#[test]
fn the_demo_on_spark_gives_the_scans_findings_byte_for_byte() {
    if !require_spark() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let job = t.path().join("job");
    export(&job);
    let demo = root().join("fixtures/demo");
    both_ways(&[demo.to_str().unwrap()], "2026-11-20", &t.path().join("demo"), &job, 1);
}

/// Two merchants whose refunds are exactly 10% of their sales and one fen
/// more: `SUS-REF-01`'s `refunds > ${share} * sales` with `share: 0.1`.
/// Polars read a bare 0.1 as a float (and found the first merchant above
/// 10%) where Spark reads a decimal; the parameter is now a decimal on both.
#[test]
fn a_share_of_exactly_ten_percent_is_not_above_it_in_the_engine_or_on_spark() {
    if !require_spark() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    common::copy_dir(&root().join("fixtures/demo"), &data);
    let header = "txn_id,merchant_id,terminal_sn,txn_time,txn_type,status,amount,payment_method,card_type,card_no_masked,card_hash,entry_mode,mcc,fee,location_city_code,lat,lon,original_txn_id,settlement_account_number";
    let mut csv = format!("{header}\n");
    for (m, last) in [("822100099990001", "200.04"), ("822100099990002", "200.05")] {
        for (i, (kind, amount, day, original)) in [
            ("purchase", "3000.00", "01", ""),
            ("purchase", "2000.40", "02", ""),
            ("refund", "300.00", "05", "P0"),
            ("refund", last, "06", "P1"),
        ]
        .into_iter()
        .enumerate()
        {
            let tag = &m[14..];
            let original = if original.is_empty() {
                String::new()
            } else {
                format!("X{tag}{original}")
            };
            let id = format!("X{tag}{}", if kind == "purchase" { format!("P{i}") } else { format!("R{i}") });
            csv += &format!(
                "{id},{m},SN9999000{tag},2026-11-{day} 12:00:00,{kind},approved,{amount},qr_unionpay,,,hb{tag}{},qr_dynamic,5691,0.00,110105,39.9,116.4,{original},\n",
                i % 2
            );
        }
    }
    std::fs::write(data.join("transactions/2026-11-01.csv"), csv).unwrap();
    let job = t.path().join("job");
    export(&job);
    let work = t.path().join("run");
    both_ways(&[data.to_str().unwrap()], "2026-11-20", &work, &job, 1);
    let refunds: Vec<String> = jsonl(&work.join("scan/findings.jsonl"))
        .iter()
        .filter(|f| f["rule_id"] == "SUS-REF-01" && f["merchant_id"].as_str().unwrap().starts_with("82210009999"))
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        refunds,
        ["merchant 822100099990002 refunded 500.05 yuan against 5000.40 yuan of sales within 30 days"]
    );
}

#[test]
fn a_generated_month_prepared_in_three_partitions_on_spark_gives_the_scans_findings() {
    if !require_spark() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    // A seed and size no rule was written against, honest look-alikes,
    // broken rows.
    posaudit_gen::generate(&posaudit_gen::GenOptions {
        merchants: 240,
        days: 31,
        txns_per_day: 1200,
        seed: 31337,
        out: data.clone(),
        format: posaudit_gen::GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.4,
        bad_rows: true,
        lookalikes: true,
    })
    .unwrap();
    let job = t.path().join("job");
    export(&job);
    both_ways(&[data.to_str().unwrap()], "2026-11-03", &t.path().join("gen"), &job, 3);
}

#[test]
fn a_wechat_bill_read_through_its_preset_skips_the_same_rules_on_spark() {
    if !require_spark() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let job = t.path().join("job");
    export(&job);
    let dir = root().join("fixtures/exports/wechat");
    let (apps, txns) = (dir.join("applications.csv"), dir.join("transactions"));
    let inputs = [
        "--applications",
        apps.to_str().unwrap(),
        "--transactions",
        txns.to_str().unwrap(),
        "--mapping",
        "preset:wechat",
    ];
    both_ways(&inputs, "2026-11-20", &t.path().join("wechat"), &job, 1);
}

#[test]
fn one_busy_merchant_whose_every_window_hits_gives_the_same_episode_on_spark() {
    if !require_spark() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    // One merchant, 6,000 transactions in two days (many at the same
    // second): a 30-day window holds all of them.
    posaudit_gen::generate(&posaudit_gen::GenOptions {
        merchants: 1,
        days: 2,
        txns_per_day: 3000,
        seed: 5,
        out: data.clone(),
        format: posaudit_gen::GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.0,
        bad_rows: false,
        lookalikes: false,
    })
    .unwrap();
    let rules = t.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = |id: &str, measure: &str| {
        format!(
            "id: {id}\ntitle: every 30-day window\ntitle_zh: 每个窗口\nfamily: suspicious_patterns\nseverity: low\n\
             basis: {{text: test, mark: I, sources: []}}\nsource: transactions\ngroup_by: [merchant_id]\nrolling: 30d\n\
             measures: {{m: \"{measure}\"}}\nhaving: \"COUNT(*) >= 1\"\nentity: merchant\nevidence: [m]\n\
             message: \"{{merchant_id}} {{count}} {{m}}\"\nmessage_zh: \"{{merchant_id}} {{count}} {{m}}\"\n"
        )
    };
    // Sums and counts take the linear prefix form; MAX the sliding frame.
    std::fs::write(
        rules.join("ROLL-SUM.yaml"),
        rule("ROLL-SUM", "SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END)"),
    )
    .unwrap();
    std::fs::write(rules.join("ROLL-MAX.yaml"), rule("ROLL-MAX", "MAX(amount)")).unwrap();
    let job = t.path().join("job");
    let o = run(&[
        "export",
        "spark",
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        job.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sum_sql = std::fs::read_to_string(job.join("sql/ROLL-SUM.sql")).unwrap();
    assert!(sum_sql.contains("__cum AS") && !sum_sql.contains("RANGE BETWEEN 2591999999 PRECEDING"));
    let max_sql = std::fs::read_to_string(job.join("sql/ROLL-MAX.sql")).unwrap();
    assert!(max_sql.contains("RANGE BETWEEN 2591999999 PRECEDING"));
    both_ways(
        &[data.to_str().unwrap(), "--rules", rules.to_str().unwrap()],
        "2026-11-20",
        &t.path().join("busy"),
        &job,
        1,
    );
    let found = jsonl(&t.path().join("busy/found/findings.jsonl"));
    assert_eq!(found.len(), 2, "one episode per rule");
    assert!(found.iter().all(|f| f["txn_ids"].as_array().unwrap().len() > 5_000));
}
