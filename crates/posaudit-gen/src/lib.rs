//! posaudit-gen: realistic synthetic inputs in posaudit's data contract,
//! with planted violations for every rule of the shipped pack and a labels
//! file saying which. Same seed, same bytes. A crate of its own: the
//! scanner never ships its test oracle (the plant table names the shipped
//! rule ids); tests and benches use it as a dev-dependency, users who want
//! sample data run the `posaudit-gen` binary.
//!
//! Clean merchants are generated so that no shipped rule fires on them:
//! valid documents, fees exactly as contracted, daytime trading, payers
//! that do not repeat, small partial refunds of real originals. Violating
//! merchants each carry one pattern from `Plant::ALL` (cycling), and
//! `Plant::rules` says which rules each pattern triggers.

pub mod apply;
pub mod ids;
pub mod merchant;
pub mod plant;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use merchant::{at, dt, Merchant};
pub use plant::Plant;
use posaudit::checks::fee::{self, Priced};
use posaudit::input::InputKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    Csv,
    Parquet,
}

impl std::str::FromStr for GenFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(GenFormat::Csv),
            "parquet" => Ok(GenFormat::Parquet),
            other => Err(format!("`{other}` is not a format (csv or parquet)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub merchants: usize,
    pub days: u32,
    /// Transactions per day across all merchants.
    pub txns_per_day: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub format: GenFormat,
    /// First day of the data. Plants that depend on "today" assume the
    /// data is scanned with `--as-of` 50 days after it.
    pub start: NaiveDate,
    /// Share of merchants that carry a planted violation.
    pub violation_share: f64,
    /// Append a few unparseable rows, to show rejection.
    pub bad_rows: bool,
    /// A clean background with honest look-alikes of the planted patterns:
    /// many real MCCs, night businesses trading at night, chains whose
    /// stores share a legal representative and an account, shoppers whose
    /// card pays at two or three merchants a day. Off: the tidy background
    /// the demo was made with.
    pub lookalikes: bool,
}

pub fn yuan(fen: i64) -> String {
    format!("{}{}.{:02}", if fen < 0 { "-" } else { "" }, fen.abs() / 100, fen.abs() % 100)
}

/// Log-normal amount in fen, with cents (never a round number).
fn amount(rng: &mut ChaCha8Rng, median_yuan: f64, max_yuan: f64) -> i64 {
    let (u1, u2): (f64, f64) = (rng.gen_range(1e-9..1.0), rng.gen());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let y = (median_yuan.ln() + 0.8 * z).exp().clamp(1.0, max_yuan);
    let fen = (y * 100.0) as i64;
    if fen % 100 == 0 {
        fen + 37
    } else {
        fen
    }
}

/// Daytime-heavy hour: 08-21, peaking at lunch and evening.
fn hour(rng: &mut ChaCha8Rng) -> u32 {
    const W: [u32; 14] = [3, 5, 7, 10, 12, 9, 6, 6, 7, 9, 11, 10, 6, 3];
    let mut x = rng.gen_range(0..W.iter().sum::<u32>());
    for (i, w) in W.iter().enumerate() {
        if x < *w {
            return 8 + i as u32;
        }
        x -= w;
    }
    21
}

/// One transaction row, before formatting.
#[derive(Clone)]
struct Txn {
    id: String,
    merchant: usize,
    time: NaiveDateTime,
    txn_type: &'static str,
    amount: i64,
    method: &'static str,
    card_type: &'static str,
    card: String,
    card_hash: String,
    entry: &'static str,
    mcc: &'static str,
    fee: i64,
    city: &'static str,
    lat: f64,
    lon: f64,
    original: String,
    account: String,
}

fn contract_fee(m: &Merchant, amount: i64, method: &str, card_type: &str) -> i64 {
    let how = Priced::of(method, Some(card_type).filter(|c| !c.is_empty())).unwrap_or(Priced::Qr);
    fee::expected(amount, how, &m.contract).map(|e| e.total()).unwrap_or(0)
}

struct Day<'a> {
    rng: ChaCha8Rng,
    merchants: &'a [Merchant],
    date: NaiveDate,
    /// Sequence of transaction ids within the day: ids embed the date, so
    /// days can be generated in parallel.
    seq: u64,
    seed: u64,
    txns: Vec<Txn>,
    /// Expected transactions a day per unit of merchant weight.
    per_weight: f64,
}

