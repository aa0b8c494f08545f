//! 居民身份证号码 (GB 11643-1999): MOD 11-2 check character, embedded birth
//! date, and the validity term the law gives for the age at issue.

use chrono::{Datelike, NaiveDate};

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// 17 digits then a digit or X (lower-case x accepted).
pub(crate) fn format_ok(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) && (b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x')
}

pub fn check_char(first17: &str) -> Option<char> {
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    Some(CHECK[(sum % 11) as usize] as char)
}

pub fn is_valid(id: &str) -> bool {
    format_ok(id) && check_char(&id[..17]) == id[17..].chars().next().map(|c| c.to_ascii_uppercase())
}

/// The embedded birth date, if it is a real calendar date.
pub(crate) fn birth_date(id: &str) -> Option<NaiveDate> {
    if !format_ok(id) {
        return None;
    }
    let y = id[6..10].parse().ok()?;
    let m = id[10..12].parse().ok()?;
    let d = id[12..14].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Whole years of age at a date.
pub fn age_at(birth: NaiveDate, at: NaiveDate) -> i32 {
    let mut age = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// Upgrade a 15-digit first-generation number to 18 digits.
pub(crate) fn upgrade15(id: &str) -> Option<String> {
    if id.len() != 15 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first17 = format!("{}19{}", &id[..6], &id[6..]);
    let c = check_char(&first17)?;
    Some(format!("{first17}{c}"))
}

/// The validity term in years that 居民身份证法 第五条 gives for an age at
/// issue; None means 长期 (no expiry).
pub fn term_years(age_at_issue: i32) -> Option<i32> {
    match age_at_issue {
        a if a < 16 => Some(5),
        16..=25 => Some(10),
        26..=45 => Some(20),
        _ => None,
    }
}

/// Whether an ID's validity term fits the holder's age at issue. `end`
/// None means permanent. Leap-day issues may end a day either side.
pub(crate) fn term_consistent(birth: NaiveDate, start: NaiveDate, end: Option<NaiveDate>) -> bool {
    if start < NaiveDate::from_ymd_opt(1984, 1, 1).expect("valid date") {
        return false;
    }
    match (term_years(age_at(birth, start)), end) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some(years), Some(end)) => {
            let expected = start
                .with_year(start.year() + years)
                .unwrap_or_else(|| NaiveDate::from_ymd_opt(start.year() + years, 3, 1).expect("valid date"));
            (end - expected).num_days().abs() <= 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn worked_example_passes() {
        assert!(is_valid("11010519491231002X"));
        assert_eq!(check_char("11010519491231002"), Some('X'));
        assert_eq!(birth_date("11010519491231002X"), Some(d(1949, 12, 31)));
    }

    #[test]
    fn other_known_numbers_pass() {
        for id in [
            "440524188001010014",
            "34052419800101001X",
            "440308199901101512",
            "34052419800101001x",
        ] {
            assert!(is_valid(id), "{id}");
        }
    }

    #[test]
    fn wrong_check_fails() {
        assert!(!is_valid("110105194912310021"));
        assert!(!is_valid("11010519491231002"));
        assert!(!is_valid("1101051949123100AX"));
    }

    #[test]
    fn impossible_birth_date_is_none() {
        // 1990-02-30 does not exist, whatever the check character says.
        let first17 = "11010519900230001";
        let id = format!("{first17}{}", check_char(first17).unwrap());
        assert!(is_valid(&id));
        assert_eq!(birth_date(&id), None);
    }

    #[test]
    fn legacy_upgrade() {
        assert_eq!(upgrade15("610104620927690").as_deref(), Some("610104196209276908"));
    }

    #[test]
    fn ages() {
        assert_eq!(age_at(d(1949, 12, 31), d(2010, 5, 1)), 60);
        assert_eq!(age_at(d(2008, 11, 27), d(2026, 11, 26)), 17);
        assert_eq!(age_at(d(2008, 11, 26), d(2026, 11, 26)), 18);
    }

    #[test]
    fn validity_terms() {
        // Aged 60 at issue: must be permanent.
        assert!(term_consistent(d(1949, 12, 31), d(2010, 5, 1), None));
        assert!(!term_consistent(d(1949, 12, 31), d(2010, 5, 1), Some(d(2030, 5, 1))));
        // Aged 17 at issue: ten years.
        assert!(term_consistent(d(1999, 1, 10), d(2016, 3, 4), Some(d(2026, 3, 4))));
        assert!(!term_consistent(d(1999, 1, 10), d(2016, 3, 4), Some(d(2036, 3, 4))));
        // Permanent below 46 is invalid.
        assert!(!term_consistent(d(1999, 1, 10), d(2016, 3, 4), None));
        // Issued before cards existed.
        assert!(!term_consistent(d(1949, 12, 31), d(1983, 5, 1), None));
    }
}
