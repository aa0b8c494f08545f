//! `posaudit gen`: realistic synthetic inputs in the data contract, with
//! planted violations for every rule family. Same seed, same bytes.
//!
//! Clean merchants are generated so that no shipped rule fires on them:
//! valid documents, fees exactly as contracted, daytime trading, payers
//! that do not repeat. Violating merchants each carry one planted pattern,
//! cycling through `Plant::ALL`, so every pattern appears once the share of
//! violators covers the list.

pub mod ids;

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checks::fee::{self, Contract, Priced};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenFormat {
    Csv,
    Parquet,
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
    pub start: NaiveDate,
    /// Share of merchants that carry a planted violation.
    pub violation_share: f64,
    /// Append a few unparseable rows, to show rejection.
    pub bad_rows: bool,
}

/// The patterns planted on violating merchants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    BadUscc,
    ExpiredLicense,
    BadId,
    MinorRep,
    MicroTriplet,
    StaticQr,
    PersonalLarge,
    FeeOvercharge,
    SimFee,
    Split,
    SecondClearing,
    MccJump,
    DuplicateTxn,
}

impl Plant {
    pub const ALL: [Plant; 13] = [
        Plant::BadUscc,
        Plant::ExpiredLicense,
        Plant::BadId,
        Plant::MinorRep,
        Plant::MicroTriplet,
        Plant::StaticQr,
        Plant::PersonalLarge,
        Plant::FeeOvercharge,
        Plant::SimFee,
        Plant::Split,
        Plant::SecondClearing,
        Plant::MccJump,
        Plant::DuplicateTxn,
    ];
}

const CITIES: &[(&str, &str, f64, f64)] = &[
    ("310104", "3100", 31.1884, 121.4365),
    ("110105", "1000", 39.9219, 116.4436),
    ("440305", "5840", 22.5333, 113.9305),
    ("330106", "3310", 30.2590, 120.1300),
];
const MCCS: &[(&str, &str)] = &[
    ("5411", "超市零售"),
    ("5812", "餐饮服务"),
    ("5999", "日用百货零售"),
    ("7011", "住宿服务"),
    ("5732", "电子产品零售"),
    ("5691", "服装零售"),
    ("7230", "美容美发"),
    ("5912", "药品零售"),
];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军", "杰", "涛"];
const MODELS: &[&str] = &["LKL-A8", "LKL-V9", "LKL-Q5"];

struct Merchant {
    id: String,
    name: String,
    mtype: &'static str,
    uscc: String,
    license_expiry: String,
    rep_name: String,
    rep_id: String,
    rep_id_expiry: String,
    rep_id_start: String,
    mobile: String,
    acct_name: String,
    acct_no: String,
    acct_type: &'static str,
    mcc: &'static str,
    scope: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    sn: String,
    model: &'static str,
    declared_fen: i64,
    contract: Contract,
    sim_fee_fen: i64,
    deposit_fen: i64,
    docs: String,
    channel: &'static str,
    submitted: NaiveDateTime,
    reviewed: NaiveDateTime,
    signed: NaiveDateTime,
    installed: NaiveDateTime,
    plant: Option<Plant>,
    weight: f64,
}

fn yuan(fen: i64) -> String {
    format!("{}{}.{:02}", if fen < 0 { "-" } else { "" }, fen.abs() / 100, fen.abs() % 100)
}

/// A rate in millionths as a fraction with at least four decimals (0.0050).
fn rate(millionths: i64) -> String {
    let mut s = format!("{}.{:06}", millionths / 1_000_000, millionths % 1_000_000);
    while s.ends_with('0') && s.len() > s.find('.').unwrap_or(0) + 5 {
        s.pop();
    }
    s
}

