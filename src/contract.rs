//! The data contract (`shared/data-contract.md`) as data: which inputs exist,
//! which columns each has, how each column is typed and which may be absent.
//!
//! Everything downstream (parsing, rule validation, masking) reads these
//! tables, so adding a column is a one-line change here.

use std::fmt;

/// One of the four inputs a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Applications,
    Transactions,
    Fees,
    FeeChanges,
}

impl InputKind {
    pub const ALL: [InputKind; 4] = [
        InputKind::Applications,
        InputKind::Transactions,
        InputKind::Fees,
        InputKind::FeeChanges,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InputKind::Applications => "applications",
            InputKind::Transactions => "transactions",
            InputKind::Fees => "fees",
            InputKind::FeeChanges => "fee_changes",
        }
    }

    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            InputKind::Applications => APPLICATIONS,
            InputKind::Transactions => TRANSACTIONS,
            InputKind::Fees => FEES,
            InputKind::FeeChanges => FEE_CHANGES,
        }
    }

    pub fn column(self, name: &str) -> Option<&'static ColumnSpec> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// The column that names one row of this input in findings.
    pub(crate) fn entity(self) -> (&'static str, Option<&'static str>) {
        match self {
            InputKind::Applications => ("application", Some("application_id")),
            InputKind::Transactions => ("transaction", Some("txn_id")),
            InputKind::Fees => ("charge", Some("charge_id")),
            // fee_changes has no id column: the entity key is built from
            // merchant, item and effective time (see engine::rows).
            InputKind::FeeChanges => ("fee_change", None),
        }
    }

    /// The time column that windows use unless a rule names another.
    pub(crate) fn time_column(self) -> &'static str {
        match self {
            InputKind::Applications => "submitted_at",
            InputKind::Transactions => "txn_time",
            InputKind::Fees => "charged_at",
            InputKind::FeeChanges => "effective_at",
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for InputKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InputKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown input `{s}` (expected applications, transactions, fees or fee_changes)"))
    }
}

/// How a column's text is parsed and which polars type it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Str,
    Int,
    /// Money, exact to the fen: Decimal(18, 2) in yuan. `sign` says whether
    /// negative values are allowed.
    Money(Sign),
    /// A fraction (0.0060 = 0.60 %), exact: Decimal(18, 6). `0.60%` is accepted.
    Rate,
    /// A decimal that may be a rate or an amount (fee_changes values): Decimal(18, 6).
    Number,
    /// Coordinates: Float64 (distances are approximate anyway).
    Coord,
    Date,
    DateTime,
    /// A date, or a "no expiry" sentinel (`长期`, `permanent`, ...). Becomes a
    /// Date column (null when permanent) plus a `<name>_permanent` Boolean.
    Expiry,
    /// `;`-separated list, kept as text; documents also get `has_<doc>` flags.
    List,
    /// One of a fixed set of values; anything else rejects the row.
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Positive,
    Any,
}

/// What an output must hide of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitive {
    No,
    /// Resident ID numbers: first 4 and last 4 kept.
    IdNumber,
    /// Card and account numbers: first 6 and last 4 kept (PCI style).
    CardNumber,
    /// Mobile numbers: first 3 and last 4 kept.
    Phone,
}

#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColType,
    /// The column may be missing from the file (rules that use it are skipped).
    pub optional: bool,
    /// An empty value rejects the row.
    pub required_value: bool,
    pub sensitive: Sensitive,
}

const fn col(name: &'static str, ty: ColType) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        optional: false,
        required_value: false,
        sensitive: Sensitive::No,
    }
}
const fn req(name: &'static str, ty: ColType) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        optional: false,
        required_value: true,
        sensitive: Sensitive::No,
    }
}
const fn opt(name: &'static str, ty: ColType) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        optional: true,
        required_value: false,
        sensitive: Sensitive::No,
    }
}
const fn secret(spec: ColumnSpec, how: Sensitive) -> ColumnSpec {
    ColumnSpec { sensitive: how, ..spec }
}

