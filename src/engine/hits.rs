//! A rule plan's output rows ("hits") become findings: entity, evidence,
//! message, source line and fingerprint.

use indexmap::IndexMap;
use polars::prelude::*;

use super::plan::{BUILTIN_MEASURES, IDS, MERCHANTS, ROW_ID, WINDOW};
use crate::findings::message::render;
use crate::findings::model::fingerprint;
use crate::findings::{Finding, Source};
use crate::input::values::{date_from_days, datetime_from_millis};
use crate::input::{FileStats, LINE_COL, SRC_COL};
use crate::mask::mask_value;
use crate::rules::compiled::{CompiledRule, Window};
use crate::rules::load::LoadedRule;

/// A value as text: money exact with its decimals, times without a zone,
/// lists joined with `;`.
pub fn display(av: &AnyValue) -> Option<String> {
    Some(match av {
        AnyValue::Null => return None,
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Categorical(c, m) | AnyValue::Enum(c, m) => m.cat_to_str(*c)?.to_string(),
        AnyValue::CategoricalOwned(c, m) | AnyValue::EnumOwned(c, m) => m.cat_to_str(*c)?.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        AnyValue::Float64(f) => format_float(*f),
        AnyValue::Float32(f) => format_float(*f as f64),
        AnyValue::Decimal(v, _, scale) => format_decimal(*v, *scale),
        AnyValue::Date(d) => date_from_days(*d).to_string(),
        AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
            let ms = match unit {
                TimeUnit::Milliseconds => *v,
                TimeUnit::Microseconds => v / 1_000,
                TimeUnit::Nanoseconds => v / 1_000_000,
            };
            datetime_from_millis(ms).format("%Y-%m-%d %H:%M:%S").to_string()
        }
        AnyValue::List(s) => s.iter().filter_map(|v| display(&v)).collect::<Vec<_>>().join(";"),
        other => other.to_string().trim_matches('"').to_string(),
    })
}

fn format_float(f: f64) -> String {
    let s = format!("{:.6}", f);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

pub(crate) fn format_decimal(v: i128, scale: usize) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let neg = v < 0;
    let a = v.unsigned_abs();
    let p = 10u128.pow(scale as u32);
    let mut frac = format!("{:0width$}", a % p, width = scale);
    // Rates carry six decimals internally; show at least two, no trailing noise.
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{}{}.{}", if neg { "-" } else { "" }, a / p, frac)
}

fn cell(df: &DataFrame, name: &str, row: usize) -> Option<String> {
    let c = df.column(name).ok()?;
    display(&c.get(row).ok()?)
}

fn list_cell(df: &DataFrame, name: &str, row: usize) -> Vec<String> {
    match df.column(name).ok().and_then(|c| c.get(row).ok()) {
        Some(AnyValue::List(s)) => s.iter().filter_map(|v| display(&v)).collect(),
        Some(v) => display(&v).into_iter().collect(),
        None => vec![],
    }
}

fn source_of(df: &DataFrame, row: usize, rule: &CompiledRule, files: &[FileStats]) -> Option<Source> {
    let src = df.column(SRC_COL).ok()?.get(row).ok()?.extract::<u32>()? as usize;
    let line = df.column(LINE_COL).ok()?.get(row).ok()?.extract::<u64>()?;
    Some(Source {
        input: rule.source,
        file: files.get(src)?.file.clone(),
        line,
    })
}

fn params(rule: &CompiledRule) -> IndexMap<String, String> {
    rule.params.clone()
}

/// What a hit says before it becomes a finding.
struct Parts {
    merchant_id: Option<String>,
    /// Every merchant the hit involves, sorted.
    merchant_ids: Vec<String>,
    entity_kind: String,
    entity_id: String,
    /// Raw (unmasked) entity key: the fingerprint's input.
    key: String,
    /// Raw key for rule tests (row id, or group key values joined with `|`).
    test_key: String,
    txn_ids: Vec<String>,
    evidence: IndexMap<String, String>,
    /// Values for the message template besides the evidence.
    values: IndexMap<String, String>,
    source: Option<Source>,
}

