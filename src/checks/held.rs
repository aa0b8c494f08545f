//! Money, rates and fen counts held as narrow integers between
//! preparation and the rules, and given to each rule in the type it reads.
//!
//! A polars decimal is 16 bytes a row (0.55 has no 64-bit one). Prepared
//! transactions held `amount` and `fee` as decimals, `amount_fen` beside
//! `amount` as Int64, and six derived money and rate columns as Int64: 950
//! MB at 10M rows, all of it in the scan's peak. Each is now held as the
//! integer units of what rules read (fen, millionths), in Int32 where every
//! value of the run fits (a POS amount up to 21,474,836.47 yuan), else in
//! Int64, and `amount_fen` is the same buffer as `amount`. A rule that
//! reads one gets it as it was (`as_read`): a Decimal(18, scale) in yuan,
//! or Int64 for `amount_fen`. Only the rows and columns a rule reads are
//! widened, and only while it runs.
//!
//! Frames of one input may hold a column at different widths (a partition
//! whose amounts fit in 32 bits beside one whose amounts do not):
//! `input::align` widens both to the wider when it stacks them.

use std::collections::BTreeSet;

use polars::prelude::*;

/// What a rule reads a held column as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadAs {
    /// An exact Decimal(18, scale): integer units of 10^-scale.
    Decimal(usize),
    /// Int64, as the units themselves (`amount_fen`).
    Int64,
}

/// The columns held as integer units, and what rules read each as. Only
/// integer columns of these names are held ones: an input's own money
/// (the fees' `amount`) is parsed as a decimal and stays one.
pub(crate) const HELD: &[(&str, ReadAs)] = &[
    ("amount", ReadAs::Decimal(2)),
    ("fee", ReadAs::Decimal(2)),
    ("amount_fen", ReadAs::Int64),
    ("expected_fee", ReadAs::Decimal(2)),
    ("expected_rate_fee", ReadAs::Decimal(2)),
    ("expected_fixed_fee", ReadAs::Decimal(2)),
    ("contract_rate_applied", ReadAs::Decimal(6)),
    ("fee_diff", ReadAs::Decimal(2)),
    ("original_amount", ReadAs::Decimal(2)),
];

/// What rules read `name` as, if it is a held column's name.
pub(crate) fn read_as(name: &str) -> Option<ReadAs> {
    HELD.iter().find(|(held, _)| *held == name).map(|(_, r)| *r)
}

/// A held column of `n` rows whose row `i` is `units(i)`: Int32 where
/// every value fits, else Int64. Exact either way; the width only decides
/// the memory. Built at its width (`units` is read twice), not as Int64
/// and then cast: that was a third copy of each column while it was made.
pub(crate) fn hold(name: &str, n: usize, units: impl Fn(usize) -> Option<i64>) -> Column {
    debug_assert!(read_as(name).is_some(), "{name} is not a held column");
    if (0..n).all(|i| units(i).is_none_or(|v| i32::try_from(v).is_ok())) {
        // Every value fits, so no cast loses one.
        Int32Chunked::from_iter_options(name.into(), (0..n).map(|i| units(i).map(|v| v as i32))).into_column()
    } else {
        Int64Chunked::from_iter_options(name.into(), (0..n).map(units)).into_column()
    }
}

/// The money or rate column `c` held as `name`: a held column as it is
/// (its very buffer), a decimal's units at the width `hold` would give,
/// cast column-wise (where `hold` takes a value at a time, from a vector
/// of options made first). None for another type, or a unit beyond 64
/// bits.
pub(crate) fn held_as(c: &Column, name: &str) -> Option<PolarsResult<Column>> {
    match c.dtype() {
        DataType::Int32 | DataType::Int64 => Some(Ok(c.clone().with_name(name.into()))),
        DataType::Decimal(..) => {
            let units = units(c)?;
            let fits = |v: Option<i64>| v.is_none_or(|v| i32::try_from(v).is_ok());
            // Every value fits when the least and the largest do: the cast
            // loses none.
            let held = if fits(units.min()) && fits(units.max()) {
                units.cast(&DataType::Int32)
            } else {
                Ok(units.into_series())
            };
            Some(held.map(|s| s.with_name(name.into()).into_column()))
        }
        _ => None,
    }
}

