//! Running rule test cases: records written inline in a rule's YAML, with
//! the hits the rule must produce on them. Each case is written out as real
//! CSV files and scanned by the real reader and engine, so a passing case
//! proves the whole path, not a model of it.

use std::path::Path;

use crate::checks::{fee, idcard};
use crate::engine::{self, prepare, RuleStatus};
use crate::findings::Finding;
use crate::input::mapping::Mapping;
use crate::input::reference::References;
use crate::input::values::{parse_money, parse_rate, AmountUnit};
use crate::input::{self, InputKind, InputPlan};
use crate::rules::cases::{CaseResult, Record, RuleTest, DEFAULT_AS_OF};
use crate::rules::load::{LoadedRule, RulePack};
use crate::rules::model::yaml_scalar_text;
use crate::Error;

/// The valid resident ID of the default legal representative (born 1985).
fn default_id() -> String {
    let first17 = "11010519850315001";
    format!("{first17}{}", idcard::check_char(first17).unwrap_or('0'))
}

/// A clean, valid merchant: every check passes on it.
fn default_application(i: usize) -> Record {
    let s = |v: &str| serde_yaml::Value::String(v.to_string());
    let n = i + 1;
    let mut r = Record::new();
    for (k, v) in [
        ("application_id", format!("A{n}")),
        ("merchant_id", format!("M{n}")),
        ("merchant_name", format!("测试商户{n}有限公司")),
        ("merchant_type", "enterprise".into()),
        ("uscc", "91330110MA2CC4U92R".into()),
        ("license_expiry", "长期".into()),
        ("legal_rep_name", "张伟".into()),
        ("legal_rep_id_number", default_id()),
        ("legal_rep_id_expiry", "2035-06-01".into()),
        ("legal_rep_id_start", "2015-06-01".into()),
        ("contact_mobile", format!("1380000000{}", n % 10)),
        ("settlement_account_name", format!("测试商户{n}有限公司")),
        ("settlement_account_number", format!("1100000000000000{n}")),
        ("settlement_account_type", "corporate".into()),
        ("mcc", "5812".into()),
        ("business_scope", "餐饮服务".into()),
        ("registered_city_code", "310104".into()),
        ("install_lat", "31.1884".into()),
        ("install_lon", "121.4365".into()),
        ("terminal_sn", format!("SN{n}")),
        ("terminal_model", "LKL-A8".into()),
        ("declared_monthly_volume", "200000.00".into()),
        ("contract_rate_debit", "0.0050".into()),
        ("contract_debit_cap", "20.00".into()),
        ("contract_rate_credit", "0.0060".into()),
        ("contract_rate_qr", "0.0038".into()),
        ("contract_fixed_fee", "0.00".into()),
        ("contract_sim_fee_yearly", "0.00".into()),
        ("contract_deposit", "0.00".into()),
        ("deposit_refund_threshold", "".into()),
        ("documents", "license;id_front;id_back;bank_card;storefront_photo".into()),
        ("channel", "branch".into()),
        ("agent_id", "".into()),
        ("submitted_at", "2026-01-05 10:00:00".into()),
        ("reviewed_at", "2026-01-06 10:00:00".into()),
        ("status", "approved".into()),
        ("contract_signed_at", "2026-01-07 10:00:00".into()),
        ("installed_at", "2026-01-10 10:00:00".into()),
    ] {
        r.insert(k.to_string(), s(&v));
    }
    r
}

fn text(r: &Record, k: &str) -> String {
    r.get(k).map(yaml_scalar_text).unwrap_or_default()
}

/// A clean transaction of the merchant `app`; the fee is the contract's.
fn default_transaction(i: usize, app: &Record) -> Record {
    let s = |v: String| serde_yaml::Value::String(v);
    let mut r = Record::new();
    for (k, v) in [
        ("txn_id", format!("T{}", i + 1)),
        ("merchant_id", text(app, "merchant_id")),
        ("terminal_sn", text(app, "terminal_sn")),
        ("txn_time", "2026-11-10 12:00:00".into()),
        ("txn_type", "purchase".into()),
        ("status", "approved".into()),
        ("amount", "100.00".into()),
        ("payment_method", "card".into()),
        ("card_type", "debit".into()),
        ("card_no_masked", "622576******8888".into()),
        ("card_hash", format!("C{}", i + 1)),
        ("entry_mode", "chip".into()),
        ("mcc", text(app, "mcc")),
        ("fee", "".into()),
        ("location_city_code", text(app, "registered_city_code")),
        ("lat", text(app, "install_lat")),
        ("lon", text(app, "install_lon")),
        ("original_txn_id", "".into()),
        ("settlement_account_number", text(app, "settlement_account_number")),
    ] {
        r.insert(k.to_string(), s(v));
    }
    r
}

