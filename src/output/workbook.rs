//! The Excel workbook (`--format xlsx`): summary, cases, findings,
//! rejected rows and rules, each sheet with a frozen header row, filters
//! and set column widths; dates are dates and money is numbers, so an
//! officer can sort, filter and pivot without cleaning anything first.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::report_data::{finding_amount, finding_date, ReportData};
use super::words::{family, severity, state, words};
use crate::findings::model::Status;

fn date_of(text: &str) -> Option<ExcelDateTime> {
    let d = chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8).ok()
}

struct Formats {
    header: Format,
    date: Format,
    money: Format,
}

/// Write a header row, freeze it, and set the widths.
fn header(ws: &mut Worksheet, f: &Formats, cols: &[(&str, f64)]) -> Result<(), XlsxError> {
    for (i, (name, width)) in cols.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *name, &f.header)?;
        ws.set_column_width(i as u16, *width)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

fn filter(ws: &mut Worksheet, rows: usize, cols: usize) -> Result<(), XlsxError> {
    if cols > 0 {
        ws.autofilter(0, 0, rows.max(1) as u32, cols as u16 - 1)?;
    }
    Ok(())
}

fn money(ws: &mut Worksheet, row: u32, col: u16, yuan: &str, f: &Formats) -> Result<(), XlsxError> {
    match yuan.parse::<f64>() {
        Ok(v) => ws.write_number_with_format(row, col, v, &f.money).map(|_| ()),
        Err(_) => ws.write_string(row, col, yuan).map(|_| ()),
    }
}

fn date(ws: &mut Worksheet, row: u32, col: u16, text: &str, f: &Formats) -> Result<(), XlsxError> {
    match date_of(text) {
        Some(d) => ws.write_date_with_format(row, col, &d, &f.date).map(|_| ()),
        None => ws.write_string(row, col, text).map(|_| ()),
    }
}

pub fn write(d: &ReportData, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let bytes = build(d).map_err(std::io::Error::other)?;
    out.write_all(&bytes)
}

