//! The bad-input corpus: every case under `tests/bad_inputs/` runs the real
//! binary on a small input folder made from `_base/` and the case's edits,
//! and checks what the case says (exit code, messages, rejected rows, row
//! counts) plus what must hold for every input, however bad:
//!
//! - every row is accepted or rejected: per file, read = accepted + rejected;
//! - no full ID, card/account or mobile number from the inputs appears in stdout,
//!   stderr, or any file the run leaves behind;
//! - no temporary or spill file is left behind;
//! - findings have unique fingerprints.
//!
//! Cases that need binary data (Parquet) or size (huge rules) are built in
//! code at the end of this file.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;

const AS_OF: &str = "2026-11-20";

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs")
}

/// One case, as its `case.yaml` describes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    #[serde(default)]
    edits: Vec<Edit>,
    /// Arguments after `scan DATA --as-of ... --out OUT`.
    #[serde(default)]
    args: Vec<String>,
    /// Run `posaudit ARGS` instead of a scan (paths relative to the case's folder).
    #[serde(default)]
    command: Option<Vec<String>>,
    exit: i32,
    /// Texts stderr must contain.
    #[serde(default)]
    stderr: Vec<String>,
    /// Rejected rows that must be in rejected.csv.
    #[serde(default)]
    rejected: Vec<ExpectRejected>,
    /// Expected counts per input: read, accepted, rejected.
    #[serde(default)]
    rows: BTreeMap<String, [u64; 3]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectRejected {
    file: String,
    line: u64,
    #[serde(default)]
    column: Option<String>,
    reason: String,
}

/// A change to the base folder. Texts may hold `\xNN` for raw bytes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Edit {
    /// Replace the first `from` on line `line` (1 = header) with `to`.
    Sub {
        file: String,
        line: usize,
        from: String,
        to: String,
    },
    /// Replace a whole line.
    Line {
        file: String,
        line: usize,
        text: String,
    },
    /// Add a line at the end.
    Append {
        file: String,
        text: String,
    },
    /// Write a file (or replace one) with this text.
    Write {
        file: String,
        text: String,
    },
    /// Turn every line break into CRLF.
    Crlf {
        file: String,
    },
    /// Re-encode a file from UTF-8 to GBK or UTF-16LE (with BOM).
    Encode {
        file: String,
        to: String,
    },
    /// Move (rename) a file, creating folders.
    Move {
        file: String,
        to: String,
    },
    /// Make a symbolic link at `file` pointing to `to`.
    Symlink {
        file: String,
        to: String,
    },
    /// Make an empty folder.
    Mkdir {
        file: String,
    },
    Remove {
        file: String,
    },
}

