//! A rule becomes a polars lazy plan over its source frame. The plan's
//! output ("hits") has one row per finding candidate, in a fixed shape that
//! `engine::findings` turns into findings.

use chrono::NaiveDate;
use polars::prelude::*;
use polars::sql::sql_expr;

use crate::input::{InputKind, LINE_COL, SRC_COL};
use crate::rules::model::{parse_calendar, parse_rolling, Calendar, Rule};

/// Hidden output columns of a group plan.
pub const HIT: &str = "__hit";
pub const IDS: &str = "__ids";
pub const MERCHANTS: &str = "__merchants";
pub const WINDOW: &str = "__window";
pub const ROW_ID: &str = "__row_id";
/// Number of a hit window, to attach its members.
pub const HIT_ID: &str = "__hit_id";

/// Built-in measures every group finding carries.
pub const BUILTIN_MEASURES: &[&str] = &["count", "window_start", "window_end", "sum_amount"];

/// Where a compile error sits in the rule, for messages.
#[derive(Debug)]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

fn sql(rule: &Rule, field: &str, text: &str, as_of: NaiveDate) -> Result<Expr, PlanError> {
    let expanded = rule.expand(text, as_of).map_err(|m| PlanError {
        field: field.into(),
        message: m,
    })?;
    sql_expr(&expanded).map_err(|e| PlanError {
        field: field.into(),
        message: format!("SQL does not parse: {}", clean_polars_error(&e)),
    })
}

/// Polars errors carry a backtrace hint and a leading kind; keep the sentence.
pub fn clean_polars_error(e: &PolarsError) -> String {
    let s = e.to_string();
    let s = s.split("\n\nResolved plan").next().unwrap_or(&s);
    let s = s.split("\n\nThis error occurred").next().unwrap_or(s);
    s.lines().next().unwrap_or("").trim().to_string()
}

/// The id column and entity kind of one row of the source.
pub fn row_entity(kind: InputKind) -> (&'static str, Expr) {
    let (entity, id) = kind.entity();
    let expr = match id {
        Some(c) => col(c).cast(DataType::String),
        None => concat_str(
            [
                col("merchant_id"),
                col("item"),
                col("effective_at").dt().to_string("%Y-%m-%d %H:%M:%S"),
            ],
            "|",
            true,
        ),
    };
    (entity, expr)
}

/// What the plan needs to know besides the rule.
pub struct PlanContext<'a> {
    pub schema: &'a Schema,
    pub as_of: NaiveDate,
}

/// Columns a row rule carries into its hits: evidence, message placeholders
/// that name columns, and the merchant.
fn row_columns(rule: &Rule, schema: &Schema) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    let mut add = |c: &str| {
        if schema.contains(c) && !cols.iter().any(|x| x == c) {
            cols.push(c.to_string());
        }
    };
    add("merchant_id");
    for e in &rule.evidence {
        add(e);
    }
    for p in crate::findings::message::placeholders(&rule.message) {
        add(&p);
    }
    cols
}