pub(crate) const MERCHANT_TYPES: &[&str] = &["enterprise", "individual_business", "micro"];
pub(crate) const ACCOUNT_TYPES: &[&str] = &["corporate", "personal"];
pub(crate) const CHANNELS: &[&str] = &["online", "branch", "agent"];
pub(crate) const APPLICATION_STATUS: &[&str] = &["approved", "rejected", "pending"];
pub(crate) const TXN_TYPES: &[&str] = &["purchase", "refund", "reversal", "preauth_complete"];
pub(crate) const TXN_STATUS: &[&str] = &["approved", "declined"];
pub(crate) const PAYMENT_METHODS: &[&str] = &["card", "qr_wechat", "qr_alipay", "qr_unionpay"];
pub(crate) const CARD_TYPES: &[&str] = &["debit", "credit"];
pub(crate) const ENTRY_MODES: &[&str] = &["chip", "swipe", "contactless", "qr_static", "qr_dynamic", "keyed"];
pub(crate) const CHARGE_TYPES: &[&str] = &["sim_fee", "deposit", "deposit_refund", "membership", "service_fee", "other"];
pub(crate) const DOCUMENTS: &[&str] = &[
    "license",
    "id_front",
    "id_back",
    "bank_card",
    "storefront_photo",
    "lease",
    "tax_registration",
    "authorization_letter",
];

const APPLICATIONS: &[ColumnSpec] = &[
    req("application_id", ColType::Str),
    req("merchant_id", ColType::Str),
    col("merchant_name", ColType::Str),
    req("merchant_type", ColType::Enum(MERCHANT_TYPES)),
    col("uscc", ColType::Str),
    col("license_expiry", ColType::Expiry),
    col("legal_rep_name", ColType::Str),
    secret(col("legal_rep_id_number", ColType::Str), Sensitive::IdNumber),
    col("legal_rep_id_expiry", ColType::Expiry),
    opt("legal_rep_id_start", ColType::Date),
    secret(opt("contact_mobile", ColType::Str), Sensitive::Phone),
    col("settlement_account_name", ColType::Str),
    secret(col("settlement_account_number", ColType::Str), Sensitive::CardNumber),
    col("settlement_account_type", ColType::Enum(ACCOUNT_TYPES)),
    col("mcc", ColType::Str),
    col("business_scope", ColType::Str),
    col("registered_city_code", ColType::Str),
    opt("install_lat", ColType::Coord),
    opt("install_lon", ColType::Coord),
    col("terminal_sn", ColType::Str),
    col("terminal_model", ColType::Str),
    col("declared_monthly_volume", ColType::Money(Sign::Positive)),
    col("contract_rate_debit", ColType::Rate),
    col("contract_debit_cap", ColType::Money(Sign::Positive)),
    col("contract_rate_credit", ColType::Rate),
    col("contract_rate_qr", ColType::Rate),
    col("contract_fixed_fee", ColType::Money(Sign::Positive)),
    col("contract_sim_fee_yearly", ColType::Money(Sign::Positive)),
    col("contract_deposit", ColType::Money(Sign::Positive)),
    col("deposit_refund_threshold", ColType::Money(Sign::Positive)),
    col("documents", ColType::List),
    col("channel", ColType::Enum(CHANNELS)),
    col("agent_id", ColType::Str),
    req("submitted_at", ColType::DateTime),
    col("reviewed_at", ColType::DateTime),
    req("status", ColType::Enum(APPLICATION_STATUS)),
    col("contract_signed_at", ColType::DateTime),
    col("installed_at", ColType::DateTime),
];

const TRANSACTIONS: &[ColumnSpec] = &[
    req("txn_id", ColType::Str),
    req("merchant_id", ColType::Str),
    col("terminal_sn", ColType::Str),
    req("txn_time", ColType::DateTime),
    req("txn_type", ColType::Enum(TXN_TYPES)),
    req("status", ColType::Enum(TXN_STATUS)),
    req("amount", ColType::Money(Sign::Positive)),
    req("payment_method", ColType::Enum(PAYMENT_METHODS)),
    col("card_type", ColType::Enum(CARD_TYPES)),
    secret(col("card_no_masked", ColType::Str), Sensitive::CardNumber),
    col("card_hash", ColType::Str),
    col("entry_mode", ColType::Enum(ENTRY_MODES)),
    col("mcc", ColType::Str),
    col("fee", ColType::Money(Sign::Any)),
    col("location_city_code", ColType::Str),
    opt("lat", ColType::Coord),
    opt("lon", ColType::Coord),
    col("original_txn_id", ColType::Str),
    secret(col("settlement_account_number", ColType::Str), Sensitive::CardNumber),
];