impl Day<'_> {
    fn next_id(&mut self) -> String {
        self.seq += 1;
        format!("T{}{:010}", self.date.format("%Y%m%d"), self.seq)
    }

    /// The record a duplicate plant repeats: built from its own stream, so
    /// the plant day and the next day write the very same row.
    fn duplicate_record(&mut self, mi: usize, plant_date: NaiveDate) -> Txn {
        let own = ChaCha8Rng::seed_from_u64(self.seed ^ 0xd0_0d ^ (mi as u64).wrapping_mul(0x9e37_79b9));
        let saved = std::mem::replace(&mut self.rng, own);
        let mut t = self.purchase(mi, at(plant_date, 12, 34));
        t.id = format!("T{}D{mi:09}", plant_date.format("%Y%m%d"));
        self.rng = saved;
        t
    }

    /// A clean purchase; the fee is exactly the contract's.
    fn purchase(&mut self, mi: usize, time: NaiveDateTime) -> Txn {
        let m = &self.merchants[mi];
        let rng = &mut self.rng;
        let card_pay = rng.gen_bool(0.55);
        let (method, card_type, entry) = if card_pay {
            let credit = m.plant == Some(Plant::CreditShare) || rng.gen_bool(0.35);
            (
                "card",
                if credit { "credit" } else { "debit" },
                ["chip", "contactless", "swipe"][rng.gen_range(0..3)],
            )
        } else {
            let entry = if rng.gen_bool(0.3) { "qr_static" } else { "qr_dynamic" };
            (["qr_wechat", "qr_alipay", "qr_unionpay"][rng.gen_range(0..3)], "", entry)
        };
        let amount = if entry == "qr_static" {
            amount(rng, 25.0, 150.0)
        } else {
            amount(rng, 80.0, 9_000.0)
        };
        let card = if card_pay { ids::mask_card(&ids::card(rng)) } else { String::new() };
        let card_hash = format!("h{:016x}", rng.gen::<u64>());
        let id = self.next_id();
        Txn {
            id,
            merchant: mi,
            time,
            txn_type: "purchase",
            amount,
            method,
            card_type,
            card,
            card_hash,
            entry,
            mcc: m.mcc,
            fee: contract_fee(m, amount, method, card_type),
            city: m.city,
            lat: m.lat,
            lon: m.lon,
            original: String::new(),
            account: m.acct_no.clone(),
        }
    }

    fn random_time(&mut self) -> NaiveDateTime {
        let h = hour(&mut self.rng);
        NaiveDateTime::new(
            self.date,
            NaiveTime::from_hms_opt(h, self.rng.gen_range(0..60), self.rng.gen_range(0..60)).unwrap_or_default(),
        )
    }

    /// Shoppers: one card each, paying at two or three clean merchants in a
    /// day (an honest look-alike of a card hopping between merchants).
    fn shoppers(&mut self, n: usize) {
        // Busy merchants see more shoppers: pick by weight, as sales are.
        let clean: Vec<usize> = (0..self.merchants.len()).filter(|&i| self.merchants[i].plant.is_none()).collect();
        if clean.len() < 3 {
            return;
        }
        let mut cum = Vec::with_capacity(clean.len());
        let mut total = 0.0;
        for &i in &clean {
            total += self.merchants[i].weight;
            cum.push(total);
        }
        for _ in 0..n {
            let card = ids::mask_card(&ids::card(&mut self.rng));
            let hash = format!("h{:016x}", self.rng.gen::<u64>());
            let kind = if self.rng.gen_bool(0.4) { "credit" } else { "debit" };
            let visits = self.rng.gen_range(2..=3);
            let mut seen = Vec::new();
            while seen.len() < visits {
                let x = self.rng.gen_range(0.0..total);
                let mi = clean[cum.partition_point(|c| *c < x).min(clean.len() - 1)];
                if seen.contains(&mi) {
                    continue;
                }
                seen.push(mi);
                let time = self.random_time();
                let amount = amount(&mut self.rng, 60.0, 2_000.0);
                let mut t = self.card(mi, time, amount, kind);
                (t.card, t.card_hash) = (card.clone(), hash.clone());
                self.txns.push(t);
            }
        }
    }

    /// A card purchase of a given amount and card type.
    fn card(&mut self, mi: usize, time: NaiveDateTime, amount: i64, card_type: &'static str) -> Txn {
        let mut t = self.purchase(mi, time);
        (t.method, t.card_type, t.entry, t.amount) = ("card", card_type, "chip", amount);
        t.card = ids::mask_card(&ids::card(&mut self.rng));
        t.fee = contract_fee(&self.merchants[mi], amount, "card", card_type);
        t
    }

    fn refund_of(&mut self, original: &Txn, amount: i64, time: NaiveDateTime) -> Txn {
        let mut r = original.clone();
        r.id = self.next_id();
        (r.txn_type, r.amount, r.fee, r.time, r.original) = ("refund", amount, 0, time, original.id.clone());
        r
    }

    /// A merchant's expected month of sales in fen (at about 160 yuan a
    /// ticket), so that a plant about a share of its business holds at
    /// any size.
    fn expected_month_fen(&self, mi: usize) -> f64 {
        self.merchants[mi].weight * self.per_weight * 30.0 * 16_000.0
    }

    /// The planted transactions of merchant `mi` on one of its plant days.
    fn plant(&mut self, mi: usize, merchants_by_plant: &HashMap<usize, Vec<usize>>) {
        let m = &self.merchants[mi];
        let d = self.date;
        let mut out: Vec<Txn> = Vec::new();
        match m.plant {
            Some(Plant::StaticQr) => {
                let payer = format!("p{:016x}", self.rng.gen::<u64>());
                for h in 0..3 {
                    let mut t = self.purchase(mi, at(d, 11 + h, 5));
                    (t.entry, t.method, t.card_type, t.card, t.amount, t.card_hash) =
                        ("qr_static", "qr_wechat", "", String::new(), 21_037, payer.clone());
                    t.fee = contract_fee(m, t.amount, "qr_wechat", "");
                    out.push(t);
                }
            }
            Some(Plant::CorporateLarge) => {
                // 50 debit purchases of about 45,000: 2.25 million in a day,
                // from a business customer's ten cards, each every 110 minutes.
                let cards: Vec<(String, String)> = (0..10)
                    .map(|_| {
                        (
                            ids::mask_card(&ids::card(&mut self.rng)),
                            format!("h{:016x}", self.rng.gen::<u64>()),
                        )
                    })
                    .collect();
                for j in 0..50u32 {
                    let mut t = self.card(mi, at(d, 8 + j / 5, (j % 5) * 11 + 1), 4_501_237 + j as i64 * 101, "debit");
                    (t.card, t.card_hash) = cards[j as usize % 10].clone();
                    out.push(t);
                }
            }
            Some(Plant::PersonalLarge) => {
                for h in 0..12 {
                    out.push(self.card(mi, at(d, 9 + h, 17), 4_512_345 + h as i64 * 101, "debit"));
                }
            }
            Some(p @ (Plant::MicroDaily | Plant::MicroMonthly)) => {
                // 7 x 45,000 breaks the daily cap; 6 a day over 5 days, the monthly one.
                let n = if p == Plant::MicroDaily { 7 } else { 6 };
                for h in 0..n {
                    out.push(self.card(mi, at(d, 9 + h, 12), 4_500_037 + h as i64 * 1_000, "debit"));
                }
            }
            Some(Plant::OverTerminalLimit) => out.push(self.card(mi, at(d, 14, 20), 2_500_037, "debit")),
            Some(Plant::VolumeOver) => {
                out.push(self.card(mi, at(d, 10, 20), 160_037, "debit"));
                out.push(self.card(mi, at(d, 16, 20), 160_137, "debit"));
            }
            Some(Plant::FeeOvercharge) => {
                for h in 0..3 {
                    let mut t = self.card(mi, at(d, 10 + h, 40), 30_037 + h as i64 * 1_000, "credit");
                    t.fee = fee::apply_rate(t.amount, 29_900) + 300;
                    out.push(t);
                }
            }
            Some(Plant::FixedAddon) => {
                for h in 0..3 {
                    let mut t = self.card(mi, at(d, 10 + h, 45), 30_037 + h as i64 * 7_000, "debit");
                    t.fee += 300;
                    out.push(t);
                }
            }
            Some(Plant::DebitOverCap) => {
                let mut t = self.card(mi, at(d, 15, 10), 1_000_037, "debit");
                t.fee = 5_000;
                out.push(t);
            }
            Some(Plant::Split) => {
                let card = ids::mask_card(&ids::card(&mut self.rng));
                let hash = format!("h{:016x}", self.rng.gen::<u64>());
                for j in 0..3 {
                    let amount = 45_000 + self.rng.gen_range(1..9_000);
                    let mut t = self.card(mi, at(d, 15, 2 + 3 * j), amount, "credit");
                    (t.card, t.card_hash) = (card.clone(), hash.clone());
                    out.push(t);
                }
            }
            Some(Plant::RoundAmounts) => {
                for j in 0..24u32 {
                    let yuan = [2000, 3000, 5000, 8000][j as usize % 4];
                    out.push(self.card(mi, at(d, 8 + j / 2, 10 + (j % 2) * 30), yuan * 100, "credit"));
                }
            }
            Some(Plant::UnderLimit) => {
                let card = ids::mask_card(&ids::card(&mut self.rng));
                let hash = format!("h{:016x}", self.rng.gen::<u64>());
                for j in 0..3 {
                    let mut t = self.card(mi, at(d, 11 + j, 10), 1_950_037 + j as i64 * 1_000, "debit");
                    (t.card, t.card_hash) = (card.clone(), hash.clone());
                    out.push(t);
                }
            }
            Some(Plant::DepositNotRefunded) => {
                // Turnover passes the refund threshold on the first day, so
                // the deposit is overdue by any as-of 31 days later (the
                // label must be true whatever the merchant's own volume).
                let threshold = self.merchants[mi].refund_threshold_fen.unwrap_or(0);
                out.push(self.card(mi, at(d, 11, 5), threshold + 50_037, "debit"));
            }
            Some(Plant::NearLimitHabit) => {
                // 25 static-QR payments by 25 payers, each just under 500.
                for j in 0..25u32 {
                    let mut t = self.purchase(mi, at(d, 9 + j / 4, (j % 4) * 12 + 1));
                    (t.method, t.card_type, t.card, t.entry, t.amount) =
                        ("qr_wechat", "", String::new(), "qr_static", 47_537 + j as i64 * 90);
                    t.fee = contract_fee(m, t.amount, "qr_wechat", "");
                    out.push(t);
                }
            }
            Some(Plant::NightTrading) => {
                // Night sales of 3,000: five, or enough to be 40% of a
                // big merchant's expected month.
                let n = ((0.4 * self.expected_month_fen(mi) / 300_000.0).ceil() as u32).max(5);
                for j in 0..n {
                    let mut t = self.purchase(mi, at(d, 2 + j % 3, (10 + j) % 60));
                    (t.method, t.card_type, t.card, t.entry, t.amount) = ("qr_alipay", "", String::new(), "qr_dynamic", 300_037 + j as i64);
                    t.fee = contract_fee(m, t.amount, "qr_alipay", "");
                    out.push(t);
                }
            }
            Some(Plant::RefundHeavy) => {
                // Refunds of 1,800: three, or enough to be a quarter of a
                // big merchant's expected month.
                let n = ((0.25 * self.expected_month_fen(mi) / 180_000.0).ceil() as u32).max(3);
                for j in 0..n {
                    let sale = self.card(mi, at(d, 10 + j * 8 / n, (j * 7) % 60), 300_037, "debit");
                    let refund = self.refund_of(&sale, 180_000, at(d, 18 + j * 5 / n, (j * 7) % 60));
                    out.push(sale);
                    out.push(refund);
                }
            }
            Some(Plant::RefundBad) => {
                let sale = self.card(mi, at(d, 10, 0), 10_037, "debit");
                let mut other_card = self.refund_of(&sale, 10_037, at(d, 12, 0));
                other_card.card_hash = format!("h{:016x}", self.rng.gen::<u64>());
                let mut orphan = self.refund_of(&sale, 3_000, at(d, 13, 0));
                orphan.original.clear();
                out.extend([sale, other_card, orphan]);
            }
            Some(Plant::CardHopper) => {
                let hash = format!("h{:016x}", self.rng.gen::<u64>());
                let mut who = vec![mi];
                who.extend(merchants_by_plant.get(&mi).cloned().unwrap_or_default());
                for (j, w) in who.into_iter().enumerate() {
                    let mut t = self.card(w, at(d, 10 + j as u32, 33), 12_037 + j as i64 * 1_000, "debit");
                    t.card_hash = hash.clone();
                    out.push(t);
                }
            }
            Some(Plant::CreditShare) => {
                for j in 0..10 {
                    out.push(self.card(mi, at(d, 9 + j, 50), 150_037 + j as i64 * 1_111, "credit"));
                }
            }
            Some(p @ (Plant::MccJumpSame | Plant::MccJumpCheaper)) => {
                for j in 0..3 {
                    let mut t = self.purchase(mi, at(d, 16 + j, 20));
                    t.mcc = if p == Plant::MccJumpSame { "5311" } else { "5411" };
                    out.push(t);
                }
            }
            Some(p @ (Plant::OtherCity | Plant::OtherProvince | Plant::FarAway)) => {
                for j in 0..2 {
                    let mut t = self.purchase(mi, at(d, 13 + j, 40));
                    match p {
                        Plant::OtherCity => t.city = "330203",
                        Plant::OtherProvince => t.city = if m.city.starts_with("44") { "310104" } else { "440305" },
                        _ => t.lat += 0.1,
                    }
                    out.push(t);
                }
            }
            Some(Plant::BigTicket) => {
                // One credit payment of 8,800 where tickets are about 80,
                // among a business customer's debit payments that day (so
                // credit is not most of the month's card volume, SUS-CASH-03,
                // however small the merchant).
                out.push(self.card(mi, at(d, 14, 20), 880_037, "credit"));
                for j in 0..8u32 {
                    out.push(self.card(mi, at(d, 9 + j, 40), 250_037 + j as i64 * 1_300, "debit"));
                }
            }
            Some(Plant::CardBurst) => {
                // A ring's cards, each once, at ordinary tickets: far more
                // cards than this merchant's usual day and than the typical
                // merchant's, whatever the data's size.
                let own = m.weight * self.per_weight;
                let typical = self.per_weight * self.merchants.iter().map(|m| m.weight).sum::<f64>() / self.merchants.len().max(1) as f64;
                let n = (12.0 * own.max(1.5 * typical).max(1.0)).ceil().max(40.0) as u32;
                for j in 0..n {
                    let kind = if j % 5 < 2 { "credit" } else { "debit" };
                    let amount = amount(&mut self.rng, 150.0, 600.0);
                    out.push(self.card(mi, at(d, 10 + j * 9 / n, (j * 7) % 60), amount, kind));
                }
            }
            Some(Plant::NewSpikePeers) => {
                // 300,000 yuan in a day: far above the MCC's median merchant,
                // far below the 5,000,000 it declared.
                for j in 0..20u32 {
                    out.push(self.card(mi, at(d, 9 + j / 3, 5 + (j % 3) * 15), 1_500_037 + j as i64 * 100, "debit"));
                }
            }
            Some(Plant::NewSpike) => {
                for j in 0..3 {
                    out.push(self.card(mi, at(d, 10 + j, 5), 1_500_037 + j as i64 * 100, "debit"));
                }
            }
            Some(Plant::Dormant) => {
                for j in 0..3 {
                    out.push(self.card(mi, at(d, 19 + j, 15), 400_037 + j as i64 * 100, "debit"));
                }
            }
            Some(Plant::DuplicateTxn) => {
                let t = self.duplicate_record(mi, d);
                out.push(t);
            }
            Some(Plant::SecondClearing) => {
                let other = ids::card(&mut self.rng);
                for j in 0..2 {
                    let mut t = self.purchase(mi, at(d, 13 + j, 30));
                    t.account = other.clone();
                    out.push(t);
                }
            }
            _ => {}
        }
        self.txns.extend(out);
    }
}

