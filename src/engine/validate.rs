//! Checking rules against the inputs' schema without reading data: each
//! expression is resolved on an empty frame with the exact columns (input,
//! derived and joined) the rule will see.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;

use super::plan::{self, clean_polars_error, PlanContext, BUILTIN_MEASURES};
use super::prepare::Prepared;
use crate::findings::message::placeholders;
use crate::input::InputKind;
use crate::rules::compiled::Sql;
use crate::rules::load::{LoadedRule, RuleIssue, RulePack};

#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<RuleIssue>,
    pub warnings: Vec<RuleIssue>,
}

/// The column a polars "not found" error names, if that is what it is.
pub(crate) fn missing_column(e: &PolarsError) -> Option<String> {
    if !matches!(e, PolarsError::ColumnNotFound(_)) && !e.to_string().contains("not found") {
        return None;
    }
    let s = e.to_string();
    let start = s.find('"')? + 1;
    let end = start + s[start..].find('"')?;
    Some(s[start..end].to_string())
}

/// Polars compares a number with a text by turning both into text, so
/// `amount > '500000'` (a quoted parameter, say) is true for 9 yuan. Find
/// such a comparison in `expr`, with the types each side has on `empty`.
fn text_number_comparison(expr: &Expr, empty: &DataFrame) -> Option<String> {
    let dtype = |e: &Expr| -> Option<DataType> {
        let schema = empty.clone().lazy().select([e.clone().alias("__t")]).collect_schema().ok()?;
        schema.get("__t").cloned()
    };
    let numeric = |d: &DataType| d.is_primitive_numeric() || d.is_decimal();
    for node in expr {
        let Expr::BinaryExpr { left, op, right } = node else { continue };
        if !matches!(
            op,
            Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
        ) {
            continue;
        }
        let (Some(l), Some(r)) = (dtype(left), dtype(right)) else {
            continue;
        };
        let (num, text) = match (numeric(&l), numeric(&r), l == DataType::String, r == DataType::String) {
            (true, _, _, true) => (left, right),
            (_, true, true, _) => (right, left),
            _ => continue,
        };
        return Some(format!(
            "compares a number ({num}) with a text ({text}); SQL would compare them as text, where '9' > '500000'. Write the number without quotes (for a parameter: `limit: 500000`, not `limit: \"500000\"`)"
        ));
    }
    None
}

fn sql_check(lr: &LoadedRule, sql: &Sql, as_of: NaiveDate, empty: &DataFrame, apply: impl Fn(Expr) -> LazyFrame) -> Option<RuleIssue> {
    let field = sql.field.as_str();
    let expr = match polars::sql::sql_expr(sql.bind(as_of)) {
        Ok(e) => e,
        Err(e) => return Some(lr.issue(Some(field), format!("SQL does not parse: {}", clean_polars_error(&e)))),
    };
    if let Some(m) = text_number_comparison(&expr, empty) {
        return Some(lr.issue(Some(field), m));
    }
    match apply(expr).collect() {
        Ok(_) => None,
        Err(e) => Some(lr.issue(
            Some(field),
            match missing_column(&e) {
                Some(c) => format!(
                    "unknown column `{c}` (not in the {} input, a derived column or a joined application column)",
                    lr.compiled.source
                ),
                None => clean_polars_error(&e),
            },
        )),
    }
}

