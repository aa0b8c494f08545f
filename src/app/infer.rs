//! `posaudit mapping infer`: read a sample of an export and guess the
//! mapping that reads it (encoding, delimiter, the header row and any
//! title or summary lines around the table, which header is which
//! contract column, amount unit, date formats, enumeration values), with
//! the evidence for each guess, so that an officer with a new export
//! starts from a draft that says what it is sure of and what it is not.
//!
//! Headers are matched by the aliases of real exports (the domain
//! research, section 5); where a header says nothing, by the shape of the
//! values (an 18-character USCC with a valid check character, an 18-digit
//! ID number with a valid check digit, 15-digit merchant numbers, 6-digit
//! division codes). A guess it is not sure of is written as a comment,
//! never as a mapping presented as right.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::contract::ColType;
use crate::input::mapping::normalise_header;
use crate::input::values::clean;
use crate::input::{InputError, InputKind};

/// How sure a guess is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    fn name(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// One guess and why.
#[derive(Debug, Clone)]
pub struct Guess<T> {
    pub value: T,
    pub confidence: Confidence,
    pub evidence: String,
}

fn guess<T>(value: T, confidence: Confidence, evidence: impl Into<String>) -> Guess<T> {
    Guess {
        value,
        confidence,
        evidence: evidence.into(),
    }
}

/// What was guessed about one file.
#[derive(Debug, Clone)]
pub struct Inferred {
    pub file: PathBuf,
    pub kind: Guess<InputKind>,
    /// `utf8`, `gb18030`.
    pub encoding: Guess<&'static str>,
    pub delimiter: Guess<char>,
    /// Lines above the header row.
    pub skip_lines: Guess<usize>,
    /// Prefixes that start the summary block below the table.
    pub footer: Option<Guess<String>>,
    /// Header as written -> contract column (None: unmatched).
    pub columns: Vec<(String, Option<Guess<&'static str>>)>,
    pub amount_unit: Option<Guess<&'static str>>,
    pub datetime_format: Option<Guess<String>>,
    pub date_format: Option<Guess<String>>,
    /// Contract column -> value in the file -> contract value.
    pub values: BTreeMap<&'static str, BTreeMap<String, Guess<&'static str>>>,
    /// Contract column -> values no rule of thumb maps.
    pub unmapped_values: BTreeMap<&'static str, Vec<String>>,
    /// Columns every row needs a value of, not found: map them by hand.
    pub missing: Vec<&'static str>,
    /// Columns of the contract that may be left out, not found: written
    /// under `absent`, so the rules that need them are skipped.
    pub absent: Vec<&'static str>,
    /// A preset whose headers the file has (`wechat`, ...): the draft is
    /// the preset, which knows the format beyond what a sample shows
    /// (refund rows, codes, the title line).
    pub preset: Option<Guess<&'static str>>,
}

/// Header aliases of real exports, per input: contract column -> names
/// (compared after `normalise`).
fn aliases(kind: InputKind) -> &'static [(&'static str, &'static [&'static str])] {
    match kind {
        InputKind::Transactions => &[
            (
                "txn_id",
                &[
                    "交易单号",
                    "订单号",
                    "平台流水号",
                    "交易流水号",
                    "流水号",
                    "交易订单号",
                    "微信订单号",
                    "支付宝交易号",
                    "商户订单号",
                    "txnid",
                    "orderno",
                    "tradeno",
                ],
            ),
            (
                "merchant_id",
                &[
                    "商户号",
                    "商户编号",
                    "商户代码",
                    "银联商户号",
                    "商户id",
                    "mchid",
                    "merchantno",
                    "mercode",
                ],
            ),
            (
                "terminal_sn",
                &[
                    "终端号",
                    "终端编号",
                    "设备号",
                    "终端序列号",
                    "机具sn",
                    "sn号",
                    "自定义设备编号",
                    "设备编号",
                    "termid",
                    "possn",
                ],
            ),
            (
                "txn_time",
                &[
                    "交易时间",
                    "支付时间",
                    "交易完成时间",
                    "交易日期时间",
                    "付款时间",
                    "交易创建时间",
                    "txntime",
                    "tradetime",
                ],
            ),
            ("txn_type", &["交易类型", "业务类型", "交易种类", "txntype"]),
            ("status", &["交易状态", "状态", "支付状态", "txnstatus"]),
            (
                "amount",
                &["交易金额", "订单金额", "金额", "原始金额", "订单总金额", "应结订单金额", "txnamt"],
            ),
            (
                "payment_method",
                &["支付方式", "支付渠道", "交易渠道", "付款方式", "paychannel", "paytype"],
            ),
            ("card_type", &["卡类型", "卡类别", "卡种", "cardtype"]),
            ("card_no_masked", &["卡号", "交易卡号", "付款卡号", "银行卡号", "cardno"]),
            (
                "card_hash",
                &["卡标识", "消费者标识", "用户标识", "付款人标识", "openid", "buyerid", "userid"],
            ),
            ("entry_mode", &["交易方式", "输入方式", "受理方式", "读卡方式", "entrymode"]),
            ("mcc", &["商户类别", "mcc", "商户类别码", "行业类别", "mercatcode"]),
            ("fee", &["手续费", "商户手续费", "服务费", "fee"]),
            ("location_city_code", &["交易地区码", "交易地区", "地区码", "交易城市", "区域码"]),
            ("lat", &["纬度", "交易纬度"]),
            ("lon", &["经度", "交易经度"]),
            (
                "original_txn_id",
                &["原交易单号", "原交易单", "退款原单号", "原订单号", "原交易流水号", "原交易参考号"],
            ),
            ("settlement_account_number", &["结算账号", "结算卡号", "入账账号", "结算账户"]),
        ],
        InputKind::Applications => &[
            ("application_id", &["申请编号", "进件编号", "申请单号", "进件单号", "工单号"]),
            (
                "merchant_id",
                &["商户编号", "商户号", "商户代码", "银联商户号", "mercode", "merchantno"],
            ),
            (
                "merchant_name",
                &["商户名称", "商户注册名称", "签购单名称", "营业执照名称", "mername", "merregname"],
            ),
            ("merchant_type", &["商户类型", "主体类型", "商户性质", "mermode"]),
            ("uscc", &["统一社会信用代码", "营业执照号", "营业执照注册号", "信用代码", "merblis"]),
            (
                "license_expiry",
                &["营业执照有效期", "营业期限", "执照有效期", "营业执照到期日", "merblisexpdt"],
            ),
            ("legal_rep_name", &["法人姓名", "法定代表人", "负责人", "法人", "larname"]),
            (
                "legal_rep_id_number",
                &["法人身份证号", "证件号码", "法人证件号码", "身份证号", "身份证号码", "laridcard"],
            ),
            (
                "legal_rep_id_expiry",
                &["身份证有效期", "证件有效期", "身份证到期日", "身份证有效期结束", "laridcardexpdt"],
            ),
            (
                "legal_rep_id_start",
                &["身份证有效期开始", "证件有效期开始", "身份证签发日期", "laridcardstdt"],
            ),
            (
                "contact_mobile",
                &["联系人手机号", "联系电话", "手机号", "联系手机", "mercontactmobile"],
            ),
            (
                "settlement_account_name",
                &["结算户名", "开户名", "账户名称", "结算账户名", "acctname"],
            ),
            (
                "settlement_account_number",
                &["结算账号", "结算卡号", "结算账户", "银行账号", "acctno"],
            ),
            (
                "settlement_account_type",
                &["结算账户性质", "账户类型", "结算账户类型", "账户性质", "accttypecode"],
            ),
            ("mcc", &["mcc", "商户类别码", "行业类别", "商户类别", "mcccode"]),
            ("business_scope", &["经营范围", "经营内容"]),
            (
                "registered_city_code",
                &["商户地区代码", "地区码", "所在地区码", "注册地区码", "商户地区码"],
            ),
            ("install_lat", &["装机纬度", "纬度"]),
            ("install_lon", &["装机经度", "经度"]),
            ("terminal_sn", &["终端序列号", "机具sn", "sn号", "终端号", "possn"]),
            ("terminal_model", &["机具型号", "终端型号", "设备型号"]),
            ("declared_monthly_volume", &["预计月交易额", "月均流水", "预计月流水"]),
            ("contract_rate_debit", &["借记卡费率"]),
            ("contract_debit_cap", &["借记卡封顶", "借记卡封顶金额"]),
            ("contract_rate_credit", &["贷记卡费率", "信用卡费率"]),
            ("contract_rate_qr", &["扫码费率", "二维码费率"]),
            ("contract_fixed_fee", &["固定手续费", "单笔附加费", "秒到费"]),
            ("contract_sim_fee_yearly", &["流量费", "流量卡费", "sim卡费"]),
            ("contract_deposit", &["押金", "机具押金"]),
            ("deposit_refund_threshold", &["押金返还条件", "押金退还门槛", "达标金额"]),
            ("documents", &["已提交资料", "资料清单", "影像资料"]),
            ("channel", &["进件渠道", "渠道"]),
            ("agent_id", &["代理商编号", "服务商", "代理商", "agentno"]),
            ("submitted_at", &["提交时间", "进件时间", "申请时间"]),
            ("reviewed_at", &["审核时间", "审核完成时间"]),
            ("status", &["审核状态", "状态", "商户状态"]),
            ("contract_signed_at", &["签约时间", "合同签署时间"]),
            ("installed_at", &["装机时间", "布放时间"]),
        ],
        InputKind::Fees => &[
            ("charge_id", &["扣费编号", "收费单号", "费用编号", "流水号"]),
            ("merchant_id", &["商户号", "商户编号"]),
            ("terminal_sn", &["终端号", "终端序列号", "机具sn"]),
            ("charged_at", &["扣费时间", "收费时间", "扣款时间"]),
            ("charge_type", &["费用类型", "收费类型", "扣费类型"]),
            ("amount", &["金额", "扣费金额", "收费金额"]),
            ("description", &["说明", "备注", "费用说明"]),
        ],
        InputKind::FeeChanges => &[
            ("merchant_id", &["商户号", "商户编号"]),
            ("effective_at", &["生效时间", "生效日期", "调整时间"]),
            ("item", &["调整项目", "费率项目", "项目"]),
            ("old_value", &["原值", "调整前", "原费率"]),
            ("new_value", &["新值", "调整后", "新费率"]),
            ("notice_published_at", &["公告时间", "通知时间", "公示时间"]),
        ],
    }
}

