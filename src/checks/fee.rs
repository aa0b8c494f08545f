//! The fee a transaction should have been charged under its merchant's
//! contract, in integer fen.

/// Contract terms in exact units: rates in millionths, money in fen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Contract {
    pub rate_debit: Option<i64>,
    pub debit_cap: Option<i64>,
    pub rate_credit: Option<i64>,
    pub rate_qr: Option<i64>,
    pub fixed_fee: Option<i64>,
}

/// How a transaction was paid, as far as pricing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priced {
    Debit,
    Credit,
    Qr,
}

impl Priced {
    pub fn of(payment_method: &str, card_type: Option<&str>) -> Option<Priced> {
        match (payment_method, card_type) {
            ("card", Some("debit")) => Some(Priced::Debit),
            ("card", Some("credit")) => Some(Priced::Credit),
            ("card", _) => None,
            _ => Some(Priced::Qr),
        }
    }
}

/// The parts of an expected fee, so a finding can say which part differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Rate part after the debit cap.
    pub rate_part: i64,
    pub fixed_part: i64,
    /// The rate applied, in millionths.
    pub rate: i64,
    pub capped: bool,
}

impl Expected {
    pub fn total(&self) -> i64 {
        self.rate_part + self.fixed_part
    }
}

/// Round half up to the fen: amount (fen) x rate (millionths).
pub fn apply_rate(amount_fen: i64, rate_millionths: i64) -> i64 {
    let p = amount_fen as i128 * rate_millionths as i128;
    ((p + 500_000).div_euclid(1_000_000)) as i64
}

/// None when the contract lacks the rate for this kind of payment.
pub fn expected(amount_fen: i64, how: Priced, c: &Contract) -> Option<Expected> {
    let rate = match how {
        Priced::Debit => c.rate_debit?,
        Priced::Credit => c.rate_credit?,
        Priced::Qr => c.rate_qr?,
    };
    let mut rate_part = apply_rate(amount_fen, rate);
    let mut capped = false;
    if how == Priced::Debit {
        if let Some(cap) = c.debit_cap.filter(|cap| *cap > 0) {
            if rate_part > cap {
                rate_part = cap;
                capped = true;
            }
        }
    }
    Some(Expected {
        rate_part,
        fixed_part: c.fixed_fee.unwrap_or(0),
        rate,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaint_case_reconstructs() {
        // 30,580 yuan at 0.63 % is 192.65; at 2.99 % plus 3 yuan it is 917.34.
        let old = Contract {
            rate_credit: Some(6300),
            ..Default::default()
        };
        assert_eq!(expected(3_058_000, Priced::Credit, &old).unwrap().total(), 19265);
        let new = Contract {
            rate_credit: Some(29900),
            fixed_fee: Some(300),
            ..Default::default()
        };
        assert_eq!(expected(3_058_000, Priced::Credit, &new).unwrap().total(), 91734);
    }

    #[test]
    fn debit_cap_applies() {
        let c = Contract {
            rate_debit: Some(5000),
            debit_cap: Some(2000),
            ..Default::default()
        };
        let e = expected(1_000_000, Priced::Debit, &c).unwrap();
        assert_eq!(e.total(), 2000);
        assert!(e.capped);
        assert_eq!(expected(10_000, Priced::Debit, &c).unwrap().total(), 50);
    }

    #[test]
    fn half_fen_rounds_up() {
        // 0.6 % of 0.75 yuan = 0.45 fen -> 0; of 2.50 yuan = 1.5 fen -> 2.
        assert_eq!(apply_rate(75, 6000), 0);
        assert_eq!(apply_rate(250, 6000), 2);
    }

    #[test]
    fn missing_rate_gives_none() {
        assert!(expected(100, Priced::Qr, &Contract::default()).is_none());
    }
}
