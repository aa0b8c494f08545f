//! 统一社会信用代码 (GB 32100-2015): format and check character, and the
//! inner 组织机构代码 check (GB 11714).

const CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn value(c: char) -> Option<u32> {
    CHARSET.find(c).map(|i| i as u32)
}

/// 18 characters from the 31-character set, a valid first character and
/// digits in the region part (positions 3-8).
pub(crate) fn format_ok(code: &str) -> bool {
    let chars: Vec<char> = code.chars().collect();
    chars.len() == 18
        && chars.iter().all(|c| value(*c).is_some())
        && (chars[0].is_ascii_digit() && chars[0] != '0' || matches!(chars[0], 'A' | 'N' | 'Y'))
        && chars[2..8].iter().all(|c| c.is_ascii_digit())
}

/// The check character that the first 17 characters call for.
pub fn check_char(first17: &str) -> Option<char> {
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += value(c)? * w;
    }
    let r = (31 - sum % 31) % 31;
    CHARSET.chars().nth(r as usize)
}

/// Format and check character both right.
pub fn is_valid(code: &str) -> bool {
    format_ok(code) && check_char(&code[..17]) == code.chars().nth(17)
}

/// GB 11714 check of the 9-character 主体标识码 (positions 9-17).
pub fn org_code_ok(code9: &str) -> bool {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let chars: Vec<char> = code9.chars().collect();
    if chars.len() != 9 {
        return false;
    }
    let mut sum = 0;
    for (c, w) in chars[..8].iter().zip(W) {
        match c.to_digit(36) {
            Some(v) => sum += v * w,
            None => return false,
        }
    }
    let expected = match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('?'),
    };
    chars[8] == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_passes() {
        assert!(is_valid("91330110MA2CC4U92R"));
        assert_eq!(check_char("91330110MA2CC4U92"), Some('R'));
    }

    #[test]
    fn other_known_codes_pass() {
        for c in ["91610103MA6UXP185J", "91350200MA2YJ1XR9G", "913502000728319549"] {
            assert!(is_valid(c), "{c}");
        }
    }

    #[test]
    fn wrong_check_character_fails() {
        assert!(!is_valid("91350203M0001QAY9B"));
        assert_eq!(check_char("91350203M0001QAY9"), Some('9'));
        assert!(!is_valid("91330110MA2CC4U92S"));
    }

    #[test]
    fn bad_format_fails() {
        assert!(!format_ok("91330110MA2CC4U92")); // 17 characters
        assert!(!format_ok("91330110MA2CC4U9IR")); // I is not in the set
        assert!(!format_ok("913A0110MA2CC4U92R")); // region must be digits
        assert!(!format_ok("01330110MA2CC4U92R")); // first character 0
    }

    #[test]
    fn inner_org_code() {
        assert!(org_code_ok("MA2CC4U92"));
        assert!(!org_code_ok("MA2CC4U93"));
    }
}