fn txn_line(t: &Txn, m: &Merchant, buf: &mut Vec<u8>) {
    let _ = writeln!(
        buf,
        "{},{},{},{},{},approved,{},{},{},{},{},{},{},{},{},{:.6},{:.6},{},{}",
        t.id,
        m.id,
        m.sn,
        t.time.format("%Y-%m-%d %H:%M:%S"),
        t.txn_type,
        yuan(t.amount),
        t.method,
        t.card_type,
        t.card,
        t.card_hash,
        t.entry,
        t.mcc,
        yuan(t.fee),
        t.city,
        t.lat,
        t.lon,
        t.original,
        t.account
    );
}

/// The header of an input's file: the contract's columns, in its order
/// (the writers below give their values in that order; a test checks
/// that every file's header and rows agree with the contract).
fn header(kind: InputKind) -> Vec<&'static str> {
    kind.columns().iter().map(|c| c.name).collect()
}

#[derive(Debug, Default)]
pub struct GenSummary {
    pub merchants: usize,
    pub transactions: u64,
    pub files: Vec<PathBuf>,
    /// Which merchant carries which planted pattern (extras included).
    pub planted: Vec<(String, Plant)>,
}

/// The day (index into the period) on which a violator plants.
fn plant_day(mi: usize, p: Plant, days: u32) -> u32 {
    match p {
        Plant::Dormant | Plant::DepositNotRefunded | Plant::NewSpikePeers => 0,
        // Installed 5 days before the period: the spike must come within
        // its first 30 days, however long the period.
        Plant::NewSpike => mi as u32 % days.clamp(1, 20),
        _ => mi as u32 % days.saturating_sub(plant::span_days(p) - 1).max(1),
    }
}

