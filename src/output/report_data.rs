//! What the officer's report and workbook show: the run's manifest, its
//! findings, cases and rejected rows, and the pack's rules, in one place.

use indexmap::IndexMap;

use super::manifest::Manifest;
use crate::engine::RuleRun;
use crate::findings::cases::Case;
use crate::findings::lang::Lang;
use crate::findings::Finding;
use crate::input::RejectedRow;
use crate::rules::load::RulePack;

pub struct ReportData<'a> {
    pub manifest: &'a Manifest,
    pub runs: &'a [RuleRun],
    pub findings: &'a [Finding],
    pub cases: &'a [Case],
    pub rejected: &'a [RejectedRow],
    pub pack: &'a RulePack,
    pub lang: Lang,
    /// Typology id -> title in the run's language.
    pub typologies: IndexMap<String, String>,
}

impl ReportData<'_> {
    /// A rule's title in the run's language.
    pub fn title(&self, rule_id: &str) -> String {
        self.pack
            .rules
            .iter()
            .find(|r| r.rule.id == rule_id)
            .map(|r| self.lang.pick(&r.rule.title, r.rule.title_zh.as_deref()).to_string())
            .unwrap_or_default()
    }
}

/// The date a finding is about, from its evidence (a day, a window's start,
/// a transaction or charge time, a month), as YYYY-MM-DD.
pub fn finding_date(f: &Finding) -> Option<String> {
    for key in ["day", "window_start", "txn_time", "charged_at", "effective_at", "submitted_at"] {
        if let Some(v) = f.evidence.get(key) {
            let d: String = v.chars().take(10).collect();
            if chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").is_ok() {
                return Some(d);
            }
        }
    }
    if let Some(m) = f.evidence.get("month") {
        let d = format!("{}-01", m.chars().take(7).collect::<String>());
        if chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").is_ok() {
            return Some(d);
        }
    }
    None
}

/// The money a finding is about, from its evidence (a group's sum, a
/// transaction's or charge's amount), as exact yuan text.
pub fn finding_amount(f: &Finding) -> Option<String> {
    for key in ["sum_amount", "amount"] {
        if let Some(v) = f.evidence.get(key) {
            if !v.is_empty() && v.parse::<f64>().is_ok() {
                return Some(v.clone());
            }
        }
    }
    None
}
