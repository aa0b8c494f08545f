//! Any bytes as a transactions file and as an applications file: the reader
//! never panics, and every row is accepted or rejected (the reader asserts
//! read = accepted + rejected in debug builds, which fuzzing uses).
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::input::mapping::InputMapping;
use posaudit::input::read::read_csv_bytes;
use posaudit::input::InputKind;

fuzz_target!(|data: &[u8]| {
    let mapping = InputMapping::default();
    for kind in [InputKind::Transactions, InputKind::Applications] {
        if let Ok(file) = read_csv_bytes(kind, data, &mapping) {
            assert_eq!(file.stats.rows_read, file.stats.rows_accepted + file.stats.rows_rejected);
            assert_eq!(file.df.height() as u64, file.stats.rows_accepted);
            for r in &file.rejected {
                assert_eq!(posaudit::mask::scrub(&r.value), r.value.as_str());
                assert_eq!(posaudit::mask::scrub(&r.reason), r.reason.as_str());
            }
        }
    }
});
