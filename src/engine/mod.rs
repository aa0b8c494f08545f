//! The engine: prepare the frames once, then evaluate every rule's plan in
//! parallel and collect findings in a deterministic order.
//!
//! Threads: rules run as rayon tasks *inside polars' own pool*, so rule-level
//! and operator-level parallelism share one set of N worker threads (N =
//! `--threads`, else the number of cores). A second pool for rules would
//! run up to 2N busy threads on N cores; one pool with work stealing keeps
//! every core busy without oversubscribing.

pub(crate) mod distinct;
pub mod hits;
pub mod hoist;
pub mod key_counts;
pub mod keys;
pub mod lifetimes;
pub mod narrow;
pub mod partition;
pub mod plan;
pub(crate) mod positions;
pub mod prepare;
pub(crate) mod row_order;
pub mod sealed;
pub mod spill_folder;
pub(crate) mod spill_parquet;
pub(crate) mod units;
pub mod validate;

use std::time::Instant;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::engine::validate::missing_column;
use crate::findings::model::finish;
use crate::findings::Finding;
use crate::input::{FileStats, LINE_COL, SRC_COL};
use crate::rules::load::{LoadedRule, RulePack};
use plan::{clean_polars_error, Condition, PlanContext};
use prepare::Prepared;

/// What happened to one rule in a run.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRun {
    pub rule_id: String,
    pub status: RuleStatus,
    /// Run in shadow: findings written apart, outside the exit code.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: usize,
    /// Rows of the rule's source.
    pub rows: usize,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    Ran,
    Skipped,
    Failed,
}

/// The most hits one rule may have before it is stopped (see
/// `scan --max-findings`). Process-wide: it bounds memory, like threads.
static MAX_HITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

pub(crate) fn set_max_hits(n: usize) {
    MAX_HITS.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// Run `f` on polars' thread pool (see the module comment).
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    polars_core::runtime::THREAD_POOL.install(f)
}

/// Peer statistics per rule id, computed over all the data (partitioned runs).
pub(crate) type PeerStats = std::collections::BTreeMap<String, DataFrame>;

/// What resolving a rule on an empty frame of its source's schema said,
/// by rule and schema: None, it resolves; else skipped (a column is
/// absent) or failed, and why. Partitions of a split share their schema,
/// so a partitioned run resolves each rule once, not once per partition.
pub(crate) type Probes = std::sync::Mutex<std::collections::HashMap<(String, String), Option<(RuleStatus, String)>>>;

