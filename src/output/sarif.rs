//! SARIF 2.1.0 for scan findings and rule-pack lint, so code-scanning UIs
//! show them: rule metadata, stable fingerprints in `partialFingerprints`,
//! locations at the input file and line (or the rule file and line).

use std::collections::BTreeMap;

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, PropertyBag, Region, ReportingConfiguration,
    ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent,
};

use crate::findings::Finding;
use crate::rules::load::{RuleIssue, RulePack};
use crate::rules::model::Severity;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

fn level_name(s: Severity) -> &'static str {
    match level(s) {
        ResultLevel::Error => "error",
        ResultLevel::Warning => "warning",
        _ => "note",
    }
}

fn text(s: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(s.to_string()).build()
}

fn props(pairs: Vec<(&str, serde_json::Value)>, tags: Vec<String>) -> PropertyBag {
    let map: BTreeMap<String, serde_json::Value> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if tags.is_empty() {
        PropertyBag::builder().additional_properties(map).build()
    } else {
        PropertyBag::builder().tags(tags).additional_properties(map).build()
    }
}

fn location(file: &str, line: Option<u64>, column: Option<u64>) -> Location {
    let artifact = ArtifactLocation::builder().uri(file.replace('\\', "/")).build();
    let physical = match line {
        Some(l) if l > 0 => {
            let region = match column {
                Some(c) if c > 0 => Region::builder().start_line(l as i64).start_column(c as i64).build(),
                _ => Region::builder().start_line(l as i64).build(),
            };
            PhysicalLocation::builder().artifact_location(artifact).region(region).build()
        }
        _ => PhysicalLocation::builder().artifact_location(artifact).build(),
    };
    Location::builder().physical_location(physical).build()
}

fn driver(rules: Vec<ReportingDescriptor>) -> Tool {
    let component = ToolComponent::builder()
        .name("posaudit")
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    Tool::builder().driver(component).build()
}

fn log(run: Run) -> Sarif {
    Sarif::builder().schema(SCHEMA).version(json!("2.1.0")).runs(vec![run]).build()
}

/// A suppressed finding's exception, as SARIF says it (`external`: the
/// decision lives in a file beside the rules, not in the data).
fn suppression(f: &Finding) -> Option<Vec<Suppression>> {
    let id = f.exception_id.as_ref()?;
    Some(vec![Suppression::builder()
        .kind(json!("external"))
        .status(json!("accepted"))
        .justification(format!("exception {id}"))
        .properties(props(vec![("exception_id", json!(id))], vec![]))
        .build()])
}

/// Findings of a scan, with every rule of the pack described. With a
/// baseline each result has its `baselineState`, and the baseline's
/// findings gone today are listed as `absent`.
pub fn scan(findings: &[Finding], resolved: &[serde_json::Value], pack: &RulePack) -> Sarif {
    let index: BTreeMap<&str, usize> = pack.rules.iter().enumerate().map(|(i, r)| (r.rule.id.as_str(), i)).collect();
    let rules = pack
        .rules
        .iter()
        .map(|lr| {
            let r = &lr.rule;
            let basis = r.basis.as_ref().map(|b| b.text.clone()).unwrap_or_default();
            ReportingDescriptor::builder()
                .id(r.id.clone())
                .name(r.id.replace('-', ""))
                .short_description(text(&r.title))
                .full_description(text(if basis.is_empty() { &r.title } else { &basis }))
                .default_configuration(ReportingConfiguration::builder().level(json!(level_name(r.severity))).build())
                .properties(props(
                    vec![
                        ("family", json!(r.family.name())),
                        ("severity", json!(r.severity.name())),
                        ("file", json!(lr.file)),
                    ],
                    vec![r.family.name().to_string(), "compliance".to_string()],
                ))
                .build()
        })
        .collect();
    let results: Vec<SarifResult> = findings
        .iter()
        .map(|f| {
            let mut fp = BTreeMap::new();
            fp.insert("posaudit/v1".to_string(), f.fingerprint.clone());
            let mut r = SarifResult::builder()
                .rule_id(f.rule_id.clone())
                .level(level(f.severity))
                .message(Message::builder().text(f.message.clone()).build())
                .partial_fingerprints(fp)
                .properties(props(
                    vec![
                        ("severity", json!(f.severity.name())),
                        ("merchant_id", json!(f.merchant_id)),
                        ("merchant_ids", json!(f.merchant_ids)),
                        ("entity_kind", json!(f.entity_kind)),
                        ("entity_id", json!(f.entity_id)),
                        ("txn_ids", json!(f.txn_ids)),
                        ("evidence", json!(f.evidence)),
                    ],
                    vec![],
                ))
                .build();
            r.rule_index = index.get(f.rule_id.as_str()).map(|i| *i as i64);
            r.locations = f.source.as_ref().map(|s| vec![location(&s.file, Some(s.line), None)]);
            r.baseline_state = f.baseline.map(|b| json!(b.name()));
            r.suppressions = suppression(f);
            r
        })
        .chain(resolved.iter().map(|v| {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let rule_id = s("rule_id");
            let severity = s("severity").parse::<Severity>().unwrap_or(Severity::Info);
            let mut fp = BTreeMap::new();
            fp.insert("posaudit/v1".to_string(), s("fingerprint"));
            let mut r = SarifResult::builder()
                .rule_id(rule_id.clone())
                .level(level(severity))
                .message(Message::builder().text(s("message")).build())
                .partial_fingerprints(fp)
                .baseline_state(json!("absent"))
                .build();
            r.rule_index = index.get(rule_id.as_str()).map(|i| *i as i64);
            r
        }))
        .collect();
    log(Run::builder().tool(driver(rules)).results(results).build())
}

/// Rule-pack problems, located at the rule file, line and column.
pub fn lint(errors: &[RuleIssue], warnings: &[RuleIssue]) -> Sarif {
    let rules = vec![
        ReportingDescriptor::builder()
            .id("rule-pack/error")
            .short_description(text("The rule pack is invalid: posaudit will not scan with it"))
            .default_configuration(ReportingConfiguration::builder().level(json!("error")).build())
            .build(),
        ReportingDescriptor::builder()
            .id("rule-pack/warning")
            .short_description(text("A rule pack problem that does not stop a scan"))
            .default_configuration(ReportingConfiguration::builder().level(json!("warning")).build())
            .build(),
    ];
    let result = |i: &RuleIssue, error: bool| {
        let message = format!(
            "{}{}{}",
            i.rule_id.as_ref().map(|r| format!("rule {r}: ")).unwrap_or_default(),
            i.field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default(),
            i.message
        );
        SarifResult::builder()
            .rule_id(if error { "rule-pack/error" } else { "rule-pack/warning" })
            .rule_index(if error { 0 } else { 1 })
            .level(if error { ResultLevel::Error } else { ResultLevel::Warning })
            .message(Message::builder().text(message).build())
            .locations(vec![location(&i.file, i.line.map(|l| l as u64), i.column.map(|c| c as u64))])
            .build()
    };
    let results: Vec<SarifResult> = errors
        .iter()
        .map(|i| result(i, true))
        .chain(warnings.iter().map(|i| result(i, false)))
        .collect();
    log(Run::builder().tool(driver(rules)).results(results).build())
}
