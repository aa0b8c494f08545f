//! Property tests of the invariants the hardening promises, on inputs
//! nobody wrote by hand:
//! - for any bytes, rows read = accepted + rejected, and reading never panics;
//! - a quote-free file has exactly one row per non-blank line after the header;
//! - masking by shape hides every ID- or card-shaped number, and is idempotent;
//! - a scan of a damaged file never panics (exit 0, 1 or 2, never 101);
//! - a file parsed in parts (as big files are, one part per thread) gives
//!   exactly what it gives in one piece: rows, line numbers, rejections.

mod common;

use posaudit::input::categories::widen;
use posaudit::input::mapping::InputMapping;
use posaudit::input::read::{read_csv_bytes, read_csv_bytes_in_parts, read_csv_bytes_streamed};
use posaudit::input::InputKind;
use posaudit::mask::scrub;
use proptest::prelude::*;

const BASE: &str = include_str!("bad_inputs/_base/transactions.csv");

/// `text` with each (position, text) edit inserted, at a character
/// boundary, and with CRLF line ends if `crlf`.
fn damage(mut text: String, edits: &[(usize, &str)], crlf: bool) -> String {
    for (at, what) in edits {
        let mut at = (*at).min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, what);
    }
    if crlf {
        text = text.replace('\n', "\r\n");
    }
    text
}

/// The base file's rows `copies` times over, damaged by `edits`.
fn repeated(copies: usize, edits: &[(usize, &str)], crlf: bool) -> String {
    let mut text = BASE.to_string();
    let body: String = BASE.lines().skip(1).map(|l| format!("{l}\n")).collect();
    for _ in 1..copies {
        text.push_str(&body);
    }
    damage(text, edits, crlf)
}

/// Edits that move record boundaries: separators, quotes, line breaks.
fn cut_edits() -> impl Strategy<Value = Vec<(usize, &'static str)>> {
    proptest::collection::vec(
        (
            0usize..4000,
            prop::sample::select(vec![",", "\"", "\r", "\n", "\u{ff}", "x", "", "\"\"", "\"a\nb\""]),
        ),
        0..12,
    )
}