fn run_one(
    lr: &LoadedRule,
    prepared: &Prepared,
    files: &[FileStats],
    as_of: NaiveDate,
    peer_stats: &PeerStats,
    probes: &Probes,
    masks: &Masks,
) -> (Vec<Finding>, RuleRun) {
    let started = Instant::now();
    let rule = &lr.compiled;
    // A failure reason may quote data (polars errors do): mask it by shape.
    let done = |status, reason: Option<String>, findings: &Vec<Finding>, rows| RuleRun {
        rule_id: rule.id.clone(),
        status,
        shadow: false,
        reason: reason.map(|r| crate::mask::scrub(&r).into_owned()),
        findings: findings.len(),
        rows,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    // Rows the part of the condition over the frame's own columns rejects
    // reach no finding: they are cut before the rule's application columns
    // are gathered and its money widened, and the plan applies only the
    // rest of the condition. The rule's row count and time span stay the
    // whole frame's.
    let cut = rows_to_keep(rule, prepared, as_of, masks);
    let cut_to = match cut.as_ref().map(|c| &c.kept) {
        Some(Kept::Cut(keep)) => Some(keep),
        _ => None,
    };
    let mut unread = cut.as_ref().map_or_else(Vec::new, |c| c.unread.clone());
    unread.extend(others_columns(rule, prepared));
    // Cut rows are named by their position, not by a copy of their ids and
    // origins (`positions`).
    let by_position = cut_to
        .and(prepared.frames.get(&rule.source))
        .and_then(|frame| Some((positions::named_by_position(rule, frame)?, frame)));
    if let Some((id, _)) = by_position {
        unread.extend([id, SRC_COL, LINE_COL].map(PlSmallStr::from));
    }
    // Money the rule reads only through sums is left held for it, and
    // its plan sums and compares it in units (`plan::held_for_sums`).
    // With the application columns the rule's frame will have (a limit
    // its sums compare amounts with).
    let summed = prepared
        .frames
        .get(&rule.source)
        .map(|df| {
            let mut schema = df.schema().as_ref().clone();
            for (name, dtype) in prepared.joined.get(&rule.source).map(|j| j.schema().iter()).into_iter().flatten() {
                if !schema.contains(name) {
                    schema.with_column(name.clone(), dtype.clone());
                }
            }
            plan::held_for_sums(rule, &schema, as_of)
        })
        .unwrap_or_default();
    let names = match summed.is_empty() {
        true => std::borrow::Cow::Borrowed(&rule.names),
        false => std::borrow::Cow::Owned(rule.names.difference(&summed).cloned().collect()),
    };
    let base = match prepared.frame_of_rows(rule.source, Some(&names), cut_to, &unread) {
        Ok(base) => base,
        Err(e) => {
            let v = vec![];
            let r = done(RuleStatus::Failed, Some(clean_polars_error(&e)), &v, 0);
            return (v, r);
        }
    };
    let Some(base) = base else {
        let v = vec![];
        let r = done(
            RuleStatus::Skipped,
            Some(format!("needs the {} input, which was not given", rule.source)),
            &v,
            0,
        );
        return (v, r);
    };
    // Resolve on an empty frame first: an optional column the data lacks
    // skips the rule with a reason instead of failing the run. A rule that
    // fails on the enumerations as categoricals (a text function on one)
    // reads them as text.
    let mut base = base;
    if let (Some(keep), Some(_)) = (cut_to, by_position) {
        if let Err(e) = base.with_column(positions::of_kept(keep)) {
            let v = vec![];
            let r = done(RuleStatus::Failed, Some(clean_polars_error(&e)), &v, 0);
            return (v, r);
        }
    }
    let (rows, span) = match &cut {
        Some(cut) => (cut.rows, cut.span),
        None => (base.height(), span_if_rolling(rule, &base)),
    };
    let mut condition = match &cut {
        None => Condition::Whole,
        Some(Cut {
            kept: Kept::Marked(mask),
            rest,
            ..
        }) => match base.with_column(mask.clone().with_name(KEPT.into()).into_column()) {
            Ok(_) => Condition::Left(Some(rest.clone().map_or(col(KEPT), |r| col(KEPT).and(r)))),
            Err(_) => Condition::Whole,
        },
        Some(cut) => Condition::Left(cut.rest.clone()),
    };
    // A condition with a text function, over categoricals only, is
    // applied here, once per distinct combination of its columns' values,
    // instead of to every row (`distinct`). Nothing of it is left to the
    // plan, which is then resolved apart: `resolve` keeps its answers by
    // schema, which the cut keeps, and another partition may not be cut.
    let mut applied_by_combination = false;
    if let Some(Ok(keep)) = plan::applied_condition(rule, &condition, as_of)
        .ok()
        .flatten()
        .filter(distinct::has_text_function)
        .and_then(|c| distinct::kept(&base, &c))
    {
        if let Ok(kept) = base.filter(&keep) {
            (base, condition, applied_by_combination) = (kept, Condition::Left(None), true);
        }
    }
    let resolve_rule = |rule: &crate::rules::compiled::CompiledRule, ctx: &PlanContext, probes: &Probes| match applied_by_combination {
        true => probe(rule, ctx.schema, ctx),
        false => resolve(rule, ctx, probes),
    };
    let mut schema = base.schema().clone();
    let mut resolved = resolve_rule(
        rule,
        &plan_context(rule, rows, span, &schema, as_of, peer_stats, &condition),
        probes,
    );
    let condition = &condition;
    if matches!(resolved, Err((RuleStatus::Failed, _))) && narrow::is_narrowed(&schema) {
        let resolves = |s: &Schema| resolve_rule(rule, &plan_context(rule, rows, span, s, as_of, peer_stats, condition), probes).is_ok();
        let as_text = narrow::read_as_text(&schema, &rule.names, resolves).unwrap_or_else(|| rule.names.clone());
        if let Ok(text) = narrow::widen_some(base.clone(), &as_text) {
            let text_schema = text.schema().clone();
            let again = resolve_rule(
                rule,
                &plan_context(rule, rows, span, &text_schema, as_of, peer_stats, condition),
                probes,
            );
            if again.is_ok() {
                (base, schema, resolved) = (text, text_schema, again);
            }
        }
    }
    if let Err((status, reason)) = resolved {
        let v = vec![];
        let r = done(status, Some(reason), &v, rows);
        return (v, r);
    }
    let ctx = plan_context(rule, rows, span, &schema, as_of, peer_stats, condition);
    let result = plan::build(rule, base.clone().lazy(), &ctx)
        .map_err(|e| e.message)
        .and_then(|lf| lf.collect().map_err(|e| clean_polars_error(&e)));
    match result {
        Ok(hits) if hits.height() > MAX_HITS.load(std::sync::atomic::Ordering::Relaxed) => {
            let v = vec![];
            let reason = format!(
                "the rule hit {} times, more than --max-findings allows ({}): check its condition and parameters, or raise the limit",
                hits.height(),
                MAX_HITS.load(std::sync::atomic::Ordering::Relaxed)
            );
            let r = done(RuleStatus::Failed, Some(reason), &v, rows);
            (v, r)
        }
        Ok(mut hits) => {
            let named = match by_position {
                Some((id, frame)) => positions::resolve(&mut hits, frame, id),
                None => Ok(()),
            };
            let summed = plan::measures_in_units(rule, &schema, as_of);
            let read = named
                .and_then(|_| crate::checks::held::hits_as_read(&mut hits))
                .and_then(|_| crate::checks::held::measures_as_read(&mut hits, &summed));
            if let Err(e) = read {
                let v = vec![];
                let r = done(RuleStatus::Failed, Some(clean_polars_error(&e)), &v, rows);
                return (v, r);
            }
            let findings = if rule.is_grouped() {
                hits::group_findings(lr, &hits, files)
            } else {
                hits::row_findings(lr, &hits, files)
            };
            let r = done(RuleStatus::Ran, None, &findings, rows);
            (findings, r)
        }
        Err(e) => {
            let v = vec![];
            let r = done(RuleStatus::Failed, Some(e), &v, rows);
            (v, r)
        }
    }
}

/// How the part of a rule's condition over the frame's own columns
/// (`plan::split_condition`) was applied: the rows a rule's frame is cut
/// to before its columns are made (`Prepared::frame_of_rows`), or marked,
/// with the part of the condition left to apply to them, and the whole
/// frame's row count and time span, which plans read.
struct Cut {
    kept: Kept,
    rest: Option<Expr>,
    /// The frame's columns that only the applied part of the condition
    /// reads: the rule's frame is made without them (`txn_type` and
    /// `status`, for two dozen rules).
    unread: Vec<PlSmallStr>,
    rows: usize,
    span: Option<(i64, i64)>,
}

/// The rows the part of the condition over own columns keeps.
enum Kept {
    /// Every row.
    All,
    /// These: the frame is cut to them.
    Cut(BooleanChunked),
    /// These, marked in column `KEPT`, which the plan's filter reads
    /// instead of evaluating that part again.
    Marked(BooleanChunked),
}

/// The column that marks the rows `Kept::Marked` keeps.
const KEPT: &str = "__kept";

/// The rows of `rule`'s frame that the part of its condition over the
/// frame's own columns, or over its application columns alone, keeps
/// (`plan::split_condition`), with the rest of the condition. That part
/// is evaluated once, here, not again in the plan. Where it is the whole
/// condition, or keeps at most half of the rows, the rule's columns are
/// cut to the rows it keeps: the copy the plan's filter would make, made
/// once and in one piece, so the plan filters by the rest only (nothing,
/// for most rules), and grouping does not join the pieces of a filtered
/// frame into one. Where the rest (over both kinds of column) is left and
/// the part keeps most rows, the rows are marked instead: the rest may
/// keep few of them, and a cut would copy most of the rule's own columns
/// for nothing.
fn rows_to_keep(rule: &crate::rules::compiled::CompiledRule, prepared: &Prepared, as_of: NaiveDate, masks: &Masks) -> Option<Cut> {
    let df = prepared.frames.get(&rule.source)?;
    if df.height() == 0 {
        return None;
    }
    // The span the rule's frame would have: its time column's, where it
    // is one of the frame's own columns; none where the rule does not
    // read it; a time column gathered from the applications is not cut.
    let time = rule.time_column();
    let span = if df.schema().contains(time) {
        span_if_rolling(rule, df)
    } else if prepared.joined.get(&rule.source).is_some_and(|j| j.has(time)) {
        return None;
    } else {
        None
    };
    let own = |c: &str| df.schema().contains(c);
    // A conjunct over application columns alone (`settlement_account_type
    // = 'corporate'`) says the same of all a merchant's rows: it is
    // evaluated per merchant (`Joined::rows_where`), and its columns are
    // not gathered onto the rows unless the rule reads them elsewhere.
    let joined = prepared.joined.get(&rule.source);
    let of_application = |c: &str| !own(c) && joined.is_some_and(|j| j.has(c));
    let split = plan::split_condition(rule, as_of, |c| own(c) || of_application(c))?;
    let mut rest: Vec<Expr> = split.rest.into_iter().collect();
    let mut keep: Option<BooleanChunked> = None;
    let mut applied: std::collections::BTreeSet<PlSmallStr> = std::collections::BTreeSet::new();
    for part in split.pre {
        let names = part.clone().meta().root_names();
        let part_keeps = if names.iter().all(|n| own(n)) {
            match &keep {
                None => masks.kept(rule.source, df, part.clone())?,
                // A part no other rule has asked for yet, after parts that
                // kept few rows, is evaluated on those rows only: `SUS-REF-02`
                // compares refunds with their originals, which for all 10M
                // rows widened a money column and compared two cards each.
                Some(k) if k.num_trues() * FEW <= df.height() && !masks.has(rule.source, df, &part) => {
                    let both = Masks::kept_among(df, part.clone(), k)?;
                    applied.extend(names);
                    keep = Some(both);
                    continue;
                }
                Some(_) => masks.kept(rule.source, df, part.clone())?,
            }
        } else {
            // Over application columns only, or (left to the plan) both.
            let by_merchant = joined
                .filter(|_| !names.is_empty() && names.iter().all(|n| of_application(n)))
                .and_then(|j| {
                    masks.kept_by(rule.source, df.height(), &part, || {
                        j.rows_where(&names, |apps| evaluate(apps, part.clone()))
                    })
                });
            match by_merchant {
                Some(m) => m,
                None => {
                    rest.push(part);
                    continue;
                }
            }
        };
        applied.extend(names);
        keep = Some(match keep {
            None => part_keeps,
            Some(k) => &k & &part_keeps,
        });
    }
    let keep = keep?;
    let rest = rest.into_iter().reduce(|a, b| a.and(b));
    let unread = unread_after(rule, applied, rest.as_ref(), |c| own(c) || of_application(c));
    let kept = if keep.num_trues() == df.height() {
        Kept::All
    } else if rest.is_none() || keep.num_trues() * 2 <= df.height() {
        Kept::Cut(keep)
    } else {
        Kept::Marked(keep)
    };
    Some(Cut {
        kept,
        rest,
        unread,
        rows: df.height(),
        span,
    })
}

/// The columns of `rule`'s frame that only other rules read (those not
/// in `prepare::columns_read`), left out before its rows are cut. A run
/// in memory hands each rule only its columns already (`lifetimes`); a
/// partition's frame holds the whole pack's (43 columns at the 1M
/// month), and a cut copied all of them for the kept rows.
fn others_columns(rule: &crate::rules::compiled::CompiledRule, prepared: &Prepared) -> Vec<PlSmallStr> {
    let Some(df) = prepared.frames.get(&rule.source) else {
        return Vec::new();
    };
    let read = prepare::columns_read(rule, df);
    df.get_column_names().into_iter().filter(|c| !read.contains(c)).cloned().collect()
}

/// The columns among `applied` (those the applied part of `rule`'s
/// condition reads) that the rule's frame can have (`present`: its own,
/// and the application columns it can gather) and nothing after the
/// applied part reads: not the rest of the condition, the measures,
/// keys, evidence or message, nor what the plan reads on its own (a
/// grouped rule's `sum_amount` reads `amount`; calendar windows their
/// day or month column; key codes), nor the columns every frame keeps
/// (ids, source line, time).
fn unread_after(
    rule: &crate::rules::compiled::CompiledRule,
    applied: std::collections::BTreeSet<PlSmallStr>,
    rest: Option<&Expr>,
    present: impl Fn(&str) -> bool,
) -> Vec<PlSmallStr> {
    let mut read = rule.names_besides_condition();
    read.extend(rest.into_iter().flat_map(|r| r.clone().meta().root_names()).map(|n| n.to_string()));
    read.extend(prepare::rule_names(rule).into_iter().filter(|n| !rule.names.contains(n)));
    if rule.is_grouped() {
        read.insert("amount".to_string());
    }
    applied
        .into_iter()
        .filter(|c| !read.contains(c.as_str()) && present(c) && !prepare::keeps(&Default::default(), rule.source, c))
        .collect()
}

/// The rows each conjunct of the rules' conditions keeps (`rows_to_keep`),
/// by input, evaluated once for all the rules of a run that share it: two
/// dozen rules start with `txn_type = 'purchase' AND status = 'approved'`,
/// and each such comparison is a pass over 10M categoricals. A row is kept
/// where the conjunct is true (not false or null), so the rows a condition
/// keeps are the rows all its conjuncts keep. Only for the frames of one
/// run: a partitioned run has one per partition.
#[derive(Default)]
pub(crate) struct Masks(std::sync::Mutex<Vec<(crate::input::InputKind, Expr, BooleanChunked)>>);

impl Masks {
    /// Whether the run holds the rows `part` keeps of `df` already.
    fn has(&self, kind: crate::input::InputKind, df: &DataFrame, part: &Expr) -> bool {
        self.0
            .lock()
            .is_ok_and(|masks| masks.iter().any(|(k, e, m)| *k == kind && e == part && m.len() == df.height()))
    }

    /// The rows of `df` that both `among` and `part` keep, `part` evaluated
    /// on the rows `among` keeps only (and not held for other rules: it
    /// says nothing of the other rows).
    fn kept_among(df: &DataFrame, part: Expr, among: &BooleanChunked) -> Option<BooleanChunked> {
        let read: Vec<PlSmallStr> = part.clone().meta().root_names();
        let kept = evaluate(&df.select(read).ok()?.filter(among).ok()?, part)?;
        let mut of_kept = kept.iter();
        let all: BooleanChunked = among
            .iter()
            .map(|k| k == Some(true) && of_kept.next() == Some(Some(true)))
            .collect();
        (of_kept.next().is_none() && all.len() == df.height()).then_some(all)
    }

    /// The rows of `df` (the `kind` input's frame) that `part` keeps: from
    /// the run's masks, or evaluated and kept for the next rule. None where
    /// it does not evaluate to one flag per row.
    fn kept(&self, kind: crate::input::InputKind, df: &DataFrame, part: Expr) -> Option<BooleanChunked> {
        self.kept_by(kind, df.height(), &part, || evaluate(df, part.clone()))
    }

    /// The rows of the `kind` input's frame (`height` rows) that `part`
    /// keeps: from the run's masks, or as `eval` says and kept for the
    /// next rule.
    fn kept_by(
        &self,
        kind: crate::input::InputKind,
        height: usize,
        part: &Expr,
        eval: impl FnOnce() -> Option<BooleanChunked>,
    ) -> Option<BooleanChunked> {
        let known = |masks: &Vec<(crate::input::InputKind, Expr, BooleanChunked)>| {
            masks
                .iter()
                .find(|(k, e, m)| *k == kind && e == part && m.len() == height)
                .map(|(_, _, m)| m.clone())
        };
        if let Some(m) = self.0.lock().ok().and_then(|masks| known(&masks)) {
            return Some(m);
        }
        let kept = eval().filter(|k| k.len() == height)?;
        if let Ok(mut masks) = self.0.lock() {
            if known(&masks).is_none() {
                masks.push((kind, part.clone(), kept.clone()));
            }
        }
        Some(kept)
    }
}

/// The rows of `rows` that a part of a condition keeps (true, not
/// false or null); None where it does not give one flag per row.
///
/// Only the columns the part reads are taken, with money held as integer
/// units (`checks::held`) compared in those units where that is exact
/// (`units`), else widened to the decimals rules read:
/// `FEE-REC-01`'s condition reads two such columns, and the rule's whole
/// frame widened (its evidence too) was five 16-byte columns of every row,
/// 850 MB at 10M rows and the scan's peak.
fn evaluate(rows: &DataFrame, part: Expr) -> Option<BooleanChunked> {
    let names: std::collections::BTreeSet<String> = part.clone().meta().root_names().iter().map(|n| n.to_string()).collect();
    let mut read = rows.select(names.iter().map(String::as_str)).ok()?;
    // Money compared in the units it is held in, where that is exact
    // (`units`); else widened to the decimals the part reads.
    let part = match units::in_units(&part, read.schema()) {
        Some(in_units) => in_units,
        None => {
            crate::checks::held::as_read_named(&mut read, Some(&names)).ok()?;
            part
        }
    };
    let out = read.lazy().select([part.alias(KEPT)]).collect().ok()?;
    let kept = out.column(KEPT).ok()?.bool().ok()?.fill_null_with_values(false).ok()?;
    (kept.len() == rows.height()).then_some(kept)
}

/// `rows_to_keep` evaluates a part on the rows kept so far, not on all,
/// where those are at most one in `FEW`.
const FEW: usize = 4;

fn plan_context<'a>(
    rule: &crate::rules::compiled::CompiledRule,
    rows: usize,
    time_range: Option<(i64, i64)>,
    schema: &'a Schema,
    as_of: NaiveDate,
    peer_stats: &'a PeerStats,
    condition: &Condition,
) -> PlanContext<'a> {
    PlanContext {
        schema,
        as_of,
        rows,
        time_range,
        peer_stats: peer_stats.get(&rule.id),
        condition: condition.clone(),
    }
}

