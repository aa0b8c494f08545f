//! Reference tables: limits and classes that differ by terminal model,
//! merchant type or MCC are data, not code. The pack ships defaults in
//! `rules/reference/`; a file of the same name in the scanned folder, or
//! one named by `--reference`, replaces a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sha2::{Digest, Sha256};

use super::read::decimal_from_scaled;
use super::values::{parse_money, AmountUnit};
use super::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefType {
    Str,
    Money,
    Bool,
}

/// One reference table: its file name, join key, and columns with the
/// names they get in the rule frames.
pub(crate) struct RefSpec {
    pub file: &'static str,
    /// Column in the table and the application column it joins on.
    pub key: &'static str,
    columns: &'static [(&'static str, &'static str, RefType)],
    /// Boolean column set to true where the key was found in the table.
    pub known: Option<&'static str>,
}

pub(crate) const REFERENCE_SPECS: &[RefSpec] = &[
    RefSpec {
        file: "terminal_models.csv",
        key: "terminal_model",
        columns: &[
            ("terminal_kind", "terminal_kind", RefType::Str),
            ("max_single_txn_amount", "model_max_single_txn_amount", RefType::Money),
            ("has_gps", "model_has_gps", RefType::Bool),
        ],
        known: Some("terminal_model_known"),
    },
    RefSpec {
        file: "merchant_type_limits.csv",
        key: "merchant_type",
        columns: &[
            ("max_single_txn_amount", "type_max_single_txn_amount", RefType::Money),
            ("max_daily_amount", "type_max_daily_amount", RefType::Money),
            ("max_monthly_amount", "type_max_monthly_amount", RefType::Money),
        ],
        known: None,
    },
    RefSpec {
        file: "mcc.csv",
        key: "mcc",
        columns: &[
            ("description", "mcc_description", RefType::Str),
            ("fee_class", "mcc_fee_class", RefType::Str),
            ("daytime", "mcc_daytime", RefType::Bool),
        ],
        known: Some("mcc_known"),
    },
];

/// A loaded table, ready to join: key column plus renamed value columns.
#[derive(Clone)]
pub struct RefTable {
    pub file: &'static str,
    pub key: &'static str,
    pub known: Option<&'static str>,
    pub df: DataFrame,
}

/// Which file each table came from, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefOrigin {
    pub table: String,
    pub source: String,
    pub sha256: String,
    pub rows: usize,
}

#[derive(Clone, Default)]
pub struct References {
    pub tables: Vec<RefTable>,
    pub origins: Vec<RefOrigin>,
}

fn bad(source: &str, message: String) -> InputError {
    InputError::Reference {
        source_name: source.to_string(),
        message,
    }
}

