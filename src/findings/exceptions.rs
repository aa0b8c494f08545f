//! An officer's decisions about findings: "this merchant's night trading
//! is a KTV we visited; ticket RISK-114; look again after 31 March".
//!
//! An exception names the findings it covers (by fingerprint, or by rule
//! and merchant, optionally one entity), who decided, why, and until when.
//! Matching findings are written with status `suppressed` and the
//! exception's id, never dropped, and do not count towards `--fail-on`.
//! An exception past its expiry stops matching (the summary says so, with
//! the findings it would have covered), and one that matched nothing is
//! reported as stale, so the file does not rot unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::model::{Finding, Status};
use crate::rules::load::{parse_side_file, side_file_issue, RuleIssue};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionsFile {
    #[serde(default)]
    exceptions: Vec<Exception>,
}

/// One decision.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The officer's reference for the decision, unique in the file.
    pub id: String,
    /// One finding, by the fingerprint its output carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Or every finding of this rule about `merchant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<String>,
    /// Only the finding with this `entity_id` (as written in the findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Who decided.
    pub owner: String,
    /// Why.
    pub reason: String,
    /// A case or ticket reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The last day the decision holds (YYYY-MM-DD); from the next day the
    /// findings are open again.
    pub expires: String,
    /// When the decision was taken (YYYY-MM-DD), for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<String>,
}

/// A checked exceptions file.
#[derive(Debug, Clone)]
pub struct Exceptions {
    pub file: String,
    /// sha256 of the file's bytes, for the manifest.
    pub digest: String,
    pub items: Vec<Exception>,
    expiry: Vec<NaiveDate>,
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Exceptions {
    /// Read and check a file. Every problem is reported, each at its line.
    pub fn load(path: &Path) -> Result<Exceptions, Vec<RuleIssue>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![RuleIssue::of_file(file.clone(), format!("cannot read the exceptions file: {e}"))])?;
        Exceptions::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Exceptions, Vec<RuleIssue>> {
        use sha2::Digest;
        let parsed: ExceptionsFile = if text.trim().is_empty() {
            ExceptionsFile { exceptions: vec![] }
        } else {
            parse_side_file(file, text).map_err(|mut e: Vec<RuleIssue>| {
                for i in &mut e {
                    i.message.push_str(
                        " (an exceptions file is `exceptions:` and a list of items with id, fingerprint or rule and merchant, owner, reason, ticket, expires)",
                    );
                }
                e
            })?
        };
        let mut issues = Vec::new();
        let issue = |id: &str, field: &str, message: String| side_file_issue(file, text, id, field, format!("exception {id}: {message}"));
        let mut seen = BTreeSet::new();
        let mut expiry = Vec::new();
        for x in &parsed.exceptions {
            if x.id.trim().is_empty() {
                issues.push(issue(&x.id, "id", "an exception needs an id".into()));
            } else if !seen.insert(x.id.clone()) {
                issues.push(issue(&x.id, "id", "duplicate exception id".into()));
            }
            match (&x.fingerprint, &x.rule, &x.merchant) {
                (Some(fp), None, None) if x.entity.is_none() => {
                    if !is_fingerprint(fp) {
                        issues.push(issue(
                            &x.id,
                            "fingerprint",
                            format!("`{fp}` is not a finding fingerprint (32 hexadecimal characters, as in the findings output)"),
                        ));
                    }
                }
                (Some(_), _, _) => issues.push(issue(
                    &x.id,
                    "fingerprint",
                    "give either a fingerprint or rule and merchant, not both".into(),
                )),
                (None, Some(_), Some(m)) if !m.trim().is_empty() => {}
                (None, Some(_), _) => issues.push(issue(
                    &x.id,
                    "merchant",
                    "an exception by rule names the merchant it covers (to turn a rule off for everyone, change the rule)".into(),
                )),
                (None, None, _) => issues.push(issue(
                    &x.id,
                    "rule",
                    "an exception names a fingerprint, or a rule and a merchant".into(),
                )),
            }
            for (field, v) in [("owner", &x.owner), ("reason", &x.reason)] {
                if v.trim().is_empty() {
                    issues.push(issue(
                        &x.id,
                        field,
                        format!("`{field}` must not be empty: an auditor asks who decided and why"),
                    ));
                }
            }
            let expires = date(&x.expires);
            if expires.is_none() {
                issues.push(issue(&x.id, "expires", format!("`{}` is not a date (YYYY-MM-DD)", x.expires)));
            }
            if let Some(d) = &x.decided {
                match (date(d), expires) {
                    (None, _) => issues.push(issue(&x.id, "decided", format!("`{d}` is not a date (YYYY-MM-DD)"))),
                    (Some(d), Some(e)) if d > e => issues.push(issue(&x.id, "expires", "expires before it was decided".into())),
                    _ => {}
                }
            }
            expiry.push(expires.unwrap_or(NaiveDate::MIN));
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Exceptions {
            file: file.to_string(),
            digest: sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
            items: parsed.exceptions,
            expiry,
        })
    }

    /// Exceptions naming a rule the pack does not have: a typo would
    /// otherwise leave the findings open with no word said.
    pub fn unknown_rules(&self, known: &BTreeSet<&str>, text: &str) -> Vec<RuleIssue> {
        self.items
            .iter()
            .filter_map(|x| {
                let r = x.rule.as_deref()?;
                if known.contains(r) {
                    return None;
                }
                Some(side_file_issue(
                    &self.file,
                    text,
                    &x.id,
                    "rule",
                    format!("exception {}: no rule `{r}` in the pack (see `posaudit rules list`)", x.id),
                ))
            })
            .collect()
    }

