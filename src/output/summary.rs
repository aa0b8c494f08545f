//! The terminal summary a compliance officer reads after a scan.

use std::fmt::Write;

use crate::engine::{RuleRun, RuleStatus};
use crate::rules::model::{Family, Severity};

use super::manifest::Manifest;
use super::words::{family, severity, words};
use crate::findings::lang::Lang;

/// The daily-run lines: what is new, what the exceptions did, the shadow rules.
fn triage(s: &mut String, m: &Manifest, lang: Lang) {
    let zh = lang == Lang::Zh;
    if let Some(b) = &m.triage.baseline {
        let not_rechecked = match (b.not_rechecked, zh) {
            (0, _) => String::new(),
            (n, false) => format!("; {n} of rules that did not run today not rechecked"),
            (n, true) => format!("；{n} 条属于今天未运行的规则，未复核"),
        };
        let _ = if zh {
            writeln!(
                s,
                "  与上次相比: 新增 {}，未变 {}，已消失 {}（基线 {}，{} 条发现{not_rechecked}）",
                b.new, b.unchanged, b.resolved, b.path, b.baseline_findings
            )
        } else {
            writeln!(
                s,
                "  baseline:    {} new, {} unchanged, {} resolved (against {}, {} findings{not_rechecked})",
                b.new, b.unchanged, b.resolved, b.path, b.baseline_findings
            )
        };
    }
    if let Some(x) = &m.triage.exceptions {
        let _ = if zh {
            writeln!(s, "  豁免: {} 条发现被 {} 项豁免覆盖（{}）", x.suppressed, x.active.len(), x.file)
        } else {
            writeln!(
                s,
                "  exceptions:  {} findings suppressed by {} exceptions ({})",
                x.suppressed,
                x.active.len(),
                x.file
            )
        };
        for e in &x.expired {
            let _ = if zh {
                writeln!(
                    s,
                    "    已过期 {}（{}，有效至 {}）：其覆盖的 {} 条发现重新待处理",
                    e.id, e.owner, e.expires, e.findings_open_again
                )
            } else {
                writeln!(
                    s,
                    "    expired {} ({}, until {}): {} findings it covered are open again",
                    e.id, e.owner, e.expires, e.findings_open_again
                )
            };
        }
        if !x.stale.is_empty() {
            let _ = if zh {
                writeln!(s, "    今天未匹配任何发现: {}", x.stale.join(", "))
            } else {
                writeln!(s, "    stale (matched nothing today): {}", x.stale.join(", "))
            };
        }
    }
    if let Some(sh) = &m.triage.shadow {
        let _ = if zh {
            writeln!(
                s,
                "  影子规则: {} 条规则的 {} 条发现写入 {}（不影响退出码）：{}",
                sh.rules.len(),
                sh.findings,
                sh.file,
                sh.rules.join(", ")
            )
        } else {
            writeln!(
                s,
                "  shadow:      {} findings of {} shadow rules in {} (not in the exit code): {}",
                sh.findings,
                sh.rules.len(),
                sh.file,
                sh.rules.join(", ")
            )
        };
    }
}

pub fn render(m: &Manifest, runs: &[RuleRun], lang: Lang) -> String {
    let w = words(lang);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "posaudit {} · {} {} · {} {} ({})",
        m.version,
        w.as_of,
        m.as_of,
        m.rules.count,
        w.rules,
        &m.rules.digest[..12.min(m.rules.digest.len())]
    );
    let _ = writeln!(s, "\n{}", w.inputs);
    for (input, t) in &m.totals {
        let _ = writeln!(
            s,
            "  {:<14} {:>10} {} = {:>10} {} + {:>6} {}",
            input, t.rows_read, w.rows_read, t.rows_accepted, w.accepted, t.rows_rejected, w.rejected
        );
        if t.rows_outside_window > 0 {
            let _ = writeln!(s, "  {:<14} {:>10} {}", "", t.rows_outside_window, w.outside_window);
        }
    }
    if let Some(w) = &m.window {
        let _ = if lang == Lang::Zh {
            writeln!(
                s,
                "  时间窗口: {} 至 {}（{} 天）；{} 个日期在窗口外的文件未读取",
                w.from,
                w.to,
                w.days,
                w.files_outside.len()
            )
        } else {
            writeln!(
                s,
                "  window: {} to {} ({} days); {} files dated outside it not read",
                w.from,
                w.to,
                w.days,
                w.files_outside.len()
            )
        };
    }
    if !m.ignored_files.is_empty() {
        let _ = writeln!(s, "  {}: {}", w.ignored, m.ignored_files.join(", "));
    }
    let f = &m.findings;
    let _ = writeln!(
        s,
        "\n{}: {}{}",
        w.findings,
        f.total,
        if f.suppressed > 0 {
            format!(" ({} {}, {} {})", f.total - f.suppressed, w.open, f.suppressed, w.suppressed)
        } else {
            String::new()
        }
    );
    let sev: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|v| format!("{} {}", severity(lang, *v), f.by_severity.get(v.name()).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(s, "  {}: {}", w.by_severity, sev.join(", "));
    let fam: Vec<String> = Family::ALL
        .iter()
        .map(|v| format!("{} {}", family(lang, *v), f.by_family.get(v.name()).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(s, "  {}:   {}", w.by_family, fam.join(", "));
    if lang == Lang::En {
        let _ = writeln!(s, "  merchants:   {} with findings", f.by_merchant.len());
    } else {
        let _ = writeln!(s, "  {} {}", f.by_merchant.len(), w.merchants_with_findings);
    }
    triage(&mut s, m, lang);
    if let Some(c) = &m.cases {
        let sev: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .filter_map(|v| c.by_severity.get(v.name()).map(|n| format!("{} {n}", severity(lang, *v))))
            .collect();
        let _ = writeln!(s, "  {}: {} ({})", w.cases, c.count, sev.join(", "));
        for t in c.top.iter().take(5) {
            let sev = t.severity.parse().map(|v| severity(lang, v)).unwrap_or("");
            let _ = writeln!(
                s,
                "    #{} {} {} · {} {} · {} {}",
                t.rank,
                t.merchant_id,
                t.merchant_name.as_deref().unwrap_or(""),
                w.score,
                t.score,
                sev,
                t.typologies.join(" ")
            );
        }
    }
    let _ = writeln!(s, "  {}:", w.by_rule);
    for r in runs {
        let n = f.by_rule.get(&r.rule_id).copied().unwrap_or(0);
        match r.status {
            RuleStatus::Ran if r.shadow => {
                let _ = writeln!(s, "    {:<14} {:>7} {}", r.rule_id, r.findings, w.in_shadow);
            }
            RuleStatus::Ran => {
                let _ = writeln!(s, "    {:<14} {:>7}", r.rule_id, n);
            }
            RuleStatus::Skipped => {
                let _ = writeln!(s, "    {:<14} {}: {}", r.rule_id, w.skipped, r.reason.as_deref().unwrap_or(""));
            }
            RuleStatus::Failed => {
                let _ = writeln!(s, "    {:<14} {}: {}", r.rule_id, w.failed, r.reason.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(s, "\n{} {}", w.wrote, m.outputs.join(", "));
    let _ = writeln!(s, "{} {:.2} s, {} {}", w.time, m.elapsed_ms as f64 / 1000.0, m.threads, w.threads);
    let verdict = match m.exit_code {
        0 => format!("exit 0: {} {}", w.exit_clean, m.fail_on),
        1 => format!("exit 1: {} {}", w.exit_findings, m.fail_on),
        c => format!("exit {c}: {}", w.exit_failed),
    };
    let _ = writeln!(s, "{verdict}");
    s
}
