//! A rule becomes a polars lazy plan over its source frame. The plan's
//! output ("hits") has one row per finding candidate, in a fixed shape that
//! `engine::findings` turns into findings.

use chrono::NaiveDate;
use polars::prelude::*;
use polars::sql::sql_expr;

use super::hoist::{distinct_over_codes, hoist, Hoisted};
use super::keys::code_column;
use super::units;
use crate::input::{InputKind, LINE_COL, SRC_COL};
use crate::rules::compiled::{CompiledRule, Sql, Window};
use crate::rules::model::Calendar;

/// Hidden output columns of a group plan.
pub(crate) const HIT: &str = "__hit";
pub(crate) const IDS: &str = "__ids";
pub(crate) const MERCHANTS: &str = "__merchants";
pub(crate) const WINDOW: &str = "__window";
pub(crate) const ROW_ID: &str = "__row_id";
/// A row's position in its input's prepared frame, where a rule's frame
/// names its rows by position (`engine::positions`).
pub(crate) const AT: &str = "__at";
/// The position of a group's first row, whose source and line name where
/// its finding came from (with `AT`).
pub(crate) const SRC_AT: &str = "__src_at";
/// Number of a hit window, to attach its members.
pub(crate) const HIT_ID: &str = "__hit_id";
/// The single sorted index of keyed rolling windows.
const ROLL_INDEX: &str = "__roll_index";
/// A group's key code and window day as one integer (`Groups::packed`).
const PACKED: &str = "__packed";

/// Built-in measures every group finding carries.
pub(crate) const BUILTIN_MEASURES: &[&str] = &["count", "window_start", "window_end", "sum_amount"];

/// Where a compile error sits in the rule, for messages.
#[derive(Debug)]
pub(crate) struct PlanError {
    pub field: String,
    pub message: String,
}

/// The columns a grouped rule's measures and condition count distinct
/// values of (`COUNT(DISTINCT c)`); none where the SQL does not parse (the
/// rule fails with the reason when it runs).
pub(crate) fn distinct_counted(rule: &CompiledRule) -> Vec<String> {
    let Some(g) = &rule.grouping else { return Vec::new() };
    // The date only fills `${as_of}`: it changes no column name.
    let any_day = NaiveDate::default();
    g.measures
        .values()
        .chain(g.having.iter())
        .filter_map(|text| sql(text, any_day).ok())
        .flat_map(|e| super::hoist::distinct_counted(&e))
        .collect()
}

fn sql(text: &Sql, as_of: NaiveDate) -> Result<Expr, PlanError> {
    sql_expr(text.bind(as_of)).map_err(|e| PlanError {
        field: text.field.clone(),
        message: format!("SQL does not parse: {}", clean_polars_error(&e)),
    })
}

/// A rule's condition in two parts (`split_condition`).
pub(crate) struct Split {
    /// The conjuncts over readable columns (at least one).
    pub pre: Vec<Expr>,
    /// The other conjuncts, ANDed; None if there are none.
    pub rest: Option<Expr>,
}

/// The conjuncts of a rule's condition (its top-level ANDs) that read only
/// columns `readable` says, and the others; None where no conjunct does.
/// A row passes the condition exactly when it passes both parts (every
/// conjunct is true), and the condition filters the rows before anything
/// else is done with them (`build`). So the rows can be cut by `pre`
/// before a rule's application columns are gathered onto them, and then
/// only `rest` applied (`Condition::Left`). Only a condition made of
/// element-wise parts qualifies: a window or an aggregate anywhere in it
/// would see fewer rows after the cut.
pub(crate) fn split_condition(rule: &CompiledRule, as_of: NaiveDate, readable: impl Fn(&str) -> bool) -> Option<Split> {
    let whole = sql(rule.filter.as_ref()?, as_of).ok()?;
    if !whole.into_iter().all(is_elementwise) {
        return None;
    }
    let mut parts = Vec::new();
    conjuncts(whole, &mut parts);
    let (pre, rest): (Vec<Expr>, Vec<Expr>) = parts
        .into_iter()
        .partition(|p| p.clone().meta().root_names().iter().all(|n| readable(n)));
    if pre.is_empty() {
        return None;
    }
    Some(Split {
        pre,
        rest: rest.into_iter().reduce(|a, b| a.and(b)),
    })
}

/// Whether one node of an expression works row by row: the few kinds SQL
/// conditions are made of (comparisons, arithmetic, `AND`/`OR`, `CASE`,
/// `IN`, `IS NULL`, `NOT`, `COALESCE`, casts). Anything else
/// (windows, aggregates, other functions) is not assumed to be.
pub(crate) fn is_elementwise(e: &Expr) -> bool {
    match e {
        Expr::Column(_) | Expr::Literal(_) | Expr::BinaryExpr { .. } | Expr::Cast { .. } | Expr::Ternary { .. } | Expr::Alias(..) => true,
        Expr::Function { function, .. } => matches!(
            function,
            FunctionExpr::Coalesce
                | FunctionExpr::Boolean(
                    BooleanFunction::IsNull | BooleanFunction::IsNotNull | BooleanFunction::Not | BooleanFunction::IsIn { .. }
                )
        ),
        _ => false,
    }
}

/// `e` split at its top-level ANDs.
fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryExpr {
            left,
            op: Operator::And | Operator::LogicalAnd,
            right,
        } => {
            conjuncts(std::sync::Arc::unwrap_or_clone(left), out);
            conjuncts(std::sync::Arc::unwrap_or_clone(right), out);
        }
        e => out.push(e),
    }
}

/// Polars errors carry a backtrace hint and a leading kind; keep the sentence.
pub(crate) fn clean_polars_error(e: &PolarsError) -> String {
    let s = e.to_string();
    let s = s.split("\n\nResolved plan").next().unwrap_or(&s);
    let s = s.split("\n\nThis error occurred").next().unwrap_or(s);
    s.lines().next().unwrap_or("").trim().to_string()
}

/// The id column and entity kind of one row of the source.
pub(crate) fn row_entity(kind: InputKind) -> (&'static str, Expr) {
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
pub(crate) struct PlanContext<'a> {
    pub schema: &'a Schema,
    pub as_of: NaiveDate,
    /// Rows of the source, and the first and last value (ms) of the rule's
    /// time column, when known (for rolling rules only): they size the
    /// rolling-window index.
    pub rows: usize,
    pub time_range: Option<(i64, i64)>,
    /// Peer statistics computed over all the data (a partitioned run
    /// gathers them from every partition first, see `peer_base`); None:
    /// computed from the frame the rule runs on.
    pub peer_stats: Option<&'a DataFrame>,
    /// What is left of the rule's condition to apply to the rows.
    pub condition: Condition,
}

/// The part of a rule's condition a plan applies.
#[derive(Clone, Default)]
pub(crate) enum Condition {
    /// All of it: the rows are the whole frame.
    #[default]
    Whole,
    /// This part (None: nothing): the rows were already cut by the rest
    /// (`split_condition`), once, while the rule's columns were made.
    Left(Option<Expr>),
}

