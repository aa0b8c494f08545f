//! The officer's view, end to end with the real binary: cases scored from
//! the scoring file, the Excel workbook read back, and the HTML report
//! driven in headless Chromium.

mod common;
use common::{copy_dir, jsonl, root, run, text};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

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

/// Debian's Chromium, headless. None when it is not installed and the run
/// does not require it; `.ci/run` installs it and sets
/// POSAUDIT_REQUIRE_BROWSER, so in CI a missing browser fails the test.
fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("POSAUDIT_REQUIRE_BROWSER").is_none(),
        "Chromium is required (apt-get install chromium) but {} is missing",
        p.display()
    );
    eprintln!("SKIPPED: no Chromium at {} (apt-get install chromium, or run .ci/run)", p.display());
    None
}

/// The page's DOM after its script ran, and what the browser logged.
fn rendered(browser: &Path, page: &Path, profile: &Path) -> (String, String) {
    rendered_at(browser, &format!("file://{}", page.display()), profile)
}

fn rendered_at(browser: &Path, url: &str, profile: &Path) -> (String, String) {
    let o = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// The text of the element with this id, its tags dropped and spaces
/// collapsed.
fn inner_text_of(dom: &str, id: &str) -> String {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page"));
    let start = dom[..at].rfind('<').unwrap();
    let mut out = String::new();
    let mut depth = 0i32;
    let mut rest = &dom[start..];
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        out.push(' ');
        let gt = rest[lt..].find('>').unwrap() + lt;
        let tag = &rest[lt..=gt];
        if tag.starts_with("</") {
            depth -= 1;
        } else if !tag.ends_with("/>") {
            depth += 1;
        }
        rest = &rest[gt + 1..];
        if depth == 0 {
            break;
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_demo_report_loads_in_chromium_and_shows_the_run() {
    let Some(browser) = chromium() else { return };
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    scan_demo(&out, &["--format", "jsonl,html", "--lang", "zh"]);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched from anywhere.
    for outside in ["<script src", "<link", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(outside), "the report refers outside itself: {outside}");
    }
    // No full ID or account number of the demo's applications is in it.
    let mut r = csv::Reader::from_path(root().join("fixtures/demo/applications.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let cols: Vec<usize> = ["legal_rep_id_number", "settlement_account_number"]
        .iter()
        .map(|c| h.iter().position(|x| x == *c).unwrap())
        .collect();
    for rec in r.records().flatten() {
        for &c in &cols {
            if rec[c].len() >= 15 {
                assert!(!html.contains(&rec[c]), "a full number is in the report");
            }
        }
    }

    let (dom, log) = rendered(&browser, &page, &t.path().join("profile"));
    assert!(dom.contains("data-ready=\"1\""), "the script did not finish: {log}");
    assert!(!dom.contains("data-errors"), "script errors: {dom:.2000}");
    for bad in ["Uncaught", "SyntaxError", "TypeError", "ReferenceError"] {
        assert!(!log.contains(bad), "console error: {log}");
    }
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let total = manifest["findings"]["total"].as_u64().unwrap();
    assert_eq!(inner_text_of(&dom, "count-findings"), format!("{total} 发现"));
    assert_eq!(inner_text_of(&dom, "count-cases"), format!("{} 案件", manifest["cases"]["count"]));
    assert!(dom.contains("合规检查报告"));
    // The top case's merchant is the first row of the cases table.
    let top = manifest["cases"]["top"][0]["merchant_id"].as_str().unwrap();
    let cases = inner_text_of(&dom, "cases");
    let first_row = &cases[cases.find("发现 1 ").expect("first row")..];
    assert!(first_row.starts_with(&format!("发现 1 {top} ")), "{first_row:.200}");
    // Findings are paged: 100 rows of the demo's 106.
    let findings_at = dom.find("id=\"findings\"").unwrap();
    let section_end = findings_at + dom[findings_at..].find("<h2").unwrap();
    assert_eq!(dom[findings_at..section_end].matches("class=\"row\"").count(), 100);

    // Filtering and sorting in the page: the findings of one rule, the
    // largest amount first (the page takes them from the link).
    let findings = jsonl(&out.join("findings.jsonl"));
    let rule = "FEE-REC-01";
    let of_rule: Vec<&Value> = findings.iter().filter(|f| f["rule_id"] == rule).collect();
    let url = format!("file://{}#findings.q={rule}&findings.sort=4&findings.dir=desc", page.display());
    let (dom, _) = rendered_at(&browser, &url, &t.path().join("profile2"));
    let findings_at = dom.find("id=\"findings\"").unwrap();
    let section = &dom[findings_at..findings_at + dom[findings_at..].find("<h2").unwrap()];
    assert_eq!(section.matches("class=\"row\"").count(), of_rule.len());
    let top_amount = of_rule
        .iter()
        .filter_map(|f| f["evidence"]["amount"].as_str())
        .map(|a| a.parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    let first_row = &section[section.find("class=\"row\"").unwrap()..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    assert!(
        first_row.contains(&format!(">{top_amount:.2}<")),
        "largest amount {top_amount} first: {first_row:.600}"
    );
}

#[test]
fn a_report_of_100000_findings_stays_a_small_page() {
    let Some(browser) = chromium() else { return };
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    posaudit_gen::generate(&posaudit_gen::GenOptions {
        merchants: 400,
        days: 10,
        txns_per_day: 10_000,
        seed: 7,
        out: data.clone(),
        format: posaudit_gen::GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.0,
        bad_rows: false,
        lookalikes: false,
    })
    .unwrap();
    // A pack of one rule that fires on every transaction.
    let pack = t.path().join("rules");
    copy_dir(&root().join("rules/reference"), &pack.join("reference"));
    std::fs::write(
        pack.join("every.yaml"),
        "id: T-ALL-01\ntitle: every transaction\ntitle_zh: 每笔交易\nfamily: suspicious_patterns\nseverity: low\n\
         basis: {text: a load test}\nsource: transactions\nwhere: \"amount > 0\"\nevidence: [amount, txn_time]\n\
         message: \"txn {txn_id} of {amount}\"\nmessage_zh: \"交易 {txn_id} 金额 {amount}\"\n",
    )
    .unwrap();
    let out = t.path().join("o");
    let o = run(&[
        "scan",
        data.to_str().unwrap(),
        "--rules",
        pack.to_str().unwrap(),
        "--as-of",
        "2026-11-20",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "html",
        "--fail-on",
        "never",
        "--no-cache",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let total = manifest["findings"]["total"].as_u64().unwrap();
    assert!(total >= 95_000, "{total}");
    let size = std::fs::metadata(out.join("report.html")).unwrap().len();
    assert!(size < 60 << 20, "report.html is {size} bytes");
    let started = std::time::Instant::now();
    let (dom, log) = rendered(&browser, &out.join("report.html"), &t.path().join("profile"));
    assert!(dom.contains("data-ready=\"1\""), "the script did not finish: {log}");
    eprintln!(
        "100,000-finding report: {size} bytes, loaded and dumped in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The page holds a page of rows, not the data: the DOM is small.
    assert!(dom.len() < 2 << 20, "DOM of {} bytes", dom.len());
    let rows = dom.matches("class=\"row").count();
    assert!(rows <= 100 + 50 + 100, "{rows} rows drawn");
    assert_eq!(inner_text_of(&dom, "count-findings"), format!("{} findings", fmt_thousands(total)));
}

fn fmt_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_workbook_reads_back_with_its_counts_dates_and_money() {
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    scan_demo(&out, &["--format", "jsonl,xlsx", "--lang", "zh"]);
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let mut wb: Xlsx<_> = open_workbook(out.join("report.xlsx")).expect("a workbook calamine reads");
    assert_eq!(wb.sheet_names(), vec!["概览", "案件", "发现", "拒收行", "规则"]);
    let findings = wb.worksheet_range("发现").unwrap();
    assert_eq!(findings.height() as u64, manifest["findings"]["total"].as_u64().unwrap() + 1);
    assert_eq!(findings.get((0, 0)), Some(&Data::String("规则".into())));
    // Dates are dates, money is numbers.
    let dates = (1..findings.height())
        .filter(|r| matches!(findings.get((*r, 5)), Some(Data::DateTime(_))))
        .count();
    let money = (1..findings.height())
        .filter(|r| matches!(findings.get((*r, 6)), Some(Data::Float(_))))
        .count();
    assert!(dates > 10 && money > 10, "{dates} dates, {money} amounts");
    let cases = wb.worksheet_range("案件").unwrap();
    assert_eq!(cases.height() as u64, manifest["cases"]["count"].as_u64().unwrap() + 1);
    assert_eq!(
        cases.get((1, 1)),
        Some(&Data::String(manifest["cases"]["top"][0]["merchant_id"].as_str().unwrap().into()))
    );
    assert!(matches!(cases.get((1, 3)), Some(Data::Float(_))), "scores are numbers");
    assert!(
        (1..cases.height()).all(|r| matches!(cases.get((r, 7)), Some(Data::Float(_)))),
        "cash-out amounts are numbers"
    );
    let rejected = wb.worksheet_range("拒收行").unwrap();
    assert_eq!(
        rejected.height() as u64,
        manifest["totals"]["transactions"]["rows_rejected"].as_u64().unwrap() + 1
    );
    let rules = wb.worksheet_range("规则").unwrap();
    assert_eq!(rules.height() as u64, manifest["rules"]["count"].as_u64().unwrap() + 1);
    let summary = wb.worksheet_range("概览").unwrap();
    assert!(matches!(summary.get((1, 1)), Some(Data::DateTime(_))), "the as-of date is a date");
}
