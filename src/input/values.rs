//! Parsing one cell of text into its typed value. Every function returns a
//! reason on failure; the caller turns it into a rejected row.

use chrono::{NaiveDate, NaiveDateTime};

/// The unit money columns are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmountUnit {
    #[default]
    Yuan,
    Fen,
}

/// Strip what spreadsheet exports wrap around values: surrounding blanks,
/// WeChat's leading backtick, a leading apostrophe and `="..."`.
pub fn clean(raw: &str) -> &str {
    // Most values start and end with a letter or digit: nothing to strip
    // (none of the blanks, `=`, backtick or apostrophe below is one).
    // Trimming every value anyway was 7% of the read's time at 10M rows.
    if let (Some(first), Some(last)) = (raw.as_bytes().first(), raw.as_bytes().last()) {
        if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
            return raw;
        }
    }
    strip_wrappers(raw)
}

/// `clean` without its shortcut.
fn strip_wrappers(raw: &str) -> &str {
    let mut s = raw.trim();
    if let Some(inner) = s.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        s = inner;
    }
    s = s.trim_start_matches(['`', '\'']);
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}')
}

/// The largest amount in fen a rule can see: money reaches rules as
/// Decimal(18, 2), so 16 digits of yuan and fen in all.
pub(crate) const MAX_FEN: i64 = 10i64.pow(16) - 1;
/// The largest rate or number in millionths: Decimal(18, 6).
pub(crate) const MAX_MILLIONTHS: i64 = 10i64.pow(18) - 1;

/// Why a value does not parse. The message is the reason a rejected row
/// reports (rejected.csv), so its wording is part of the output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is ambiguous: a comma is accepted only between groups of three digits (1,234.56); write decimals with a point")]
    AmbiguousComma(String),
    #[error("`{0}` is not a whole number of fen")]
    NotFen(String),
    #[error("`{0}` is not an amount in yuan with at most 2 decimals")]
    NotYuan(String),
    #[error("`{0}` is beyond the largest amount posaudit reads (99,999,999,999,999.99 yuan)")]
    AmountTooLarge(String),
    #[error("`{0}` is not a rate (a fraction such as 0.0060, or 0.60%)")]
    NotRate(String),
    #[error("`{0}` is too large for a rate")]
    RateTooLarge(String),
    #[error("`{0}` is not a number with at most 6 decimals")]
    NotNumber(String),
    #[error("`{0}` is beyond the largest number posaudit reads (999,999,999,999.999999)")]
    NumberTooLarge(String),
    #[error("`{0}` is not a coordinate")]
    NotCoordinate(String),
    #[error("`{0}` is not a whole number")]
    NotWhole(String),
    #[error("`{value}` is not a date in the format `{format}`")]
    NotDateIn { value: String, format: String },
    #[error("`{0}` is not a date (expected YYYY-MM-DD)")]
    NotDate(String),
    #[error("`{value}` is not a date-time in the format `{format}`")]
    NotDateTimeIn { value: String, format: String },
    #[error("`{0}` is not a date-time (expected YYYY-MM-DD HH:MM:SS)")]
    NotDateTime(String),
    #[error("`{0}` is neither a date nor a no-expiry marker such as 长期 or permanent")]
    NotExpiry(String),
}

/// Remove thousands separators, but only where they are that: `1,234.56`
/// and `12,345,678` pass; `12,34` (a decimal comma) or `1,23,4` are
/// ambiguous and refused, since reading them as 1234 would be a silent
/// 100-fold error.
pub(crate) fn strip_thousands(s: &str) -> Result<std::borrow::Cow<'_, str>, ValueError> {
    if !s.contains(',') {
        return Ok(std::borrow::Cow::Borrowed(s));
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let int_part = body.split('.').next().unwrap_or("");
    let groups: Vec<&str> = int_part.split(',').collect();
    let grouped = body.matches(',').count() == groups.len() - 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    if grouped {
        Ok(std::borrow::Cow::Owned(s.replace(',', "")))
    } else {
        Err(ValueError::AmbiguousComma(s.to_string()))
    }
}

/// Money to integer fen. Yuan may carry at most two decimals; fen must be whole.
pub fn parse_money(s: &str, unit: AmountUnit) -> Result<i64, ValueError> {
    let s = strip_thousands(s)?;
    let too_large = || ValueError::AmountTooLarge(s.to_string());
    let v = match unit {
        AmountUnit::Fen => s.parse::<i64>().map_err(|_| ValueError::NotFen(s.to_string()))?,
        AmountUnit::Yuan => {
            let fixed = parse_fixed(&s, 2).ok_or_else(|| ValueError::NotYuan(s.to_string()))?;
            i64::try_from(fixed).map_err(|_| too_large())?
        }
    };
    if v.abs() > MAX_FEN {
        return Err(too_large());
    }
    Ok(v)
}