/// Columns a row rule carries into its hits: evidence, message placeholders
/// that name columns, and the merchant.
fn row_columns(rule: &CompiledRule, schema: &Schema) -> Vec<String> {
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

/// The part of `rule`'s condition a plan with `condition` applies to its
/// rows; None if nothing is left to apply.
pub(crate) fn applied_condition(rule: &CompiledRule, condition: &Condition, as_of: NaiveDate) -> Result<Option<Expr>, PlanError> {
    match condition {
        Condition::Whole => rule.filter.as_ref().map(|w| sql(w, as_of)).transpose(),
        Condition::Left(rest) => Ok(rest.clone()),
    }
}

pub(crate) fn build(rule: &CompiledRule, base: LazyFrame, ctx: &PlanContext) -> Result<LazyFrame, PlanError> {
    let mut lf = base;
    if let Some(c) = applied_condition(rule, &ctx.condition, ctx.as_of)? {
        lf = lf.filter(c);
    }
    let (_, id_expr) = row_entity(rule.source);
    let Some(grouping) = &rule.grouping else {
        let mut sel = match ctx.schema.contains(AT) {
            // Named by position: the id and origin come with the hits.
            true => vec![col(AT).alias(ROW_ID)],
            false => vec![id_expr.alias(ROW_ID), col(SRC_COL), col(LINE_COL)],
        };
        sel.extend(row_columns(rule, ctx.schema).into_iter().map(col));
        return Ok(lf.select(sel));
    };

    let time = rule.time_column().to_string();
    if grouping.window.is_some() && !ctx.schema.contains(&time) {
        return Err(PlanError {
            field: "time_column".into(),
            message: format!("column `{time}` does not exist"),
        });
    }
    let key_names: &[String] = &grouping.keys;
    // Phase 1, over every group or window: the cheap aggregates and the
    // condition. Member lists (ids, evidence values) wait for phase 2, which
    // builds them for the groups that hit only: a rolling window's members
    // overlap, and listing them for every window costs the window size
    // times the rows.
    let Hoisted { aggs, columns } = hoist(group_aggs(rule, ctx)?);
    if !columns.is_empty() {
        lf = lf.with_columns(columns);
    }

    // `compile` refused peers with a rolling window.
    let grouped = if let Some(Window::Rolling { millis: period_ms }) = grouping.window {
        let mut rows = lf.filter(col(time.as_str()).is_not_null());
        // Keys with fewer rows in all than the condition's COUNT(*) floor
        // cannot hit: most cards pay once, so this leaves the windows few
        // rows to slide over. Grouped by the keys' integer code if made.
        // Likewise keys whose largest value of a column is below the
        // condition's `MAX(column) >= v` (a dormant merchant's gap).
        if !key_names.is_empty() {
            let by = key_by(key_names, ctx);
            let over = |e: Expr| {
                e.over(by.clone()).map_err(|e| PlanError {
                    field: "having".into(),
                    message: clean_polars_error(&e),
                })
            };
            if let Some(k) = grouping.min_count.filter(|k| *k > 1) {
                rows = at_least(rows, key_names, k, ctx)?;
            }
            for (column, v, strict) in grouping.max_floors.iter().filter(|(c, _, _)| ctx.schema.contains(c)) {
                let top = over(col(column.as_str()).cast(DataType::Float64).max())?;
                rows = rows.filter(if *strict { top.gt(lit(*v)) } else { top.gt_eq(lit(*v)) });
            }
            for (text, v, strict) in &grouping.sum_floors {
                let sum = sql(
                    &Sql {
                        field: "having".into(),
                        text: text.clone(),
                    },
                    ctx.as_of,
                )?;
                // A floor in yuan says nothing of a sum in units: only a
                // shortcut, left out (the condition still applies).
                if units::reads_held(&sum, &held_sums(rule, ctx.schema, ctx.as_of)) {
                    continue;
                }
                let total = over(sum)?.cast(DataType::Float64);
                rows = rows.filter(if *strict { total.gt(lit(*v)) } else { total.gt_eq(lit(*v)) });
            }
        }
        // Cached: the windows and the episodes both read these rows, and
        // the hits are read four times; a lazy frame read twice is computed
        // twice (SUS-TIME-02 at 1M rows: 390 ms uncached, 65 ms cached).
        // The rows are the pruned ones, the hits few.
        let rows = rows.with_row_index(POS, None).cache();
        let hits = rolling_windows(rows.clone().drop(cols([POS])), key_names, &time, period_ms, aggs, ctx)
            .filter(col(HIT).eq(lit(true)))
            .with_row_index(HIT_ID, None)
            .cache();
        episodes(rows, hits, key_names, &time, member_exprs(rule, ctx))?
    } else {
        let mut rows = lf;
        // As for rolling windows: keys with fewer rows in all than the
        // condition's COUNT(*) floor have no group that can hit (a group is
        // some of its key's rows). A repeated transaction id is rare: this
        // leaves a few rows to group instead of ten million one-row groups.
        // Not with peers: their statistics are over every group.
        if let (Some(k), false, false) = (
            grouping.min_count.filter(|k| *k > 1),
            key_names.is_empty(),
            grouping.peers.is_some(),
        ) {
            rows = at_least(rows, key_names, k, ctx)?;
        }
        let groups = Groups::of(rule, ctx);
        rows = groups.keyed(rows, ctx);
        let mut all = groups.key_firsts();
        all.extend(aggs);
        all.extend(peer_firsts(rule));
        // Aggregates that depend on row order see the rows in time order;
        // the others do not need the sort.
        if groups.timed && order_dependent(rule) {
            rows = rows.sort([time.as_str()], SortMultipleOptions::default().with_maintain_order(true));
        }
        let groups_lf = match groups.packed() {
            // Grouped on one integer per group, where the rows lie. Sessions
            // 12 to 17 sorted the rows by it first, so that each group was a
            // slice and every aggregate read memory in order (`SUS-UNDER-02`
            // at 10M rows: 3.4 s grouped in place against 2.4 s sorted, then).
            // With the keys and enumerations as 4-byte codes since, the sort
            // costs more than it saves: the rules phase at 10M rows took
            // 23.3-28.1 s without it against 28.2-30.8 s with it (three
            // pairs, session 18), and the sorted copy of every column the
            // rule reads is gone. Findings are sorted at the end; nothing
            // depends on the order of the groups.
            Some(packed) => {
                let mut firsts: Vec<Expr> = groups.names.iter().map(|n| col(n.as_str()).first()).collect();
                firsts.extend(all);
                rows.clone()
                    .with_column(packed.alias(PACKED))
                    .group_by_stable([col(PACKED)])
                    .agg(firsts)
                    .drop(cols([PACKED]))
            }
            None => rows.clone().group_by_stable(groups.by()).agg(all),
        };
        finish_groups(rule, &groups, groups_lf, rows, ctx)?
    };
    Ok(grouped)
}

/// The peer columns a rule with peers carries per group (those that are
/// not keys), as each group's first value.
fn peer_firsts(rule: &CompiledRule) -> Vec<Expr> {
    let Some(p) = rule.peers() else { return Vec::new() };
    p.by.iter()
        .filter(|b| !rule.keys().contains(b))
        .map(|b| col(b.as_str()).first().alias(b.as_str()))
        .collect()
}

/// The end of phase 1 and phase 2 of a rule without a rolling window,
/// from its groups (`groups_lf`: the group columns, the keys' values,
/// the aggregates of `group_aggs` and the peer columns, one row per
/// group): peer statistics, the groups that hit, and their members from
/// the rule's `rows`.
fn finish_groups(
    rule: &CompiledRule,
    groups: &Groups,
    groups_lf: LazyFrame,
    rows: LazyFrame,
    ctx: &PlanContext,
) -> Result<LazyFrame, PlanError> {
    let mut members = member_exprs(rule, ctx);
    if builtins_wait(rule) {
        members.extend(builtin_sums(rule, ctx));
    }
    let mut groups_lf = groups_lf;
    let mut hit = col(HIT).eq(lit(true));
    if let Some(p) = rule.peers() {
        groups_lf = match ctx.peer_stats {
            None => groups_lf.with_columns(peer_columns(rule, groups.coded.as_deref())?),
            Some(stats) => {
                let keys = peer_keys(rule);
                let mut left = JoinArgs::new(JoinType::Left);
                left.maintain_order = MaintainOrderJoin::Left;
                left.nulls_equal = true;
                // The statistics were gathered from every partition as
                // text; the keys here may be categoricals (`narrow`).
                let as_here: Vec<Expr> = keys
                    .iter()
                    .filter_map(|k| Some(col(k.as_str()).cast(ctx.schema.get(k.as_str())?.clone())))
                    .collect();
                groups_lf.join(stats.clone().lazy().with_columns(as_here), key_cols(&keys), key_cols(&keys), left)
            }
        };
        hit = hit.and(sql(&p.when, ctx.as_of)?);
    }
    let hits = groups_lf.filter(hit);
    // Phase 1 runs here: its hits are few, and knowing their keys lets
    // phase 2 take only those keys' rows, where joining every row of
    // the filter to the hits copied the member columns (ids, lines,
    // evidence) of all of them first, ten million at 10M rows. If it
    // fails, the plan is left whole, so that running it reports the
    // failure as any plan's (a missing column skips the rule).
    Ok(match hits.clone().collect() {
        Ok(found) => {
            let rows = groups.rows_of_hits(rows, &found);
            groups.members_of(found.lazy(), rows, members)
        }
        // Cached: the members and the result both read the hits.
        Err(_) => groups.members_of(hits.cache(), rows, members),
    })
}

fn key_cols(names: &[String]) -> Vec<Expr> {
    names.iter().map(|k| col(k.as_str())).collect()
}

/// What rows are grouped by for a key: the keys' integer code where
/// prepare made one (merchant ids), else the keys.
fn key_by(key_names: &[String], ctx: &PlanContext) -> Vec<Expr> {
    let code = code_column(key_names);
    if ctx.schema.contains(&code) {
        vec![col(code.as_str())]
    } else {
        key_cols(key_names)
    }
}

/// `rows` less the keys with fewer than `k` rows in all.
fn at_least(rows: LazyFrame, key_names: &[String], k: u64, ctx: &PlanContext) -> Result<LazyFrame, PlanError> {
    let code = code_column(key_names);
    if ctx.schema.get(&code) == Some(&DataType::UInt32) {
        return Ok(rows.filter(crate::engine::keys::code_on_at_least(col(code.as_str()), k)));
    }
    let total = len().over(key_by(key_names, ctx)).map_err(|e| PlanError {
        field: "having".into(),
        message: clean_polars_error(&e),
    })?;
    Ok(rows.filter(total.cast(DataType::Int64).gt_eq(lit(k as i64))))
}

/// A grouped rule's phase-1 aggregates, each named: the built-in measures,
/// the rule's measures and its condition (`HIT`), with distinct counts
/// over codes. Row-level inputs are not hoisted yet (`hoist`).
fn group_aggs(rule: &CompiledRule, ctx: &PlanContext) -> Result<Vec<Expr>, PlanError> {
    let Some(grouping) = &rule.grouping else {
        return Err(PlanError {
            field: "group_by".into(),
            message: "the rule is not grouped".into(),
        });
    };
    let mut aggs: Vec<Expr> = vec![len().alias("count")];
    if !builtins_wait(rule) {
        aggs.extend(builtin_sums(rule, ctx));
    }
    // Money left held for the rule (`held_for_sums`) is summed and
    // compared in its units.
    let held = held_sums(rule, ctx.schema, ctx.as_of);
    for (name, text) in &grouping.measures {
        let e = sql(text, ctx.as_of)?;
        let e = match units::reads_held(&e, &held) {
            false => e,
            true => units::sum_in_units(&e, &held).ok_or_else(|| not_in_units(&text.field))?.0,
        };
        aggs.push(e.alias(name.as_str()));
    }
    let having = match &grouping.having {
        Some(h) => {
            let e = sql(h, ctx.as_of)?;
            units::having_in_units(&e, &held).ok_or_else(|| not_in_units(&h.field))?
        }
        None => lit(true),
    };
    aggs.push(having.alias(HIT));
    Ok(distinct_over_codes(aggs, |c| {
        let code = code_column(&[c.to_string()]);
        ctx.schema.contains(&code).then_some(code)
    }))
}

/// The error of a measure or condition over money held as units that
/// `units` cannot compute in them: `held_for_sums` leaves money held only
/// for rules whose every such part it can, so this is a bug.
fn not_in_units(field: &str) -> PlanError {
    PlanError {
        field: field.to_string(),
        message: "reads money held as integer units in a way that is not summed exactly (please report this)".into(),
    }
}

/// The money columns (`checks::held`) that `rule` reads only through its
/// measures and `having`, all of them sums and comparisons of sums that
/// `units` computes exactly in integer units: held as Int32 in `schema`
/// (the rule's frame before money is widened), they can stay held for it.
/// Summing 16-byte decimals, in rolling windows as well, was half of
/// `SUS-REF-01`'s time at 10M rows. Not for rules with peers (a median of
/// sums), nor where the rule reads the column elsewhere (its condition,
/// evidence, message).
pub(crate) fn held_for_sums(rule: &CompiledRule, schema: &Schema, as_of: NaiveDate) -> std::collections::BTreeSet<String> {
    let none = std::collections::BTreeSet::new();
    let Some(g) = rule.grouping.as_ref().filter(|g| g.peers.is_none()) else {
        return none;
    };
    let elsewhere = rule.names_outside_aggregates();
    let summed: std::collections::BTreeSet<String> = rule
        .names
        .iter()
        .filter(|n| schema.get(n) == Some(&DataType::Int32) && units::reads_held(&col(n.as_str()), schema) && !elsewhere.contains(*n))
        .cloned()
        .collect();
    if summed.is_empty() {
        return none;
    }
    // The schema the rule's frame would have: these held, the other held
    // columns widened as it reads them.
    let held = units::widened_but(schema, &summed);
    let all_in_units = g
        .measures
        .values()
        .all(|m| sql(m, as_of).is_ok_and(|e| !units::reads_held(&e, &held) || units::sum_in_units(&e, &held).is_some()))
        && g.having
            .as_ref()
            .is_none_or(|h| sql(h, as_of).is_ok_and(|e| units::having_in_units(&e, &held).is_some()));
    match all_in_units {
        true => summed,
        false => none,
    }
}

/// The columns of `schema` (a rule's frame's) left held for `rule`'s sums
/// (`held_for_sums`): what its plan computes in units (the same columns
/// `run_one` left held, as the frame's other money was widened), and the
/// decimal columns a condition inside a sum may compare them with. Empty
/// where none is held.
fn held_sums(rule: &CompiledRule, schema: &Schema, as_of: NaiveDate) -> Schema {
    let summed = held_for_sums(rule, schema, as_of);
    if summed.is_empty() {
        return Schema::default();
    }
    schema
        .iter()
        .filter(|(name, dtype)| summed.contains(name.as_str()) || matches!(dtype, DataType::Decimal(..)))
        .map(|(n, d)| Field::new(n.clone(), d.clone()))
        .collect()
}

/// The measures of `rule` that its plan sums in units over `schema` (its
/// frame's), and their scale: read as decimals once the plan has run
/// (`checks::held::measures_as_read`), for the groups that hit.
pub(crate) fn measures_in_units(rule: &CompiledRule, schema: &Schema, as_of: NaiveDate) -> Vec<(String, usize)> {
    let Some(g) = &rule.grouping else { return Vec::new() };
    let held = held_sums(rule, schema, as_of);
    g.measures
        .iter()
        .filter_map(|(name, text)| {
            let e = sql(text, as_of).ok()?;
            units::reads_held(&e, &held).then_some(())?;
            Some((name.clone(), units::sum_in_units(&e, &held)?.1?))
        })
        .collect()
}

/// The built-in measures other than the count: the first and last time
/// and the sum of the amounts.
fn builtin_sums(rule: &CompiledRule, ctx: &PlanContext) -> Vec<Expr> {
    let time = rule.time_column();
    let mut aggs = Vec::new();
    if ctx.schema.contains(time) {
        aggs.push(col(time).min().alias("window_start"));
        aggs.push(col(time).max().alias("window_end"));
    }
    match ctx.schema.get("amount") {
        // Held as integer fen (`checks::held`) where the rule names neither
        // `amount` nor `sum_amount`: summed as fen, and read in yuan once
        // the plan has run (`checks::held::hits_as_read`), for the few
        // groups that hit.
        Some(DataType::Int32 | DataType::Int64) => aggs.push(col("amount").cast(DataType::Int64).sum().alias("sum_amount")),
        Some(_) => aggs.push(col("amount").sum().alias("sum_amount")),
        None => {}
    }
    aggs
}

/// Whether `builtin_sums` wait for phase 2, which computes them for the
/// groups that hit only: the condition cannot read them (a measure is
/// named only in the findings), so phase 1 need not compute them for
/// every group. A sum of 16-byte decimals and a minimum and maximum of
/// the times, gathered group by group, were about a tenth of the rules'
/// CPU time at 10M rows. Not for rolling windows (their members are
/// listed per episode, not per window) nor with peers, whose condition
/// and measure may name a built-in.
fn builtins_wait(rule: &CompiledRule) -> bool {
    !matches!(rule.window(), Some(Window::Rolling { .. })) && rule.peers().is_none()
}

/// What phase 2 lists for each group that hits: ids, the first source and
/// line, the merchants (where not a key) and evidence columns that are
/// neither keys nor measures.
fn member_exprs(rule: &CompiledRule, ctx: &PlanContext) -> Vec<Expr> {
    let (_, id_expr) = row_entity(rule.source);
    let key_names = rule.keys();
    let mut members: Vec<Expr> = match ctx.schema.contains(AT) {
        // Named by position (`positions::resolve` names them).
        true => vec![col(AT).alias(IDS), col(AT).first().alias(SRC_AT)],
        false => vec![id_expr.alias(IDS), col(SRC_COL).first(), col(LINE_COL).first()],
    };
    if ctx.schema.contains("merchant_id") && !key_names.iter().any(|k| k == "merchant_id") {
        members.push(col("merchant_id").alias(MERCHANTS));
    }
    let measures = rule.grouping.as_ref().map(|g| &g.measures);
    for e in &rule.evidence {
        let taken = key_names.contains(e) || measures.is_some_and(|m| m.contains_key(e)) || BUILTIN_MEASURES.contains(&e.as_str());
        if !taken && ctx.schema.contains(e) {
            members.push(col(e.as_str()));
        }
    }
    members
}

/// Whether any of a rule's aggregates depends on the order of the rows.
fn order_dependent(rule: &CompiledRule) -> bool {
    rule.grouping
        .as_ref()
        .is_some_and(|g| g.measures.values().chain(g.having.iter()).any(|t| order_dependent_text(&t.text)))
}

/// How a rule without a rolling window groups its rows: by the keys'
/// integer code where prepare made one (grouping integers is cheaper than
/// grouping text; the keys come back as each group's first value), and by
/// its calendar window.
struct Groups {
    /// The group columns: the keys (or their code), and the window.
    names: Vec<String>,
    keys: Vec<String>,
    coded: Option<String>,
    window: Option<Calendar>,
    /// The format that names a window in the hits.
    label: Option<&'static str>,
    time: String,
    /// Whether the rows have the time column.
    timed: bool,
}

impl Groups {
    fn of(rule: &CompiledRule, ctx: &PlanContext) -> Groups {
        let keys = rule.keys().to_vec();
        let code = code_column(&keys);
        let coded = (!keys.is_empty() && ctx.schema.contains(&code)).then_some(code);
        let mut names: Vec<String> = match &coded {
            Some(code) => vec![code.clone()],
            None => keys.clone(),
        };
        let window = match rule.window() {
            Some(Window::Calendar(w)) => Some(w),
            _ => None,
        };
        if window.is_some() {
            names.push(WINDOW.to_string());
        }
        let time = rule.time_column().to_string();
        Groups {
            names,
            keys,
            coded,
            window,
            label: window.map(|w| window_key(w, &time, ctx.schema).1),
            timed: ctx.schema.contains(&time),
            time,
        }
    }

    fn by(&self) -> Vec<Expr> {
        key_cols(&self.names)
    }

    /// One integer per group where the rows are grouped by a key's code:
    /// the code in the high 32 bits, the window's day (if any) in the low
    /// ones, a missing day as the smallest. Equal groups, equal integers,
    /// and the other way round.
    fn packed(&self) -> Option<Expr> {
        let code = col(self.coded.as_ref()?.as_str()).cast(DataType::UInt64);
        // Marked sorted where it ascends (rows in merchant and time order,
        // `row_order`): then grouped as slices of the rows.
        Some(super::keys::sorted_if_ascending(match self.window {
            None => code,
            Some(_) => {
                let day = col(WINDOW).cast(DataType::Int32).fill_null(lit(i32::MIN)).cast(DataType::Int64) - lit(i64::from(i32::MIN));
                code * lit(1u64 << 32) + day.cast(DataType::UInt64)
            }
        }))
    }

    /// `rows` with the window's key: a date (the day, or the first of the
    /// month), named as text only for the hits: formatting every row's
    /// time as text costs seconds at millions of rows.
    fn keyed(&self, rows: LazyFrame, ctx: &PlanContext) -> LazyFrame {
        match self.window {
            Some(w) => rows.with_column(window_key(w, &self.time, ctx.schema).0.alias(WINDOW)),
            None => rows,
        }
    }

    /// The keys' values of each group, where grouped by their code.
    fn key_firsts(&self) -> Vec<Expr> {
        match self.coded {
            Some(_) => key_cols(&self.keys).into_iter().map(|k| k.first()).collect(),
            None => vec![],
        }
    }

    /// The rows of the keys that hit (`found`): phase 2 reads only those.
    fn rows_of_hits(&self, rows: LazyFrame, found: &DataFrame) -> LazyFrame {
        let first = self
            .names
            .first()
            .map(|k| found.column(k).map(|c| c.as_materialized_series().unique()));
        match first {
            Some(Ok(Ok(values))) => rows.filter(col(self.names[0].as_str()).is_in(lit(values).implode(false), true)),
            _ => rows,
        }
    }

    /// Phase 2: the members of the groups that hit, in time order whatever
    /// the input order, joined onto the hits.
    fn members_of(&self, hits: LazyFrame, rows: LazyFrame, members: Vec<Expr>) -> LazyFrame {
        let by = self.by();
        let mut join_args = JoinArgs::new(JoinType::Inner);
        join_args.maintain_order = MaintainOrderJoin::Left;
        join_args.nulls_equal = true;
        let mut members_of = rows.join(hits.clone().select(by.clone()), by.clone(), by.clone(), join_args);
        if self.timed {
            members_of = members_of.sort([self.time.as_str()], SortMultipleOptions::default().with_maintain_order(true));
        }
        let listed = members_of.group_by_stable(by.clone()).agg(members);
        let mut left = JoinArgs::new(JoinType::Left);
        left.maintain_order = MaintainOrderJoin::Left;
        left.nulls_equal = true;
        let mut joined = hits.join(listed, by.clone(), by, left);
        if let Some(code) = &self.coded {
            joined = joined.drop(cols([code.as_str()]));
        }
        match self.label {
            Some(fmt) => joined.with_column(col(WINDOW).dt().to_string(fmt)),
            None => joined,
        }
    }
}

/// The derived column that holds a calendar window's key for `time`, made
/// once in prepare: the day and the month of a transaction. Truncating
/// 10M times to their month took about 0.3 s per monthly rule.
pub(crate) fn window_column(w: Calendar, time: &str) -> Option<&'static str> {
    match (w, time) {
        (Calendar::Day, "txn_time") => Some("txn_date"),
        (Calendar::Month, "txn_time") => Some("txn_month"),
        _ => None,
    }
}

