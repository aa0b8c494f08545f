//! A finding: one rule hit on one entity, with the evidence that explains it.

use indexmap::IndexMap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::input::InputKind;
use crate::rules::model::{Family, Mark, Severity};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub input: InputKind,
    pub file: String,
    /// Line in a CSV file (the header is line 1), or row number in Parquet.
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub fingerprint: String,
    pub rule_id: String,
    pub family: Family,
    pub severity: Severity,
    /// The merchant the finding is about, when it is about one (a finding
    /// keyed by a card or an account that several merchants share has none).
    pub merchant_id: Option<String>,
    /// Every merchant the finding involves, sorted: the one above, or all
    /// the merchants of a card, account or ID behind the finding.
    pub merchant_ids: Vec<String>,
    pub entity_kind: String,
    /// Masked where it holds a card or ID number.
    pub entity_id: String,
    /// Transactions (or other rows) behind a group finding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub txn_ids: Vec<String>,
    /// Column or measure -> value as text (money exact, sensitive values masked).
    pub evidence: IndexMap<String, String>,
    pub message: String,
    /// The message from the rule's Chinese template (`--lang zh` writes it
    /// as `message`).
    #[serde(skip)]
    pub message_zh: Option<String>,
    pub basis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis_mark: Option<Mark>,
    pub source: Option<Source>,
    /// `open`, or `suppressed` by an officer's exception (`exception_id`).
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_id: Option<String>,
    /// Against `--baseline`: `new` or `unchanged` (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineState>,
    /// The raw entity key (row id, or group key values joined with `|`):
    /// what rule tests name. Never written out: it may hold ID numbers.
    #[serde(skip)]
    pub key: String,
}

/// Whether a finding still asks for a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Open,
    /// An exception (owner, reason, expiry) covers it: written, never
    /// dropped, but it does not count towards `--fail-on`.
    Suppressed,
}

/// A finding against a previous run's (SARIF's `baselineState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineState {
    /// Not in the baseline.
    New,
    /// In the baseline too (same fingerprint).
    Unchanged,
    /// In the baseline, gone today (listed in `resolved.jsonl`).
    Resolved,
}

impl BaselineState {
    pub fn name(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
            BaselineState::Resolved => "resolved",
        }
    }
}

