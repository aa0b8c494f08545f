//! Cases: officers act on merchants, not on rows. A case gathers every
//! finding that names a merchant (multi-merchant findings count for each
//! of their merchants), scores it, and sets its severity, all from the
//! scoring file (`scoring.yaml` beside the rules): weights per severity,
//! family and rule, and typologies that combine signals, as Tazama's
//! rules-to-typologies model does (cash-out = round amounts + night
//! trading + split transactions + a card at many merchants; 二清 =
//! settlement to another account + an account shared across merchants).
//! The catalogue's SUS-ESC-01 lives here too: the suspected cash-out
//! amount of a merchant crossing 1,000,000 / 5,000,000 yuan sets the
//! 情节严重 / 情节特别严重 tiers of the 2009 两高 interpretation (法释〔2009〕19号).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::model::{Finding, Status};
use crate::rules::load::{parse_side_file, side_file_issue, RuleIssue};
use crate::rules::model::{Family, Severity};

/// The scoring file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// Points of one finding of each severity.
    pub severity_points: BTreeMap<Severity, f64>,
    /// Multipliers per family (default 1).
    #[serde(default)]
    pub family_weights: BTreeMap<Family, f64>,
    /// Multipliers per rule (default 1).
    #[serde(default)]
    pub rule_weights: BTreeMap<String, f64>,
    /// Each further finding of one rule adds this share of the first's
    /// points (a hundred night transactions are one pattern, not a
    /// hundred), up to `max_per_rule` findings.
    pub repeat_share: f64,
    pub max_per_rule: u32,
    /// The lowest score of each case severity.
    pub case_severity: BTreeMap<Severity, f64>,
    #[serde(default)]
    pub typologies: Vec<Typology>,
    #[serde(default)]
    pub escalation: Option<Escalation>,
    /// Cases for the scoring itself (`rules test`).
    #[serde(default)]
    pub tests: Vec<ScoringTest>,
}

/// Signals that together make a known scheme.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Typology {
    pub id: String,
    pub title: String,
    pub title_zh: String,
    /// Rules whose findings are its signals.
    pub signals: Vec<String>,
    /// How many different signals must fire.
    pub min_signals: usize,
    /// Points added to the case when it fires.
    pub points: f64,
    /// The case is at least this severe when it fires.
    pub severity: Severity,
}

/// SUS-ESC-01: tiers by the amount of suspected cash-out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub id: String,
    /// The typology whose signals' transactions are the suspected cash-out.
    pub typology: String,
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// From this many yuan (whole yuan).
    pub from_yuan: i64,
    pub label: String,
    pub label_zh: String,
    pub severity: Severity,
}

/// A case of the scoring file: signals in, expectations out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringTest {
    pub name: String,
    pub findings: Vec<TestFinding>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFinding {
    pub rule: String,
    /// Default: the rule's severity in the pack.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Yuan of the finding's transactions (for the cash-out tiers).
    #[serde(default)]
    pub amount_yuan: Option<i64>,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub typologies: Option<Vec<String>>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub min_score: Option<f64>,
    #[serde(default)]
    pub max_score: Option<f64>,
}

/// Where the scoring file is, for located problems.
pub struct ScoringFile {
    pub file: String,
    pub text: String,
    pub digest: String,
    pub scoring: Scoring,
}

fn issue(file: &str, text: &str, id: &str, field: &str, message: String) -> RuleIssue {
    let message = if id.is_empty() { message } else { format!("{id}: {message}") };
    side_file_issue(file, text, id, field, message)
}

