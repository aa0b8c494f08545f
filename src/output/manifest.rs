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
    pub reference_tables: Vec<crate::input::reference::RefOrigin>,
    pub rule_runs: Vec<RuleRun>,
    pub findings: Counts,
    pub outputs: Vec<String>,
    pub threads: usize,
    pub fail_on: String,
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
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub total: usize,
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
    }
    out
}