/// The held columns of `df` that `wanted` names, as rules read them
/// (`ReadAs`). Columns not held as integers (decimals already, or
/// another type) are left as they are.
pub(crate) fn as_read(df: &mut DataFrame, wanted: impl Fn(&str) -> bool) -> PolarsResult<()> {
    for (name, read) in HELD {
        if !wanted(name) {
            continue;
        }
        let Ok(c) = df.column(name) else { continue };
        let widened = match (c.dtype(), read) {
            (DataType::Int32 | DataType::Int64, ReadAs::Decimal(scale)) => {
                // Straight to 128 bits, whose buffer the decimal takes as
                // it is: no 64-bit copy in between.
                let wide = c.cast(&DataType::Int128)?.as_materialized_series().i128()?.clone();
                wide.into_decimal(18, *scale)?.into_series().into_column()
            }
            (DataType::Int32, ReadAs::Int64) => c.cast(&DataType::Int64)?,
            _ => continue,
        };
        df.with_column(widened)?;
    }
    Ok(())
}

/// As `as_read`, for the names in `names` (all held columns for None).
pub(crate) fn as_read_named(df: &mut DataFrame, names: Option<&BTreeSet<String>>) -> PolarsResult<()> {
    as_read(df, |c| names.is_none_or(|n| n.contains(c)))
}

/// A rule's hits (`plan::build`'s output, a few rows) with what it left
/// held read as rules read it: the held columns among the hits' rows, and
/// `sum_amount` where the plan summed held fen (`plan::builtin_sums`), as
/// yuan with two decimals, as the sum of decimals was.
pub(crate) fn hits_as_read(hits: &mut DataFrame) -> PolarsResult<()> {
    as_read(hits, |_| true)?;
    if let Ok(c) = hits.column(SUM_AMOUNT) {
        if matches!(c.dtype(), DataType::Int32 | DataType::Int64) {
            let wide = c.cast(&DataType::Int128)?.as_materialized_series().i128()?.clone();
            hits.with_column(wide.into_decimal(38, 2)?.into_series().into_column())?;
        }
    }
    Ok(())
}

/// The measures a plan summed in units (`plan::measures_in_units`: name
/// and scale) among a rule's hits, read as the decimals they sum: the sum
/// of decimals of that scale, which polars makes 38 digits wide.
pub(crate) fn measures_as_read(hits: &mut DataFrame, summed: &[(String, usize)]) -> PolarsResult<()> {
    for (name, scale) in summed {
        if let Ok(c) = hits.column(name) {
            if matches!(c.dtype(), DataType::Int32 | DataType::Int64) {
                let wide = c.cast(&DataType::Int128)?.as_materialized_series().i128()?.clone();
                hits.with_column(wide.into_decimal(38, *scale)?.into_series().into_column())?;
            }
        }
    }
    Ok(())
}

/// The built-in measure that sums `amount` (`plan::BUILTIN_MEASURES`).
const SUM_AMOUNT: &str = "sum_amount";

/// The integer units of a money or rate column, held or not: a decimal's
/// (fen for money, millionths for rates) or a held column's. None for
/// another type, or a decimal unit beyond 64 bits (the readers allow 18
/// digits, so none is).
pub(crate) fn units(c: &Column) -> Option<Int64Chunked> {
    let s = c.as_materialized_series();
    match s.dtype() {
        DataType::Decimal(_, _) => {
            let wide = s.decimal().ok()?.physical().clone().into_series();
            // Strict: a unit beyond 64 bits is an error, not a null.
            wide.strict_cast(&DataType::Int64).ok()?.i64().ok().cloned()
        }
        DataType::Int32 | DataType::Int64 => s.cast(&DataType::Int64).ok()?.i64().ok().cloned(),
        _ => None,
    }
}

