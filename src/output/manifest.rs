//! The run manifest: what was read, with which rules, and what came out,
//! for the audit trail.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::RuleRun;
use crate::findings::Finding;
use crate::input::FileStats;

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: &'static str,
    pub version: &'static str,
    pub as_of: String,
    pub rules: RulesInfo,
    pub inputs: Vec<FileStats>,
    pub totals: BTreeMap<String, Totals>,
    pub ignored_files: Vec<String>,
    pub mapping: Option<String>,
    /// `--window`: the days checked and the files not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowReport>,
    /// The parse cache: files read from it and parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::input::cache::CacheReport>,
    pub reference_tables: Vec<crate::input::reference::RefOrigin>,
    pub rule_runs: Vec<RuleRun>,
    pub findings: Counts,
    pub outputs: Vec<String>,
    pub threads: usize,
    /// Partitions the rules were evaluated in (1: in memory); with
    /// `--partitions auto`, the number it chose.
    pub partitions: usize,
    pub fail_on: String,
    /// Cases per merchant (with a scoring file): counts and the top ten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cases: Option<CasesReport>,
    /// Shadow rules, exceptions and the baseline, when the run had them.
    #[serde(flatten)]
    pub triage: TriageReport,
    pub exit_code: i32,
    pub elapsed_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct RulesInfo {
    pub dirs: Vec<String>,
    pub files: Vec<String>,
    pub digest: String,
    pub count: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_outside_window: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub total: usize,
    /// Of `total`, findings an exception covers.
    pub suppressed: usize,
    /// Of `total`, findings not in the baseline (with `--baseline`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    pub by_severity: BTreeMap<String, usize>,
    pub by_family: BTreeMap<String, usize>,
    pub by_rule: BTreeMap<String, usize>,
    /// Findings per merchant: a finding that involves several merchants
    /// counts for each of them.
    pub by_merchant: BTreeMap<String, usize>,
}

impl Counts {
    pub fn of(findings: &[Finding]) -> Counts {
        let mut c = Counts {
            total: findings.len(),
            ..Default::default()
        };
        for f in findings {
            if f.status == crate::findings::model::Status::Suppressed {
                c.suppressed += 1;
            }
            if f.baseline == Some(crate::findings::model::BaselineState::New) {
                *c.new.get_or_insert(0) += 1;
            } else if f.baseline.is_some() {
                c.new.get_or_insert(0);
            }
            *c.by_severity.entry(f.severity.name().to_string()).or_default() += 1;
            *c.by_family.entry(f.family.name().to_string()).or_default() += 1;
            *c.by_rule.entry(f.rule_id.clone()).or_default() += 1;
            for m in &f.merchant_ids {
                *c.by_merchant.entry(m.clone()).or_default() += 1;
            }
        }
        c
    }
}

pub fn totals(stats: &[FileStats]) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for s in stats {
        let t = out.entry(s.input.name().to_string()).or_default();
        t.rows_read += s.rows_read;
        t.rows_accepted += s.rows_accepted;
        t.rows_rejected += s.rows_rejected;
        t.rows_outside_window += s.rows_outside_window;
    }
    out
}

/// The manifest's account of shadow rules, exceptions and the baseline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TriageReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<crate::findings::exceptions::ExceptionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    pub rules: Vec<String>,
    pub findings: usize,
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    pub path: String,
    pub baseline_findings: usize,
    pub new: usize,
    pub unchanged: usize,
    pub resolved: usize,
    /// Baseline findings of rules that did not run today: neither found
    /// again nor resolved.
    pub not_rechecked: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    pub from: String,
    pub to: String,
    pub days: u32,
    /// Transaction files dated (by name) outside the window: not read.
    pub files_outside: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CasesReport {
    pub scoring_file: String,
    pub scoring_digest: String,
    pub count: usize,
    pub by_severity: BTreeMap<String, usize>,
    pub by_typology: BTreeMap<String, usize>,
    pub top: Vec<TopCase>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopCase {
    pub rank: usize,
    pub merchant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    pub score: f64,
    pub severity: String,
    pub typologies: Vec<String>,
}

impl CasesReport {
    pub fn of(cases: &[crate::findings::cases::Case], file: &str, digest: &str) -> CasesReport {
        let mut by_severity = BTreeMap::new();
        let mut by_typology = BTreeMap::new();
        for c in cases {
            *by_severity.entry(c.severity.name().to_string()).or_default() += 1;
            for t in &c.typologies {
                *by_typology.entry(t.clone()).or_default() += 1;
            }
        }
        CasesReport {
            scoring_file: file.to_string(),
            scoring_digest: digest.to_string(),
            count: cases.len(),
            by_severity,
            by_typology,
            top: cases
                .iter()
                .take(10)
                .map(|c| TopCase {
                    rank: c.rank,
                    merchant_id: c.merchant_id.clone(),
                    merchant_name: c.merchant_name.clone(),
                    score: c.score,
                    severity: c.severity.name().to_string(),
                    typologies: c.typologies.clone(),
                })
                .collect(),
        }
    }
}
