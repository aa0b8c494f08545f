//! `posaudit mapping infer` and `mapping check`, with the real binary, on
//! exports shaped as acquirers write them: Chinese headers, GB18030, fen,
//! compact times, Chinese enumeration values, a title above the table and
//! a summary block below it.

mod common;
use common::{root, run, text};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Contract column -> the header a Chinese export gives it.
fn chinese_headers() -> BTreeMap<&'static str, &'static str> {
    [
        // transactions
        ("txn_id", "交易流水号"),
        ("terminal_sn", "终端号"),
        ("txn_time", "交易时间"),
        ("txn_type", "交易类型"),
        ("amount", "交易金额(分)"),
        ("payment_method", "支付方式"),
        ("card_type", "卡类型"),
        ("card_no_masked", "交易卡号"),
        ("card_hash", "卡标识"),
        ("entry_mode", "交易方式"),
        ("fee", "手续费(分)"),
        ("location_city_code", "交易地区码"),
        ("lat", "纬度"),
        ("lon", "经度"),
        ("original_txn_id", "原交易流水号"),
        // applications
        ("application_id", "进件编号"),
        ("merchant_name", "商户名称"),
        ("merchant_type", "商户类型"),
        ("uscc", "统一社会信用代码"),
        ("license_expiry", "营业执照有效期"),
        ("legal_rep_name", "法定代表人"),
        ("legal_rep_id_number", "法人身份证号"),
        ("legal_rep_id_expiry", "身份证有效期"),
        ("legal_rep_id_start", "身份证有效期开始"),
        ("contact_mobile", "联系人手机号"),
        ("settlement_account_name", "结算户名"),
        ("settlement_account_type", "结算账户性质"),
        ("business_scope", "经营范围"),
        ("registered_city_code", "商户地区代码"),
        ("install_lat", "装机纬度"),
        ("install_lon", "装机经度"),
        ("terminal_model", "机具型号"),
        ("declared_monthly_volume", "预计月交易额"),
        ("contract_rate_debit", "借记卡费率"),
        ("contract_debit_cap", "借记卡封顶"),
        ("contract_rate_credit", "贷记卡费率"),
        ("contract_rate_qr", "扫码费率"),
        ("contract_fixed_fee", "固定手续费"),
        ("contract_sim_fee_yearly", "流量卡费"),
        ("contract_deposit", "押金"),
        ("deposit_refund_threshold", "押金退还门槛"),
        ("documents", "已提交资料"),
        ("channel", "进件渠道"),
        ("agent_id", "代理商编号"),
        ("submitted_at", "提交时间"),
        ("reviewed_at", "审核时间"),
        ("contract_signed_at", "签约时间"),
        ("installed_at", "装机时间"),
    ]
    .into_iter()
    .collect()
}

fn chinese_value(column: &str, v: &str) -> String {
    let table: &[(&str, &str)] = match column {
        "txn_type" => &[("purchase", "消费"), ("refund", "退货"), ("reversal", "冲正")],
        "card_type" => &[("debit", "借记卡"), ("credit", "贷记卡")],
        "payment_method" => &[
            ("card", "刷卡"),
            ("qr_wechat", "微信"),
            ("qr_alipay", "支付宝"),
            ("qr_unionpay", "云闪付"),
        ],
        "entry_mode" => &[
            ("chip", "插卡"),
            ("swipe", "磁条"),
            ("contactless", "闪付"),
            ("qr_static", "静态码"),
            ("qr_dynamic", "付款码"),
            ("keyed", "手输"),
        ],
        "merchant_type" => &[("enterprise", "企业"), ("individual_business", "个体工商户"), ("micro", "小微")],
        "settlement_account_type" => &[("corporate", "对公"), ("personal", "对私")],
        "channel" => &[("online", "线上"), ("branch", "网点"), ("agent", "代理商")],
        _ => &[],
    };
    table
        .iter()
        .find(|(a, _)| *a == v)
        .map(|(_, b)| b.to_string())
        .unwrap_or_else(|| v.to_string())
}