/// A calendar window's key (a date: the day, or the first of the month)
/// and the format that names it.
fn window_key(w: Calendar, time: &str, schema: &Schema) -> (Expr, &'static str) {
    let format = match w {
        Calendar::Day => "%Y-%m-%d",
        Calendar::Month => "%Y-%m",
    };
    if let Some(made) = window_column(w, time).filter(|c| schema.contains(c)) {
        return (col(made), format);
    }
    let day = col(time).dt().date();
    match w {
        Calendar::Day => (day, format),
        Calendar::Month => (day.dt().truncate(lit("1mo")), format),
    }
}

/// The columns that name a group of a rule with peers: its keys and its window.
fn peer_keys(rule: &CompiledRule) -> Vec<String> {
    let mut keys = rule.keys().to_vec();
    if rule.window().is_some() {
        keys.push(WINDOW.to_string());
    }
    keys
}

/// Every group of a rule with peers, before any condition: its keys, its
/// window, its peer columns and the measure compared. A partitioned run
/// gathers these from every partition and computes the peer statistics
/// once over all of them (`peer_stats`), so a merchant is compared with
/// peers in other partitions too.
pub(crate) fn peer_base(rule: &CompiledRule, base: LazyFrame, ctx: &PlanContext) -> Result<LazyFrame, PlanError> {
    let (Some(grouping), Some(p)) = (&rule.grouping, rule.peers()) else {
        return Err(PlanError {
            field: "peers".into(),
            message: "the rule has no peers".into(),
        });
    };
    let mut lf = base;
    if let Some(w) = &rule.filter {
        lf = lf.filter(sql(w, ctx.as_of)?);
    }
    if let Some(Window::Calendar(w)) = grouping.window {
        let (key, _) = window_key(w, rule.time_column(), ctx.schema);
        lf = lf.with_column(key.alias(WINDOW));
    }
    let of = match p.of.as_str() {
        "count" => len(),
        "sum_amount" => col("amount").sum(),
        m => {
            let text = grouping.measures.get(m).ok_or_else(|| PlanError {
                field: "peers.of".into(),
                message: format!("`{m}` is not a measure of the rule"),
            })?;
            sql(text, ctx.as_of)?
        }
    };
    let mut aggs = vec![of.alias(p.of.as_str())];
    for b in p.by.iter().filter(|b| !grouping.keys.contains(b)) {
        aggs.push(col(b.as_str()).first().alias(b.as_str()));
    }
    let keys: Vec<Expr> = peer_keys(rule).iter().map(|k| col(k.as_str())).collect();
    Ok(lf.group_by(keys).agg(aggs))
}

