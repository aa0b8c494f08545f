//! Measured quality: findings against a labelled set (analysts'
//! dispositions, or what the generator planted), per rule, per family and
//! overall, at the merchant level: precision, recall and F1.
//!
//! A labels file is CSV with `merchant_id`, `rule_id` (optional), `family`
//! (optional) and `disposition` (`confirmed` or `dismissed`). What a label
//! says about merchant M and rule R (of family F):
//! 1. a row for M and R says it;
//! 2. else a row for M and F without a rule says it;
//! 3. else a row for M alone says it (`dismissed`: the merchant is clean);
//! 4. else, if M has confirmed rows for other rules or families, R is
//!    taken as not violated (the labels name M's violations);
//! 5. else nothing is known: a finding on M is counted as unlabelled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::Finding;
use crate::rules::model::{Family, Severity};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub merchant_id: String,
    pub rule_id: Option<String>,
    pub family: Option<Family>,
    pub confirmed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Row { path: String, line: u64, message: String },
}

/// Read a labels file; every problem names its line.
pub fn read_labels(path: &Path) -> Result<Vec<Label>, LabelError> {
    let p = path.display().to_string();
    let file_err = |message: String| LabelError::File { path: p.clone(), message };
    let mut r = csv::Reader::from_path(path).map_err(|e| file_err(e.to_string()))?;
    let headers = r.headers().map_err(|e| file_err(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let m = col("merchant_id").ok_or_else(|| file_err("column `merchant_id` is missing".into()))?;
    let d = col("disposition").ok_or_else(|| file_err("column `disposition` is missing".into()))?;
    let (ri, fi) = (col("rule_id"), col("family"));
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i as u64 + 2;
        let row_err = |message: String| LabelError::Row {
            path: p.clone(),
            line,
            message,
        };
        let rec = rec.map_err(|e| row_err(e.to_string()))?;
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).map(str::trim).filter(|s| !s.is_empty());
        let merchant_id = get(Some(m)).ok_or_else(|| row_err("empty merchant_id".into()))?.to_string();
        let confirmed = match get(Some(d)) {
            Some("confirmed") => true,
            Some("dismissed") => false,
            other => {
                return Err(row_err(format!(
                    "disposition `{}` is neither `confirmed` nor `dismissed`",
                    other.unwrap_or("")
                )))
            }
        };
        let family = match get(fi) {
            None => None,
            Some(f) => Some(
                Family::ALL
                    .into_iter()
                    .find(|x| x.name() == f)
                    .ok_or_else(|| row_err(format!("`{f}` is not a family")))?,
            ),
        };
        out.push(Label {
            merchant_id,
            rule_id: get(ri).map(str::to_string),
            family,
            confirmed,
        });
    }
    Ok(out)
}

/// One line of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Score {
    pub name: String,
    /// Merchants with at least one finding.
    pub flagged: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// Flagged merchants the labels say nothing about.
    pub unlabelled: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

impl Score {
    fn new(name: &str, flagged: &BTreeSet<&str>, positive: &BTreeSet<&str>, negative: &BTreeSet<&str>) -> Score {
        let tp = flagged.intersection(positive).count();
        let fp = flagged.intersection(negative).count();
        let fnn = positive.difference(flagged).count();
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fnn);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Score {
            name: name.to_string(),
            flagged: flagged.len(),
            true_positives: tp,
            false_positives: fp,
            false_negatives: fnn,
            unlabelled: flagged.len() - tp - fp,
            precision,
            recall,
            f1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub min_severity: Severity,
    pub labelled_merchants: usize,
    pub rules: Vec<Score>,
    pub families: Vec<Score>,
    pub overall: Score,
}

/// A rule of the pack, as the evaluation needs it.
pub struct RuleInfo<'a> {
    pub id: &'a str,
    pub family: Family,
    pub severity: Severity,
}

/// What the labels say about one merchant.
#[derive(Default)]
struct Truth<'a> {
    by_rule: BTreeMap<&'a str, bool>,
    by_family: BTreeMap<Family, bool>,
    merchant: Option<bool>,
    /// Some rule or family is confirmed: the labels name this merchant's violations.
    names_violations: bool,
}

impl Truth<'_> {
    fn rule(&self, id: &str, family: Family) -> Option<bool> {
        self.by_rule
            .get(id)
            .or_else(|| self.by_family.get(&family))
            .copied()
            .or(self.merchant.filter(|c| !c))
            .or(self.names_violations.then_some(false))
    }
}

