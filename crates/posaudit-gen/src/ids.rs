//! Realistic identifiers for generated data: valid USCCs, resident IDs and
//! card numbers, built with the same check algorithms the scan verifies.

use chrono::NaiveDate;
use rand::Rng;

use posaudit::checks::{idcard, luhn, uscc};

const USCC_SET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const ORG_SET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A valid USCC with the given two-character prefix and region.
pub fn uscc<R: Rng>(rng: &mut R, prefix: &str, region: &str) -> String {
    uscc_with_org(rng, prefix, region, true)
}

/// A USCC whose outer check character is right; its inner organisation
/// code passes GB 11714 or, with `org_ok` false, fails it.
pub fn uscc_with_org<R: Rng>(rng: &mut R, prefix: &str, region: &str, org_ok: bool) -> String {
    // The inner organisation code must pass GB 11714 too.
    let org = loop {
        let body: String = (0..8).map(|_| ORG_SET[rng.gen_range(0..ORG_SET.len())] as char).collect();
        let w = [3u32, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body.chars().zip(w).map(|(c, w)| c.to_digit(36).unwrap_or(0) * w).sum();
        let c = match 11 - sum % 11 {
            10 => 'X',
            11 => '0',
            d => char::from_digit(d, 10).unwrap_or('0'),
        };
        // A wrong inner check: the next digit after the right one.
        let c = if org_ok {
            c
        } else {
            match c {
                'X' => '0',
                '9' => 'X',
                d => char::from_digit(d.to_digit(10).unwrap_or(0) + 1, 10).unwrap_or('0'),
            }
        };
        let code = format!("{body}{c}");
        // The USCC alphabet lacks I, O, S, V, Z: the check must fit it.
        if code.bytes().all(|b| USCC_SET.contains(&b)) {
            break code;
        }
    };
    let first17 = format!("{prefix}{region}{org}");
    let c = uscc::check_char(&first17).unwrap_or('0');
    format!("{first17}{c}")
}

/// Replace a valid code's check character with a wrong one.
pub fn corrupt_last(code: &str, alphabet: &[u8]) -> String {
    let last = code.as_bytes()[code.len() - 1];
    let pos = alphabet.iter().position(|b| *b == last).unwrap_or(0);
    let wrong = alphabet[(pos + 1) % alphabet.len()] as char;
    format!("{}{}", &code[..code.len() - 1], wrong)
}

pub fn corrupt_uscc(code: &str) -> String {
    corrupt_last(code, USCC_SET)
}

pub fn corrupt_id(id: &str) -> String {
    corrupt_last(id, b"0123456789X")
}

/// A valid 18-character resident ID for a birth date.
pub fn resident_id<R: Rng>(rng: &mut R, region: &str, birth: NaiveDate) -> String {
    let seq: u32 = rng.gen_range(1..999);
    let first17 = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
    let c = idcard::check_char(&first17).unwrap_or('0');
    format!("{first17}{c}")
}

/// A Luhn-valid UnionPay card number (16 or 19 digits).
pub fn card<R: Rng>(rng: &mut R) -> String {
    let len = if rng.gen_bool(0.5) { 16 } else { 19 };
    let bins = ["622588", "621660", "625908", "622202", "621700"];
    let mut s = bins[rng.gen_range(0..bins.len())].to_string();
    while s.len() < len - 1 {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    let d = luhn::check_digit(&s).unwrap_or(0);
    format!("{s}{d}")
}

/// A corporate account number (not a card: no Luhn expectation).
pub fn corporate_account<R: Rng>(rng: &mut R) -> String {
    (0..17).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

pub fn mask_card(card: &str) -> String {
    format!("{}******{}", &card[..6], &card[card.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_ids_pass_the_checks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let u = uscc(&mut rng, "91", "310104");
            assert!(uscc::is_valid(&u), "{u}");
            assert!(uscc::org_code_ok(&u[8..17]), "{u}");
            assert!(!uscc::is_valid(&corrupt_uscc(&u)));
            let id = resident_id(&mut rng, "110105", NaiveDate::from_ymd_opt(1980, 2, 29).unwrap());
            assert!(idcard::is_valid(&id), "{id}");
            assert!(!idcard::is_valid(&corrupt_id(&id)));
            assert!(luhn::is_valid(&card(&mut rng)));
        }
    }
}
