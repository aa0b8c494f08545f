//! Parquet columns that already hold the contract's type (money as a
//! decimal or an integer, times as datetimes, dates as dates, coordinates
//! as floats) are taken as they are, checked as a parsed cell is checked,
//! instead of being cast to text and parsed back.
//!
//! A value the check refuses (a decimal with a third decimal place, a
//! negative amount, a year the text parser would not read) goes through
//! the text parser after all, as the text a cast gives, so it is rejected
//! with the same reason as before and as in a CSV file. Columns the
//! mapping changes (value maps, formats, kinds of row) always take the
//! text path.

use polars::prelude::*;

use super::mapping::InputMapping;
use super::values::{AmountUnit, MAX_FEN, MAX_MILLIONTHS};
use crate::contract::{ColType, ColumnSpec, Sign};

/// One cell of a typed column.
pub(crate) enum TypedCell {
    Null,
    /// Fen, millionths, milliseconds or a plain integer, by the column's type.
    Int(i64),
    Float(f64),
    Day(i32),
    /// (date, permanent), as `values::parse_expiry` gives them.
    Expiry(Option<i32>, bool),
    /// Not taken as it is: this text goes through the parser.
    Text(String),
}

/// The cells of `s` if it can be taken as it is for `spec`; None: the
/// column takes the text path.
pub(crate) fn typed_cells(spec: &ColumnSpec, s: &Series, mapping: &InputMapping) -> Option<Vec<TypedCell>> {
    if !mapping.rows.is_empty() || mapping.values.contains_key(spec.name) {
        return None;
    }
    let dtype = s.dtype().clone();
    let integer = dtype.is_integer();
    // (scale of the column's integers, the contract's scale, sign allowed, largest)
    let scaled = |scale: u32, target: u32, sign: Sign, max: i64| -> Option<Vec<TypedCell>> {
        let ints: Vec<Option<i128>> = match &dtype {
            DataType::Decimal(_, _) => s.decimal().ok()?.physical().iter().collect(),
            _ => s.cast(&DataType::Int128).ok()?.i128().ok()?.iter().collect(),
        };
        Some(
            ints.into_iter()
                .enumerate()
                .map(|(row, v)| match v {
                    None => TypedCell::Null,
                    Some(v) => {
                        let exact = if scale <= target {
                            v.checked_mul(10i128.pow(target - scale))
                        } else {
                            let d = 10i128.pow(scale - target);
                            (v % d == 0).then_some(v / d)
                        };
                        match exact.and_then(|x| i64::try_from(x).ok()) {
                            Some(x) if x.abs() <= max && (sign == Sign::Any || x >= 0) => TypedCell::Int(x),
                            _ => fallback(s, row),
                        }
                    }
                })
                .collect(),
        )
    };
    let decimal_scale = match dtype {
        DataType::Decimal(_, scale) => Some(scale as u32),
        _ => None,
    };
    match spec.ty {
        ColType::Money(sign) => match (decimal_scale, mapping.amount_unit) {
            (Some(scale), AmountUnit::Yuan) => scaled(scale, 2, sign, MAX_FEN),
            (None, AmountUnit::Yuan) if integer => scaled(0, 2, sign, MAX_FEN),
            (None, AmountUnit::Fen) if integer => scaled(0, 0, sign, MAX_FEN),
            _ => None,
        },
        ColType::Rate | ColType::Number => {
            let sign = if spec.ty == ColType::Rate { Sign::Positive } else { Sign::Any };
            match decimal_scale {
                Some(scale) => scaled(scale, 6, sign, MAX_MILLIONTHS),
                None if integer => scaled(0, 6, sign, MAX_MILLIONTHS),
                None => None,
            }
        }
        ColType::Int if integer => scaled(0, 0, Sign::Any, i64::MAX),
        ColType::Coord if dtype.is_float() => {
            let f = s.cast(&DataType::Float64).ok()?;
            Some(
                f.f64()
                    .ok()?
                    .iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => TypedCell::Null,
                        Some(v) if v.is_finite() => TypedCell::Float(v),
                        Some(_) => fallback(s, row),
                    })
                    .collect(),
            )
        }
        ColType::DateTime if mapping.datetime_format.is_none() => {
            let DataType::Datetime(unit, None) = dtype else { return None };
            let per_ms = match unit {
                TimeUnit::Milliseconds => 1,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1_000_000,
            };
            let phys = s.datetime().ok()?.physical().clone();
            Some(
                phys.iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => TypedCell::Null,
                        // The text path reads the first 19 characters of
                        // the cast (whole seconds): the same, as numbers.
                        Some(v) => {
                            let secs = v.div_euclid(per_ms * 1_000);
                            if readable_day(secs.div_euclid(86_400)) {
                                TypedCell::Int(secs * 1_000)
                            } else {
                                fallback(s, row)
                            }
                        }
                    })
                    .collect(),
            )
        }
        ColType::Date | ColType::Expiry if mapping.date_format.is_none() && dtype == DataType::Date => {
            let phys = s.date().ok()?.physical().clone();
            Some(
                phys.iter()
                    .enumerate()
                    .map(|(row, v)| match v {
                        None => TypedCell::Null,
                        Some(d) if !readable_day(d as i64) => fallback(s, row),
                        Some(d) => {
                            let date = super::values::date_from_days(d);
                            if spec.ty == ColType::Date {
                                TypedCell::Day(d)
                            } else if chrono::Datelike::year(&date) >= 2099 {
                                // "Never" written as a far-future date.
                                TypedCell::Expiry(None, true)
                            } else {
                                TypedCell::Expiry(Some(d), false)
                            }
                        }
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Parsed rows (`read::ParsedFile::df`) as a frame of the contract's
/// types with the contract's column names, as a warehouse would write them
/// to Parquet: an expiry's "never" becomes the far-future date the reader
/// takes for it; posaudit's own columns (`_src`, `_line`, `_permanent`)
/// are left out. For benchmarks and tests of typed reading.
pub fn contract_frame(df: DataFrame) -> PolarsResult<DataFrame> {
    let mut df = df;
    let flags: Vec<String> = df
        .get_column_names()
        .iter()
        .filter(|c| c.ends_with("_permanent"))
        .map(|c| c.to_string())
        .collect();
    for flag in &flags {
        let date = flag.trim_end_matches("_permanent");
        let never = chrono::NaiveDate::from_ymd_opt(2099, 12, 31).expect("a date");
        df = df
            .lazy()
            .with_column(
                when(col(flag.as_str()).eq(lit(true)))
                    .then(lit(never).cast(DataType::Date))
                    .otherwise(col(date))
                    .alias(date),
            )
            .collect()?;
    }
    let keep: Vec<PlSmallStr> = df
        .get_column_names()
        .into_iter()
        .filter(|c| !c.starts_with('_') && !c.ends_with("_permanent"))
        .cloned()
        .collect();
    df.select(keep)
}

/// Days since 1970 whose dates the text parser reads as the cast writes
/// them: years of four digits, 1000 to 9999.
fn readable_day(days: i64) -> bool {
    let day = |y| chrono::NaiveDate::from_ymd_opt(y, 1, 1).map(|d| super::values::days_since_epoch(d) as i64);
    matches!((day(1000), day(10000)), (Some(lo), Some(hi)) if (lo..hi).contains(&days))
}

/// A value as the text path would see it: the cast of that one value to
/// text (a datetime cut to its first 19 characters).
fn fallback(s: &Series, row: usize) -> TypedCell {
    let one = s.slice(row as i64, 1);
    let text = one
        .cast(&DataType::String)
        .ok()
        .and_then(|t| t.str().ok().and_then(|c| c.get(0).map(str::to_string)))
        .unwrap_or_default();
    let text = match s.dtype() {
        DataType::Datetime(_, _) => text.get(..19).unwrap_or(&text).to_string(),
        _ => text,
    };
    TypedCell::Text(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::InputKind;

    fn spec(name: &str) -> &'static ColumnSpec {
        InputKind::Transactions.column(name).unwrap()
    }

    fn ints(cells: &[TypedCell]) -> Vec<String> {
        cells
            .iter()
            .map(|c| match c {
                TypedCell::Null => "null".to_string(),
                TypedCell::Int(v) => v.to_string(),
                TypedCell::Float(v) => format!("{v}f"),
                TypedCell::Day(d) => format!("{d}d"),
                TypedCell::Expiry(d, p) => format!("{d:?}/{p}"),
                TypedCell::Text(t) => format!("text {t}"),
            })
            .collect()
    }

    #[test]
    fn decimals_become_fen_and_what_does_not_fit_goes_to_the_parser_as_text() {
        let amounts = Int128Chunked::from_vec("amount".into(), vec![12_300, 12_345, -5_000])
            .into_decimal_unchecked(18, 3)
            .into_series();
        let m = InputMapping::default();
        let cells = typed_cells(spec("amount"), &amounts, &m).expect("a decimal amount is typed");
        assert_eq!(ints(&cells), ["1230", "text 12.345", "text -5.000"]);
        // The fee may be negative; integers in yuan are scaled.
        let fees = Int64Chunked::from_vec("fee".into(), vec![-1, 2]).into_series();
        assert_eq!(ints(&typed_cells(spec("fee"), &fees, &m).unwrap()), ["-100", "200"]);
        // Text columns, value maps and kinds of row keep the text path.
        let text = StringChunked::from_iter_values("amount".into(), ["1.00"].into_iter()).into_series();
        assert!(typed_cells(spec("amount"), &text, &m).is_none());
        let mapped = InputMapping {
            values: [("amount".to_string(), Default::default())].into_iter().collect(),
            ..Default::default()
        };
        assert!(typed_cells(spec("amount"), &amounts, &mapped).is_none());
    }

    #[test]
    fn datetimes_are_cut_to_whole_seconds_as_the_text_path_cuts_them() {
        let t = Int64Chunked::from_vec("txn_time".into(), vec![1_790_000_000_500, -1])
            .into_datetime(TimeUnit::Milliseconds, None)
            .into_series();
        let cells = typed_cells(spec("txn_time"), &t, &InputMapping::default()).unwrap();
        assert_eq!(ints(&cells), ["1790000000000", "-1000"]);
        let with_format = InputMapping {
            datetime_format: Some("%Y%m%d%H%M%S".into()),
            ..Default::default()
        };
        assert!(typed_cells(spec("txn_time"), &t, &with_format).is_none());
    }
}
