//! Clean random merchants: valid documents, consistent dates, a contract.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ids;
use super::plant::Plant;
use posaudit::checks::fee::Contract;
use posaudit::checks::idcard;

pub const CITIES: &[(&str, &str, f64, f64)] = &[
    ("310104", "3100", 31.1884, 121.4365),
    ("110105", "1000", 39.9219, 116.4436),
    ("440305", "5840", 22.5333, 113.9305),
    ("330106", "3310", 30.2590, 120.1300),
];
/// MCCs of the shipped MCC table, with a business scope.
pub const MCCS: &[(&str, &str)] = &[
    ("5411", "超市零售"),
    ("5812", "餐饮服务"),
    ("5999", "日用百货零售"),
    ("7011", "住宿服务"),
    ("5732", "电子产品零售"),
    ("5691", "服装零售"),
    ("7230", "美容美发"),
    ("5912", "药品零售"),
];
/// The codes of a look-alike background: the common real spread, night
/// businesses and waived-class merchants (hospitals, schools) among them.
pub const WIDE_MCCS: &[(&str, &str)] = &[
    ("5411", "超市零售"),
    ("5812", "餐饮服务"),
    ("5814", "快餐"),
    ("5813", "酒吧"),
    ("5499", "便利店"),
    ("5331", "杂货零售"),
    ("5311", "百货零售"),
    ("5712", "家具零售"),
    ("5722", "家电零售"),
    ("5732", "电子产品零售"),
    ("5691", "服装零售"),
    ("5651", "服饰零售"),
    ("5661", "鞋类零售"),
    ("5941", "体育用品零售"),
    ("5942", "图书零售"),
    ("5945", "玩具零售"),
    ("5992", "鲜花零售"),
    ("5995", "宠物用品零售"),
    ("5999", "日用百货零售"),
    ("5912", "药品零售"),
    ("5541", "加油服务"),
    ("7011", "住宿服务"),
    ("7230", "美容美发"),
    ("7298", "保健美容"),
    ("8011", "诊所服务"),
    ("8021", "牙科服务"),
    ("8062", "医院服务"),
    ("8211", "教育服务"),
    ("5211", "建材零售"),
    ("5251", "五金零售"),
    ("4121", "出租车服务"),
    ("7523", "停车服务"),
];

/// Businesses that trade at night as a matter of course (bars, hotels,
/// fast food, convenience stores, fuel, taxis, parking, hospitals).
pub const NIGHT_MCCS: &[&str] = &["5813", "7011", "5814", "5499", "5541", "4121", "7523", "8062"];

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军", "杰", "涛"];
pub const MODELS: &[&str] = &["LKL-A8", "LKL-V9", "LKL-Q5"];

#[derive(Clone)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub mtype: &'static str,
    pub uscc: String,
    pub license_expiry: String,
    pub rep_name: String,
    pub rep_id: String,
    pub rep_birth: NaiveDate,
    pub rep_id_expiry: String,
    pub rep_id_start: String,
    pub mobile: String,
    pub acct_name: String,
    pub acct_no: String,
    pub acct_type: &'static str,
    pub mcc: &'static str,
    pub scope: &'static str,
    pub city: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub sn: String,
    pub model: &'static str,
    pub declared_fen: i64,
    pub contract: Contract,
    /// Text of contract columns, so a plant can blank one.
    pub rate_qr_text: Option<String>,
    pub sim_fee_fen: i64,
    pub deposit_fen: i64,
    pub refund_threshold_fen: Option<i64>,
    pub docs: String,
    pub channel: &'static str,
    pub submitted: NaiveDateTime,
    pub reviewed: NaiveDateTime,
    pub signed: NaiveDateTime,
    pub installed: NaiveDateTime,
    pub plant: Option<Plant>,
    /// Relative business: how many of the day's transactions it gets.
    pub weight: f64,
    /// A quiet merchant with one refunded sale (a look-alike of heavy refunds).
    pub one_refund: bool,
}

pub fn name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    )
}

/// The ID validity term that fits an issue date, renewed until it is valid
/// for `min_valid_until`: (start, expiry text).
pub fn id_term(birth: NaiveDate, first_issue: NaiveDate, min_valid_until: NaiveDate) -> (NaiveDate, String) {
    let mut start = first_issue;
    loop {
        match idcard::term_years(idcard::age_at(birth, start)) {
            None => return (start, "长期".to_string()),
            Some(y) => {
                let end = start.with_year(start.year() + y).unwrap_or(start + Duration::days(365 * y as i64));
                if end >= min_valid_until {
                    return (start, end.to_string());
                }
                start = end;
            }
        }
    }
}