/// Check one rule against the schema of its source: the compiled rule's
/// SQL, keys and columns; and, from the rule as written, what only the
/// author's text shows (a missing basis, an unused parameter).
pub(crate) fn check_rule(lr: &LoadedRule, schema: &Schema, as_of: NaiveDate, report: &mut Report) {
    let rule = &lr.compiled;
    let written = &lr.rule;
    let empty = DataFrame::empty_with_schema(schema);
    let before = report.errors.len();
    let has = |c: &str| schema.contains(c);

    if written.basis.is_none() {
        report
            .warnings
            .push(lr.issue(Some("id"), "no `basis`: findings will not say why they matter"));
    }
    if rule.id.trim().is_empty() {
        report.errors.push(lr.issue(Some("id"), "rule id is empty"));
    }
    if let Some(w) = &rule.filter {
        let df = empty.clone();
        if let Some(i) = sql_check(lr, w, as_of, &empty, |e| df.clone().lazy().filter(e)) {
            report.errors.push(i);
        }
    }
    for k in rule.keys() {
        if !has(k) {
            report.errors.push(lr.issue(Some("group_by"), format!("unknown column `{k}`")));
        }
    }
    // A window that does not parse never compiled; its time column must exist.
    if rule.window().is_some() && !has(rule.time_column()) {
        report
            .errors
            .push(lr.issue(Some("time_column"), format!("unknown column `{}`", rule.time_column())));
    }
    let agg_check = |sql: &Sql| {
        let df = empty.clone();
        sql_check(lr, sql, as_of, &empty, move |e| {
            df.clone().lazy().group_by([lit(1).alias("__k")]).agg([e.alias("__v")])
        })
    };
    let measures = rule.grouping.as_ref().map(|g| &g.measures);
    for text in measures.into_iter().flat_map(|m| m.values()) {
        if let Some(i) = agg_check(text) {
            report.errors.push(i);
        }
    }
    if let Some(h) = rule.grouping.as_ref().and_then(|g| g.having.as_ref()) {
        if let Some(i) = agg_check(h) {
            report.errors.push(i);
        }
    }
    if let Some(p) = &written.peers {
        if !rule.is_grouped() {
            report
                .errors
                .push(lr.issue(Some("peers"), "peer baselines compare groups: the rule needs `group_by`"));
        }
        for b in &p.by {
            if !has(b) {
                report.errors.push(lr.issue(Some("peers.by"), format!("unknown column `{b}`")));
            }
        }
        if !written.measures.contains_key(&p.of) && !BUILTIN_MEASURES.contains(&p.of.as_str()) {
            report.errors.push(lr.issue(
                Some("peers.of"),
                format!("`{}` is not a measure of the rule (nor count or sum_amount)", p.of),
            ));
        }
    }
    let grouped = rule.is_grouped();
    let peer_column = |name: &str| rule.peers().is_some() && crate::rules::model::PEER_COLUMNS.contains(&name);
    let known = |name: &str| -> bool {
        has(name)
            || peer_column(name)
            || rule.params.contains_key(name)
            || (grouped
                && (BUILTIN_MEASURES.contains(&name)
                    || written.measures.contains_key(name)
                    || matches!(name, "day" | "month" | "merchant_ids" | "txn_count")))
            || name == "entity_id"
    };
    for e in &rule.evidence {
        if !known(e) {
            report.errors.push(lr.issue(Some("evidence"), format!("unknown column `{e}`")));
        }
    }
    let templates = std::iter::once(("message", &rule.message)).chain(rule.message_zh.iter().map(|m| ("message_zh", m)));
    for (field, template) in templates {
        for p in placeholders(template) {
            if !known(&p) {
                report.warnings.push(lr.issue(
                    Some(field),
                    format!("placeholder `{{{p}}}` is never filled (no column, measure or parameter of that name)"),
                ));
            }
        }
    }
    let sql_texts = written_sql(written);
    for &(field, text) in &sql_texts {
        if let Some(number) = inline_fraction(text) {
            report.warnings.push(lr.issue(
                Some(field),
                format!(
                    "`{number}` written in the SQL is a float: money compared with or multiplied by it is decided in binary floating point, not to the fen; make it a parameter (`params: {{share: {number}}}` and `${{share}}`), which goes in as an exact decimal"
                ),
            ));
        }
    }
    for name in written.params.keys() {
        let token = format!("${{{name}}}");
        if !sql_texts.iter().any(|(_, t)| t.contains(&token)) {
            report.errors.push(lr.issue(
                Some(&format!("params.{name}")),
                format!("parameter `{name}` is not used by any condition (write it as ${{{name}}} in `where`, `having` or a measure)"),
            ));
        }
    }
    // The whole plan, for what the parts above cannot see (types across parts).
    if report.errors.len() == before {
        let ctx = PlanContext {
            schema,
            as_of,
            rows: 0,
            time_range: None,
            peer_stats: None,
            condition: Default::default(),
        };
        match plan::build(rule, empty.lazy(), &ctx) {
            Err(e) => report.errors.push(lr.issue(Some(&e.field), e.message)),
            Ok(lf) => {
                if let Err(e) = lf.collect() {
                    report
                        .errors
                        .push(lr.issue(None, format!("the rule's plan does not resolve: {}", clean_polars_error(&e))));
                }
            }
        }
    }
}

