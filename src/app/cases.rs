//! Cases for a scan: the pack's scoring file, the amounts behind the
//! cash-out signals and the merchants' names, put together by
//! `findings::cases`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::findings::cases::{Case, ScoringFile};
use crate::findings::Finding;
use crate::rules::load::{self, RuleErrors, RulePack};
use crate::Error;

/// The scoring file of a pack: `scoring.yaml` in one of its folders, or
/// the built-in one with the built-in pack. None: the pack has none (no
/// cases are written).
pub fn scoring_path(pack: &RulePack) -> Option<Result<(String, String), Error>> {
    for d in &pack.dirs {
        if d.starts_with("(built-in)") {
            return load::builtin_file("scoring.yaml").map(|t| Ok(("(built-in)/rules/scoring.yaml".to_string(), t)));
        }
        for name in ["scoring.yaml", "scoring.yml"] {
            let p = Path::new(d).join(name);
            if p.is_file() {
                return Some(
                    std::fs::read_to_string(&p)
                        .map(|t| (p.display().to_string(), t))
                        .map_err(|e| Error::Output(PathBuf::from(&p), e)),
                );
            }
        }
    }
    None
}

/// Load and check the pack's scoring file (problems: exit 3, at their line).
pub fn load_scoring(pack: &RulePack) -> Result<Option<ScoringFile>, Error> {
    let Some(found) = scoring_path(pack) else { return Ok(None) };
    let (file, text) = found?;
    let s = ScoringFile::parse(&file, text).map_err(|e| Error::Scoring(RuleErrors(e)))?;
    let problems = s.check(&rule_severities(pack));
    if !problems.is_empty() {
        return Err(Error::Scoring(RuleErrors(problems)));
    }
    Ok(Some(s))
}

pub(crate) fn rule_severities(pack: &RulePack) -> BTreeMap<String, crate::rules::model::Severity> {
    pack.rules.iter().map(|r| (r.rule.id.clone(), r.rule.severity)).collect()
}

/// What cases need from the data, taken before the frames are consumed:
/// transaction ids with their amounts, and merchant names.
#[derive(Default)]
pub(crate) struct CaseData {
    /// Frames of `txn_id` and `amount` (one per partition, or one).
    pub txns: Vec<DataFrame>,
    pub names: HashMap<String, String>,
}

impl CaseData {
    pub fn take(txns: Option<&DataFrame>, apps: Option<&DataFrame>) -> CaseData {
        let mut d = CaseData::default();
        if let Some(t) = txns.and_then(|t| t.select(["txn_id", "amount"]).ok()) {
            d.txns.push(t);
        }
        if let Some(a) = apps {
            if let (Ok(ids), Ok(names)) = (a.column("merchant_id"), a.column("merchant_name")) {
                if let (Ok(ids), Ok(names)) = (ids.str(), names.str()) {
                    for (i, n) in ids.iter().zip(names.iter()) {
                        if let (Some(i), Some(n)) = (i, n) {
                            d.names.entry(i.to_string()).or_insert_with(|| n.to_string());
                        }
                    }
                }
            }
        }
        d
    }

    /// Amounts (fen) of the transactions the findings of `rules` name.
    fn amounts(&self, findings: &[Finding], rules: &std::collections::BTreeSet<&str>) -> HashMap<String, i64> {
        let needed: HashSet<&str> = findings
            .iter()
            .filter(|f| rules.contains(f.rule_id.as_str()))
            .flat_map(|f| f.txn_ids.iter().map(String::as_str))
            .collect();
        let mut out = HashMap::new();
        if needed.is_empty() {
            return out;
        }
        for df in &self.txns {
            let (Ok(ids), Some(fen)) = (
                df.column("txn_id").and_then(|c| c.str().cloned()),
                crate::checks::scaled(df, "amount"),
            ) else {
                continue;
            };
            for (id, fen) in ids.iter().zip(fen) {
                if let (Some(id), Some(fen)) = (id, fen) {
                    if needed.contains(id) {
                        out.insert(id.to_string(), fen);
                    }
                }
            }
        }
        out
    }
}

/// The run's cases, ranked.
pub(crate) fn cases(scoring: &ScoringFile, findings: &[Finding], data: &CaseData) -> Vec<Case> {
    let amounts = data.amounts(findings, &scoring.scoring.cash_out_rules());
    scoring.scoring.cases(findings, &amounts, &data.names)
}