pub fn build(rule: &Rule, base: LazyFrame, ctx: &PlanContext) -> Result<LazyFrame, PlanError> {
    let mut lf = base;
    if let Some(w) = &rule.where_ {
        lf = lf.filter(sql(rule, "where", w, ctx.as_of)?);
    }
    let (_, id_expr) = row_entity(rule.source);
    if !rule.is_grouped() {
        let mut sel = vec![id_expr.alias(ROW_ID), col(SRC_COL), col(LINE_COL)];
        sel.extend(row_columns(rule, ctx.schema).into_iter().map(col));
        return Ok(lf.select(sel));
    }

    let time = rule.time_column().to_string();
    if (rule.window.is_some() || rule.rolling.is_some()) && !ctx.schema.contains(&time) {
        return Err(PlanError {
            field: "time_column".into(),
            message: format!("column `{time}` does not exist"),
        });
    }
    let mut key_names: Vec<String> = rule.group_by.clone();
    // Phase 1, over every group or window: the cheap aggregates and the
    // condition. Member lists (ids, evidence values) wait for phase 2, which
    // builds them for the groups that hit only: a rolling window's members
    // overlap, and listing them for every window costs the window size
    // times the rows.
    let mut aggs: Vec<Expr> = vec![len().alias("count")];
    if ctx.schema.contains(&time) {
        aggs.push(col(time.as_str()).min().alias("window_start"));
        aggs.push(col(time.as_str()).max().alias("window_end"));
    }
    if ctx.schema.contains("amount") {
        aggs.push(col("amount").sum().alias("sum_amount"));
    }
    for (name, text) in &rule.measures {
        aggs.push(sql(rule, &format!("measures.{name}"), text, ctx.as_of)?.alias(name.as_str()));
    }
    let having = match &rule.having {
        Some(h) => sql(rule, "having", h, ctx.as_of)?,
        None => lit(true),
    };
    aggs.push(having.alias(HIT));

    let mut members: Vec<Expr> = vec![id_expr.clone().alias(IDS), col(SRC_COL).first(), col(LINE_COL).first()];
    if ctx.schema.contains("merchant_id") && !rule.group_by.iter().any(|k| k == "merchant_id") {
        members.push(col("merchant_id").alias(MERCHANTS));
    }
    for e in &rule.evidence {
        let taken = rule.group_by.contains(e) || rule.measures.contains_key(e) || BUILTIN_MEASURES.contains(&e.as_str());
        if !taken && ctx.schema.contains(e) {
            members.push(col(e.as_str()));
        }
    }

    let mut join_args = JoinArgs::new(JoinType::Inner);
    join_args.maintain_order = MaintainOrderJoin::Left;
    join_args.nulls_equal = true;
    let key_cols = |names: &[String]| names.iter().map(|k| col(k.as_str())).collect::<Vec<_>>();

    let grouped = if let Some(r) = &rule.rolling {
        let period = parse_rolling(r).map_err(|m| PlanError {
            field: "rolling".into(),
            message: m,
        })?;
        let options = RollingGroupOptions {
            index_column: time.as_str().into(),
            period: polars::time::Duration::parse(&period),
            offset: polars::time::Duration::parse(&format!("-{period}")),
            closed_window: ClosedWindow::Right,
        };
        let mut sort_by: Vec<Expr> = key_cols(&key_names);
        sort_by.push(col(time.as_str()));
        let rows = lf.sort_by_exprs(sort_by, SortMultipleOptions::default().with_maintain_order(true));
        let hits = rows
            .clone()
            .rolling(col(time.as_str()), key_cols(&key_names), options)
            .agg(aggs)
            .filter(col(HIT).eq(lit(true)))
            .with_row_index(HIT_ID, None);
        // A window's members: rows of its key between its first and last time.
        let mut on: Vec<Expr> = key_cols(&key_names);
        on.push(col(HIT_ID));
        let mut bounds: Vec<Expr> = key_cols(&key_names);
        bounds.extend([col(HIT_ID), col("window_start").alias("__from"), col("window_end").alias("__to")]);
        let listed = rows
            .join(hits.clone().select(bounds), key_cols(&key_names), key_cols(&key_names), join_args)
            .filter(col(time.as_str()).gt_eq(col("__from")).and(col(time.as_str()).lt_eq(col("__to"))))
            .group_by_stable([col(HIT_ID)])
            .agg(members);
        let mut left = JoinArgs::new(JoinType::Left);
        left.maintain_order = MaintainOrderJoin::Left;
        hits.join(listed, [col(HIT_ID)], [col(HIT_ID)], left)
    } else {
        let mut rows = lf;
        if let Some(w) = &rule.window {
            let fmt = match parse_calendar(w).map_err(|m| PlanError {
                field: "window".into(),
                message: m,
            })? {
                Calendar::Day => "%Y-%m-%d",
                Calendar::Month => "%Y-%m",
            };
            rows = rows.with_column(col(time.as_str()).dt().to_string(fmt).alias(WINDOW));
            key_names.push(WINDOW.to_string());
        }
        // Members of each group in time order, whatever the input order.
        if ctx.schema.contains(&time) {
            rows = rows.sort([time.as_str()], SortMultipleOptions::default().with_maintain_order(true));
        }
        let hits = rows
            .clone()
            .group_by_stable(key_cols(&key_names))
            .agg(aggs)
            .filter(col(HIT).eq(lit(true)));
        let listed = rows
            .join(
                hits.clone().select(key_cols(&key_names)),
                key_cols(&key_names),
                key_cols(&key_names),
                join_args,
            )
            .group_by_stable(key_cols(&key_names))
            .agg(members);
        let mut left = JoinArgs::new(JoinType::Left);
        left.maintain_order = MaintainOrderJoin::Left;
        left.nulls_equal = true;
        hits.join(listed, key_cols(&key_names), key_cols(&key_names), left)
    };
    Ok(grouped)
}