/// `probe`, once per rule and schema (partitions share their schema).
fn resolve(rule: &crate::rules::compiled::CompiledRule, ctx: &PlanContext, probes: &Probes) -> Result<(), (RuleStatus, String)> {
    let key = (rule.id.clone(), format!("{:?}", ctx.schema));
    if let Some(known) = probes.lock().ok().and_then(|p| p.get(&key).cloned()) {
        return known.map_or(Ok(()), Err);
    }
    let probe = probe(rule, ctx.schema, ctx);
    if let Ok(mut p) = probes.lock() {
        p.insert(key, probe.clone().err());
    }
    probe
}

/// Resolve a rule's plan on an empty frame of the schema: Ok, or skipped
/// (an optional column the data lacks) or failed, with the reason.
fn probe(rule: &crate::rules::compiled::CompiledRule, schema: &Schema, ctx: &PlanContext) -> Result<(), (RuleStatus, String)> {
    plan::build(rule, DataFrame::empty_with_schema(schema).lazy(), ctx)
        .map_err(|e| (RuleStatus::Failed, e.message))
        .and_then(|lf| {
            lf.collect().map_err(|e| match missing_column(&e) {
                Some(c) => (
                    RuleStatus::Skipped,
                    match crate::contract::DERIVED.iter().find(|d| d.name == c) {
                        Some(d) => format!("column `{c}` is absent from the {} input (derived: {})", rule.source, d.doc),
                        None => format!("column `{c}` is absent from the {} input", rule.source),
                    },
                ),
                None => (RuleStatus::Failed, clean_polars_error(&e)),
            })
        })
        .map(|_| ())
}