fn dt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn name<R: Rng>(rng: &mut R) -> String {
    format!(
        "{}{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    )
}

/// Log-normal amount in fen, with cents (never a round number).
fn amount<R: Rng>(rng: &mut R, median_yuan: f64) -> i64 {
    let (u1, u2): (f64, f64) = (rng.gen_range(1e-9..1.0), rng.gen());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let y = (median_yuan.ln() + 0.8 * z).exp().clamp(1.0, 20_000.0);
    let fen = (y * 100.0) as i64;
    if fen % 100 == 0 {
        fen + 37
    } else {
        fen
    }
}

/// Daytime-heavy hour: 08-21, peaking at lunch and evening.
fn hour<R: Rng>(rng: &mut R) -> u32 {
    const W: [u32; 14] = [3, 5, 7, 10, 12, 9, 6, 6, 7, 9, 11, 10, 6, 3];
    let total: u32 = W.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (i, w) in W.iter().enumerate() {
        if x < *w {
            return 8 + i as u32;
        }
        x -= w;
    }
    21
}

fn make_merchants(opts: &GenOptions, rng: &mut ChaCha8Rng) -> Vec<Merchant> {
    let n = opts.merchants;
    let violators = if opts.violation_share <= 0.0 || n == 0 {
        0
    } else {
        ((n as f64 * opts.violation_share).round() as usize).clamp(1, n)
    };
    let mut seq = std::collections::HashMap::<(usize, usize), u32>::new();
    let mut out: Vec<Merchant> = Vec::with_capacity(n + 2);
    let base = opts.start;
    for i in 0..n {
        let plant = (0..violators)
            .position(|k| k * n / violators == i)
            .map(|ord| Plant::ALL[ord % Plant::ALL.len()]);
        let ci = rng.gen_range(0..CITIES.len());
        let mi = rng.gen_range(0..MCCS.len());
        let (city, city4, clat, clon) = CITIES[ci];
        let (mcc, scope) = MCCS[mi];
        let s = seq.entry((ci, mi)).or_insert(0);
        *s += 1;
        let id = format!("822{city4}{mcc}{:04}", *s % 10000);
        let mut mtype = match rng.gen_range(0..20) {
            0..=7 => "enterprise",
            8..=14 => "individual_business",
            _ => "micro",
        };
        match plant {
            Some(Plant::BadUscc | Plant::ExpiredLicense) => mtype = "enterprise",
            Some(Plant::MicroTriplet) => mtype = "micro",
            Some(Plant::PersonalLarge) => mtype = "individual_business",
            _ => {}
        }
        let rep_name = name(rng);
        let submitted = NaiveDateTime::new(
            base - Duration::days(rng.gen_range(60..400)),
            NaiveTime::from_hms_opt(rng.gen_range(9..17), rng.gen_range(0..60), 0).unwrap_or_default(),
        );
        let age_at_submission = if plant == Some(Plant::MinorRep) {
            17
        } else {
            rng.gen_range(24..58)
        };
        let birth =
            NaiveDate::from_ymd_opt(submitted.year() - age_at_submission, rng.gen_range(1..13), rng.gen_range(1..29)).unwrap_or(base);
        // Keep the birthday after the submission day in the minor case so the age is exactly 17.
        let birth = if plant == Some(Plant::MinorRep) {
            birth.with_month(12).and_then(|b| b.with_day(28)).unwrap_or(birth)
        } else {
            birth
        };
        let mut rep_id = ids::resident_id(rng, city, birth);
        if plant == Some(Plant::BadId) {
            rep_id = ids::corrupt_id(&rep_id);
        }
        let issue_age = rng.gen_range(26..40).min(age_at_submission.max(16));
        let id_start = NaiveDate::from_ymd_opt(birth.year() + issue_age, rng.gen_range(1..13), rng.gen_range(1..29)).unwrap_or(base);
        let id_start = if id_start > base { base - Duration::days(400) } else { id_start };
        let (id_start, id_expiry) = {
            let age = crate::checks::idcard::age_at(birth, id_start);
            match crate::checks::idcard::term_years(age) {
                Some(y) => {
                    let mut start = id_start;
                    // Keep the ID valid at the scan date.
                    while start.with_year(start.year() + y).unwrap_or(start) < base + Duration::days(60) {
                        start = start.with_year(start.year() + y).unwrap_or(start);
                    }
                    let age2 = crate::checks::idcard::age_at(birth, start);
                    match crate::checks::idcard::term_years(age2) {
                        Some(y2) => (start, start.with_year(start.year() + y2).unwrap_or(start).to_string()),
                        None => (start, "长期".to_string()),
                    }
                }
                None => (id_start, "长期".to_string()),
            }
        };
        let prefix = if mtype == "individual_business" { "92" } else { "91" };
        let mut uscc = if mtype == "micro" {
            String::new()
        } else {
            ids::uscc(rng, prefix, city)
        };
        if plant == Some(Plant::BadUscc) {
            uscc = ids::corrupt_uscc(&uscc);
        }
        let license_expiry = if mtype == "micro" {
            String::new()
        } else if plant == Some(Plant::ExpiredLicense) {
            (base - Duration::days(10)).to_string()
        } else if rng.gen_bool(0.5) {
            "长期".to_string()
        } else {
            (base + Duration::days(rng.gen_range(400..3000))).to_string()
        };
        let personal = mtype != "enterprise" && (plant == Some(Plant::PersonalLarge) || rng.gen_bool(0.7));
        let (acct_type, acct_no, acct_name) = if personal {
            ("personal", ids::card(rng), rep_name.clone())
        } else {
            ("corporate", ids::corporate_account(rng), format!("{}{}有限公司", rep_name, scope))
        };
        let merchant_name = match mtype {
            "micro" => format!("商户_{rep_name}"),
            "individual_business" => format!("{rep_name}{scope}店"),
            _ => format!("{rep_name}{scope}有限公司"),
        };
        let mut docs = vec!["id_front", "id_back", "bank_card", "storefront_photo"];
        if mtype != "micro" {
            docs.insert(0, "license");
        }
        let reviewed = submitted + Duration::hours(rng.gen_range(2..40));
        let signed = reviewed + Duration::hours(rng.gen_range(1..48));
        let installed = signed + Duration::days(rng.gen_range(1..10));
        let sim_fee_fen = if rng.gen_bool(0.3) && plant != Some(Plant::SimFee) {
            9900
        } else {
            0
        };
        let declared_fen = if plant == Some(Plant::PersonalLarge) {
            300_000_000
        } else {
            rng.gen_range(80_000..300_000) * 100
        };
        out.push(Merchant {
            id,
            name: merchant_name,
            mtype,
            uscc,
            license_expiry,
            rep_name: rep_name.clone(),
            rep_id,
            rep_id_expiry: id_expiry,
            rep_id_start: id_start.to_string(),
            mobile: format!("1{}{:09}", [3, 5, 8][rng.gen_range(0..3)], rng.gen_range(0..1_000_000_000u64)),
            acct_name,
            acct_no,
            acct_type,
            mcc,
            scope,
            city,
            lat: clat + rng.gen_range(-0.02..0.02),
            lon: clon + rng.gen_range(-0.02..0.02),
            sn: format!("SN{:010}", rng.gen_range(0..10_000_000_000u64)),
            model: MODELS[rng.gen_range(0..MODELS.len())],
            declared_fen,
            contract: Contract {
                rate_debit: Some([5000, 5500][rng.gen_range(0..2)]),
                debit_cap: Some(2000),
                rate_credit: Some(6000),
                rate_qr: Some(3800),
                fixed_fee: Some(0),
            },
            sim_fee_fen,
            deposit_fen: 0,
            docs: docs.join(";"),
            channel: ["online", "branch", "agent"][rng.gen_range(0..3)],
            submitted,
            reviewed,
            signed,
            installed,
            plant,
            weight: (rng.gen_range(0.0f64..1.0) * 1.5).exp(),
        });
    }
    // The micro-triplet holder gets two more micro merchants under the same ID.
    let extra: Vec<Merchant> = out
        .iter()
        .filter(|m| m.plant == Some(Plant::MicroTriplet))
        .flat_map(|m| {
            (1..=2).map(move |k| Merchant {
                id: format!("{}{}", &m.id[..11], 9000 + k),
                name: format!("{}_{k}", m.name),
                sn: format!("{}{k}", &m.sn[..11]),
                acct_no: m.acct_no.clone(),
                plant: Some(Plant::MicroTriplet),
                ..m.clone_shallow()
            })
        })
        .collect();
    out.extend(extra);
    out
}

impl Merchant {
    fn clone_shallow(&self) -> Merchant {
        Merchant {
            id: self.id.clone(),
            name: self.name.clone(),
            mtype: self.mtype,
            uscc: self.uscc.clone(),
            license_expiry: self.license_expiry.clone(),
            rep_name: self.rep_name.clone(),
            rep_id: self.rep_id.clone(),
            rep_id_expiry: self.rep_id_expiry.clone(),
            rep_id_start: self.rep_id_start.clone(),
            mobile: self.mobile.clone(),
            acct_name: self.acct_name.clone(),
            acct_no: self.acct_no.clone(),
            acct_type: self.acct_type,
            mcc: self.mcc,
            scope: self.scope,
            city: self.city,
            lat: self.lat,
            lon: self.lon,
            sn: self.sn.clone(),
            model: self.model,
            declared_fen: self.declared_fen,
            contract: self.contract,
            sim_fee_fen: self.sim_fee_fen,
            deposit_fen: self.deposit_fen,
            docs: self.docs.clone(),
            channel: self.channel,
            submitted: self.submitted,
            reviewed: self.reviewed,
            signed: self.signed,
            installed: self.installed,
            plant: self.plant,
            weight: self.weight,
        }
    }
}

fn write_applications(path: &Path, merchants: &[Merchant]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(crate::input::InputKind::Applications.columns().iter().map(|c| c.name))?;
    for (i, m) in merchants.iter().enumerate() {
        let c = &m.contract;
        let opt = |v: Option<i64>, f: fn(i64) -> String| v.map(f).unwrap_or_default();
        w.write_record([
            format!("APP{:07}", i + 1),
            m.id.clone(),
            m.name.clone(),
            m.mtype.to_string(),
            m.uscc.clone(),
            m.license_expiry.clone(),
            m.rep_name.clone(),
            m.rep_id.clone(),
            m.rep_id_expiry.clone(),
            m.rep_id_start.clone(),
            m.mobile.clone(),
            m.acct_name.clone(),
            m.acct_no.clone(),
            m.acct_type.to_string(),
            m.mcc.to_string(),
            m.scope.to_string(),
            m.city.to_string(),
            format!("{:.6}", m.lat),
            format!("{:.6}", m.lon),
            m.sn.clone(),
            m.model.to_string(),
            yuan(m.declared_fen),
            opt(c.rate_debit, rate),
            opt(c.debit_cap, yuan),
            opt(c.rate_credit, rate),
            opt(c.rate_qr, rate),
            opt(c.fixed_fee, yuan),
            yuan(m.sim_fee_fen),
            yuan(m.deposit_fen),
            String::new(),
            m.docs.clone(),
            m.channel.to_string(),
            if m.channel == "agent" {
                format!("AG{}", &m.id[3..7])
            } else {
                String::new()
            },
            dt(m.submitted),
            dt(m.reviewed),
            "approved".to_string(),
            dt(m.signed),
            dt(m.installed),
        ])?;
    }
    w.flush()
}

/// One transaction row, before formatting.
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
    original: String,
    account: String,
}