fn parse_table(spec: &RefSpec, source: &str, text: &str) -> Result<DataFrame, InputError> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| bad(source, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let pos = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(source, format!("column `{name}` is missing")))
    };
    let key_pos = pos(spec.key)?;
    let positions = spec.columns.iter().map(|(c, _, _)| pos(c)).collect::<Result<Vec<_>, _>>()?;
    let mut keys: Vec<String> = Vec::new();
    let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); spec.columns.len()];
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(source, e.to_string()))?;
        let line = i + 2;
        let key = rec.get(key_pos).unwrap_or("").trim();
        if key.is_empty() {
            return Err(bad(source, format!("line {line}: empty `{}`", spec.key)));
        }
        if keys.iter().any(|k| k == key) {
            return Err(bad(source, format!("line {line}: `{key}` appears twice")));
        }
        keys.push(key.to_string());
        for ((c, p), (name, _, ty)) in cols.iter_mut().zip(&positions).zip(spec.columns) {
            let v = rec.get(*p).unwrap_or("").trim();
            let ok = match ty {
                _ if v.is_empty() => true,
                RefType::Str => true,
                RefType::Money => parse_money(v, AmountUnit::Yuan).is_ok_and(|f| f >= 0),
                RefType::Bool => matches!(v, "true" | "false"),
            };
            if !ok {
                return Err(bad(source, format!("line {line}: `{v}` is not a valid {name}")));
            }
            c.push(Some(v.to_string()).filter(|s| !s.is_empty()));
        }
    }
    let n = keys.len();
    let mut columns = vec![StringChunked::from_iter_values(spec.key.into(), keys.iter().map(String::as_str))
        .into_series()
        .into_column()];
    for (vals, (_, out, ty)) in cols.into_iter().zip(spec.columns) {
        let name: PlSmallStr = (*out).into();
        let s = match ty {
            RefType::Str => StringChunked::from_iter_options(name, vals.iter().map(|v| v.as_deref())).into_series(),
            RefType::Bool => BooleanChunked::from_iter_options(name, vals.iter().map(|v| v.as_deref().map(|b| b == "true"))).into_series(),
            RefType::Money => {
                let fen = vals
                    .iter()
                    .map(|v| v.as_deref().and_then(|m| parse_money(m, AmountUnit::Yuan).ok()));
                decimal_from_scaled(Int64Chunked::from_iter_options(name, fen), 2).map_err(|e| bad(source, e.to_string()))?
            }
        };
        columns.push(s.into_column());
    }
    if let Some(k) = spec.known {
        columns.push(BooleanChunked::full(k.into(), true, n).into_series().into_column());
    }
    DataFrame::new(n, columns).map_err(|e| bad(source, e.to_string()))
}

/// An empty table with the joined schema, for rule validation.
/// `refs` with one table replaced by CSV text (a rule test's own table).
pub(crate) fn with_table(refs: &References, file: &str, text: &str) -> Result<References, InputError> {
    let spec = REFERENCE_SPECS.iter().find(|s| s.file == file).ok_or_else(|| {
        bad(
            file,
            format!(
                "not a reference table (one of {})",
                REFERENCE_SPECS.iter().map(|s| s.file).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let df = parse_table(spec, &format!("(test case) {file}"), text)?;
    let mut out = refs.clone();
    out.tables.retain(|t| t.file != file);
    out.tables.push(RefTable {
        file: spec.file,
        key: spec.key,
        known: spec.known,
        df,
    });
    Ok(out)
}

pub(crate) fn empty_references() -> References {
    let tables = REFERENCE_SPECS
        .iter()
        .map(|s| {
            let header: Vec<&str> = std::iter::once(s.key).chain(s.columns.iter().map(|c| c.0)).collect();
            let df = parse_table(s, "(schema)", &format!("{}\n", header.join(","))).expect("empty reference table");
            RefTable {
                file: s.file,
                key: s.key,
                known: s.known,
                df,
            }
        })
        .collect();
    References { tables, origins: vec![] }
}

/// Load every table: an override (scanned folder or flag) wins over the
/// pack's folder, which wins over the copy built into the binary.
pub fn load(
    overrides: &BTreeMap<String, PathBuf>,
    pack_dirs: &[PathBuf],
    builtin: impl Fn(&str) -> Option<String>,
) -> Result<References, InputError> {
    let mut refs = References::default();
    for spec in REFERENCE_SPECS {
        let from_pack = pack_dirs.iter().map(|d| d.join("reference").join(spec.file)).find(|p| p.is_file());
        let (source, text) = match overrides.get(spec.file).cloned().or(from_pack) {
            Some(p) => (p.display().to_string(), read(&p)?),
            None => match builtin(spec.file) {
                Some(t) => (format!("(built-in)/rules/reference/{}", spec.file), t),
                None => return Err(bad(spec.file, "no such reference table in the pack".into())),
            },
        };
        let df = parse_table(spec, &source, &text)?;
        refs.origins.push(RefOrigin {
            table: spec.file.to_string(),
            source,
            sha256: Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
            rows: df.height(),
        });
        refs.tables.push(RefTable {
            file: spec.file,
            key: spec.key,
            known: spec.known,
            df,
        });
    }
    Ok(refs)
}

fn read(p: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(p).map_err(|e| InputError::Io {
        path: p.to_path_buf(),
        source: e,
    })
}