/// The time span of `df` a rule's plan reads: only rolling windows read
/// it (`plan::rolling_windows`), and a minimum and maximum over 10M times
/// for each of 70 rules was 5% of a scan's CPU time.
fn span_if_rolling(rule: &crate::rules::compiled::CompiledRule, df: &DataFrame) -> Option<(i64, i64)> {
    matches!(rule.window(), Some(crate::rules::compiled::Window::Rolling { .. }))
        .then(|| time_range(df, rule.time_column()))
        .flatten()
}

/// First and last value (ms) of a date or time column.
fn time_range(df: &DataFrame, name: &str) -> Option<(i64, i64)> {
    let c = df.column(name).ok()?.cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).ok()?;
    let ms = c.as_materialized_series().datetime().ok()?.physical().clone();
    Some((ms.min()?, ms.max()?))
}

/// Evaluate all rules; findings come back sorted, runs in rule-id order.
pub fn run(pack: &RulePack, prepared: &Prepared, files: &[FileStats], as_of: NaiveDate) -> (Vec<Finding>, Vec<RuleRun>) {
    run_observed(pack, prepared, files, as_of, &|_| {})
}

/// As `run`, telling `done` about each rule as it finishes (progress, logs).
pub(crate) fn run_observed(
    pack: &RulePack,
    prepared: &Prepared,
    files: &[FileStats],
    as_of: NaiveDate,
    done: &(dyn Fn(&RuleRun) + Sync),
) -> (Vec<Finding>, Vec<RuleRun>) {
    run_with_peers(pack, prepared, files, as_of, done, &PeerStats::new(), &Probes::default())
}

