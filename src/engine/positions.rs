//! A rule whose rows are cut names its rows by their position in its
//! input's prepared frame, not by their id, source file and line, and the
//! hits get those back once the plan has run.
//!
//! Every rule's frame carried the row's id, source file and line to name
//! its findings' transactions and where they came from: a 16-byte text view
//! and 12 bytes of origin a row. Cutting 9M approved purchases for a rule
//! copied all three, 240 MB, and two such rules run at once at the 10M
//! month's peak. A 4-byte position of the kept rows replaces them; the plan
//! lists positions where it listed ids (`plan::member_exprs`, a row rule's
//! `ROW_ID`), and `resolve` looks the few hits' ids and origins up in the
//! prepared frame. A rule that names the id (a group by `txn_id`, an id in
//! its message) keeps it; so does a rule over all rows, whose frame shares
//! the prepared columns instead of copying them.

use polars::prelude::*;

pub(crate) use super::plan::{AT, SRC_AT};
use super::plan::{IDS, ROW_ID};
use crate::input::{LINE_COL, SRC_COL};
use crate::rules::compiled::CompiledRule;

/// The id column `rule`'s rows are named by, if they can be named by
/// position instead: an input with an id column that the rule does not
/// name, and a frame of up to 2^32 rows.
pub(crate) fn named_by_position(rule: &CompiledRule, frame: &DataFrame) -> Option<&'static str> {
    let id = rule.source.entity().1?;
    let has = |c: &str| frame.schema().contains(c);
    let fits = u32::try_from(frame.height()).is_ok_and(|n| n < u32::MAX);
    (fits && !rule.names.contains(id) && has(id) && has(SRC_COL) && has(LINE_COL)).then_some(id)
}

/// The positions of the rows `keep` marks, as the `AT` column.
///
/// The marks are read as bits, the set ones found a word at a time: row
/// by row through polars' iterator of options this was 4% of the rules'
/// CPU at the 10M-row month (a cut rule's 10M marks each).
pub(crate) fn of_kept(keep: &BooleanChunked) -> Column {
    let mut at: Vec<u32> = Vec::with_capacity(keep.sum().unwrap_or(0) as usize);
    let mut start = 0usize;
    for arr in keep.downcast_iter() {
        let marks = arr.values();
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => at.extend(marks.true_idx_iter().map(|i| (start + i) as u32)),
            // A null mark keeps nothing, as a false one.
            Some(valid) => at.extend(marks.true_idx_iter().filter(|&i| valid.get_bit(i)).map(|i| (start + i) as u32)),
        }
        start += arr.len();
    }
    UInt32Chunked::from_vec(AT.into(), at).into_column()
}

