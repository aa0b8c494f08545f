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

    /// Optional inputs may be absent; rules that need them are skipped.
    pub fn is_optional(self) -> bool {
        matches!(self, InputKind::Fees | InputKind::FeeChanges)
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
    pub fn entity(self) -> (&'static str, Option<&'static str>) {
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
    pub fn time_column(self) -> &'static str {
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

pub const MERCHANT_TYPES: &[&str] = &["enterprise", "individual_business", "micro"];
pub const ACCOUNT_TYPES: &[&str] = &["corporate", "personal"];
pub const CHANNELS: &[&str] = &["online", "branch", "agent"];
pub const APPLICATION_STATUS: &[&str] = &["approved", "rejected", "pending"];
pub const TXN_TYPES: &[&str] = &["purchase", "refund", "reversal", "preauth_complete"];
pub const TXN_STATUS: &[&str] = &["approved", "declined"];
pub const PAYMENT_METHODS: &[&str] = &["card", "qr_wechat", "qr_alipay", "qr_unionpay"];
pub const CARD_TYPES: &[&str] = &["debit", "credit"];
pub const ENTRY_MODES: &[&str] = &["chip", "swipe", "contactless", "qr_static", "qr_dynamic", "keyed"];
pub const CHARGE_TYPES: &[&str] = &["sim_fee", "deposit", "deposit_refund", "membership", "service_fee", "other"];
pub const DOCUMENTS: &[&str] = &[
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
pub fn sensitivity(column: &str) -> Sensitive {
    let base = column.strip_prefix("app_").unwrap_or(column);
    InputKind::ALL
        .iter()
        .filter_map(|k| k.column(base))
        .map(|c| c.sensitive)
        .find(|s| *s != Sensitive::No)
        .unwrap_or(Sensitive::No)
}

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