fn finding(lr: &LoadedRule, p: Parts) -> Finding {
    let rule = &lr.compiled;
    let mut values = p.values;
    for (k, v) in &p.evidence {
        values.entry(k.clone()).or_insert_with(|| v.clone());
    }
    values.insert("entity_id".into(), p.entity_id.clone());
    if let Some(m) = &p.merchant_id {
        values.entry("merchant_id".into()).or_insert_with(|| m.clone());
    }
    Finding {
        fingerprint: fingerprint(&rule.id, &p.entity_kind, &p.key),
        rule_id: rule.id.clone(),
        family: rule.family,
        severity: rule.severity,
        merchant_id: p.merchant_id,
        merchant_ids: p.merchant_ids,
        entity_kind: p.entity_kind,
        entity_id: p.entity_id,
        txn_ids: p.txn_ids,
        evidence: p.evidence,
        message: render(&rule.message, &values),
        message_zh: rule.message_zh.as_ref().map(|m| render(m, &values)),
        basis: rule.basis.as_ref().map(|b| b.text.clone()).unwrap_or_default(),
        basis_mark: rule.basis.as_ref().and_then(|b| b.mark),
        source: p.source,
        status: Default::default(),
        exception_id: None,
        baseline: None,
        key: p.test_key,
    }
}

/// Findings of a row rule: one per hit row.
pub(crate) fn row_findings(lr: &LoadedRule, hits: &DataFrame, files: &[FileStats]) -> Vec<Finding> {
    let rule = &lr.compiled;
    let (entity_kind, _) = rule.source.entity();
    let columns: Vec<String> = hits
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !c.starts_with('_'))
        .collect();
    (0..hits.height())
        .map(|i| {
            let id = cell(hits, ROW_ID, i).unwrap_or_default();
            let mut values = params(rule);
            for c in &columns {
                if let Some(v) = cell(hits, c, i) {
                    values.insert(c.clone(), mask_value(c, &v));
                }
            }
            let evidence: IndexMap<String, String> = rule
                .evidence
                .iter()
                .filter_map(|e| values.get(e).map(|v| (e.clone(), v.clone())))
                .collect();
            let merchant = cell(hits, "merchant_id", i);
            let txn_ids = if rule.source == crate::input::InputKind::Transactions {
                vec![id.clone()]
            } else {
                vec![]
            };
            let source = source_of(hits, i, rule, files);
            let parts = Parts {
                merchant_ids: merchant.iter().cloned().collect(),
                merchant_id: merchant,
                entity_kind: entity_kind.to_string(),
                entity_id: id.clone(),
                key: id.clone(),
                test_key: id,
                txn_ids,
                evidence,
                values,
                source,
            };
            finding(lr, parts)
        })
        .collect()
}

/// One group hit before rolling windows are merged.
struct GroupHit {
    row: usize,
    key: Vec<(String, Option<String>)>,
    ids: Vec<String>,
    start: Option<String>,
    end: Option<String>,
    count: u64,
}

