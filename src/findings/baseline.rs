//! A previous run's findings, to tell a scheduler's officer what is new
//! today (Semgrep's `--baseline-commit`, for data).
//!
//! Findings are compared by fingerprint, which is made from the rule, the
//! entity and its key values, never from file names, line numbers or the
//! order of rows: a rerun over renamed or reordered files, or over a
//! window that moved by a day, keeps the fingerprints of what it finds
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::model::{BaselineState, Finding};

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("baseline {path}:{line}: {message}")]
    BadLine { path: PathBuf, line: usize, message: String },
}

/// The findings of a previous run, by fingerprint, as that run wrote them.
#[derive(Debug, Default)]
pub struct Baseline {
    pub path: PathBuf,
    findings: BTreeMap<String, Value>,
    /// Fingerprints of the previous run's shadow findings (its
    /// `shadow-findings.jsonl`, when the baseline is a run's folder).
    shadow: BTreeSet<String>,
}

/// Names a run's output folder holds its findings under, in the order
/// they are looked for.
const FINDINGS_FILES: [&str; 2] = ["findings.jsonl", "findings.csv"];
/// Where a run writes its shadow findings.
pub const SHADOW_FILE: &str = "shadow-findings.jsonl";

impl Baseline {
    /// A previous run's output folder, or its `findings.jsonl` or
    /// `findings.csv` (what `scan --format` writes).
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let unreadable = |message: String| BaselineError::Unreadable {
            path: path.to_path_buf(),
            message,
        };
        let file = if path.is_dir() {
            FINDINGS_FILES.iter().map(|n| path.join(n)).find(|p| p.is_file()).ok_or_else(|| {
                unreadable(
                    "the folder holds no findings.jsonl or findings.csv (give a previous run's --out folder, or its findings file)".into(),
                )
            })?
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| BaselineError::Unreadable {
            path: file.clone(),
            message: e.to_string(),
        })?;
        let is_csv = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let findings = if is_csv {
            from_csv(&file, &text)?
        } else {
            from_jsonl(&file, &text)?
        };
        let shadow_file = path.join(SHADOW_FILE);
        let shadow = if path.is_dir() && shadow_file.is_file() {
            let text = std::fs::read_to_string(&shadow_file).map_err(|e| BaselineError::Unreadable {
                path: shadow_file.clone(),
                message: e.to_string(),
            })?;
            from_jsonl(&shadow_file, &text)?.into_keys().collect()
        } else {
            BTreeSet::new()
        };
        Ok(Baseline {
            path: file,
            findings,
            shadow,
        })
    }

    pub fn len(&self) -> usize {
        self.findings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// Mark today's findings `new` or `unchanged`, and return the baseline's
    /// findings that are gone (`resolved`). A finding of a rule that did not
    /// run today (`ran` lacks it: skipped, failed, or no longer in the pack)
    /// cannot have been resolved by today's data; those are counted apart.
    /// Findings of rules in `shadow` are compared in the shadow output
    /// (see [`Baseline::mark_shadow`]) and neither resolved nor counted.
    pub fn mark(&self, findings: &mut [Finding], ran: &BTreeSet<&str>, shadow: &BTreeSet<String>) -> Compared {
        let mut today = BTreeSet::new();
        let mut c = Compared::default();
        for f in findings.iter_mut() {
            let state = if self.findings.contains_key(&f.fingerprint) {
                c.unchanged += 1;
                BaselineState::Unchanged
            } else {
                c.new += 1;
                BaselineState::New
            };
            f.baseline = Some(state);
            today.insert(f.fingerprint.as_str());
        }
        for (fp, v) in &self.findings {
            if today.contains(fp.as_str()) {
                continue;
            }
            let rule = v.get("rule_id").and_then(Value::as_str).unwrap_or("");
            if shadow.contains(rule) {
                continue;
            }
            if !ran.contains(rule) {
                c.not_rechecked += 1;
                continue;
            }
            let mut v = v.clone();
            if let Value::Object(m) = &mut v {
                m.insert("baseline".into(), Value::String(BaselineState::Resolved.name().into()));
            }
            c.resolved.push(v);
        }
        c
    }
}

impl Baseline {
    /// Mark shadow findings `new` or `unchanged` against everything the
    /// previous run found, shadow or not; shadow findings are never
    /// listed as resolved.
    pub fn mark_shadow(&self, findings: &mut [Finding]) {
        for f in findings {
            let seen = self.findings.contains_key(&f.fingerprint) || self.shadow.contains(&f.fingerprint);
            f.baseline = Some(if seen { BaselineState::Unchanged } else { BaselineState::New });
        }
    }
}

/// Today's findings against the baseline.
#[derive(Debug, Default)]
pub struct Compared {
    pub new: usize,
    pub unchanged: usize,
    /// The baseline's findings not found today, as the baseline wrote them
    /// (with `"baseline": "resolved"`), in fingerprint order.
    pub resolved: Vec<Value>,
    /// Baseline findings of rules that did not run today.
    pub not_rechecked: usize,
}

fn from_jsonl(path: &Path, text: &str) -> Result<BTreeMap<String, Value>, BaselineError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| BaselineError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not a finding (JSON): {e}")))?;
        let fp = v
            .get("fingerprint")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a finding without a `fingerprint`".into()))?
            .to_string();
        out.insert(fp, v);
    }
    Ok(out)
}

fn from_csv(path: &Path, text: &str) -> Result<BTreeMap<String, Value>, BaselineError> {
    let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = r
        .headers()
        .map_err(|e| BaselineError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .clone();
    let fp_col = headers
        .iter()
        .position(|h| h == "fingerprint")
        .ok_or_else(|| BaselineError::Unreadable {
            path: path.to_path_buf(),
            message: "no `fingerprint` column: not a posaudit findings file".into(),
        })?;
    let mut out = BTreeMap::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| BaselineError::BadLine {
            path: path.to_path_buf(),
            line: i + 2,
            message: e.to_string(),
        })?;
        let obj: serde_json::Map<String, Value> = headers
            .iter()
            .zip(rec.iter())
            .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
            .collect();
        out.insert(rec.get(fp_col).unwrap_or("").to_string(), Value::Object(obj));
    }
    Ok(out)
}
