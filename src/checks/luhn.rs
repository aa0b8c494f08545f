//! Luhn check for bank card numbers. Real Chinese cards that fail it exist,
//! so rules using it should stay at low severity.

pub fn is_valid(number: &str) -> bool {
    let digits: Vec<u32> = match number.chars().map(|c| c.to_digit(10)).collect::<Option<Vec<_>>>() {
        Some(d) if d.len() >= 12 && d.len() <= 19 => d,
        _ => return false,
    };
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The check digit that makes `payload` + digit pass.
pub fn check_digit(payload: &str) -> Option<u32> {
    (0..10).find(|d| is_valid(&format!("{payload}{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example() {
        assert!(is_valid("6225768888888888"));
        assert_eq!(check_digit("622576888888888"), Some(8));
    }

    #[test]
    fn real_cards_that_fail() {
        assert!(!is_valid("6214832018989180"));
        assert!(!is_valid("60142870670591508"));
        assert!(!is_valid("6225768888888889"));
    }

    #[test]
    fn non_digits_and_lengths() {
        assert!(!is_valid("6225-7688-8888-8888"));
        assert!(!is_valid("42"));
    }
}
