//! Integer codes for text keys, so that grouping rows by merchant or card
//! sorts and hashes integers instead of comparing strings.
//!
//! Rolling windows need the rows of each key together and in time order,
//! and grouped rules group by their keys (and count distinct values of a
//! column). Sorting or grouping 10M rows by a text key spent most of its
//! time in string hashing and comparisons; a code per distinct value (by
//! first appearance) groups the rows the same way. The order of keys among
//! themselves does not matter: findings are sorted at the end.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use polars_arrow::bitmap::Bitmap;

use crate::checks::Texts;

/// Prefix of a key set's code column: `__key_merchant_id,card_hash` codes
/// the pair.
pub(crate) const KEY_PREFIX: &str = "__key_";

pub(crate) fn code_column(keys: &[String]) -> String {
    format!("{KEY_PREFIX}{}", keys.join(","))
}

/// One code per row: rows with equal values in every column get equal
/// codes (null is a value like any other), numbered by first appearance.
pub fn codes(columns: &[&StringChunked]) -> Vec<u32> {
    let singles: Vec<Vec<u32>> = columns.iter().map(|c| Texts::Plain((*c).clone()).first_codes()).collect();
    let refs: Vec<&[u32]> = singles.iter().map(Vec::as_slice).collect();
    combine(&refs)
}

/// Codes of tuples of codes, by first appearance: equal tuples, equal
/// codes. Pairs of integers hash without touching the text again.
fn combine(singles: &[&[u32]]) -> Vec<u32> {
    let Some((first, rest)) = singles.split_first() else {
        return Vec::new();
    };
    let mut code = first.to_vec();
    for next in rest {
        code = pair_codes(&code, next);
    }
    code
}

/// Codes of the pairs `(a[i], b[i])` by first appearance (`a` and `b`
/// are codes: dense, from 0).
///
/// A key that is new on almost every row (a card: 10.3M distinct among
/// 10.7M rows) makes a pair new on almost every row, and one hash table
/// of every pair missed the cache on nearly every probe: 4 s of the
/// derived columns' 11 at 10M rows, for two pairs with cards. Here the
/// side with more distinct codes (`wide`) indexes an array of the row
/// where each of its codes first appeared. As those codes are numbered
/// by first appearance, a new one is the next slot: the array fills in
/// order. A row whose other side matches that first row's has its pair's
/// code; only pairs that differ there (a card at its second merchant) go
/// through a hash table, of the row where each such pair first appeared.
fn pair_codes(a: &[u32], b: &[u32]) -> Vec<u32> {
    use hashbrown::hash_table::{Entry, HashTable};
    use std::hash::BuildHasher;

    let distinct = |c: &[u32]| c.iter().copied().max().map_or(0, |m| m as usize + 1);
    let (wide, other) = if distinct(b) >= distinct(a) { (b, a) } else { (a, b) };
    const NONE: u32 = u32::MAX;
    let mut first_of_wide = vec![NONE; distinct(wide)];
    let state = PlRandomState::default();
    let hash = |row: usize| state.hash_one((wide[row], other[row]));
    let mut later: HashTable<u32> = HashTable::new();
    let mut codes: Vec<u32> = Vec::with_capacity(a.len());
    let mut next = 0u32;
    for row in 0..a.len() {
        let first = &mut first_of_wide[wide[row] as usize];
        let code = if *first == NONE {
            *first = row as u32;
            next += 1;
            next - 1
        } else if other[*first as usize] == other[row] {
            codes[*first as usize]
        } else {
            let same = |&at: &u32| wide[at as usize] == wide[row] && other[at as usize] == other[row];
            match later.entry(hash(row), same, |&at| hash(at as usize)) {
                Entry::Occupied(slot) => codes[*slot.get() as usize],
                Entry::Vacant(slot) => {
                    slot.insert(row as u32);
                    next += 1;
                    next - 1
                }
            }
        };
        codes.push(code);
    }
    codes
}