/// Each rejected row's line and reason.
fn lines(f: &posaudit::input::read::ParsedFile) -> Vec<(u64, String)> {
    f.rejected.iter().map(|r| (r.line, r.reason.clone())).collect()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A partitioned run reads a big file in parts handed on as they are
/// parsed. A quoted value that spans a cut makes the part before it take
/// in the next one, not the whole rest of the file (which held a 2 GB file
/// whole): here one value of 60 lines spans the first of three cuts, and
/// four parts are handed on as three, with what one piece gives; read in
/// memory in parts, the same.
#[test]
fn a_quoted_value_across_a_cut_joins_two_parts_not_the_rest_of_the_file() {
    let mut rows = BASE.lines();
    // An extra column, kept as text: a free-text memo.
    let header = format!("{},memo", rows.next().unwrap());
    let body: Vec<&str> = rows.collect();
    let row = |i: usize| format!("{},", body[i % body.len()]);
    let mut text = format!("{header}\n");
    for i in 0..40 {
        text.push_str(&row(i));
        text.push('\n');
    }
    // One memo quoted over 60 lines (a record may span 100).
    let quoted_from = text.len();
    text.push_str(&format!("{}\"{}\"\n", row(40), vec!["abcdefghij".repeat(4); 60].join("\n")));
    let quoted_to = text.len();
    // Rows after it until the first cut (a quarter of the file) falls in
    // the middle of the quoted value.
    let mut n = 41;
    while text.len() < 2 * (quoted_from + quoted_to) {
        text.push_str(&row(n));
        text.push('\n');
        n += 1;
    }
    let first_cut = text.len() / 4;
    assert!(
        quoted_from < first_cut && first_cut + 20 < quoted_to,
        "the first cut falls inside the quoted value"
    );
    let m = InputMapping::default();
    let whole = read_csv_bytes(InputKind::Transactions, text.as_bytes(), &m).unwrap();
    let (streamed, frames) = read_csv_bytes_streamed(InputKind::Transactions, text.as_bytes(), &m, 4).unwrap();
    assert_eq!(frames.len(), 3, "parts 1 and 2 as one, then parts 3 and 4");
    assert_eq!(whole.stats, streamed.stats);
    assert_eq!(lines(&whole), lines(&streamed));
    let mut frames = frames.into_iter();
    let mut all = frames.next().unwrap();
    for f in frames {
        all.vstack_mut_owned(f).unwrap();
    }
    // Streamed parts are text; a whole file in memory has codes.
    let whole_text = widen(whole.df.clone()).unwrap();
    assert!(whole_text.equals_missing(&all), "rows differ:\n{:?}\n{:?}", whole.df, all);
    assert_eq!((whole.stats.rows_read, whole.stats.rows_accepted), (n as u64, n as u64));
    // Read in memory in parts (no partitions): the same, where a quoted
    // value across a cut used to have the whole file read in one piece.
    let split = read_csv_bytes_in_parts(InputKind::Transactions, text.as_bytes(), &m, 4).unwrap();
    assert_eq!(whole.stats, split.stats);
    assert_eq!(lines(&whole), lines(&split));
    assert!(whole.df.equals_missing(&split.df));
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_reconcile(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for kind in [InputKind::Transactions, InputKind::Applications] {
            if let Ok(f) = read_csv_bytes(kind, &bytes, &InputMapping::default()) {
                prop_assert_eq!(f.stats.rows_read, f.stats.rows_accepted + f.stats.rows_rejected);
                prop_assert_eq!(f.df.height() as u64, f.stats.rows_accepted);
            }
        }
    }

    #[test]
    fn damaged_base_files_reconcile_and_lose_no_line(
        edits in proptest::collection::vec((0usize..4000, prop::sample::select(vec![",", "\"", "\r", "\n", "\u{ff}", "x", "", "\"\""])), 0..12),
        crlf in any::<bool>(),
    ) {
        let text = damage(BASE.to_string(), &edits, crlf);
        let f = read_csv_bytes(InputKind::Transactions, text.as_bytes(), &InputMapping::default());
        if let Ok(f) = f {
            prop_assert_eq!(f.stats.rows_read, f.stats.rows_accepted + f.stats.rows_rejected);
            if !text.contains('"') {
                // Blank lines before the header are not rows, nor is the header.
                let body_lines = text
                    .lines()
                    .map(|l| l.trim_end_matches('\r'))
                    .skip_while(|l| l.is_empty())
                    .skip(1)
                    .filter(|l| !l.is_empty())
                    .count() as u64;
                prop_assert_eq!(f.stats.rows_read, body_lines, "every line is a row");
            }
            for r in &f.rejected {
                prop_assert!(r.line >= 2);
            }
        }
    }

    #[test]
    fn parts_give_what_one_piece_gives(
        edits in cut_edits(),
        copies in 1usize..6,
        parts in 2usize..7,
        crlf in any::<bool>(),
    ) {
        let text = repeated(copies, &edits, crlf);
        let m = InputMapping::default();
        let whole = read_csv_bytes(InputKind::Transactions, text.as_bytes(), &m);
        let split = read_csv_bytes_in_parts(InputKind::Transactions, text.as_bytes(), &m, parts);
        match (whole, split) {
            (Ok(w), Ok(p)) => {
                prop_assert_eq!(&w.stats, &p.stats);
                prop_assert!(w.df.equals_missing(&p.df), "rows differ:\n{:?}\n{:?}", w.df, p.df);
                prop_assert_eq!(lines(&w), lines(&p));
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "one piece {:?} vs parts {:?}", a.is_ok(), b.is_ok()),
        }
    }

    #[test]
    fn parts_handed_on_one_by_one_give_what_one_piece_gives(
        edits in cut_edits(),
        copies in 1usize..6,
        parts in 2usize..7,
        crlf in any::<bool>(),
    ) {
        // A partitioned run spills each part as it is parsed; a quoted
        // value across a cut joins the parts it spans.
        let text = repeated(copies, &edits, crlf);
        let m = InputMapping::default();
        let whole = read_csv_bytes(InputKind::Transactions, text.as_bytes(), &m);
        let streamed = read_csv_bytes_streamed(InputKind::Transactions, text.as_bytes(), &m, parts);
        match (whole, streamed) {
            (Ok(w), Ok((s, frames))) => {
                prop_assert_eq!(&w.stats, &s.stats);
                prop_assert!(s.streamed && s.df.height() == 0);
                let mut frames = frames.into_iter();
                let mut all = frames.next().unwrap_or_default();
                for f in frames {
                    all.vstack_mut_owned(f).unwrap();
                }
                if w.df.height() > 0 || all.height() > 0 {
                    let text = widen(w.df.clone()).unwrap();
                    prop_assert!(text.equals_missing(&all), "rows differ:\n{:?}\n{:?}", w.df, all);
                }
                prop_assert_eq!(lines(&w), lines(&s));
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "one piece {:?} vs streamed {:?}", a.is_ok(), b.is_ok()),
        }
    }

    #[test]
    fn masking_hides_every_id_and_card_shape(
        // Numbers are masked as whole words (see `scrub`): no letter touches them.
        prefix in "[ :=,;(\u{4e00}-\u{4e09}]{0,6}",
        suffix in "[ :=,;)\u{4e00}-\u{4e09}]{0,6}",
        birth in 19000101u32..20991231,
        serial in 0u32..999,
        check in prop::sample::select(vec!['0', '5', '9', 'X', 'x']),
        card in "[0-9]{16,25}",
    ) {
        let b = birth.to_string();
        let valid_date = chrono::NaiveDate::parse_from_str(&b, "%Y%m%d").is_ok();
        let id = format!("110105{b}{serial:03}{check}");
        let text = format!("{prefix}{id}{suffix} {card}.");
        let out = scrub(&text);
        if valid_date {
            prop_assert!(!out.contains(&id), "{} kept {}", out, id);
        }
        prop_assert!(!out.contains(&card), "{} kept {}", out, card);
        let again = scrub(&out).into_owned();
        prop_assert_eq!(again.as_str(), out.as_ref(), "masking is idempotent");
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// The binary on a damaged daily file: any exit but a panic.
    #[test]
    fn a_scan_of_damaged_input_never_panics(
        edits in proptest::collection::vec((0usize..4000, prop::sample::select(vec![",", "\"", "\r\n", "\n", "\u{0}", "-1", "99999999999999999999", "长期"])), 1..8),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad_inputs/_base/applications.csv"),
            data.join("applications.csv"),
        ).unwrap();
        let mut text = BASE.to_string();
        for (at, what) in &edits {
            let mut at = (*at).min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            text.insert_str(at, what);
        }
        std::fs::write(data.join("transactions.csv"), &text).unwrap();
        let o = common::posaudit_command()
            .args(["scan", "data", "--as-of", "2026-11-20", "--out", "out", "--quiet"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        prop_assert!(matches!(o.status.code(), Some(0..=2)), "exit {:?}: {}", o.status.code(), err);
        prop_assert!(!err.contains("panicked"), "{}", err);
    }
}