impl ScoringFile {
    pub fn load(path: &Path) -> Result<ScoringFile, Vec<RuleIssue>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![RuleIssue::of_file(file.clone(), format!("cannot read the scoring file: {e}"))])?;
        ScoringFile::parse(&file, text)
    }

    pub fn parse(file: &str, text: String) -> Result<ScoringFile, Vec<RuleIssue>> {
        use sha2::Digest;
        let scoring: Scoring = parse_side_file(file, &text)?;
        Ok(ScoringFile {
            file: file.to_string(),
            digest: sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
            text,
            scoring,
        })
    }

    /// What `rules check` says about the file against the pack's rules.
    pub fn check(&self, rules: &BTreeMap<String, Severity>) -> Vec<RuleIssue> {
        let s = &self.scoring;
        let (f, t) = (self.file.as_str(), self.text.as_str());
        let mut out = Vec::new();
        for sev in Severity::ALL {
            if !s.severity_points.contains_key(&sev) {
                out.push(issue(f, t, "", "severity_points", format!("no points for `{}`", sev.name())));
            }
        }
        let mut last = f64::MIN;
        for (sev, from) in &s.case_severity {
            if *from < last {
                out.push(issue(
                    f,
                    t,
                    "",
                    "case_severity",
                    format!("`{}` starts below a lower severity: thresholds must rise with severity", sev.name()),
                ));
            }
            last = *from;
        }
        if !(0.0..=1.0).contains(&s.repeat_share) {
            out.push(issue(f, t, "", "repeat_share", "must be between 0 and 1".into()));
        }
        for id in s.rule_weights.keys() {
            if !rules.contains_key(id) {
                out.push(issue(f, t, "", "rule_weights", format!("no rule `{id}` in the pack")));
            }
        }
        let mut seen = BTreeSet::new();
        for ty in &s.typologies {
            if !seen.insert(ty.id.clone()) {
                out.push(issue(f, t, &ty.id, "id", "duplicate typology id".into()));
            }
            for sig in &ty.signals {
                if !rules.contains_key(sig) {
                    out.push(issue(f, t, &ty.id, "signals", format!("no rule `{sig}` in the pack")));
                }
            }
            if ty.min_signals == 0 || ty.min_signals > ty.signals.len() {
                out.push(issue(
                    f,
                    t,
                    &ty.id,
                    "min_signals",
                    format!("must be between 1 and its {} signals", ty.signals.len()),
                ));
            }
        }
        if let Some(e) = &s.escalation {
            if !s.typologies.iter().any(|ty| ty.id == e.typology) {
                out.push(issue(f, t, &e.id, "typology", format!("no typology `{}` in this file", e.typology)));
            }
            if e.tiers.windows(2).any(|w| w[0].from_yuan >= w[1].from_yuan) {
                out.push(issue(f, t, &e.id, "tiers", "tiers must rise in amount".into()));
            }
        }
        for c in &s.tests {
            for tf in &c.findings {
                if !rules.contains_key(&tf.rule) {
                    out.push(issue(
                        f,
                        t,
                        "",
                        "tests",
                        format!("case `{}`: no rule `{}` in the pack", c.name, tf.rule),
                    ));
                }
            }
        }
        out
    }
}

/// One merchant's case.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub rank: usize,
    pub merchant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    pub score: f64,
    pub severity: Severity,
    /// Typologies that fired (ids).
    pub typologies: Vec<String>,
    /// SUS-ESC-01 tier, when the suspected cash-out crosses one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Yuan of distinct transactions behind the cash-out signals.
    pub suspected_cash_out: String,
    pub findings: usize,
    pub open: usize,
    pub suppressed: usize,
    /// With a baseline: findings new today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    /// The highest severity among its open findings.
    pub top_finding_severity: Severity,
    /// Rules that fired, with their counts.
    pub rules: BTreeMap<String, usize>,
    /// Fingerprints of its findings, by family.
    pub by_family: BTreeMap<String, Vec<String>>,
}

/// What a case is made of, before it is ranked.
struct Signals<'a> {
    /// rule -> (severity, family, open findings)
    rules: BTreeMap<&'a str, (Severity, Family, u32)>,
    findings: Vec<&'a Finding>,
}

impl Scoring {
    fn points(&self, rule: &str, severity: Severity, family: Family, n: u32) -> f64 {
        if n == 0 {
            return 0.0;
        }
        let base = self.severity_points.get(&severity).copied().unwrap_or(0.0)
            * self.family_weights.get(&family).copied().unwrap_or(1.0)
            * self.rule_weights.get(rule).copied().unwrap_or(1.0);
        let extra = n.min(self.max_per_rule.max(1)) - 1;
        base * (1.0 + self.repeat_share * f64::from(extra))
    }