/// A hash of the rule id, entity kind and raw entity key: the same hit gets
/// the same fingerprint on any machine, on any run.
pub fn fingerprint(rule_id: &str, entity_kind: &str, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [rule_id, entity_kind, key] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
impl Finding {
    /// A medium suspicious-pattern finding of `rule_id` that says nothing
    /// else, for a test to fill in what it checks.
    pub(crate) fn blank(rule_id: &str) -> Finding {
        Finding {
            fingerprint: String::new(),
            rule_id: rule_id.into(),
            family: Family::SuspiciousPatterns,
            severity: Severity::Medium,
            merchant_id: None,
            merchant_ids: vec![],
            entity_kind: String::new(),
            entity_id: String::new(),
            txn_ids: vec![],
            evidence: Default::default(),
            message: String::new(),
            message_zh: None,
            basis: String::new(),
            basis_mark: None,
            source: None,
            status: Default::default(),
            exception_id: None,
            baseline: None,
            key: String::new(),
        }
    }
}

/// The order findings are written in: by rule, merchant, entity and
/// fingerprint, then by what they say and where they come from, so that
/// two findings on repeated rows (a duplicated `txn_id`) are in the same
/// order however the run was split: a total order.
pub fn sort(findings: &mut [Finding]) {
    let key = |f: &Finding| {
        (
            f.rule_id.clone(),
            f.merchant_id.clone(),
            f.entity_id.clone(),
            f.fingerprint.clone(),
            f.message.clone(),
            f.source.as_ref().map(|s| (s.file.clone(), s.line)),
        )
    };
    findings.sort_by_cached_key(key);
}

/// Rows repeated in the input (a duplicated txn_id) hit a row rule twice
/// with the same key. Each of them gets a fingerprint of its own, made
/// from what the finding says (message and evidence), so it does not
/// depend on which of the rows came first; rows that are identical in
/// every way are numbered in the (total) order of [`sort`].
pub(crate) fn disambiguate(findings: &mut [Finding]) {
    let mut count: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for f in findings.iter() {
        *count.entry(f.fingerprint.clone()).or_insert(0) += 1;
    }
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for f in findings.iter_mut() {
        if count.get(&f.fingerprint).copied().unwrap_or(0) < 2 {
            continue;
        }
        let content = format!(
            "{}\u{1f}{}",
            f.message,
            f.evidence
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\u{1f}")
        );
        let mut fp = fingerprint(&f.fingerprint, "content", &content);
        let n = seen.entry(fp.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            fp = fingerprint(&fp, "repeat", &n.to_string());
        }
        f.fingerprint = fp;
    }
}

/// Mask, by shape, every ID and card number a finding's texts may carry
/// (see [`crate::mask::scrub`]).
pub fn scrub(findings: &mut [Finding]) {
    use crate::mask::scrub as s;
    let fix = |t: &mut String| {
        if let std::borrow::Cow::Owned(o) = s(t) {
            *t = o;
        }
    };
    for f in findings.iter_mut() {
        fix(&mut f.entity_id);
        fix(&mut f.message);
        if let Some(m) = f.message_zh.as_mut() {
            fix(m);
        }
        if let Some(m) = f.merchant_id.as_mut() {
            fix(m);
        }
        for m in f.merchant_ids.iter_mut() {
            fix(m);
        }
        for t in f.txn_ids.iter_mut() {
            fix(t);
        }
        for v in f.evidence.values_mut() {
            fix(v);
        }
    }
}

/// Everything a run does to its findings before writing them: mask by
/// shape, order totally, make fingerprints unique.
pub fn finish(findings: &mut [Finding]) {
    scrub(findings);
    sort(findings);
    disambiguate(findings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint("LIM-QR-01", "card", "m1|c1|2026-11-01");
        assert_eq!(a, fingerprint("LIM-QR-01", "card", "m1|c1|2026-11-01"));
        assert_ne!(a, fingerprint("LIM-QR-02", "card", "m1|c1|2026-11-01"));
        // Separators keep ("ab","c") and ("a","bc") apart.
        assert_ne!(fingerprint("ab", "c", "d"), fingerprint("a", "bc", "d"));
        assert_eq!(a.len(), 32);
        // Frozen value: a change here breaks every user's baseline.
        assert_eq!(fingerprint("R", "k", "x"), "ac78a4cd49ba568ea35a84ffe634d12c");
    }
}

/// The severity at or above which findings fail the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Never,
    At(Severity),
}

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "never" || s == "none" {
            return Ok(FailOn::Never);
        }
        s.parse::<Severity>().map(FailOn::At).map_err(|e| format!("{e}, or never"))
    }
}

impl std::fmt::Display for FailOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailOn::Never => f.write_str("never"),
            FailOn::At(s) => f.write_str(s.name()),
        }
    }
}

/// Which findings fail a run: open (not suppressed) ones at or above
/// `--fail-on`, and, with a baseline, new ones at or above `--fail-on-new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailPolicy {
    pub at: FailOn,
    pub new_at: Option<Severity>,
}

impl FailPolicy {
    pub fn fails(&self, f: &Finding) -> bool {
        if f.status != Status::Open {
            return false;
        }
        let any = matches!(self.at, FailOn::At(s) if f.severity >= s);
        let new = self
            .new_at
            .is_some_and(|s| f.severity >= s && f.baseline == Some(BaselineState::New));
        any || new
    }
}

impl std::fmt::Display for FailPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.new_at {
            None => write!(f, "{}", self.at),
            Some(n) if self.at == FailOn::Never => write!(f, "new {}", n.name()),
            Some(n) => write!(f, "{}, or new {}", self.at, n.name()),
        }
    }
}
