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

/// The values of a typed column, in the vectors the row parser builds
/// (`read::Builder`): fen, millionths, milliseconds or plain integers by
/// the column's type; floats; days since 1970; (date, permanent).
pub(crate) enum TypedValues {
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Date(Vec<Option<i32>>),
    Expiry(Vec<Option<i32>>, Vec<Option<bool>>),
}

/// A column taken as it is, but for the rows in `fallback`: their values
/// (null in `values`) are not taken as they are and go through the text
/// parser as the given text.
pub(crate) struct TypedColumn {
    pub values: TypedValues,
    pub fallback: Vec<(usize, String)>,
}

/// The values of `s` if it can be taken as it is for `spec`; None: the
/// column takes the text path.
pub(crate) fn typed_column(spec: &ColumnSpec, s: &Series, mapping: &InputMapping) -> Option<TypedColumn> {
    if !mapping.rows.is_empty() || mapping.values.contains_key(spec.name) {
        return None;
    }
    let dtype = s.dtype().clone();
    let integer = dtype.is_integer();
    let mut fallback = Vec::new();
    // (scale of the column's integers, the contract's scale, sign allowed, largest)
    let mut scaled = |scale: u32, target: u32, sign: Sign, max: i64| -> Option<TypedValues> {
        let ints: Vec<Option<i128>> = match &dtype {
            DataType::Decimal(_, _) => s.decimal().ok()?.physical().iter().collect(),
            _ => s.cast(&DataType::Int128).ok()?.i128().ok()?.iter().collect(),
        };
        let values = ints
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                let v = v?;
                let exact = if scale <= target {
                    v.checked_mul(10i128.pow(target - scale))
                } else {
                    let d = 10i128.pow(scale - target);
                    (v % d == 0).then_some(v / d)
                };
                match exact.and_then(|x| i64::try_from(x).ok()) {
                    Some(x) if x.abs() <= max && (sign == Sign::Any || x >= 0) => Some(x),
                    _ => {
                        fallback.push((row, text_of(s, row)));
                        None
                    }
                }
            })
            .collect();
        Some(TypedValues::I64(values))
    };
    let decimal_scale = match dtype {
        DataType::Decimal(_, scale) => Some(scale as u32),
        _ => None,
    };
    let values = match spec.ty {
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
            let values = f
                .f64()
                .ok()?
                .iter()
                .enumerate()
                .map(|(row, v)| match v? {
                    v if v.is_finite() => Some(v),
                    _ => {
                        fallback.push((row, text_of(s, row)));
                        None
                    }
                })
                .collect();
            Some(TypedValues::F64(values))
        }
        ColType::DateTime if mapping.datetime_format.is_none() => {
            let DataType::Datetime(unit, None) = dtype else { return None };
            let per_ms = match unit {
                TimeUnit::Milliseconds => 1,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1_000_000,
            };
            let phys = s.datetime().ok()?.physical().clone();
            let values = phys
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    // The text path reads the first 19 characters of the
                    // cast (whole seconds): the same, as numbers.
                    let secs = v?.div_euclid(per_ms * 1_000);
                    if readable_day(secs.div_euclid(86_400)) {
                        Some(secs * 1_000)
                    } else {
                        fallback.push((row, text_of(s, row)));
                        None
                    }
                })
                .collect();
            Some(TypedValues::I64(values))
        }
        ColType::Date | ColType::Expiry if mapping.date_format.is_none() && dtype == DataType::Date => {
            let phys = s.date().ok()?.physical().clone();
            let expiry = spec.ty == ColType::Expiry;
            let mut days = Vec::with_capacity(phys.len());
            let mut never = Vec::with_capacity(if expiry { phys.len() } else { 0 });
            for (row, v) in phys.iter().enumerate() {
                let (day, permanent) = match v {
                    None => (None, None),
                    Some(d) if !readable_day(d as i64) => {
                        fallback.push((row, text_of(s, row)));
                        (None, None)
                    }
                    // "Never" written as a far-future date (an expiry only).
                    Some(d) if expiry && chrono::Datelike::year(&super::values::date_from_days(d)) >= 2099 => (None, Some(true)),
                    Some(d) => (Some(d), Some(false)),
                };
                days.push(day);
                if expiry {
                    never.push(permanent);
                }
            }
            Some(match spec.ty {
                ColType::Date => TypedValues::Date(days),
                _ => TypedValues::Expiry(days, never),
            })
        }
        _ => None,
    }?;
    Some(TypedColumn { values, fallback })
}

