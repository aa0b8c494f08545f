//! Derived columns: checks that SQL cannot say well (check characters,
//! validity terms, expected fees, distances), computed once per scan in
//! Rust and then used by rules by name like any input column.

pub mod calendar;
pub mod fee;
pub(crate) mod held;
pub mod idcard;
pub mod luhn;
pub mod mcc;
pub(crate) mod screen;
pub(crate) mod texts;
pub mod uscc;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use crate::contract::DOCUMENTS;
use crate::input::categories::coded;
use crate::input::values::{date_from_days, datetime_from_millis};

pub use crate::contract::{DerivedDoc, DERIVED};
pub(crate) use texts::Texts;

fn strs(df: &DataFrame, name: &str) -> Option<StringChunked> {
    df.column(name).ok()?.as_materialized_series().str().ok().cloned()
}

fn dates(df: &DataFrame, name: &str) -> Option<Vec<Option<NaiveDate>>> {
    let c = df.column(name).ok()?.as_materialized_series().date().ok()?.physical().clone();
    Some(c.iter().map(|v| v.map(date_from_days)).collect())
}

fn datetimes_as_dates(df: &DataFrame, name: &str) -> Option<Vec<Option<NaiveDate>>> {
    Some(
        times_ms(df, name)?
            .into_iter()
            .map(|v| v.map(|ms| datetime_from_millis(ms).date()))
            .collect(),
    )
}

/// `df`'s money column `name` held as `as_name` (`held::held_as`).
fn held_as(df: &DataFrame, name: &str, as_name: &str) -> Option<PolarsResult<Column>> {
    held::held_as(df.column(name).ok()?, as_name)
}

/// Integer units of a money or rate column (fen for money, millionths for
/// rates), a decimal or held as units (`held`).
pub(crate) fn scaled(df: &DataFrame, name: &str) -> Option<Vec<Option<i64>>> {
    Some(held::units(df.column(name).ok()?)?.iter().collect())
}

fn bools(name: &str, v: impl Iterator<Item = Option<bool>>) -> Column {
    BooleanChunked::from_iter_options(name.into(), v).into_series().into_column()
}

fn ints(name: &str, v: impl Iterator<Item = Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), v).into_series().into_column()
}

/// Each row's merchant application, as a position in the one-per-merchant
/// applications (`None`: no application), so checks read contract terms
/// per merchant instead of joined onto every row.
pub(crate) struct AppRows<'a> {
    pub apps: &'a DataFrame,
    pub at: Vec<Option<IdxSize>>,
}

impl AppRows<'_> {
    /// An application column's values, one per row, through `get`.
    fn column<T: Copy>(&self, per_app: Option<Vec<Option<T>>>) -> PerRow<'_, T> {
        PerRow { at: &self.at, per_app }
    }
}

/// An application value looked up for a row.
struct PerRow<'a, T> {
    at: &'a [Option<IdxSize>],
    per_app: Option<Vec<Option<T>>>,
}

impl<T: Copy> PerRow<'_, T> {
    fn get(&self, row: usize) -> Option<T> {
        self.per_app.as_ref()?[self.at[row]? as usize]
    }
}

fn times_ms(df: &DataFrame, name: &str) -> Option<Vec<Option<i64>>> {
    let c = df.column(name).ok()?.as_materialized_series().datetime().ok()?.physical().clone();
    Some(c.iter().collect())
}

fn floats(df: &DataFrame, name: &str) -> Option<Vec<Option<f64>>> {
    Some(df.column(name).ok()?.as_materialized_series().f64().ok()?.iter().collect())
}

