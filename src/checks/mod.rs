//! Derived columns: checks that SQL cannot say well (check characters,
//! validity terms, expected fees, distances), computed once per scan in
//! Rust and then used by rules by name like any input column.

pub mod calendar;
pub mod fee;
pub mod idcard;
pub mod luhn;
pub mod uscc;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::input::contract::DOCUMENTS;
use crate::input::read::decimal_from_scaled;
use crate::input::values::{date_from_days, datetime_from_millis};

/// A derived column, for `rules list` and the docs.
pub struct DerivedDoc {
    pub name: &'static str,
    pub input: &'static str,
    pub doc: &'static str,
}

pub const DERIVED: &[DerivedDoc] = &[
    DerivedDoc { name: "uscc_format_ok", input: "applications", doc: "USCC has 18 characters from the GB 32100 set, a valid first character and a numeric region" },
    DerivedDoc { name: "uscc_valid", input: "applications", doc: "USCC format and GB 32100-2015 check character both right" },
    DerivedDoc { name: "uscc_org_code_ok", input: "applications", doc: "inner 组织机构代码 (positions 9-17) passes GB 11714" },
    DerivedDoc { name: "uscc_prefix", input: "applications", doc: "USCC positions 1-2: registration authority and entity type (91 enterprise, 92 individual business)" },
    DerivedDoc { name: "license_days_left", input: "applications", doc: "days from --as-of to license_expiry (negative: expired; null: permanent or unknown)" },
    DerivedDoc { name: "id_format_ok", input: "applications", doc: "legal-rep ID is 17 digits and a digit or X" },
    DerivedDoc { name: "id_valid", input: "applications", doc: "legal-rep ID format and GB 11643 MOD 11-2 check character both right" },
    DerivedDoc { name: "id_birth_date", input: "applications", doc: "birth date embedded in the ID (null when not a real date)" },
    DerivedDoc { name: "id_age_at_submission", input: "applications", doc: "legal rep's age in whole years when the application was submitted" },
    DerivedDoc { name: "id_age", input: "applications", doc: "legal rep's age in whole years at --as-of" },
    DerivedDoc { name: "id_days_left", input: "applications", doc: "days from --as-of to legal_rep_id_expiry (null: permanent or unknown)" },
    DerivedDoc { name: "id_term_ok", input: "applications", doc: "ID validity term fits the age at issue (居民身份证法 第五条); null without legal_rep_id_start" },
    DerivedDoc { name: "settlement_account_luhn_ok", input: "applications", doc: "settlement account number passes Luhn (real Chinese cards may fail it)" },
    DerivedDoc { name: "has_<document>", input: "applications", doc: "the document is listed in `documents` (license, id_front, id_back, bank_card, storefront_photo, lease, tax_registration, authorization_letter)" },
    DerivedDoc { name: "review_working_days", input: "applications", doc: "working days (Mon-Fri) from submitted_at to reviewed_at" },
    DerivedDoc { name: "txn_date", input: "transactions", doc: "calendar day of txn_time" },
    DerivedDoc { name: "hour", input: "transactions", doc: "hour of day of txn_time (0-23, local time)" },
    DerivedDoc { name: "amount_fen", input: "transactions", doc: "amount in integer fen (for exact modulo tests)" },
    DerivedDoc { name: "expected_fee", input: "transactions", doc: "fee the contract gives: amount x rate (debit, credit or QR), debit cap, plus fixed fee; approved purchases only" },
    DerivedDoc { name: "expected_rate_fee", input: "transactions", doc: "the rate part of expected_fee (after the debit cap)" },
    DerivedDoc { name: "expected_fixed_fee", input: "transactions", doc: "the fixed part of expected_fee" },
    DerivedDoc { name: "contract_rate_applied", input: "transactions", doc: "the contract rate that applies to this payment (debit, credit or QR)" },
    DerivedDoc { name: "fee_diff", input: "transactions", doc: "fee charged minus expected_fee" },
    DerivedDoc { name: "effective_rate", input: "transactions", doc: "fee / amount" },
    DerivedDoc { name: "distance_km", input: "transactions", doc: "distance from the terminal's install point (needs lat, lon, install_lat, install_lon)" },
    DerivedDoc { name: "days_since_install", input: "transactions", doc: "days from the merchant's installed_at to txn_time" },
    DerivedDoc { name: "days_since_prev_txn", input: "transactions", doc: "days since the merchant's previous approved purchase (for the first: since installation, if inside the data's period)" },
    DerivedDoc { name: "original_found, original_amount, original_card_hash, original_merchant_id", input: "transactions", doc: "for refunds and reversals: the original transaction, looked up by original_txn_id" },
    DerivedDoc { name: "txn_mcc_fee_class, txn_mcc_known, ...", input: "transactions", doc: "the MCC table's columns for the MCC the transaction was submitted under (mcc_fee_class etc. are the merchant's registered MCC's)" },
    DerivedDoc { name: "notice_days", input: "fee_changes", doc: "days from notice_published_at to effective_at" },
    DerivedDoc { name: "refund_threshold_reached_at, deposit_refunded_at, days_to_deposit_refund", input: "applications", doc: "when approved purchases reached deposit_refund_threshold, when the deposit was refunded (fees), and the days between (to --as-of while not refunded)" },
    DerivedDoc { name: "terminal_kind, model_max_single_txn_amount, model_has_gps, terminal_model_known", input: "applications", doc: "from terminal_models.csv by terminal_model" },
    DerivedDoc { name: "type_max_single_txn_amount, type_max_daily_amount, type_max_monthly_amount", input: "applications", doc: "from merchant_type_limits.csv by merchant_type" },
    DerivedDoc { name: "mcc_description, mcc_fee_class, mcc_daytime, mcc_known", input: "applications", doc: "from mcc.csv by mcc" },
];

