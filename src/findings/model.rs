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
    pub merchant_id: Option<String>,
    pub entity_kind: String,
    /// Masked where it holds a card or ID number.
    pub entity_id: String,
    /// Transactions (or other rows) behind a group finding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub txn_ids: Vec<String>,
    /// Column or measure -> value as text (money exact, sensitive values masked).
    pub evidence: IndexMap<String, String>,
    pub message: String,
    pub basis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis_mark: Option<Mark>,
    pub source: Option<Source>,
    /// The raw entity key (row id, or group key values joined with `|`):
    /// what rule tests name. Never written out: it may hold ID numbers.
    #[serde(skip)]
    pub key: String,
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

/// The order findings are written in: by rule, merchant, entity, fingerprint.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            a.rule_id.as_str(),
            a.merchant_id.as_deref(),
            a.entity_id.as_str(),
            a.fingerprint.as_str(),
        )
            .cmp(&(
                b.rule_id.as_str(),
                b.merchant_id.as_deref(),
                b.entity_id.as_str(),
                b.fingerprint.as_str(),
            ))
    });
}

/// Rows repeated in the input (a duplicated txn_id) hit a row rule twice
/// with the same key; number the repeats so fingerprints stay unique.
pub fn disambiguate(findings: &mut [Finding]) {
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for f in findings.iter_mut() {
        let n = seen.entry(f.fingerprint.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            f.fingerprint = fingerprint(&f.fingerprint, "repeat", &n.to_string());
        }
    }
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
