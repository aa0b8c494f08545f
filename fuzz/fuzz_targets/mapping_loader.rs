//! Any text as a mapping file: an error or a mapping, never a panic; and a
//! mapping that loads can read a small file without a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::input::mapping::Mapping;
use posaudit::input::read::read_csv_bytes;
use posaudit::input::InputKind;

const SAMPLE: &[u8] =
    b"txn_id,merchant_id,terminal_sn,txn_time,txn_type,status,amount\nT1,822100058120001,SN1,2026-10-01 08:00:00,purchase,approved,12.34\n";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Mapping::parse(&text, std::path::Path::new("fuzz.yaml")) {
        let _ = read_csv_bytes(InputKind::Transactions, SAMPLE, m.get(InputKind::Transactions));
    }
});