/// A reader of a money or rate column's units row by row, without the
/// copy `units` makes of a held Int32 column (85 MB at 10M rows, in the
/// derived columns' peak, for the few refunds whose original is read).
pub(crate) fn unit_reader(c: &Column) -> Option<Box<dyn Fn(usize) -> Option<i64> + Send + Sync + '_>> {
    let s = c.as_materialized_series();
    Some(match s.dtype() {
        DataType::Int32 => {
            let ca = s.i32().ok()?;
            Box::new(move |i| ca.get(i).map(i64::from))
        }
        DataType::Int64 => {
            let ca = s.i64().ok()?;
            Box::new(move |i| ca.get(i))
        }
        DataType::Decimal(_, _) => {
            let ca = s.decimal().ok()?.physical();
            Box::new(move |i| ca.get(i).and_then(|v| i64::try_from(v).ok()))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::read::decimal_from_scaled;

    fn held(name: &str, v: &[Option<i64>]) -> Column {
        hold(name, v.len(), |i| v[i])
    }

    #[test]
    fn decimals_are_held_column_wise_as_hold_holds_them_and_held_columns_as_they_are() {
        for v in [
            vec![Some(i64::from(i32::MAX)), None, Some(i64::from(i32::MIN))],
            vec![Some(i64::from(i32::MAX) + 1), Some(-3)],
            vec![Some(i64::from(i32::MIN) - 1), None],
            vec![None, None],
            vec![],
        ] {
            let units = Int64Chunked::from_iter_options("x".into(), v.iter().copied());
            let decimal = decimal_from_scaled(units, 2).unwrap().into_column();
            let ours = held_as(&decimal, "fee").unwrap().unwrap();
            let theirs = held("fee", &v);
            assert_eq!((ours.name().as_str(), ours.dtype()), ("fee", theirs.dtype()), "{v:?}");
            assert!(ours.equals_missing(&theirs), "{v:?}");
            let again = held_as(&theirs, "amount_fen").unwrap().unwrap();
            assert_eq!(again.name().as_str(), "amount_fen");
            assert!(again.equals_missing(&theirs));
        }
        assert!(held_as(&Column::new("x".into(), ["a"]), "fee").is_none());
    }

    #[test]
    fn a_column_is_held_in_32_bits_only_where_every_value_fits() {
        let small = held("fee", &[Some(i64::from(i32::MAX)), None, Some(i64::from(i32::MIN))]);
        assert_eq!(small.dtype(), &DataType::Int32);
        let big = held("fee", &[Some(i64::from(i32::MAX) + 1), Some(-3)]);
        assert_eq!(big.dtype(), &DataType::Int64);
        let low = held("fee", &[Some(i64::from(i32::MIN) - 1)]);
        assert_eq!(low.dtype(), &DataType::Int64);
        assert_eq!(held("fee", &[None, None]).dtype(), &DataType::Int32);
        // Held values are the units, whatever the width.
        assert_eq!(units(&big).unwrap().to_vec(), [Some(i64::from(i32::MAX) + 1), Some(-3)]);
        let read = unit_reader(&big).unwrap();
        assert_eq!([read(0), read(1)], [Some(i64::from(i32::MAX) + 1), Some(-3)]);
        let read = unit_reader(&small).unwrap();
        assert_eq!(
            [read(0), read(1), read(2)],
            [Some(i64::from(i32::MAX)), None, Some(i64::from(i32::MIN))]
        );
        assert_eq!(
            units(&small).unwrap().to_vec(),
            [Some(i64::from(i32::MAX)), None, Some(i64::from(i32::MIN))]
        );
    }

    #[test]
    fn held_columns_read_as_what_rules_read_at_either_width() {
        let v = [Some(12_345i64), None, Some(-7), Some(0)];
        let want =
            |scale: usize, name: &str| decimal_from_scaled(Int64Chunked::from_iter_options(name.into(), v.iter().copied()), scale).unwrap();
        for big in [false, true] {
            // The same values held wide: a fifth row past 32 bits.
            let with = |name: &str| {
                let mut all = v.to_vec();
                if big {
                    all.push(Some(1 << 40));
                } else {
                    all.push(None);
                }
                held(name, &all)
            };
            let mut df = DataFrame::new(
                5,
                vec![
                    with("amount"),
                    with("contract_rate_applied"),
                    with("amount_fen"),
                    with("expected_fee"),
                ],
            )
            .unwrap();
            let named: BTreeSet<String> = ["amount", "contract_rate_applied", "amount_fen"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            as_read_named(&mut df, Some(&named)).unwrap();
            let head = |name: &str| df.column(name).unwrap().as_materialized_series().head(Some(4));
            assert!(head("amount").equals_missing(&want(2, "amount")), "{big}");
            assert!(head("contract_rate_applied").equals_missing(&want(6, "contract_rate_applied")));
            assert_eq!(df.column("contract_rate_applied").unwrap().dtype(), &DataType::Decimal(18, 6));
            assert_eq!(df.column("amount_fen").unwrap().dtype(), &DataType::Int64);
            assert_eq!(units(df.column("amount_fen").unwrap()).unwrap().head(Some(4)).to_vec(), v);
            // Not named: still held.
            assert!(matches!(
                df.column("expected_fee").unwrap().dtype(),
                DataType::Int32 | DataType::Int64
            ));
            // Every one for None; read ones are left alone.
            as_read_named(&mut df, None).unwrap();
            assert_eq!(df.column("expected_fee").unwrap().dtype(), want(2, "x").dtype());
            let before = df.clone();
            as_read_named(&mut df, None).unwrap();
            assert!(df.equals_missing(&before));
            // A decimal's units are its fen.
            assert_eq!(units(df.column("amount").unwrap()).unwrap().head(Some(4)).to_vec(), v);
            let read = unit_reader(df.column("amount").unwrap()).unwrap();
            assert_eq!((0..4).map(&read).collect::<Vec<_>>(), v);
        }
    }

    #[test]
    fn frames_holding_a_column_at_different_widths_stack_exactly() {
        // A partition whose fees fit 32 bits, then one whose fees do not,
        // then the first again: no value is cut to fit the first's width.
        let small = || DataFrame::new(2, vec![held("fee", &[Some(5), None])]).unwrap();
        let big = DataFrame::new(1, vec![held("fee", &[Some(1 << 40)])]).unwrap();
        let mut all = small();
        for next in [big, small()] {
            let aligned = crate::input::align(&mut all, next).unwrap();
            all.vstack_mut_owned(aligned).unwrap();
        }
        assert_eq!(all.column("fee").unwrap().dtype(), &DataType::Int64);
        assert_eq!(
            units(all.column("fee").unwrap()).unwrap().to_vec(),
            [Some(5), None, Some(1 << 40), Some(5), None]
        );
    }

    #[test]
    fn hits_read_held_money_and_a_sum_of_fen_in_yuan() {
        let mut hits = DataFrame::new(
            2,
            vec![
                held("amount", &[Some(12_345), None]),
                Column::new("sum_amount".into(), [Some(1_000_000_001i64), Some(-5)]),
                Column::new("count".into(), [3i64, 4]),
            ],
        )
        .unwrap();
        hits_as_read(&mut hits).unwrap();
        // Decimals of scale 2 whose units are the fen.
        let fen = |name: &str| -> Vec<Option<i128>> {
            let s = hits.column(name).unwrap().as_materialized_series().clone();
            assert!(matches!(s.dtype(), DataType::Decimal(_, 2)), "{name}: {}", s.dtype());
            s.decimal().unwrap().physical().iter().collect()
        };
        assert_eq!(fen("amount"), [Some(12_345), None]);
        assert_eq!(fen("sum_amount"), [Some(1_000_000_001), Some(-5)]);
        assert_eq!(hits.column("count").unwrap().dtype(), &DataType::Int64);
        // A sum already in yuan is left as it is.
        let before = hits.clone();
        hits_as_read(&mut hits).unwrap();
        assert!(hits.equals_missing(&before));
    }

    #[test]
    fn a_column_of_another_name_or_type_is_not_widened() {
        let mut df = df!(
            "txn_count" => [1i64, 2],
            "fee" => ["1.00", "2.00"],
        )
        .unwrap();
        let before = df.clone();
        as_read_named(&mut df, None).unwrap();
        assert!(df.equals_missing(&before));
        assert!(units(df.column("fee").unwrap()).is_none());
    }
}