fn make_merchants(opts: &GenOptions, rng: &mut ChaCha8Rng) -> (Vec<Merchant>, HashMap<usize, Vec<usize>>) {
    let n = opts.merchants;
    let violators = if opts.violation_share <= 0.0 || n == 0 {
        0
    } else {
        ((n as f64 * opts.violation_share).round() as usize).clamp(1, n)
    };
    let mut seq = HashMap::new();
    let codes = if opts.lookalikes { merchant::WIDE_MCCS } else { merchant::MCCS };
    let mut out: Vec<Merchant> = (0..n).map(|_| merchant::random(rng, &mut seq, opts.start, codes)).collect();
    if opts.lookalikes {
        // Real merchant sizes are heavy-tailed: a few take much of the
        // volume (Pareto, alpha 1.2: about 80/20), capped so one merchant
        // cannot swamp a small data set.
        for m in &mut out {
            let u: f64 = rng.gen_range(0.0..1.0);
            m.weight = (1.0 - u).powf(-1.0 / 1.2).min(200.0);
        }
    }
    for ord in 0..violators {
        let i = ord * n / violators;
        let p = Plant::ALL[ord % Plant::ALL.len()];
        out[i].plant = Some(p);
        apply::apply(&mut out[i], p, rng, opts.start);
        // A plant that changed the MCC gets a number issued for it (the
        // number embeds the MCC, DOC-MID-01); the mismatch plant gets one
        // issued for another line of business.
        let city4 = out[i].id[3..7].to_string();
        let code = if p == Plant::MidMccMismatch {
            if out[i].mcc == "5999" {
                "5411"
            } else {
                "5999"
            }
        } else {
            out[i].mcc
        };
        if out[i].id[7..11] != *code {
            out[i].id = merchant::next_id(&mut seq, &city4, code);
        }
    }
    // A merchant measured against its MCC's merchants needs peers: it
    // takes the code most clean merchants have.
    for i in 0..n {
        if !out[i].plant.is_some_and(Plant::needs_peers) {
            continue;
        }
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for m in out.iter().filter(|m| m.plant.is_none()) {
            *counts.entry(m.mcc).or_default() += 1;
        }
        if let Some((mcc, _)) = counts.into_iter().max_by_key(|(c, k)| (*k, std::cmp::Reverse(*c))) {
            let scope = codes.iter().find(|(c, _)| *c == mcc).map(|(_, s)| *s).unwrap_or(out[i].scope);
            let city4 = out[i].id[3..7].to_string();
            out[i].id = merchant::next_id(&mut seq, &city4, mcc);
            (out[i].mcc, out[i].scope) = (mcc, scope);
            // Priced as the new code's class is (a hospital's rates are not a restaurant's).
            out[i].contract = merchant::priced_for(mcc, 5500);
        }
    }
    let mut extras_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        for mut e in apply::extras(&out[i], rng, opts.start) {
            let city4 = out[i].id[3..7].to_string();
            e.id = merchant::next_id(&mut seq, &city4, e.mcc);
            extras_of.entry(i).or_default().push(out.len());
            out.push(e);
        }
    }
    if opts.lookalikes {
        // Quiet merchants with a single refund: 76 yuan of a 594 yuan sale.
        for i in (0..n).filter(|&i| i % 20 == 13) {
            if out[i].plant.is_none() {
                out[i].weight = 0.1;
                out[i].one_refund = true;
            }
        }
        // Chains: every 25th clean merchant heads 3 to 6 stores.
        let heads: Vec<usize> = (0..n).filter(|&i| out[i].plant.is_none() && i % 25 == 7).collect();
        for i in heads {
            let size = rng.gen_range(3..=6);
            for k in 1..=size {
                let store = merchant::chain_store(&out[i], k, rng, &mut seq);
                out.push(store);
            }
        }
    }
    // A merchant declares a volume of its own scale: a big merchant
    // declares a big one (its expected month at about 160 yuan a ticket,
    // with a margin), unless its plant is about the declaration.
    // A micro merchant is a person's stall: small, whatever the tail.
    for m in out.iter_mut().filter(|m| m.mtype == "micro") {
        m.weight = m.weight.min(3.0);
    }
    let total: f64 = out.iter().map(|m| m.weight).sum();
    let per_weight = opts.txns_per_day as f64 / total.max(f64::MIN_POSITIVE);
    for m in out.iter_mut().filter(|m| !m.plant.is_some_and(Plant::sets_declared)) {
        let expected_fen = m.weight * per_weight * 30.0 * 16_000.0;
        let margin = rng.gen_range(1.2..2.5);
        m.declared_fen = m.declared_fen.max((expected_fen * margin / 100.0).round() as i64 * 100);
    }
    (out, extras_of)
}