/// The peer statistics of every group, from all groups (`peer_base` over
/// all the data): the group's keys and window, and the peer columns.
pub(crate) fn peer_stats(rule: &CompiledRule, groups: LazyFrame) -> Result<LazyFrame, PlanError> {
    let mut keep: Vec<Expr> = peer_keys(rule).iter().map(|k| col(k.as_str())).collect();
    keep.extend(crate::rules::model::PEER_COLUMNS.iter().map(|c| col(*c)));
    Ok(groups.with_columns(peer_columns(rule, None)?).select(keep))
}

/// Each group's peer statistics: the distribution of the measure over the
/// groups that share the peer columns (and the calendar window); and its
/// own history: the distribution over the same keys' windows, so that a
/// day can be compared with the merchant's usual day (a big merchant is
/// big every day; a burst is not). `coded` names the keys' integer code
/// where the groups carry one: a group's history is then found by the
/// code (one per key, null included) instead of by hashing the keys' text.
fn peer_columns(rule: &CompiledRule, coded: Option<&str>) -> Result<Vec<Expr>, PlanError> {
    let p = rule.peers().ok_or_else(|| PlanError {
        field: "peers".into(),
        message: "the rule has no peers".into(),
    })?;
    let mut part: Vec<Expr> = p.by.iter().map(|b| col(b.as_str())).collect();
    if rule.window().is_some() {
        part.push(col(WINDOW));
    }
    let of = || col(p.of.as_str()).cast(DataType::Float64);
    // Two decimals: the statistics are shown in findings beside money.
    let round = |e: Expr| e.round(2, RoundMode::HalfToEven);
    let q = |x: f64| of().quantile(lit(x), QuantileMethod::Linear);
    let err = |e: PolarsError| PlanError {
        field: "peers".into(),
        message: clean_polars_error(&e),
    };
    // Without keys or a window, a group's history is the group itself.
    let (own_median, own_windows) = if rule.keys().is_empty() || rule.window().is_none() {
        (round(of()), lit(1u32).cast(DataType::UInt32))
    } else {
        let own: Vec<Expr> = match coded {
            Some(code) => vec![col(code)],
            None => rule.keys().iter().map(|k| col(k.as_str())).collect(),
        };
        (round(of().median().over(own.clone()).map_err(err)?), len().over(own).map_err(err)?)
    };
    Ok(vec![
        round(of().median().over(part.clone()).map_err(err)?).alias("peer_median"),
        round(q(0.95).over(part.clone()).map_err(err)?).alias("peer_p95"),
        round(q(0.99).over(part.clone()).map_err(err)?).alias("peer_p99"),
        len().over(part).map_err(err)?.alias("peer_count"),
        own_median.alias("own_median"),
        own_windows.alias("own_windows"),
    ])
}