fn bytes_of(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' && b[i + 2].is_ascii_hexdigit() && b[i + 3].is_ascii_hexdigit() {
            let v = u8::from_str_radix(&text[i + 2..i + 4], 16).expect("two hex digits");
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn split_lines(data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = lines.join(&b'\n');
    out.push(b'\n');
    out
}

fn apply(dir: &Path, edit: &Edit) {
    let path = |f: &str| dir.join(f);
    match edit {
        Edit::Sub { file, line, from, to } => {
            let mut lines = split_lines(&std::fs::read(path(file)).unwrap());
            let l = &mut lines[line - 1];
            let from = bytes_of(from);
            let at = l
                .windows(from.len())
                .position(|w| w == from.as_slice())
                .unwrap_or_else(|| panic!("{file}:{line}: `{}` not found", String::from_utf8_lossy(&from)));
            l.splice(at..at + from.len(), bytes_of(to));
            std::fs::write(path(file), join_lines(&lines)).unwrap();
        }
        Edit::Line { file, line, text } => {
            let mut lines = split_lines(&std::fs::read(path(file)).unwrap());
            lines[line - 1] = bytes_of(text);
            std::fs::write(path(file), join_lines(&lines)).unwrap();
        }
        Edit::Append { file, text } => {
            let mut lines = split_lines(&std::fs::read(path(file)).unwrap());
            lines.push(bytes_of(text));
            std::fs::write(path(file), join_lines(&lines)).unwrap();
        }
        Edit::Write { file, text } => {
            std::fs::create_dir_all(path(file).parent().unwrap()).unwrap();
            std::fs::write(path(file), bytes_of(text)).unwrap();
        }
        Edit::Crlf { file } => {
            let data = std::fs::read(path(file)).unwrap();
            let lines = split_lines(&data);
            let mut out = lines.join(&b"\r\n"[..]);
            out.extend_from_slice(b"\r\n");
            std::fs::write(path(file), out).unwrap();
        }
        Edit::Encode { file, to } => {
            let text = std::fs::read_to_string(path(file)).unwrap();
            let out: Vec<u8> = match to.as_str() {
                "gbk" => encoding_rs::GBK.encode(&text).0.into_owned(),
                "utf16" => {
                    let mut v = vec![0xFF, 0xFE];
                    for u in text.encode_utf16() {
                        v.extend_from_slice(&u.to_le_bytes());
                    }
                    v
                }
                other => panic!("unknown encoding {other}"),
            };
            std::fs::write(path(file), out).unwrap();
        }
        Edit::Move { file, to } => {
            std::fs::create_dir_all(path(to).parent().unwrap()).unwrap();
            std::fs::rename(path(file), path(to)).unwrap();
        }
        Edit::Symlink { file, to } => {
            std::fs::create_dir_all(path(file).parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, path(file)).unwrap();
        }
        Edit::Mkdir { file } => std::fs::create_dir_all(path(file)).unwrap(),
        Edit::Remove { file } => std::fs::remove_file(path(file)).unwrap(),
    }
}

/// Whole words shaped like a resident ID number, a card/account number or
/// a mobile number:
/// written here independently of the code under test.
fn sensitive_words(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"(?:^|[^0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{16,25}|1[3-9][0-9]{9})(?:$|[^0-9A-Za-z])").unwrap();
    let mut v = Vec::new();
    // Overlapping words share a separator: scan line by line, word by word.
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if re.is_match(word) {
            v.push(word.to_string());
        }
    }
    v.sort();
    v.dedup();
    v
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// Checks that hold for any run on any input.
fn invariants(name: &str, data: &Path, work: &Path, out: &Path, o: &Output) {
    let mut secrets = Vec::new();
    let mut files = Vec::new();
    all_files(data, &mut files);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let (gbk, _, _) = encoding_rs::GBK.decode(&bytes);
        secrets.extend(sensitive_words(&text));
        secrets.extend(sensitive_words(&gbk));
    }
    secrets.sort();
    secrets.dedup();
    assert!(
        !secrets.is_empty() || name.starts_with("no_secrets"),
        "{name}: the base must carry ID and account numbers"
    );
    let mut texts: Vec<(String, String)> = vec![
        ("stdout".into(), String::from_utf8_lossy(&o.stdout).to_string()),
        ("stderr".into(), String::from_utf8_lossy(&o.stderr).to_string()),
    ];
    let mut left = Vec::new();
    all_files(work, &mut left);
    for f in &left {
        if f.starts_with(data) {
            continue;
        }
        let rel = f.strip_prefix(work).unwrap().display().to_string();
        let fname = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !fname.starts_with('.') && !rel.contains(".posaudit-spill"),
            "{name}: temporary file left behind: {rel}"
        );
        if rel.ends_with(".parquet") {
            continue;
        }
        texts.push((rel, String::from_utf8_lossy(&std::fs::read(f).unwrap()).to_string()));
    }
    for (what, text) in &texts {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{name}: full number {}… leaked into {what}", &s[..6]);
        }
    }
    let manifest = out.join("manifest.json");
    if manifest.exists() {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        for f in m["inputs"].as_array().unwrap() {
            let (r, a, j) = (
                f["rows_read"].as_u64().unwrap(),
                f["rows_accepted"].as_u64().unwrap(),
                f["rows_rejected"].as_u64().unwrap(),
            );
            assert_eq!(r, a + j, "{name}: {} does not reconcile", f["file"]);
        }
        let rejected = std::fs::read_to_string(out.join("rejected.csv")).unwrap();
        let n_rejected = csv::Reader::from_reader(rejected.as_bytes()).records().count() as u64;
        let total: u64 = m["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rows_rejected"].as_u64().unwrap())
            .sum();
        assert_eq!(n_rejected, total, "{name}: rejected.csv and the manifest disagree");
        if let Ok(text) = std::fs::read_to_string(out.join("findings.jsonl")) {
            let mut fps: Vec<String> = text
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["fingerprint"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let n = fps.len();
            fps.sort();
            fps.dedup();
            assert_eq!(fps.len(), n, "{name}: two findings share a fingerprint");
        }
    }
}