/// A header as compared with aliases: no blanks, `*`, backticks, unit
/// suffixes (`(元)`, `（分）`) or case.
fn normalise(h: &str) -> String {
    let mut s = normalise_header(h).to_lowercase();
    for suffix in ["(元)", "（元）", "(分)", "（分）", "(%)", "（%）", "(万分之一)"] {
        s = s.replace(suffix, "");
    }
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{3000}' && *c != '_' && *c != '-')
        .collect()
}

/// Match one header to a contract column of `kind`.
fn by_header(kind: InputKind, header: &str) -> Option<Guess<&'static str>> {
    let h = normalise(header);
    if let Some(c) = kind.columns().iter().find(|c| normalise(c.name) == h) {
        return Some(guess(c.name, Confidence::High, "the contract's own name"));
    }
    for (col, names) in aliases(kind) {
        if names.iter().any(|n| normalise(n) == h) {
            return Some(guess(*col, Confidence::High, format!("`{header}` is a known header of `{col}`")));
        }
    }
    // A header that contains an alias (交易金额(元) / 订单金额合计): less sure.
    for (col, names) in aliases(kind) {
        if names.iter().any(|n| normalise(n).chars().count() >= 3 && h.contains(&normalise(n))) {
            return Some(guess(
                *col,
                Confidence::Medium,
                format!("`{header}` contains a known header of `{col}`"),
            ));
        }
    }
    None
}

