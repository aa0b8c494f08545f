//! Any bytes read through a mapping that changes everything a mapping can
//! change: encoding, delimiter, units, formats, header names, values; and
//! through each shipped preset (per-row cases, title values, patterns).
#![no_main]
use libfuzzer_sys::fuzz_target;
use posaudit::input::mapping::{Mapping, PRESETS};
use posaudit::input::read::read_csv_bytes;
use posaudit::input::InputKind;

const MAPPINGS: &[&str] = &[
    "transactions:\n  encoding: gbk\n  delimiter: \"|\"\n  amount_unit: fen\n  datetime_format: \"%Y%m%d%H%M%S\"\n  date_format: \"%Y%m%d\"\n  columns:\n    交易流水号: txn_id\n    商户编号: merchant_id\n    交易时间: txn_time\n    交易金额(分): amount\n  values:\n    txn_type: {消费: purchase, 退货: refund}\n",
    "transactions:\n  encoding: gb18030\n  delimiter: \"\\t\"\n",
    "transactions:\n  delimiter: \";\"\n  amount_unit: yuan\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let all = MAPPINGS.len() + PRESETS.len();
    let i = which as usize % all;
    let text = if i < MAPPINGS.len() { MAPPINGS[i] } else { PRESETS[i - MAPPINGS.len()].text };
    let mapping = Mapping::parse(text, std::path::Path::new("fuzz.yaml")).expect("the fixed mappings are valid");
    if let Ok(file) = read_csv_bytes(InputKind::Transactions, bytes, mapping.get(InputKind::Transactions)) {
        assert_eq!(file.stats.rows_read, file.stats.rows_accepted + file.stats.rows_rejected);
    }
});