    fn severity_of(&self, score: f64) -> Severity {
        let mut out = Severity::Info;
        for (sev, from) in &self.case_severity {
            if score >= *from {
                out = out.max(*sev);
            }
        }
        out
    }

    /// Score one merchant: rules -> (severity, family, open count), and
    /// the suspected cash-out in fen.
    fn assess(&self, rules: &BTreeMap<&str, (Severity, Family, u32)>, cash_out_fen: i64) -> (f64, Severity, Vec<String>, Option<Tier>) {
        let mut score: f64 = rules.iter().map(|(r, (s, f, n))| self.points(r, *s, *f, *n)).sum();
        let mut severity_floor = Severity::Info;
        let mut fired = Vec::new();
        for ty in &self.typologies {
            let n = ty.signals.iter().filter(|s| rules.get(s.as_str()).is_some_and(|v| v.2 > 0)).count();
            if n >= ty.min_signals {
                score += ty.points;
                severity_floor = severity_floor.max(ty.severity);
                fired.push(ty.id.clone());
            }
        }
        let tier = self.escalation.as_ref().and_then(|e| {
            e.tiers
                .iter()
                .rev()
                .find(|t| cash_out_fen >= t.from_yuan.saturating_mul(100))
                .cloned()
        });
        if let Some(t) = &tier {
            severity_floor = severity_floor.max(t.severity);
        }
        let score = (score * 100.0).round() / 100.0;
        (score, self.severity_of(score).max(severity_floor), fired, tier)
    }

    /// The rules whose transactions are suspected cash-out.
    pub fn cash_out_rules(&self) -> BTreeSet<&str> {
        let Some(e) = &self.escalation else { return BTreeSet::new() };
        self.typologies
            .iter()
            .filter(|t| t.id == e.typology)
            .flat_map(|t| t.signals.iter().map(String::as_str))
            .collect()
    }