/// Known spellings of the contract's enumeration values.
fn value_synonyms(column: &str) -> &'static [(&'static str, &'static str)] {
    match column {
        "txn_type" => &[
            ("消费", "purchase"),
            ("支付", "purchase"),
            ("付款", "purchase"),
            ("刷卡消费", "purchase"),
            ("扫码支付", "purchase"),
            ("sale", "purchase"),
            ("pay", "purchase"),
            ("退货", "refund"),
            ("退款", "refund"),
            ("refund", "refund"),
            ("冲正", "reversal"),
            ("撤销", "reversal"),
            ("消费撤销", "reversal"),
            ("void", "reversal"),
            ("reversal", "reversal"),
            ("预授权完成", "preauth_complete"),
        ],
        "status" => &[
            ("成功", "approved"),
            ("交易成功", "approved"),
            ("支付成功", "approved"),
            ("已支付", "approved"),
            ("success", "approved"),
            ("通过", "approved"),
            ("审核通过", "approved"),
            ("已通过", "approved"),
            ("失败", "declined"),
            ("交易失败", "declined"),
            ("支付失败", "declined"),
            ("fail", "declined"),
            ("failed", "declined"),
            ("拒绝", "rejected"),
            ("驳回", "rejected"),
            ("审核拒绝", "rejected"),
            ("待审核", "pending"),
            ("审核中", "pending"),
        ],
        "card_type" => &[
            ("借记卡", "debit"),
            ("借记", "debit"),
            ("储蓄卡", "debit"),
            ("贷记卡", "credit"),
            ("贷记", "credit"),
            ("信用卡", "credit"),
            ("准贷记卡", "credit"),
        ],
        "payment_method" => &[
            ("刷卡", "card"),
            ("银行卡", "card"),
            ("卡", "card"),
            ("pos", "card"),
            ("微信", "qr_wechat"),
            ("微信支付", "qr_wechat"),
            ("wechat", "qr_wechat"),
            ("支付宝", "qr_alipay"),
            ("alipay", "qr_alipay"),
            ("云闪付", "qr_unionpay"),
            ("银联二维码", "qr_unionpay"),
            ("银联扫码", "qr_unionpay"),
            ("unionpay", "qr_unionpay"),
        ],
        "entry_mode" => &[
            ("插卡", "chip"),
            ("芯片", "chip"),
            ("ic卡", "chip"),
            ("磁条", "swipe"),
            ("刷卡", "swipe"),
            ("挥卡", "contactless"),
            ("闪付", "contactless"),
            ("非接", "contactless"),
            ("静态码", "qr_static"),
            ("收款码", "qr_static"),
            ("主扫", "qr_static"),
            ("动态码", "qr_dynamic"),
            ("付款码", "qr_dynamic"),
            ("被扫", "qr_dynamic"),
            ("手输", "keyed"),
            ("手工输入", "keyed"),
        ],
        "merchant_type" => &[
            ("企业", "enterprise"),
            ("企业商户", "enterprise"),
            ("个体工商户", "individual_business"),
            ("个体", "individual_business"),
            ("个体户", "individual_business"),
            ("小微", "micro"),
            ("小微商户", "micro"),
            ("个人", "micro"),
        ],
        "settlement_account_type" => &[
            ("对公", "corporate"),
            ("公司", "corporate"),
            ("对私", "personal"),
            ("个人", "personal"),
        ],
        "channel" => &[
            ("线上", "online"),
            ("网上", "online"),
            ("网点", "branch"),
            ("柜面", "branch"),
            ("代理商", "agent"),
            ("服务商", "agent"),
        ],
        "charge_type" => &[
            ("流量费", "sim_fee"),
            ("流量卡费", "sim_fee"),
            ("sim卡费", "sim_fee"),
            ("押金", "deposit"),
            ("押金退还", "deposit_refund"),
            ("押金返还", "deposit_refund"),
            ("会员费", "membership"),
            ("服务费", "service_fee"),
            ("技术服务费", "service_fee"),
            ("其他", "other"),
        ],
        _ => &[],
    }
}

/// The sample: decoded lines of the file's head.
struct Sample {
    lines: Vec<String>,
}

const HEAD_BYTES: usize = 4 << 20;
const TAIL_BYTES: usize = 64 << 10;

fn read_sample(path: &Path) -> Result<(Vec<u8>, Vec<u8>, bool), InputError> {
    use std::io::{Read, Seek};
    let io = |e| InputError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len() as usize;
    let mut head = Vec::new();
    (&mut f).take(HEAD_BYTES as u64).read_to_end(&mut head).map_err(io)?;
    if size <= HEAD_BYTES {
        return Ok((head, Vec::new(), true));
    }
    let mut tail = Vec::new();
    f.seek(std::io::SeekFrom::End(-(TAIL_BYTES as i64))).map_err(io)?;
    f.read_to_end(&mut tail).map_err(io)?;
    Ok((head, tail, false))
}

fn detect_encoding(path: &Path, head: &[u8]) -> Result<Guess<&'static str>, InputError> {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(InputError::Usage(format!(
            "{}: the file is UTF-16 (byte-order mark {:02X} {:02X}); save it as UTF-8 (in Excel: CSV UTF-8) or GB18030, then infer again",
            path.display(),
            head[0],
            head[1]
        )));
    }
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(guess("utf8", Confidence::High, "UTF-8 byte-order mark"));
    }
    // A cut at the sample's end may split a character: judge the whole lines.
    let cut = head.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(head.len());
    match std::str::from_utf8(&head[..cut]) {
        Ok(t) => {
            let cjk = t.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).count();
            Ok(guess(
                "utf8",
                if cjk > 0 || t.is_ascii() {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                format!("{cut} bytes are valid UTF-8 ({cjk} Chinese characters)"),
            ))
        }
        Err(e) => {
            let (text, _, bad) = encoding_rs::GB18030.decode(&head[..cut]);
            if bad {
                return Err(InputError::Usage(format!(
                    "{}: neither UTF-8 (invalid at byte {}) nor GB18030; which encoding is it?",
                    path.display(),
                    e.valid_up_to() + 1
                )));
            }
            let sample: String = text.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).take(8).collect();
            Ok(guess(
                "gb18030",
                Confidence::High,
                format!(
                    "not UTF-8 at byte {}; reads as GB18030 without an error (\"{sample}\")",
                    e.valid_up_to() + 1
                ),
            ))
        }
    }
}