/// Aggregates whose result depends on the order of the rows.
fn order_dependent_text(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    ["FIRST", "LAST", "ARRAY_AGG", "STRING_AGG"].iter().any(|f| {
        upper
            .match_indices(f)
            .any(|(i, _)| upper[i + f.len()..].trim_start().starts_with('('))
    })
}

/// One row per window ending at each row: the keys, and `aggs` over the
/// rows of the same key within `period_ms` before it, closed on the right.
///
/// Where prepare coded the keys as one integer (`keys::code_column`), the
/// windows of all keys come from one pass over a single sorted index,
/// code x stride + time, where the stride exceeds the data's time span
/// plus the period, so no window reaches into another key. polars then
/// sorts one integer column and evaluates plain-column aggregates with its
/// sliding-window kernels. Otherwise, or if the index could overflow (more
/// rows than it has room for), polars' own per-key rolling runs, which
/// sorts by the key values.
fn rolling_windows(rows: LazyFrame, keys: &[String], time: &str, period_ms: i64, aggs: Vec<Expr>, ctx: &PlanContext) -> LazyFrame {
    let key_cols: Vec<Expr> = keys.iter().map(|k| col(k.as_str())).collect();
    let (t_min, span) = ctx.time_range.map(|(lo, hi)| (lo, hi - lo)).unwrap_or((0, 0));
    let stride = span as i128 + period_ms as i128 + 1;
    let fits = (ctx.rows as i128 + 2) * stride < i64::MAX as i128;
    let code = code_column(keys);
    let stable = SortMultipleOptions::default().with_maintain_order(true);
    if !keys.is_empty() && fits && ctx.schema.contains(&code) {
        let millis = col(time)
            .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
            .cast(DataType::Int64);
        let index = col(code.as_str()).cast(DataType::Int64) * lit(stride as i64) + (millis - lit(t_min));
        // Rows of a merchant key are in index order already (`row_order`):
        // marked so, they are not sorted again.
        let rows = rows
            .with_column(super::keys::sorted_if_ascending(index).alias(ROLL_INDEX))
            .sort([ROLL_INDEX], stable);
        let options = RollingGroupOptions {
            index_column: ROLL_INDEX.into(),
            period: polars::time::Duration::parse(&format!("{period_ms}i")),
            offset: polars::time::Duration::parse(&format!("-{period_ms}i")),
            closed_window: ClosedWindow::Right,
        };
        let mut all: Vec<Expr> = key_cols.iter().map(|k| k.clone().first()).collect();
        all.extend(aggs);
        rows.rolling(col(ROLL_INDEX), [], options).agg(all).drop(cols([ROLL_INDEX]))
    } else {
        let mut sort_by = key_cols.clone();
        sort_by.push(col(time));
        let rows = rows.sort_by_exprs(sort_by, stable);
        let options = RollingGroupOptions {
            index_column: time.into(),
            period: polars::time::Duration::parse(&format!("{period_ms}ms")),
            offset: polars::time::Duration::parse(&format!("-{period_ms}ms")),
            closed_window: ClosedWindow::Right,
        };
        rows.rolling(col(time), key_cols, options).agg(aggs)
    }
}

