//! Masking of card, account and ID numbers. Every value that leaves the
//! program (findings, messages, rejected rows) passes through here.

use crate::input::contract::{sensitivity, Sensitive};

/// Mask a value of the named column if the column is sensitive.
pub fn mask_value(column: &str, value: &str) -> String {
    match sensitivity(column) {
        Sensitive::No => value.to_string(),
        Sensitive::IdNumber => mask_keep(value, 4, 4),
        Sensitive::CardNumber => mask_card(value),
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
pub fn mask_keep(value: &str, head: usize, tail: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
