//! The mapping file: how a real export differs from the canonical contract
//! (header names, amount unit, datetime format, encoding, delimiter, enum
//! spellings), per input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::AmountUnit;
use super::InputError;
use crate::contract::{ColType, InputKind};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub applications: InputMapping,
    #[serde(default)]
    pub transactions: InputMapping,
    #[serde(default)]
    pub fees: InputMapping,
    #[serde(default)]
    pub fee_changes: InputMapping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 (a BOM is skipped).
    #[default]
    Utf8,
    Gbk,
    Gb18030,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMapping {
    /// Header in the file -> canonical column name.
    #[serde(default)]
    pub columns: HashMap<String, String>,
    #[serde(default)]
    pub amount_unit: AmountUnit,
    /// chrono format for datetime columns, e.g. `%Y%m%d%H%M%S`.
    pub datetime_format: Option<String>,
    /// chrono format for date columns, e.g. `%Y%m%d`.
    pub date_format: Option<String>,
    #[serde(default)]
    pub encoding: Encoding,
    /// One character; `\t` for tab.
    pub delimiter: Option<String>,
    /// Per column, value in the file -> canonical value (e.g. 消费 -> purchase).
    #[serde(default)]
    pub values: HashMap<String, HashMap<String, String>>,
    /// Lines above the header row (a title, the account, the period): not
    /// read. Counted in the file's `lines_skipped`.
    #[serde(default)]
    pub skip_lines: usize,
    /// A row whose first field starts with one of these ends the data: it
    /// and every line after it are a summary block (WeChat's `总交易单数`,
    /// `#` comment lines, `<END>`), counted in `lines_skipped`, not read.
    #[serde(default)]
    pub footer: Vec<String>,
    /// Contract columns the export has no column for, with the one value
    /// every row takes (a WeChat bill: `payment_method: qr_wechat`). The
    /// value is checked like any cell.
    #[serde(default)]
    pub constants: HashMap<String, String>,
    /// Contract columns the export does not have at all: left out of the
    /// rows, so rules that need them are skipped with the reason, as for
    /// optional columns, instead of running on empty values.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Rows that carry some columns in other file columns than the rest
    /// (a WeChat or Alipay refund row: its own id in 微信退款单号, the
    /// payment's id in 微信订单号, the amount in 退款金额). The first case
    /// whose `when` holds decides a row's sources; other rows read
    /// `columns` and `constants` above.
    #[serde(default)]
    pub rows: Vec<RowCase>,
    /// Contract column -> a regular expression with one capture group,
    /// searched in the `skip_lines` lines above the header: the value of
    /// every row (an Alipay bill names its account in `#账号：[2088...]`).
    #[serde(default)]
    pub title: HashMap<String, String>,
}

/// A kind of row and where its columns come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowCase {
    /// Header in the file -> the values (as cleaned: no backtick, no
    /// blanks) that select the row. Every header listed must match.
    pub when: HashMap<String, OneOrMore>,
    /// Header in the file -> canonical column, for these rows.
    #[serde(default)]
    pub columns: HashMap<String, String>,
    /// Canonical column -> the value these rows take.
    #[serde(default)]
    pub constants: HashMap<String, String>,
    /// Money columns these rows show with the opposite sign (Alipay
    /// writes a refund's amount as `-12.00`).
    #[serde(default)]
    pub negate: Vec<String>,
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    pub(crate) fn values(&self) -> Vec<&str> {
        match self {
            OneOrMore::One(s) => vec![s.as_str()],
            OneOrMore::More(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A mapping shipped with posaudit for an export format whose layout is
/// public: `--mapping preset:NAME`. Each file documents its format.
pub struct Preset {
    pub name: &'static str,
    pub title: &'static str,
    pub kind: InputKind,
    /// Headers that together name the format (`mapping infer` recognises
    /// a file by them; none: it does not need to).
    pub signature: &'static [&'static str],
    pub text: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "wechat",
        title: "WeChat Pay trade bill",
        kind: InputKind::Transactions,
        signature: &["微信订单号", "微信退款单号", "交易状态", "特约商户号"],
        text: include_str!("presets/wechat.yaml"),
    },
    Preset {
        name: "alipay",
        title: "Alipay business detail bill",
        kind: InputKind::Transactions,
        signature: &["支付宝交易号", "业务类型", "退款批次号/请求号"],
        text: include_str!("presets/alipay.yaml"),
    },
    Preset {
        name: "unionpay",
        title: "UnionPay-style reconciliation file",
        kind: InputKind::Transactions,
        signature: &["受理商户代码", "受卡机终端标识码", "交易代码", "应答码"],
        text: include_str!("presets/unionpay.yaml"),
    },
    Preset {
        name: "lakala",
        title: "Lakala-style merchant transaction export",
        kind: InputKind::Transactions,
        // Its headers and values are the common ones: `mapping infer`
        // reads it without the preset (a test proves it), so none.
        signature: &[],
        text: include_str!("presets/lakala.yaml"),
    },
];

/// The text of a preset, by name.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|p| p.name == name).map(|p| p.text)
}

