//! Few-valued text columns held as categoricals while rules run.
//!
//! A transaction's type, status, payment method, card type and entry mode
//! take a handful of values each, its MCC a few hundred (ISO 18245 codes),
//! and the MCC table's columns joined onto it (`txn_mcc_fee_class`, ...) no
//! more than that table's rows; its merchant, terminal and settlement
//! account repeat one value over each merchant's rows. As text every value
//! costs a 16-byte view, and an id longer than 12 bytes its bytes too:
//! about 170-350 MB per column at 10M rows, 2.5 GB for these. As
//! categoricals they are 4-byte codes, and a rule's `status = 'approved'`
//! compares integers. Comparisons, `IN`, `CASE`, grouping and `||` read a
//! categorical as its text, so rules do not change; the few things that do
//! not (text functions such as `UPPER`, `LIKE`, `SUBSTR`) fail on the empty
//! frame a rule is resolved on first, and that rule then reads as text the
//! columns it must (`read_as_text`, `widen_some`). Frames leaving the
//! process (the parse cache, Spark, outputs) are widened, so nothing
//! outside sees a categorical; a partitioned scan's spill, which only this
//! process reads, keeps the codes (`to_codes`).
//!
//! Which of the export's columns are coded, and how, is the input layer's
//! (`input::categories`): the CSV parser builds them as codes. Here: the
//! refund originals' card, the MCC table's columns, and (in
//! `prepare::join_applications`) the application text gathered onto rows.

use polars::prelude::*;

use crate::input::categories;
pub(crate) use crate::input::categories::categories;
use crate::input::InputKind;

/// `df`'s few-valued text columns (`input::categories::is_coded`) that are
/// still text, and the refund originals' card (derived: empty on all but
/// the refunds, so few values where the card itself has nearly one per
/// row), turned into categoricals.
pub(crate) fn narrow(df: &mut DataFrame, kind: InputKind) -> PolarsResult<()> {
    let derived: &[&str] = if kind == InputKind::Transactions {
        &["original_card_hash"]
    } else {
        &[]
    };
    categories::code(df, kind, derived)
}

/// Whether any column of `schema` is a categorical (`narrow`ed).
pub(crate) fn is_narrowed(schema: &Schema) -> bool {
    schema.iter_values().any(|d| matches!(d, DataType::Categorical(..)))
}

/// `df` with its categoricals back as text.
pub(crate) fn widen(df: DataFrame) -> PolarsResult<DataFrame> {
    categories::widen(df)
}

/// `df` with its categoricals among `names` back as text (the columns one
/// rule reads: the others are not worth the copy).
pub(crate) fn widen_some(df: DataFrame, names: &std::collections::BTreeSet<String>) -> PolarsResult<DataFrame> {
    categories::widen_where(df, |n| names.contains(n))
}

/// `df`'s categoricals of this run's categories (`categories`) as their
/// codes (UInt32), and their names, for a file this process alone reads
/// back (a partitioned scan's spill; `from_codes` restores them). Widened
/// to text instead, 10M rows of a merchant id, terminal, type and status
/// were four columns of strings written, read back and coded again in
/// each of the four later passes of a partitioned scan; as codes they are
/// 4 bytes a row each way, and the rules read them as the in-memory run
/// does. The codes mean nothing to another process: files that outlive
/// the run (the parse cache) are widened.
pub(crate) fn to_codes(df: &mut DataFrame) -> PolarsResult<Vec<PlSmallStr>> {
    let ours = categories();
    let names: Vec<PlSmallStr> = df.schema().iter().filter(|(_, d)| **d == ours).map(|(n, _)| n.clone()).collect();
    for n in &names {
        let codes = df.column(n)?.as_materialized_series().cat32()?.physical().clone();
        df.with_column(codes.with_name(n.clone()).into_series().into_column())?;
    }
    Ok(names)
}

/// The columns `names` of `df`, codes that `to_codes` made in this
/// process, as categoricals of `categories` again.
pub(crate) fn from_codes(df: &mut DataFrame, names: &[PlSmallStr]) -> PolarsResult<()> {
    for n in names {
        let codes = df.column(n)?.as_materialized_series().u32()?.clone();
        // SAFETY: `to_codes` took these codes from `categories()`, which
        // lives as long as the process and never forgets a category.
        let cat = unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(codes, categories()) };
        df.with_column(cat.into_series().into_column())?;
    }
    Ok(())
}

/// `f` of each row's text of a categorical, called once per category (a
/// merchant's id repeats over all its rows): a row's partition, a key's
/// count. Memoised by code in a table the size of the categories.
pub(crate) fn per_category<T: Copy>(cat: &Categorical32Chunked, mut f: impl FnMut(Option<&str>) -> T) -> Vec<T> {
    let mapping = cat.get_mapping();
    // Slot 0 is null; a category's slot is its code + 1.
    let mut memo: Vec<Option<T>> = vec![None; mapping.num_cats_upper_bound() + 1];
    let mut of = |code: Option<u32>| f(code.and_then(|c| mapping.cat_to_str(c)));
    cat.physical()
        .iter()
        .map(|code| match memo.get_mut(code.map_or(0, |c| c as usize + 1)) {
            Some(slot) => *slot.get_or_insert_with(|| of(code)),
            None => of(code),
        })
        .collect()
}