/// Findings of a group rule. A rolling rule's hits are episodes: windows
/// of one key that share rows, merged by the plan (its members the union,
/// its measures those of the densest window).
pub(crate) fn group_findings(lr: &LoadedRule, hits: &DataFrame, files: &[FileStats]) -> Vec<Finding> {
    let rule = &lr.compiled;
    let raw: Vec<GroupHit> = (0..hits.height())
        .map(|i| GroupHit {
            row: i,
            key: rule.keys().iter().map(|k| (k.clone(), cell(hits, k, i))).collect(),
            ids: list_cell(hits, IDS, i),
            start: cell(hits, "window_start", i),
            end: cell(hits, "window_end", i),
            count: cell(hits, "count", i).and_then(|c| c.parse().ok()).unwrap_or(0),
        })
        .collect();
    // A rolling rule's hits come merged into episodes (`plan::episodes`).
    let rolling = matches!(rule.window(), Some(Window::Rolling { .. }));
    let window_label = rule.window().and_then(Window::label);
    let peer_columns: &[&str] = if rule.peers().is_some() {
        &crate::rules::model::PEER_COLUMNS
    } else {
        &[]
    };
    let measures: Vec<String> = BUILTIN_MEASURES
        .iter()
        .map(|s| s.to_string())
        .chain(rule.grouping.iter().flat_map(|g| g.measures.keys().cloned()))
        .chain(peer_columns.iter().map(|s| s.to_string()))
        .collect();
    raw.into_iter()
        .map(|h| {
            let i = h.row;
            let mut evidence: IndexMap<String, String> = IndexMap::new();
            for (k, v) in &h.key {
                evidence.insert(k.clone(), v.as_deref().map(|v| mask_value(k, v)).unwrap_or_default());
            }
            let window = if window_label.is_some() { cell(hits, WINDOW, i) } else { None };
            if let (Some(label), Some(w)) = (window_label, &window) {
                evidence.insert(label.to_string(), w.clone());
            }
            for m in &measures {
                let windowed = rule.window().is_some();
                let v = match m.as_str() {
                    "count" => Some(h.count.max(h.ids.len() as u64).to_string()),
                    "window_start" if windowed => h.start.clone(),
                    "window_end" if windowed => h.end.clone(),
                    "window_start" | "window_end" => None,
                    _ => cell(hits, m, i),
                };
                if let Some(v) = v {
                    evidence.insert(m.clone(), v);
                }
            }
            for e in &rule.evidence {
                if !evidence.contains_key(e) && hits.schema().contains(e) {
                    let vals: Vec<String> = list_cell(hits, e, i).iter().map(|v| mask_value(e, v)).collect();
                    evidence.insert(e.clone(), vals.join(";"));
                }
            }
            let mut merchants = list_cell(hits, MERCHANTS, i);
            merchants.sort();
            merchants.dedup();
            if !merchants.is_empty() {
                evidence.insert("merchant_ids".into(), merchants.join(";"));
            }
            let merchant_id = h
                .key
                .iter()
                .find(|(k, _)| k == "merchant_id")
                .and_then(|(_, v)| v.clone())
                .or_else(|| (merchants.len() == 1).then(|| merchants[0].clone()));
            let mut key_raw: Vec<String> = h.key.iter().map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or(""))).collect();
            let mut shown: Vec<String> = h
                .key
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().map(|v| mask_value(k, v)).unwrap_or_default()))
                .collect();
            match (&window, rolling) {
                (Some(w), _) => {
                    key_raw.push(format!("{}={w}", window_label.unwrap_or("window")));
                    shown.push(format!("{}={w}", window_label.unwrap_or("window")));
                }
                (None, true) => {
                    // An episode is named by its first member.
                    let first = h.ids.first().cloned().unwrap_or_default();
                    key_raw.push(format!("first={first}"));
                    shown.push(format!("from={}", h.start.clone().unwrap_or_default()));
                }
                _ => {}
            }
            let key = key_raw.join("|");
            let entity_kind = rule.entity.clone().unwrap_or_else(|| "group".to_string());
            // Members of a transaction group are transactions; other inputs
            // name theirs in the evidence (application_ids, charge_ids, ...).
            let txn_ids = if rule.source == crate::input::InputKind::Transactions {
                h.ids.clone()
            } else {
                let (kind, _) = rule.source.entity();
                evidence.insert(format!("{kind}_ids"), h.ids.join(";"));
                vec![]
            };
            let mut values = params(rule);
            values.insert("txn_count".into(), h.ids.len().to_string());
            let source = source_of(hits, i, rule, files);
            let test_key = h
                .key
                .iter()
                .map(|(_, v)| v.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|");
            // Every merchant involved: the group's members' merchants (a card
            // at five merchants names all five), else the group's own.
            let merchant_ids = if merchants.is_empty() {
                merchant_id.iter().cloned().collect()
            } else {
                merchants
            };
            let parts = Parts {
                merchant_id,
                merchant_ids,
                entity_kind,
                entity_id: shown.join("; "),
                key,
                test_key,
                txn_ids,
                evidence,
                values,
                source,
            };
            finding(lr, parts)
        })
        .collect()
}
