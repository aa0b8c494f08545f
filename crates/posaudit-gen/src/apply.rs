//! Planting: how each pattern changes a merchant's application, and the
//! extra merchants a pattern needs.

use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ids;
use super::merchant::{at, id_term, Merchant};
use super::plant::Plant;

fn set_type(m: &mut Merchant, rng: &mut ChaCha8Rng, mtype: &'static str) {
    m.mtype = mtype;
    let prefix = if mtype == "individual_business" { "92" } else { "91" };
    m.uscc = if mtype == "micro" {
        String::new()
    } else {
        ids::uscc(rng, prefix, m.city)
    };
    if mtype != "micro" && m.license_expiry.is_empty() {
        m.license_expiry = "长期".into();
    }
    if mtype == "micro" {
        m.license_expiry.clear();
    }
    let mut docs: Vec<&str> = vec!["id_front", "id_back", "bank_card", "storefront_photo"];
    if mtype != "micro" {
        docs.insert(0, "license");
    }
    m.docs = docs.join(";");
    if mtype == "enterprise" && m.acct_type == "personal" {
        set_corporate(m, rng);
    }
    // A person without a licence has no corporate account.
    if mtype == "micro" && m.acct_type == "corporate" {
        set_personal(m, rng);
    }
}

/// A corporate account, held in the licence name as it must be.
fn set_corporate(m: &mut Merchant, rng: &mut ChaCha8Rng) {
    m.acct_type = "corporate";
    m.acct_no = ids::corporate_account(rng);
    m.acct_name = m.name.clone();
}

/// Another company's name, for an account held by a third party.
fn third_party(rng: &mut ChaCha8Rng) -> String {
    format!("{}商贸有限公司", super::merchant::name(rng))
}

fn set_personal(m: &mut Merchant, rng: &mut ChaCha8Rng) {
    m.acct_type = "personal";
    m.acct_no = ids::card(rng);
    m.acct_name = m.rep_name.clone();
}

/// A new representative born on `birth`, with an ID valid as the plant needs.
fn set_rep(m: &mut Merchant, rng: &mut ChaCha8Rng, birth: NaiveDate, start: NaiveDate) {
    if m.acct_type == "personal" && m.acct_name == m.rep_name {
        m.acct_name = super::merchant::name(rng);
    }
    if m.acct_type == "personal" {
        m.rep_name = m.acct_name.clone();
    }
    m.rep_birth = birth;
    m.rep_id = ids::resident_id(rng, m.city, birth);
    let first = NaiveDate::from_ymd_opt(birth.year() + 16, birth.month(), 1)
        .unwrap_or(birth)
        .max(NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(birth));
    let (s, e) = id_term(birth, first, start + Duration::days(400));
    m.rep_id_start = s.to_string();
    m.rep_id_expiry = e;
}

/// Shift the onboarding dates so that installation happens at `installed`.
fn install_at(m: &mut Merchant, installed: chrono::NaiveDateTime) {
    let shift = installed - m.installed;
    m.submitted += shift;
    m.reviewed += shift;
    m.signed += shift;
    m.installed = installed;
}

