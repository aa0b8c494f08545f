//! A part of a condition over money held as integer units
//! (`checks::held`), compared in those units instead of as the decimals
//! rules read.
//!
//! A part evaluated on every row (`Masks`) had its held columns widened
//! to 16-byte decimals first: `fee - expected_rate_fee >= ${min_addon}`
//! (`FEE-ADD-01`) made two of 171 MB at 10M rows, and subtracted and
//! compared them as 128-bit decimals, 195 ms. In fen it is
//! `fee - expected_rate_fee >= 100` over the held Int32 columns.
//!
//! Only what is exact in both forms is rewritten: comparisons of sums and
//! differences of held columns of one scale and of literals that are
//! whole numbers of that scale's units, and null tests of held columns,
//! joined by AND, OR and NOT. Anything else (a product, a function, a
//! literal with more decimals than the columns, a column that is not
//! held) leaves the part as it is.
//!
//! A grouped rule's sums of held money likewise (`sum_in_units`,
//! `having_in_units`): where a rule reads a money column only through
//! `SUM` (of the column, or of `CASE WHEN ... THEN column ELSE 0 END`)
//! and comparisons of such sums with exact literals and literal multiples
//! of them, the column stays held for it (`plan::held_for_sums`), the
//! sums are Int64 units and the comparisons 128-bit integers, and the
//! measures are read as decimals for the groups that hit. `SUS-REF-01`'s
//! two rolling sums of 16-byte decimals were half its time at 10M rows.
//! A count whose `CASE` condition compares held money with a decimal
//! limit (`SUS-UNDER-02`: `amount >= 0.95 * model_max_single_txn_amount`)
//! has that condition in 128-bit units (the decimal's own, `to_physical`)
//! and stays the count it was.

use std::sync::Arc;

use polars::prelude::*;

use crate::checks::held::{read_as, ReadAs};
use crate::input::values::parse_fixed;

/// `part` over the held columns of `schema` in their units, or None where
/// it is not only what this module rewrites (above).
pub(crate) fn in_units(part: &Expr, schema: &Schema) -> Option<Expr> {
    logical(
        part,
        &Walk {
            schema,
            unheld_as_is: false,
            // Whether a held column has a value is the same in either form.
            null_test: |c, schema| Term::of(c, schema).is_some(),
            compare: held_compared,
        },
    )
}

/// How `logical` rewrites the parts of a condition.
struct Walk<'a> {
    schema: &'a Schema,
    /// A part that reads no held column is left as it is (else it is
    /// not rewritten, and neither is the condition).
    unheld_as_is: bool,
    /// Whether a null test of this column is kept as it is.
    null_test: fn(&Expr, &Schema) -> bool,
    /// A comparison `left op right` rewritten, or None.
    compare: fn(&Expr, Operator, &Expr, &Schema) -> Option<Expr>,
}

/// A condition rewritten by `walk` through its AND, OR and NOT (SQL's
/// `<>` is `NOT (a = b)` here, and SQL's NOT casts its operand to Boolean
/// first), down to its comparisons and null tests; None where a part is
/// anything else.
fn logical(e: &Expr, walk: &Walk) -> Option<Expr> {
    if walk.unheld_as_is && !reads_held(e, walk.schema) {
        return Some(e.clone());
    }
    let (left, op, right) = match e {
        Expr::BinaryExpr { left, op, right } => (left, op, right),
        Expr::Function {
            input,
            function: FunctionExpr::Boolean(BooleanFunction::Not),
        } if input.len() == 1 => return Some(logical(&input[0], walk)?.not()),
        Expr::Cast {
            expr,
            dtype: dtype @ DataTypeExpr::Literal(DataType::Boolean),
            options,
        } => {
            return Some(Expr::Cast {
                expr: Arc::new(logical(expr, walk)?),
                dtype: dtype.clone(),
                options: *options,
            })
        }
        Expr::Function {
            input,
            function: FunctionExpr::Boolean(BooleanFunction::IsNull | BooleanFunction::IsNotNull),
        } if matches!(input.as_slice(), [Expr::Column(_)]) && (walk.null_test)(&input[0], walk.schema) => return Some(e.clone()),
        _ => return None,
    };
    match op {
        Operator::And | Operator::LogicalAnd | Operator::Or | Operator::LogicalOr => Some(Expr::BinaryExpr {
            left: Arc::new(logical(left, walk)?),
            op: *op,
            right: Arc::new(logical(right, walk)?),
        }),
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
            (walk.compare)(left, *op, right, walk.schema)
        }
        _ => None,
    }
}