/// A rule's SQL texts as written (before parameters), with their fields.
fn written_sql(written: &crate::rules::model::Rule) -> Vec<(&'static str, &str)> {
    let mut texts: Vec<(&'static str, &str)> = Vec::new();
    texts.extend(written.where_.iter().map(|t| ("where", t.as_str())));
    texts.extend(written.having.iter().map(|t| ("having", t.as_str())));
    texts.extend(written.peers.iter().map(|p| ("peers.when", p.when.as_str())));
    texts.extend(written.measures.values().map(|t| ("measures", t.as_str())));
    texts
}

/// The first fraction written as a number in `sql` (`0.95`, not `'0.95'`
/// nor `${near}`): polars reads it as a float.
fn inline_fraction(sql: &str) -> Option<String> {
    let number = regex::Regex::new(r"[0-9]+\.[0-9]+").expect("valid regex");
    let mut quoted = false;
    // Outside quotes only: text between quotes is a string.
    let unquoted: String = sql
        .chars()
        .map(|c| {
            if c == '\'' {
                quoted = !quoted;
            }
            if quoted || c == '\'' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let found = number
        .find_iter(&unquoted)
        .find(|m| {
            let before = unquoted[..m.start()].chars().next_back();
            let after = unquoted[m.end()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
        .map(|m| m.as_str().to_string());
    found
}

/// Check every rule. `schemas` holds each source's full schema: every
/// contract column, optional ones included, so that a rule naming an
/// optional column is valid (it is skipped at run time if the column is absent).
pub fn check(pack: &RulePack, schemas: &BTreeMap<InputKind, SchemaRef>, as_of: NaiveDate) -> Report {
    let mut report = Report::default();
    for lr in &pack.rules {
        match schemas.get(&lr.compiled.source) {
            Some(schema) => check_rule(lr, schema, as_of, &mut report),
            None => report
                .errors
                .push(lr.issue(Some("source"), format!("no schema for input `{}`", lr.compiled.source))),
        }
    }
    report
}

/// Full schemas from empty contract frames, with the extra columns the
/// actual files have.
pub fn contract_schemas(extras: &BTreeMap<InputKind, Vec<String>>, as_of: NaiveDate) -> PolarsResult<BTreeMap<InputKind, SchemaRef>> {
    let frames = InputKind::ALL
        .iter()
        .map(|k| {
            Ok((
                *k,
                crate::input::read::empty_frame(*k, extras.get(k).map(Vec::as_slice).unwrap_or(&[]))?,
            ))
        })
        .collect::<PolarsResult<BTreeMap<_, _>>>()?;
    let refs = crate::input::reference::empty_references();
    let prepared: Prepared = super::prepare::prepare(frames, &refs, as_of, &None)?;
    Ok(prepared.into_frames()?.iter().map(|(k, df)| (*k, df.schema().clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::inline_fraction;

    #[test]
    fn a_fraction_is_found_outside_strings_and_names_only() {
        assert_eq!(inline_fraction("amount >= 0.95 * limit").as_deref(), Some("0.95"));
        assert_eq!(inline_fraction("x > ${near} * y AND z = 1.5").as_deref(), Some("1.5"));
        assert_eq!(inline_fraction("SUM(amount) > 10.25").as_deref(), Some("10.25"));
        assert_eq!(inline_fraction("amount > 500 AND mcc = '5.5'"), None);
        assert_eq!(inline_fraction("col_1.5 > 2 AND v1.2 = 3"), None);
        assert_eq!(inline_fraction("txn_time >= '2026-11-01 10:00:00.5'"), None);
        assert_eq!(inline_fraction("amount > CAST('0.5' AS DECIMAL(1, 1))"), None);
    }
}