fn build(d: &ReportData) -> Result<Vec<u8>, XlsxError> {
    let w = words(d.lang);
    let zh = d.lang == crate::findings::lang::Lang::Zh;
    let f = Formats {
        header: Format::new().set_bold().set_background_color("#DDE4EE"),
        date: Format::new().set_num_format("yyyy-mm-dd"),
        money: Format::new().set_num_format("#,##0.00"),
    };
    let m = d.manifest;
    let mut wb = Workbook::new();

    // Summary: the run's facts, then counts.
    let ws = wb.add_worksheet();
    ws.set_name(if zh { "概览" } else { "Summary" })?;
    header(ws, &f, &[(w.summary, 34.0), (w.value, 70.0), ("", 14.0), ("", 14.0)])?;
    let facts: Vec<(&str, String)> = [
        Some(("posaudit", m.version.to_string())),
        Some((w.rules, format!("{} ({})", m.rules.count, m.rules.digest))),
        Some((w.findings, m.findings.total.to_string())),
        m.cases.as_ref().map(|c| (w.cases, c.count.to_string())),
        Some(("exit", format!("{} ({})", m.exit_code, m.fail_on))),
    ]
    .into_iter()
    .flatten()
    .collect();
    ws.write_string(1, 0, w.as_of)?;
    date(ws, 1, 1, &m.as_of, &f)?;
    let mut r = 2u32;
    for (k, v) in facts {
        ws.write_string(r, 0, k)?;
        ws.write_string(r, 1, &v)?;
        r += 1;
    }
    r += 1;
    for (i, h) in [w.input, w.file, "SHA-256", w.rows_read, w.accepted, w.rejected].iter().enumerate() {
        ws.write_string_with_format(r, i as u16, *h, &f.header)?;
    }
    r += 1;
    for s in &m.inputs {
        ws.write_string(r, 0, s.input.name())?;
        ws.write_string(r, 1, &s.file)?;
        ws.write_string(r, 2, &s.sha256)?;
        ws.write_number(r, 3, s.rows_read as f64)?;
        ws.write_number(r, 4, s.rows_accepted as f64)?;
        ws.write_number(r, 5, s.rows_rejected as f64)?;
        r += 1;
    }
    r += 1;
    ws.write_string_with_format(r, 0, w.by_severity, &f.header)?;
    ws.write_string_with_format(r, 1, w.count, &f.header)?;
    r += 1;
    for s in crate::rules::model::Severity::ALL.iter().rev() {
        ws.write_string(r, 0, severity(d.lang, *s))?;
        ws.write_number(r, 1, m.findings.by_severity.get(s.name()).copied().unwrap_or(0) as f64)?;
        r += 1;
    }
    r += 1;
    ws.write_string_with_format(r, 0, w.by_family, &f.header)?;
    ws.write_string_with_format(r, 1, w.count, &f.header)?;
    r += 1;
    for fam in crate::rules::model::Family::ALL {
        ws.write_string(r, 0, family(d.lang, fam))?;
        ws.write_number(r, 1, m.findings.by_family.get(fam.name()).copied().unwrap_or(0) as f64)?;
        r += 1;
    }

    // Cases, ranked.
    let ws = wb.add_worksheet();
    ws.set_name(if zh { "案件" } else { "Cases" })?;
    let cols = [
        ("#", 6.0),
        (w.merchant, 18.0),
        (if zh { "商户名称" } else { "Merchant name" }, 30.0),
        (w.score, 10.0),
        (w.severity, 10.0),
        (w.typologies, 30.0),
        (w.tier, 14.0),
        (w.suspected_cash_out, 20.0),
        (w.findings, 10.0),
        (w.open, 10.0),
        (w.suppressed, 10.0),
        (w.rule, 60.0),
    ];
    header(ws, &f, &cols)?;
    for (i, c) in d.cases.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_number(r, 0, c.rank as f64)?;
        ws.write_string(r, 1, &c.merchant_id)?;
        ws.write_string(r, 2, c.merchant_name.as_deref().unwrap_or(""))?;
        ws.write_number(r, 3, c.score)?;
        ws.write_string(r, 4, severity(d.lang, c.severity))?;
        let ty: Vec<String> = c
            .typologies
            .iter()
            .map(|t| d.typologies.get(t).cloned().unwrap_or_else(|| t.clone()))
            .collect();
        ws.write_string(r, 5, ty.join("、"))?;
        let tier = c
            .tier
            .as_ref()
            .map(|t| if zh { t.label_zh.clone() } else { t.label.clone() })
            .unwrap_or_default();
        ws.write_string(r, 6, &tier)?;
        money(ws, r, 7, &c.suspected_cash_out, &f)?;
        ws.write_number(r, 8, c.findings as f64)?;
        ws.write_number(r, 9, c.open as f64)?;
        ws.write_number(r, 10, c.suppressed as f64)?;
        let rules: Vec<String> = c.rules.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        ws.write_string(r, 11, rules.join("; "))?;
    }
    filter(ws, d.cases.len(), cols.len())?;

    // Findings.
    let ws = wb.add_worksheet();
    ws.set_name(if zh { "发现" } else { "Findings" })?;
    let cols = [
        (w.rule, 13.0),
        (w.title, 40.0),
        (w.family, 12.0),
        (w.severity, 9.0),
        (w.merchant, 18.0),
        (w.date, 12.0),
        (w.amount, 14.0),
        (w.message, 80.0),
        (w.entity, 36.0),
        (w.status, 10.0),
        (w.baseline, 10.0),
        (w.source, 40.0),
        (w.line, 8.0),
        (w.fingerprint, 34.0),
    ];
    header(ws, &f, &cols)?;
    for (i, x) in d.findings.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, &x.rule_id)?;
        ws.write_string(r, 1, d.title(&x.rule_id))?;
        ws.write_string(r, 2, family(d.lang, x.family))?;
        ws.write_string(r, 3, severity(d.lang, x.severity))?;
        ws.write_string(r, 4, x.merchant_ids.join(";"))?;
        if let Some(t) = finding_date(x) {
            date(ws, r, 5, &t, &f)?;
        }
        if let Some(a) = finding_amount(x) {
            money(ws, r, 6, &a, &f)?;
        }
        ws.write_string(r, 7, &x.message)?;
        ws.write_string(r, 8, &x.entity_id)?;
        let st = match x.status {
            Status::Open => "open",
            Status::Suppressed => "suppressed",
        };
        ws.write_string(r, 9, state(d.lang, st))?;
        ws.write_string(r, 10, x.baseline.map(|b| state(d.lang, b.name())).unwrap_or(""))?;
        if let Some(s) = &x.source {
            ws.write_string(r, 11, &s.file)?;
            ws.write_number(r, 12, s.line as f64)?;
        }
        ws.write_string(r, 13, &x.fingerprint)?;
    }
    filter(ws, d.findings.len(), cols.len())?;

    // Rejected rows (values masked before they got here).
    let ws = wb.add_worksheet();
    ws.set_name(if zh { "拒收行" } else { "Rejected rows" })?;
    let cols = [
        (w.input, 14.0),
        (w.file, 40.0),
        (w.line, 8.0),
        (w.column, 20.0),
        (w.value, 24.0),
        (w.reason, 70.0),
    ];
    header(ws, &f, &cols)?;
    for (i, x) in d.rejected.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, x.input.name())?;
        ws.write_string(r, 1, &x.file)?;
        ws.write_number(r, 2, x.line as f64)?;
        ws.write_string(r, 3, &x.column)?;
        ws.write_string(r, 4, &x.value)?;
        ws.write_string(r, 5, &x.reason)?;
    }
    filter(ws, d.rejected.len(), cols.len())?;

    // Rules: what each checks, why, and what it did in this run.
    let ws = wb.add_worksheet();
    ws.set_name(if zh { "规则" } else { "Rules" })?;
    let cols = [
        (w.rule, 13.0),
        (w.title, 50.0),
        (w.family, 12.0),
        (w.severity, 9.0),
        (w.status, 10.0),
        (w.findings, 10.0),
        (w.basis, 90.0),
    ];
    header(ws, &f, &cols)?;
    for (i, lr) in d.pack.rules.iter().enumerate() {
        let r = i as u32 + 1;
        let rule = &lr.rule;
        let run = d.runs.iter().find(|x| x.rule_id == rule.id);
        ws.write_string(r, 0, &rule.id)?;
        ws.write_string(r, 1, d.lang.pick(&rule.title, rule.title_zh.as_deref()))?;
        ws.write_string(r, 2, family(d.lang, rule.family))?;
        ws.write_string(r, 3, severity(d.lang, rule.severity))?;
        let status = run
            .map(|x| match (x.status, x.shadow) {
                (_, true) => w.in_shadow.to_string(),
                (crate::engine::RuleStatus::Ran, _) => "ran".to_string(),
                (crate::engine::RuleStatus::Skipped, _) => format!("{}: {}", w.skipped, x.reason.as_deref().unwrap_or("")),
                (crate::engine::RuleStatus::Failed, _) => format!("{}: {}", w.failed, x.reason.as_deref().unwrap_or("")),
            })
            .unwrap_or_default();
        ws.write_string(r, 4, &status)?;
        ws.write_number(r, 5, m.findings.by_rule.get(&rule.id).copied().unwrap_or(0) as f64)?;
        ws.write_string(r, 6, rule.basis.as_ref().map(|b| b.text.as_str()).unwrap_or(""))?;
    }
    filter(ws, d.pack.rules.len(), cols.len())?;
    wb.save_to_buffer()
}
