//! Any text as a rule file: located errors or rules, never a panic; rules
//! that load are checked against the contract schema like `rules check`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::rules::load::load_texts;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).to_string();
    let loaded = load_texts(vec![("fuzz.yaml".into(), text)], vec!["fuzz".into()], vec![]);
    if loaded.issues.is_empty() {
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let schemas = posaudit::engine::validate::contract_schemas(&Default::default(), as_of).unwrap();
        let _ = posaudit::engine::validate::check(&loaded.pack, &schemas, as_of);
    }
});