    /// One case per merchant named by an open or suppressed finding,
    /// ranked by score (then severity, then merchant id). `amount_fen`
    /// gives a transaction's amount, for the cash-out tiers.
    pub fn cases(&self, findings: &[Finding], amount_fen: &HashMap<String, i64>, names: &HashMap<String, String>) -> Vec<Case> {
        let cash_rules = self.cash_out_rules();
        let mut by_merchant: BTreeMap<&str, Signals> = BTreeMap::new();
        for f in findings {
            for m in &f.merchant_ids {
                let s = by_merchant.entry(m.as_str()).or_insert_with(|| Signals {
                    rules: BTreeMap::new(),
                    findings: Vec::new(),
                });
                s.findings.push(f);
                let e = s.rules.entry(f.rule_id.as_str()).or_insert((f.severity, f.family, 0));
                if f.status == Status::Open {
                    e.2 += 1;
                }
            }
        }
        let mut cases: Vec<Case> = by_merchant
            .into_iter()
            .map(|(m, s)| {
                let mut txns: BTreeSet<&str> = BTreeSet::new();
                for f in s
                    .findings
                    .iter()
                    .filter(|f| f.status == Status::Open && cash_rules.contains(f.rule_id.as_str()))
                {
                    txns.extend(f.txn_ids.iter().map(String::as_str));
                }
                let cash_out: i64 = txns.iter().filter_map(|t| amount_fen.get(*t)).sum();
                let (score, severity, typologies, tier) = self.assess(&s.rules, cash_out);
                let open = s.findings.iter().filter(|f| f.status == Status::Open).count();
                let mut by_family: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for f in &s.findings {
                    by_family
                        .entry(f.family.name().to_string())
                        .or_default()
                        .push(f.fingerprint.clone());
                }
                let has_baseline = s.findings.iter().any(|f| f.baseline.is_some());
                Case {
                    rank: 0,
                    merchant_id: m.to_string(),
                    merchant_name: names.get(m).cloned(),
                    score,
                    severity,
                    typologies,
                    tier,
                    suspected_cash_out: yuan(cash_out),
                    findings: s.findings.len(),
                    open,
                    suppressed: s.findings.len() - open,
                    new: has_baseline.then(|| {
                        s.findings
                            .iter()
                            .filter(|f| f.baseline == Some(super::model::BaselineState::New))
                            .count()
                    }),
                    top_finding_severity: s
                        .findings
                        .iter()
                        .filter(|f| f.status == Status::Open)
                        .map(|f| f.severity)
                        .max()
                        .unwrap_or(Severity::Info),
                    rules: s.rules.iter().map(|(r, v)| (r.to_string(), v.2 as usize)).collect(),
                    by_family,
                }
            })
            .collect();
        cases.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.severity.cmp(&a.severity))
                .then(a.merchant_id.cmp(&b.merchant_id))
        });
        for (i, c) in cases.iter_mut().enumerate() {
            c.rank = i + 1;
        }
        cases
    }

    /// Run the file's own cases; `severity` gives each rule's severity and
    /// family in the pack.
    pub fn run_tests(&self, pack: &BTreeMap<String, (Severity, Family)>) -> Vec<ScoringTestResult> {
        self.tests
            .iter()
            .map(|t| {
                let mut rules: BTreeMap<&str, (Severity, Family, u32)> = BTreeMap::new();
                let mut cash = 0i64;
                let cash_rules = self.cash_out_rules();
                for f in &t.findings {
                    let (sev, fam) = pack.get(&f.rule).copied().unwrap_or((Severity::Info, Family::SuspiciousPatterns));
                    let e = rules.entry(f.rule.as_str()).or_insert((f.severity.unwrap_or(sev), fam, 0));
                    e.2 += f.count;
                    if cash_rules.contains(f.rule.as_str()) {
                        cash += f.amount_yuan.unwrap_or(0) * 100;
                    }
                }
                let (score, severity, typologies, tier) = self.assess(&rules, cash);
                let mut wrong = Vec::new();
                if let Some(want) = &t.expect.typologies {
                    let (mut a, mut b) = (want.clone(), typologies.clone());
                    a.sort();
                    b.sort();
                    if a != b {
                        wrong.push(format!("typologies {b:?}, expected {a:?}"));
                    }
                }
                if let Some(want) = t.expect.severity {
                    if want != severity {
                        wrong.push(format!("severity {}, expected {}", severity.name(), want.name()));
                    }
                }
                if let Some(want) = &t.expect.tier {
                    let got = tier.as_ref().map(|t| t.label_zh.as_str());
                    if got != Some(want.as_str()) && tier.as_ref().map(|t| t.label.as_str()) != Some(want.as_str()) {
                        wrong.push(format!("tier {got:?}, expected {want}"));
                    }
                }
                if t.expect.min_score.is_some_and(|m| score < m) || t.expect.max_score.is_some_and(|m| score > m) {
                    wrong.push(format!(
                        "score {score}, expected between {:?} and {:?}",
                        t.expect.min_score, t.expect.max_score
                    ));
                }
                ScoringTestResult {
                    name: t.name.clone(),
                    passed: wrong.is_empty(),
                    detail: (!wrong.is_empty()).then(|| wrong.join("; ")),
                }
            })
            .collect()
    }
}

pub struct ScoringTestResult {
    pub name: String,
    pub passed: bool,
    pub detail: Option<String>,
}

/// Fen as yuan text, exact.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", (fen / 100).abs(), (fen % 100).abs())
}

/// Typology titles by id, in a language's words, for the report.
pub fn typology_titles(s: &Scoring, zh: bool) -> IndexMap<String, String> {
    s.typologies
        .iter()
        .map(|t| (t.id.clone(), if zh { t.title_zh.clone() } else { t.title.clone() }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_written_twice_is_an_error_at_its_line() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/scoring.yaml"))
            .unwrap()
            .replace("rule_weights:\n", "rule_weights:\n  SUS-DUP-01: 7\n");
        let e = ScoringFile::parse("scoring.yaml", text).err().expect("a duplicate key is refused");
        assert!(e[0].message.contains("duplicate"), "{e:?}");
        assert!(e[0].line.is_some());
    }

    #[test]
    fn yuan_is_exact() {
        assert_eq!(yuan(123456), "1234.56");
        assert_eq!(yuan(-5), "-0.05");
        assert_eq!(yuan(100_000_000), "1000000.00");
    }
}