/// As `run_observed`, on frames the run owns: the rules start in the
/// order `lifetimes` gives, each sees only the columns it reads, and each
/// column is dropped once the last rule that reads it has run. The result
/// is `run_observed`'s, byte for byte; the peak is lower (the frames
/// shrink while the rules run).
pub(crate) fn run_releasing(
    pack: &RulePack,
    prepared: Prepared,
    files: &[FileStats],
    as_of: NaiveDate,
    done: &(dyn Fn(&RuleRun) + Sync),
) -> (Vec<Finding>, Vec<RuleRun>) {
    let columns = lifetimes::Columns::new(pack, prepared);
    let (peer_stats, probes, masks) = (PeerStats::new(), Probes::default(), Masks::default());
    // Each rule's result, filled in whatever order the rules finish.
    type Slot = std::sync::Mutex<Option<(Vec<Finding>, RuleRun)>>;
    let results: Vec<Slot> = pack.rules.iter().map(|_| Default::default()).collect();
    // One task per rule, started oldest first (`spawn_fifo`), so that the
    // order holds on every thread.
    in_pool(|| {
        rayon::scope_fifo(|s| {
            for i in columns.order() {
                let (columns, results, peer_stats, probes, masks) = (&columns, &results, &peer_stats, &probes, &masks);
                s.spawn_fifo(move |_| {
                    let own = columns.for_rule(i);
                    let r = run_one(&pack.rules[i], &own, files, as_of, peer_stats, probes, masks);
                    drop(own);
                    columns.done(i);
                    done(&r.1);
                    *results[i].lock().expect("not poisoned") = Some(r);
                });
            }
        })
    });
    let mut findings = Vec::new();
    let mut runs = Vec::new();
    for r in results {
        let (f, r) = r.into_inner().expect("not poisoned").expect("every rule ran");
        findings.extend(f);
        runs.push(r);
    }
    finish(&mut findings);
    (findings, runs)
}