/// A fraction to integer millionths (0.0060 -> 6000). `0.60%` is accepted.
pub(crate) fn parse_rate(s: &str) -> Result<i64, ValueError> {
    let (num, scale) = match s.strip_suffix('%') {
        Some(p) => (p.trim(), 4),
        None => (s, 6),
    };
    let v = parse_fixed(num, scale).ok_or_else(|| ValueError::NotRate(s.to_string()))?;
    i64::try_from(v)
        .ok()
        .filter(|v| v.abs() <= MAX_MILLIONTHS)
        .ok_or_else(|| ValueError::RateTooLarge(s.to_string()))
}

/// A decimal number to integer millionths (rates or amounts in fee_changes).
pub(crate) fn parse_number6(s: &str) -> Result<i64, ValueError> {
    let v = parse_fixed(&strip_thousands(s)?, 6).ok_or_else(|| ValueError::NotNumber(s.to_string()))?;
    i64::try_from(v)
        .ok()
        .filter(|v| v.abs() <= MAX_MILLIONTHS)
        .ok_or_else(|| ValueError::NumberTooLarge(s.to_string()))
}

/// Parse a decimal string exactly into an integer scaled by 10^scale.
/// Returns None on anything that is not plain decimal notation or has more
/// significant decimals than `scale` (trailing zeros beyond it are fine).
pub(crate) fn parse_fixed(s: &str, scale: u32) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_trim = frac_part.trim_end_matches('0');
    if frac_trim.len() > scale as usize || int_part.len() > 30 {
        return None;
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v * 10 + (b - b'0') as i128;
    }
    let mut frac: i128 = 0;
    for b in frac_trim.bytes() {
        frac = frac * 10 + (b - b'0') as i128;
    }
    frac *= 10i128.pow(scale - frac_trim.len() as u32);
    let v = v * 10i128.pow(scale) + frac;
    Some(if neg { -v } else { v })
}

pub(crate) fn parse_coord(s: &str) -> Result<f64, ValueError> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| ValueError::NotCoordinate(s.to_string()))
}

pub(crate) fn parse_int(s: &str) -> Result<i64, ValueError> {
    s.parse::<i64>().map_err(|_| ValueError::NotWhole(s.to_string()))
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!(),
};

pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - EPOCH).num_days() as i32
}

pub(crate) fn date_from_days(days: i32) -> NaiveDate {
    EPOCH + chrono::Duration::days(days as i64)
}

pub(crate) fn millis_of(dt: NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_millis()
}

pub(crate) fn datetime_from_millis(ms: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc())
        .unwrap_or_default()
}

/// Date formats tried in order when no format is configured.
const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%Y%m%d", "%Y.%m.%d", "%Y/%m/%d", "%Y年%m月%d日"];

pub fn parse_date(s: &str, format: Option<&str>) -> Result<NaiveDate, ValueError> {
    if let Some(f) = format {
        return NaiveDate::parse_from_str(s, f).map_err(|_| ValueError::NotDateIn {
            value: s.to_string(),
            format: f.to_string(),
        });
    }
    DATE_FORMATS
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        .ok_or_else(|| ValueError::NotDate(s.to_string()))
}

/// Datetime in milliseconds. The contract's `YYYY-MM-DD HH:MM:SS` takes a
/// hand-written fast path: chrono's generic parser dominates a scan's read
/// time otherwise.
pub(crate) fn parse_datetime(s: &str, format: Option<&str>) -> Result<i64, ValueError> {
    if let Some(f) = format {
        return NaiveDateTime::parse_from_str(s, f)
            .map(millis_of)
            .map_err(|_| ValueError::NotDateTimeIn {
                value: s.to_string(),
                format: f.to_string(),
            });
    }
    fast_datetime(s)
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y/%m/%d %H:%M:%S").ok())
        .map(millis_of)
        .ok_or_else(|| ValueError::NotDateTime(s.to_string()))
}

fn fast_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter()
            .try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
}

/// A validity end date, or "no expiry".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Date(NaiveDate),
    Permanent,
}

/// The "no expiry" spellings seen in real exports (domain research §3.5).
const PERMANENT: &[&str] = &[
    "长期",
    "永久",
    "永久有效",
    "长期有效",
    "permanent",
    "forever",
    "long",
    "00000000",
    "99991231",
];

