//! The mapping file: how a real export differs from the canonical contract
//! (header names, amount unit, datetime format, encoding, delimiter, enum
//! spellings), per input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::AmountUnit;
use super::InputError;
use crate::contract::InputKind;

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
        format!(
            "columns={} unit={:?} datetime={:?} date={:?} encoding={:?} delimiter={:?} values={values:?} skip={} footer={:?} constants={} absent={:?}",
            sorted(&self.columns),
            self.amount_unit,
            self.datetime_format,
            self.date_format,
            self.encoding,
            self.delimiter,
            self.skip_lines,
            self.footer,
            sorted(&self.constants),
            self.absent
        )
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
    pub fn load(path: &Path) -> Result<Mapping, InputError> {
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

pub(crate) fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}' || c == '*' || c == '`')
        .to_string()
}