impl InputMapping {
    /// Everything the mapping says, in a fixed order (its maps sorted): the
    /// same mapping gives the same text in every process.
    pub(crate) fn identity(&self) -> String {
        let sorted = |m: &HashMap<String, String>| {
            let mut v: Vec<(&String, &String)> = m.iter().collect();
            v.sort();
            format!("{v:?}")
        };
        let mut values: Vec<(&String, String)> = self.values.iter().map(|(k, m)| (k, sorted(m))).collect();
        values.sort();
        let cases: Vec<String> = self
            .rows
            .iter()
            .map(|c| {
                let mut when: Vec<(&String, Vec<&str>)> = c.when.iter().map(|(k, v)| (k, v.values())).collect();
                when.sort();
                format!(
                    "when={when:?} columns={} constants={} negate={:?}",
                    sorted(&c.columns),
                    sorted(&c.constants),
                    c.negate
                )
            })
            .collect();
        format!(
            "columns={} unit={:?} datetime={:?} date={:?} encoding={:?} delimiter={:?} values={values:?} skip={} footer={:?} constants={} absent={:?} rows={cases:?} title={}",
            sorted(&self.columns),
            self.amount_unit,
            self.datetime_format,
            self.date_format,
            self.encoding,
            self.delimiter,
            self.skip_lines,
            self.footer,
            sorted(&self.constants),
            self.absent,
            sorted(&self.title)
        )
    }