pub(crate) fn parse_expiry(s: &str, format: Option<&str>) -> Result<Expiry, ValueError> {
    if PERMANENT.iter().any(|p| p.eq_ignore_ascii_case(s)) {
        return Ok(Expiry::Permanent);
    }
    let d = parse_date(s, format).map_err(|_| ValueError::NotExpiry(s.to_string()))?;
    // Systems write "never" as a far-future date (2099-12-30, 4000-01-01).
    if chrono::Datelike::year(&d) >= 2099 {
        return Ok(Expiry::Permanent);
    }
    Ok(Expiry::Date(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact() {
        assert_eq!(parse_money("123.45", AmountUnit::Yuan), Ok(12345));
        assert_eq!(parse_money("0.1", AmountUnit::Yuan), Ok(10));
        assert_eq!(parse_money("500", AmountUnit::Yuan), Ok(50000));
        assert_eq!(parse_money("1,000.00", AmountUnit::Yuan), Ok(100000));
        assert_eq!(parse_money("12.340", AmountUnit::Yuan), Ok(1234));
        assert!(parse_money("12.345", AmountUnit::Yuan).is_err());
        assert!(parse_money("abc", AmountUnit::Yuan).is_err());
        assert!(parse_money("1e5", AmountUnit::Yuan).is_err());
        assert_eq!(parse_money("12345", AmountUnit::Fen), Ok(12345));
        assert!(parse_money("123.4", AmountUnit::Fen).is_err());
        assert_eq!(parse_money("-3.00", AmountUnit::Yuan), Ok(-300));
    }

    #[test]
    fn commas_are_thousands_separators_or_refused() {
        assert_eq!(parse_money("1,234.00", AmountUnit::Yuan), Ok(123400));
        assert_eq!(parse_money("12,345,678", AmountUnit::Yuan), Ok(1234567800));
        assert_eq!(parse_money("-1,234", AmountUnit::Fen), Ok(-1234));
        for bad in ["12,34", "1,23,456", "1234,567", ",123", "1,234,56", "1,2345.00", "1,234.5,6"] {
            let e = parse_money(bad, AmountUnit::Yuan).unwrap_err();
            assert!(matches!(e, ValueError::AmbiguousComma(_) | ValueError::NotYuan(_)), "{bad}: {e}");
        }
        assert!(parse_number6("0,5").is_err());
    }

    #[test]
    fn amounts_beyond_the_decimal_range_are_refused() {
        assert_eq!(parse_money("99999999999999.99", AmountUnit::Yuan), Ok(MAX_FEN));
        assert!(parse_money("100000000000000.00", AmountUnit::Yuan)
            .unwrap_err()
            .to_string()
            .contains("largest"));
        assert!(parse_money("99999999999999999999", AmountUnit::Yuan).is_err());
        assert!(parse_money("10000000000000000", AmountUnit::Fen).is_err());
        assert!(parse_number6("1000000000000").is_err());
        assert!(parse_rate("100000000000000%").is_err());
    }

    #[test]
    fn rates_take_fractions_and_percent() {
        assert_eq!(parse_rate("0.0060"), Ok(6000));
        assert_eq!(parse_rate("0.60%"), Ok(6000));
        assert_eq!(parse_rate("0.0038"), Ok(3800));
        assert!(parse_rate("0.0000001").is_err());
    }

    #[test]
    fn datetimes_parse_with_and_without_format() {
        let ms = parse_datetime("2026-11-26 13:45:10", None).unwrap();
        assert_eq!(datetime_from_millis(ms).to_string(), "2026-11-26 13:45:10");
        let ms2 = parse_datetime("20261126134510", Some("%Y%m%d%H%M%S")).unwrap();
        assert_eq!(ms, ms2);
        assert!(parse_datetime("2026-02-30 10:00:00", None).is_err());
        assert!(parse_datetime("yesterday", None).is_err());
    }

    #[test]
    fn expiry_sentinels() {
        assert_eq!(parse_expiry("长期", None), Ok(Expiry::Permanent));
        assert_eq!(parse_expiry("permanent", None), Ok(Expiry::Permanent));
        assert_eq!(parse_expiry("2099-12-30", None), Ok(Expiry::Permanent));
        assert_eq!(
            parse_expiry("2030-05-01", None),
            Ok(Expiry::Date(NaiveDate::from_ymd_opt(2030, 5, 1).unwrap()))
        );
        assert!(parse_expiry("soon", None).is_err());
    }

    #[test]
    fn cleaning_strips_export_wrappers() {
        assert_eq!(clean("`4200001234"), "4200001234");
        assert_eq!(clean("=\"00123\""), "00123");
        assert_eq!(clean("  x \u{3000}"), "x");
        assert_eq!(clean("a\u{3000}"), "a");
    }

    proptest::proptest! {
        #[test]
        fn cleaning_with_its_shortcut_strips_what_the_whole_path_strips(
            s in "[a-zA-Z0-9 =\"`'\t\u{b}\u{3000}\u{a0}é店.-]{0,6}"
        ) {
            proptest::prop_assert_eq!(clean(&s), strip_wrappers(&s));
        }
    }
}