fn to_fen(v: &str) -> String {
    let (neg, v) = v.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, v));
    let (y, f) = v.split_once('.').unwrap_or((v, ""));
    match (y.parse::<i64>(), format!("{f:0<2}")[..2].parse::<i64>()) {
        (Ok(y), Ok(f)) => format!("{}{}", if neg { "-" } else { "" }, y * 100 + f),
        _ => v.to_string(),
    }
}

fn compact(v: &str, datetime: bool) -> String {
    if datetime {
        chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S")
            .map(|t| t.format("%Y%m%d%H%M%S").to_string())
            .unwrap_or_else(|_| v.to_string())
    } else {
        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|t| t.format("%Y%m%d").to_string())
            .unwrap_or_else(|_| v.to_string())
    }
}

/// Rewrite one canonical CSV as a Chinese export: headers, values, fen
/// (transactions), compact times; GB18030 with a title and a summary
/// block, or UTF-8 with a byte-order mark.
fn convert(from: &Path, to: &Path, gb18030: bool, fen: bool) {
    let names = chinese_headers();
    let text = std::fs::read_to_string(from).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = String::new();
    if gb18030 {
        out.push_str("POS交易明细导出\n导出时间：2026-11-21 08:00:00\n");
    }
    let name = |h: &str| -> String {
        match h {
            // Money in fen says so; other inputs' amounts are yuan.
            "amount" | "fee" if !fen => "金额".to_string(),
            _ => names.get(h).copied().unwrap_or(h).to_string(),
        }
    };
    out.push_str(&header.iter().map(|h| name(h)).collect::<Vec<_>>().join(","));
    out.push('\n');
    let mut rows = 0;
    for line in lines {
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
        let Some(Ok(rec)) = r.records().next() else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if rec.len() != header.len() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let cells: Vec<String> = header
            .iter()
            .zip(rec.iter())
            .map(|(h, v)| match *h {
                "amount" | "fee" if fen => to_fen(v),
                "txn_time" | "submitted_at" | "reviewed_at" | "contract_signed_at" | "installed_at" => compact(v, true),
                "license_expiry" | "legal_rep_id_expiry" | "legal_rep_id_start" => compact(v, false),
                "status" if header.contains(&"txn_type") => if v == "approved" { "成功" } else { "失败" }.to_string(),
                "status" => match v {
                    "approved" => "审核通过",
                    "rejected" => "审核拒绝",
                    _ => "审核中",
                }
                .to_string(),
                c => chinese_value(c, v),
            })
            .collect();
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(vec![]);
        w.write_record(&cells).unwrap();
        out.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
        rows += 1;
    }
    if gb18030 {
        out.push_str(&format!("合计笔数,{rows}\n合计金额（分）,0\n"));
        std::fs::write(to, encoding_rs::GB18030.encode(&out).0).unwrap();
    } else {
        std::fs::write(to, format!("\u{feff}{out}")).unwrap();
    }
}

/// fixtures/demo as a Chinese acquirer exports it.
fn chinese_demo(dir: &Path) {
    let demo = root().join("fixtures/demo");
    std::fs::create_dir_all(dir.join("transactions")).unwrap();
    for e in std::fs::read_dir(demo.join("transactions")).unwrap() {
        let p = e.unwrap().path();
        convert(&p, &dir.join("transactions").join(p.file_name().unwrap()), true, true);
    }
    for name in ["applications.csv", "fees.csv", "fee_changes.csv"] {
        convert(&demo.join(name), &dir.join(name), false, false);
    }
}

/// Findings without where they were read from (file names and line
/// numbers differ by construction).
fn meaning(out: &Path) -> Vec<Value> {
    let mut v: Vec<Value> = std::fs::read_to_string(out.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Value = serde_json::from_str(l).unwrap();
            f.as_object_mut().unwrap().remove("source");
            f
        })
        .collect();
    v.sort_by_key(|f| f["fingerprint"].as_str().unwrap().to_string());
    v
}

