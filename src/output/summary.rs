//! The terminal summary a compliance officer reads after a scan.

use std::fmt::Write;

use crate::engine::{RuleRun, RuleStatus};
use crate::rules::model::{Family, Severity};

use super::manifest::Manifest;

pub fn render(m: &Manifest, runs: &[RuleRun]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "posaudit {} · as of {} · {} rules ({})",
        m.version,
        m.as_of,
        m.rules.count,
        &m.rules.digest[..12.min(m.rules.digest.len())]
    );
    let _ = writeln!(s, "\ninputs");
    for (input, t) in &m.totals {
        let _ = writeln!(
            s,
            "  {:<14} {:>10} rows read = {:>10} accepted + {:>6} rejected",
            input, t.rows_read, t.rows_accepted, t.rows_rejected
        );
    }
    if !m.ignored_files.is_empty() {
        let _ = writeln!(s, "  ignored: {}", m.ignored_files.join(", "));
    }
    let f = &m.findings;
    let _ = writeln!(s, "\nfindings: {}", f.total);
    let sev: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|v| format!("{} {}", v.name(), f.by_severity.get(v.name()).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(s, "  by severity: {}", sev.join(", "));
    let fam: Vec<String> = Family::ALL
        .iter()
        .map(|v| format!("{} {}", v.name(), f.by_family.get(v.name()).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(s, "  by family:   {}", fam.join(", "));
    let _ = writeln!(s, "  merchants:   {} with findings", f.by_merchant.len());
    let _ = writeln!(s, "  by rule:");
    for r in runs {
        let n = f.by_rule.get(&r.rule_id).copied().unwrap_or(0);
        match r.status {
            RuleStatus::Ran => {
                let _ = writeln!(s, "    {:<14} {:>7}", r.rule_id, n);
            }
            RuleStatus::Skipped => {
                let _ = writeln!(s, "    {:<14} skipped: {}", r.rule_id, r.reason.as_deref().unwrap_or(""));
            }
            RuleStatus::Failed => {
                let _ = writeln!(s, "    {:<14} FAILED: {}", r.rule_id, r.reason.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(s, "\nwrote {}", m.outputs.join(", "));
    let _ = writeln!(s, "time {:.2} s on {} threads", m.elapsed_ms as f64 / 1000.0, m.threads);
    let verdict = match m.exit_code {
        0 => format!("exit 0: nothing at or above {}", m.fail_on),
        1 => format!("exit 1: findings at or above {}", m.fail_on),
        c => format!("exit {c}: some rules failed"),
    };
    let _ = writeln!(s, "{verdict}");
    s
}
