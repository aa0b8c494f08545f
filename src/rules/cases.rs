//! A rule's own cases, as the YAML says them: records per input and the
//! hits they must give. Running them is a command (`app::rule_tests`);
//! this is only the model, so the rule format does not depend on the engine.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub(crate) type Record = IndexMap<String, serde_yaml::Value>;

/// One case: records per input and the expected hits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    /// `--as-of` for this case (default 2026-11-20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    /// Omitted: one clean default merchant `M1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<Record>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<Record>,
    /// Omitted: no fees input at all (fee rules are then skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees: Option<Vec<Record>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_changes: Option<Vec<Record>>,
    /// Reference tables replacing the pack's for this case, by file name,
    /// as CSV text (an acquirer's caps, say).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reference: BTreeMap<String, String>,
    /// The rule's parameters replaced for this case, so that a case stays
    /// small (4 cards where the rule's floor is 20). Only parameters the
    /// rule declares.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, serde_yaml::Value>,
    /// Expected hits by entity: a row rule's row id (txn_id, application_id,
    /// charge_id), or a group rule's key values joined with `|`. Empty: a
    /// near miss that must not fire.
    pub hits: Vec<String>,
}

pub(crate) const DEFAULT_AS_OF: &str = "2026-11-20";

/// What one case gave.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub rule_id: String,
    pub case: String,
    pub file: String,
    pub passed: bool,
    pub expected: Vec<String>,
    pub actual: Vec<String>,
    /// Why it failed, readable.
    pub detail: Option<String>,
    /// Messages of the findings, for context.
    pub messages: Vec<String>,
}
