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

use std::sync::Arc;

use polars::prelude::*;

use crate::checks::held::{read_as, ReadAs};
use crate::input::values::parse_fixed;

/// `part` over the held columns of `schema` in their units, or None where
/// it is not only what this module rewrites (above).
pub(crate) fn in_units(part: &Expr, schema: &Schema) -> Option<Expr> {
    let (left, op, right) = match part {
        Expr::BinaryExpr { left, op, right } => (left, op, right),
        // `a <> b` in SQL is `NOT (a = b)` here.
        Expr::Function {
            input,
            function: FunctionExpr::Boolean(BooleanFunction::Not),
        } if input.len() == 1 => return Some(in_units(&input[0], schema)?.not()),
        // SQL's NOT casts its operand to Boolean first.
        Expr::Cast {
            expr,
            dtype: dtype @ DataTypeExpr::Literal(DataType::Boolean),
            options,
        } => {
            return Some(Expr::Cast {
                expr: Arc::new(in_units(expr, schema)?),
                dtype: dtype.clone(),
                options: *options,
            })
        }
        // Whether a held column has a value is the same in either form.
        Expr::Function {
            input,
            function: FunctionExpr::Boolean(BooleanFunction::IsNull | BooleanFunction::IsNotNull),
        } if matches!(input.as_slice(), [Expr::Column(_)]) && Term::of(&input[0], schema).is_some() => return Some(part.clone()),
        _ => return None,
    };
    match op {
        Operator::And | Operator::LogicalAnd | Operator::Or | Operator::LogicalOr => Some(Expr::BinaryExpr {
            left: Arc::new(in_units(left, schema)?),
            op: *op,
            right: Arc::new(in_units(right, schema)?),
        }),
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
            let (l, r) = (Term::of(left, schema)?, Term::of(right, schema)?);
            // The held columns compared, and their one scale.
            let mut scales = Vec::new();
            l.scales(&mut scales);
            r.scales(&mut scales);
            // Each held value is under 10^18 units (Decimal(18, _)), and
            // so is each literal (`Term::expr`): a sum of a few is far
            // inside 64 bits.
            if l.leaves() + r.leaves() > MOST_LEAVES {
                return None;
            }
            let scale = *scales.first()?;
            if scales.iter().any(|s| *s != scale) {
                return None;
            }
            Some(Expr::BinaryExpr {
                left: Arc::new(l.expr(scale, true)?),
                op: *op,
                right: Arc::new(r.expr(scale, true)?),
            })
        }
        _ => None,
    }
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
}