/// Change the merchant's application as the plant needs. `start` is the
/// data's first day; the demo is scanned as of `start + 50 days`.
pub fn apply(m: &mut Merchant, p: Plant, rng: &mut ChaCha8Rng, start: NaiveDate) {
    let as_of = start + Duration::days(50);
    let sub = m.submitted.date();
    match p {
        Plant::BadUscc => {
            set_type(m, rng, "enterprise");
            m.uscc = ids::corrupt_uscc(&m.uscc);
        }
        Plant::UsccPrefix => {
            set_type(m, rng, "individual_business");
            m.uscc = ids::uscc(rng, "91", m.city);
        }
        Plant::ExpiredLicense => {
            set_type(m, rng, "enterprise");
            m.license_expiry = (start - Duration::days(10)).to_string();
        }
        Plant::LicenseExpiring => {
            set_type(m, rng, "enterprise");
            m.license_expiry = (as_of + Duration::days(10)).to_string();
        }
        Plant::BadId => m.rep_id = ids::corrupt_id(&m.rep_id),
        Plant::BadBirthDate => {
            let first17 = format!("{}19900230{:03}", m.city, rng.gen_range(1..999));
            m.rep_id = format!("{first17}{}", posaudit::checks::idcard::check_char(&first17).unwrap_or('0'));
        }
        Plant::MinorRep => {
            let birth = sub.with_year(sub.year() - 17).unwrap_or(sub) - Duration::days(10);
            set_rep(m, rng, birth, start);
        }
        Plant::Over65 => {
            let birth = sub.with_year(sub.year() - 70).unwrap_or(sub);
            set_rep(m, rng, birth, start);
        }
        Plant::IdExpired | Plant::IdExpiring => {
            let end = if p == Plant::IdExpired {
                start - Duration::days(10)
            } else {
                as_of + Duration::days(10)
            };
            // Issued at 30 for twenty years: consistent, only the date matters.
            let issued = end.with_year(end.year() - 20).unwrap_or(end);
            let birth = issued.with_year(issued.year() - 30).unwrap_or(issued);
            m.rep_birth = birth;
            m.rep_id = ids::resident_id(rng, m.city, birth);
            m.rep_id_start = issued.to_string();
            m.rep_id_expiry = end.to_string();
        }
        Plant::IdTermBad => {
            let issued = start.with_year(start.year() - 5).unwrap_or(start);
            m.rep_id_start = issued.to_string();
            m.rep_id_expiry = issued.with_year(issued.year() + 15).unwrap_or(issued).to_string();
        }
        Plant::StlOtherName => {
            set_type(m, rng, "individual_business");
            set_personal(m, rng);
            m.acct_name = super::merchant::name(rng);
            if m.acct_name == m.rep_name {
                m.acct_name.push('甲');
            }
        }
        Plant::StlEnterprisePersonal => {
            set_type(m, rng, "enterprise");
            set_personal(m, rng);
        }
        Plant::StlLuhn => {
            set_type(m, rng, "individual_business");
            set_personal(m, rng);
            let last = m.acct_no.pop().and_then(|c| c.to_digit(10)).unwrap_or(0);
            m.acct_no.push(char::from_digit((last + 1) % 10, 10).unwrap_or('0'));
        }
        // Two merchants settling to one account of a third company (二清):
        // neither licence name is the account's.
        Plant::SharedAccount | Plant::ThirdPartyAccount => {
            if m.mtype == "micro" {
                set_type(m, rng, "enterprise");
            }
            set_corporate(m, rng);
            m.acct_name = third_party(rng);
        }
        Plant::WaivedAtStandard => {
            let (mcc, scope) = if rng.gen_bool(0.5) {
                ("8062", "医院服务")
            } else {
                ("8211", "教育服务")
            };
            (m.mcc, m.scope) = (mcc, scope);
            m.contract = super::merchant::priced_for("5812", 5500);
        }
        // Not micro: a burst of cards would break a micro merchant's caps.
        Plant::CardBurst if m.mtype == "micro" => set_type(m, rng, "enterprise"),
        Plant::MissingDocs => {
            set_type(m, rng, "enterprise");
            m.docs = "id_front;id_back;bank_card;storefront_photo".into();
        }
        Plant::MicroTriplet => set_type(m, rng, "micro"),
        Plant::FiveMerchants if m.mtype == "micro" => set_type(m, rng, "enterprise"),
        Plant::UnknownMcc => {
            m.mcc = "9999";
            m.scope = "其他服务";
        }
        Plant::IncompleteFees => {
            m.contract.rate_qr = None;
            m.rate_qr_text = Some(String::new());
        }
        Plant::SlowReview => {
            m.reviewed = m.submitted + Duration::days(9);
            m.signed = m.reviewed + Duration::hours(3);
            m.installed = m.signed + Duration::days(2);
        }
        Plant::ReviewBeforeSubmit => m.reviewed = m.submitted - Duration::days(1),
        Plant::InstalledEarly => m.installed = m.signed - Duration::hours(20),
        Plant::OverTerminalLimit | Plant::UnderLimit => m.model = "LKL-Q5",
        Plant::MicroDaily | Plant::MicroMonthly => {
            set_type(m, rng, "micro");
            m.model = "LKL-A8";
            m.declared_fen = 500_000_000;
        }
        Plant::VolumeOver => m.declared_fen = 100_000,
        Plant::PersonalLarge => {
            set_type(m, rng, "individual_business");
            set_personal(m, rng);
            m.model = "LKL-A8";
            m.declared_fen = 300_000_000;
        }
        Plant::UnlistedModel => m.model = "XY-POS9",
        Plant::LegacyId => {
            // Born in the 1900s, as every 15-digit number's holder is.
            let birth = NaiveDate::from_ymd_opt(1968, 5, 12).unwrap_or(m.rep_birth);
            set_rep(m, rng, birth, start);
            m.rep_id = format!("{}{}", &m.rep_id[..6], &m.rep_id[8..17]);
        }
        Plant::BadOrgCode => {
            if m.mtype == "micro" {
                set_type(m, rng, "enterprise");
            }
            let prefix = if m.mtype == "individual_business" { "92" } else { "91" };
            m.uscc = ids::uscc_with_org(rng, prefix, m.city, false);
        }
        Plant::CorporateLarge => {
            set_type(m, rng, "enterprise");
            m.acct_type = "corporate";
            m.acct_no = ids::corporate_account(rng);
            m.acct_name = m.name.clone();
            m.model = "LKL-A8";
            m.declared_fen = 1_000_000_000;
        }
        Plant::SimAbove => m.sim_fee_fen = 6000,
        Plant::SimTwice => m.sim_fee_fen = 9900,
        Plant::SimUndisclosed | Plant::DepositUndisclosed => {
            m.sim_fee_fen = 0;
            m.deposit_fen = 0;
        }
        Plant::DepositNotRefunded => {
            m.deposit_fen = 29900;
            m.refund_threshold_fen = Some(200_000);
        }
        Plant::NightTrading => m.mcc = "5999",
        // A quiet merchant, so its near-limit payments are its habit.
        Plant::NearLimitHabit => m.weight = 0.05,
        // A busy merchant, so one big credit ticket does not make most of
        // its card volume credit (SUS-CASH-03).
        Plant::BigTicket => m.weight = m.weight.max(6.0),
        // Likewise the split purchases (credit) at a merchant with a business of its own.
        Plant::Split => m.weight = m.weight.max(3.0),
        // The round amounts must be most of its credit volume in any 30
        // days, as the label says, however long the generated period.
        Plant::RoundAmounts => m.weight = m.weight.min(0.2),
        Plant::MccJumpSame | Plant::MccJumpCheaper => m.mcc = "5812",
        Plant::OtherCity => {
            m.city = "330106";
            m.lat = 30.2590;
            m.lon = 120.1300;
        }
        Plant::NewSpike => {
            // A modest business: its point is the declaration, not a
            // volume above its peers' (SUS-NEW-02).
            m.weight = m.weight.min(2.0);
            install_at(m, at(start - Duration::days(5), 10, 0));
            m.declared_fen = 1_000_000;
        }
        // Installed days before the period, declaring a large volume its
        // first days exceed only against its peers.
        Plant::NewSpikePeers => {
            install_at(m, at(start - Duration::days(2), 10, 0));
            m.declared_fen = 500_000_000;
            // Not micro: 300,000 in a day is a micro merchant's whole cap.
            if m.mtype == "micro" {
                set_type(m, rng, "enterprise");
            }
        }
        _ => {}
    }
}