    /// The contract value a file value stands for: the `values` entry for
    /// it, else the first pattern (`*_CREDIT`, `ICBC*`, `*`) that matches
    /// it, longest first; None: the value as written.
    pub(crate) fn value_of(&self, column: &str, value: &str) -> Option<&str> {
        let vm = self.values.get(column)?;
        if let Some(v) = vm.get(value) {
            return Some(v);
        }
        vm.iter()
            .filter(|(k, _)| k.contains('*') && glob_match(k, value))
            .max_by_key(|(k, _)| (k.len(), k.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// The constant of a contract column, if the mapping gives one.
    pub(crate) fn constant(&self, column: &str) -> Option<&str> {
        self.constants.get(column).map(String::as_str)
    }

    /// Whether the mapping says the export has no such column.
    pub(crate) fn is_absent(&self, column: &str) -> bool {
        self.absent.iter().any(|a| a == column)
    }

    /// Whether the file has lines around its table (a title above, a
    /// summary below): such a file is read in one piece, top to bottom.
    pub(crate) fn has_frame(&self) -> bool {
        self.skip_lines > 0 || !self.footer.is_empty()
    }

    /// Whether a row whose first field is `first` starts the summary block.
    pub(crate) fn is_footer(&self, first: &str) -> bool {
        let first = super::values::clean(first);
        self.footer.iter().any(|f| !f.is_empty() && first.starts_with(f.as_str()))
    }
}

impl Mapping {
    /// A mapping file, or `preset:NAME` for one shipped with posaudit.
    pub fn load(path: &Path) -> Result<Mapping, InputError> {
        if let Some(name) = path.to_str().and_then(|p| p.strip_prefix("preset:")) {
            let text = preset(name).ok_or_else(|| {
                InputError::Usage(format!(
                    "no preset `{name}`: the presets are {}",
                    PRESETS.iter().map(|p| format!("preset:{}", p.name)).collect::<Vec<_>>().join(", ")
                ))
            })?;
            return Mapping::parse(text, path);
        }
        let text = std::fs::read_to_string(path).map_err(|e| InputError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Mapping::parse(&text, path)
    }

    /// A mapping from its YAML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Mapping, InputError> {
        // Through a YAML value first: it refuses a key written twice (a
        // header mapped twice would otherwise silently take the last).
        let m: Mapping = serde_yaml::from_str::<serde_yaml::Value>(text)
            .and_then(|_| serde_yaml::from_str(text))
            .map_err(|e| InputError::Mapping {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        for kind in InputKind::ALL {
            m.get(kind).validate(kind, path)?;
        }
        Ok(m)
    }

    pub fn get(&self, kind: InputKind) -> &InputMapping {
        match kind {
            InputKind::Applications => &self.applications,
            InputKind::Transactions => &self.transactions,
            InputKind::Fees => &self.fees,
            InputKind::FeeChanges => &self.fee_changes,
        }
    }
}

impl InputMapping {
    fn validate(&self, kind: InputKind, path: &Path) -> Result<(), InputError> {
        let bad = |message: String| InputError::Mapping {
            path: PathBuf::from(path),
            message,
        };
        for target in self
            .columns
            .values()
            .chain(self.values.keys())
            .chain(self.constants.keys())
            .chain(&self.absent)
            .chain(self.title.keys())
            .chain(
                self.rows
                    .iter()
                    .flat_map(|c| c.columns.values().chain(c.constants.keys()).chain(&c.negate)),
            )
        {
            if kind.column(target).is_none() {
                return Err(bad(format!(
                    "{kind}: `{target}` is not a column of the {kind} input (see the data contract)"
                )));
            }
        }
        for a in &self.absent {
            if kind.column(a).is_some_and(|c| c.required_value) {
                return Err(bad(format!(
                    "{kind}: `{a}` cannot be absent: every row needs a value (give it under `constants` if the export has one value for all)"
                )));
            }
            if self.constants.contains_key(a) {
                return Err(bad(format!("{kind}: `{a}` is both absent and a constant")));
            }
        }
        for (column, pattern) in &self.title {
            let groups = regex::Regex::new(pattern)
                .map_err(|e| bad(format!("{kind}: title pattern for `{column}` is not a regular expression: {e}")))?
                .captures_len();
            if groups != 2 {
                return Err(bad(format!(
                    "{kind}: title pattern for `{column}` needs exactly one capture group `(...)`: the value"
                )));
            }
            if self.skip_lines == 0 {
                return Err(bad(format!("{kind}: `title` reads the lines above the header: give `skip_lines`")));
            }
        }
        for (i, c) in self.rows.iter().enumerate() {
            if c.when.is_empty() {
                return Err(bad(format!("{kind}: rows[{i}] has no `when`: name a header and its values")));
            }
            for n in &c.negate {
                if !matches!(kind.column(n).map(|s| s.ty), Some(ColType::Money(_))) {
                    return Err(bad(format!(
                        "{kind}: rows[{i}]: `negate` applies to money columns; `{n}` is not one"
                    )));
                }
            }
        }
        if let Some(d) = &self.delimiter {
            let b = self
                .delimiter_byte()
                .ok_or_else(|| bad(format!("{kind}: delimiter `{d}` must be one ASCII character")))?;
            if matches!(b, b'"' | b'\n' | b'\r') {
                return Err(bad(format!("{kind}: delimiter `{d}` cannot be a quote or a line break")));
            }
        }
        Ok(())
    }

    pub(crate) fn delimiter_byte(&self) -> Option<u8> {
        match self.delimiter.as_deref() {
            None => Some(b','),
            Some("\\t") | Some("tab") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
            Some(_) => None,
        }
    }

    /// The canonical name for a header as written in the file: the mapping
    /// first, then the header itself, compared without case, blanks or BOM.
    pub fn canonical(&self, kind: InputKind, header: &str) -> Option<&'static str> {
        let h = normalise_header(header);
        let target = self
            .columns
            .iter()
            .find(|(from, _)| normalise_header(from) == h)
            .map(|(_, to)| to.as_str())
            .unwrap_or(h.as_str());
        kind.columns().iter().find(|c| c.name.eq_ignore_ascii_case(target)).map(|c| c.name)
    }
}

/// `*` stands for any text (none included); everything else is literal.
fn glob_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == value;
    }
    if value.len() < first.len() + last.len() || !value.starts_with(first) || !value.ends_with(last) {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

pub(crate) fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}' || c == '*' || c == '`')
        .to_string()
}