fn strs(df: &DataFrame, name: &str) -> Option<StringChunked> {
    df.column(name).ok()?.as_materialized_series().str().ok().cloned()
}

fn dates(df: &DataFrame, name: &str) -> Option<Vec<Option<NaiveDate>>> {
    let c = df.column(name).ok()?.as_materialized_series().date().ok()?.physical().clone();
    Some(c.iter().map(|v| v.map(date_from_days)).collect())
}

fn datetimes_as_dates(df: &DataFrame, name: &str) -> Option<Vec<Option<NaiveDate>>> {
    let c = df.column(name).ok()?.as_materialized_series().datetime().ok()?.physical().clone();
    Some(c.iter().map(|v| v.map(|ms| datetime_from_millis(ms).date())).collect())
}

/// Integer units of a decimal column (fen for money, millionths for rates).
fn scaled(df: &DataFrame, name: &str) -> Option<Vec<Option<i64>>> {
    let s = df.column(name).ok()?.as_materialized_series();
    let d = s.decimal().ok()?;
    Some(d.physical().iter().map(|v| v.map(|x| x as i64)).collect())
}

fn bools(name: &str, v: impl Iterator<Item = Option<bool>>) -> Column {
    BooleanChunked::from_iter_options(name.into(), v).into_series().into_column()
}

fn ints(name: &str, v: impl Iterator<Item = Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), v).into_series().into_column()
}

