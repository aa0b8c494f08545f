//! Masking of card, account and ID numbers. Every value that leaves the
//! program (findings, messages, rejected rows, errors) passes through here.
//!
//! Two layers. By column: values of columns the contract marks sensitive
//! are masked whatever they look like. By shape ([`scrub`]): any text, from
//! any column, measure, message or error, has its ID-shaped and
//! card-shaped numbers (and mobile numbers) masked, so a swapped header, a rule measure such as
//! `MAX(legal_rep_id_number)` or a library error quoting a value cannot
//! carry a full number out.

use crate::contract::{sensitivity, Sensitive};

/// Mask a value of the named column if the column is sensitive.
pub(crate) fn mask_value(column: &str, value: &str) -> String {
    match sensitivity(column) {
        Sensitive::No => value.to_string(),
        Sensitive::IdNumber => mask_keep(value, 4, 4),
        Sensitive::CardNumber => mask_card(value),
        Sensitive::Phone => mask_keep(value, 3, 4),
    }
}

/// Card and account numbers: first 6 and last 4 (PCI DSS), fewer for short
/// numbers so that at least half is hidden.
pub fn mask_card(value: &str) -> String {
    let n = value.chars().count();
    if n >= 16 {
        mask_keep(value, 6, 4)
    } else if n >= 10 {
        mask_keep(value, 3, 3)
    } else {
        mask_keep(value, 0, 2)
    }
}

/// Keep `head` leading and `tail` trailing characters, star the rest.
pub(crate) fn mask_keep(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    let (head, tail) = if head + tail >= n {
        (0, n.min(tail).min(n / 2))
    } else {
        (head, tail)
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// Mask every number in `text` that is shaped like a resident ID number
/// (18 characters, 17 digits and a digit or X, with a real birth date in
/// positions 7-14, check character right or not) or like a card or bank
/// account number (a run of 16 to 25 digits). A number counts only as a
/// whole word: digits inside a longer run of letters and digits (a
/// transaction id `T2026...`, a hash) are left alone.
pub fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let word = &text[start..i];
        let masked = if id_shaped(word) {
            Some(mask_keep(word, 4, 4))
        } else if mobile_shaped(word) {
            Some(mask_keep(word, 3, 4))
        } else if (16..=25).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_digit()) {
            Some(mask_card(word))
        } else {
            None
        };
        if let Some(m) = masked {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[last..start]);
            o.push_str(&m);
            last = i;
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[last..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

/// A mainland mobile number: 11 digits, `1` and then 3 to 9.
fn mobile_shaped(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
}

fn id_shaped(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x') {
        return false;
    }
    let num = |r: std::ops::Range<usize>| w[r].parse::<u32>().unwrap_or(0);
    let year = num(6..10);
    (1900..=2100).contains(&year) && chrono::NaiveDate::from_ymd_opt(year as i32, num(10..12), num(12..14)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_id_and_card_shapes_anywhere() {
        assert_eq!(scrub("max = 11010519491231002X."), "max = 1101**********002X.");
        // A wrong check character is still somebody's ID number.
        assert_eq!(scrub("110105194912310021"), "1101**********0021");
        assert_eq!(scrub("卡号6225768888888888有误"), "卡号622576******8888有误");
        assert_eq!(scrub("acct 75666568022820706;"), "acct 756665*******0706;");
        assert_eq!(scrub("tel 13832096173"), "tel 138****6173");
        // Not numbers of a person: merchant ids, txn ids, hashes, amounts.
        for keep in [
            "822100058120001",
            "T202610010000000235",
            "h9239ff8d89ba4767",
            "1234.56",
            "622588******1234",
            "2026-11-20",
        ] {
            assert_eq!(scrub(keep), keep);
        }
        assert!(matches!(scrub("nothing here"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn id_numbers_keep_four_and_four() {
        assert_eq!(mask_value("legal_rep_id_number", "11010519491231002X"), "1101**********002X");
    }

    #[test]
    fn card_numbers_keep_six_and_four() {
        assert_eq!(mask_value("settlement_account_number", "6225768888888888"), "622576******8888");
        assert_eq!(mask_value("app_settlement_account_number", "6225768888888888"), "622576******8888");
        assert_eq!(mask_value("card_no_masked", "622588******1234"), "622588******1234");
    }

    #[test]
    fn short_values_are_mostly_hidden() {
        assert_eq!(mask_card("1234"), "**34");
        assert_eq!(mask_keep("ab", 4, 4), "*b");
    }

    #[test]
    fn other_columns_pass_through() {
        assert_eq!(mask_value("merchant_id", "822581058120001"), "822581058120001");
    }
}
