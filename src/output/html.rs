//! The officer's report (`--format html`): one self-contained page, with
//! no network access, script or font from elsewhere, that opens from a USB
//! stick. The run's data is embedded as JSON and drawn by a small script:
//! run facts, counts, charts (inline SVG), cases ranked by score with their
//! findings and evidence, all findings, and the catalogue entry of each
//! rule that fired. Tables are paged, so 100,000 findings make a page of a
//! hundred rows, not a 200 MB DOM; sorting and filtering work on the data.
//! Every value is put in the page as text (never as markup), and card and
//! ID numbers arrive masked.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::report_data::{finding_amount, finding_date, ReportData};
use super::words::{family, severity, state, words};
use crate::findings::model::Status;
use crate::rules::model::{Family, Severity};

/// Rejected rows shown in the page (all of them are in rejected.csv).
const MAX_REJECTED_SHOWN: usize = 500;

fn data(d: &ReportData) -> Value {
    let m = d.manifest;
    // Rules by index, so each finding names its rule with a number.
    let rule_ids: Vec<&str> = d.pack.rules.iter().map(|r| r.rule.id.as_str()).collect();
    let index: BTreeMap<&str, usize> = rule_ids.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    let fired: BTreeSet<&str> = d.findings.iter().map(|f| f.rule_id.as_str()).collect();
    let rules: Vec<Value> = d
        .pack
        .rules
        .iter()
        .map(|lr| {
            let r = &lr.rule;
            let run = d.runs.iter().find(|x| x.rule_id == r.id);
            json!({
                "id": r.id,
                "title": d.lang.pick(&r.title, r.title_zh.as_deref()),
                "family": family(d.lang, r.family),
                "severity": severity(d.lang, r.severity),
                "basis": r.basis.as_ref().map(|b| b.text.clone()).unwrap_or_default(),
                "sources": r.basis.as_ref().map(|b| b.sources.join(", ")).unwrap_or_default(),
                "fired": fired.contains(r.id.as_str()),
                "status": run.map(|x| format!("{:?}", x.status).to_lowercase()).unwrap_or_default(),
                "shadow": run.is_some_and(|x| x.shadow),
                "reason": run.and_then(|x| x.reason.clone()).unwrap_or_default(),
                "findings": m.findings.by_rule.get(&r.id).copied().unwrap_or(0),
            })
        })
        .collect();
    let sev_rank = |s: Severity| Severity::ALL.iter().position(|x| *x == s).unwrap_or(0);
    let findings: Vec<Value> = d
        .findings
        .iter()
        .map(|f| {
            json!([
                index.get(f.rule_id.as_str()).copied().unwrap_or(0),
                sev_rank(f.severity),
                Family::ALL.iter().position(|x| *x == f.family).unwrap_or(0),
                f.merchant_ids.join(";"),
                finding_date(f).unwrap_or_default(),
                finding_amount(f).unwrap_or_default(),
                f.message,
                f.entity_id,
                if f.status == Status::Suppressed {
                    state(d.lang, "suppressed")
                } else {
                    ""
                },
                f.baseline.map(|b| state(d.lang, b.name())).unwrap_or(""),
                f.fingerprint,
                f.evidence,
                f.exception_id.clone().unwrap_or_default(),
                u8::from(!f.txn_ids.is_empty()),
            ])
        })
        .collect();
    // Each case's findings, by position in the findings list.
    let mut of_merchant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, f) in d.findings.iter().enumerate() {
        for mid in &f.merchant_ids {
            of_merchant.entry(mid.as_str()).or_default().push(i);
        }
    }
    let cases: Vec<Value> = d
        .cases
        .iter()
        .map(|c| {
            json!([
                c.rank,
                c.merchant_id,
                c.merchant_name.clone().unwrap_or_default(),
                c.score,
                sev_rank(c.severity),
                c.typologies
                    .iter()
                    .map(|t| d.typologies.get(t).cloned().unwrap_or_else(|| t.clone()))
                    .collect::<Vec<_>>()
                    .join("、"),
                c.tier
                    .as_ref()
                    .map(|t| if d.lang == crate::findings::lang::Lang::Zh {
                        t.label_zh.clone()
                    } else {
                        t.label.clone()
                    })
                    .unwrap_or_default(),
                c.suspected_cash_out,
                c.findings,
                of_merchant.get(c.merchant_id.as_str()).cloned().unwrap_or_default(),
            ])
        })
        .collect();
    let inputs: Vec<Value> = m
        .inputs
        .iter()
        .map(|s| json!([s.input.name(), s.file, s.sha256, s.rows_read, s.rows_accepted, s.rows_rejected]))
        .collect();
    let rejected: Vec<Value> = d
        .rejected
        .iter()
        .take(MAX_REJECTED_SHOWN)
        .map(|r| json!([r.input.name(), r.file, r.line, r.column, r.value, r.reason]))
        .collect();
    json!({
        "lang": d.lang,
        "words": labels(d),
        "severities": Severity::ALL.iter().map(|s| severity(d.lang, *s)).collect::<Vec<_>>(),
        "families": Family::ALL.iter().map(|f| family(d.lang, *f)).collect::<Vec<_>>(),
        "run": {
            "version": m.version, "as_of": m.as_of, "rules": m.rules.count, "digest": m.rules.digest,
            "exit_code": m.exit_code, "fail_on": m.fail_on, "total": m.findings.total,
            "suppressed": m.findings.suppressed, "merchants": m.findings.by_merchant.len(),
            "rejected_total": d.rejected.len(), "rejected_shown": rejected.len(),
        },
        "inputs": inputs,
        "rejected": rejected,
        "rules": rules,
        "findings": findings,
        "cases": cases,
    })
}