/// Add the application checks. `as_of` fixes "today" for expiry and age.
pub fn derive_applications(df: &mut DataFrame, as_of: NaiveDate) -> PolarsResult<()> {
    let n = df.height();
    let mut add: Vec<Column> = Vec::new();
    if let Some(uscc) = strs(df, "uscc") {
        let up: Vec<Option<String>> = uscc.iter().map(|o| o.map(|s| s.to_ascii_uppercase())).collect();
        add.push(bools("uscc_format_ok", up.iter().map(|o| o.as_deref().map(uscc::format_ok))));
        add.push(bools("uscc_valid", up.iter().map(|o| o.as_deref().map(uscc::is_valid))));
        add.push(bools(
            "uscc_org_code_ok",
            up.iter()
                .map(|o| o.as_deref().map(|s| s.len() == 18 && s.is_ascii() && uscc::org_code_ok(&s[8..17]))),
        ));
        add.push(
            StringChunked::from_iter_options("uscc_prefix".into(), up.iter().map(|o| o.as_deref().and_then(|s| s.get(..2))))
                .into_series()
                .into_column(),
        );
    }
    let days_left = |name: &str| dates(df, name).map(|v| v.into_iter().map(|d| d.map(|d| (d - as_of).num_days())).collect::<Vec<_>>());
    if let Some(v) = days_left("license_expiry") {
        add.push(ints("license_days_left", v.into_iter()));
    }
    if let Some(v) = days_left("legal_rep_id_expiry") {
        add.push(ints("id_days_left", v.into_iter()));
    }
    if let Some(ids) = strs(df, "legal_rep_id_number") {
        let births: Vec<Option<NaiveDate>> = ids.iter().map(|o| o.and_then(idcard::birth_date)).collect();
        add.push(bools("id_format_ok", ids.iter().map(|o| o.map(idcard::format_ok))));
        add.push(bools("id_valid", ids.iter().map(|o| o.map(idcard::is_valid))));
        add.push(
            Int32Chunked::from_iter_options(
                "id_birth_date".into(),
                births.iter().map(|b| b.map(crate::input::values::days_since_epoch)),
            )
            .into_date()
            .into_series()
            .into_column(),
        );
        let submitted = datetimes_as_dates(df, "submitted_at").unwrap_or_else(|| vec![None; n]);
        add.push(ints(
            "id_age_at_submission",
            births
                .iter()
                .zip(&submitted)
                .map(|(b, s)| Some(idcard::age_at((*b)?, (*s)?) as i64)),
        ));
        add.push(ints("id_age", births.iter().map(|b| b.map(|b| idcard::age_at(b, as_of) as i64))));
        if let Some(starts) = dates(df, "legal_rep_id_start") {
            let ends = dates(df, "legal_rep_id_expiry").unwrap_or_else(|| vec![None; n]);
            let perm: Vec<Option<bool>> = df
                .column("legal_rep_id_expiry_permanent")
                .ok()
                .and_then(|c| c.as_materialized_series().bool().ok().cloned())
                .map(|c| c.iter().collect())
                .unwrap_or_else(|| vec![None; n]);
            add.push(bools(
                "id_term_ok",
                (0..n).map(|i| {
                    let (b, s) = (births[i]?, starts[i]?);
                    match (ends[i], perm[i]) {
                        (Some(e), _) => Some(idcard::term_consistent(b, s, Some(e))),
                        (None, Some(true)) => Some(idcard::term_consistent(b, s, None)),
                        _ => None,
                    }
                }),
            ));
        }
    }
    if let Some(acct) = strs(df, "settlement_account_number") {
        add.push(bools("settlement_account_luhn_ok", acct.iter().map(|o| o.map(luhn::is_valid))));
    }
    if let Some(docs) = strs(df, "documents") {
        let lists: Vec<Vec<&str>> = docs
            .iter()
            .map(|o| o.map(|s| s.split(';').map(str::trim).collect()).unwrap_or_default())
            .collect();
        for doc in DOCUMENTS {
            add.push(bools(&format!("has_{doc}"), lists.iter().map(|l| Some(l.contains(doc)))));
        }
    }
    if let (Some(sub), Some(rev)) = (datetimes_as_dates(df, "submitted_at"), datetimes_as_dates(df, "reviewed_at")) {
        add.push(ints(
            "review_working_days",
            sub.iter()
                .zip(&rev)
                .map(|(s, r)| Some(calendar::working_days_between((*s)?, (*r)?))),
        ));
    }
    for c in add {
        df.with_column(c)?;
    }
    Ok(())
}