/// Add the application checks. `as_of` fixes "today" for expiry and age.
pub(crate) fn derive_applications(df: &mut DataFrame, as_of: NaiveDate) -> PolarsResult<()> {
    let n = df.height();
    let mut add: Vec<Column> = Vec::new();
    if let Some(ids) = strs(df, "merchant_id") {
        fn mcc_of(s: &str) -> Option<&str> {
            (s.len() == 15 && s.bytes().all(|b| b.is_ascii_digit())).then(|| &s[7..11])
        }
        add.push(
            StringChunked::from_iter_options("merchant_id_mcc".into(), ids.iter().map(|o| o.and_then(mcc_of)))
                .into_series()
                .into_column(),
        );
    }
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
    if let Some(raw) = strs(df, "legal_rep_id_number") {
        // A first-generation 15-digit number is upgraded to 18 digits (19
        // inserted before the year, check character computed) and checked
        // as such; DOC-ID-08 reports it as a legacy number.
        let upgraded: Vec<Option<String>> = raw
            .iter()
            .map(|o| o.map(|s| idcard::upgrade15(s).unwrap_or_else(|| s.to_string())))
            .collect();
        add.push(bools("id_legacy15", raw.iter().map(|o| o.map(|s| idcard::upgrade15(s).is_some()))));
        let ids: Vec<Option<&str>> = upgraded.iter().map(|o| o.as_deref()).collect();
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

/// The derived columns of a row's price under its contract: made only
/// when a rule reads one, being the costliest of the transaction checks.
const PRICED: &[&str] = &[
    "expected_fee",
    "expected_rate_fee",
    "expected_fixed_fee",
    "contract_rate_applied",
    "fee_diff",
];

/// The derived columns of a refund's original (`derive_originals`).
pub(crate) const ORIGINALS: &[&str] = &["original_found", "original_amount", "original_card_hash", "original_merchant_id"];

/// Whether the transaction checks that make the columns `wanted` keeps
/// read input column `c` (besides the merchant, time, type, status and
/// amount, which findings and the per-merchant checks always read).
pub(crate) fn transaction_checks_read(c: &str, wanted: &dyn Fn(&str) -> bool) -> bool {
    let any = |names: &[&str]| names.iter().any(|n| wanted(n));
    match c {
        "txn_id" | "merchant_id" | "txn_time" | "txn_type" | "status" | "amount" => true,
        "fee" => any(PRICED) || wanted("effective_rate"),
        "payment_method" | "card_type" => any(PRICED),
        "lat" | "lon" => wanted("distance_km"),
        "original_txn_id" => any(ORIGINALS),
        "card_hash" => wanted("original_card_hash"),
        _ => false,
    }
}

/// Add the transaction checks whose columns `wanted` keeps (every one
/// for a pass of the whole pack; a peer pass reads a few); `app` says
/// each row's application, whose contract terms price the row.
pub(crate) fn derive_transactions(df: &mut DataFrame, app: &AppRows, wanted: &(dyn Fn(&str) -> bool + Sync)) -> PolarsResult<()> {
    let n = df.height();
    let priced_wanted = PRICED.iter().any(|p| wanted(p));
    // One contract per application, read per row in one lookup: five
    // lookups a row, one per term, each missed the cache where the
    // merchants of consecutive rows are scattered (rows in input order):
    // a quarter of these checks' time at 10M rows.
    let contracts = if !priced_wanted {
        app.column(None)
    } else {
        let term = |name: &str| scaled(app.apps, name);
        let (rd, cap, rc, rq, fixed) = (
            term("contract_rate_debit"),
            term("contract_debit_cap"),
            term("contract_rate_credit"),
            term("contract_rate_qr"),
            term("contract_fixed_fee"),
        );
        let of = |t: &Option<Vec<Option<i64>>>, a: usize| t.as_ref().and_then(|t| t[a]);
        let per_app: Vec<Option<fee::Contract>> = (0..app.apps.height())
            .map(|a| {
                Some(fee::Contract {
                    rate_debit: of(&rd, a),
                    debit_cap: of(&cap, a),
                    rate_credit: of(&rc, a),
                    rate_qr: of(&rq, a),
                    fixed_fee: of(&fixed, a),
                })
            })
            .collect();
        app.column(Some(per_app))
    };
    // The per-row prices and amounts (770 MB at 10M rows) live in this
    // block only: they are gone before the distances' inputs are read.
    let mut add: Vec<Column> = {
        // Column extraction and building run in parallel: at millions of rows
        // each is a pass over memory, and they are independent.
        // Read as units only where a check computes with them or the column
        // is not held as units already.
        let computed = priced_wanted || wanted("effective_rate");
        let units = |name: &str| match computed || held_as(df, name, name).is_none() {
            true => scaled(df, name).unwrap_or_else(|| vec![None; n]),
            false => Vec::new(),
        };
        let (amount, fee) = rayon::join(|| units("amount"), || units("fee"));
        // How each row is priced, if it is: an approved sale, by card
        // (debit or credit) or not (QR). The enumerations are classified
        // once per value (`Texts::map_values`), a byte a row.
        let priced_how: Vec<Option<fee::Priced>> = if !priced_wanted {
            Vec::new()
        } else {
            let class = |name: &str, f: fn(Option<&str>) -> u8| Texts::of_chunks(df, name).map(|t| t.map_values(f));
            let (sale, approved, method, card) = (
                class("txn_type", |v| matches!(v, Some("purchase" | "preauth_complete")) as u8),
                class("status", |v| (v == Some("approved")) as u8),
                class("payment_method", |v| match v {
                    None => 0,
                    Some("card") => 1,
                    Some(_) => 2,
                }),
                class("card_type", |v| match v {
                    Some("debit") => 1,
                    Some("credit") => 2,
                    _ => 0,
                }),
            );
            match (sale, approved, method) {
                (Some(sale), Some(approved), Some(method)) => {
                    // A value of each class, so that the pricing is `Priced::of`'s.
                    const METHOD: [Option<&str>; 3] = [None, Some("card"), Some("qr")];
                    const CARD: [Option<&str>; 3] = [None, Some("debit"), Some("credit")];
                    let how = |m: u8, c: u8| fee::Priced::of(METHOD[m as usize]?, CARD[c as usize]);
                    (0..n)
                        .into_par_iter()
                        .map(|i| {
                            if sale[i] == 0 || approved[i] == 0 {
                                return None;
                            }
                            how(method[i], card.as_ref().map_or(0, |c| c[i]))
                        })
                        .collect()
                }
                _ => vec![None; n],
            }
        };
        let priced: Vec<Option<fee::Expected>> = if !priced_wanted {
            Vec::new()
        } else {
            (0..n)
                .into_par_iter()
                .map(|i| fee::expected(amount[i]?, priced_how[i]?, &contracts.get(i).unwrap_or_default()))
                .collect()
        };
        drop(priced_how);
        type Build<'a> = Box<dyn Fn() -> PolarsResult<Column> + Send + Sync + 'a>;
        let (priced, amount, fee) = (&priced, &amount, &fee);
        let mut builds: Vec<Build> = vec![
            // The amount as held already (`held_as`), or from its units.
            Box::new(|| held_as(df, "amount", "amount_fen").unwrap_or_else(|| Ok(held::hold("amount_fen", n, |i| amount[i])))),
        ];
        if priced_wanted {
            builds.extend([
                Box::new(|| Ok(held::hold("expected_fee", n, |i| priced[i].map(|e| e.total())))) as Build,
                Box::new(|| Ok(held::hold("expected_rate_fee", n, |i| priced[i].map(|e| e.rate_part)))),
                Box::new(|| Ok(held::hold("expected_fixed_fee", n, |i| priced[i].map(|e| e.fixed_part)))),
                Box::new(|| Ok(held::hold("contract_rate_applied", n, |i| priced[i].map(|e| e.rate)))),
                Box::new(|| Ok(held::hold("fee_diff", n, |i| Some(fee[i]? - priced[i]?.total())))),
            ]);
        }
        if wanted("effective_rate") {
            builds.push(Box::new(|| {
                let eff = fee.iter().zip(amount).map(|(f, a)| match (f, a) {
                    (Some(f), Some(a)) if *a != 0 => Some(*f as f64 / *a as f64),
                    _ => None,
                });
                Ok(Float64Chunked::from_iter_options("effective_rate".into(), eff)
                    .into_series()
                    .into_column())
            }));
        }
        let mut add: Vec<Column> = builds.par_iter().map(|b| b()).collect::<PolarsResult<_>>()?;
        // From here on the amount and the fee are held as units (`held`),
        // the amount as the very buffer of `amount_fen`: 16-byte decimals
        // of every row were 342 MB at 10M rows.
        if df.schema().contains("amount") {
            let fen = add.iter().find(|c| c.name() == "amount_fen").expect("amount_fen is built").clone();
            add.push(fen.with_name("amount".into()));
        }
        if df.schema().contains("fee") {
            add.push(held_as(df, "fee", "fee").unwrap_or_else(|| Ok(held::hold("fee", n, |i| fee[i])))?);
        }
        add
    };

    let (ilat, ilon) = (
        app.column(floats(app.apps, "install_lat")),
        app.column(floats(app.apps, "install_lon")),
    );
    let lat_lon = || Some((floats(df, "lat")?, floats(df, "lon")?));
    if let (true, Some((lat, lon)), Some(_), Some(_)) = (wanted("distance_km"), lat_lon(), &ilat.per_app, &ilon.per_app) {
        let d: Vec<Option<f64>> = (0..n)
            .into_par_iter()
            .map(|i| Some(calendar::haversine_km(lat[i]?, lon[i]?, ilat.get(i)?, ilon.get(i)?)))
            .collect();
        add.push(
            Float64Chunked::from_iter_options("distance_km".into(), d.into_iter())
                .into_series()
                .into_column(),
        );
    }
    let installed = app.column(times_ms(app.apps, "installed_at"));
    if installed.per_app.is_some() && wanted("days_since_install") {
        let time = times_ms(df, "txn_time").unwrap_or_else(|| vec![None; n]);
        // Whole days, truncated toward zero, as polars' `total_days`.
        add.push(ints(
            "days_since_install",
            (0..n).map(|i| Some((time[i]? - installed.get(i)?) / 86_400_000)),
        ));
    }
    for c in add {
        df.with_column(c)?;
    }
    // Calendar parts come from polars' own temporal kernels.
    let mut exprs = Vec::new();
    if wanted("txn_date") || wanted("txn_month") {
        exprs.push(col("txn_time").dt().date().alias("txn_date"));
    }
    if wanted("hour") {
        exprs.push(col("txn_time").dt().hour().cast(DataType::Int32).alias("hour"));
    }
    if !exprs.is_empty() {
        *df = std::mem::take(df).lazy().with_columns(exprs).collect()?;
    }
    if wanted("txn_month") {
        let months = month_starts(df.column("txn_date")?.as_materialized_series().date()?.physical());
        df.with_column(months.with_name("txn_month".into()).into_date().into_series().into_column())?;
    }
    Ok(())
}

/// The first day of each date's month (days since the epoch), null for
/// null: one calendar computation per day of the dates' range, not per row.
fn month_starts(days: &Int32Chunked) -> Int32Chunked {
    use chrono::Datelike;
    let first_of_month = |d: i32| {
        let date = date_from_days(d);
        crate::input::values::days_since_epoch(date - chrono::Duration::days(i64::from(date.day0())))
    };
    match (days.min(), days.max()) {
        // A range of a few thousand years at most is a table; dates spread
        // wider than that (none are, from the readers) go one by one.
        (Some(lo), Some(hi)) if i64::from(hi) - i64::from(lo) < 1_000_000 => {
            let table: Vec<i32> = (lo..=hi).map(first_of_month).collect();
            // Null slots hold any value: out of the table, left as it is.
            days.apply_values(|d| {
                usize::try_from(i64::from(d) - i64::from(lo))
                    .ok()
                    .and_then(|i| table.get(i).copied())
                    .unwrap_or(d)
            })
        }
        _ => days.apply_values(first_of_month),
    }
}

/// Refunds and their originals: whether the original is in the data, and
/// its amount, card and merchant, so rules can compare them (the columns
/// to add). The original's card and merchant only if `wanted` (no rule
/// of the bundled pack reads the merchant: 171 MB at 10M rows as text).
pub(crate) fn derive_originals(df: &DataFrame, wanted: impl Fn(&str) -> bool) -> PolarsResult<Vec<Column>> {
    let n = df.height();
    let ids = strs(df, "txn_id").expect("txn_id is required");
    // Read in place: only the refunds' originals are looked up, a few rows
    // in a hundred, so no column is copied or expanded per row (at 10M
    // rows each such copy was 170 MB at the derived columns' peak).
    let orig = Texts::of_chunks(df, "original_txn_id");
    let amount = df.column("amount").ok().and_then(held::unit_reader);
    let card = Texts::of_chunks(df, "card_hash");
    let merchant = Texts::of_chunks(df, "merchant_id").expect("merchant_id is required");
    // The rows naming an original, and its id. Only these ids go in the
    // map: a map of every transaction id would hold millions of entries.
    let naming: Vec<(usize, &str)> = orig
        .as_ref()
        .map(|o| o.iter().enumerate().filter_map(|(i, id)| Some((i, id?))).collect())
        .unwrap_or_default();
    let mut first: PlHashMap<&str, Option<usize>> = naming.iter().map(|(_, o)| (*o, None)).collect();
    if !first.is_empty() {
        // Most rows are no refund's original: screened out without a
        // lookup (54,000 originals at the 10M month: each row's id was hashed
        // whole and probed in a table of megabytes).
        let screen = screen::IdScreen::of(first.keys().copied());
        for (i, id) in ids.iter().enumerate() {
            if let Some(slot) = id.filter(|id| screen.may_hold(id)).and_then(|id| first.get_mut(id)) {
                slot.get_or_insert(i);
            }
        }
    }
    // Per row, 4 bytes: no original named, named but not in the data, or
    // the original's row.
    const NOT_NAMED: u32 = u32::MAX;
    const NOT_FOUND: u32 = u32::MAX - 1;
    let mut lookup = vec![NOT_NAMED; n];
    for (i, o) in &naming {
        lookup[*i] = first[o].map_or(NOT_FOUND, |j| j as u32);
    }
    drop((naming, first));
    let named = |i: usize| (lookup[i] != NOT_NAMED).then_some(lookup[i]);
    let original = |i: usize| named(i).filter(|j| *j != NOT_FOUND).map(|j| j as usize);
    let mut add = vec![
        bools("original_found", (0..n).map(|i| named(i).map(|j| j != NOT_FOUND))),
        held::hold("original_amount", n, |i| original(i).and_then(|j| amount.as_ref()?(j))),
    ];
    // The original's card and merchant are empty on all but the refunds:
    // coded from the start (4 bytes a row; as text a 16-byte view each,
    // held through the derived columns' peak until it was coded).
    if wanted("original_card_hash") {
        let values = (0..n).map(|i| original(i).and_then(|j| card.as_ref()?.get(j)));
        add.push(coded("original_card_hash".into(), n, values)?.into_column());
    }
    if wanted("original_merchant_id") {
        let values = (0..n).map(|i| original(i).and_then(|j| merchant.get(j)));
        add.push(coded("original_merchant_id".into(), n, values)?.into_column());
    }
    Ok(add)
}

/// Days since the merchant's previous approved purchase (the first one:
/// since installation), for dormancy rules; other rows get null (the
/// column to add).
/// `merchants` codes each row's merchant (equal ids, equal codes).
pub(crate) fn derive_gaps(df: &DataFrame, app: &AppRows, period_start: Option<i64>, merchants: &[u32]) -> Column {
    let n = df.height();
    let time = times_ms_or_none(df, "txn_time").unwrap_or_else(|| vec![NO_TIME; n]);
    let installed = app.column(times_ms(app.apps, "installed_at"));
    let counts = approved_purchases(df);
    let order = by_merchant_and_time((0..n).filter(|i| counts[*i]), merchants, &time);
    drop(counts);
    // Values and validity apart: a vector of options is 16 bytes a row.
    let mut gap: Vec<f64> = vec![0.0; n];
    let mut known = vec![false; n];
    let day_ms = 86_400_000.0;
    // Before a merchant's first transaction in the data the gap is known
    // only if it was installed inside the data's period; an installation
    // before the period says nothing about activity before the period.
    let period_start = period_start.unwrap_or_else(|| {
        order
            .iter()
            .map(|&i| time[i as usize])
            .filter(|t| *t != NO_TIME)
            .min()
            .unwrap_or(i64::MIN)
    });
    let mut prev: Option<(u32, i64)> = None;
    for &i in &order {
        let i = i as usize;
        let (m, t) = (merchants[i], if time[i] == NO_TIME { 0 } else { time[i] });
        let before = match prev {
            Some((pm, pt)) if pm == m => Some(pt),
            _ => installed.get(i).filter(|inst| *inst >= period_start),
        };
        if let Some(b) = before {
            gap[i] = (t - b) as f64 / day_ms;
            known[i] = true;
        }
        prev = Some((m, t));
    }
    // The values as they are, with the flags as their validity: no copy.
    let validity = BooleanChunked::from_slice(PlSmallStr::EMPTY, &known)
        .downcast_iter()
        .next()
        .map(|flags| flags.values().clone());
    Float64Chunked::from_vec_validity("days_since_prev_txn".into(), gap, validity)
        .into_series()
        .into_column()
}

/// A time column's milliseconds, null as `NO_TIME`.
const NO_TIME: i64 = i64::MIN;

/// `df`'s datetime column `name` in milliseconds, `NO_TIME` for a null:
/// 8 bytes a row where `times_ms`' options are 16.
fn times_ms_or_none(df: &DataFrame, name: &str) -> Option<Vec<i64>> {
    let c = df.column(name).ok()?.as_materialized_series().datetime().ok()?.physical().clone();
    let mut ms = Vec::with_capacity(c.len());
    crate::input::nullable::for_each_value(&c, |t, valid| ms.push(if valid { t } else { NO_TIME }));
    Some(ms)
}

/// `rows` (ascending) in order of merchant, then time (none first: `NO_TIME`
/// is the least), then position. Merchant codes are dense, so the rows are
/// bucketed by code in two passes (keeping their order); exports come in
/// time order, so most merchants' rows are then already in time order and
/// only the others are sorted, stably. A comparison sort of all 10M rows
/// took 1.6 s. Rows are 4-byte positions (a frame's height is a polars
/// `IdxSize`, 32 bits in this build).
fn by_merchant_and_time(rows: impl Iterator<Item = usize>, merchants: &[u32], time: &[i64]) -> Vec<u32> {
    let rows: Vec<u32> = rows.map(|i| i as u32).collect();
    let buckets = merchants.iter().max().map_or(0, |m| *m as usize + 1);
    let mut start = vec![0usize; buckets + 1];
    for &i in &rows {
        start[merchants[i as usize] as usize + 1] += 1;
    }
    for b in 0..buckets {
        start[b + 1] += start[b];
    }
    let mut next = start.clone();
    let mut out = vec![0u32; rows.len()];
    for &i in &rows {
        let b = merchants[i as usize] as usize;
        out[next[b]] = i;
        next[b] += 1;
    }
    drop(rows);
    let mut runs: Vec<&mut [u32]> = Vec::with_capacity(buckets);
    let mut rest: &mut [u32] = &mut out;
    for w in start.windows(2) {
        let (run, tail) = rest.split_at_mut(w[1] - w[0]);
        runs.push(run);
        rest = tail;
    }
    runs.into_par_iter().for_each(|run| {
        if !run.is_sorted_by_key(|&i| time[i as usize]) {
            run.sort_by_key(|&i| time[i as usize]);
        }
    });
    out
}

/// Whether each row is an approved purchase.
fn approved_purchases(df: &DataFrame) -> Vec<bool> {
    match (Texts::of(df, "txn_type"), Texts::of(df, "status")) {
        (Some(t), Some(s)) => t
            .iter()
            .zip(s.iter())
            .map(|(t, s)| t == Some("purchase") && s == Some("approved"))
            .collect(),
        _ => vec![false; df.height()],
    }
}

/// Per merchant: when approved purchases first reached the deposit refund
/// threshold, when the deposit was refunded, and the days between them
/// (to `as_of` while not refunded). Joined onto the applications.
pub(crate) fn merchant_deposit_activity(
    txns: &DataFrame,
    app: &AppRows,
    merchants: &[u32],
    fees: Option<&DataFrame>,
    as_of: NaiveDate,
) -> PolarsResult<DataFrame> {
    use std::collections::BTreeMap;
    let n = txns.height();
    let threshold = app.column(scaled(app.apps, "deposit_refund_threshold"));
    // Only merchants with a threshold count, a few in a hundred: their
    // rows are picked first and read by position, instead of copying
    // every row's id, time and amount (0.7 s at 10M rows).
    let (ids, ttype, status) = (
        Texts::of(txns, "merchant_id"),
        Texts::of(txns, "txn_type"),
        Texts::of(txns, "status"),
    );
    let (Some(ids), Some(ttype), Some(status)) = (ids, ttype, status) else {
        return Ok(deposit_frame(&BTreeMap::new(), &BTreeMap::new(), as_of));
    };
    let time = txns.column("txn_time")?.as_materialized_series().datetime()?.physical().rechunk();
    let amount = held::units(txns.column("amount")?)
        .ok_or_else(|| polars_err!(ComputeError: "amount is not money"))?
        .rechunk()
        .into_owned();
    let mut order: Vec<(u32, Option<i64>, usize)> = (0..n)
        .filter(|&i| threshold.get(i).is_some_and(|t| t > 0) && ttype.get(i) == Some("purchase") && status.get(i) == Some("approved"))
        .map(|i| (merchants[i], time.get(i), i))
        .collect();
    order.par_sort_unstable();
    let mut reached: BTreeMap<String, i64> = BTreeMap::new();
    let mut cum: PlHashMap<u32, i64> = PlHashMap::new();
    for &(code, t, i) in &order {
        let Some(m) = ids.get(i) else { continue };
        let c = cum.entry(code).or_insert(0);
        *c += amount.get(i).unwrap_or(0);
        if *c >= threshold.get(i).unwrap_or(i64::MAX) && !reached.contains_key(m) {
            reached.insert(m.to_string(), t.unwrap_or(0));
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
    Ok(deposit_frame(&reached, &refunded, as_of))
}

/// One row per merchant that reached its threshold: when, when its
/// deposit was refunded (`refunded`), and the days between (to `as_of`).
fn deposit_frame(
    reached: &std::collections::BTreeMap<String, i64>,
    refunded: &std::collections::BTreeMap<String, i64>,
    as_of: NaiveDate,
) -> DataFrame {
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
    .expect("columns of one length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_wanting_some_checks_makes_those_alike_and_no_other() {
        let money = DataType::Decimal(18, 2);
        let apps = {
            let mut a = df!(
                "contract_rate_debit" => [Some(5_000i64), Some(3_800)],
                "contract_debit_cap" => [Some(2_000i64), None],
                "contract_rate_credit" => [Some(6_000i64), Some(6_000)],
                "contract_rate_qr" => [Some(3_800i64), Some(3_000)],
                "contract_fixed_fee" => [Some(0i64), Some(0)],
                "install_lat" => [31.2f64, 39.9],
                "install_lon" => [121.4f64, 116.4],
                "installed_at" => [1_700_000_000_000i64, 1_690_000_000_000],
            )
            .unwrap();
            for (name, dtype) in [
                ("contract_rate_debit", DataType::Decimal(18, 6)),
                ("contract_debit_cap", money.clone()),
                ("contract_rate_credit", DataType::Decimal(18, 6)),
                ("contract_rate_qr", DataType::Decimal(18, 6)),
                ("contract_fixed_fee", money.clone()),
                ("installed_at", DataType::Datetime(TimeUnit::Milliseconds, None)),
            ] {
                let c = a.column(name).unwrap().cast(&dtype).unwrap();
                a.with_column(c).unwrap();
            }
            a
        };
        let rows = || {
            let mut t = df!(
                "txn_type" => ["purchase", "purchase", "refund", "purchase"],
                "status" => ["approved", "approved", "approved", "declined"],
                "payment_method" => ["card", "qr", "card", "card"],
                "card_type" => [Some("debit"), None, Some("credit"), Some("credit")],
                "amount" => [12_345i64, 500, 2_000, 99],
                "fee" => [Some(62i64), Some(2), None, Some(1)],
                "lat" => [Some(31.3f64), None, Some(40.0), Some(31.2)],
                "lon" => [Some(121.5f64), None, Some(116.3), Some(121.4)],
                "txn_time" => [1_701_000_000_000i64, 1_701_086_400_000, 1_701_200_000_000, 1_702_000_000_000],
            )
            .unwrap();
            for (name, dtype) in [
                ("amount", money.clone()),
                ("fee", money.clone()),
                ("txn_time", DataType::Datetime(TimeUnit::Milliseconds, None)),
            ] {
                let c = t.column(name).unwrap().cast(&dtype).unwrap();
                t.with_column(c).unwrap();
            }
            t
        };
        let app = AppRows {
            apps: &apps,
            at: vec![Some(0), Some(1), Some(0), None],
        };
        let mut all = rows();
        derive_transactions(&mut all, &app, &|_| true).unwrap();
        let wanted = ["days_since_install", "txn_month"];
        let mut some = rows();
        derive_transactions(&mut some, &app, &|c| wanted.contains(&c)).unwrap();
        for name in wanted.iter().chain(&["amount_fen", "amount", "fee"]) {
            assert!(some.column(name).unwrap().equals_missing(all.column(name).unwrap()), "{name}");
        }
        for name in PRICED.iter().chain(&["effective_rate", "distance_km", "hour"]) {
            assert!(all.column(name).is_ok(), "{name} made for a full pass");
            assert!(some.column(name).is_err(), "{name} made though not wanted");
        }
        // The inputs only the checks not made read are not read.
        let want = |c: &str| wanted.contains(&c);
        for input in ["fee", "payment_method", "card_type", "lat", "lon", "original_txn_id", "card_hash"] {
            assert!(!transaction_checks_read(input, &want), "{input}");
            assert!(transaction_checks_read(input, &|_| true), "{input}");
        }
        assert!(transaction_checks_read("lat", &|c| c == "distance_km"));
        assert!(transaction_checks_read("card_type", &|c| c == "fee_diff"));
    }

    #[test]
    fn rows_bucketed_by_merchant_are_in_the_order_a_full_sort_gives() {
        // Merchants interleaved, times out of order within some, ties and
        // missing times.
        let merchants = [2u32, 0, 2, 1, 0, 2, 1, 0, 2, 0];
        let time = [Some(5), Some(3), Some(1), None, Some(3), Some(5), Some(2), None, None, Some(1)];
        let rows = [0usize, 1, 2, 3, 4, 5, 6, 8, 9];
        let mut want: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
        want.sort_by_key(|&i| (merchants[i as usize], time[i as usize], i));
        let held: Vec<i64> = time.iter().map(|t| t.unwrap_or(NO_TIME)).collect();
        assert_eq!(by_merchant_and_time(rows.iter().copied(), &merchants, &held), want);
    }

    #[test]
    fn month_starts_are_polars_monthly_truncation_and_keep_nulls() {
        let day = |y, m, d| crate::input::values::days_since_epoch(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let days = Int32Chunked::from_iter_options(
            "d".into(),
            [
                Some(day(2024, 2, 29)),
                None,
                Some(day(2026, 12, 31)),
                Some(day(1969, 12, 31)),
                Some(day(2026, 1, 1)),
            ]
            .into_iter(),
        );
        let ours: Vec<Option<i32>> = month_starts(&days).iter().collect();
        let polars: Vec<Option<i32>> = days
            .clone()
            .into_date()
            .into_series()
            .into_frame()
            .lazy()
            .select([col("d").dt().truncate(lit("1mo"))])
            .collect()
            .unwrap()
            .column("d")
            .unwrap()
            .as_materialized_series()
            .date()
            .unwrap()
            .physical()
            .iter()
            .collect();
        assert_eq!(ours, polars);
        assert_eq!(ours[0], Some(day(2024, 2, 1)));
        assert_eq!(ours[1], None);
        assert_eq!(ours[3], Some(day(1969, 12, 1)));
    }
}