/// The page's labels in the run's language.
fn labels(d: &ReportData) -> Value {
    let w = words(d.lang);
    let zh = d.lang == crate::findings::lang::Lang::Zh;
    let pairs: Vec<(&str, &str)> = vec![
        ("title", w.report_title),
        ("summary", w.summary),
        ("cases", w.cases),
        ("findings", w.findings),
        ("merchant", w.merchant),
        ("name", if zh { "商户名称" } else { "Name" }),
        ("score", w.score),
        ("severity", w.severity),
        ("family", w.family),
        ("rule", w.rule),
        ("title_col", w.title),
        ("message", w.message),
        ("evidence", w.evidence),
        ("typologies", w.typologies),
        ("tier", w.tier),
        ("cash_out", w.suspected_cash_out),
        ("entity", w.entity),
        ("status", w.status),
        ("baseline", w.baseline),
        ("file", w.file),
        ("line", w.line),
        ("column", w.column),
        ("value", w.value),
        ("reason", w.reason),
        ("count", w.count),
        ("basis", w.basis),
        ("per_day", w.per_day),
        ("per_rule", w.by_rule),
        ("scores", w.score_distribution),
        ("rules_run", w.rules_run),
        ("catalogue", w.rule_catalogue),
        ("filter", w.filter),
        ("previous", w.previous),
        ("next", w.next),
        ("page", w.page),
        ("as_of", w.as_of),
        ("inputs", w.inputs),
        ("rows_read", w.rows_read),
        ("accepted", w.accepted),
        ("rejected", w.rejected),
        ("by_severity", w.by_severity),
        ("by_family", w.by_family),
        ("date", w.date),
        ("amount", w.amount),
        ("fingerprint", w.fingerprint),
        ("input", w.input),
        ("skipped", w.skipped),
        ("failed", w.failed),
        ("in_shadow", w.in_shadow),
        ("all", if zh { "全部" } else { "all" }),
    ];
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

/// JSON safe inside a `<script>` element: no `</script>`, no HTML comment.
fn script_safe(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

pub fn write(d: &ReportData, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let w = words(d.lang);
    let lang = if d.lang == crate::findings::lang::Lang::Zh { "zh-CN" } else { "en" };
    let title = format!("{} · {}", w.report_title, d.manifest.as_of);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        title.replace('<', "&lt;")
    )?;
    out.write_all(b"<script type=\"application/json\" id=\"data\">")?;
    out.write_all(script_safe(&data(d)).as_bytes())?;
    out.write_all(b"</script>\n<main id=\"app\"></main>\n<script>")?;
    out.write_all(SCRIPT.as_bytes())?;
    out.write_all(b"</script>\n</body>\n</html>\n")
}

/// The page's look (plain CSS, no web fonts).
const STYLE: &str = include_str!("report.css");

/// The page's behaviour: drawing, sorting, filtering and paging the
/// embedded data (plain JavaScript, no library).
const SCRIPT: &str = include_str!("report.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script() {
        let v = json!({"m": "</script><script>alert(1)</script> & <!--"});
        let s = script_safe(&v);
        assert!(!s.contains('<') && !s.contains('>'));
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
    }
}