pub fn generate(opts: &GenOptions) -> std::io::Result<GenSummary> {
    if opts.merchants == 0 || opts.days == 0 || !(0.0..=1.0).contains(&opts.violation_share) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the generator needs at least one merchant and one day, and a violation share between 0 and 1",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (merchants, extras_of) = make_merchants(opts, &mut rng);
    std::fs::create_dir_all(opts.out.join("transactions"))?;
    let mut summary = GenSummary {
        merchants: merchants.len(),
        planted: merchants.iter().filter_map(|m| m.plant.map(|p| (m.id.clone(), p))).collect(),
        ..Default::default()
    };
    let app_path = opts.out.join("applications.csv");
    merchant::write_applications(&app_path, &merchants)?;
    summary.files.push(app_path);

    // Busy merchants get more transactions: sample by cumulative weight.
    let mut cum = Vec::with_capacity(merchants.len());
    let mut acc = 0.0;
    for m in &merchants {
        acc += m.weight;
        cum.push(acc);
    }
    // A dormant merchant's last sale before its silence, 35 days earlier.
    let dormant: Vec<usize> = (0..merchants.len())
        .filter(|&i| merchants[i].plant == Some(Plant::Dormant))
        .collect();
    if !dormant.is_empty() {
        let date = opts.start - Duration::days(35);
        let mut day = Day {
            rng: ChaCha8Rng::seed_from_u64(opts.seed ^ 0xd0),
            merchants: &merchants,
            date,
            seq: 0,
            seed: opts.seed,
            txns: vec![],
            per_weight: 0.0,
        };
        for &mi in &dormant {
            let t = day.purchase(mi, at(date, 12, 0));
            day.txns.push(t);
        }
        let path = opts.out.join("transactions").join(format!("{}.csv", date.format("%Y-%m-%d")));
        write_day(&path, &day.txns, &merchants, &[], opts.format)?;
        summary.transactions += day.txns.len() as u64;
        summary.files.push(path);
    }
    let is_extra: std::collections::HashSet<usize> = extras_of.values().flatten().copied().collect();
    let days: Vec<std::io::Result<(u64, PathBuf)>> = (0..opts.days)
        .into_par_iter()
        .map(|d| generate_day(opts, d, &merchants, &cum, acc, &extras_of, &is_extra))
        .collect();
    for r in days {
        let (n, path) = r?;
        summary.transactions += n;
        summary.files.push(path);
    }
    write_fees(opts, &merchants)?;
    summary.files.push(opts.out.join("fees.csv"));
    summary.files.push(opts.out.join("fee_changes.csv"));
    let labels = opts.out.join("labels.csv");
    write_labels(&labels, &merchants)?;
    summary.files.push(labels);
    Ok(summary)
}

