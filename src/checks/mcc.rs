//! Whether a merchant category code exists, independently of the MCC
//! table in use: an acquirer may replace `mcc.csv` with a table of its own
//! that lacks codes, and a valid code missing from it is that table's gap
//! (reported once, as a warning), not the merchant's error.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The codes of the shipped table (every ISO 18245 code, and the Visa and
/// Mastercard lists; see rules/reference/README.md).
const SHIPPED: &str = include_str!("../../rules/reference/mcc.csv");

fn codes() -> &'static HashSet<&'static str> {
    static CODES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    CODES.get_or_init(|| SHIPPED.lines().skip(1).filter_map(|l| l.split(',').next()).collect())
}

/// The shipped table's fee class of a code (`standard`, `discount`,
/// `waived`), if the code is in it.
pub fn shipped_fee_class(code: &str) -> Option<&'static str> {
    SHIPPED.lines().skip(1).find_map(|l| {
        let mut f = l.split(',');
        (f.next() == Some(code)).then(|| f.nth(1)).flatten()
    })
}

/// A four-digit code of ISO 18245 or a card scheme's list.
pub fn is_valid(code: &str) -> bool {
    codes().contains(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_the_standard_are_valid_and_others_not() {
        for c in ["5331", "5712", "5813", "5814", "5411", "8062", "3000", "7011"] {
            assert!(is_valid(c), "{c}");
        }
        for c in ["9999", "0000", "541", "54111", "ABCD", ""] {
            assert!(!is_valid(c), "{c}");
        }
        assert!(codes().len() > 900);
        assert_eq!(shipped_fee_class("8062"), Some("waived"));
        assert_eq!(shipped_fee_class("5411"), Some("discount"));
        assert_eq!(shipped_fee_class("5812"), Some("standard"));
        assert_eq!(shipped_fee_class("9999"), None);
    }
}
