//! The rule format: what one YAML rule says.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::input::InputKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    DocumentValidity,
    TransactionLimits,
    FeeTransparency,
    SuspiciousPatterns,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::DocumentValidity,
        Family::TransactionLimits,
        Family::FeeTransparency,
        Family::SuspiciousPatterns,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Family::DocumentValidity => "document_validity",
            Family::TransactionLimits => "transaction_limits",
            Family::FeeTransparency => "fee_transparency",
            Family::SuspiciousPatterns => "suspicious_patterns",
        }
    }
}

/// Ordered from least to most severe, so `>=` compares as users expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("`{s}` is not a severity (info, low, medium, high, critical)"))
    }
}

/// Whether a rule's findings count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    #[default]
    Active,
    Shadow,
}

impl Lifecycle {
    pub fn is_active(&self) -> bool {
        *self == Lifecycle::Active
    }
}

/// Why a rule exists: the text, how strong the evidence is (V verified, R
/// reported, I inference, M memory) and the source keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Basis {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mark {
    V,
    R,
    I,
    M,
}

/// A rule as written in YAML. Unknown keys are errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// The title in Chinese, in the regulations' own words (`rules check`
    /// requires it: officers read Chinese).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
    /// The message template in Chinese (same placeholders as `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_zh: Option<String>,
    pub family: Family,
    pub severity: Severity,
    /// Missing is allowed but warned about: a finding should say why it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// The input the rule reads. Transaction, fee and fee-change rules also
    /// see the merchant's application columns.
    pub source: InputKind,
    /// Row condition (SQL). Omitted: every row.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    /// Calendar window: `1d` (day) or `1M` (month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Sliding window ending at each row: `10m`, `2h`, `30d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling: Option<String>,
    /// Time column for windows (default: the input's own time column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// Named aggregates (SQL), usable in `having` and the message.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub measures: IndexMap<String, String>,
    /// Group condition over aggregates (SQL), e.g. `SUM(amount) > 500`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub having: Option<String>,
    /// Compare each group's measure with the same measure over its peers
    /// (the other groups with the same MCC, say) in the same scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Peers>,
    /// Columns shown with each finding.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Message template: `{name}` takes a column, measure or parameter.
    pub message: String,
    /// Tunable values, written `${name}` in SQL and `{name}` in messages.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, serde_yaml::Value>,
    /// What a group finding is about (e.g. `card`, `merchant`); rows use the input's entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// `active` (the default) or `shadow`: a shadow rule is evaluated as any
    /// other, but its findings are written apart (`shadow-findings.jsonl`)
    /// and kept out of the exit code and the officer-facing outputs, so a
    /// team can watch a new rule before switching it on.
    #[serde(default, skip_serializing_if = "Lifecycle::is_active")]
    pub status: Lifecycle,
    /// The rule's own cases: records that must trigger it and near misses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<super::cases::RuleTest>,
}

impl Rule {
    pub(crate) fn is_grouped(&self) -> bool {
        !self.group_by.is_empty() || self.window.is_some() || self.rolling.is_some() || self.having.is_some()
    }

    pub(crate) fn time_column(&self) -> &str {
        self.time_column.as_deref().unwrap_or_else(|| self.source.time_column())
    }

    /// Substitute `${param}` (and the built-in `${as_of}`) in SQL text.
    pub(crate) fn expand(&self, sql: &str, as_of: chrono::NaiveDate) -> Result<String, FormatError> {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or(FormatError::UnclosedParameter)?;
            let name = after[..end].trim();
            if name == "as_of" {
                out.push_str(&format!("'{as_of}'"));
            } else {
                let v = self
                    .params
                    .get(name)
                    .ok_or_else(|| FormatError::UnknownParameter(name.to_string()))?;
                out.push_str(&yaml_sql_literal(v));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Names used as `{name}` in a message template, in order of first use.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].trim();
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

pub fn yaml_scalar_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// A parameter as a SQL literal: integers bare, fractions as exact
/// decimals (`decimal_literal`), strings quoted, lists as a
/// comma-separated literal list for `IN (...)`.
fn yaml_sql_literal(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        serde_yaml::Value::Sequence(items) => items.iter().map(yaml_sql_literal).collect::<Vec<_>>().join(", "),
        serde_yaml::Value::Number(n) if n.is_f64() => {
            let text = n.to_string();
            decimal_literal(&text).unwrap_or(text)
        }
        other => yaml_scalar_text(other),
    }
}

/// A fraction written in plain digits (`0.1`, `-12.50`) as an exact SQL
/// decimal: `CAST('0.1' AS DECIMAL(1, 1))`. None for other text
/// (exponents, `.inf`), which stays as written.
///
/// Why: polars reads a bare `0.1` as a float, and money times a float is
/// a float, so `refunds > 0.1 * sales` was decided in binary floating
/// point: refunds of 500.04 against sales of 5,000.40 (exactly 10%) were
/// "above 10%". As a decimal the product is exact to the fen, and Spark,
/// which reads a bare `0.1` as a decimal already, decides as the engine
/// does.
fn decimal_literal(text: &str) -> Option<String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.')?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(whole) || !plain(fraction) {
        return None;
    }
    let scale = fraction.len();
    let precision = whole.trim_start_matches('0').len() + scale;
    // A DECIMAL holds 38 digits at most (polars, Spark, DuckDB alike).
    (precision <= 38).then(|| format!("CAST('{text}' AS DECIMAL({}, {scale}))", precision.max(1)))
}

