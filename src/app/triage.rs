//! What a daily run adds to its findings before they are written: shadow
//! rules set apart, the officer's exceptions applied, and the comparison
//! with a previous run (`--baseline`). Everything it reads is loaded and
//! checked before any data is, so a typo in the exceptions file or a
//! missing baseline stops the run in a second, not after the scan.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::options::ScanOptions;
use crate::engine::RuleRun;
use crate::findings::baseline::Baseline;
use crate::findings::exceptions::Exceptions;
use crate::findings::Finding;
use crate::output::manifest::{BaselineReport, ShadowReport, TriageReport};
use crate::rules::load::{RuleErrors, RulePack};
use crate::rules::model::Lifecycle;
use crate::Error;

/// The exceptions file a run uses: `--exceptions`, else `exceptions.yaml`
/// in one of the pack's folders.
pub(crate) fn exceptions_path(explicit: Option<&Path>, pack: &RulePack) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    pack.dirs
        .iter()
        .filter(|d| !d.starts_with("(built-in)"))
        .flat_map(|d| ["exceptions.yaml", "exceptions.yml"].map(|n| Path::new(d).join(n)))
        .find(|p| p.is_file())
}

/// Load the exceptions file and check it against the pack: problems are
/// rule-pack errors (exit 3), each at its file and line.
pub(crate) fn load_exceptions(explicit: Option<&Path>, pack: &RulePack) -> Result<Option<Exceptions>, Error> {
    let Some(path) = exceptions_path(explicit, pack) else {
        return Ok(None);
    };
    let x = Exceptions::load(&path).map_err(|e| Error::Exceptions(RuleErrors(e)))?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let known: BTreeSet<&str> = pack.rules.iter().map(|r| r.rule.id.as_str()).collect();
    let unknown = x.unknown_rules(&known, &text);
    if !unknown.is_empty() {
        return Err(Error::Exceptions(RuleErrors(unknown)));
    }
    Ok(Some(x))
}

/// What the run was given besides the pack and the data.
pub(crate) struct TriageInputs {
    pub shadow: BTreeSet<String>,
    pub exceptions: Option<Exceptions>,
    pub baseline: Option<Baseline>,
}

/// Read and check the shadow list, the exceptions and the baseline.
pub(crate) fn prepare(opts: &ScanOptions, pack: &RulePack) -> Result<TriageInputs, Error> {
    let mut shadow: BTreeSet<String> = pack
        .rules
        .iter()
        .filter(|r| r.rule.status == Lifecycle::Shadow)
        .map(|r| r.rule.id.clone())
        .collect();
    for id in &opts.shadow {
        if !pack.rules.iter().any(|r| &r.rule.id == id) {
            return Err(Error::Usage(format!(
                "--shadow {id}: no such rule in the pack (see `posaudit rules list`)"
            )));
        }
        shadow.insert(id.clone());
    }
    let baseline = match &opts.baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| Error::Usage(e.to_string()))?),
        None => {
            if opts.fail_on_new.is_some() {
                return Err(Error::Usage(
                    "--fail-on-new needs --baseline: new is measured against a previous run".into(),
                ));
            }
            None
        }
    };
    Ok(TriageInputs {
        shadow,
        exceptions: load_exceptions(opts.exceptions.as_deref(), pack)?,
        baseline,
    })
}

/// A run's findings, sorted out.
pub(crate) struct Triaged {
    /// What the officer and the exit code see.
    pub findings: Vec<Finding>,
    /// Findings of shadow rules (`shadow-findings.jsonl`).
    pub shadow: Vec<Finding>,
    /// Baseline findings gone today (`resolved.jsonl`).
    pub resolved: Vec<serde_json::Value>,
    pub report: TriageReport,
    /// One per merchant with findings, ranked (empty without a scoring file).
    pub cases: Vec<crate::findings::cases::Case>,
}

pub(crate) use crate::findings::baseline::SHADOW_FILE;
/// The name resolved baseline findings are written under, in `--out`.
pub(crate) const RESOLVED_FILE: &str = "resolved.jsonl";

/// Set shadow findings apart, apply the exceptions, compare with the
/// baseline. Runs of shadow rules are marked in `runs`.
pub(crate) fn apply(t: &TriageInputs, findings: Vec<Finding>, runs: &mut [RuleRun], as_of: NaiveDate) -> Triaged {
    for r in runs.iter_mut() {
        r.shadow = t.shadow.contains(&r.rule_id);
    }
    let (mut shadow, mut findings): (Vec<Finding>, Vec<Finding>) = findings.into_iter().partition(|f| t.shadow.contains(&f.rule_id));
    let mut report = TriageReport::default();
    if !t.shadow.is_empty() {
        report.shadow = Some(ShadowReport {
            rules: t.shadow.iter().cloned().collect(),
            findings: shadow.len(),
            file: SHADOW_FILE.into(),
        });
    }
    if let Some(x) = &t.exceptions {
        // Shadow findings are matched too, so a rule switched on keeps
        // the decisions taken while it was watched.
        x.apply(&mut shadow, as_of);
        report.exceptions = Some(x.apply(&mut findings, as_of));
    }
    let mut resolved = Vec::new();
    if let Some(b) = &t.baseline {
        let ran: BTreeSet<&str> = runs
            .iter()
            .filter(|r| r.status == crate::engine::RuleStatus::Ran && !r.shadow)
            .map(|r| r.rule_id.as_str())
            .collect();
        let c = b.mark(&mut findings, &ran, &t.shadow);
        b.mark_shadow(&mut shadow);
        report.baseline = Some(BaselineReport {
            path: b.path.display().to_string(),
            baseline_findings: b.len(),
            new: c.new,
            unchanged: c.unchanged,
            resolved: c.resolved.len(),
            not_rechecked: c.not_rechecked,
        });
        resolved = c.resolved;
    }
    Triaged {
        findings,
        shadow,
        resolved,
        report,
        cases: Vec::new(),
    }
}