/// The fee the merchant's contract gives, so that cases not about fees
/// are not fee findings by accident.
fn contract_fee(t: &Record, app: &Record) -> String {
    let money = |k: &str| parse_money(&text(app, k), AmountUnit::Yuan).ok();
    let rate = |k: &str| parse_rate(&text(app, k)).ok();
    let contract = fee::Contract {
        rate_debit: rate("contract_rate_debit"),
        debit_cap: money("contract_debit_cap"),
        rate_credit: rate("contract_rate_credit"),
        rate_qr: rate("contract_rate_qr"),
        fixed_fee: money("contract_fixed_fee"),
    };
    let card_type = text(t, "card_type");
    let how = fee::Priced::of(&text(t, "payment_method"), Some(card_type.as_str()).filter(|c| !c.is_empty()));
    let is_sale = matches!(text(t, "txn_type").as_str(), "purchase" | "preauth_complete") && text(t, "status") == "approved";
    match (how, parse_money(&text(t, "amount"), AmountUnit::Yuan)) {
        (Some(how), Ok(a)) if is_sale => fee::expected(a, how, &contract)
            .map(|e| crate::engine::hits::format_decimal(e.total() as i128, 2))
            .unwrap_or_else(|| "0.00".into()),
        _ => "0.00".into(),
    }
}

fn default_fee(i: usize) -> Record {
    let mut r = Record::new();
    for (k, v) in [
        ("charge_id", format!("F{}", i + 1)),
        ("merchant_id", "M1".to_string()),
        ("terminal_sn", "SN1".into()),
        ("charged_at", "2026-11-10 09:00:00".into()),
        ("charge_type", "sim_fee".into()),
        ("amount", "0.00".into()),
        ("description", "".into()),
    ] {
        r.insert(k.to_string(), serde_yaml::Value::String(v));
    }
    r
}

fn default_fee_change() -> Record {
    let mut r = Record::new();
    for (k, v) in [
        ("merchant_id", "M1"),
        ("effective_at", "2026-11-10 00:00:00"),
        ("item", "rate_credit"),
        ("old_value", "0.0060"),
        ("new_value", "0.0060"),
        ("notice_published_at", "2026-09-01 00:00:00"),
    ] {
        r.insert(k.to_string(), serde_yaml::Value::String(v.to_string()));
    }
    r
}

fn merge(mut base: Record, over: &Record) -> Record {
    for (k, v) in over {
        base.insert(k.clone(), v.clone());
    }
    base
}