pub fn evaluate(findings: &[Finding], rules: &[RuleInfo], labels: &[Label], min: Severity) -> Evaluation {
    let considered: BTreeMap<&str, &RuleInfo> = rules.iter().filter(|r| r.severity >= min).map(|r| (r.id, r)).collect();
    let family_of = |id: &str| rules.iter().find(|r| r.id == id).map(|r| r.family);
    let mut truth: BTreeMap<&str, Truth> = BTreeMap::new();
    for l in labels {
        let t = truth.entry(l.merchant_id.as_str()).or_default();
        match (&l.rule_id, l.family) {
            (Some(r), _) => {
                // A rule below the severity considered is left out of the
                // counts, but still says the merchant's violation is that one.
                if considered.contains_key(r.as_str()) || family_of(r).is_none() {
                    *t.by_rule.entry(r.as_str()).or_insert(false) |= l.confirmed;
                }
                t.names_violations |= l.confirmed;
            }
            (None, Some(f)) => {
                *t.by_family.entry(f).or_insert(false) |= l.confirmed;
                t.names_violations |= l.confirmed;
            }
            (None, None) => t.merchant = Some(t.merchant.unwrap_or(false) | l.confirmed),
        }
    }
    let mut flagged_by_rule: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.severity >= min) {
        let set = flagged_by_rule.entry(f.rule_id.as_str()).or_default();
        set.extend(f.merchant_ids.iter().map(String::as_str));
    }
    let sets_for = |pred: &dyn Fn(&Truth) -> Option<bool>| {
        let mut pos = BTreeSet::new();
        let mut neg = BTreeSet::new();
        for (m, t) in &truth {
            match pred(t) {
                Some(true) => {
                    pos.insert(*m);
                }
                Some(false) => {
                    neg.insert(*m);
                }
                None => {}
            }
        }
        (pos, neg)
    };
    let empty = BTreeSet::new();
    let rule_scores: Vec<Score> = considered
        .values()
        .map(|r| {
            let (pos, neg) = sets_for(&|t| t.rule(r.id, r.family));
            Score::new(r.id, flagged_by_rule.get(r.id).unwrap_or(&empty), &pos, &neg)
        })
        .collect();
    let family_truth = |t: &Truth, fam: Family| -> Option<bool> {
        let confirmed = t.by_rule.iter().any(|(r, c)| *c && family_of(r) == Some(fam)) || t.by_family.get(&fam) == Some(&true);
        if confirmed {
            return Some(true);
        }
        let any_known = t.by_family.contains_key(&fam) || t.by_rule.keys().any(|r| family_of(r) == Some(fam));
        if any_known || t.merchant == Some(false) || t.names_violations {
            Some(false)
        } else {
            None
        }
    };
    let family_scores: Vec<Score> = Family::ALL
        .into_iter()
        .map(|fam| {
            let (pos, neg) = sets_for(&|t| family_truth(t, fam));
            let flagged: BTreeSet<&str> = flagged_by_rule
                .iter()
                .filter(|(r, _)| considered.get(*r).is_some_and(|i| i.family == fam))
                .flat_map(|(_, s)| s.iter().copied())
                .collect();
            Score::new(fam.name(), &flagged, &pos, &neg)
        })
        .collect();
    let (pos, neg) = sets_for(&|t| {
        let confirmed = t.by_rule.values().any(|c| *c) || t.by_family.values().any(|c| *c) || t.merchant == Some(true);
        if confirmed {
            Some(true)
        } else if t.merchant == Some(false) || !t.by_rule.is_empty() || !t.by_family.is_empty() {
            Some(false)
        } else {
            None
        }
    });
    let flagged: BTreeSet<&str> = flagged_by_rule
        .iter()
        .filter(|(r, _)| considered.contains_key(*r))
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    Evaluation {
        min_severity: min,
        labelled_merchants: truth.len(),
        rules: rule_scores,
        families: family_scores,
        overall: Score::new("overall", &flagged, &pos, &neg),
    }
}

/// The report as a Markdown table.
pub fn markdown(e: &Evaluation) -> String {
    let num = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
    let mut s = format!(
        "## Detection quality at severity {} and above ({} labelled merchants)\n\n| rule or family | flagged | true | false | missed | unlabelled | precision | recall | F1 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        e.min_severity.name(),
        e.labelled_merchants
    );
    let mut row = |sc: &Score, bold: bool| {
        let name = if bold { format!("**{}**", sc.name) } else { sc.name.clone() };
        s.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            sc.flagged,
            sc.true_positives,
            sc.false_positives,
            sc.false_negatives,
            sc.unlabelled,
            num(sc.precision),
            num(sc.recall),
            num(sc.f1)
        ));
    };
    row(&e.overall, true);
    for f in &e.families {
        row(f, true);
    }
    for r in &e.rules {
        row(r, false);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::Severity;

    fn finding(rule: &str, merchants: &[&str]) -> Finding {
        Finding {
            merchant_ids: merchants.iter().map(|m| m.to_string()).collect(),
            ..Finding::blank(rule)
        }
    }

    fn label(m: &str, rule: Option<&str>, confirmed: bool) -> Label {
        Label {
            merchant_id: m.into(),
            rule_id: rule.map(str::to_string),
            family: None,
            confirmed,
        }
    }

    #[test]
    fn precision_and_recall_count_merchants() {
        let rules = [
            RuleInfo {
                id: "SUS-A",
                family: Family::SuspiciousPatterns,
                severity: Severity::Medium,
            },
            RuleInfo {
                id: "SUS-B",
                family: Family::SuspiciousPatterns,
                severity: Severity::Low,
            },
        ];
        // M1 and M2 violate A; M3 and M4 are clean; M5 violates B only; M6 is unknown.
        let labels = vec![
            label("M1", Some("SUS-A"), true),
            label("M2", Some("SUS-A"), true),
            label("M3", None, false),
            label("M4", None, false),
            label("M5", Some("SUS-B"), true),
        ];
        // A flags M1 (true), M3 (false), M5 (false: M5's violations are named) and M6 (unlabelled); it misses M2.
        let fs = vec![finding("SUS-A", &["M1", "M3"]), finding("SUS-A", &["M5", "M6"])];
        let e = evaluate(&fs, &rules, &labels, Severity::Medium);
        assert_eq!(e.rules.len(), 1, "SUS-B is below medium");
        let a = &e.rules[0];
        assert_eq!(
            (a.flagged, a.true_positives, a.false_positives, a.false_negatives, a.unlabelled),
            (4, 1, 2, 1, 1)
        );
        assert_eq!(a.precision, Some(1.0 / 3.0));
        assert_eq!(a.recall, Some(0.5));
        let fam = e.families.iter().find(|f| f.name == "suspicious_patterns").unwrap();
        assert_eq!((fam.true_positives, fam.false_positives, fam.false_negatives), (1, 2, 1));
    }
}