/// The fewest of the categoricals among `names` in `schema` that a rule
/// must read as text to resolve (`resolves`, on an empty frame of a
/// schema), or None if reading all of them as text does not help. A rule
/// that takes `SUBSTR` of the city code need not read the merchant, the
/// terminal and the account as text too (three copies of 10M values).
/// Each column is tried narrowed in turn, so the set is one no column can
/// be left out of, found with one probe per column.
pub(crate) fn read_as_text(
    schema: &Schema,
    names: &std::collections::BTreeSet<String>,
    resolves: impl Fn(&Schema) -> bool,
) -> Option<std::collections::BTreeSet<String>> {
    let narrowed: Vec<String> = schema
        .iter()
        .filter(|(n, d)| matches!(d, DataType::Categorical(..)) && names.contains(n.as_str()))
        .map(|(n, _)| n.to_string())
        .collect();
    let widened = |text: &std::collections::BTreeSet<String>| -> Schema {
        schema
            .iter()
            .map(|(n, d)| (n.clone(), if text.contains(n.as_str()) { DataType::String } else { d.clone() }))
            .collect()
    };
    let mut text: std::collections::BTreeSet<String> = narrowed.iter().cloned().collect();
    if !resolves(&widened(&text)) {
        return None;
    }
    for n in &narrowed {
        text.remove(n);
        if !resolves(&widened(&text)) {
            text.insert(n.clone());
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txns() -> DataFrame {
        df!(
            "txn_type" => [Some("purchase"), Some("refund"), None, Some("purchase")],
            "status" => ["approved", "declined", "approved", "approved"],
            "merchant_id" => ["m1", "m1", "m2", "m2"],
            "txn_id" => ["t1", "t2", "t3", "t4"],
            "mcc" => ["5411", "5411", "5812", "7011"],
            "amount" => [1i64, 2, 3, 4],
        )
        .unwrap()
    }

    fn heights(df: &DataFrame, conditions: &[&str]) -> Vec<Result<usize, String>> {
        conditions
            .iter()
            .map(|q| {
                polars::sql::sql_expr(*q)
                    .and_then(|e| df.clone().lazy().filter(e).collect())
                    .map(|d| d.height())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn enumerations_and_per_merchant_text_become_categoricals_and_widen_back_unchanged() {
        let text = txns();
        let mut narrowed = text.clone();
        narrow(&mut narrowed, InputKind::Transactions).unwrap();
        assert!(matches!(narrowed.column("status").unwrap().dtype(), DataType::Categorical(..)));
        assert!(matches!(narrowed.column("txn_type").unwrap().dtype(), DataType::Categorical(..)));
        assert!(matches!(narrowed.column("mcc").unwrap().dtype(), DataType::Categorical(..)));
        assert!(matches!(narrowed.column("merchant_id").unwrap().dtype(), DataType::Categorical(..)));
        // One value per row: as codes it would be larger, not smaller.
        assert_eq!(narrowed.column("txn_id").unwrap().dtype(), &DataType::String);
        assert!(is_narrowed(narrowed.schema()));
        let back = widen(narrowed).unwrap();
        assert!(!is_narrowed(back.schema()));
        assert!(back.equals_missing(&text));
    }

    #[test]
    fn categoricals_as_codes_through_parquet_come_back_equal_and_other_columns_untouched() {
        let mut narrowed = txns();
        narrow(&mut narrowed, InputKind::Transactions).unwrap();
        let mut coded = narrowed.clone();
        let names = to_codes(&mut coded).unwrap();
        let mut sorted: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        sorted.sort_unstable();
        assert_eq!(sorted, ["mcc", "merchant_id", "status", "txn_type"]);
        assert_eq!(coded.column("status").unwrap().dtype(), &DataType::UInt32);
        assert_eq!(coded.column("txn_id").unwrap().dtype(), &DataType::String);
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut coded).unwrap();
        let mut back = ParquetReader::new(std::io::Cursor::new(bytes)).finish().unwrap();
        from_codes(&mut back, &names).unwrap();
        assert_eq!(back.schema(), narrowed.schema());
        assert!(back.equals_missing(&narrowed), "{back} vs {narrowed}");
        // And they still compare with columns coded afterwards.
        let more = crate::input::categories::coded("merchant_id".into(), 1, std::iter::once(Some("m2"))).unwrap();
        let mut stacked = back.column("merchant_id").unwrap().as_materialized_series().clone();
        stacked.append(&more).unwrap();
        assert_eq!(stacked.cast(&DataType::String).unwrap().str().unwrap().get(4), Some("m2"));
    }

    #[test]
    fn conditions_select_the_same_rows_on_categoricals_as_on_text() {
        let text = txns();
        let mut narrowed = text.clone();
        narrow(&mut narrowed, InputKind::Transactions).unwrap();
        let conditions = [
            "status = 'approved'",
            "status <> 'declined'",
            "status = 'never_seen'",
            "txn_type IN ('purchase', 'reversal', 'not_a_type')",
            "txn_type NOT IN ('refund')",
            "txn_type IS NULL",
            "txn_type > 'q'",
            "CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END > 0",
            "txn_type || '/' || status = 'purchase/approved'",
            "mcc IN ('5411', '7011') AND mcc <> merchant_id",
            "mcc BETWEEN '5000' AND '5999'",
        ];
        assert_eq!(heights(&narrowed, &conditions), heights(&text, &conditions));
    }

    #[test]
    fn aggregates_of_categoricals_are_those_of_the_text_or_fail() {
        // An aggregate that gave another answer on the codes than on the
        // text would change a rule silently; one that fails falls back.
        // Values first seen in the opposite of their text order, so that
        // codes (by first appearance) and text order disagree.
        let text = df!(
            "txn_type" => [Some("zz_first_seen"), Some("aa_seen_later"), None, Some("mm_third")],
            "status" => ["approved", "declined", "approved", "approved"],
            "merchant_id" => ["m1", "m1", "m2", "m2"],
            "mcc" => ["9999", "1111", "5812", "7011"],
        )
        .unwrap();
        let mut narrowed = text.clone();
        narrow(&mut narrowed, InputKind::Transactions).unwrap();
        let aggregates = [
            "MIN(txn_type)",
            "MAX(txn_type)",
            "COUNT(DISTINCT txn_type)",
            "FIRST(status)",
            "MAX(CASE WHEN status = 'approved' THEN mcc END)",
        ];
        let mut compared = 0;
        for a in aggregates {
            let run = |df: &DataFrame| {
                polars::sql::sql_expr(a).and_then(|e| {
                    df.clone()
                        .lazy()
                        .group_by_stable([col("merchant_id")])
                        .agg([e.alias("v")])
                        .select([col("v").cast(DataType::String)])
                        .collect()
                })
            };
            let expected = run(&text).unwrap();
            if let Ok(got) = run(&narrowed) {
                assert!(got.equals_missing(&expected), "{a}: {got:?} vs {expected:?}");
                compared += 1;
            }
        }
        // polars 0.55 runs all of them on categoricals (MIN and MAX by text).
        assert_eq!(compared, aggregates.len());
    }

    #[test]
    fn text_functions_fail_on_a_categorical_and_work_once_widened() {
        let mut narrowed = txns();
        narrow(&mut narrowed, InputKind::Transactions).unwrap();
        let q = ["UPPER(status) = 'APPROVED'"];
        assert!(heights(&narrowed, &q)[0].is_err());
        let some = widen_some(narrowed, &["status".to_string()].into()).unwrap();
        assert_eq!(some.column("status").unwrap().dtype(), &DataType::String);
        assert!(matches!(some.column("txn_type").unwrap().dtype(), DataType::Categorical(..)));
        assert_eq!(heights(&some, &q), vec![Ok(3)]);
    }

    #[test]
    fn a_rule_reads_as_text_only_the_categoricals_its_text_functions_take() {
        let mut narrowed = txns();
        narrowed
            .with_column(Column::new("location_city_code".into(), ["330203", "330108", "110101", "330203"]))
            .unwrap();
        narrow(&mut narrowed, InputKind::Transactions).unwrap();
        assert!(matches!(
            narrowed.column("location_city_code").unwrap().dtype(),
            DataType::Categorical(..)
        ));
        let q = "SUBSTR(location_city_code, 1, 2) = '33' AND merchant_id = 'm1' AND status = 'approved'";
        let resolves = |s: &Schema| {
            polars::sql::sql_expr(q)
                .and_then(|e| DataFrame::empty_with_schema(s).lazy().filter(e).collect())
                .is_ok()
        };
        assert!(!resolves(narrowed.schema()));
        let names: std::collections::BTreeSet<String> = ["location_city_code", "merchant_id", "status", "amount"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let text = read_as_text(narrowed.schema(), &names, resolves).unwrap();
        assert_eq!(text, ["location_city_code".to_string()].into());
        let some = widen_some(narrowed.clone(), &text).unwrap();
        assert!(matches!(some.column("merchant_id").unwrap().dtype(), DataType::Categorical(..)));
        assert_eq!(heights(&some, &[q]), vec![Ok(1)]);
        // A condition no reading as text can rescue: None.
        let never = |_: &Schema| false;
        assert_eq!(read_as_text(narrowed.schema(), &names, never), None);
    }
}