fn write_csv(path: &Path, kind: InputKind, rows: &[Record]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    let mut cols: Vec<String> = kind.columns().iter().map(|c| c.name.to_string()).collect();
    for r in rows {
        for k in r.keys() {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    w.write_record(&cols)?;
    for r in rows {
        w.write_record(cols.iter().map(|c| text(r, c)))?;
    }
    w.flush()
}

/// Write a case's inputs into `dir` under their conventional names.
pub(crate) fn write_case(case: &RuleTest, dir: &Path) -> std::io::Result<()> {
    let apps: Vec<Record> = match &case.applications {
        None => vec![default_application(0)],
        Some(rows) => rows.iter().enumerate().map(|(i, r)| merge(default_application(i), r)).collect(),
    };
    let app_of = |m: &str| {
        apps.iter()
            .find(|a| text(a, "merchant_id") == m)
            .cloned()
            .unwrap_or_else(|| apps[0].clone())
    };
    let txns: Vec<Record> = case
        .transactions
        .iter()
        .enumerate()
        .map(|(i, over)| {
            let merchant = over
                .get("merchant_id")
                .map(yaml_scalar_text)
                .unwrap_or_else(|| text(&apps[0], "merchant_id"));
            let app = app_of(&merchant);
            let mut t = merge(default_transaction(i, &app), over);
            if !over.contains_key("fee") {
                let f = contract_fee(&t, &app);
                t.insert("fee".into(), serde_yaml::Value::String(f));
            }
            t
        })
        .collect();
    write_csv(&dir.join("applications.csv"), InputKind::Applications, &apps)?;
    write_csv(&dir.join("transactions.csv"), InputKind::Transactions, &txns)?;
    if let Some(fees) = &case.fees {
        let rows: Vec<Record> = fees.iter().enumerate().map(|(i, r)| merge(default_fee(i), r)).collect();
        write_csv(&dir.join("fees.csv"), InputKind::Fees, &rows)?;
    }
    if let Some(changes) = &case.fee_changes {
        let rows: Vec<Record> = changes.iter().map(|r| merge(default_fee_change(), r)).collect();
        write_csv(&dir.join("fee_changes.csv"), InputKind::FeeChanges, &rows)?;
    }
    Ok(())
}

/// Run one rule on the case's records.
pub fn run_case(lr: &LoadedRule, case: &RuleTest, refs: &References) -> CaseResult {
    let mut result = CaseResult {
        rule_id: lr.rule.id.clone(),
        case: case.name.clone(),
        file: lr.file.clone(),
        passed: false,
        expected: {
            let mut e = case.hits.clone();
            e.sort();
            e
        },
        actual: vec![],
        detail: None,
        messages: vec![],
    };
    let outcome = (|| -> Result<(Vec<Finding>, engine::RuleRun), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::Output(std::env::temp_dir(), e))?;
        write_case(case, tmp.path()).map_err(|e| Error::Output(tmp.path().to_path_buf(), e))?;
        let as_of = case.as_of.unwrap_or_else(|| DEFAULT_AS_OF.parse().expect("valid date"));
        let plan = InputPlan::discover(tmp.path())?;
        let mapping = Mapping::default();
        let headers = input::read_headers(&plan, &mapping)?;
        let loaded = input::load(&plan, &mapping, headers)?;
        if let Some(r) = loaded.rejected.first() {
            return Err(Error::Usage(format!(
                "the case's {} row at line {} is rejected: {} ({})",
                r.input, r.line, r.reason, r.column
            )));
        }
        let mut case_refs = refs.clone();
        for (file, text) in &case.reference {
            case_refs = crate::input::reference::with_table(&case_refs, file, text)?;
        }
        let prepared = prepare::prepare(loaded.frames, &case_refs, as_of, &None).map_err(internal)?;
        let lr = if case.params.is_empty() {
            lr.clone()
        } else {
            lr.with_params(&case.params).map_err(Error::Rules)?
        };
        let pack = RulePack {
            rules: vec![lr],
            ..Default::default()
        };
        let (findings, mut runs) = engine::run(&pack, &prepared, &loaded.stats, as_of);
        // The same case partitioned: the same findings, byte for byte.
        let in_memory = serde_json::to_string(&findings).map_err(internal)?;
        for n in PARTITIONS {
            let partitioned = run_partitioned(&pack, &plan, &mapping, &case_refs, as_of, n)?;
            if serde_json::to_string(&partitioned).map_err(internal)? != in_memory {
                let keys: Vec<&String> = partitioned.iter().map(|f| &f.key).collect();
                return Err(Error::Internal(format!(
                    "in {n} partitions the findings differ from those in memory (hits {keys:?}); the rule's split is wrong"
                )));
            }
        }
        Ok((findings, runs.remove(0)))
    })();
    match outcome {
        Err(e) => result.detail = Some(e.to_string()),
        Ok((findings, run)) => {
            result.actual = findings.iter().map(|f| f.key.clone()).collect();
            result.actual.sort();
            result.messages = findings.iter().map(|f| f.message.clone()).collect();
            if run.status != RuleStatus::Ran {
                result.detail = Some(format!("rule {:?}: {}", run.status, run.reason.unwrap_or_default()));
            } else if result.actual == result.expected {
                result.passed = true;
            } else {
                let missing: Vec<&String> = result.expected.iter().filter(|e| !result.actual.contains(e)).collect();
                let extra: Vec<&String> = result.actual.iter().filter(|a| !result.expected.contains(a)).collect();
                result.detail = Some(format!(
                    "expected hits {:?}, got {:?}{}{}",
                    result.expected,
                    result.actual,
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; missing {missing:?}")
                    },
                    if extra.is_empty() {
                        String::new()
                    } else {
                        format!("; unexpected {extra:?}")
                    },
                ));
            }
        }
    }
    result
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// Partition counts every case also runs in (besides in memory).
const PARTITIONS: [usize; 2] = [2, 5];

