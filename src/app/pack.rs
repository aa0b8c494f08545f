//! The pack a run uses, resolved once: its rules (from the given folders,
//! or ./rules, or the pack built into the binary), checked against the
//! contract's schema, and its reference tables.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;

use crate::engine::validate;
use crate::input::{self, InputKind, InputPlan};
use crate::rules::load::{self, RuleErrors, RuleIssue};
use crate::Error;

/// The pack from the given folders, or the default one (./rules, else the
/// pack built into the binary). Parse problems come back with the rules
/// that did parse.
pub fn load_pack(dirs: &[PathBuf]) -> load::Loaded {
    if !dirs.is_empty() {
        return load::load(dirs);
    }
    let local = PathBuf::from("rules");
    if local.is_dir() {
        load::load(&[local])
    } else {
        load::load_builtin()
    }
}

/// Load and fully check a pack: parse and schema problems reported together.
pub fn checked_pack(
    dirs: &[PathBuf],
    extras: &BTreeMap<InputKind, Vec<String>>,
    as_of: NaiveDate,
) -> Result<(load::RulePack, Vec<RuleIssue>), Error> {
    check_loaded(load_pack(dirs), extras, as_of)
}

/// Check a loaded pack against the schema the inputs will have (their
/// extra columns included): parse and schema problems reported together.
pub(crate) fn check_loaded(
    loaded: load::Loaded,
    extras: &BTreeMap<InputKind, Vec<String>>,
    as_of: NaiveDate,
) -> Result<(load::RulePack, Vec<RuleIssue>), Error> {
    let schemas = validate::contract_schemas(extras, as_of).map_err(|e| Error::Internal(e.to_string()))?;
    let report = validate::check(&loaded.pack, &schemas, as_of);
    let mut errors = loaded.issues;
    errors.extend(report.errors);
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(Error::Rules(RuleErrors(errors)));
    }
    Ok((loaded.pack, report.warnings))
}

/// The pack's own reference tables (its `reference/` folder, else built in).
pub fn pack_references(dirs: &[PathBuf]) -> Result<input::reference::References, Error> {
    let pack_dirs: Vec<PathBuf> = if dirs.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        dirs.to_vec()
    };
    input::reference::load(&BTreeMap::new(), &pack_dirs, |f| load::builtin_file(&format!("reference/{f}"))).map_err(Error::Input)
}

/// Reference tables: `--reference` files, then same-name files in the
/// scanned folder, then the pack's `reference/` folder, then built in.
/// `rules` are the pack's folders (empty: ./rules), `replacing` the
/// `--reference` files.
pub(crate) fn load_references(plan: &InputPlan, rules: &[PathBuf], replacing: &[PathBuf]) -> Result<input::reference::References, Error> {
    let mut overrides = plan.reference.clone();
    for p in replacing {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if !input::REFERENCE_TABLES.contains(&name.as_str()) {
            return Err(Error::Usage(format!(
                "--reference {}: the file name must be one of {}",
                p.display(),
                input::REFERENCE_TABLES.join(", ")
            )));
        }
        overrides.insert(name, p.clone());
    }
    let pack_dirs: Vec<PathBuf> = if rules.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        rules.to_vec()
    };
    input::reference::load(&overrides, &pack_dirs, |f| load::builtin_file(&format!("reference/{f}"))).map_err(Error::Input)
}

/// Valid merchant category codes that merchants use and the MCC table in
/// use lacks (a replacement table of the acquirer's): one warning about
/// the table, instead of a finding per merchant. Rules reading the table's
/// columns (fee class, daytime) see no value for those merchants.
pub(crate) fn mcc_table_gaps(apps: &polars::prelude::DataFrame, refs: &input::reference::References) -> Option<RuleIssue> {
    let table = refs.tables.iter().find(|t| t.file == "mcc.csv")?;
    let known: std::collections::HashSet<&str> = table.df.column("mcc").ok()?.str().ok()?.iter().flatten().collect();
    let mut missing: Vec<&str> = apps
        .column("mcc")
        .ok()?
        .str()
        .ok()?
        .iter()
        .flatten()
        .filter(|c| !known.contains(c) && crate::checks::mcc::is_valid(c))
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return None;
    }
    let source = refs
        .origins
        .iter()
        .find(|o| o.table == "mcc.csv")
        .map(|o| o.source.clone())
        .unwrap_or_else(|| "mcc.csv".into());
    let shown: Vec<&str> = missing.iter().take(20).copied().collect();
    Some(RuleIssue::of_file(
        source,
        format!(
            "the MCC table lacks {} valid code(s) that merchants use ({}{}): rules that read its fee class or daytime flag see no value for those merchants; add them to the table",
            missing.len(),
            shown.join(", "),
            if missing.len() > shown.len() { ", ..." } else { "" }
        ),
    ))
}