/// Add the transaction checks; `df` already carries the merchant's
/// contract columns from the join.
pub fn derive_transactions(df: &mut DataFrame) -> PolarsResult<()> {
    let n = df.height();
    let mut add: Vec<Column> = Vec::new();
    let amount = scaled(df, "amount").unwrap_or_else(|| vec![None; n]);
    add.push(ints("amount_fen", amount.iter().copied()));

    let col_or_none = |name: &str| scaled(df, name).unwrap_or_else(|| vec![None; n]);
    let (rd, cap, rc, rq, fixed) = (
        col_or_none("contract_rate_debit"),
        col_or_none("contract_debit_cap"),
        col_or_none("contract_rate_credit"),
        col_or_none("contract_rate_qr"),
        col_or_none("contract_fixed_fee"),
    );
    let fee = col_or_none("fee");
    let texts = |name: &str| -> Vec<Option<&str>> {
        match df.column(name).ok().and_then(|c| c.as_materialized_series().str().ok()) {
            Some(c) => c.iter().collect(),
            None => vec![None; n],
        }
    };
    let (method, card, ttype, status) = (texts("payment_method"), texts("card_type"), texts("txn_type"), texts("status"));
    let mut exp_total = Vec::with_capacity(n);
    let mut exp_rate = Vec::with_capacity(n);
    let mut exp_fixed = Vec::with_capacity(n);
    let mut rate_applied = Vec::with_capacity(n);
    for i in 0..n {
        let priced = (|| {
            let is_sale = matches!(ttype[i]?, "purchase" | "preauth_complete");
            if !is_sale || status[i]? != "approved" {
                return None;
            }
            let how = fee::Priced::of(method[i]?, card[i])?;
            let contract = fee::Contract {
                rate_debit: rd[i],
                debit_cap: cap[i],
                rate_credit: rc[i],
                rate_qr: rq[i],
                fixed_fee: fixed[i],
            };
            fee::expected(amount[i]?, how, &contract)
        })();
        exp_total.push(priced.map(|e| e.total()));
        exp_rate.push(priced.map(|e| e.rate_part));
        exp_fixed.push(priced.map(|e| e.fixed_part));
        rate_applied.push(priced.map(|e| e.rate));
    }
    let diff: Vec<Option<i64>> = fee.iter().zip(&exp_total).map(|(f, e)| Some((*f)? - (*e)?)).collect();
    let eff: Vec<Option<f64>> = fee
        .iter()
        .zip(&amount)
        .map(|(f, a)| match (f, a) {
            (Some(f), Some(a)) if *a != 0 => Some(*f as f64 / *a as f64),
            _ => None,
        })
        .collect();
    let money = |name: &str, v: Vec<Option<i64>>| -> PolarsResult<Column> {
        Ok(decimal_from_scaled(Int64Chunked::from_iter_options(name.into(), v.into_iter()), 2)?.into_column())
    };
    add.push(money("expected_fee", exp_total)?);
    add.push(money("expected_rate_fee", exp_rate)?);
    add.push(money("expected_fixed_fee", exp_fixed)?);
    add.push(
        decimal_from_scaled(
            Int64Chunked::from_iter_options("contract_rate_applied".into(), rate_applied.into_iter()),
            6,
        )?
        .into_column(),
    );
    add.push(money("fee_diff", diff)?);
    add.push(
        Float64Chunked::from_iter_options("effective_rate".into(), eff.into_iter())
            .into_series()
            .into_column(),
    );

    let f64s = |name: &str| -> Option<Float64Chunked> { df.column(name).ok()?.as_materialized_series().f64().ok().cloned() };
    if let (Some(lat), Some(lon), Some(ilat), Some(ilon)) = (f64s("lat"), f64s("lon"), f64s("install_lat"), f64s("install_lon")) {
        let d = (0..n).map(|i| Some(calendar::haversine_km(lat.get(i)?, lon.get(i)?, ilat.get(i)?, ilon.get(i)?)));
        add.push(
            Float64Chunked::from_iter_options("distance_km".into(), d)
                .into_series()
                .into_column(),
        );
    }
    for c in add {
        df.with_column(c)?;
    }
    // Calendar parts come from polars' own temporal kernels.
    let mut exprs = vec![
        col("txn_time").dt().date().alias("txn_date"),
        col("txn_time").dt().hour().cast(DataType::Int32).alias("hour"),
    ];
    if df.schema().contains("installed_at") {
        exprs.push(
            (col("txn_time") - col("installed_at"))
                .dt()
                .total_days(false)
                .alias("days_since_install"),
        );
    }
    *df = std::mem::take(df).lazy().with_columns(exprs).collect()?;
    Ok(())
}