/// `hits` with positions replaced by what they stand for in `frame` (the
/// rule's input's prepared frame, whose column `id` names rows): a row
/// rule's `ROW_ID` by the row's id, with its source and line beside it; a
/// group's `IDS` by its rows' ids; its `SRC_AT` by the first row's source
/// and line. Hits without positions are left as they are.
pub(crate) fn resolve(hits: &mut DataFrame, frame: &DataFrame, id: &str) -> PolarsResult<()> {
    // Taken, then made text: only the hits' ids, whatever the column's type.
    let ids = frame.column(id)?.as_materialized_series();
    let name = |at: &IdxCa| ids.take(at)?.cast(&DataType::String);
    let origin = |hits: &mut DataFrame, at: &IdxCa| -> PolarsResult<()> {
        for c in [SRC_COL, LINE_COL] {
            let taken = frame.column(c)?.as_materialized_series().take(at)?;
            hits.with_column(taken.into_column())?;
        }
        Ok(())
    };
    if hits.column(ROW_ID).is_ok_and(|c| c.dtype() == &DataType::UInt32) {
        let at = hits.column(ROW_ID)?.as_materialized_series().u32()?.clone();
        hits.with_column(name(&at)?.with_name(ROW_ID.into()).into_column())?;
        origin(hits, &at)?;
    }
    if hits
        .column(IDS)
        .is_ok_and(|c| c.dtype() == &DataType::List(Box::new(DataType::UInt32)))
    {
        let lists = hits.column(IDS)?.as_materialized_series().list()?.clone();
        let named: ListChunked = (0..lists.len())
            .map(|i| lists.get_as_series(i).map(|at| at.u32().and_then(name)).transpose())
            .collect::<PolarsResult<_>>()?;
        hits.with_column(named.with_name(IDS.into()).into_series().into_column())?;
    }
    if let Ok(c) = hits.column(SRC_AT) {
        let at = c.as_materialized_series().u32()?.clone();
        origin(hits, &at)?;
        hits.drop_in_place(SRC_AT)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_positions_count_across_chunks_and_skip_nulls() {
        // Three chunks: the second with null marks, the third a slice that
        // starts inside its bitmap's bytes; more than 64 rows each.
        let mark = |i: usize| i.is_multiple_of(3) || i % 7 == 1;
        let rows: Vec<Option<bool>> = (0..700).map(|i| (i % 11 != 5 || i < 100).then(|| mark(i))).collect();
        let mut keep = BooleanChunked::from_iter_options("k".into(), rows[..100].iter().copied());
        keep.append(&BooleanChunked::from_iter_options("k".into(), rows[100..400].iter().copied()))
            .unwrap();
        let whole = BooleanChunked::from_iter_options("k".into(), rows[395..].iter().copied());
        keep.append(&whole.slice(5, 300)).unwrap();
        assert_eq!(keep.chunks().len(), 3);
        let want: Vec<Option<u32>> = (0..700u32).filter(|&i| rows[i as usize] == Some(true)).map(Some).collect();
        assert_eq!(of_kept(&keep).u32().unwrap().to_vec(), want);
    }

    #[test]
    fn positions_stand_for_the_ids_sources_and_lines_of_the_kept_rows() {
        let frame = df!(
            "txn_id" => ["t0", "t1", "t2", "t3"],
            SRC_COL => [0u32, 0, 1, 1],
            LINE_COL => [2u64, 3, 2, 3],
        )
        .unwrap();
        let keep = BooleanChunked::from_slice("k".into(), &[false, true, true, true]);
        let at = of_kept(&keep);
        assert_eq!(at.u32().unwrap().to_vec(), [Some(1), Some(2), Some(3)]);
        // A row rule's hits: positions 3 and 1.
        let mut rows = df!(ROW_ID => [3u32, 1], "merchant_id" => ["m", "n"]).unwrap();
        resolve(&mut rows, &frame, "txn_id").unwrap();
        let text = |df: &DataFrame, c: &str| -> Vec<String> {
            let s = df.column(c).unwrap().as_materialized_series().clone();
            s.iter().map(|v| crate::engine::hits::display(&v).unwrap_or_default()).collect()
        };
        assert_eq!(text(&rows, ROW_ID), ["t3", "t1"]);
        assert_eq!(text(&rows, SRC_COL), ["1", "0"]);
        assert_eq!(text(&rows, LINE_COL), ["3", "3"]);
        assert_eq!(text(&rows, "merchant_id"), ["m", "n"]);
        // A group's hits: its rows' ids, the first row's origin.
        let lists: ListChunked = [Some(Series::new("".into(), [2u32, 3])), Some(Series::new("".into(), [1u32]))]
            .into_iter()
            .collect();
        let mut groups = DataFrame::new(
            2,
            vec![
                lists.with_name(IDS.into()).into_series().into_column(),
                Column::new(SRC_AT.into(), [2u32, 1]),
            ],
        )
        .unwrap();
        resolve(&mut groups, &frame, "txn_id").unwrap();
        assert_eq!(text(&groups, IDS), ["t2;t3", "t1"]);
        assert_eq!(text(&groups, SRC_COL), ["1", "0"]);
        assert_eq!(text(&groups, LINE_COL), ["2", "3"]);
        assert!(groups.column(SRC_AT).is_err());
        // Hits already named are left alone.
        let before = groups.clone();
        resolve(&mut groups, &frame, "txn_id").unwrap();
        assert!(groups.equals_missing(&before));
    }
}