    /// Exceptions past their expiry on `as_of`, as warnings for `rules check`.
    pub fn expired(&self, as_of: NaiveDate) -> Vec<RuleIssue> {
        self.items
            .iter()
            .zip(&self.expiry)
            .filter(|(_, e)| **e < as_of)
            .map(|(x, _)| RuleIssue {
                file: self.file.clone(),
                line: None,
                column: None,
                rule_id: None,
                field: Some("expires".into()),
                message: format!(
                    "exception {} expired on {}: it no longer suppresses anything; renew it with a new decision or remove it",
                    x.id, x.expires
                ),
            })
            .collect()
    }

    fn matches(x: &Exception, f: &Finding) -> bool {
        if let Some(fp) = &x.fingerprint {
            return &f.fingerprint == fp;
        }
        let rule = x.rule.as_deref() == Some(f.rule_id.as_str());
        // A finding about several merchants (a shared card or account) is
        // covered only by its fingerprint: clearing one merchant says
        // nothing about the others.
        let merchant = x
            .merchant
            .as_deref()
            .is_some_and(|m| f.merchant_id.as_deref() == Some(m) || (f.merchant_ids.len() == 1 && f.merchant_ids[0] == m))
            && f.merchant_ids.len() <= 1;
        let entity = x.entity.as_ref().is_none_or(|e| e == &f.entity_id);
        rule && merchant && entity
    }

    /// Mark the findings the exceptions cover, as of `as_of`, and say what
    /// each exception did.
    pub fn apply(&self, findings: &mut [Finding], as_of: NaiveDate) -> ExceptionReport {
        let mut matched: BTreeMap<String, usize> = BTreeMap::new();
        let mut would: BTreeMap<String, usize> = BTreeMap::new();
        for f in findings.iter_mut() {
            for (x, expires) in self.items.iter().zip(&self.expiry) {
                if !Self::matches(x, f) {
                    continue;
                }
                if *expires < as_of {
                    *would.entry(x.id.clone()).or_default() += 1;
                    continue;
                }
                *matched.entry(x.id.clone()).or_default() += 1;
                if f.status != Status::Suppressed {
                    f.status = Status::Suppressed;
                    f.exception_id = Some(x.id.clone());
                }
                break;
            }
        }
        let mut report = ExceptionReport {
            file: self.file.clone(),
            digest: self.digest.clone(),
            ..Default::default()
        };
        for (x, expires) in self.items.iter().zip(&self.expiry) {
            if *expires < as_of {
                report.expired.push(Expired {
                    id: x.id.clone(),
                    owner: x.owner.clone(),
                    expires: x.expires.clone(),
                    findings_open_again: would.get(&x.id).copied().unwrap_or(0),
                });
            } else if let Some(n) = matched.get(&x.id) {
                report.active.push(Active {
                    id: x.id.clone(),
                    owner: x.owner.clone(),
                    expires: x.expires.clone(),
                    suppressed: *n,
                });
            } else {
                report.stale.push(x.id.clone());
            }
        }
        report.suppressed = findings.iter().filter(|f| f.status == Status::Suppressed).count();
        report
    }
}

/// What the exceptions did in one run (manifest and summary).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExceptionReport {
    pub file: String,
    pub digest: String,
    /// Findings written as suppressed.
    pub suppressed: usize,
    pub active: Vec<Active>,
    /// Past their expiry: they no longer match.
    pub expired: Vec<Expired>,
    /// In force, but matched no finding today (ids).
    pub stale: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Active {
    pub id: String,
    pub owner: String,
    pub expires: String,
    pub suppressed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Expired {
    pub id: String,
    pub owner: String,
    pub expires: String,
    /// Findings it would have covered had it not expired.
    pub findings_open_again: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "exceptions:
  - id: EXC-1
    rule: SUS-NIGHT-01
    merchant: '898000000000001'
    owner: Wang Fang
    reason: a KTV, visited on site
    ticket: RISK-114
    expires: 2027-03-31
  - id: EXC-2
    fingerprint: 0123456789abcdef0123456789abcdef
    owner: Li Lei
    reason: duplicate of RISK-100
    expires: 2026-10-31
";

    #[test]
    fn a_good_file_loads() {
        let x = Exceptions::parse("exceptions.yaml", GOOD).unwrap();
        assert_eq!(x.items.len(), 2);
        assert_eq!(x.items[0].ticket.as_deref(), Some("RISK-114"));
    }

    #[test]
    fn problems_are_located() {
        let bad = GOOD
            .replace("expires: 2027-03-31", "expires: next spring")
            .replace("ticket: RISK-114", "tiket: RISK-114");
        let e = Exceptions::parse("x.yaml", &bad).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("unknown field `tiket`"), "{e:?}");
        assert_eq!(e[0].line, Some(7));

        let bad = GOOD.replace("expires: 2027-03-31", "expires: next spring");
        let e = Exceptions::parse("x.yaml", &bad).unwrap_err();
        assert_eq!(e[0].line, Some(8), "{e:?}");
        assert_eq!(e[0].field.as_deref(), Some("expires"));

        let bad = GOOD.replace("    merchant: '898000000000001'\n", "");
        let e = Exceptions::parse("x.yaml", &bad).unwrap_err();
        assert!(e[0].message.contains("names the merchant"), "{e:?}");

        let bad = GOOD.replace("id: EXC-2", "id: EXC-1");
        let e = Exceptions::parse("x.yaml", &bad).unwrap_err();
        assert!(e[0].message.contains("duplicate"), "{e:?}");
        assert_eq!(e[0].line, Some(2), "{e:?}");
    }
}