/// Whether each row's code (a column of `codes`: dense, from 0, no nulls)
/// appears on at least `k` rows of the column: a count per code in an
/// array the size of the largest code, one pass over the rows. polars'
/// `len().over(code) >= k` says the same by grouping the rows: 2.5 s of a
/// 10M-row rule (`SUS-UNDER-02`), against 0.3 s for this filter with its
/// copy of the rows.
///
/// Not elementwise: the count is over the whole column it is given, so a
/// filter on it stays after the filters before it (the rule's `where`).
pub(crate) fn code_on_at_least(code: Expr, k: u64) -> Expr {
    let count = move |c: Column| -> PolarsResult<Column> {
        let codes = c.as_materialized_series().u32()?.rechunk();
        let values = codes.cont_slice()?;
        let largest = values.iter().copied().max().map_or(0, |m| m as usize + 1);
        // Counts that stop at their largest value, which `k` is under: a
        // byte a code for the usual small `k`. Card codes run to 10M at
        // 10M rows, and the counts are read in the rows' order, at random:
        // with 8-byte counts this step was 8% of the rules' samples.
        let kept = match u8::try_from(k) {
            Ok(_) => kept_at_least::<u8>(values, largest, k, |c| c.saturating_add(1)),
            Err(_) => kept_at_least::<u32>(values, largest, k, |c| c.saturating_add(1)),
        };
        Ok(kept.with_name(c.name().clone()).into_series().into_column())
    };
    // `apply`: the whole column at once (polars may cut what `map` gets).
    code.apply_with_fmt_str(
        count,
        |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
        "code_on_at_least",
    )
}

/// Whether each of `values` (codes under `largest`) appears at least `k`
/// times, counted in `T`s that `add` counts up to their largest value.
///
/// The counts are read back as a bit a code (an eighth of byte counts'
/// memory: 1.25 MB for 10M card codes, read at random in the rows'
/// order), and the marks are built a 64-bit word at a time. Reading the
/// byte counts row by row into polars' builder of booleans was more than
/// half of this step (perf, 10M-row month).
fn kept_at_least<T: Copy + Default + Into<u64>>(values: &[u32], largest: usize, k: u64, add: impl Fn(T) -> T) -> BooleanChunked {
    let mut counts = vec![T::default(); largest];
    for &v in values {
        let c = &mut counts[v as usize];
        *c = add(*c);
    }
    let kept_codes: Vec<u64> = counts.chunks(64).map(|c| word(c.iter().map(|&n| n.into() >= k))).collect();
    drop(counts);
    let is_kept = |v: u32| (kept_codes[(v >> 6) as usize] >> (v & 63)) & 1 == 1;
    let bytes: Vec<u8> = values
        .chunks(64)
        .flat_map(|c| word(c.iter().map(|&v| is_kept(v))).to_le_bytes())
        .collect();
    BooleanChunked::from_bitmap(PlSmallStr::EMPTY, Bitmap::from_u8_vec(bytes, values.len()))
}

/// Up to 64 marks as the bits of a word, the first the lowest.
fn word(marks: impl Iterator<Item = bool>) -> u64 {
    marks.enumerate().fold(0, |w, (i, m)| w | (u64::from(m) << i))
}

/// `key` (a `UInt64` or `Int64` column; another type is left as it is)
/// marked as sorted where its values ascend, checked over the whole
/// column: polars then groups rows by it as slices, without hashing or
/// listing each group's rows, and does not sort rows by it again
/// (`row_order` puts the transactions in merchant and time order, so a
/// merchant's packed key, and its rolling index, ascend). Where they do
/// not ascend, the key is left unmarked and grouped by hashing, as
/// before: a wrong mark would split a group.
pub(crate) fn sorted_if_ascending(key: Expr) -> Expr {
    fn ascends<T: PolarsNumericType>(values: &ChunkedArray<T>) -> bool {
        let mut values = values.into_no_null_iter();
        let Some(first) = values.next() else { return true };
        values.try_fold(first, |last, x| (last <= x).then_some(x)).is_some()
    }
    let mark = |c: Column| -> PolarsResult<Column> {
        let s = c.as_materialized_series();
        let ascending = s.null_count() == 0
            && match s.dtype() {
                DataType::UInt64 => ascends(s.u64()?),
                DataType::Int64 => ascends(s.i64()?),
                _ => false,
            };
        let mut s = s.clone();
        if ascending {
            s.set_sorted_flag(polars_core::series::IsSorted::Ascending);
        }
        Ok(s.into_column())
    };
    // `apply`: the whole column at once (polars may cut what `map` gets).
    key.apply_with_fmt_str(mark, |_, f| Ok(f.clone()), "sorted_if_ascending")
}