pub fn at(d: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
    NaiveDateTime::new(d, NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default())
}

/// A clean merchant of a random type, city and MCC. `start` is the first
/// day of the data period; documents stay valid well past it.
/// The next merchant number for a city and MCC: acquirer 822, the city's
/// 4-digit area, the MCC, a sequence.
/// A 15-digit merchant code: institution (822), area, MCC, sequence. A
/// city and MCC hold 9,999 merchants under one institution code; the next
/// ones take the next institution code (823, ...), so codes stay unique at
/// any scale (a million merchants fill some city and MCC pairs).
pub fn next_id(seq: &mut std::collections::HashMap<(String, String), u32>, city4: &str, mcc: &str) -> String {
    let s = seq.entry((city4.to_string(), mcc.to_string())).or_insert(0);
    *s += 1;
    let (institution, n) = (822 + (*s - 1) / 9999, (*s - 1) % 9999 + 1);
    format!("{institution}{city4}{mcc}{n:04}")
}

pub fn random(
    rng: &mut ChaCha8Rng,
    seq: &mut std::collections::HashMap<(String, String), u32>,
    start: NaiveDate,
    codes: &[(&'static str, &'static str)],
) -> Merchant {
    let ci = rng.gen_range(0..CITIES.len());
    let mi = rng.gen_range(0..codes.len());
    let (city, city4, clat, clon) = CITIES[ci];
    let (mcc, scope) = codes[mi];
    let id = next_id(seq, city4, mcc);
    let mtype = match rng.gen_range(0..20) {
        0..=7 => "enterprise",
        8..=14 => "individual_business",
        _ => "micro",
    };
    let rep_name = name(rng);
    let submitted = at(
        start - Duration::days(rng.gen_range(60..400)),
        rng.gen_range(9..17),
        rng.gen_range(0..60),
    );
    let age = rng.gen_range(24..58);
    let birth = NaiveDate::from_ymd_opt(submitted.year() - age, rng.gen_range(1..13), rng.gen_range(1..29)).unwrap_or(start);
    let rep_id = ids::resident_id(rng, city, birth);
    let first_issue =
        NaiveDate::from_ymd_opt(birth.year() + rng.gen_range(17..30), rng.gen_range(1..13), rng.gen_range(1..29)).unwrap_or(start);
    let (id_start, id_expiry) = id_term(
        birth,
        first_issue.max(NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(first_issue)),
        start + Duration::days(400),
    );
    let prefix = if mtype == "individual_business" { "92" } else { "91" };
    let uscc = if mtype == "micro" {
        String::new()
    } else {
        ids::uscc(rng, prefix, city)
    };
    let license_expiry = if mtype == "micro" {
        String::new()
    } else if rng.gen_bool(0.5) {
        "长期".to_string()
    } else {
        (start + Duration::days(rng.gen_range(400..3000))).to_string()
    };
    let merchant_name = match mtype {
        "micro" => format!("商户_{rep_name}"),
        "individual_business" => format!("{rep_name}{scope}店"),
        _ => format!("{rep_name}{scope}有限公司"),
    };
    // A micro merchant is a person: it settles to the person's own card.
    // A corporate account is held in the licence name (DOC-LIC-03).
    let personal = mtype == "micro" || (mtype == "individual_business" && rng.gen_bool(0.7));
    let (acct_type, acct_no, acct_name) = if personal {
        ("personal", ids::card(rng), rep_name.clone())
    } else {
        ("corporate", ids::corporate_account(rng), merchant_name.clone())
    };
    let mut docs = vec!["id_front", "id_back", "bank_card", "storefront_photo"];
    if mtype != "micro" {
        docs.insert(0, "license");
    }
    let reviewed = submitted + Duration::hours(rng.gen_range(2..40));
    let signed = reviewed + Duration::hours(rng.gen_range(1..48));
    let installed = signed + Duration::days(rng.gen_range(1..10));
    Merchant {
        id,
        name: merchant_name,
        mtype,
        uscc,
        license_expiry,
        rep_name,
        rep_id,
        rep_birth: birth,
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
        declared_fen: rng.gen_range(80_000..300_000) * 100,
        contract: priced_for(mcc, [5000, 5500][rng.gen_range(0..2)]),
        rate_qr_text: None,
        sim_fee_fen: if rng.gen_bool(0.3) { 9900 } else { 0 },
        deposit_fen: 0,
        refund_threshold_fen: None,
        docs: docs.join(";"),
        channel: ["online", "branch", "agent"][rng.gen_range(0..3)],
        submitted,
        reviewed,
        signed,
        installed,
        plant: None,
        weight: (rng.gen_range(0.0f64..1.0) * 1.5).exp(),
        one_refund: false,
    }
}