fn expected_fee(m: &Merchant, amount: i64, method: &str, card_type: &str) -> i64 {
    let how = Priced::of(method, if card_type.is_empty() { None } else { Some(card_type) }).unwrap_or(Priced::Qr);
    fee::expected(amount, how, &m.contract).map(|e| e.total()).unwrap_or(0)
}

fn normal_txn(rng: &mut ChaCha8Rng, m: &Merchant, mi: usize, day: NaiveDate, counter: &mut u64) -> Txn {
    *counter += 1;
    let time = NaiveDateTime::new(
        day,
        NaiveTime::from_hms_opt(hour(rng), rng.gen_range(0..60), rng.gen_range(0..60)).unwrap_or_default(),
    );
    let card_pay = rng.gen_bool(0.55);
    let (method, card_type, entry) = if card_pay {
        let ct = if rng.gen_bool(0.4) { "credit" } else { "debit" };
        (["card"][0], ct, ["chip", "contactless", "swipe"][rng.gen_range(0..3)])
    } else {
        (
            ["qr_wechat", "qr_alipay", "qr_unionpay"][rng.gen_range(0..3)],
            "",
            if rng.gen_bool(0.3) { "qr_static" } else { "qr_dynamic" },
        )
    };
    let median = if entry == "qr_static" { 25.0 } else { 80.0 };
    let amount = amount(rng, median).min(if entry == "qr_static" { 15_000 } else { i64::MAX });
    let card = if card_pay { ids::mask_card(&ids::card(rng)) } else { String::new() };
    Txn {
        id: format!("T{}{:010}", day.format("%Y%m%d"), *counter),
        merchant: mi,
        time,
        txn_type: "purchase",
        amount,
        method,
        card_type,
        card,
        card_hash: format!("h{:016x}", rng.gen::<u64>()),
        entry,
        mcc: m.mcc,
        fee: expected_fee(m, amount, method, card_type),
        original: String::new(),
        account: m.acct_no.clone(),
    }
}

