//! JUnit XML for CI dashboards: one test case per rule case (`rules test`)
//! or per rule (`scan`: a rule "fails" when it has findings at or above
//! `--fail-on`, or when it failed to run).

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::engine::{RuleRun, RuleStatus};
use crate::findings::model::{BaselineState, Status};
use crate::findings::FailPolicy;
use crate::findings::Finding;
use crate::rules::cases::CaseResult;

pub fn rule_tests(results: &[CaseResult]) -> Report {
    let mut report = Report::new("posaudit rules test");
    let mut suites: std::collections::BTreeMap<&str, TestSuite> = std::collections::BTreeMap::new();
    for r in results {
        let suite = suites.entry(&r.rule_id).or_insert_with(|| TestSuite::new(r.rule_id.clone()));
        let status = if r.passed {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.detail.clone().unwrap_or_default());
            s.set_description(format!("{}\nfindings:\n{}", r.file, r.messages.join("\n")));
            s
        };
        let mut case = TestCase::new(r.case.clone(), status);
        case.set_classname(format!("rules.{}", r.rule_id));
        suite.add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report
}

/// Shadow rules are left out (their findings are not the officer's yet);
/// suppressed findings never fail a rule, and with a baseline each rule
/// says how many of its findings are new.
pub fn scan(runs: &[RuleRun], findings: &[Finding], fail_on: FailPolicy) -> Report {
    let mut suite = TestSuite::new("posaudit scan");
    for r in runs.iter().filter(|r| !r.shadow) {
        let failing: Vec<&Finding> = findings.iter().filter(|f| f.rule_id == r.rule_id && fail_on.fails(f)).collect();
        let status = match r.status {
            RuleStatus::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.reason.clone().unwrap_or_default());
                s
            }
            RuleStatus::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(r.reason.clone().unwrap_or_default());
                s
            }
            RuleStatus::Ran if failing.is_empty() => TestCaseStatus::success(),
            RuleStatus::Ran => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{} findings at or above {fail_on}", failing.len()));
                let shown: Vec<String> = failing
                    .iter()
                    .take(50)
                    .map(|f| {
                        let state = f.baseline.map(|b| format!("({}) ", b.name())).unwrap_or_default();
                        format!("{state}[{}] {}", f.merchant_ids.join(", "), f.message)
                    })
                    .collect();
                s.set_description(shown.join("\n"));
                s
            }
        };
        let mut case = TestCase::new(r.rule_id.clone(), status);
        case.set_classname("scan");
        // With a baseline, each rule says how its findings compare.
        let mine = || findings.iter().filter(|f| f.rule_id == r.rule_id);
        if mine().any(|f| f.baseline.is_some()) {
            let new = mine().filter(|f| f.baseline == Some(BaselineState::New)).count();
            let suppressed = mine().filter(|f| f.status == Status::Suppressed).count();
            case.set_system_out(format!(
                "{} findings: {new} new, {} unchanged, {suppressed} suppressed",
                mine().count(),
                mine().count() - new
            ));
        }
        case.set_time(std::time::Duration::from_millis(r.elapsed_ms));
        suite.add_test_case(case);
    }
    let mut report = Report::new("posaudit");
    report.add_test_suite(suite);
    report
}