/// As `run_observed`, with peer statistics computed elsewhere (over all
/// partitions) for the rules that have peers.
pub(crate) fn run_with_peers(
    pack: &RulePack,
    prepared: &Prepared,
    files: &[FileStats],
    as_of: NaiveDate,
    done: &(dyn Fn(&RuleRun) + Sync),
    peer_stats: &PeerStats,
    probes: &Probes,
) -> (Vec<Finding>, Vec<RuleRun>) {
    let masks = Masks::default();
    let results: Vec<(Vec<Finding>, RuleRun)> = in_pool(|| {
        pack.rules
            .par_iter()
            .map(|lr| {
                let r = run_one(lr, prepared, files, as_of, peer_stats, probes, &masks);
                done(&r.1);
                r
            })
            .collect()
    });
    let mut findings = Vec::new();
    let mut runs = Vec::new();
    for (f, r) in results {
        findings.extend(f);
        runs.push(r);
    }
    finish(&mut findings);
    (findings, runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputKind;

    #[test]
    fn a_conjunct_is_evaluated_once_per_run_and_keeps_the_rows_where_it_is_true() {
        let df = df!(
            "status" => [Some("approved"), Some("declined"), None, Some("approved")],
            "txn_type" => [Some("purchase"), Some("purchase"), Some("purchase"), Some("refund")],
        )
        .unwrap();
        let masks = Masks::default();
        let approved = || col("status").eq(lit("approved"));
        let kept = masks.kept(InputKind::Transactions, &df, approved()).unwrap();
        // Null is not kept, like false.
        assert_eq!(kept.iter().collect::<Vec<_>>(), [Some(true), Some(false), Some(false), Some(true)]);
        let again = masks.kept(InputKind::Transactions, &df, approved()).unwrap();
        assert_eq!(again.iter().collect::<Vec<_>>(), [Some(true), Some(false), Some(false), Some(true)]);
        let purchase = masks
            .kept(InputKind::Transactions, &df, col("txn_type").eq(lit("purchase")))
            .unwrap();
        // One mask per conjunct and input, whatever the number of rules.
        assert_eq!(masks.0.lock().unwrap().len(), 2);
        assert_eq!(masks.kept(InputKind::Fees, &df, approved()).unwrap().len(), 4);
        assert_eq!(masks.0.lock().unwrap().len(), 3);
        // Both conjuncts' rows are the rows their AND keeps.
        let both = df
            .clone()
            .lazy()
            .select([approved().and(col("txn_type").eq(lit("purchase"))).alias("m")])
            .collect()
            .unwrap();
        let both = both.column("m").unwrap().bool().unwrap().fill_null_with_values(false).unwrap();
        assert_eq!((&again & &purchase).iter().collect::<Vec<_>>(), both.iter().collect::<Vec<_>>());
        // Not a flag per row: no mask.
        assert!(masks.kept(InputKind::Transactions, &df, col("status")).is_none());
    }

    #[test]
    fn columns_only_the_applied_condition_reads_are_left_out_and_no_other() {
        let compiled = |yaml: &str| {
            let base = "id: X-1\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\n";
            let rule: crate::rules::model::Rule = serde_yaml::from_str(&format!("{base}{yaml}")).unwrap();
            crate::rules::compiled::compile(&rule).unwrap()
        };
        let schema: Schema = [
            "txn_type",
            "status",
            "amount",
            "mcc",
            "merchant_id",
            "txn_time",
            "txn_id",
            "card_hash",
        ]
        .into_iter()
        .map(|n| Field::new(n.into(), DataType::String))
        .collect();
        let applied = |names: &[&str]| names.iter().map(|n| PlSmallStr::from(*n)).collect();
        let row = compiled("where: \"txn_type = 'purchase' AND status = 'approved' AND amount > 9\"\nmessage: \"{txn_id} {amount}\"\n");
        // The message reads the amount; the ids and time every frame keeps.
        let unread = unread_after(&row, applied(&["txn_type", "status", "amount", "txn_id"]), None, |c| {
            schema.contains(c)
        });
        assert_eq!(unread, ["status", "txn_type"]);
        // What the rest of the condition reads stays.
        let rest = col("status").eq(lit("approved"));
        assert_eq!(
            unread_after(&row, applied(&["txn_type", "status"]), Some(&rest), |c| schema.contains(c)),
            ["txn_type"]
        );
        // A grouped rule's built-in sum reads the amount, its measures the MCC.
        let grouped = compiled(
            "where: \"amount > 9 AND mcc = '5411' AND card_hash IS NOT NULL\"\ngroup_by: [merchant_id]\nwindow: 1d\n\
             measures:\n  mccs: \"COUNT(DISTINCT mcc)\"\nhaving: \"COUNT(*) > 2\"\nmessage: \"{merchant_id} {sum_amount}\"\n",
        );
        let unread = unread_after(&grouped, applied(&["amount", "mcc", "card_hash"]), None, |c| schema.contains(c));
        assert_eq!(unread, ["card_hash"]);
    }

    #[test]
    fn a_part_over_money_held_as_units_is_read_in_yuan_on_all_rows_or_on_the_rows_kept_so_far() {
        // fee_diff is held as integer fen (`checks::held`); the
        // condition reads it in yuan.
        let df = df!(
            "status" => ["approved", "approved", "declined", "approved", "approved"],
            "fee_diff" => [Some(5i64), Some(-2), Some(9), None, Some(1)],
        )
        .unwrap();
        let masks = Masks::default();
        let big = || col("fee_diff").gt(lit(0.015));
        let kept = masks.kept(InputKind::Transactions, &df, big()).unwrap();
        assert_eq!(kept.iter().collect::<Vec<_>>(), [true, false, true, false, false].map(Some));
        // On the approved rows only: the declined row's 0.09 is not kept,
        // and the mask is not held (it says nothing of the other rows).
        let approved = masks.kept(InputKind::Transactions, &df, col("status").eq(lit("approved"))).unwrap();
        let held = masks.0.lock().unwrap().len();
        let among = Masks::kept_among(&df, big(), &approved).unwrap();
        assert_eq!(among.iter().collect::<Vec<_>>(), [true, false, false, false, false].map(Some));
        assert_eq!(masks.0.lock().unwrap().len(), held);
        assert!(masks.has(InputKind::Transactions, &df, &big()));
        assert!(!masks.has(InputKind::Transactions, &df, &col("fee_diff").lt(lit(0))));
        // The same as all rows' mask ANDed with the rows kept so far.
        assert_eq!(among.iter().collect::<Vec<_>>(), (&kept & &approved).iter().collect::<Vec<_>>());
    }
}