/// A population baseline: each group's measure against the distribution of
/// the same measure over the groups that share the `by` columns (in the
/// same calendar window, if the rule has one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peers {
    /// Columns that make a peer group, e.g. `[mcc]`: each group takes its
    /// first row's value.
    pub by: Vec<String>,
    /// The measure compared: a measure of the rule, `count` or `sum_amount`.
    pub of: String,
    /// Condition (SQL) over the group's measures and the peer statistics
    /// `peer_median`, `peer_p95`, `peer_p99` and `peer_count` (groups in the
    /// peer group, this one included), and the group's own history
    /// `own_median` and `own_windows` (the median of the measure over the
    /// same keys' calendar windows in the scan, and how many there are); a
    /// group hits when `having` and this hold.
    pub when: String,
}

/// The columns a peer baseline adds to each group.
pub(crate) const PEER_COLUMNS: [&str; 6] = ["peer_median", "peer_p95", "peer_p99", "peer_count", "own_median", "own_windows"];

/// A parsed window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    Day,
    Month,
}

/// A part of a rule that does not say what the format allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("unclosed `${{`")]
    UnclosedParameter,
    #[error("unknown parameter `${{{0}}}` (declare it under `params`)")]
    UnknownParameter(String),
    #[error("`{0}` is not a calendar window (use 1d or 1M; use `rolling` for sliding windows)")]
    NotCalendar(String),
    #[error("`{0}` is not a rolling window (a number and s, m, h or d: 10m, 2h, 30d)")]
    NotRolling(String),
}

pub(crate) fn parse_calendar(s: &str) -> Result<Calendar, FormatError> {
    match s.trim() {
        "1d" => Ok(Calendar::Day),
        "1M" | "1mo" => Ok(Calendar::Month),
        other => Err(FormatError::NotCalendar(other.to_string())),
    }
}

/// A sliding window length as a polars duration string (`10m`, `2h`, `30d`).
pub(crate) fn parse_rolling(s: &str) -> Result<String, FormatError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let ok_num = num.parse::<u32>().is_ok_and(|n| n > 0);
    let unit = match unit {
        "s" => "s",
        "m" => "m",
        "h" => "h",
        "d" => "d",
        _ => "",
    };
    if !ok_num || unit.is_empty() {
        return Err(FormatError::NotRolling(s.to_string()));
    }
    Ok(format!("{num}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_exact_decimals_and_integers_stay_bare() {
        let literal = |yaml: &str| yaml_sql_literal(&serde_yaml::from_str(yaml).unwrap());
        assert_eq!(literal("0.1"), "CAST('0.1' AS DECIMAL(1, 1))");
        assert_eq!(literal("0.95"), "CAST('0.95' AS DECIMAL(2, 2))");
        assert_eq!(literal("-12.5"), "CAST('-12.5' AS DECIMAL(3, 1))");
        assert_eq!(literal("3.0"), "CAST('3.0' AS DECIMAL(2, 1))");
        assert_eq!(literal("500"), "500");
        assert_eq!(literal("[0.5, 2]"), "CAST('0.5' AS DECIMAL(1, 1)), 2");
        assert_eq!(literal("'0.5'"), "'0.5'");
        // Not plain digits: left as the YAML wrote them.
        assert_eq!(literal(".inf"), yaml_scalar_text(&serde_yaml::from_str(".inf").unwrap()));
        assert_eq!(decimal_literal("1e-7"), None);
        assert_eq!(decimal_literal("1."), None);
    }
}