#[test]
fn the_demo_exported_in_chinese_reads_to_the_canonical_findings_with_an_inferred_mapping() {
    let t = tempfile::tempdir().unwrap();
    let zh = t.path().join("zh");
    chinese_demo(&zh);
    let mut files: Vec<String> = ["applications.csv", "fees.csv", "fee_changes.csv"]
        .iter()
        .map(|n| zh.join(n).display().to_string())
        .collect();
    let mut daily: Vec<String> = std::fs::read_dir(zh.join("transactions"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    daily.sort();
    files.extend(daily);
    let mapping = zh.join("mapping.yaml");
    let mut args = vec!["mapping", "infer", "--out", mapping.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let draft = std::fs::read_to_string(&mapping).unwrap();
    for expected in [
        "encoding: gb18030",
        "skip_lines: 2",
        "footer: [\"合计\"]",
        "amount_unit: fen",
        "datetime_format: \"%Y%m%d%H%M%S\"",
        "\"交易金额(分)\": amount",
        "\"消费\": purchase",
        "\"企业\": enterprise",
        "Every required column was found.",
    ] {
        assert!(draft.contains(expected), "the draft lacks `{expected}`:\n{draft}");
    }

    // The scan with the draft, unedited, finds exactly what the canonical demo gives.
    let (a, b) = (t.path().join("canonical"), t.path().join("chinese"));
    for (data, out) in [(root().join("fixtures/demo"), &a), (zh.clone(), &b)] {
        let o = run(&[
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    }
    let (fa, fb) = (meaning(&a), meaning(&b));
    assert_eq!(fa.len(), fb.len());
    assert!(fa == fb, "the Chinese export gives other findings");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(b.join("manifest.json")).unwrap()).unwrap();
    let canon: Value = serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["totals"], canon["totals"], "the same rows are read, accepted and rejected");
    let skipped: u64 = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lines_skipped"].as_u64().unwrap_or(0))
        .sum();
    let days = std::fs::read_dir(zh.join("transactions")).unwrap().count() as u64;
    assert_eq!(skipped, 4 * days, "two title lines and two summary lines per daily file");

    // `mapping check` reads a file clean with it, and names what breaks.
    let day = PathBuf::from(files.last().unwrap());
    let o = run(&["mapping", "check", day.to_str().unwrap(), "--mapping", mapping.to_str().unwrap()]);
    let said = text(&o);
    assert!(
        said.contains("read as transactions") && said.contains("4 lines around the table skipped"),
        "{said}"
    );
    let broken = t.path().join("broken.csv");
    let gb = std::fs::read(&day).unwrap();
    let (s, _, _) = encoding_rs::GB18030.decode(&gb);
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    let cells: Vec<&str> = lines[4].split(',').collect();
    let amount_at = lines[2].split(',').position(|h| h == "交易金额(分)").unwrap();
    let mut cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    cells[amount_at] = "12.345".into();
    lines[4] = cells.join(",");
    std::fs::write(&broken, encoding_rs::GB18030.encode(&(lines.join("\n") + "\n")).0).unwrap();
    let o = run(&["mapping", "check", broken.to_str().unwrap(), "--mapping", mapping.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = text(&o);
    // The day's own planted bad rows are there too; the broken value is named at its line.
    assert!(said.contains("line 5: `12.345`: `12.345` is not a whole number of fen"), "{said}");
}

#[test]
fn a_file_it_cannot_read_with_confidence_gets_a_draft_that_says_so() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("odd.csv");
    std::fs::write(
        &f,
        "单号,时间,商户号,字段A,字段B\nX1,2026-11-01 10:00:00,898000000000001,abc,1\nX2,2026-11-01 11:00:00,898000000000001,def,2\nX3,2026-11-01 12:00:00,898000000000002,ghi,3\n",
    )
    .unwrap();
    let o = run(&["mapping", "infer", f.to_str().unwrap(), "--input", "transactions"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let draft = String::from_utf8_lossy(&o.stdout);
    assert!(
        draft.contains("# MISSING required columns (map them by hand): transactions.txn_id"),
        "{draft}"
    );
    assert!(draft.contains("transactions.amount"), "{draft}");
    assert!(draft.contains("# \"字段A\": ?   # unmatched"), "{draft}");
    assert!(draft.contains("\"商户号\": merchant_id"), "{draft}");
    // A UTF-16 file is named for what it is.
    let u = t.path().join("utf16.csv");
    let mut bytes = vec![0xFF, 0xFE];
    for c in "a,b\n1,2\n".encode_utf16() {
        bytes.extend(c.to_le_bytes());
    }
    std::fs::write(&u, bytes).unwrap();
    let o = run(&["mapping", "infer", u.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("the file is UTF-16"), "{}", text(&o));
}

#[test]
fn constants_fill_columns_an_export_lacks_and_absent_columns_skip_only_the_rules_that_need_them() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    std::fs::create_dir_all(data.join("transactions")).unwrap();
    let demo = root().join("fixtures/demo");
    for n in ["applications.csv", "fees.csv", "fee_changes.csv"] {
        std::fs::copy(demo.join(n), data.join(n)).unwrap();
    }
    // The demo's transactions without five columns, as a bill that has no
    // card numbers, entry modes or MCCs, and only successful card payments.
    let drop = ["payment_method", "status", "card_no_masked", "entry_mode", "mcc"];
    for e in std::fs::read_dir(demo.join("transactions")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let keep: Vec<usize> = (0..header.len()).filter(|i| !drop.contains(&header[*i])).collect();
        let mut out = keep.iter().map(|i| header[*i]).collect::<Vec<_>>().join(",") + "\n";
        for l in lines {
            let cells: Vec<&str> = l.split(',').collect();
            if cells.len() == header.len() && !l.contains('"') {
                out += &(keep.iter().map(|i| cells[*i]).collect::<Vec<_>>().join(",") + "\n");
            }
        }
        std::fs::write(data.join("transactions").join(p.file_name().unwrap()), out).unwrap();
    }
    let scan = |mapping: &str, out: &str| {
        std::fs::write(data.join("mapping.yaml"), mapping).unwrap();
        run(&[
            "scan",
            data.to_str().unwrap(),
            "--as-of",
            "2026-11-20",
            "--out",
            t.path().join(out).to_str().unwrap(),
            "--fail-on",
            "never",
        ])
    };
    // Without the mapping: the missing column is named.
    let o = scan("transactions: {}\n", "o0");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("required column `status` of the transactions input is missing"),
        "{}",
        text(&o)
    );

    let o = scan(
        "transactions:\n  constants: {payment_method: card, status: approved}\n  absent: [card_no_masked, entry_mode, mcc]\n",
        "o1",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(t.path().join("o1/manifest.json")).unwrap()).unwrap();
    let skipped: std::collections::BTreeMap<String, String> = m["rule_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "skipped")
        .map(|r| {
            (
                r["rule_id"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (rule, column) in [
        ("SUS-MCC-01", "mcc"),
        ("SUS-MCC-02", "mcc"),
        ("SUS-UNDER-01", "entry_mode"),
        ("LIM-QR-01", "entry_mode"),
    ] {
        assert!(
            skipped.get(rule).is_some_and(|r| r.contains(&format!("`{column}`"))),
            "{rule}: {skipped:?}"
        );
    }
    // Rules that read the merchant's registered MCC (app_mcc) still run.
    for rule in ["SUS-CASH-04", "SUS-CARD-02", "SUS-NEW-02"] {
        assert!(!skipped.contains_key(rule), "{rule} was skipped: {skipped:?}");
    }
    // The demo's planted bad values are still rejected; every other row reads.
    assert!(m["totals"]["transactions"]["rows_accepted"].as_u64().unwrap() > 8_000);
    assert!(m["totals"]["transactions"]["rows_rejected"].as_u64().unwrap() <= 3);

    // A constant beside the file's own column, or a required column absent: errors.
    let o = scan("transactions:\n  constants: {txn_type: purchase, payment_method: card, status: approved}\n  absent: [card_no_masked, entry_mode, mcc]\n", "o2");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("`txn_type` is in the file and also given under `constants`"),
        "{}",
        text(&o)
    );
    let o = scan("transactions:\n  absent: [status]\n", "o3");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("`status` cannot be absent"), "{}", text(&o));
}