/// A row's position in the rule's rows, to join members back by.
const POS: &str = "__pos";
/// Episode of hit windows, and the range a row falls in.
const EP: &str = "__episode";
const RANGE_ID: &str = "__range";
const RANGE_TO: &str = "__range_to";
const MARK: &str = "__mark";

/// Hit windows of a rolling rule, merged into episodes: a key's windows
/// that share rows (each starts before the previous one ends) are one
/// finding, spanning from the first window's start to the last one's end,
/// with the measures of its densest window (the most rows; the earliest of
/// equals). Its transactions are the rows of the whole episode; the other
/// member columns (evidence lists, merchants, source line) those of the
/// densest window.
///
/// Linear in the rows: windows of a busy merchant overlap almost entirely,
/// and listing each window's members (as a join of rows to windows would)
/// costs the square of the merchant's transactions. Here each row falls in
/// at most one episode and at most one densest window (both disjoint per
/// key), found by one sorted sweep.
fn episodes(rows: LazyFrame, hits: LazyFrame, keys: &[String], time: &str, members: Vec<Expr>) -> Result<LazyFrame, PlanError> {
    let over = |e: Expr| {
        e.over([col(EP)]).map_err(|e| PlanError {
            field: "rolling".into(),
            message: clean_polars_error(&e),
        })
    };
    let key_cols = || keys.iter().map(|k| col(k.as_str())).collect::<Vec<_>>();
    // Only the rows of keys that hit can be members: the others would be
    // sorted with the ranges (by text keys, 10M rows) for nothing. An
    // inner join with the hit keys, once each, keeps them in their order.
    let rows = if keys.is_empty() {
        rows
    } else {
        let hit_keys = hits.clone().select(key_cols()).unique_stable(None, UniqueKeepStrategy::First);
        let mut only = JoinArgs::new(JoinType::Inner);
        only.nulls_equal = true;
        only.maintain_order = MaintainOrderJoin::Left;
        rows.join(hit_keys, key_cols(), key_cols(), only).cache()
    };
    // A new episode where the key changes or the window starts after the
    // previous one ended (hits come sorted by key, then time).
    let same_key = keys
        .iter()
        .map(|k| col(k.as_str()).eq_missing(col(k.as_str()).shift(lit(1))))
        .fold(lit(true), |a, b| a.and(b));
    let joined = same_key.and(col("window_start").lt_eq(col("window_end").shift(lit(1))));
    let hits = hits.with_column(joined.fill_null(lit(false)).not().cast(DataType::Int64).cum_sum(false).alias(EP));
    let densest = hits
        .with_columns([
            over(col("window_start").min())?.alias("__ep_from"),
            over(col("window_end").max())?.alias("__ep_to"),
        ])
        .filter(col("count").eq(over(col("count").max())?))
        .filter(col(HIT_ID).eq(over(col(HIT_ID).min())?))
        .cache();
    let stable = || SortMultipleOptions::default().with_maintain_order(true);
    // Members of ranges: rows in time order, gathered by range.
    let gather = |from: &str, to: &str, aggs: Vec<Expr>| -> Result<LazyFrame, PlanError> {
        let mut bounds = key_cols();
        bounds.extend([col(from), col(to), col(EP)]);
        let ranges = densest.clone().select(bounds);
        let located = in_ranges(rows.clone(), ranges, keys, time, from, to)?;
        let mut inner = JoinArgs::new(JoinType::Inner);
        inner.maintain_order = MaintainOrderJoin::Left;
        Ok(rows
            .clone()
            .join(located, [col(POS)], [col(POS)], inner)
            .sort([time], stable())
            .group_by_stable([col(RANGE_ID)])
            .agg(aggs))
    };
    // `build` lists the ids first: they span the episode; the rest (source,
    // merchants, evidence) the densest window.
    let mut members = members.into_iter();
    let ids: Vec<Expr> = members.next().into_iter().collect();
    let rest: Vec<Expr> = members.collect();
    let episode_ids = gather("__ep_from", "__ep_to", ids)?;
    let window_members = gather("window_start", "window_end", rest)?;
    let mut left = JoinArgs::new(JoinType::Left);
    left.maintain_order = MaintainOrderJoin::Left;
    Ok(densest
        .join(window_members, [col(EP)], [col(RANGE_ID)], left.clone())
        .join(episode_ids, [col(EP)], [col(RANGE_ID)], left)
        .with_columns([col("__ep_from").alias("window_start"), col("__ep_to").alias("window_end")])
        .drop(cols([EP, "__ep_from", "__ep_to"])))
}