/// Add a code column for each key set named by `columns` (code column
/// names); a set with a column that is absent or not text gets none, as
/// does one already in `df`.
pub(crate) fn add_codes<'a>(df: &mut DataFrame, columns: impl IntoIterator<Item = &'a str>) -> PolarsResult<()> {
    for c in code_columns(df, columns, &[])? {
        df.with_column(c)?;
    }
    Ok(())
}

/// The code columns `add_codes` adds, made from `df` as it is; `known`
/// gives single keys already coded (the merchant ids, coded for the
/// per-merchant passes), which are not coded again.
///
/// Each text key the sets are made of is coded once, all keys at once on
/// the thread pool (each is a pass over millions of rows through a hash
/// map: 4 s one after the other at 10M rows); a key already coded in `df`
/// is read back. Sets of several keys then combine their keys' codes, at
/// once too.
pub(crate) fn code_columns<'a>(
    df: &DataFrame,
    columns: impl IntoIterator<Item = &'a str>,
    known: &[(&str, &[u32])],
) -> PolarsResult<Vec<Column>> {
    use rayon::prelude::*;
    let wanted: Vec<(String, Vec<&str>)> = columns
        .into_iter()
        .filter(|name| !df.schema().contains(name))
        .filter_map(|name| Some((name.to_string(), name.strip_prefix(KEY_PREFIX)?.split(',').collect::<Vec<_>>())))
        .filter(|(_, keys)| keys.iter().all(|k| Texts::is_text(df, k)))
        .collect();
    let keys: BTreeSet<&str> = wanted.iter().flat_map(|(_, keys)| keys.iter().copied()).collect();
    let known_of = |k: &str| {
        known
            .iter()
            .find(|(name, codes)| *name == k && codes.len() == df.height())
            .map(|(_, c)| *c)
    };
    let singles: BTreeMap<&str, std::borrow::Cow<[u32]>> = keys
        .into_par_iter()
        .map(|k| {
            if let Some(codes) = known_of(k) {
                return (k, std::borrow::Cow::Borrowed(codes));
            }
            let made = df
                .column(&code_column(&[k.to_string()]))
                .ok()
                .and_then(|c| {
                    c.as_materialized_series()
                        .u32()
                        .ok()
                        .map(|c| c.into_no_null_iter().collect::<Vec<u32>>())
                })
                .filter(|c| c.len() == df.height());
            (
                k,
                std::borrow::Cow::Owned(made.unwrap_or_else(|| Texts::of_chunks(df, k).expect("a text key").first_codes())),
            )
        })
        .collect();
    Ok(wanted
        .par_iter()
        .map(|(name, keys)| {
            let of: Vec<&[u32]> = keys.iter().map(|k| singles[k].as_ref()).collect();
            UInt32Chunked::from_vec(name.as_str().into(), combine(&of))
                .into_series()
                .into_column()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &[Option<&str>]) -> StringChunked {
        StringChunked::from_iter_options("k".into(), v.iter().copied())
    }

    #[test]
    fn at_least_k_rows_by_code_keeps_what_a_count_over_the_key_keeps_after_the_filters_before_it() {
        // Code 0 has five rows, two of them refunds; code 1 three; code 2 one.
        let df = df!(
            "code" => [0u32, 1, 0, 2, 0, 1, 0, 0, 1],
            "t" => ["p", "p", "r", "p", "p", "p", "r", "p", "p"],
            "row" => [0i64, 1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap();
        for k in [1u64, 2, 3, 4, 5] {
            let purchases = || df.clone().lazy().filter(col("t").eq(lit("p")));
            let ours = purchases().filter(code_on_at_least(col("code"), k)).collect().unwrap();
            let polars = purchases()
                .filter(len().over([col("code")]).unwrap().cast(DataType::Int64).gt_eq(lit(k as i64)))
                .collect()
                .unwrap();
            assert!(ours.equals(&polars), "k = {k}: {ours:?} vs {polars:?}");
        }
        // Counted after the filter: code 0 has three purchases, not five.
        let three = df
            .clone()
            .lazy()
            .filter(col("t").eq(lit("p")))
            .filter(code_on_at_least(col("code"), 4));
        assert_eq!(three.collect().unwrap().height(), 0);
    }

    #[test]
    fn marks_across_words_of_codes_and_rows_match_a_plain_count() {
        // 1,000 rows (not a multiple of 64) over 300 codes (five words of
        // code bits), each code on 0 to 6 rows, in a scrambled order.
        let codes: Vec<u32> = (0..1000u32).map(|i| (i * 7919 + i / 3) % 300).collect();
        for k in [1u64, 2, 3, 4, 5, 7] {
            let kept = kept_at_least::<u8>(&codes, 300, k, |c| c.saturating_add(1));
            let plain: Vec<bool> = codes.iter().map(|c| codes.iter().filter(|d| *d == c).count() as u64 >= k).collect();
            let ours: Vec<bool> = (0..kept.len()).map(|i| kept.get(i) == Some(true)).collect();
            assert_eq!(ours, plain, "k = {k}");
        }
    }

    #[test]
    fn counts_past_a_byte_keep_rows_for_any_k() {
        // Code 0 on 300 rows, code 1 on 255, code 2 on 254: k at and
        // around the byte's largest count, counted in bytes or not.
        let codes: Vec<u32> = (0..300).map(|_| 0).chain((0..255).map(|_| 1)).chain((0..254).map(|_| 2)).collect();
        let df = df!("code" => &codes).unwrap();
        for (k, rows) in [(254u64, 809usize), (255, 555), (256, 300), (300, 300), (301, 0)] {
            let kept = df.clone().lazy().filter(code_on_at_least(col("code"), k)).collect().unwrap();
            assert_eq!(kept.height(), rows, "k = {k}");
        }
    }

    #[test]
    fn a_key_is_marked_sorted_only_where_it_ascends_and_groups_the_same_either_way() {
        let df = df!(
            "up" => [1u64, 1, 2, 5, 5, 5, 9],
            "down" => [1u64, 2, 1, 5, 5, 9, 9],
            "v" => [1i64, 2, 3, 4, 5, 6, 7],
        )
        .unwrap();
        let marked = |name: &str| {
            let out = df
                .clone()
                .lazy()
                .with_column(sorted_if_ascending(col(name)).alias("k"))
                .collect()
                .unwrap();
            out.column("k").unwrap().as_materialized_series().is_sorted_flag()
        };
        assert_eq!(marked("up"), polars_core::series::IsSorted::Ascending);
        assert_eq!(marked("down"), polars_core::series::IsSorted::Not);
        // So is a signed one; another type is left as it is.
        let signed = df
            .clone()
            .lazy()
            .with_column(sorted_if_ascending(col("v")).alias("k"))
            .collect()
            .unwrap();
        assert_eq!(
            signed.column("k").unwrap().as_materialized_series().is_sorted_flag(),
            polars_core::series::IsSorted::Ascending
        );
        let text = df!("t" => ["a", "b"])
            .unwrap()
            .lazy()
            .with_column(sorted_if_ascending(col("t")).alias("k"))
            .collect()
            .unwrap();
        assert_eq!(
            text.column("k").unwrap().as_materialized_series().is_sorted_flag(),
            polars_core::series::IsSorted::Not
        );
        // Grouped as slices, the groups are those hashing finds, in order.
        for name in ["up", "down"] {
            let grouped = |key: Expr| {
                df.clone()
                    .lazy()
                    .with_column(key.alias("k"))
                    .group_by_stable([col("k")])
                    .agg([len().alias("n"), col("v").sum().alias("sum"), col("v").first().alias("first")])
                    .collect()
                    .unwrap()
            };
            assert!(grouped(sorted_if_ascending(col(name))).equals(&grouped(col(name))), "{name}");
        }
    }

    #[test]
    fn pairs_of_many_rows_number_by_first_appearance() {
        // 200,000 rows: pairs new on most rows, and repeats far apart.
        let a: Vec<u32> = (0..200_000u32).map(|i| i % 1_009).collect();
        let b: Vec<u32> = (0..200_000u32).map(|i| if i % 3 == 0 { (i % 1_009) * 7 } else { i }).collect();
        let mut seen: std::collections::HashMap<(u32, u32), u32> = std::collections::HashMap::new();
        let expected: Vec<u32> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| {
                let next = seen.len() as u32;
                *seen.entry((x, y)).or_insert(next)
            })
            .collect();
        assert!(seen.len() < 200_000 && seen.len() > 100_000);
        assert_eq!(pair_codes(&a, &b), expected);
        assert_eq!(combine(&[&a, &b]), expected);
        // Either side the wider: equal pairs either way round.
        assert_eq!(pair_codes(&b, &a), expected);
        // Both sides narrow: most rows through the table of later pairs.
        let c: Vec<u32> = (0..200_000u32).map(|i| (i / 7) % 211).collect();
        let mut seen: std::collections::HashMap<(u32, u32), u32> = std::collections::HashMap::new();
        let expected: Vec<u32> = a
            .iter()
            .zip(&c)
            .map(|(&x, &y)| {
                let next = seen.len() as u32;
                *seen.entry((x, y)).or_insert(next)
            })
            .collect();
        assert!(seen.len() > 150_000);
        assert_eq!(pair_codes(&a, &c), expected);
        assert_eq!(pair_codes(&c, &a), expected);
    }

    #[test]
    fn a_card_at_several_merchants_has_a_pair_at_each() {
        // Card 0 at merchants 5, 6, 5, 7, 6; card 1 at 6 twice.
        let merchant = [5u32, 6, 5, 6, 7, 6, 6];
        let card = [0u32, 0, 0, 1, 0, 0, 1];
        assert_eq!(pair_codes(&merchant, &card), vec![0, 1, 0, 2, 3, 1, 2]);
        assert_eq!(pair_codes(&card, &merchant), vec![0, 1, 0, 2, 3, 1, 2]);
    }

    #[test]
    fn equal_values_share_a_code() {
        let s = texts(&[Some("b"), Some("a"), None, Some("b"), Some("a"), None]);
        assert_eq!(codes(&[&s]), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn pairs_refined_from_a_coded_key_group_as_pairs() {
        let m = texts(&[Some("m1"), Some("m1"), Some("m2"), Some("m1"), Some("m2")]);
        let c = texts(&[Some("c1"), Some("c2"), Some("c1"), Some("c1"), Some("c1")]);
        let mut df = DataFrame::new(
            5,
            vec![
                m.clone().with_name("m".into()).into_column(),
                c.clone().with_name("c".into()).into_column(),
            ],
        )
        .unwrap();
        add_codes(&mut df, ["__key_m"]).unwrap();
        add_codes(&mut df, ["__key_m,c"]).unwrap();
        let pair: Vec<u32> = df.column("__key_m,c").unwrap().u32().unwrap().into_no_null_iter().collect();
        // Rows 0 and 3 are (m1, c1); rows 2 and 4 are (m2, c1); row 1 differs.
        assert_eq!(pair[0], pair[3]);
        assert_eq!(pair[2], pair[4]);
        let distinct: std::collections::HashSet<u32> = pair.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn sets_sharing_a_key_code_it_once_and_equal_codes_made_one_at_a_time() {
        let m = texts(&[Some("m1"), Some("m2"), Some("m1"), None, Some("m2"), Some("m1")]);
        let c = texts(&[Some("c1"), Some("c1"), Some("c2"), Some("c1"), Some("c1"), Some("c1")]);
        let t = texts(&[Some("t1"), Some("t1"), Some("t1"), Some("t2"), Some("t2"), Some("t1")]);
        let n = m.len();
        let mut df = DataFrame::new(
            n,
            vec![
                m.clone().with_name("m".into()).into_column(),
                c.clone().with_name("c".into()).into_column(),
                t.clone().with_name("t".into()).into_column(),
                Int64Chunked::from_vec("amount".into(), vec![1; n]).into_series().into_column(),
            ],
        )
        .unwrap();
        add_codes(&mut df, ["__key_m"]).unwrap();
        add_codes(&mut df, ["__key_c", "__key_m,c", "__key_t,c", "__key_m,amount", "__key_absent"]).unwrap();
        let got = |name: &str| -> Vec<u32> { df.column(name).unwrap().u32().unwrap().into_no_null_iter().collect() };
        assert_eq!(got("__key_c"), codes(&[&c]));
        assert_eq!(got("__key_m,c"), codes(&[&m, &c]));
        assert_eq!(got("__key_t,c"), codes(&[&t, &c]));
        // By first appearance, null a value like any other.
        assert_eq!(got("__key_m,c"), vec![0, 1, 2, 3, 1, 0]);
        // A key that is not text, or absent, gets no code.
        assert!(df.column("__key_m,amount").is_err());
        assert!(df.column("__key_absent").is_err());
    }

    #[test]
    fn codes_given_for_a_key_are_used_as_they_are_and_give_what_coding_gives() {
        let m = texts(&[Some("m1"), Some("m2"), Some("m1"), None, Some("m2")]);
        let c = texts(&[Some("c1"), Some("c1"), Some("c2"), Some("c1"), Some("c1")]);
        let df = DataFrame::new(
            5,
            vec![
                m.clone().with_name("m".into()).into_column(),
                c.clone().with_name("c".into()).into_column(),
            ],
        )
        .unwrap();
        let merchant = codes(&[&m]);
        let made = code_columns(&df, ["__key_m,c", "__key_c"], &[("m", &merchant)]).unwrap();
        let got = |name: &str| -> Vec<u32> {
            let c = made.iter().find(|c| c.name().as_str() == name).unwrap();
            c.u32().unwrap().into_no_null_iter().collect()
        };
        assert_eq!(got("__key_m,c"), codes(&[&m, &c]));
        assert_eq!(got("__key_c"), codes(&[&c]));
        // Given codes are used, not recomputed: codes that put every
        // merchant under one number make the pairs those of the cards.
        let one = vec![0u32; 5];
        let made = code_columns(&df, ["__key_m,c"], &[("m", &one)]).unwrap();
        let pair: Vec<u32> = made[0].u32().unwrap().into_no_null_iter().collect();
        assert_eq!(pair, codes(&[&c]));
        // Codes of the wrong length are not used.
        let made = code_columns(&df, ["__key_m,c"], &[("m", &[0u32, 1][..])]).unwrap();
        assert_eq!(made[0].u32().unwrap().into_no_null_iter().collect::<Vec<_>>(), codes(&[&m, &c]));
    }

    #[test]
    fn pairs_are_coded_as_pairs() {
        let m = texts(&[Some("m1"), Some("m1"), Some("m2"), Some("m1")]);
        let c = texts(&[Some("c1"), Some("c2"), Some("c1"), Some("c1")]);
        assert_eq!(codes(&[&m, &c]), vec![0, 1, 2, 0]);
    }
}