/// The case's inputs read again and evaluated in `n` partitions, as
/// `scan --partitions n` does.
fn run_partitioned(
    pack: &RulePack,
    plan: &InputPlan,
    mapping: &Mapping,
    refs: &References,
    as_of: chrono::NaiveDate,
    n: usize,
) -> Result<Vec<Finding>, Error> {
    let spill = engine::partition::Spill::new(n, None)
        .map_err(|e| Error::Output(std::env::temp_dir(), e))?
        .each_partition_alone()
        .counting(engine::partition::counted_keys(pack));
    let headers = input::read_headers(plan, mapping)?;
    let sink = |kind, file, df| {
        spill
            .sink(kind, file, df)
            .map_err(|e| input::InputError::Internal(format!("spilling a partition: {e}")))
    };
    let loaded = input::load_with(plan, mapping, headers, &indicatif::ProgressBar::hidden(), &sink, None, None, true)?;
    let apps = loaded
        .frames
        .get(&InputKind::Applications)
        .cloned()
        .ok_or_else(|| Error::Usage("the case has no applications".into()))?;
    let present = plan.files.keys().copied().collect();
    let inputs = engine::partition::Inputs {
        apps: &apps,
        present: &present,
        files: &loaded.stats,
        tally: &engine::partition::Tally::default(),
    };
    let (findings, _) = engine::partition::run(pack, refs, &inputs, &spill, as_of, &|_| {}).map_err(internal)?;
    Ok(findings)
}

/// Run the cases of every rule whose id contains `filter` (case-insensitive).
pub fn run_pack(pack: &RulePack, refs: &References, filter: Option<&str>) -> Vec<CaseResult> {
    use rayon::prelude::*;
    let selected: Vec<(&LoadedRule, &RuleTest)> = pack
        .rules
        .iter()
        .filter(|lr| filter.is_none_or(|f| lr.rule.id.to_lowercase().contains(&f.to_lowercase())))
        .flat_map(|lr| lr.rule.tests.iter().map(move |t| (lr, t)))
        .collect();
    let mut results: Vec<CaseResult> = engine::in_pool(|| selected.par_iter().map(|(lr, t)| run_case(lr, t, refs)).collect());
    results.extend(scoring_cases(pack, filter));
    results
}

/// The scoring file's own cases (typologies, weights, the cash-out tiers),
/// as results of a pseudo-rule `scoring`. A scoring file that does not
/// load is a failed case naming the problem.
fn scoring_cases(pack: &RulePack, filter: Option<&str>) -> Vec<CaseResult> {
    if filter.is_some_and(|f| !"scoring".contains(&f.to_lowercase())) {
        return vec![];
    }
    let result = |case: String, file: &str, passed: bool, detail: Option<String>| CaseResult {
        rule_id: "scoring".into(),
        case,
        file: file.to_string(),
        passed,
        expected: vec![],
        actual: vec![],
        detail,
        messages: vec![],
    };
    match super::cases::load_scoring(pack) {
        Ok(None) => vec![],
        Ok(Some(s)) => {
            let rules = pack
                .rules
                .iter()
                .map(|r| (r.rule.id.clone(), (r.rule.severity, r.rule.family)))
                .collect();
            s.scoring
                .run_tests(&rules)
                .into_iter()
                .map(|r| result(r.name, &s.file, r.passed, r.detail))
                .collect()
        }
        Err(e) => vec![result("the scoring file loads".into(), "scoring.yaml", false, Some(e.to_string()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_records_give_every_column_of_the_contract() {
        // A column added to the contract needs a clean default here, or
        // every case would write it empty.
        let app = default_application(0);
        let records = [
            (InputKind::Applications, app.clone()),
            (InputKind::Transactions, default_transaction(0, &app)),
            (InputKind::Fees, default_fee(0)),
            (InputKind::FeeChanges, default_fee_change()),
        ];
        for (kind, record) in records {
            // Columns a file must have; optional ones may be left out.
            for c in kind.columns().iter().filter(|c| !c.optional) {
                assert!(record.contains_key(c.name), "{kind}: the default record lacks `{}`", c.name);
            }
            for k in record.keys() {
                assert!(
                    kind.columns().iter().any(|c| c.name == k),
                    "{kind}: `{k}` is not a column of the contract"
                );
            }
        }
    }
}
