//! The prepared transactions in merchant and time order.
//!
//! Most grouped rules group by merchant (and day or month). polars groups
//! rows by hashing their key and listing each group's row numbers, and
//! gathers every aggregate through those lists: at 10M rows a third of
//! the rules' time went to that hashing alone, rule after rule over the
//! same rows. Rows whose key ascends are grouped as slices instead, with
//! no hash and no lists, and aggregated over memory in order
//! (`keys::sorted_if_ascending` tells polars where the key does). So the
//! parsed rows are put in order of merchant, then time, then input
//! position, before the derived columns are made: those are then made in
//! this order, and only the input's columns are moved (a gather of every
//! column, derived ones included, took 4.7 s of the 10M month).
//!
//! Nothing a finding says depends on the rows' order: a group's members
//! are listed in time order, ties in input order (which this order keeps
//! within a merchant), key codes are arbitrary numbers, and findings are
//! sorted at the end. What reads the input order runs before the rows are
//! moved: a refund's original is the first row in the input with its id,
//! and text keys are coded (`prepare::in_merchant_and_time_order`). Cases
//! take a repeated id's amount from its last row in the input, by the
//! rows' source and line. A partitioned scan orders each partition the
//! same way.

use polars::prelude::*;
use rayon::prelude::*;

/// The order of rows by `codes` (ascending; dense codes, as `keys`
/// makes), then `times` (null first), then position; None if the rows are
/// in that order already.
///
/// A counting sort by code, which keeps input order within a merchant:
/// exports come in time order, so a merchant's rows are then in time
/// order already. Only the merchants whose rows are not (found in the
/// same pass that counts) are sorted by time. A comparison sort of every
/// row took about 1.5 s of the 10M month.
pub(crate) fn merchant_time_order(codes: &[u32], times: Option<&Int64Chunked>) -> Option<IdxCa> {
    let n = codes.len();
    let times = times.filter(|t| t.len() == n);
    let merchants = codes.iter().max().map_or(0, |m| *m as usize + 1);
    // Rows per merchant, and whether a merchant's rows go back in time.
    let mut starts = vec![0usize; merchants + 1];
    let mut last = vec![i64::MIN; merchants];
    let mut unordered = vec![false; merchants];
    let mut ascending = true;
    let mut previous = 0u32;
    let mut count = |row: usize, c: u32, t: i64| {
        starts[c as usize + 1] += 1;
        ascending &= row == 0 || previous <= c;
        previous = c;
        let seen = &mut last[c as usize];
        unordered[c as usize] |= t < *seen;
        *seen = t;
    };
    match times {
        Some(t) => each_time(t, |row, t| count(row, codes[row], t)),
        None => codes.iter().enumerate().for_each(|(row, &c)| count(row, c, i64::MIN)),
    }
    drop(last);
    if ascending && !unordered.contains(&true) {
        return None;
    }
    for m in 1..starts.len() {
        starts[m] += starts[m - 1];
    }
    let mut order = vec![0 as IdxSize; n];
    let mut next = starts.clone();
    for (row, &c) in codes.iter().enumerate() {
        let at = &mut next[c as usize];
        order[*at] = row as IdxSize;
        *at += 1;
    }
    drop(next);
    if let Some(t) = times.filter(|_| unordered.contains(&true)) {
        // A stable sort by time of rows in input order: ties stay in it.
        let mut time: Vec<i64> = Vec::with_capacity(n);
        each_time(t, |_, t| time.push(t));
        let mut segments: Vec<&mut [IdxSize]> = Vec::new();
        let mut rest: &mut [IdxSize] = &mut order;
        for m in 0..merchants {
            let (segment, after) = rest.split_at_mut(starts[m + 1] - starts[m]);
            if unordered[m] {
                segments.push(segment);
            }
            rest = after;
        }
        segments.par_iter_mut().for_each(|s| s.sort_by_key(|&row| time[row as usize]));
    }
    Some(IdxCa::from_vec(PlSmallStr::EMPTY, order))
}

/// `f(row, time)` for each row of `times` in order, a null as
/// `i64::MIN`.
fn each_time(times: &Int64Chunked, mut f: impl FnMut(usize, i64)) {
    let mut row = 0;
    crate::input::nullable::for_each_value(times, |t, valid| {
        f(row, if valid { t } else { i64::MIN });
        row += 1;
    });
}