/// Make the case's input folder: `_base` plus its edits and files.
fn materialise(case_dir: &Path, case: &Case, work: &Path) -> PathBuf {
    let data = work.join("data");
    common::copy_dir(&corpus().join("_base"), &data);
    for e in std::fs::read_dir(case_dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() == "case.yaml" {
            continue;
        }
        let target = work.join(p.file_name().unwrap());
        if p.is_dir() {
            common::copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
    for e in &case.edits {
        apply(&data, e);
    }
    data
}

fn run_case(name: &str) {
    let case_dir = corpus().join(name);
    let case: Case = serde_yaml::from_str(&std::fs::read_to_string(case_dir.join("case.yaml")).unwrap())
        .unwrap_or_else(|e| panic!("{name}/case.yaml: {e}"));
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let data = materialise(&case_dir, &case, work);
    let out = work.join("out");
    let args: Vec<String> = match &case.command {
        Some(c) => c.clone(),
        None => {
            let mut a: Vec<String> = [
                "scan",
                "data",
                "--as-of",
                AS_OF,
                "--out",
                "out",
                "--format",
                "jsonl,csv,sarif,junit",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(case.args.iter().cloned());
            a
        }
    };
    let o = common::posaudit_command().args(&args).current_dir(work).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(case.exit),
        "{name} ({}): exit code\nstderr:\n{err}\nstdout:\n{}",
        case.about,
        String::from_utf8_lossy(&o.stdout)
    );
    for s in &case.stderr {
        assert!(err.contains(s.as_str()), "{name}: stderr lacks `{s}`:\n{err}");
    }
    if !case.rejected.is_empty() || !case.rows.is_empty() {
        let rejected = std::fs::read_to_string(out.join("rejected.csv")).unwrap();
        let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(rejected.as_bytes())
            .records()
            .map(Result::unwrap)
            .collect();
        for want in &case.rejected {
            let found = rows.iter().any(|r| {
                r[1].ends_with(&want.file)
                    && r[2] == want.line.to_string()
                    && want.column.as_ref().is_none_or(|c| &r[3] == c)
                    && r[5].contains(&want.reason)
            });
            assert!(found, "{name}: no rejected row {want:?} in\n{rejected}");
        }
        let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        for (input, [read, accepted, rejected]) in &case.rows {
            let t = &m["totals"][input];
            assert_eq!(
                (t["rows_read"].as_u64(), t["rows_accepted"].as_u64(), t["rows_rejected"].as_u64()),
                (Some(*read), Some(*accepted), Some(*rejected)),
                "{name}: counts of {input}: {t}"
            );
        }
    }
    invariants(name, &data, work, &out, &o);
}

#[test]
fn every_case_of_the_corpus() {
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('_') && corpus().join(n).join("case.yaml").exists())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "the corpus has {} cases", names.len());
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| {
            std::panic::catch_unwind(|| run_case(n))
                .err()
                .map(|e| e.downcast_ref::<String>().cloned().unwrap_or_else(|| format!("{n}: panicked")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------
// Cases built in code: binary files, sizes, signals, reruns.

/// A work folder holding `data/` (the base) for a case made in code.
fn base_work() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::copy_dir(&corpus().join("_base"), &data);
    (tmp, data)
}

fn run_in(work: &Path, args: &[&str]) -> Output {
    common::posaudit_command().args(args).current_dir(work).output().unwrap()
}

fn scan_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "scan",
        "data",
        "--as-of",
        AS_OF,
        "--out",
        "out",
        "--format",
        "jsonl,csv,sarif,junit",
    ];
    a.extend_from_slice(extra);
    a
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The base transactions as text columns, for writing Parquet.
fn base_transactions() -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(corpus().join("_base/transactions.csv")).unwrap();
    let names: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let mut cols = vec![Vec::new(); names.len()];
    for rec in r.records() {
        for (i, v) in rec.unwrap().iter().enumerate() {
            cols[i].push(v.to_string());
        }
    }
    (names, cols)
}

fn write_parquet(path: &Path, columns: Vec<polars::prelude::Column>) {
    use polars::prelude::*;
    let h = columns[0].len();
    let mut df = DataFrame::new(h, columns).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut df).unwrap();
}