/// Refunds and their originals: whether the original is in the data, and
/// its amount, card and merchant, so rules can compare them.
pub fn derive_originals(df: &mut DataFrame) -> PolarsResult<()> {
    let n = df.height();
    let ids = strs(df, "txn_id").expect("txn_id is required");
    let orig = strs(df, "original_txn_id");
    let amount = scaled(df, "amount").unwrap_or_else(|| vec![None; n]);
    let card = strs(df, "card_hash");
    let merchant = strs(df, "merchant_id").expect("merchant_id is required");
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        if let Some(id) = id {
            first.entry(id).or_insert(i);
        }
    }
    let lookup: Vec<Option<Option<usize>>> = (0..n)
        .map(|i| orig.as_ref().and_then(|o| o.get(i)).map(|o| first.get(o).copied()))
        .collect();
    let add = vec![
        bools("original_found", lookup.iter().map(|l| l.map(|f| f.is_some()))),
        decimal_from_scaled(
            Int64Chunked::from_iter_options("original_amount".into(), lookup.iter().map(|l| l.flatten().and_then(|j| amount[j]))),
            2,
        )?
        .into_column(),
        StringChunked::from_iter_options(
            "original_card_hash".into(),
            lookup
                .iter()
                .map(|l| l.flatten().and_then(|j| card.as_ref().and_then(|c| c.get(j)))),
        )
        .into_series()
        .into_column(),
        StringChunked::from_iter_options(
            "original_merchant_id".into(),
            lookup.iter().map(|l| l.flatten().and_then(|j| merchant.get(j))),
        )
        .into_series()
        .into_column(),
    ];
    for c in add {
        df.with_column(c)?;
    }
    Ok(())
}

/// Days since the merchant's previous approved purchase (the first one:
/// since installation), for dormancy rules. Other rows get null.
pub fn derive_gaps(df: &mut DataFrame, period_start: Option<i64>) -> PolarsResult<()> {
    let n = df.height();
    let merchant = strs(df, "merchant_id").expect("merchant_id is required");
    let time = df.column("txn_time")?.as_materialized_series().datetime()?.physical().clone();
    let installed = df
        .column("installed_at")
        .ok()
        .and_then(|c| c.as_materialized_series().datetime().ok().map(|d| d.physical().clone()));
    let (ttype, status) = (strs(df, "txn_type"), strs(df, "status"));
    // Plain vectors: the sort below compares millions of pairs.
    let merchant: Vec<Option<&str>> = merchant.iter().collect();
    let time: Vec<Option<i64>> = time.iter().collect();
    let installed: Option<Vec<Option<i64>>> = installed.map(|c| c.iter().collect());
    let counts: Vec<bool> = match (&ttype, &status) {
        (Some(t), Some(s)) => t
            .iter()
            .zip(s.iter())
            .map(|(t, s)| t == Some("purchase") && s == Some("approved"))
            .collect(),
        _ => vec![false; n],
    };
    let mut order: Vec<usize> = (0..n).filter(|i| counts[*i]).collect();
    order.sort_unstable_by(|a, b| (merchant[*a], time[*a], a).cmp(&(merchant[*b], time[*b], b)));
    let mut gap: Vec<Option<f64>> = vec![None; n];
    let day_ms = 86_400_000.0;
    // Before a merchant's first transaction in the data the gap is known
    // only if it was installed inside the data's period; an installation
    // before the period says nothing about activity before the period.
    let period_start = period_start.unwrap_or_else(|| order.iter().filter_map(|&i| time[i]).min().unwrap_or(i64::MIN));
    let mut prev: Option<(Option<&str>, i64)> = None;
    for &i in &order {
        let (m, t) = (merchant[i], time[i].unwrap_or(0));
        let before = match prev {
            Some((pm, pt)) if pm == m => Some(pt),
            _ => installed.as_ref().and_then(|c| c[i]).filter(|inst| *inst >= period_start),
        };
        gap[i] = before.map(|b| (t - b) as f64 / day_ms);
        prev = Some((m, t));
    }
    df.with_column(
        Float64Chunked::from_iter_options("days_since_prev_txn".into(), gap.into_iter())
            .into_series()
            .into_column(),
    )?;
    Ok(())
}