/// The family a rule id names by its prefix (the pack's convention).
fn family_of(rule_id: &str) -> &'static str {
    match rule_id.split('-').next() {
        Some("DOC") => "document_validity",
        Some("LIM") => "transaction_limits",
        Some("FEE") => "fee_transparency",
        _ => "suspicious_patterns",
    }
}

/// What was planted, as a labels file for `posaudit rules eval`: one
/// `confirmed` row per merchant and rule its pattern triggers, and one
/// merchant-level `dismissed` row per clean merchant.
fn write_labels(path: &std::path::Path, merchants: &[Merchant]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["merchant_id", "rule_id", "family", "disposition"])?;
    for m in merchants {
        match m.plant {
            Some(p) => {
                for r in p.rules() {
                    w.write_record([m.id.as_str(), r, family_of(r), "confirmed"])?;
                }
            }
            None => w.write_record([m.id.as_str(), "", "", "dismissed"])?,
        }
    }
    w.flush()
}

/// One day's export: normal sales and refunds, the plants that fall on it,
/// the previous day's duplicate record, and (last day) the unparseable rows.
fn generate_day(
    opts: &GenOptions,
    d: u32,
    merchants: &[Merchant],
    cum: &[f64],
    acc: f64,
    extras_of: &HashMap<usize, Vec<usize>>,
    is_extra: &std::collections::HashSet<usize>,
) -> std::io::Result<(u64, PathBuf)> {
    let date = opts.start + Duration::days(d as i64);
    // Each day has its own stream, so one day's plants do not shift another day's data.
    let rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_mul(1_000_003).wrapping_add(d as u64));
    let mut day = Day {
        rng,
        merchants,
        date,
        seq: 0,
        seed: opts.seed,
        txns: Vec::with_capacity(opts.txns_per_day + 64),
        per_weight: opts.txns_per_day as f64 / acc.max(f64::MIN_POSITIVE),
    };
    for _ in 0..opts.txns_per_day {
        let x = day.rng.gen_range(0.0..acc);
        let mi = cum.partition_point(|c| *c < x).min(merchants.len() - 1);
        let mut time = day.random_time();
        // Night businesses take a quarter of their payments after midnight.
        if opts.lookalikes && merchant::NIGHT_MCCS.contains(&merchants[mi].mcc) && day.rng.gen_bool(0.25) {
            let t =
                NaiveTime::from_hms_opt(day.rng.gen_range(0..5), day.rng.gen_range(0..60), day.rng.gen_range(0..60)).unwrap_or_default();
            time = NaiveDateTime::new(date, t);
        }
        let t = day.purchase(mi, time);
        // About one sale in 200 gets a small partial refund later that day.
        if day.rng.gen_bool(0.005) && time.time() < NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default() {
            let r = day.refund_of(&t, (t.amount / 20).max(1), time + Duration::hours(2));
            day.txns.push(r);
        }
        day.txns.push(t);
    }
    if opts.lookalikes {
        day.shoppers(opts.txns_per_day / 40);
        for (mi, m) in merchants.iter().enumerate() {
            if m.one_refund && mi as u32 % opts.days == d {
                let sale = day.card(mi, at(date, 12, 40), 59_437, "debit");
                let refund = day.refund_of(&sale, 7_637, at(date, 16, 5));
                day.txns.push(sale);
                day.txns.push(refund);
            }
        }
    }
    for (mi, m) in merchants.iter().enumerate() {
        let Some(p) = m.plant else { continue };
        if is_extra.contains(&mi) {
            continue;
        }
        let first = plant_day(mi, p, opts.days);
        if d >= first && d < first + plant::span_days(p) {
            day.plant(mi, extras_of);
        }
        // The duplicate: the same record again in the next day's export.
        if p == Plant::DuplicateTxn && d == first + 1 {
            let t = day.duplicate_record(mi, date - Duration::days(1));
            day.txns.push(t);
        }
    }
    let mut txns = std::mem::take(&mut day.txns);
    txns.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    let mut bad = Vec::new();
    if opts.bad_rows && d + 1 == opts.days {
        let m = &merchants[0];
        for (id, time, ty, amount) in [
            ("BAD1", format!("{date} 10:00:00"), "purchase", "-50.00"),
            ("BAD2", format!("{} 10:00:00", date.format("%Y-02-30")), "purchase", "12.30"),
            ("BAD3", format!("{date} 11:00:00"), "cashback", "12.30"),
        ] {
            bad.push(format!(
                "{id},{},{},{time},{ty},approved,{amount},qr_wechat,,,hbad,qr_dynamic,{},0.05,{},,,,{}",
                m.id, m.sn, m.mcc, m.city, m.acct_no
            ));
        }
    }
    let path = opts.out.join("transactions").join(format!("{}.csv", date.format("%Y-%m-%d")));
    write_day(&path, &txns, merchants, &bad, opts.format)?;
    Ok((txns.len() as u64, path))
}