fn decode(bytes: &[u8], encoding: &str) -> String {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(bytes);
    if encoding == "utf8" {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        encoding_rs::GB18030.decode(bytes).0.into_owned()
    }
}

/// The fields of one line with a delimiter (quotes honoured).
fn fields(line: &str, delimiter: char) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter as u8)
        .from_reader(line.as_bytes());
    r.records()
        .next()
        .and_then(|x| x.ok())
        .map(|rec| rec.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn detect_delimiter(lines: &[String]) -> Guess<char> {
    let mut best = (',', 0usize, 0usize);
    for d in [',', '\t', '|', ';'] {
        let counts: Vec<usize> = lines.iter().take(60).map(|l| fields(l, d).len()).collect();
        let mut freq: BTreeMap<usize, usize> = BTreeMap::new();
        for c in counts.iter().filter(|c| **c >= 2) {
            *freq.entry(*c).or_default() += 1;
        }
        if let Some((width, n)) = freq.iter().max_by_key(|(w, n)| (**n, **w)) {
            if *n > best.1 {
                best = (d, *n, *width);
            }
        }
    }
    let shown = match best.0 {
        '\t' => "tab".to_string(),
        c => format!("'{c}'"),
    };
    let sample = lines.len().min(60);
    guess(
        best.0,
        if best.1 * 2 >= sample {
            Confidence::High
        } else {
            Confidence::Medium
        },
        format!("{} of {sample} sample lines have {} fields split by {shown}", best.1, best.2),
    )
}

/// Summary lines' usual first words.
const SUMMARY_MARKS: &[&str] = &["总交易单数", "总计", "合计", "汇总", "总笔数", "#", "<END>", "BT", "BV", "----"];

/// Guess what one file is and how to read it.
pub fn infer(path: &Path, kind: Option<InputKind>) -> Result<Inferred, InputError> {
    let (head, tail, whole) = read_sample(path)?;
    infer_sample(path, &head, &tail, whole, kind)
}

/// As `infer`, from a sample already read: the file's first bytes, its
/// last (when `whole` is false), and the name to report it by. For
/// fuzzing: any bytes give a draft or an error, never a panic.
pub fn infer_sample(path: &Path, head: &[u8], tail: &[u8], whole: bool, kind: Option<InputKind>) -> Result<Inferred, InputError> {
    let encoding = detect_encoding(path, head)?;
    let mut text = decode(head, encoding.value);
    if !whole {
        // Drop the (possibly cut) last line of the head, keep the tail's whole lines.
        text.truncate(text.rfind('\n').map(|i| i + 1).unwrap_or(text.len()));
    }
    let sample = Sample {
        lines: text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect(),
    };
    let tail_lines: Vec<String> = if whole {
        Vec::new()
    } else {
        let t = decode(tail, encoding.value);
        t.lines().skip(1).map(|l| l.trim_end_matches('\r').to_string()).collect()
    };
    if sample.lines.is_empty() {
        return Err(InputError::Usage(format!("{}: the file is empty", path.display())));
    }
    let delimiter = detect_delimiter(&sample.lines);
    let d = delimiter.value;
    let split: Vec<Vec<String>> = sample.lines.iter().map(|l| fields(l, d)).collect();
    let width = {
        let mut freq: BTreeMap<usize, usize> = BTreeMap::new();
        for f in split.iter().filter(|f| f.len() >= 2) {
            *freq.entry(f.len()).or_default() += 1;
        }
        freq.into_iter().max_by_key(|(w, n)| (*n, *w)).map(|(w, _)| w).unwrap_or(1)
    };

    // The header: among the first lines of the table's width, the one with
    // most known names; the kind, the input whose names match most.
    let kinds: Vec<InputKind> = kind.map(|k| vec![k]).unwrap_or_else(|| InputKind::ALL.to_vec());
    let mut best: Option<(usize, InputKind, usize)> = None;
    for (i, f) in split.iter().enumerate().take(40) {
        if f.len() != width {
            continue;
        }
        for k in &kinds {
            let known = f.iter().filter(|h| by_header(*k, h).is_some()).count();
            if best.is_none_or(|b| known > b.2) {
                best = Some((i, *k, known));
            }
        }
    }
    let (header_at, kind_found, known) = best.unwrap_or((0, kinds[0], 0));
    let headers = &split[header_at];
    let kind = guess(
        kind_found,
        if kind.is_some() || known * 2 >= headers.len() {
            Confidence::High
        } else if known >= 3 {
            Confidence::Medium
        } else {
            Confidence::Low
        },
        if kind.is_some() {
            "given with --input".to_string()
        } else {
            format!("{known} of {} headers are names of the {kind_found} input", headers.len())
        },
    );
    let skip_lines = guess(
        header_at,
        if known > 0 { Confidence::High } else { Confidence::Low },
        if header_at == 0 {
            "line 1 is the header row".to_string()
        } else {
            let above: Vec<String> = sample.lines[..header_at]
                .iter()
                .take(3)
                .map(|l| l.chars().take(30).collect())
                .collect();
            format!("line {} is the header row; above it: {}", header_at + 1, above.join(" / "))
        },
    );

    // The summary block: from the first line after the table whose first
    // field is a summary word, or from which no line has the table's width.
    let body: Vec<&Vec<String>> = split[header_at + 1..].iter().collect();
    let tail_split: Vec<Vec<String>> = tail_lines.iter().map(|l| fields(l, d)).collect();
    let all_after: Vec<&Vec<String>> = if whole { body.clone() } else { tail_split.iter().collect() };
    let mut footer = None;
    let first_of = |f: &Vec<String>| f.first().map(|x| clean(x).to_string()).unwrap_or_default();
    for (i, f) in all_after.iter().enumerate() {
        let first = first_of(f);
        let marked = SUMMARY_MARKS.iter().find(|m| first.starts_with(**m));
        let rest_off_table = all_after[i..]
            .iter()
            .all(|g| g.len() != width || SUMMARY_MARKS.iter().any(|m| first_of(g).starts_with(m)));
        if (marked.is_some() || (f.len() != width && !first.is_empty())) && rest_off_table && i + 1 >= all_after.len().saturating_sub(20) {
            let prefix: String = match marked {
                Some(m) => m.to_string(),
                None => first.chars().take(8).collect(),
            };
            footer = Some(guess(
                prefix.clone(),
                if marked.is_some() { Confidence::High } else { Confidence::Medium },
                format!(
                    "from `{}` on, {} lines are no table rows (a summary block)",
                    f.join(&d.to_string()).chars().take(40).collect::<String>(),
                    all_after.len() - i
                ),
            ));
            break;
        }
    }
    let data_rows: Vec<&Vec<String>> = body.iter().copied().filter(|f| f.len() == width).take(500).collect();

    // Columns: by header, then by the shape of the values.
    let column_values = |i: usize| -> Vec<String> {
        data_rows
            .iter()
            .filter_map(|r| r.get(i))
            .map(|v| clean(v).to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let mut columns: Vec<(String, Option<Guess<&'static str>>)> = headers
        .iter()
        .map(|h| (normalise_header(h).to_string(), by_header(kind.value, h)))
        .collect();
    let mut taken: BTreeSet<&'static str> = columns.iter().filter_map(|(_, g)| g.as_ref().map(|g| g.value)).collect();
    for (i, (_, g)) in columns.iter_mut().enumerate() {
        if g.is_some() {
            continue;
        }
        if let Some(p) = by_values(kind.value, &column_values(i), &taken) {
            taken.insert(p.value);
            *g = Some(p);
        }
    }
    // Two headers on one column: keep the surer, unmatch the other.
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for i in 0..columns.len() {
        let Some(g) = columns[i].1.clone() else { continue };
        match seen.get(g.value) {
            Some(&j) if columns[j].1.as_ref().map(|x| x.confidence) >= Some(g.confidence) => columns[i].1 = None,
            Some(&j) => {
                columns[j].1 = None;
                seen.insert(g.value, i);
            }
            None => {
                seen.insert(g.value, i);
            }
        }
    }
    let index_of = |col: &str| columns.iter().position(|(_, g)| g.as_ref().is_some_and(|g| g.value == col));

    // Units: money in fen or yuan.
    let money_cols: Vec<&'static str> = kind
        .value
        .columns()
        .iter()
        .filter(|c| matches!(c.ty, ColType::Money(_)))
        .map(|c| c.name)
        .collect();
    let amount_unit = money_cols.iter().filter_map(|c| index_of(c).map(|i| (c, i))).next().map(|(c, i)| {
        let header = &headers[i];
        let vals = column_values(i);
        let integers = vals
            .iter()
            .filter(|v| v.trim_start_matches('-').chars().all(|ch| ch.is_ascii_digit()))
            .count();
        let decimals = vals.iter().filter(|v| v.contains('.')).count();
        let mut sorted: Vec<i64> = vals.iter().filter_map(|v| v.parse::<i64>().ok()).collect();
        sorted.sort();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
        if header.contains("分") {
            guess("fen", Confidence::High, format!("the header `{header}` says 分"))
        } else if header.contains("元") {
            guess("yuan", Confidence::High, format!("the header `{header}` says 元"))
        } else if decimals > 0 {
            guess(
                "yuan",
                Confidence::High,
                format!("{decimals} of {} `{c}` values have decimals", vals.len()),
            )
        } else if integers == vals.len() && median >= 1000 {
            guess(
                "fen",
                Confidence::Medium,
                format!(
                    "all {} `{c}` values are whole numbers, median {median}: fen (a {} yuan median ticket is more usual)",
                    vals.len(),
                    median as f64 / 100.0
                ),
            )
        } else {
            guess(
                "yuan",
                Confidence::Low,
                format!("`{c}` values are whole numbers with median {median}: yuan or fen?"),
            )
        }
    });

    // Date and time formats, from the values.
    let cols_of = |pred: &dyn Fn(&ColType) -> bool| -> Vec<usize> {
        kind.value
            .columns()
            .iter()
            .filter(|c| pred(&c.ty))
            .filter_map(|c| index_of(c.name))
            .collect()
    };
    let datetime_values: Vec<String> = cols_of(&|t| matches!(t, ColType::DateTime))
        .into_iter()
        .flat_map(column_values)
        .collect();
    let date_values: Vec<String> = cols_of(&|t| matches!(t, ColType::Date | ColType::Expiry))
        .into_iter()
        .flat_map(column_values)
        .filter(|v| v != "长期" && v != "永久" && !v.eq_ignore_ascii_case("long-term"))
        .collect();
    let datetime_format = format_of(&datetime_values, DATETIME_CANDIDATES, true);
    let date_format = format_of(&date_values, DATE_CANDIDATES, false);

    // Enumeration values.
    let mut values: BTreeMap<&'static str, BTreeMap<String, Guess<&'static str>>> = BTreeMap::new();
    let mut unmapped_values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for c in kind.value.columns() {
        let ColType::Enum(allowed) = c.ty else { continue };
        let Some(i) = index_of(c.name) else { continue };
        let distinct: BTreeSet<String> = column_values(i).into_iter().collect();
        for v in distinct {
            if allowed.contains(&v.as_str()) {
                continue;
            }
            let low = v.to_lowercase();
            match value_synonyms(c.name)
                .iter()
                .find(|(from, to)| *from == low && allowed.contains(to))
            {
                Some((_, to)) => {
                    values
                        .entry(c.name)
                        .or_default()
                        .insert(v.clone(), guess(*to, Confidence::High, format!("`{v}` means {to}")));
                }
                None => unmapped_values.entry(c.name).or_default().push(v),
            }
        }
    }
    let not_found = |c: &&crate::contract::ColumnSpec| !c.optional && index_of(c.name).is_none();
    let missing: Vec<&'static str> = kind
        .value
        .columns()
        .iter()
        .filter(|c| not_found(c) && c.required_value)
        .map(|c| c.name)
        .collect();
    let absent: Vec<&'static str> = kind
        .value
        .columns()
        .iter()
        .filter(|c| not_found(c) && !c.required_value)
        .map(|c| c.name)
        .collect();
    let preset = recognise_preset(&split, kind.value);
    let kind = match &preset {
        Some(p) if kind.confidence < Confidence::High => guess(kind.value, Confidence::High, p.evidence.clone()),
        _ => kind,
    };
    Ok(Inferred {
        file: path.to_path_buf(),
        kind,
        encoding,
        delimiter,
        skip_lines,
        footer,
        columns,
        amount_unit,
        datetime_format,
        date_format,
        values,
        unmapped_values,
        missing,
        absent,
        preset,
    })
}

/// The preset whose signature headers one of the first lines has.
fn recognise_preset(lines: &[Vec<String>], kind: InputKind) -> Option<Guess<&'static str>> {
    for (i, fields) in lines.iter().enumerate().take(40) {
        let names: BTreeSet<String> = fields.iter().map(|f| normalise_header(f)).collect();
        for p in crate::input::mapping::PRESETS {
            if p.kind == kind && !p.signature.is_empty() && p.signature.iter().all(|h| names.contains(*h)) {
                return Some(guess(
                    p.name,
                    Confidence::High,
                    format!(
                        "line {} has the headers {} of the {} format: this is preset:{}",
                        i + 1,
                        p.signature.join(", "),
                        p.title,
                        p.name
                    ),
                ));
            }
        }
    }
    None
}

/// Datetime formats seen in real exports (`None`: the reader's default
/// already reads it).
const DATETIME_CANDIDATES: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d%H:%M:%S",
    "%Y%m%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
];
const DATE_CANDIDATES: &[&str] = &["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"];
/// What the reader reads without a format.
const DEFAULT_DATETIME: &[&str] = &["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"];

fn format_of(vals: &[String], candidates: &[&str], datetime: bool) -> Option<Guess<String>> {
    if vals.is_empty() {
        return None;
    }
    let parses = |f: &str, v: &str| {
        if datetime {
            chrono::NaiveDateTime::parse_from_str(v, f).is_ok()
        } else {
            chrono::NaiveDate::parse_from_str(v, f).is_ok()
        }
    };
    let scored: Vec<(&str, usize)> = candidates
        .iter()
        .map(|f| (*f, vals.iter().filter(|v| parses(f, v)).count()))
        .collect();
    // The first of the best: candidates go from the most usual, and
    // chrono lets some formats read more than they say (`%H` skips blanks).
    let (f, n) = scored.iter().fold(None, |best: Option<(&str, usize)>, (f, n)| match best {
        Some((_, b)) if b >= *n => best,
        _ => Some((*f, *n)),
    })?;
    if n == 0 {
        return Some(guess(
            String::new(),
            Confidence::Low,
            format!("no known format reads `{}`", vals[0]),
        ));
    }
    let all = n == vals.len();
    let default = if datetime {
        DEFAULT_DATETIME.contains(&f)
    } else {
        DATE_CANDIDATES.contains(&f)
    };
    Some(guess(
        if default && all { String::new() } else { f.to_string() },
        if all { Confidence::High } else { Confidence::Medium },
        format!("{n} of {} sample values read as {f} (e.g. `{}`)", vals.len(), vals[0]),
    ))
}

/// A column named by nothing known, guessed from its values.
fn by_values(kind: InputKind, vals: &[String], taken: &BTreeSet<&'static str>) -> Option<Guess<&'static str>> {
    if vals.len() < 3 {
        return None;
    }
    let has = |c: &str| kind.column(c).is_some() && !taken.contains(c);
    let all = |p: &dyn Fn(&str) -> bool| vals.iter().all(|v| p(v));
    let share = |p: &dyn Fn(&str) -> bool| vals.iter().filter(|v| p(v)).count() as f64 / vals.len() as f64;
    if has("uscc") && share(&|v| crate::checks::uscc::is_valid(v)) >= 0.9 {
        return Some(guess(
            "uscc",
            Confidence::Medium,
            "18-character codes with a valid GB 32100 check character",
        ));
    }
    if has("legal_rep_id_number") && share(&|v| crate::checks::idcard::is_valid(v)) >= 0.9 {
        return Some(guess(
            "legal_rep_id_number",
            Confidence::Medium,
            "18-digit numbers with a valid GB 11643 check digit",
        ));
    }
    if has("merchant_id") && all(&|v| v.len() == 15 && v.chars().all(|c| c.is_ascii_digit())) {
        return Some(guess(
            "merchant_id",
            Confidence::Medium,
            "15-digit numbers, as UnionPay merchant numbers",
        ));
    }
    for c in ["location_city_code", "registered_city_code"] {
        if has(c) && all(&|v| v.len() == 6 && v.chars().all(|c| c.is_ascii_digit())) {
            return Some(guess(c, Confidence::Low, "6-digit numbers, as division codes (GB/T 2260)"));
        }
    }
    None
}

type ValueMaps = BTreeMap<&'static str, BTreeMap<String, Guess<&'static str>>>;

/// The enumeration values of several files of one input, together. A
/// column whose values are spelled in the file's own words (消费, 成功)
/// also gets the other known spellings of its values, marked as not seen:
/// tomorrow's export may hold the 冲正 today's did not.
fn merged_values(files: &[&Inferred]) -> (ValueMaps, BTreeMap<&'static str, Vec<String>>) {
    let mut values: ValueMaps = BTreeMap::new();
    let mut unmapped: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        for (c, m) in &f.values {
            for (k, g) in m {
                values.entry(c).or_default().entry(k.clone()).or_insert_with(|| g.clone());
            }
        }
        for (c, v) in &f.unmapped_values {
            unmapped.entry(c).or_default().extend(v.iter().cloned());
        }
    }
    let kind = files[0].kind.value;
    for (c, m) in values.iter_mut() {
        let allowed = match kind.column(c).map(|s| s.ty) {
            Some(ColType::Enum(a)) => a,
            _ => continue,
        };
        let chinese = m.keys().any(|k| k.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)));
        for (from, to) in value_synonyms(c) {
            if chinese && allowed.contains(to) && from.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)) {
                m.entry(from.to_string())
                    .or_insert_with(|| guess(*to, Confidence::Medium, "a known spelling, not seen in the sample"));
            }
        }
    }
    for (c, m) in &values {
        if let Some(u) = unmapped.get_mut(c) {
            u.retain(|v| !m.contains_key(v));
        }
    }
    (
        values,
        unmapped
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| (c, v.into_iter().collect()))
            .collect(),
    )
}