/// Which range of its key each row falls in, for ranges that do not
/// overlap within a key: (row position, range id). One sort of the rows
/// and the range starts together; each row takes the last range that
/// started at or before it, if that range has not ended.
fn in_ranges(rows: LazyFrame, ranges: LazyFrame, keys: &[String], time: &str, from: &str, to: &str) -> Result<LazyFrame, PlanError> {
    let err = |e: PolarsError| PlanError {
        field: "rolling".into(),
        message: clean_polars_error(&e),
    };
    let key_cols = || keys.iter().map(|k| col(k.as_str())).collect::<Vec<_>>();
    // Both sides in one shape: range starts (mark 0) carry their id and
    // end; rows (mark 1) carry their position. The placeholders keep each
    // column's type; they are blanked after the sort.
    let mut starts = key_cols();
    starts.extend([
        col(from).alias(time),
        col(EP).cast(DataType::Int64).alias(RANGE_ID),
        col(to).alias(RANGE_TO),
        lit(0).cast(DataType::Int32).alias(MARK),
        lit(-1).cast(DataType::Int64).alias(POS),
    ]);
    let mut points = key_cols();
    points.extend([
        col(time),
        lit(-1).cast(DataType::Int64).alias(RANGE_ID),
        col(time).alias(RANGE_TO),
        lit(1).cast(DataType::Int32).alias(MARK),
        col(POS).cast(DataType::Int64),
    ]);
    let mut by: Vec<&str> = keys.iter().map(String::as_str).collect();
    by.extend([time, MARK]);
    let only_starts = |c: &str| {
        when(col(MARK).eq(lit(0).cast(DataType::Int32)))
            .then(col(c))
            .otherwise(lit(Null {}))
            .alias(c)
    };
    let fill = |c: &str| -> Result<Expr, PlanError> {
        let e = col(c).fill_null_with_strategy(FillNullStrategy::Forward(None));
        if keys.is_empty() {
            Ok(e)
        } else {
            e.over(key_cols()).map_err(err)
        }
    };
    Ok(concat([ranges.select(starts), rows.select(points)], UnionArgs::default())
        .map_err(err)?
        .sort(by, SortMultipleOptions::default().with_maintain_order(true))
        .with_columns([only_starts(RANGE_ID), only_starts(RANGE_TO)])
        .with_columns([fill(RANGE_ID)?, fill(RANGE_TO)?])
        .filter(
            col(MARK)
                .eq(lit(1).cast(DataType::Int32))
                .and(col(RANGE_ID).is_not_null())
                .and(col(time).lt_eq(col(RANGE_TO))),
        )
        .select([col(POS).cast(IDX_DTYPE), col(RANGE_ID)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keys;

    #[test]
    fn money_stays_held_for_the_rules_that_read_it_only_through_exact_sums() {
        let pack = crate::rules::load::load_builtin().into_result().expect("the bundled pack loads");
        let rule = |id: &str| &pack.rules.iter().find(|lr| lr.compiled.id == id).expect("a bundled rule").compiled;
        // The transaction frame's columns, money held as fen.
        let mut schema: Schema = [
            "merchant_id",
            "txn_type",
            "status",
            "card_type",
            "payment_method",
            "entry_mode",
            "app_mcc",
            "card_hash",
            "txn_id",
        ]
        .into_iter()
        .map(|n| Field::new(n.into(), DataType::String))
        .collect();
        for (name, dtype) in [
            ("amount", DataType::Int32),
            ("fee", DataType::Int32),
            ("txn_time", DataType::Datetime(TimeUnit::Milliseconds, None)),
            ("txn_date", DataType::Date),
            ("txn_month", DataType::Date),
            ("days_since_prev_txn", DataType::Int64),
            ("declared_monthly_volume", DataType::Decimal(18, 2)),
            ("model_max_single_txn_amount", DataType::Decimal(18, 2)),
            ("type_max_single_txn_amount", DataType::Decimal(18, 2)),
            ("settlement_account_number", DataType::String),
            ("settlement_account_type", DataType::String),
        ] {
            schema.with_column(name.into(), dtype);
        }
        let day = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
        let held = |id: &str| held_for_sums(rule(id), &schema, day).into_iter().collect::<Vec<_>>();
        // Sums of refunds and sales, rolling; the month's sums; a day's.
        assert_eq!(held("SUS-REF-01"), ["amount"]);
        assert_eq!(held("SUS-CASH-03"), ["amount"]);
        assert_eq!(held("LIM-AML-02"), ["amount"]);
        assert_eq!(held("SUS-DORM-01"), ["amount"]);
        // Counts of amounts just under a limit (a decimal of the
        // applications), their condition compared in units.
        assert_eq!(held("SUS-UNDER-02"), ["amount"]);
        // Peers (a median of sums); the amount in the condition and the
        // evidence; a sum against a decimal the applications hold.
        assert!(held("SUS-NEW-02").is_empty());
        assert!(held("SUS-UNDER-01").is_empty());
        assert!(held("LIM-VOL-01").is_empty());
        // The measures the plan sums in units, and the decimals' scale.
        let mut frame = schema.clone();
        assert_eq!(
            measures_in_units(rule("SUS-REF-01"), &frame, day),
            [("refunds".to_string(), 2), ("sales".to_string(), 2)]
        );
        frame.with_column("amount".into(), DataType::Decimal(18, 2));
        assert!(measures_in_units(rule("SUS-REF-01"), &frame, day).is_empty());
    }

    /// Two merchants, two cards, purchases minutes to days apart, in an
    /// order that is not sorted by key or time.
    fn rows() -> DataFrame {
        let minute = 60_000i64;
        let day = 1_440 * minute;
        let t0 = 1_790_000_000_000i64;
        let data: Vec<(&str, &str, i64, i64)> = vec![
            ("m1", "c1", 0, 100),
            ("m2", "c1", 2 * minute, 50),
            ("m1", "c2", 3 * minute, 70),
            ("m1", "c1", 5 * minute, 30),
            ("m2", "c2", 9 * minute, 10),
            ("m1", "c1", 9 * minute, 20),
            ("m1", "c1", 20 * minute, 40),
            ("m2", "c1", 3 * day, 90),
            ("m1", "c1", 3 * day + minute, 60),
            ("m2", "c1", 3 * day + 4 * minute, 5),
            ("m1", "c2", 10 * day, 80),
            ("m2", "c1", 3 * day + 4 * minute, 7),
        ];
        let n = data.len();
        let mut df = df!(
            "merchant_id" => data.iter().map(|r| r.0).collect::<Vec<_>>(),
            "card_hash" => data.iter().map(|r| r.1).collect::<Vec<_>>(),
            "txn_id" => (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>(),
            "amount" => data.iter().map(|r| r.3).collect::<Vec<_>>(),
            SRC_COL => vec![0u32; n],
            LINE_COL => (0..n as u64).collect::<Vec<_>>(),
        )
        .unwrap();
        let times =
            Int64Chunked::from_vec("txn_time".into(), data.iter().map(|r| t0 + r.2).collect()).into_datetime(TimeUnit::Milliseconds, None);
        df.with_column(times.into_series().into_column()).unwrap();
        df
    }

    fn rule(keys: &str, rolling: &str) -> CompiledRule {
        let r: crate::rules::model::Rule = serde_yaml::from_str(&format!(
            "id: T-1\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n\
             group_by: [{keys}]\nrolling: {rolling}\n\
             measures:\n  big: \"SUM(CASE WHEN amount >= 50 THEN amount ELSE 0 END)\"\n\
             having: \"COUNT(*) >= 2\"\nmessage: m\n"
        ))
        .unwrap();
        crate::rules::compiled::compile(&r).unwrap()
    }

    fn row_rule(condition: &str) -> CompiledRule {
        let r: crate::rules::model::Rule = serde_yaml::from_str(&format!(
            "id: T-1\ntitle: t\nfamily: fee_transparency\nseverity: low\nsource: transactions\n\
             where: \"{condition}\"\nmessage: m\n"
        ))
        .unwrap();
        crate::rules::compiled::compile(&r).unwrap()
    }

    #[test]
    fn a_split_condition_is_its_conjuncts_over_readable_columns_and_the_rest_and_together_they_keep_what_it_keeps() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let readable = |c: &str| ["payment_method", "card_type", "fee"].contains(&c);
        // FEE-CAP-01's condition: the contract terms are application columns.
        let r = row_rule(
            "payment_method = 'card' AND card_type = 'debit' AND contract_debit_cap > 0 \
             AND fee - COALESCE(contract_fixed_fee, 0) > contract_debit_cap",
        );
        let Split { pre, rest } = split_condition(&r, as_of, readable).expect("two conjuncts read only readable columns");
        let and = |parts: Vec<Expr>| parts.into_iter().reduce(|a, b| a.and(b)).unwrap();
        let pre = and(pre);
        let names = |e: &Expr| {
            let mut read: Vec<String> = e.clone().meta().root_names().iter().map(|n| n.to_string()).collect();
            read.sort();
            read.dedup();
            read
        };
        assert_eq!(names(&pre), ["card_type", "payment_method"]);
        let rest = rest.expect("two conjuncts read application columns");
        assert_eq!(names(&rest), ["contract_debit_cap", "contract_fixed_fee", "fee"]);
        let df = df!(
            "payment_method" => [Some("card"), Some("card"), Some("qr"), None, Some("card")],
            "card_type" => [Some("debit"), Some("credit"), Some("debit"), Some("debit"), Some("debit")],
            "fee" => [9i64, 9, 9, 9, 9],
            "contract_debit_cap" => [Some(1i64), Some(1), Some(1), Some(1), Some(20)],
            "contract_fixed_fee" => [0i64, 0, 0, 0, 0],
        )
        .unwrap();
        let mask = |e: Expr| -> Vec<bool> {
            let out = df.clone().lazy().select([e.alias("m")]).collect().unwrap();
            out.column("m")
                .unwrap()
                .bool()
                .unwrap()
                .iter()
                .map(|v| v.unwrap_or(false))
                .collect()
        };
        let whole = mask(sql(r.filter.as_ref().unwrap(), as_of).unwrap());
        let kept = mask(pre.clone());
        let both = mask(pre.and(rest));
        // The whole condition keeps the first row (a fee of 9 over a cap
        // of 1); the part keeps the last too (its fee is under its cap,
        // which the part cannot see) and drops the others.
        assert_eq!(whole, [true, false, false, false, false]);
        assert_eq!(kept, [true, false, false, false, true]);
        assert_eq!(both, whole);
        // Every conjunct readable: nothing is left.
        let every = split_condition(&r, as_of, |_| true).unwrap();
        assert!(every.rest.is_none());
        assert_eq!(mask(and(every.pre)), whole);
    }

    #[test]
    fn no_split_where_the_condition_is_not_row_by_row_or_no_conjunct_is_readable() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let all = |_: &str| true;
        // A function not known to work row by row anywhere in the condition.
        assert!(split_condition(&row_rule("status = 'approved' AND UPPER(mcc) = '5411'"), as_of, all).is_none());
        // One disjunction over a column that is not readable.
        let r = row_rule("status = 'approved' OR contract_debit_cap > 0");
        assert!(split_condition(&r, as_of, |c: &str| c == "status").is_none());
        assert!(split_condition(&r, as_of, all).is_some());
        // No condition.
        let none: crate::rules::model::Rule = serde_yaml::from_str(
            "id: T-1\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n\
             group_by: [merchant_id]\nwindow: 1d\nhaving: \"COUNT(*) > 2\"\nmessage: m\n",
        )
        .unwrap();
        assert!(split_condition(&crate::rules::compiled::compile(&none).unwrap(), as_of, all).is_none());
    }

    #[test]
    fn distinct_counts_are_found_in_measures_and_the_condition() {
        let r: crate::rules::model::Rule = serde_yaml::from_str(
            "id: T-1\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n\
             group_by: [merchant_id]\nwindow: 1d\n\
             measures:\n  cards: \"COUNT(DISTINCT card_hash)\"\n  total: \"SUM(amount)\"\n\
             having: \"COUNT(DISTINCT terminal_sn) > 1 AND COUNT(*) > 2\"\nmessage: m\n",
        )
        .unwrap();
        let rule = crate::rules::compiled::compile(&r).unwrap();
        let mut found = distinct_counted(&rule);
        found.sort();
        assert_eq!(found, vec!["card_hash".to_string(), "terminal_sn".to_string()]);
    }

    /// A plan context over `schema` of `rows` rows, as of 2026-11-20,
    /// without a time range, peer statistics or an applied condition.
    fn context(schema: &Schema, rows: usize) -> PlanContext<'_> {
        PlanContext {
            schema,
            as_of: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            rows,
            time_range: None,
            peer_stats: None,
            condition: Default::default(),
        }
    }

    fn hits(rule: &CompiledRule, df: DataFrame) -> DataFrame {
        let schema = df.schema().clone();
        let t = df
            .column("txn_time")
            .unwrap()
            .as_materialized_series()
            .datetime()
            .unwrap()
            .physical()
            .clone();
        let ctx = PlanContext {
            time_range: Some((t.min().unwrap(), t.max().unwrap())),
            ..context(&schema, df.height())
        };
        let mut by: Vec<&str> = rule.keys().iter().map(String::as_str).collect();
        by.extend(["window_end", "count"]);
        build(rule, df.lazy(), &ctx)
            .unwrap()
            .drop(cols([HIT_ID]))
            .sort(by, SortMultipleOptions::default())
            .collect()
            .unwrap()
    }

    /// A rule that names neither `amount` nor `sum_amount` gets `amount`
    /// held as fen (`prepare::frame_of_rows`): its built-in sum, summed as
    /// fen and read in yuan after the plan, is the sum of the decimals.
    #[test]
    fn the_amounts_sum_from_held_fen_is_the_sum_of_the_decimals() {
        let fen = || rows().column("amount").unwrap().as_materialized_series().i64().unwrap().clone();
        let mut decimals = rows();
        let yuan = crate::input::read::decimal_from_scaled(fen(), 2).unwrap();
        decimals.with_column(yuan.with_name("amount".into()).into_column()).unwrap();
        let mut held = rows();
        let fen = fen();
        held.with_column(crate::checks::held::hold("amount", fen.len(), |i| fen.get(i)))
            .unwrap();
        assert_eq!(held.column("amount").unwrap().dtype(), &DataType::Int32);
        for window in ["window: 1d", "rolling: 10m"] {
            let r: crate::rules::model::Rule = serde_yaml::from_str(&format!(
                "id: T-3\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n\
                 group_by: [merchant_id]\n{window}\nhaving: \"COUNT(*) >= 2\"\nmessage: m\n"
            ))
            .unwrap();
            let r = crate::rules::compiled::compile(&r).unwrap();
            assert!(!r.names.contains("amount") && !r.names.contains("sum_amount"));
            let run = |df: DataFrame| {
                let schema = df.schema().clone();
                let ctx = context(&schema, df.height());
                let out = build(&r, df.lazy(), &ctx).unwrap().collect().unwrap();
                let by: Vec<&str> = ["merchant_id", "window_start", "window_end"]
                    .into_iter()
                    .filter(|c| out.schema().contains(c))
                    .collect();
                out.sort(by, SortMultipleOptions::default()).unwrap()
            };
            let want = run(decimals.clone());
            let mut got = run(held.clone());
            crate::checks::held::hits_as_read(&mut got).unwrap();
            assert!(want.height() > 0, "{window}: the data has hits");
            let text = |df: &DataFrame| -> Vec<Option<String>> {
                let s = df.column("sum_amount").unwrap().as_materialized_series();
                s.iter().map(|v| crate::engine::hits::display(&v)).collect()
            };
            assert_eq!(text(&got), text(&want), "{window}");
            assert!(
                text(&want).iter().any(|v| v.as_deref().is_some_and(|v| v.contains('.'))),
                "{window}: in yuan"
            );
            let others = |df: &DataFrame| df.drop("sum_amount").unwrap();
            assert!(others(&got).equals_missing(&others(&want)), "{window}: {got} vs {want}");
        }
    }

    /// A COUNT(*) floor leaves out keys with too few rows before grouping
    /// by day or over all rows: the hits are those grouping every row gives.
    #[test]
    fn a_count_floor_leaves_the_hits_of_plain_and_daily_groups_unchanged() {
        for (keys, window, floor) in [
            ("merchant_id", "window: 1d\n", 2),
            ("merchant_id, card_hash", "window: 1d\n", 3),
            ("card_hash", "", 5),
            ("txn_id", "", 2),
        ] {
            let r: crate::rules::model::Rule = serde_yaml::from_str(&format!(
                "id: T-2\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n\
                 group_by: [{keys}]\n{window}having: \"COUNT(*) >= {floor}\"\nmessage: m\n"
            ))
            .unwrap();
            let floored = crate::rules::compiled::compile(&r).unwrap();
            assert_eq!(floored.grouping.as_ref().unwrap().min_count, Some(floor), "{keys}");
            let mut plain = floored.clone();
            plain.grouping.as_mut().unwrap().min_count = None;
            for coded in [false, true] {
                let mut df = rows();
                if coded {
                    keys::add_codes(&mut df, [keys::code_column(floored.keys()).as_str()]).unwrap();
                }
                let groups = |rule: &CompiledRule, df: DataFrame| {
                    let schema = df.schema().clone();
                    let ctx = context(&schema, df.height());
                    let by: Vec<&str> = rule.keys().iter().map(String::as_str).chain(["window_start"]).collect();
                    build(rule, df.lazy(), &ctx)
                        .unwrap()
                        .sort(by, SortMultipleOptions::default())
                        .collect()
                        .unwrap()
                };
                let with = groups(&floored, df.clone());
                let without = groups(&plain, df);
                assert!(with.equals_missing(&without), "{keys} {window}: {with} vs {without}");
                if keys != "txn_id" {
                    assert!(with.height() > 0, "{keys} {window}: the data has hits");
                }
            }
        }
    }

    /// The single-index windows over coded keys equal polars' own per-key
    /// rolling windows: same windows, counts, sums, measures and members.
    #[test]
    fn coded_rolling_windows_equal_per_key_windows() {
        for (keys, period) in [("merchant_id", "10m"), ("merchant_id, card_hash", "10m"), ("card_hash", "3d")] {
            let r = rule(keys, period);
            let per_key = hits(&r, rows());
            let mut coded = rows();
            keys::add_codes(&mut coded, [keys::code_column(r.keys()).as_str()]).unwrap();
            let via_index = hits(&r, coded);
            assert!(per_key.height() > 0, "{keys} {period}: the data has hits");
            // polars' per-key rolling also returns its time column.
            let per_key = per_key.select(via_index.get_column_names_owned()).unwrap();
            for c in via_index.columns() {
                let mine = per_key.column(c.name()).unwrap();
                assert!(mine.equals_missing(c), "{keys} {period}: column {}: {mine:?} vs {c:?}", c.name());
            }
        }
    }
}
