//! Any bytes as a transactions file, read in one piece and in parts (as a
//! big file is, one part per thread): the parts give exactly the rows, line
//! numbers, counts and rejections of one piece, whatever quoted values span
//! the cuts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::input::mapping::InputMapping;
use posaudit::input::read::{read_csv_bytes, read_csv_bytes_in_parts};
use posaudit::input::InputKind;

fuzz_target!(|data: &[u8]| {
    let Some((&parts, bytes)) = data.split_first() else { return };
    let parts = 2 + (parts % 6) as usize;
    let mapping = InputMapping::default();
    let whole = read_csv_bytes(InputKind::Transactions, bytes, &mapping);
    let split = read_csv_bytes_in_parts(InputKind::Transactions, bytes, &mapping, parts);
    match (whole, split) {
        (Ok(w), Ok(p)) => {
            assert_eq!(w.stats, p.stats);
            assert!(w.df.equals_missing(&p.df));
            let lines = |f: &posaudit::input::read::ParsedFile| f.rejected.iter().map(|r| (r.line, r.reason.clone())).collect::<Vec<_>>();
            assert_eq!(lines(&w), lines(&p));
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("one piece ok: {}, parts ok: {}", a.is_ok(), b.is_ok()),
    }
});