/// Extra merchants a plant needs (sharing a person, an account or a
/// terminal with the planted one). They carry the same plant.
pub fn extras(m: &Merchant, rng: &mut ChaCha8Rng, start: NaiveDate) -> Vec<Merchant> {
    let clone_as = |k: u32, rng: &mut ChaCha8Rng| {
        let mut e = m.clone();
        // The caller numbers extras like any merchant.
        e.id.clear();
        e.name = format!("{}_{k}", m.name);
        e.sn = format!("SN{:010}", rng.gen_range(0..10_000_000_000u64));
        // A merchant of its own has a contact of its own (DOC-PHONE-01).
        e.mobile = format!("1{}{:09}", [3, 5, 8][rng.gen_range(0..3)], rng.gen_range(0..1_000_000_000u64));
        e.acct_no = if m.acct_type == "personal" {
            ids::card(rng)
        } else {
            ids::corporate_account(rng)
        };
        if m.acct_type == "corporate" {
            e.acct_name = e.name.clone();
        }
        e.weight = m.weight;
        e
    };
    match m.plant {
        Some(Plant::MicroTriplet) => (1..=2).map(|k| clone_as(k, rng)).collect(),
        // Five merchants in several lines of business (a chain in one line is normal).
        Some(Plant::FiveMerchants) => (1..=4)
            .map(|k| {
                let mut e = clone_as(k, rng);
                let codes = super::merchant::MCCS;
                let own = codes.iter().position(|(c, _)| *c == m.mcc).unwrap_or(0);
                (e.mcc, e.scope) = codes[(own + k as usize) % codes.len()];
                e
            })
            .collect(),
        Some(Plant::SharedAccount) => {
            let mut e = clone_as(1, rng);
            let birth = m.rep_birth.with_year(m.rep_birth.year() - 3).unwrap_or(m.rep_birth);
            e.rep_name = super::merchant::name(rng);
            e.acct_name = m.acct_name.clone();
            set_rep(&mut e, rng, birth, start);
            e.acct_no = m.acct_no.clone();
            vec![e]
        }
        Some(Plant::SharedPhone) => {
            let mut e = clone_as(1, rng);
            e.mobile = m.mobile.clone();
            e.rep_name = super::merchant::name(rng);
            let birth = m.rep_birth.with_year(m.rep_birth.year() - 4).unwrap_or(m.rep_birth);
            set_rep(&mut e, rng, birth, start);
            vec![e]
        }
        Some(Plant::SharedTerminal) => {
            let mut e = clone_as(1, rng);
            e.sn = m.sn.clone();
            e.rep_name = super::merchant::name(rng);
            let birth = m.rep_birth.with_year(m.rep_birth.year() - 2).unwrap_or(m.rep_birth);
            set_rep(&mut e, rng, birth, start);
            vec![e]
        }
        Some(Plant::CardHopper) => (1..=3)
            .map(|k| {
                let mut e = clone_as(k, rng);
                e.rep_name = super::merchant::name(rng);
                let birth = m.rep_birth.with_year(m.rep_birth.year() - k as i32).unwrap_or(m.rep_birth);
                set_rep(&mut e, rng, birth, start);
                e
            })
            .collect(),
        _ => vec![],
    }
}