/// Per merchant: when approved purchases first reached the deposit refund
/// threshold, when the deposit was refunded, and the days between them
/// (to `as_of` while not refunded). Joined onto the applications.
pub fn merchant_deposit_activity(txns: &DataFrame, fees: Option<&DataFrame>, as_of: NaiveDate) -> PolarsResult<DataFrame> {
    use std::collections::BTreeMap;
    let n = txns.height();
    let merchant = strs(txns, "merchant_id").expect("merchant_id is required");
    let time = txns.column("txn_time")?.as_materialized_series().datetime()?.physical().clone();
    let amount = scaled(txns, "amount").unwrap_or_else(|| vec![None; n]);
    let threshold = scaled(txns, "deposit_refund_threshold").unwrap_or_else(|| vec![None; n]);
    let (ttype, status) = (strs(txns, "txn_type"), strs(txns, "status"));
    let (ttype, status): (Vec<Option<&str>>, Vec<Option<&str>>) = match (&ttype, &status) {
        (Some(t), Some(s)) => (t.iter().collect(), s.iter().collect()),
        _ => (vec![None; n], vec![None; n]),
    };
    let mut order: Vec<usize> = (0..n)
        .filter(|&i| threshold[i].is_some_and(|t| t > 0) && ttype[i] == Some("purchase") && status[i] == Some("approved"))
        .collect();
    order.sort_by(|a, b| (merchant.get(*a), time.get(*a), a).cmp(&(merchant.get(*b), time.get(*b), b)));
    let mut reached: BTreeMap<String, i64> = BTreeMap::new();
    let mut cum: BTreeMap<&str, i64> = BTreeMap::new();
    for &i in &order {
        let Some(m) = merchant.get(i) else { continue };
        let c = cum.entry(m).or_insert(0);
        *c += amount[i].unwrap_or(0);
        if *c >= threshold[i].unwrap_or(i64::MAX) && !reached.contains_key(m) {
            reached.insert(m.to_string(), time.get(i).unwrap_or(0));
        }
    }
    let mut refunded: BTreeMap<String, i64> = BTreeMap::new();
    if let Some(f) = fees {
        let fm = strs(f, "merchant_id").expect("merchant_id is required");
        let ft = f.column("charged_at")?.as_materialized_series().datetime()?.physical().clone();
        let kind = strs(f, "charge_type").expect("charge_type is required");
        for i in 0..f.height() {
            if let (Some(m), Some("deposit_refund"), Some(t)) = (fm.get(i), kind.get(i), ft.get(i)) {
                let e = refunded.entry(m.to_string()).or_insert(t);
                *e = (*e).min(t);
            }
        }
    }
    let as_of_ms = crate::input::values::millis_of(as_of.and_hms_opt(0, 0, 0).expect("midnight"));
    let ids: Vec<&String> = reached.keys().collect();
    let reached_at: Vec<i64> = ids.iter().map(|m| reached[*m]).collect();
    let refund_at: Vec<Option<i64>> = ids.iter().map(|m| refunded.get(*m).copied()).collect();
    let days: Vec<i64> = reached_at
        .iter()
        .zip(&refund_at)
        .map(|(r, f)| (f.unwrap_or(as_of_ms) - r).div_euclid(86_400_000))
        .collect();
    let h = ids.len();
    DataFrame::new(
        h,
        vec![
            StringChunked::from_iter_values("merchant_id".into(), ids.iter().map(|s| s.as_str()))
                .into_series()
                .into_column(),
            Int64Chunked::from_vec("refund_threshold_reached_at".into(), reached_at)
                .into_datetime(TimeUnit::Milliseconds, None)
                .into_series()
                .into_column(),
            Int64Chunked::from_iter_options("deposit_refunded_at".into(), refund_at.into_iter())
                .into_datetime(TimeUnit::Milliseconds, None)
                .into_series()
                .into_column(),
            Int64Chunked::from_vec("days_to_deposit_refund".into(), days)
                .into_series()
                .into_column(),
        ],
    )
}
