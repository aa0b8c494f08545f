//! Any text as a rule's `where`: the size limits, polars' SQL parser and
//! the schema check either accept it or say why, never crash.
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::rules::load::load_texts;

fuzz_target!(|data: &[u8]| {
    let cond = String::from_utf8_lossy(data);
    let cond = serde_json_escape(&cond);
    let rule = format!(
        "id: FUZZ-01\ntitle: fuzz\nfamily: suspicious_patterns\nseverity: low\nbasis: {{text: fuzz}}\nsource: transactions\nwhere: \"{cond}\"\nmessage: \"{{txn_id}}\"\n"
    );
    let loaded = load_texts(vec![("fuzz.yaml".into(), rule)], vec!["fuzz".into()], vec![]);
    if loaded.issues.is_empty() {
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let schemas = posaudit::engine::validate::contract_schemas(&Default::default(), as_of).unwrap();
        let _ = posaudit::engine::validate::check(&loaded.pack, &schemas, as_of);
    }
});

/// Escape for a YAML double-quoted string.
fn serde_json_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            '\n' => vec!['\\', 'n'],
            c if c.is_control() => vec![' '],
            c => vec![c],
        })
        .collect()
}