/// The planted transactions of one violating merchant, on its day.
fn planted_txns(rng: &mut ChaCha8Rng, m: &Merchant, mi: usize, day: NaiveDate, counter: &mut u64, out: &mut Vec<Txn>) {
    let at = |h: u32, min: u32| NaiveDateTime::new(day, NaiveTime::from_hms_opt(h, min, 0).unwrap_or_default());
    match m.plant {
        Some(Plant::StaticQr) => {
            let payer = format!("p{:016x}", rng.gen::<u64>());
            for k in 0..3 {
                let mut t = normal_txn(rng, m, mi, day, counter);
                (t.time, t.entry, t.method, t.card_type, t.card, t.amount) =
                    (at(11 + k, 5), "qr_static", "qr_wechat", "", String::new(), 21_037);
                t.card_hash = payer.clone();
                t.fee = expected_fee(m, t.amount, t.method, "");
                out.push(t);
            }
        }
        Some(Plant::PersonalLarge) => {
            for k in 0..6 {
                let mut t = normal_txn(rng, m, mi, day, counter);
                (t.time, t.method, t.card_type, t.entry, t.amount) = (at(10 + k, 17), "card", "debit", "chip", 9_012_345 + k as i64 * 101);
                t.fee = expected_fee(m, t.amount, "card", "debit");
                out.push(t);
            }
        }
        Some(Plant::FeeOvercharge) => {
            for k in 0..3 {
                let mut t = normal_txn(rng, m, mi, day, counter);
                (t.time, t.method, t.card_type, t.entry) = (at(10 + k, 40), "card", "credit", "chip");
                t.fee = fee::apply_rate(t.amount, 29_900) + 300;
                out.push(t);
            }
        }
        Some(Plant::Split) => {
            let card = ids::mask_card(&ids::card(rng));
            let hash = format!("h{:016x}", rng.gen::<u64>());
            for k in 0..3 {
                let mut t = normal_txn(rng, m, mi, day, counter);
                (t.time, t.method, t.card_type, t.entry) = (at(15, 2 + 3 * k), "card", "credit", "chip");
                t.amount = 480_000 + rng.gen_range(1..9_000);
                t.fee = expected_fee(m, t.amount, "card", "credit");
                (t.card, t.card_hash) = (card.clone(), hash.clone());
                out.push(t);
            }
        }
        Some(Plant::SecondClearing) => {
            let other = ids::card(rng);
            for k in 0..2 {
                let mut t = normal_txn(rng, m, mi, day, counter);
                t.time = at(13 + k, 30);
                t.account = other.clone();
                out.push(t);
            }
        }
        Some(Plant::MccJump) => {
            for k in 0..3 {
                let mut t = normal_txn(rng, m, mi, day, counter);
                t.time = at(16 + k, 20);
                t.mcc = if m.mcc == "5411" { "5311" } else { "5411" };
                out.push(t);
            }
        }
        _ => {}
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
        m.city,
        m.lat,
        m.lon,
        t.original,
        t.account
    );
}