fn write_day(path: &Path, txns: &[Txn], merchants: &[Merchant], bad: &[String], format: GenFormat) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(txns.len() * 200 + 256);
    buf.extend_from_slice(header(InputKind::Transactions).join(",").as_bytes());
    buf.push(b'\n');
    for t in txns {
        txn_line(t, &merchants[t.merchant], &mut buf);
    }
    for b in bad {
        buf.extend_from_slice(b.as_bytes());
        buf.push(b'\n');
    }
    write_file(path, &buf, format)
}

fn write_file(path: &Path, csv_bytes: &[u8], format: GenFormat) -> std::io::Result<()> {
    match format {
        GenFormat::Csv => std::fs::write(path, csv_bytes),
        GenFormat::Parquet => {
            use polars::prelude::*;
            // Every column as text: the reader parses Parquet through the same rules as CSV.
            let mut rdr = csv::Reader::from_reader(csv_bytes);
            let headers: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
            let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
            for rec in rdr.records() {
                let rec = rec?;
                for (i, c) in cols.iter_mut().enumerate() {
                    c.push(rec.get(i).filter(|s| !s.is_empty()).map(str::to_string));
                }
            }
            let n = cols.first().map_or(0, Vec::len);
            let columns: Vec<Column> = headers
                .iter()
                .zip(cols)
                .map(|(h, v)| {
                    StringChunked::from_iter_options(h.as_str().into(), v.into_iter())
                        .into_series()
                        .into_column()
                })
                .collect();
            let mut df = DataFrame::new(n, columns).map_err(std::io::Error::other)?;
            let f = std::fs::File::create(path.with_extension("parquet"))?;
            ParquetWriter::new(f).finish(&mut df).map_err(std::io::Error::other)?;
            Ok(())
        }
    }
}