/// `df`'s rows in `order`, column by column: each column's old buffers
/// go as its new ones are made, so the frame is never held twice (2.8 GB
/// at 10M rows).
///
/// Each column is made one chunk first. polars gathers from a column of
/// many chunks (a parsed file's, one per block) by finding each row's
/// chunk with a binary search, and text by copying every value's bytes
/// into new buffers; from one chunk it indexes the values directly, and
/// text by its 16-byte views, sharing the bytes. Making one chunk is a
/// sequential copy of a column (text: of its views).
pub(crate) fn reorder(df: &mut DataFrame, order: &IdxCa) -> PolarsResult<()> {
    let height = order.len();
    let mut columns = std::mem::take(df).into_columns();
    columns.par_iter_mut().try_for_each(|c| -> PolarsResult<()> {
        if c.n_chunks() > 1 {
            *c = c.rechunk();
        }
        *c = c.take(order)?;
        Ok(())
    })?;
    *df = DataFrame::new(height, columns)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(order: &IdxCa) -> Vec<IdxSize> {
        order.into_no_null_iter().collect()
    }

    #[test]
    fn rows_go_by_merchant_then_time_null_first_then_position() {
        let codes = [1u32, 0, 1, 0, 1, 0];
        let times = Int64Chunked::from_iter_options("t".into(), [Some(5), Some(9), None, Some(9), Some(3), Some(1)].into_iter());
        let order = merchant_time_order(&codes, Some(&times)).unwrap();
        // Merchant 0: rows 5 (1), 1 and 3 (9, by position); merchant 1:
        // row 2 (null), 4 (3), 0 (5).
        assert_eq!(rows(&order), vec![5, 1, 3, 2, 4, 0]);
        // The same times in two chunks, one without nulls.
        let mut chunked = Int64Chunked::from_vec("t".into(), vec![5, 9]);
        chunked
            .append(&Int64Chunked::from_iter_options(
                "t".into(),
                [None, Some(9), Some(3), Some(1)].into_iter(),
            ))
            .unwrap();
        assert_eq!(chunked.chunks().len(), 2);
        assert_eq!(rows(&merchant_time_order(&codes, Some(&chunked)).unwrap()), vec![5, 1, 3, 2, 4, 0]);
        // Without times: by merchant, then position.
        assert_eq!(rows(&merchant_time_order(&codes, None).unwrap()), vec![1, 3, 5, 0, 2, 4]);
        // Times of another length are not used.
        let short = Int64Chunked::from_vec("t".into(), vec![1, 2]);
        assert_eq!(rows(&merchant_time_order(&codes, Some(&short)).unwrap()), vec![1, 3, 5, 0, 2, 4]);
    }

    #[test]
    fn rows_already_in_order_are_left_as_they_are() {
        let times = Int64Chunked::from_vec("t".into(), vec![1, 1, 4, 0, 2]);
        assert!(merchant_time_order(&[0, 0, 0, 1, 1], Some(&times)).is_none());
        assert!(merchant_time_order(&[], None).is_none());
        assert!(merchant_time_order(&[0, 1, 0], None).is_some());
        // Codes in order, a merchant's times not.
        let back = Int64Chunked::from_vec("t".into(), vec![1, 3, 2, 0, 2]);
        assert_eq!(
            rows(&merchant_time_order(&[0, 0, 0, 1, 1], Some(&back)).unwrap()),
            vec![0, 2, 1, 3, 4]
        );
    }

    #[test]
    fn the_order_of_many_rows_is_a_sort_by_merchant_time_and_position() {
        // 50,000 rows of 300 merchants, times mostly rising with repeats,
        // some merchants' going back; a few nulls.
        let codes: Vec<u32> = (0..50_000u32).map(|i| (i * 7919) % 300).collect();
        let times: Vec<Option<i64>> = (0..50_000i64)
            .map(|i| match i % 97 {
                0 => None,
                k if k < 5 && i % 300 < 40 => Some(50_000 - i),
                _ => Some(i / 3),
            })
            .collect();
        let chunked = Int64Chunked::from_iter_options("t".into(), times.iter().copied());
        let mut expected: Vec<usize> = (0..50_000).collect();
        expected.sort_by_key(|&r| (codes[r], times[r].unwrap_or(i64::MIN), r));
        let got: Vec<usize> = rows(&merchant_time_order(&codes, Some(&chunked)).unwrap())
            .into_iter()
            .map(|r| r as usize)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn reordered_rows_keep_every_column_whole() {
        let mut df = df!(
            "m" => ["b", "a", "b", "a"],
            "amount" => [Some(1i64), None, Some(3), Some(4)],
        )
        .unwrap();
        let coded = df.column("m").unwrap().cast(&crate::input::categories::categories()).unwrap();
        df.with_column(coded.with_name("coded".into())).unwrap();
        let order = IdxCa::from_vec("".into(), vec![1, 3, 0, 2]);
        reorder(&mut df, &order).unwrap();
        let expected = df!(
            "m" => ["a", "a", "b", "b"],
            "amount" => [None, Some(4i64), Some(1), Some(3)],
        )
        .unwrap();
        assert!(df.select(["m", "amount"]).unwrap().equals_missing(&expected));
        let back = df.column("coded").unwrap().cast(&DataType::String).unwrap();
        assert!(back
            .as_materialized_series()
            .equals(expected.column("m").unwrap().as_materialized_series()));
    }

    #[test]
    fn columns_of_many_chunks_are_reordered_whole() {
        // Three chunks, as a parsed file's columns come: ids longer than a
        // view holds inline (their bytes in the chunks' buffers), a null
        // id, an amount with nulls. Gathered after being made one chunk,
        // each row keeps its own values.
        let part = |ids: &[Option<&str>], amounts: &[Option<i64>]| df!("id" => ids.to_vec(), "amount" => amounts.to_vec()).unwrap();
        let mut df = part(&[Some("T20261001000000000001"), None], &[Some(1), None]);
        df.vstack_mut(&part(&[Some("T20261001000000000003")], &[Some(3)])).unwrap();
        df.vstack_mut(&part(&[Some("x4"), Some("T20261001000000000005")], &[None, Some(5)]))
            .unwrap();
        assert_eq!(df.column("id").unwrap().n_chunks(), 3);
        let order = IdxCa::from_vec("".into(), vec![4, 2, 0, 3, 1]);
        reorder(&mut df, &order).unwrap();
        let expected = df!(
            "id" => [Some("T20261001000000000005"), Some("T20261001000000000003"), Some("T20261001000000000001"), Some("x4"), None],
            "amount" => [Some(5i64), Some(3), Some(1), None, None],
        )
        .unwrap();
        assert!(df.equals_missing(&expected));
    }
}
