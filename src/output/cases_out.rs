//! Cases in JSON Lines and CSV, beside the findings.

use std::io::Write;

use crate::findings::cases::Case;
use crate::findings::lang::Lang;

pub const CASES_JSONL: &str = "cases.jsonl";
pub const CASES_CSV: &str = "cases.csv";

pub(crate) fn write_jsonl(cases: &[Case], w: &mut dyn Write) -> std::io::Result<()> {
    for c in cases {
        serde_json::to_writer(&mut *w, c)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// One row a case; the tier in the run's language. Excel opens UTF-8 CSV
/// with a byte-order mark as UTF-8, so Chinese names read right.
pub(crate) fn write_csv(cases: &[Case], lang: Lang, w: &mut dyn Write) -> std::io::Result<()> {
    w.write_all("\u{feff}".as_bytes())?;
    let mut c = csv::Writer::from_writer(w);
    c.write_record([
        "rank",
        "merchant_id",
        "merchant_name",
        "score",
        "severity",
        "typologies",
        "tier",
        "suspected_cash_out",
        "findings",
        "open",
        "suppressed",
        "new",
        "top_finding_severity",
        "rules",
    ])?;
    for k in cases {
        let tier = k
            .tier
            .as_ref()
            .map(|t| if lang == Lang::Zh { t.label_zh.clone() } else { t.label.clone() })
            .unwrap_or_default();
        let rules: Vec<String> = k.rules.iter().map(|(r, n)| format!("{r}:{n}")).collect();
        c.write_record([
            k.rank.to_string(),
            k.merchant_id.clone(),
            k.merchant_name.clone().unwrap_or_default(),
            k.score.to_string(),
            k.severity.name().to_string(),
            k.typologies.join(";"),
            tier,
            k.suspected_cash_out.clone(),
            k.findings.to_string(),
            k.open.to_string(),
            k.suppressed.to_string(),
            k.new.map(|n| n.to_string()).unwrap_or_default(),
            k.top_finding_severity.name().to_string(),
            rules.join(";"),
        ])?;
    }
    c.flush()
}