/// The mapping draft for the files, with every guess's confidence and
/// evidence as a comment; required columns not found at the top. The
/// evidence quotes the file, whose bytes may hold anything: characters
/// YAML does not allow, even in a comment, are replaced, so the draft
/// always loads (a fuzz target holds it to that).
pub fn draft(inferred: &[Inferred]) -> String {
    draft_text(inferred)
        .chars()
        .map(|c| {
            if (c.is_control() && c != '\n') || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn draft_text(inferred: &[Inferred]) -> String {
    let mut s = String::new();
    let q = |t: &str| serde_json::to_string(t).unwrap_or_default();
    let _ = writeln!(s, "# posaudit mapping draft, written by `posaudit mapping infer` from:");
    for i in inferred {
        let _ = writeln!(
            s,
            "#   {} ({}, {}: {})",
            i.file.display(),
            i.kind.value,
            i.kind.confidence.name(),
            i.kind.evidence
        );
    }
    let _ = writeln!(s, "# Each guess says how sure it is and why. Check the draft with");
    let _ = writeln!(s, "#   posaudit mapping check FILE --mapping THIS_FILE");
    let _ = writeln!(s, "# and edit what it rejects.");
    let listed = |pick: fn(&Inferred) -> &Vec<&'static str>| -> Vec<String> {
        inferred
            .iter()
            .filter(|i| i.preset.is_none())
            .flat_map(|i| pick(i).iter().map(move |m| format!("{}.{m}", i.kind.value)))
            .collect()
    };
    let missing = listed(|i| &i.missing);
    if missing.is_empty() {
        let _ = writeln!(s, "# Every required column was found.");
    } else {
        let _ = writeln!(s, "# MISSING required columns (map them by hand): {}", missing.join(", "));
    }
    let absent = listed(|i| &i.absent);
    if !absent.is_empty() {
        let _ = writeln!(
            s,
            "# ABSENT (no column found; written under `absent`, so the rules that need them are skipped; map them if the file has them): {}",
            absent.join(", ")
        );
    }
    for i in inferred {
        if let Some(p) = &i.preset {
            let _ = writeln!(s, "# PRESET {}: {}", i.file.display(), p.evidence);
        }
    }
    let doubtful: Vec<String> = inferred
        .iter()
        .filter(|i| i.preset.is_none())
        .flat_map(|i| {
            i.columns
                .iter()
                .filter(|(_, g)| g.as_ref().is_some_and(|g| g.confidence < Confidence::High))
                .map(move |(h, g)| format!("{} `{h}` -> {}", i.kind.value, g.as_ref().map(|g| g.value).unwrap_or("")))
        })
        .collect();
    let mut doubtful = doubtful;
    for i in inferred.iter().filter(|i| i.preset.is_none()) {
        for (what, g) in [
            ("amount_unit", i.amount_unit.as_ref().map(|g| (g.value.to_string(), g.confidence))),
            (
                "datetime_format",
                i.datetime_format.as_ref().map(|g| (g.value.clone(), g.confidence)),
            ),
            ("date_format", i.date_format.as_ref().map(|g| (g.value.clone(), g.confidence))),
        ] {
            if let Some((v, c)) = g.filter(|(_, c)| *c < Confidence::High) {
                let d = format!("{} {what} {v} ({})", i.kind.value, c.name());
                if !doubtful.contains(&d) {
                    doubtful.push(d);
                }
            }
        }
    }
    if !doubtful.is_empty() {
        let _ = writeln!(s, "# DOUBTFUL (check these): {}", doubtful.join("; "));
    }
    // One section per input; files of one input share it: the biggest
    // one speaks for the format (its sample has the most rows to judge
    // units and formats by), the values seen in any of them are mapped.
    let mut done = BTreeSet::new();
    for first in inferred {
        if !done.insert(first.kind.value) {
            continue;
        }
        let same: Vec<&Inferred> = inferred.iter().filter(|j| j.kind.value == first.kind.value).collect();
        let size = |f: &Inferred| std::fs::metadata(&f.file).map(|m| m.len()).unwrap_or(0);
        let i = same.iter().copied().max_by_key(|f| size(f)).unwrap_or(first);
        let (values, unmapped) = merged_values(&same);
        let _ = writeln!(s, "\n{}:", i.kind.value.name());
        if let Some(p) = &i.preset {
            // The preset's own section, comments and all: a scan can take
            // `--mapping preset:NAME` as well.
            let _ = writeln!(s, "  # {}: {}", p.confidence.name(), p.evidence);
            let text = crate::input::mapping::preset(p.value).unwrap_or_default();
            let head = format!("{}:", i.kind.value.name());
            let body = text
                .lines()
                .skip_while(|l| *l != head)
                .skip(1)
                .take_while(|l| l.is_empty() || l.starts_with(' '));
            for l in body {
                let _ = writeln!(s, "{l}");
            }
            continue;
        }
        let note = |g_conf: Confidence, ev: &str| format!("# {}: {ev}", g_conf.name());
        let _ = writeln!(s, "  {}", note(i.encoding.confidence, &i.encoding.evidence));
        let _ = writeln!(s, "  encoding: {}", i.encoding.value);
        let _ = writeln!(s, "  {}", note(i.delimiter.confidence, &i.delimiter.evidence));
        if i.delimiter.value != ',' {
            let d = if i.delimiter.value == '\t' {
                "\\t".to_string()
            } else {
                i.delimiter.value.to_string()
            };
            let _ = writeln!(s, "  delimiter: {}", q(&d));
        }
        let _ = writeln!(s, "  {}", note(i.skip_lines.confidence, &i.skip_lines.evidence));
        if i.skip_lines.value > 0 {
            let _ = writeln!(s, "  skip_lines: {}", i.skip_lines.value);
        }
        if let Some(f) = &i.footer {
            let _ = writeln!(s, "  {}", note(f.confidence, &f.evidence));
            let _ = writeln!(s, "  footer: [{}]", q(&f.value));
        }
        if let Some(u) = &i.amount_unit {
            let _ = writeln!(s, "  {}", note(u.confidence, &u.evidence));
            let _ = writeln!(s, "  amount_unit: {}", u.value);
        }
        for (key, g) in [("datetime_format", &i.datetime_format), ("date_format", &i.date_format)] {
            if let Some(g) = g {
                let _ = writeln!(s, "  {}", note(g.confidence, &g.evidence));
                if g.value.is_empty() {
                    let _ = writeln!(s, "  # {key}: the default reads these");
                } else {
                    let _ = writeln!(s, "  {key}: {}", q(&g.value));
                }
            }
        }
        if !i.absent.is_empty() {
            let _ = writeln!(s, "  # no column found for these: the rules that need them are skipped");
            let _ = writeln!(s, "  absent: [{}]", i.absent.join(", "));
        }
        let _ = writeln!(s, "  columns:");
        for (h, g) in &i.columns {
            match g {
                Some(g) if g.confidence > Confidence::Low => {
                    let _ = writeln!(s, "    {}: {}   # {}: {}", q(h), g.value, g.confidence.name(), g.evidence);
                }
                Some(g) => {
                    let _ = writeln!(s, "    # {}: {}   # low, not applied: {}", q(h), g.value, g.evidence);
                }
                None => {
                    let _ = writeln!(s, "    # {}: ?   # unmatched: kept as an extra column", q(h));
                }
            }
        }
        if !values.is_empty() || !unmapped.is_empty() {
            let _ = writeln!(s, "  values:");
            let cols: BTreeSet<&&str> = values.keys().chain(unmapped.keys()).collect();
            for c in cols {
                let _ = writeln!(s, "    {c}:");
                for (from, g) in values.get(*c).into_iter().flatten() {
                    let _ = writeln!(s, "      {}: {}   # {}: {}", q(from), g.value, g.confidence.name(), g.evidence);
                }
                for v in unmapped.get(*c).into_iter().flatten() {
                    let _ = writeln!(
                        s,
                        "      # {}: ?   # not a known spelling: map it to one of the contract's values",
                        q(v)
                    );
                }
            }
        }
    }
    s
}

/// Column -> (rows rejected for it, the first (line, value, reason)).
pub type ColumnRejections = BTreeMap<String, (usize, Vec<(u64, String, String)>)>;

/// What `mapping check` found: the file read through the mapping, as a
/// scan would read it.
pub struct CheckReport {
    pub kind: InputKind,
    pub stats: crate::input::FileStats,
    /// Column -> (rows rejected for it, the first rejected values with reasons).
    pub by_column: ColumnRejections,
    /// Columns of the file the contract does not know (kept as text).
    pub extras: Vec<String>,
}

/// Read a whole file through a mapping and say what a scan would accept
/// and reject, per column. The input is `kind`, or the one whose header
/// the file has.
pub fn check(path: &Path, mapping: &crate::input::mapping::Mapping, kind: Option<InputKind>) -> Result<CheckReport, InputError> {
    let kinds: Vec<InputKind> = kind.map(|k| vec![k]).unwrap_or_else(|| InputKind::ALL.to_vec());
    let mut first_err = None;
    for k in kinds {
        let header = match crate::input::read::read_header(k, path, mapping.get(k)) {
            Ok(h) => h,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let display = path.display().to_string();
        let parsed = crate::input::read_file(k, path, &display, 0, &header, mapping.get(k), &indicatif::ProgressBar::hidden())?;
        let mut by_column = ColumnRejections::new();
        for r in &parsed.rejected {
            let col = if r.column.is_empty() {
                "(row)".to_string()
            } else {
                r.column.clone()
            };
            let e = by_column.entry(col).or_default();
            e.0 += 1;
            if e.1.len() < 5 {
                e.1.push((r.line, r.value.clone(), r.reason.clone()));
            }
        }
        return Ok(CheckReport {
            kind: k,
            stats: parsed.stats,
            by_column,
            extras: header.extras.iter().map(|(_, n)| n.clone()).collect(),
        });
    }
    Err(first_err.unwrap_or_else(|| InputError::Usage("no input kind to check".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_always_loads_as_a_mapping() {
        // Control characters in headers and values (found by the fuzzer):
        // YAML refuses them even in comments.
        let data = "交易\u{1}单号,商户号,交易时间,金额\u{7f}\nT1\u{2},898000000000001,2026-11-01 10:00:00,1.00\n合计\u{0},1\n";
        let i = infer_sample(Path::new("x.csv"), data.as_bytes(), &[], true, None).unwrap();
        let d = draft(std::slice::from_ref(&i));
        crate::input::mapping::Mapping::parse(&d, Path::new("draft.yaml")).unwrap_or_else(|e| panic!("{e}\n{d}"));
        assert!(d.contains("\"商户号\": merchant_id"), "{d}");
    }

    #[test]
    fn formats_prefer_the_usual_one_when_several_read_the_values() {
        let v = vec!["2026-10-01 02:00:00".to_string()];
        let g = format_of(&v, DATETIME_CANDIDATES, true).unwrap();
        assert_eq!(g.value, "", "the default reads it: no format is written");
        let v = vec!["20261001020000".to_string()];
        assert_eq!(format_of(&v, DATETIME_CANDIDATES, true).unwrap().value, "%Y%m%d%H%M%S");
    }
}