/// Parsed rows (`read::ParsedFile::df`) as a frame of the contract's
/// types with the contract's column names, as a warehouse would write them
/// to Parquet: an expiry's "never" becomes the far-future date the reader
/// takes for it; posaudit's own columns (`_src`, `_line`, `_permanent`)
/// are left out, coded columns are text again. For benchmarks and tests
/// of typed reading.
pub fn contract_frame(df: DataFrame) -> PolarsResult<DataFrame> {
    // Codes are one run's (`categories`): a warehouse writes text.
    let mut df = super::categories::widen(df)?;
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
fn text_of(s: &Series, row: usize) -> String {
    let one = s.slice(row as i64, 1);
    let text = one
        .cast(&DataType::String)
        .ok()
        .and_then(|t| t.str().ok().and_then(|c| c.get(0).map(str::to_string)))
        .unwrap_or_default();
    match s.dtype() {
        DataType::Datetime(_, _) => text.get(..19).unwrap_or(&text).to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::InputKind;

    fn spec(name: &str) -> &'static ColumnSpec {
        InputKind::Transactions.column(name).unwrap()
    }

    /// The column's values as text, a fallback row as "text" and its text.
    fn ints(c: &TypedColumn) -> Vec<String> {
        let show = |v: Option<String>| v.unwrap_or_else(|| "null".to_string());
        let mut shown: Vec<String> = match &c.values {
            TypedValues::I64(v) => v.iter().map(|x| show(x.map(|x| x.to_string()))).collect(),
            TypedValues::F64(v) => v.iter().map(|x| show(x.map(|x| format!("{x}f")))).collect(),
            TypedValues::Date(v) => v.iter().map(|x| show(x.map(|x| format!("{x}d")))).collect(),
            TypedValues::Expiry(d, p) => d.iter().zip(p).map(|(d, p)| format!("{d:?}/{p:?}")).collect(),
        };
        for (row, text) in &c.fallback {
            shown[*row] = format!("text {text}");
        }
        shown
    }

    #[test]
    fn decimals_become_fen_and_what_does_not_fit_goes_to_the_parser_as_text() {
        let amounts = Int128Chunked::from_vec("amount".into(), vec![12_300, 12_345, -5_000])
            .into_decimal_unchecked(18, 3)
            .into_series();
        let m = InputMapping::default();
        let column = typed_column(spec("amount"), &amounts, &m).expect("a decimal amount is typed");
        assert_eq!(ints(&column), ["1230", "text 12.345", "text -5.000"]);
        // The fee may be negative; integers in yuan are scaled.
        let fees = Int64Chunked::from_vec("fee".into(), vec![-1, 2]).into_series();
        assert_eq!(ints(&typed_column(spec("fee"), &fees, &m).unwrap()), ["-100", "200"]);
        // Text columns, value maps and kinds of row keep the text path.
        let text = StringChunked::from_iter_values("amount".into(), ["1.00"].into_iter()).into_series();
        assert!(typed_column(spec("amount"), &text, &m).is_none());
        let mapped = InputMapping {
            values: [("amount".to_string(), Default::default())].into_iter().collect(),
            ..Default::default()
        };
        assert!(typed_column(spec("amount"), &amounts, &mapped).is_none());
    }

    #[test]
    fn datetimes_are_cut_to_whole_seconds_as_the_text_path_cuts_them() {
        let t = Int64Chunked::from_vec("txn_time".into(), vec![1_790_000_000_500, -1])
            .into_datetime(TimeUnit::Milliseconds, None)
            .into_series();
        let column = typed_column(spec("txn_time"), &t, &InputMapping::default()).unwrap();
        assert_eq!(ints(&column), ["1790000000000", "-1000"]);
        let with_format = InputMapping {
            datetime_format: Some("%Y%m%d%H%M%S".into()),
            ..Default::default()
        };
        assert!(typed_column(spec("txn_time"), &t, &with_format).is_none());
    }

    #[test]
    fn a_far_future_date_is_never_for_an_expiry_and_a_date_for_a_date() {
        let app = |name: &str| InputKind::Applications.column(name).unwrap();
        let day = |y, m, d| super::super::values::days_since_epoch(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let dates = Int32Chunked::from_iter_options("d".into(), [Some(day(2099, 12, 31)), Some(day(2030, 1, 2)), None].into_iter())
            .into_date()
            .into_series();
        let m = InputMapping::default();
        let expiry = typed_column(app("license_expiry"), &dates, &m).unwrap();
        assert_eq!(
            ints(&expiry),
            [
                "None/Some(true)".to_string(),
                format!("Some({})/Some(false)", day(2030, 1, 2)),
                "None/None".to_string()
            ]
        );
        let start = typed_column(app("legal_rep_id_start"), &dates, &m).unwrap();
        assert_eq!(
            ints(&start),
            [
                format!("{}d", day(2099, 12, 31)),
                format!("{}d", day(2030, 1, 2)),
                "null".to_string()
            ]
        );
    }
}