const TXN_HEADER: &str = "txn_id,merchant_id,terminal_sn,txn_time,txn_type,status,amount,payment_method,card_type,card_no_masked,card_hash,entry_mode,mcc,fee,location_city_code,lat,lon,original_txn_id,settlement_account_number";

#[derive(Debug, Default)]
pub struct GenSummary {
    pub merchants: usize,
    pub transactions: u64,
    pub files: Vec<PathBuf>,
    /// Which merchant carries which planted pattern.
    pub planted: Vec<(String, Plant)>,
}

pub fn generate(opts: &GenOptions) -> std::io::Result<GenSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let merchants = make_merchants(opts, &mut rng);
    std::fs::create_dir_all(opts.out.join("transactions"))?;
    let mut summary = GenSummary {
        merchants: merchants.len(),
        planted: merchants.iter().filter_map(|m| m.plant.map(|p| (m.id.clone(), p))).collect(),
        ..Default::default()
    };
    let app_path = opts.out.join("applications.csv");
    write_applications(&app_path, &merchants)?;
    summary.files.push(app_path);

    // Cumulative weights: busy merchants get more transactions.
    let mut cum = Vec::with_capacity(merchants.len());
    let mut acc = 0.0;
    for m in &merchants {
        acc += m.weight;
        cum.push(acc);
    }
    let mut counter = 0u64;
    let mut duplicate_next: Vec<Vec<u8>> = Vec::new();
    for d in 0..opts.days {
        let day = opts.start + Duration::days(d as i64);
        let mut txns: Vec<Txn> = Vec::with_capacity(opts.txns_per_day + 64);
        for _ in 0..opts.txns_per_day {
            let x = rng.gen_range(0.0..acc);
            let mi = cum.partition_point(|c| *c < x).min(merchants.len() - 1);
            txns.push(normal_txn(&mut rng, &merchants[mi], mi, day, &mut counter));
        }
        // Each violator plants on one day of the period, spread by index.
        for (mi, m) in merchants.iter().enumerate() {
            if m.plant.is_some() && (mi as u32 % opts.days.max(1)) == d {
                planted_txns(&mut rng, m, mi, day, &mut counter, &mut txns);
            }
        }
        txns.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        let mut buf = Vec::with_capacity(txns.len() * 200);
        buf.extend_from_slice(TXN_HEADER.as_bytes());
        buf.push(b'\n');
        buf.append(&mut duplicate_next.concat());
        duplicate_next.clear();
        for t in &txns {
            let start = buf.len();
            txn_line(t, &merchants[t.merchant], &mut buf);
            let m = &merchants[t.merchant];
            let plant_day = t.merchant as u32 % opts.days.max(1) == d;
            if m.plant == Some(Plant::DuplicateTxn) && plant_day && duplicate_next.is_empty() && d + 1 < opts.days {
                // The same record again in the next day's export.
                duplicate_next.push(buf[start..].to_vec());
            }
        }
        if opts.bad_rows && d + 1 == opts.days {
            let m = &merchants[0];
            for (id, time, ty, amount) in [
                ("BAD1", "2026-11-14 10:00:00", "purchase", "-50.00"),
                ("BAD2", "2026-11-31 10:00:00", "purchase", "12.30"),
                ("BAD3", "2026-11-14 11:00:00", "cashback", "12.30"),
            ] {
                let _ = writeln!(
                    buf,
                    "{id},{},{},{time},{ty},approved,{amount},qr_wechat,,,hbad,qr_dynamic,{},0.05,{},,,,{}",
                    m.id, m.sn, m.mcc, m.city, m.acct_no
                );
            }
        }
        summary.transactions += txns.len() as u64;
        let path = opts.out.join("transactions").join(format!("{}.csv", day.format("%Y-%m-%d")));
        write_file(&path, &buf, opts.format)?;
        summary.files.push(path);
    }
    write_fees(opts, &merchants)?;
    summary.files.push(opts.out.join("fees.csv"));
    summary.files.push(opts.out.join("fee_changes.csv"));
    Ok(summary)
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
    w.write_record([
        "charge_id",
        "merchant_id",
        "terminal_sn",
        "charged_at",
        "charge_type",
        "amount",
        "description",
    ])?;
    let mut n = 0;
    let at = NaiveDateTime::new(opts.start, NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default());
    for m in merchants {
        if m.sim_fee_fen > 0 {
            n += 1;
            w.write_record([
                format!("C{n:07}"),
                m.id.clone(),
                m.sn.clone(),
                dt(at),
                "sim_fee".into(),
                yuan(m.sim_fee_fen),
                "流量卡年费".into(),
            ])?;
        }
        if m.plant == Some(Plant::SimFee) {
            n += 1;
            w.write_record([
                format!("C{n:07}"),
                m.id.clone(),
                m.sn.clone(),
                dt(at + Duration::days(3)),
                "sim_fee".into(),
                yuan(9900),
                "流量费".into(),
            ])?;
        }
    }
    w.flush()?;
    let mut w = csv::Writer::from_path(opts.out.join("fee_changes.csv"))?;
    w.write_record([
        "merchant_id",
        "effective_at",
        "item",
        "old_value",
        "new_value",
        "notice_published_at",
    ])?;
    for m in merchants.iter().filter(|m| m.plant.is_none()).take(3) {
        let eff = at - Duration::days(20);
        w.write_record([
            m.id.clone(),
            dt(eff),
            "rate_credit".into(),
            "0.0058".into(),
            "0.0060".into(),
            dt(eff - Duration::days(35)),
        ])?;
    }
    w.flush()
}