/// `left op right` over held columns of one scale and exact literals, in
/// that scale's units (`in_units`).
fn held_compared(left: &Expr, op: Operator, right: &Expr, schema: &Schema) -> Option<Expr> {
    let (l, r) = (Term::of(left, schema)?, Term::of(right, schema)?);
    // The held columns compared, and their one scale.
    let mut scales = Vec::new();
    l.scales(&mut scales);
    r.scales(&mut scales);
    // Each held value is under 10^18 units (Decimal(18, _)), and so is
    // each literal (`Term::expr`): a sum of a few is far inside 64 bits.
    if l.leaves() + r.leaves() > MOST_LEAVES {
        return None;
    }
    let scale = *scales.first()?;
    if scales.iter().any(|s| *s != scale) {
        return None;
    }
    Some(Expr::BinaryExpr {
        left: Arc::new(l.expr(scale, true)?),
        op,
        right: Arc::new(r.expr(scale, true)?),
    })
}

/// Held columns and literals in one comparison, at most: nine values
/// under 10^18 sum to under 2^63.
const MOST_LEAVES: usize = 9;

/// The bound on each held value (Decimal(18, _)) and literal, in units.
const UNDER: u128 = 1_000_000_000_000_000_000;

/// A side of a comparison: held columns and exact literals, added and
/// subtracted.
enum Term {
    /// A held column and the scale of its units.
    Held(PlSmallStr, usize),
    /// A literal: the integer `units` at `scale`.
    Literal {
        units: i128,
        scale: usize,
    },
    Add(Box<Term>, Box<Term>),
    Sub(Box<Term>, Box<Term>),
}