/// Replace the base's transactions.csv by Parquet, with column `name`
/// made by `make` from its text values and the others as text.
fn transactions_parquet(data: &Path, name: &str, make: impl Fn(&str, &[String]) -> polars::prelude::Column) {
    use polars::prelude::*;
    std::fs::remove_file(data.join("transactions.csv")).unwrap();
    let (names, cols) = base_transactions();
    let columns = names
        .iter()
        .zip(&cols)
        .map(|(n, c)| {
            if n == name {
                make(n, c)
            } else {
                Column::new(n.as_str().into(), c.clone())
            }
        })
        .collect();
    write_parquet(&data.join("transactions.parquet"), columns);
}

/// The manifest's (read, accepted, rejected) for an input.
fn totals(out: &Path, input: &str) -> (Option<u64>, Option<u64>, Option<u64>) {
    let m: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let t = &m["totals"][input];
    (t["rows_read"].as_u64(), t["rows_accepted"].as_u64(), t["rows_rejected"].as_u64())
}

#[test]
fn parquet_list_column_stops_with_the_column_named() {
    use polars::prelude::*;
    let (work, data) = base_work();
    transactions_parquet(&data, "mcc", |n, c| {
        let lists: Vec<Series> = c.iter().map(|v| Series::new("".into(), [v.as_str()])).collect();
        Series::new(n.into(), lists).into_column()
    });
    let o = run_in(work.path(), &scan_args(&[]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    let err = stderr_of(&o);
    assert!(
        err.contains("transactions.parquet") && err.contains("`mcc`") && err.contains("list"),
        "{err}"
    );
    invariants("parquet_list", &data, work.path(), &work.path().join("out"), &o);
}

#[test]
fn parquet_binary_value_not_utf8_rejects_its_row_only() {
    use polars::prelude::*;
    let (work, data) = base_work();
    transactions_parquet(&data, "txn_id", |n, c| {
        let mut bytes: Vec<Vec<u8>> = c.iter().map(|v| v.as_bytes().to_vec()).collect();
        bytes[4] = b"T\xff\xfe1".to_vec();
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        Column::new(n.into(), refs)
    });
    let o = run_in(work.path(), &scan_args(&["--fail-on", "never"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    assert_eq!(totals(&work.path().join("out"), "transactions"), (Some(24), Some(23), Some(1)));
    let rejected = std::fs::read_to_string(work.path().join("out/rejected.csv")).unwrap();
    assert!(
        rejected.contains(",5,txn_id,") && rejected.contains("not valid UTF-8"),
        "{rejected}"
    );
    invariants("parquet_binary", &data, work.path(), &work.path().join("out"), &o);
}

fn rule_file(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn or_rule(terms: usize) -> String {
    let cond = (0..terms).map(|i| format!("amount = {i}.5")).collect::<Vec<_>>().join(" OR ");
    format!(
        "id: SUS-OR-01\ntitle: many terms\nfamily: suspicious_patterns\nseverity: low\nbasis: {{text: test}}\nsource: transactions\nwhere: \"{cond}\"\nmessage: \"{{txn_id}}\"\n"
    )
}

#[test]
fn a_huge_condition_is_invalid_rules_not_a_stack_overflow() {
    for terms in [2_000, 200_000] {
        let (work, data) = base_work();
        rule_file(&work.path().join("rules"), "or.yaml", &or_rule(terms));
        let o = run_in(work.path(), &scan_args(&["--rules", "rules"]));
        assert_eq!(o.status.code(), Some(3), "{terms} terms: {}", stderr_of(&o));
        // 2,000 terms break the operator limit; 200,000 the file size limit.
        assert!(stderr_of(&o).contains("or.yaml"), "{}", stderr_of(&o));
        let check = run_in(work.path(), &["rules", "check", "rules"]);
        assert_eq!(check.status.code(), Some(3), "rules check must fail too: {}", stderr_of(&check));
        invariants("huge_or", &data, work.path(), &work.path().join("out"), &o);
    }
}

#[test]
fn a_condition_at_the_limits_runs_through_the_engine() {
    // MAX_SQL_OPERATORS is 256: 127 comparisons and 126 ORs, plus one more
    // comparison and its OR, is 255 operators;
    // nested in parentheses to near the depth limit.
    let (work, data) = base_work();
    let terms: Vec<String> = (0..127).map(|i| format!("amount = {i}.5")).collect();
    let mut cond = terms.join(" OR ");
    for _ in 0..30 {
        cond = format!("({cond})");
    }
    let text = format!(
        "id: SUS-OR-01\ntitle: many terms\nfamily: suspicious_patterns\nseverity: low\nbasis: {{text: test}}\nsource: transactions\nwhere: \"{cond} OR amount > 0\"\nmessage: \"{{txn_id}}\"\n"
    );
    rule_file(&work.path().join("rules"), "or.yaml", &text);
    let o = run_in(work.path(), &scan_args(&["--rules", "rules", "--fail-on", "never"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    let n = std::fs::read_to_string(work.path().join("out/findings.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(n, 24, "every base row has an amount > 0");
    invariants("or_at_limit", &data, work.path(), &work.path().join("out"), &o);
}

#[test]
fn id_numbers_through_a_measure_or_a_failing_rule_stay_masked() {
    let (work, data) = base_work();
    let rules = work.path().join("rules");
    rule_file(
        &rules,
        "measure.yaml",
        "id: DOC-M-01\ntitle: max id\nfamily: document_validity\nseverity: low\nbasis: {text: test}\nsource: transactions\ngroup_by: [merchant_id]\nmeasures:\n  top_id: MAX(legal_rep_id_number)\n  top_acct: MAX(settlement_account_number)\nhaving: COUNT(*) > 0\nevidence: [top_id, top_acct]\nmessage: \"{merchant_id}: {top_id} {top_acct}\"\n",
    );
    rule_file(
        &rules,
        "fails.yaml",
        "id: DOC-F-01\ntitle: fails at run time\nfamily: document_validity\nseverity: low\nbasis: {text: test}\nsource: applications\nwhere: CAST(legal_rep_id_number AS INTEGER) > 0 OR CAST(settlement_account_number AS INTEGER) > 0\nmessage: \"{merchant_id}\"\n",
    );
    let o = run_in(work.path(), &scan_args(&["--rules", "rules", "--fail-on", "never"]));
    let out = stdout_and_err(&o);
    assert!(out.contains("DOC-M-01"), "{out}");
    let findings = std::fs::read_to_string(work.path().join("out/findings.jsonl")).unwrap_or_default();
    assert!(
        findings.contains("1101**********5752"),
        "the measure's ID is there, masked: {findings}"
    );
    invariants("measure_and_failure", &data, work.path(), &work.path().join("out"), &o);
}

fn stdout_and_err(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr_of(o))
}

#[test]
fn a_finding_flood_stops_the_rule_with_a_clear_reason() {
    let (work, data) = base_work();
    rule_file(
        &work.path().join("rules"),
        "all.yaml",
        "id: SUS-ALL-01\ntitle: every row\nfamily: suspicious_patterns\nseverity: low\nbasis: {text: test}\nsource: transactions\nwhere: amount >= 0\nmessage: \"{txn_id}\"\n",
    );
    let o = run_in(work.path(), &scan_args(&["--rules", "rules", "--max-findings", "5"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(stdout_and_err(&o).contains("more than --max-findings"), "{}", stdout_and_err(&o));
    invariants("flood", &data, work.path(), &work.path().join("out"), &o);
}

#[test]
fn an_overlong_line_is_one_rejected_row() {
    let (work, data) = base_work();
    let path = data.join("transactions.csv");
    let mut text = std::fs::read(&path).unwrap();
    let mut long = b"T1,".to_vec();
    long.extend(std::iter::repeat_n(b'x', 2 << 20));
    long.push(b'\n');
    text.extend(long);
    text.extend(b"T202610019999999998,822331054110001,SN3662579576,2026-10-01 10:49:21,purchase,approved,41.06,card,debit,622202******2984,h38eb7b5c33c4261e,contactless,5411,0.21,330106,30.239437,120.125148,,6225880172681514310\n");
    std::fs::write(&path, text).unwrap();
    let o = run_in(work.path(), &scan_args(&["--fail-on", "never"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    assert_eq!(totals(&work.path().join("out"), "transactions"), (Some(26), Some(25), Some(1)));
    let rejected = std::fs::read_to_string(work.path().join("out/rejected.csv")).unwrap();
    assert!(rejected.contains(",26,,,line is longer than"), "{rejected}");
    invariants("long_line", &data, work.path(), &work.path().join("out"), &o);
}

#[test]
fn duplicated_rows_give_unique_fingerprints_in_the_same_order_in_memory_and_partitioned() {
    let (work, data) = base_work();
    // Every transaction twice, the copies in the opposite order.
    let path = data.join("transactions.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let copies: Vec<&str> = lines[1..].iter().rev().copied().collect();
    lines.extend(copies);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let a = run_in(work.path(), &["scan", "data", "--as-of", AS_OF, "--out", "a", "--fail-on", "never"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr_of(&a));
    let b = run_in(
        work.path(),
        &[
            "scan",
            "data",
            "--as-of",
            AS_OF,
            "--out",
            "b",
            "--fail-on",
            "never",
            "--partitions",
            "4",
            "--threads",
            "1",
        ],
    );
    assert_eq!(b.status.code(), Some(0), "{}", stderr_of(&b));
    let fa = std::fs::read_to_string(work.path().join("a/findings.jsonl")).unwrap();
    let fb = std::fs::read_to_string(work.path().join("b/findings.jsonl")).unwrap();
    assert!(fa.lines().count() > 24, "the duplicates are reported");
    assert_eq!(fa, fb, "in-memory and partitioned findings differ");
    invariants("duplicates", &data, work.path(), &work.path().join("a"), &a);
}

/// A generated month (300,000 transactions) and a partitioned scan of it
/// under `out`, returned once it has written spill files.
fn scan_until_it_spills(tmp: &Path) -> (std::process::Child, PathBuf) {
    let data = tmp.join("data");
    posaudit_gen::generate(&posaudit_gen::GenOptions {
        merchants: 3000,
        days: 20,
        txns_per_day: 15_000,
        seed: 7,
        out: data.clone(),
        format: posaudit_gen::GenFormat::Csv,
        start: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        violation_share: 0.1,
        bad_rows: false,
        lookalikes: false,
    })
    .unwrap();
    let out = tmp.join("out");
    let mut child = common::posaudit_command()
        .args(["scan", "data", "--as-of", AS_OF, "--out", "out", "--partitions", "16", "--quiet"])
        .current_dir(tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until spill files exist.
    let started = std::time::Instant::now();
    loop {
        let spilling = std::fs::read_dir(&out).ok().is_some_and(|rd| {
            rd.filter_map(Result::ok).any(|e| {
                let p = e.path();
                p.file_name().unwrap().to_string_lossy().starts_with(".posaudit-spill") && {
                    let mut f = Vec::new();
                    all_files(&p, &mut f);
                    !f.is_empty()
                }
            })
        });
        if spilling {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the scan ended before it spilled");
        assert!(started.elapsed().as_secs() < 120, "no spill files after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, out)
}

#[test]
fn sigterm_and_sigint_remove_spill_and_temporary_files() {
    for signal in ["TERM", "INT"] {
        let tmp = tempfile::tempdir().unwrap();
        let (child, out) = scan_until_it_spills(tmp.path());
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "SIG{signal}: {}", stderr_of(&o));
        assert!(stderr_of(&o).contains("interrupted"), "{}", stderr_of(&o));
        let mut left = Vec::new();
        all_files(&out, &mut left);
        let dirs: Vec<_> = std::fs::read_dir(&out).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
        assert!(left.is_empty() && dirs.is_empty(), "SIG{signal}: left behind: {left:?} {dirs:?}");
    }
}

#[test]
fn a_scan_killed_mid_spill_leaves_no_account_number_readable_and_the_next_scan_removes_it() {
    // SIGKILL cannot be caught: the spill stays on disk. The transactions
    // carry full settlement account numbers; none may be in what is left.
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, out) = scan_until_it_spills(tmp.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let mut accounts = BTreeSet::new();
    let mut days = Vec::new();
    all_files(&tmp.path().join("data/transactions"), &mut days);
    for day in days.iter().take(3) {
        let mut r = csv::Reader::from_path(day).unwrap();
        let at = r.headers().unwrap().iter().position(|h| h == "settlement_account_number").unwrap();
        for row in r.records().take(2000) {
            let v = row.unwrap()[at].to_string();
            if v.len() >= 16 {
                accounts.insert(v);
            }
        }
    }
    assert!(accounts.len() > 100, "the data carries account numbers: {}", accounts.len());
    let mut left = Vec::new();
    all_files(&out, &mut left);
    assert!(!left.is_empty(), "SIGKILL leaves the spill behind");
    // One search for all of them (digits only: no escaping needed).
    let any = regex::bytes::Regex::new(&accounts.iter().cloned().collect::<Vec<_>>().join("|")).unwrap();
    for f in &left {
        if let Some(m) = any.find(&std::fs::read(f).unwrap()) {
            panic!(
                "account {}… readable in {}",
                String::from_utf8_lossy(&m.as_bytes()[..6]),
                f.display()
            );
        }
    }
    // The next scan into the same folder (here one in memory) removes what
    // the killed one left, and says so; nothing of either is left after it.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let o = common::posaudit_command()
        .args(["scan", demo.to_str().unwrap(), "--as-of", AS_OF, "--out", "out"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.code().is_some_and(|c| c < 2), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("the spill folder of an earlier scan that was killed"),
        "{}",
        stderr_of(&o)
    );
    let spills: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".posaudit-spill"))
        .map(|e| e.path())
        .collect();
    assert!(spills.is_empty(), "left behind: {spills:?}");
}

#[test]
fn half_written_outputs_a_killed_scan_left_are_removed_by_the_next_scan_and_live_ones_kept() {
    // What SIGKILL leaves while outputs are written: staged files nobody
    // holds a lock on. A live writer (here this test) holds its lock.
    let tmp = tempfile::tempdir().unwrap();
    let (out, elsewhere) = (tmp.path().join("out"), tmp.path().join("elsewhere"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let leave = |path: &Path, text: &str| {
        std::fs::write(path, text).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(two_hours_ago).unwrap();
        f
    };
    let dead = out.join(".findings.jsonl.Ab12Cd.tmp");
    leave(&dead, "{\"rule_id\":\"half");
    let dead_sarif = elsewhere.join(".scan.sarif.Qq11Ww.tmp");
    leave(&dead_sarif, "{\"runs\":[");
    let live = out.join(".cases.csv.Zz99Yy.tmp");
    let held = leave(&live, "case_id,");
    held.try_lock().unwrap();
    let foreign = out.join(".notes.txt.Ab12Cd.tmp");
    leave(&foreign, "not ours");

    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let sarif = elsewhere.join("scan.sarif");
    let o = common::posaudit_command()
        .args(["scan", demo.to_str().unwrap(), "--as-of", AS_OF, "--out"])
        .arg(&out)
        .arg("--output")
        .arg(format!("sarif={}", sarif.display()))
        .output()
        .unwrap();
    let err = stderr_of(&o);
    assert!(o.status.code().is_some_and(|c| c < 2), "{err}");
    for gone in [&dead, &dead_sarif] {
        assert!(!gone.exists(), "{} should be removed", gone.display());
        assert!(
            err.contains(&format!(
                "removed {} (1 KiB), an output an earlier scan was writing when it was killed",
                gone.display()
            )),
            "{err}"
        );
    }
    assert!(live.exists(), "a staged file whose writer is alive is kept");
    assert!(foreign.exists(), "a file that is no output of this scan is kept");
    assert!(!err.contains(".cases.csv.") && !err.contains(".notes.txt."), "{err}");
    // The scan's own outputs are whole.
    assert!(std::fs::read_to_string(out.join("manifest.json")).unwrap().ends_with("}\n"));
    serde_json::from_str::<Value>(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    drop(held);
}

#[test]
fn parquet_cut_short_or_not_parquet_stops_with_the_file_named() {
    use polars::prelude::*;
    for (case, partitions) in [("truncated", None), ("truncated", Some("2")), ("not parquet", None)] {
        let (work, data) = base_work();
        transactions_parquet(&data, "txn_id", |n, c| Column::new(n.into(), c.to_vec()));
        let path = data.join("transactions.parquet");
        let bytes = std::fs::read(&path).unwrap();
        let broken = match case {
            "truncated" => bytes[..bytes.len() / 2].to_vec(),
            _ => b"PAR1 not a Parquet file at all".to_vec(),
        };
        std::fs::write(&path, broken).unwrap();
        // A partitioned scan hands a big file's batches on as they are read;
        // at this part size this file is one.
        let mut args = vec!["--fail-on", "never"];
        args.extend(partitions.map(|p| ["--partitions", p]).into_iter().flatten());
        let o = common::posaudit_command()
            .args(scan_args(&args))
            .env("POSAUDIT_PART_BYTES", "64")
            .current_dir(work.path())
            .output()
            .unwrap();
        let err = stderr_of(&o);
        assert_eq!(o.status.code(), Some(2), "{case} {partitions:?}: {err}");
        assert!(
            err.contains("transactions.parquet") && err.contains("not readable as Parquet"),
            "{case} {partitions:?}: {err}"
        );
        invariants("parquet_broken", &data, work.path(), &work.path().join("out"), &o);
    }
}