/// The contract an acquirer offers a merchant of this MCC: standard card
/// rates (debit `debit_rate` millionths), or for a waived-class MCC
/// (hospitals, schools: no issuer or scheme fee, 发改价格〔2016〕557号)
/// the acquirer's own fee only.
pub fn priced_for(mcc: &str, debit_rate: i64) -> Contract {
    if posaudit::checks::mcc::shipped_fee_class(mcc) == Some("waived") {
        Contract {
            rate_debit: Some(2000),
            debit_cap: Some(2000),
            rate_credit: Some(2500),
            rate_qr: Some(2000),
            fixed_fee: Some(0),
        }
    } else {
        Contract {
            rate_debit: Some(debit_rate),
            debit_cap: Some(2000),
            rate_credit: Some(6000),
            rate_qr: Some(3800),
            fixed_fee: Some(0),
        }
    }
}

/// Store `k` of a chain headed by `hq`: an enterprise in the same line of
/// business, under the same legal representative, with its own licence,
/// account and terminal. An honest look-alike of one person behind many
/// merchants.
pub fn chain_store(hq: &Merchant, k: usize, rng: &mut ChaCha8Rng, seq: &mut std::collections::HashMap<(String, String), u32>) -> Merchant {
    let mut m = hq.clone();
    let (city, city4, _, _) = CITIES.iter().copied().find(|c| c.0 == hq.city).unwrap_or(CITIES[0]);
    m.id = next_id(seq, city4, hq.mcc);
    // The licence writes the branch in full-width brackets, the bank in
    // half-width ones: the same name (an honest look-alike of DOC-LIC-03).
    m.name = format!("{}{}连锁有限公司（第{k}分店）", hq.rep_name, hq.scope);
    m.mtype = "enterprise";
    m.uscc = ids::uscc(rng, "91", city);
    m.license_expiry = "长期".to_string();
    m.acct_type = "corporate";
    m.acct_no = ids::corporate_account(rng);
    m.acct_name = m.name.replace('（', "(").replace('）', ")");
    m.sn = format!("SN{:010}", rng.gen_range(0..10_000_000_000u64));
    m.lat = hq.lat + rng.gen_range(-0.02..0.02);
    m.lon = hq.lon + rng.gen_range(-0.02..0.02);
    if !m.docs.contains("license") {
        m.docs = format!("license;{}", m.docs);
    }
    m.plant = None;
    m
}

fn yuan(fen: i64) -> String {
    super::yuan(fen)
}

/// A rate in millionths as a fraction with at least four decimals (0.0050).
pub fn rate(millionths: i64) -> String {
    let mut s = format!("{}.{:06}", millionths / 1_000_000, millionths % 1_000_000);
    while s.ends_with('0') && s.len() > s.find('.').unwrap_or(0) + 5 {
        s.pop();
    }
    s
}

pub fn dt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn write_applications(path: &std::path::Path, merchants: &[Merchant]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(posaudit::input::InputKind::Applications.columns().iter().map(|c| c.name))?;
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
            m.rate_qr_text.clone().unwrap_or_else(|| opt(c.rate_qr, rate)),
            opt(c.fixed_fee, yuan),
            yuan(m.sim_fee_fen),
            yuan(m.deposit_fen),
            opt(m.refund_threshold_fen, yuan),
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

#[cfg(test)]
mod tests {
    #[test]
    fn merchant_codes_stay_unique_past_9999_per_city_and_mcc() {
        let mut seq = std::collections::HashMap::new();
        let ids: Vec<String> = (0..25_000).map(|_| super::next_id(&mut seq, "3100", "5411")).collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(ids[0], "822310054110001");
        assert_eq!(ids[9_998], "822310054119999");
        assert_eq!(ids[9_999], "823310054110001");
        assert!(ids.iter().all(|i| i.len() == 15));
    }
}