const FEES: &[ColumnSpec] = &[
    req("charge_id", ColType::Str),
    req("merchant_id", ColType::Str),
    col("terminal_sn", ColType::Str),
    req("charged_at", ColType::DateTime),
    req("charge_type", ColType::Enum(CHARGE_TYPES)),
    req("amount", ColType::Money(Sign::Any)),
    col("description", ColType::Str),
];

const FEE_CHANGES: &[ColumnSpec] = &[
    req("merchant_id", ColType::Str),
    req("effective_at", ColType::DateTime),
    req("item", ColType::Str),
    col("old_value", ColType::Number),
    col("new_value", ColType::Number),
    col("notice_published_at", ColType::DateTime),
];

/// How sensitive a column is, by name, whatever input or join it came from
/// (joined application columns carry an `app_` prefix).
pub(crate) fn sensitivity(column: &str) -> Sensitive {
    let base = column.strip_prefix("app_").unwrap_or(column);
    InputKind::ALL
        .iter()
        .filter_map(|k| k.column(base))
        .map(|c| c.sensitive)
        .find(|s| *s != Sensitive::No)
        .unwrap_or(Sensitive::No)
}

/// Prefix for application columns whose name the joined input already has.
pub const APP_PREFIX: &str = "app_";

/// A derived column: a name rules may use like an input column, computed
/// by `checks` (documentation for `rules doc` and the README; an input
/// file may not use the name for a column of its own).
pub struct DerivedDoc {
    pub name: &'static str,
    pub input: &'static str,
    pub doc: &'static str,
}

pub const DERIVED: &[DerivedDoc] = &[
    DerivedDoc { name: "uscc_format_ok", input: "applications", doc: "USCC has 18 characters from the GB 32100 set, a valid first character and a numeric region" },
    DerivedDoc { name: "uscc_valid", input: "applications", doc: "USCC format and GB 32100-2015 check character both right" },
    DerivedDoc { name: "uscc_org_code_ok", input: "applications", doc: "inner 组织机构代码 (positions 9-17) passes GB 11714" },
    DerivedDoc { name: "merchant_id_mcc", input: "applications", doc: "the MCC inside a 15-digit merchant number (positions 8-11; null for other numbers)" },
    DerivedDoc { name: "uscc_prefix", input: "applications", doc: "USCC positions 1-2: registration authority and entity type (91 enterprise, 92 individual business)" },
    DerivedDoc { name: "license_days_left", input: "applications", doc: "days from --as-of to license_expiry (negative: expired; null: permanent or unknown)" },
    DerivedDoc { name: "id_legacy15", input: "applications", doc: "legal-rep ID is a first-generation 15-digit number; the ID checks below read it upgraded to 18 digits" },
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
    DerivedDoc { name: "txn_month", input: "transactions", doc: "first day of txn_time's month (the key of monthly windows)" },
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
    DerivedDoc { name: "mcc_valid", input: "applications", doc: "the MCC is in the table in use or is a valid ISO 18245 / card-scheme code (a valid code missing from a replacement table is that table's gap, reported once as a warning)" },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_columns_are_known_by_any_prefix() {
        assert_eq!(sensitivity("legal_rep_id_number"), Sensitive::IdNumber);
        assert_eq!(sensitivity("app_settlement_account_number"), Sensitive::CardNumber);
        assert_eq!(sensitivity("merchant_id"), Sensitive::No);
    }

    #[test]
    fn every_input_has_unique_column_names() {
        for kind in InputKind::ALL {
            let mut names: Vec<_> = kind.columns().iter().map(|c| c.name).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "{kind}");
        }
    }
}
