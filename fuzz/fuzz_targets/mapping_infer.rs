//! Any bytes as an export for `mapping infer`: a draft or an error, never a
//! panic; the draft is always a mapping file posaudit loads; and reading
//! the bytes through it accounts for every row.
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::app::infer::{draft, infer_sample};
use posaudit::input::mapping::Mapping;
use posaudit::input::read::read_csv_bytes;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(inferred) = infer_sample(Path::new("fuzz.csv"), data, &[], true, None) else {
        return;
    };
    let text = draft(std::slice::from_ref(&inferred));
    let mapping = Mapping::parse(&text, Path::new("draft.yaml")).expect("a draft is a mapping posaudit loads");
    let kind = inferred.kind.value;
    if let Ok(file) = read_csv_bytes(kind, data, mapping.get(kind)) {
        assert_eq!(file.stats.rows_read, file.stats.rows_accepted + file.stats.rows_rejected);
        assert_eq!(file.df.height() as u64, file.stats.rows_accepted);
    }
});
