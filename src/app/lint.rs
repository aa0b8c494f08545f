//! `posaudit rules check`: lint a pack without data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;

use super::pack::{load_pack, pack_references};
use crate::engine::validate;
use crate::input::InputError;
use crate::rules::load::RuleIssue;
use crate::Error;

/// Everything `rules check` reports about a pack, without reading data.
pub struct Lint {
    pub rules: usize,
    pub errors: Vec<RuleIssue>,
    pub warnings: Vec<RuleIssue>,
}

/// Lint a pack: parse and schema problems, its reference tables, and
/// whether every rule has a case that fires and one that does not, and
/// the exceptions file (`--exceptions`, or `exceptions.yaml` in a rules
/// folder): its errors, and exceptions already expired as warnings; and
/// the scoring file (`scoring.yaml`).
pub fn lint(dirs: &[PathBuf], exceptions: Option<&std::path::Path>, as_of: NaiveDate) -> Result<Lint, Error> {
    let loaded = load_pack(dirs);
    let mut warnings = Vec::new();
    let mut exception_errors = Vec::new();
    match super::triage::load_exceptions(exceptions, &loaded.pack) {
        Ok(Some(x)) => warnings.extend(x.expired(as_of)),
        Ok(None) => {}
        Err(Error::Exceptions(e)) => exception_errors = e.0,
        Err(e) => return Err(e),
    }
    let schemas = validate::contract_schemas(&BTreeMap::new(), as_of).map_err(|e| Error::Internal(e.to_string()))?;
    let report = validate::check(&loaded.pack, &schemas, as_of);
    let mut errors = loaded.issues;
    errors.extend(report.errors);
    errors.extend(exception_errors);
    match super::cases::load_scoring(&loaded.pack) {
        Ok(_) => {}
        Err(Error::Scoring(e)) => errors.extend(e.0),
        Err(e) => return Err(e),
    }
    if let Err(Error::Input(InputError::Reference { source_name, message })) = pack_references(dirs) {
        errors.push(RuleIssue::of_file(source_name, format!("reference table: {message}")));
    }
    for (id, (hit, miss)) in loaded.pack.case_gaps() {
        let lr = loaded.pack.rules.iter().find(|r| r.rule.id == id).expect("rule of the pack");
        let lacking = match (hit, miss) {
            (false, false) => "a case that fires and a near miss that stays silent",
            (false, true) => "a case that fires",
            _ => "a near miss that stays silent",
        };
        errors.push(lr.issue(Some("tests"), format!("the rule needs {lacking} (add them under `tests`)")));
    }
    for lr in &loaded.pack.rules {
        for (field, v) in [("title_zh", &lr.rule.title_zh), ("message_zh", &lr.rule.message_zh)] {
            if v.as_deref().is_none_or(|t| t.trim().is_empty()) {
                errors.push(lr.issue(
                    Some("title"),
                    format!(
                        "the rule needs `{field}`: its Chinese text, in the regulations' own words (officers read Chinese; `--lang zh`)"
                    ),
                ));
            }
        }
    }
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(Lint {
        rules: loaded.pack.rules.len(),
        errors,
        warnings: report.warnings.into_iter().chain(warnings).collect(),
    })
}