fn write_fees(opts: &GenOptions, merchants: &[Merchant]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(opts.out.join("fees.csv"))?;
    w.write_record(header(InputKind::Fees))?;
    let mut n = 0;
    let mut charge = |w: &mut csv::Writer<std::fs::File>, m: &Merchant, when: NaiveDateTime, kind: &str, fen: i64, what: &str| {
        n += 1;
        w.write_record([
            format!("C{n:07}"),
            m.id.clone(),
            m.sn.clone(),
            dt(when),
            kind.into(),
            yuan(fen),
            what.into(),
        ])
    };
    let start = at(opts.start, 2, 0);
    for m in merchants {
        match m.plant {
            Some(Plant::SimUndisclosed) => charge(&mut w, m, start + Duration::days(3), "sim_fee", 9900, "流量费")?,
            Some(Plant::SimAbove) => charge(&mut w, m, start, "sim_fee", 9900, "流量卡年费")?,
            Some(Plant::SimTwice) => {
                charge(&mut w, m, start - Duration::days(200), "sim_fee", 9900, "流量卡年费")?;
                charge(&mut w, m, start, "sim_fee", 9900, "流量卡年费")?;
            }
            Some(Plant::DepositUndisclosed) => charge(&mut w, m, m.installed, "deposit", 29900, "押金")?,
            Some(Plant::DepositNotRefunded) => charge(&mut w, m, m.installed, "deposit", 29900, "押金")?,
            Some(Plant::Membership) => charge(&mut w, m, start + Duration::days(1), "membership", 39900, "会员费")?,
            _ if m.sim_fee_fen > 0 => charge(&mut w, m, start, "sim_fee", m.sim_fee_fen, "流量卡年费")?,
            _ => {}
        }
    }
    w.flush()?;
    let mut w = csv::Writer::from_path(opts.out.join("fee_changes.csv"))?;
    w.write_record(header(InputKind::FeeChanges))?;
    let eff = start - Duration::days(20);
    for m in merchants.iter().filter(|m| m.plant.is_none()).take(3) {
        w.write_record([
            m.id.clone(),
            dt(eff),
            "rate_credit".into(),
            "0.0058".into(),
            "0.0060".into(),
            dt(eff - Duration::days(35)),
        ])?;
    }
    // 先提后降: raised 60 days before the cut back to the old rate, both
    // announced 35 days ahead.
    for m in merchants.iter().filter(|m| m.plant == Some(Plant::RiseThenCut)) {
        for (at, old, new) in [(eff - Duration::days(60), "0.0060", "0.0068"), (eff, "0.0068", "0.0060")] {
            w.write_record([
                m.id.clone(),
                dt(at),
                "rate_credit".into(),
                old.into(),
                new.into(),
                dt(at - Duration::days(35)),
            ])?;
        }
    }
    for m in merchants.iter().filter(|m| m.plant == Some(Plant::ShortNotice)) {
        w.write_record([
            m.id.clone(),
            dt(eff),
            "rate_credit".into(),
            "0.0060".into(),
            "0.0068".into(),
            dt(eff - Duration::days(10)),
        ])?;
    }
    w.flush()
}
