//! Cases for a scan: the pack's scoring file, the amounts behind the
//! cash-out signals and the merchants' names, put together by
//! `findings::cases`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::checks::screen::IdScreen;
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

/// What cases need from the data: transaction ids with their amounts
/// (from the prepared frame in memory, from the spill in a partitioned
/// scan) and merchant names (from the applications, before the frames
/// are consumed).
#[derive(Default)]
pub(crate) struct CaseData {
    /// Frames of `txn_id` and `amount`, with `_src` and `_line` where
    /// the rows are not in input order (one per partition, or one).
    pub txns: Vec<DataFrame>,
    pub names: HashMap<String, String>,
}

impl CaseData {
    /// The merchants' names from the applications; no transactions yet.
    pub fn with_names(apps: Option<&DataFrame>) -> CaseData {
        let mut d = CaseData::default();
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
        let needed: PlHashSet<&str> = findings
            .iter()
            .filter(|f| rules.contains(f.rule_id.as_str()))
            .flat_map(|f| f.txn_ids.iter().map(String::as_str))
            .collect();
        let mut out = HashMap::new();
        if needed.is_empty() {
            return out;
        }
        for df in &self.txns {
            // Only the rows named go further: every row's amount and
            // origin, gathered to keep the named ones, took seconds.
            let Ok(df) = df.column("txn_id").and_then(|c| df.filter(&rows_named(c.str()?, &needed))) else {
                continue;
            };
            let df = &df;
            let (Ok(ids), Some(fen)) = (
                df.column("txn_id").and_then(|c| c.str().cloned()),
                crate::checks::scaled(df, "amount"),
            ) else {
                continue;
            };
            // In input order where the frame says where its rows came
            // from (the prepared rows are in merchant order), else in
            // the frame's: of repeated ids, the last one's amount.
            let origin = |c: &str| df.column(c).ok()?.cast(&DataType::UInt64).ok()?.u64().ok().cloned();
            let (src, line) = (origin(crate::input::SRC_COL), origin(crate::input::LINE_COL));
            let mut named: Vec<((u64, u64), &str, i64)> = ids
                .iter()
                .zip(fen)
                .enumerate()
                .filter_map(|(row, (id, fen))| {
                    let id = id.filter(|id| needed.contains(id))?;
                    let at = match (&src, &line) {
                        (Some(s), Some(l)) => (s.get(row).unwrap_or(0), l.get(row).unwrap_or(0)),
                        _ => (0, row as u64),
                    };
                    Some((at, id, fen?))
                })
                .collect();
            named.sort_by_key(|(at, _, _)| *at);
            for (_, id, fen) in named {
                out.insert(id.to_string(), fen);
            }
        }
        out
    }
}

/// Which rows' ids are among `needed`: one look per row (10.7M at the
/// 10M-row month), spread over the thread pool in slices. Most rows are
/// not named, and `IdScreen` tells most of those apart without hashing
/// the whole id.
pub(crate) fn rows_named(ids: &StringChunked, needed: &PlHashSet<&str>) -> BooleanChunked {
    use rayon::prelude::*;
    const SLICE: usize = 1 << 18;
    let screen = IdScreen::of(needed.iter().copied());
    let slices: Vec<_> = ids
        .downcast_iter()
        .flat_map(|a| {
            (0..a.len())
                .step_by(SLICE)
                .map(move |at| a.clone().sliced(at, SLICE.min(a.len() - at)))
        })
        .collect();
    let named: Vec<Vec<bool>> = crate::engine::in_pool(|| {
        slices
            .par_iter()
            .map(|a| {
                a.iter()
                    .map(|id| id.is_some_and(|id| screen.may_hold(id) && needed.contains(id)))
                    .collect()
            })
            .collect()
    });
    BooleanChunked::from_iter_values(ids.name().clone(), named.into_iter().flatten())
}

/// The run's cases, ranked.
pub(crate) fn cases(scoring: &ScoringFile, findings: &[Finding], data: &CaseData) -> Vec<Case> {
    let amounts = data.amounts(findings, &scoring.scoring.cash_out_rules());
    scoring.scoring.cases(findings, &amounts, &data.names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{LINE_COL, SRC_COL};

    fn naming(rule: &str, txns: &[&str]) -> Finding {
        Finding {
            txn_ids: txns.iter().map(|t| t.to_string()).collect(),
            ..Finding::blank(rule)
        }
    }

    #[test]
    fn rows_named_marks_each_named_row_across_chunks_and_slices() {
        // Two chunks, the second longer than one slice of the lookup, and
        // nulls: each row is marked where its id is named, in row order.
        let id = |i: usize| (i % 7 != 3).then(|| format!("t{i}"));
        let mut ids: StringChunked = (0..1000).map(id).collect();
        ids.append(&(1000..600_000).map(id).collect()).unwrap();
        assert_eq!(ids.chunks().len(), 2);
        let named_ids = ["t5", "t999", "t1000", "t262143", "t262144", "t262146", "t599999", "t3"];
        let needed: PlHashSet<&str> = named_ids.into_iter().collect();
        let named = rows_named(&ids, &needed);
        assert_eq!(named.len(), 600_000);
        let rows: Vec<usize> = named.iter().enumerate().filter(|(_, m)| *m == Some(true)).map(|(r, _)| r).collect();
        // Rows 3 and 262146 (row % 7 == 3) are null: t3 and t262146 are not there.
        assert_eq!(rows, [5, 999, 1000, 262143, 262144, 599999]);
    }

    #[test]
    fn a_repeated_id_takes_the_amount_of_its_last_row_in_the_input_whatever_the_frame_order() {
        // Prepared rows in merchant order: t1's rows come from file 1 line
        // 9, then file 0 line 4 (the earlier in the input), then t2.
        let prepared = df!(
            "txn_id" => ["t1", "t1", "t2", "t3"],
            "amount" => [700i32, 500, 100, 900],
            SRC_COL => [1u32, 0, 0, 0],
            LINE_COL => [9u64, 4, 2, 3],
        )
        .unwrap();
        let data = CaseData {
            txns: vec![prepared.clone()],
            names: HashMap::new(),
        };
        let findings = [naming("SUS-CASH-01", &["t1", "t2"]), naming("OTHER", &["t3"])];
        let rules: std::collections::BTreeSet<&str> = ["SUS-CASH-01"].into();
        let amounts = data.amounts(&findings, &rules);
        // File 1 comes after file 0: its row is the last.
        assert_eq!(amounts, HashMap::from([("t1".to_string(), 700), ("t2".to_string(), 100)]));
        // Without origins, the frame's order: the last row of t1 is 500.
        let data = CaseData {
            txns: vec![prepared.select(["txn_id", "amount"]).unwrap()],
            names: HashMap::new(),
        };
        assert_eq!(data.amounts(&findings, &rules)["t1"], 500);
    }
}