impl Term {
    fn of(e: &Expr, schema: &Schema) -> Option<Term> {
        match e {
            Expr::Column(name) => match (read_as(name), schema.get(name)) {
                (Some(ReadAs::Decimal(scale)), Some(DataType::Int32 | DataType::Int64)) => Some(Term::Held(name.clone(), scale)),
                _ => None,
            },
            // A whole number as written (`dyn int` in polars).
            Expr::Literal(v) => match v.get_datatype() {
                DataType::Unknown(UnknownKind::Int(units)) => Some(Term::Literal { units, scale: 0 }),
                _ => None,
            },
            // A decimal parameter: its text cast to a decimal of its own
            // scale (`rules::compiled`), exact only where the text is.
            Expr::Cast { expr, dtype, .. } => {
                let DataTypeExpr::Literal(DataType::Decimal(_, scale)) = dtype else {
                    return None;
                };
                let Expr::Literal(text) = expr.as_ref() else {
                    return None;
                };
                let text = text.extract_str()?;
                let units = parse_fixed(text, u32::try_from(*scale).ok()?)?;
                Some(Term::Literal { units, scale: *scale })
            }
            Expr::BinaryExpr { left, op, right } => {
                let (l, r) = (Box::new(Term::of(left, schema)?), Box::new(Term::of(right, schema)?));
                match op {
                    Operator::Plus => Some(Term::Add(l, r)),
                    Operator::Minus => Some(Term::Sub(l, r)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The columns and literals in this term.
    fn leaves(&self) -> usize {
        match self {
            Term::Held(..) | Term::Literal { .. } => 1,
            Term::Add(l, r) | Term::Sub(l, r) => l.leaves() + r.leaves(),
        }
    }

    /// The scale of each held column in this term, into `out`.
    fn scales(&self, out: &mut Vec<usize>) {
        match self {
            Term::Held(_, s) => out.push(*s),
            Term::Literal { .. } => {}
            Term::Add(l, r) | Term::Sub(l, r) => {
                l.scales(out);
                r.scales(out);
            }
        }
    }

    /// This term in units of 10^-`scale`: None where a column has another
    /// scale or a literal is not a whole number of those units. `alone`:
    /// the term is a whole side of the comparison.
    fn expr(&self, scale: usize, alone: bool) -> Option<Expr> {
        Some(match self {
            // A column compared as it is: polars compares an Int32 column
            // with a literal that fits as Int32, without a copy (and with
            // one that does not as Int64). In a sum or difference it is
            // Int64, so that adding Int32 columns cannot wrap.
            Term::Held(name, s) if *s == scale && alone => col(name.clone()),
            Term::Held(name, s) if *s == scale => col(name.clone()).cast(DataType::Int64),
            Term::Held(..) => return None,
            Term::Literal { units, scale: own } => {
                let units = rescale(*units, *own, scale)?;
                // Bounded as the columns are; a larger literal is left to
                // the decimals. A whole number as written, as the SQL's
                // are (`dyn int`).
                if units.unsigned_abs() >= UNDER {
                    return None;
                }
                lit(units as i64)
            }
            Term::Add(l, r) => l.expr(scale, false)? + r.expr(scale, false)?,
            Term::Sub(l, r) => l.expr(scale, false)? - r.expr(scale, false)?,
        })
    }
}

/// `units` at scale `from` as units at scale `to`, where that is exact.
fn rescale(units: i128, from: usize, to: usize) -> Option<i128> {
    if from <= to {
        units.checked_mul(10i128.checked_pow(u32::try_from(to - from).ok()?)?)
    } else {
        let d = 10i128.checked_pow(u32::try_from(from - to).ok()?)?;
        (units % d == 0).then_some(units / d)
    }
}

/// Whether `e` reads a column held as units that rules read as decimals
/// (Int32 or Int64 in `schema`).
pub(crate) fn reads_held(e: &Expr, schema: &Schema) -> bool {
    e.clone().meta().root_names().iter().any(|n| held_scale(n, schema).is_some())
}

/// `schema` with its held columns other than `keep` as the decimals
/// rules read them as (`checks::held::as_read`: Decimal(18, scale)).
pub(crate) fn widened_but(schema: &Schema, keep: &std::collections::BTreeSet<String>) -> Schema {
    schema
        .iter()
        .map(|(name, dtype)| match held_scale(name, schema) {
            Some(scale) if !keep.contains(name.as_str()) => Field::new(name.clone(), DataType::Decimal(18, scale)),
            _ => Field::new(name.clone(), dtype.clone()),
        })
        .collect()
}

/// The scale of held column `name` in `schema` (its units), None where it
/// is not held there.
fn held_scale(name: &str, schema: &Schema) -> Option<usize> {
    match (read_as(name), schema.get(name)) {
        (Some(ReadAs::Decimal(scale)), Some(DataType::Int32 | DataType::Int64)) => Some(scale),
        _ => None,
    }
}

/// A measure of a grouped rule in units: `SUM(c)` or `SUM(CASE WHEN p
/// THEN c ELSE 0 END)` (either branch) over a held column `c` held as
/// Int32, summed as Int64 fen, and its scale; or a sum of a `CASE` whose
/// branches read no money and whose condition compares held money
/// (`predicate_in_units`: `SUM(CASE WHEN amount >= 0.95 * limit THEN 1
/// ELSE 0 END)`), with that condition in units, and no scale (it is not
/// money). None where the measure reads a held column otherwise. The sum
/// keeps SQL's null for a group of nulls. Exact: a sum of fewer than 2^32
/// values under 2^31 is under 2^63 (a frame has fewer rows than 2^32).
pub(crate) fn sum_in_units(e: &Expr, schema: &Schema) -> Option<(Expr, Option<usize>)> {
    // polars' SQL `SUM(x)`: null where every x is null, else their sum.
    let Expr::Ternary { predicate, truthy, falsy } = e else {
        return None;
    };
    let Expr::Agg(AggExpr::Sum(x)) = truthy.as_ref() else { return None };
    let sql_sum = |x: Expr| (x.clone().null_count().lt(x.clone().len()), x.sum());
    if (predicate.as_ref(), falsy.as_ref()) != (&sql_sum(x.as_ref().clone()).0, &Expr::Literal(LiteralValue::untyped_null())) {
        return None;
    }
    let (units, scale) = summand_in_units(x, schema)?;
    let (has_values, sum) = sql_sum(units);
    let none = match scale {
        Some(_) => lit(NULL).cast(DataType::Int64),
        None => falsy.as_ref().clone(),
    };
    Some((when(has_values).then(sum).otherwise(none), scale))
}

/// What `SUM` adds, in units: a held Int32 column as Int64, or a `CASE`
/// choosing between one and 0, with its scale; or a `CASE` whose branches
/// read no held column, with its condition in units, and no scale.
fn summand_in_units(x: &Expr, schema: &Schema) -> Option<(Expr, Option<usize>)> {
    let held32 = |e: &Expr| match e {
        Expr::Column(name) if schema.get(name) == Some(&DataType::Int32) => {
            Some((col(name.clone()).cast(DataType::Int64), Some(held_scale(name, schema)?)))
        }
        _ => None,
    };
    let zero = |e: &Expr| matches!(e, Expr::Literal(v) if v.get_datatype() == DataType::Unknown(UnknownKind::Int(0)));
    match x {
        Expr::Column(_) => held32(x),
        Expr::Ternary { predicate, truthy, falsy } => {
            let p = predicate_in_units(predicate, schema)?;
            match (reads_held(truthy, schema), reads_held(falsy, schema)) {
                (false, false) => Some((
                    Expr::Ternary {
                        predicate: Arc::new(p),
                        truthy: truthy.clone(),
                        falsy: falsy.clone(),
                    },
                    None,
                )),
                (true, false) if zero(falsy) => {
                    let (c, scale) = held32(truthy)?;
                    Some((when(p).then(c).otherwise(lit(0i64)), scale))
                }
                (false, true) if zero(truthy) => {
                    let (c, scale) = held32(falsy)?;
                    Some((when(p).then(lit(0i64)).otherwise(c), scale))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A row-level condition over held money in units: comparisons of held
/// columns, decimal columns of at most 18 digits (their 128-bit units),
/// exact literals and literal multiples of these, their sums and
/// differences, joined by AND, OR and NOT, as 128-bit integers at the
/// finest scale among them; null tests of held columns as they are. What
/// reads no held column is left as it is; None where a part reads one
/// otherwise.
fn predicate_in_units(e: &Expr, schema: &Schema) -> Option<Expr> {
    logical(
        e,
        &Walk {
            schema,
            unheld_as_is: true,
            null_test: |_, _| true,
            compare: |left, op, right, schema| compared(left, op, right, schema, Leaves::Rows),
        },
    )
}

/// `left op right` with both sides as `Summed` of `leaves`, compared as
/// 128-bit integers at the finest scale of the two.
fn compared(left: &Expr, op: Operator, right: &Expr, schema: &Schema, leaves: Leaves) -> Option<Expr> {
    let (l, r) = (Summed::of(left, schema, leaves)?, Summed::of(right, schema, leaves)?);
    if l.leaves() + r.leaves() > MOST_LEAVES {
        return None;
    }
    let scale = l.scale().max(r.scale());
    Some(Expr::BinaryExpr {
        left: Arc::new(l.expr(scale)?),
        op,
        right: Arc::new(r.expr(scale)?),
    })
}

/// What the sides of a comparison in units are made of: a group's sums
/// (`having`) or a row's columns (a `CASE` condition).
#[derive(Clone, Copy, PartialEq)]
enum Leaves {
    Sums,
    Rows,
}

/// A `having` condition over sums of held money (`sum_in_units`) in
/// units: comparisons of sums, their sums and differences, and exact
/// literals and literal multiples of them (`0.1 * SUM(amount)`), joined by
/// AND, OR and NOT, compared as 128-bit integers at the finest scale among
/// them. A comparison that reads no held column is left as it is; None
/// where one reads a held column otherwise.
pub(crate) fn having_in_units(e: &Expr, schema: &Schema) -> Option<Expr> {
    logical(
        e,
        &Walk {
            schema,
            unheld_as_is: true,
            null_test: |_, _| false,
            compare: sums_compared,
        },
    )
}

/// A comparison in `having` (`having_in_units`). Counts whose condition
/// reads money (`SUM(CASE WHEN amount >= ... THEN 1 ELSE 0 END) > 0.2 *
/// COUNT(*)`) are compared as they are, their conditions in units; sums of
/// money in units.
fn sums_compared(left: &Expr, op: Operator, right: &Expr, schema: &Schema) -> Option<Expr> {
    match (counted(left, schema), counted(right, schema)) {
        (Some(l), Some(r)) => Some(Expr::BinaryExpr {
            left: Arc::new(l),
            op,
            right: Arc::new(r),
        }),
        _ => compared(left, op, right, schema, Leaves::Sums),
    }
}

/// `side` with its sums that are counts over conditions on money
/// (`sum_in_units` without a scale) in units, where those are the only
/// parts of it reading held money; None otherwise.
fn counted(side: &Expr, schema: &Schema) -> Option<Expr> {
    let count = |e: &Expr| sum_in_units(e, schema).filter(|(_, scale)| scale.is_none()).map(|(x, _)| x);
    let rest = side.clone().map_expr(|node| match count(&node) {
        Some(_) => lit(0),
        None => node,
    });
    if reads_held(&rest, schema) {
        return None;
    }
    Some(side.clone().map_expr(|node| count(&node).unwrap_or(node)))
}

/// The largest factor a multiplier literal may have in units, and the
/// largest a side may be scaled up by: a sum under 2^63 times both is
/// under 2^113, and nine such terms are far inside 128 bits.
const MOST_MULTIPLIER: u128 = 1_000_000_000;
const MOST_RESCALE: usize = 6;

/// A side of a comparison in 128-bit units: over a group's sums of held
/// money (`having`) or a row's held and decimal columns (a `CASE`
/// condition), with literal multiples and rescaling. `Term` stays apart:
/// the masks compare held Int32 columns as they are, without the casts
/// to 128 bits this needs.
enum Summed {
    /// A sum in Int64 units of this scale (`sum_in_units`), or a row's
    /// held or decimal column in 128-bit units of its scale.
    Sum(Expr, usize),
    /// An exact literal (`Term::of`'s).
    Literal {
        units: i128,
        scale: usize,
    },
    /// A literal times a side: its scales add.
    Times {
        units: i128,
        scale: usize,
        of: Box<Summed>,
    },
    Add(Box<Summed>, Box<Summed>),
    Sub(Box<Summed>, Box<Summed>),
}

impl Summed {
    fn of(e: &Expr, schema: &Schema, leaves: Leaves) -> Option<Summed> {
        match (leaves, e) {
            (Leaves::Sums, _) => {
                if let Some((sum, Some(scale))) = sum_in_units(e, schema) {
                    return Some(Summed::Sum(sum, scale));
                }
            }
            (Leaves::Rows, Expr::Column(name)) => {
                return match schema.get(name)? {
                    DataType::Int32 | DataType::Int64 => {
                        Some(Summed::Sum(col(name.clone()).cast(DataType::Int128), held_scale(name, schema)?))
                    }
                    DataType::Decimal(precision, scale) if *precision <= 18 => Some(Summed::Sum(col(name.clone()).to_physical(), *scale)),
                    _ => None,
                };
            }
            _ => {}
        }
        if let Some(Term::Literal { units, scale }) = Term::of(e, schema) {
            return (units.unsigned_abs() < UNDER).then_some(Summed::Literal { units, scale });
        }
        let Expr::BinaryExpr { left, op, right } = e else { return None };
        match op {
            Operator::Plus => Some(Summed::Add(
                Box::new(Summed::of(left, schema, leaves)?),
                Box::new(Summed::of(right, schema, leaves)?),
            )),
            Operator::Minus => Some(Summed::Sub(
                Box::new(Summed::of(left, schema, leaves)?),
                Box::new(Summed::of(right, schema, leaves)?),
            )),
            Operator::Multiply => {
                let (factor, of) = match (Term::of(left, schema), Term::of(right, schema)) {
                    (Some(Term::Literal { units, scale }), _) => ((units, scale), right),
                    (_, Some(Term::Literal { units, scale })) => ((units, scale), left),
                    _ => return None,
                };
                if factor.0.unsigned_abs() >= MOST_MULTIPLIER {
                    return None;
                }
                Some(Summed::Times {
                    units: factor.0,
                    scale: factor.1,
                    of: Box::new(Summed::of(of, schema, leaves)?),
                })
            }
            _ => None,
        }
    }

    fn leaves(&self) -> usize {
        match self {
            Summed::Sum(..) | Summed::Literal { .. } => 1,
            Summed::Times { of, .. } => of.leaves(),
            Summed::Add(l, r) | Summed::Sub(l, r) => l.leaves() + r.leaves(),
        }
    }

    /// The scale this side is exact at.
    fn scale(&self) -> usize {
        match self {
            Summed::Sum(_, s) | Summed::Literal { scale: s, .. } => *s,
            Summed::Times { scale, of, .. } => scale + of.scale(),
            Summed::Add(l, r) | Summed::Sub(l, r) => l.scale().max(r.scale()),
        }
    }

    /// This side as Int128 units of 10^-`to` (`to` at least its scale).
    fn expr(&self, to: usize) -> Option<Expr> {
        let up = to.checked_sub(self.scale())?;
        if up > MOST_RESCALE {
            return None;
        }
        let int128 = |v: i128| lit(Scalar::new(DataType::Int128, AnyValue::Int128(v)));
        Some(match self {
            Summed::Sum(sum, s) => sum.clone().cast(DataType::Int128) * int128(10i128.pow(u32::try_from(to - s).ok()?)),
            Summed::Literal { units, scale } => int128(rescale(*units, *scale, to)?),
            Summed::Times { units, scale, of } => of.expr(to - scale)? * int128(*units),
            Summed::Add(l, r) => l.expr(to)? + r.expr(to)?,
            Summed::Sub(l, r) => l.expr(to)? - r.expr(to)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::held::{as_read, hold};

    /// Held `fee` and `expected_rate_fee` (fen), `fee_diff` and
    /// `amount_fen`, with nulls and values at both ends of 32 bits.
    fn held() -> DataFrame {
        let fee = [Some(150), Some(100), None, Some(i64::from(i32::MAX)), Some(-1), Some(0), Some(1)];
        let rate = [Some(50), Some(0), Some(10), Some(i64::from(i32::MIN)), None, Some(1), Some(0)];
        let diff = [Some(2), Some(1), Some(0), Some(-1), Some(-2), None, Some(101)];
        DataFrame::new(
            fee.len(),
            vec![
                hold("fee", fee.len(), |i| fee[i]),
                hold("expected_rate_fee", rate.len(), |i| rate[i]),
                hold("fee_diff", diff.len(), |i| diff[i]),
                // Held, but read as its own units (Int64), not as yuan.
                hold("amount_fen", fee.len(), |i| fee[i]),
            ],
        )
        .unwrap()
    }

    fn kept(df: DataFrame, e: Expr) -> Vec<Option<bool>> {
        let out = df.lazy().select([e.alias("k")]).collect().unwrap();
        let k = out.column("k").unwrap().bool().unwrap().clone();
        (0..k.len()).map(|i| k.get(i)).collect()
    }

    fn condition(sql: &str) -> Expr {
        polars::sql::sql_expr(sql).unwrap()
    }

    #[test]
    fn money_compared_in_units_keeps_the_rows_the_decimals_keep() {
        for sql in [
            "fee - expected_rate_fee >= 1",
            "fee - expected_rate_fee >= CAST('1.00' AS DECIMAL(3, 2))",
            "fee_diff > CAST('0.01' AS DECIMAL(2, 2)) OR fee_diff < 0 - CAST('0.01' AS DECIMAL(2, 2))",
            "fee >= 0 AND fee + expected_rate_fee < 21474837",
            "fee = expected_rate_fee + CAST('0.5' AS DECIMAL(1, 1))",
            "fee <> 1",
            // A literal past 32 bits (3,000,000,000 fen) against Int32 fen.
            "fee < 30000000 AND expected_rate_fee > -30000000",
            "expected_rate_fee IS NOT NULL",
            "fee IS NULL OR NOT (fee_diff IS NOT NULL)",
        ] {
            let e = condition(sql);
            let units = in_units(&e, held().schema()).unwrap_or_else(|| panic!("{sql} is not rewritten: {e:?}"));
            let mut read = held();
            as_read(&mut read, |_| true).unwrap();
            assert_eq!(kept(held(), units), kept(read, e), "{sql}");
        }
    }

    #[test]
    fn what_is_not_exact_in_units_is_left_as_it_is() {
        for sql in [
            // More decimals than fen.
            "fee > CAST('0.005' AS DECIMAL(3, 3))",
            // A product.
            "fee > 2 * expected_rate_fee",
            // A held column rules read as its units, not as yuan.
            "amount_fen > 1",
            // A column the frame does not have.
            "amount > 1",
            // A function.
            "ABS(fee) > 1",
            // A literal past the held values' bound (10^19 fen).
            "fee < 100000000000000000",
        ] {
            assert!(in_units(&condition(sql), held().schema()).is_none(), "{sql}");
        }
        // A decimal column that is not held is compared as it is.
        let mut decimals = held();
        as_read(&mut decimals, |_| true).unwrap();
        assert!(in_units(&condition("fee > 1"), decimals.schema()).is_none());
    }

    /// Groups `g` of held `amount` and `fee` (fen), with a group of nulls
    /// only and values at both ends of 32 bits, and a refund flag.
    fn groups() -> DataFrame {
        let amount = [
            Some(100_000),
            Some(5),
            None,
            Some(i64::from(i32::MAX)),
            Some(i64::from(i32::MAX)),
            None,
            Some(-7),
            Some(1),
        ];
        let fee = [Some(10), None, Some(3), Some(1), Some(i64::from(i32::MIN)), None, Some(0), Some(2)];
        DataFrame::new(
            amount.len(),
            vec![
                Column::new("g".into(), [1, 1, 1, 2, 2, 3, 4, 4]),
                Column::new(
                    "txn_type".into(),
                    [
                        "refund", "purchase", "refund", "purchase", "purchase", "refund", "refund", "purchase",
                    ],
                ),
                hold("amount", amount.len(), |i| amount[i]),
                hold("fee", fee.len(), |i| fee[i]),
                // A limit the applications hold as a decimal (not held).
                crate::input::read::decimal_from_scaled(
                    Int64Chunked::from_iter_options(
                        "limit".into(),
                        [
                            Some(105_000),
                            Some(5),
                            Some(1),
                            None,
                            Some(i64::from(i32::MAX)),
                            Some(9),
                            Some(-7),
                            Some(2),
                        ]
                        .into_iter(),
                    ),
                    2,
                )
                .unwrap()
                .into_column(),
            ],
        )
        .unwrap()
    }

    /// `e` per group of `df`, as text (decimals and integers alike).
    fn per_group(df: DataFrame, e: Expr) -> Vec<String> {
        let out = df
            .lazy()
            .group_by([col("g")])
            .agg([e.alias("v")])
            .sort(["g"], Default::default())
            .collect()
            .unwrap();
        let v = out.column("v").unwrap();
        (0..v.len()).map(|i| v.get(i).unwrap().to_string()).collect()
    }

    #[test]
    fn sums_of_held_money_in_units_are_the_sums_of_the_decimals() {
        for sql in [
            "SUM(amount)",
            "SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END)",
            "SUM(CASE WHEN txn_type = 'refund' THEN 0 ELSE fee END)",
        ] {
            let e = condition(sql);
            let (units, scale) = sum_in_units(&e, groups().schema()).unwrap_or_else(|| panic!("{sql} is not rewritten: {e:?}"));
            assert_eq!(scale, Some(2));
            let mut summed = groups()
                .lazy()
                .group_by([col("g")])
                .agg([units.alias("v")])
                .sort(["g"], Default::default())
                .collect()
                .unwrap();
            crate::checks::held::measures_as_read(&mut summed, &[("v".to_string(), 2)]).unwrap();
            let mut read = groups();
            as_read(&mut read, |_| true).unwrap();
            let decimals = per_group(read, e);
            let v = summed.column("v").unwrap();
            let ours: Vec<String> = (0..v.len()).map(|i| v.get(i).unwrap().to_string()).collect();
            assert_eq!(ours, decimals, "{sql}");
        }
        // Counts whose condition compares held money with a decimal column
        // and literals: the same counts (not money: no scale).
        for sql in [
            "SUM(CASE WHEN limit IS NOT NULL AND amount >= CAST('0.95' AS DECIMAL(2, 2)) * limit AND amount < limit THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN (txn_type = 'refund' AND amount >= CAST('0.95' AS DECIMAL(2, 2)) * 500) OR NOT (fee < limit) THEN 1 ELSE 0 END)",
        ] {
            let e = condition(sql);
            let (units, scale) = sum_in_units(&e, groups().schema()).unwrap_or_else(|| panic!("{sql} is not rewritten: {e:?}"));
            assert_eq!(scale, None);
            let mut read = groups();
            as_read(&mut read, |_| true).unwrap();
            assert_eq!(per_group(groups(), units), per_group(read, e), "{sql}");
        }
        // A group of nulls sums to null, as in SQL.
        let (units, _) = sum_in_units(&condition("SUM(amount)"), groups().schema()).unwrap();
        assert_eq!(per_group(groups(), units)[2], "null");
        {}
    }

    #[test]
    fn conditions_over_sums_in_units_keep_the_groups_the_decimals_keep() {
        for sql in [
            "SUM(amount) >= 1000",
            "SUM(amount) >= CAST('1000.05' AS DECIMAL(6, 2))",
            "SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END) > CAST('0.1' AS DECIMAL(1, 1)) * SUM(amount)",
            "SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END) * 10 > SUM(amount) OR SUM(fee) < 0",
            "COUNT(*) >= 2 AND SUM(amount) - SUM(fee) > CAST('0.005' AS DECIMAL(3, 3))",
            "NOT (SUM(fee) + 1 = SUM(amount))",
            // Compared at a scale of 5: both sides scaled up.
            "CAST('0.001' AS DECIMAL(3, 3)) * SUM(amount) > 4294967",
            // A sum of money chosen by a condition on money.
            "SUM(CASE WHEN fee > 1 THEN amount ELSE 0 END) > 1",
            // A count of amounts near a limit against a share of the rows.
            "COUNT(*) >= 2 AND SUM(CASE WHEN amount >= CAST('0.95' AS DECIMAL(2, 2)) * limit AND amount < limit THEN 1 ELSE 0 END) > CAST('0.2' AS DECIMAL(1, 1)) * COUNT(*)",
        ] {
            let e = condition(sql);
            let units = having_in_units(&e, groups().schema()).unwrap_or_else(|| panic!("{sql} is not rewritten: {e:?}"));
            let mut read = groups();
            as_read(&mut read, |_| true).unwrap();
            assert_eq!(per_group(groups(), units), per_group(read, e), "{sql}");
        }
        // What reads no held column is left as it is.
        let count = condition("COUNT(*) >= 2");
        assert_eq!(having_in_units(&count, groups().schema()), Some(count));
        for sql in [
            // Not a sum.
            "MEDIAN(amount) > 1",
            "AVG(amount) > 1",
            "MAX(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END) > 1",
            // A product of sums, and a multiplier past the bound.
            "SUM(amount) * SUM(fee) > 1",
            "SUM(amount) > 1000000000 * SUM(fee)",
            // A CASE whose other branch is not 0.
            "SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE fee END) > 1",
            // A sum of a row-level product.
            "SUM(amount * 2) > 1",
            // A count whose condition reads money through a function, and
            // a sum of money beside a count in one side.
            "SUM(CASE WHEN ABS(amount) > 1 THEN 1 ELSE 0 END) > 1",
            "SUM(amount) > 100 * SUM(CASE WHEN amount > 1 THEN 1 ELSE 0 END)",
            // Compared at a scale past the bound (8: both sides scaled up
            // by more than 10^6).
            "CAST('0.000001' AS DECIMAL(6, 6)) * SUM(amount) > 42949672",
        ] {
            assert!(having_in_units(&condition(sql), groups().schema()).is_none(), "{sql}");
        }
    }
}
