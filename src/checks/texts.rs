//! A text column read by row number, whether it is held as text or as a
//! categorical (a code per row and one copy of each distinct value).
//!
//! Transactions' enumerations and the columns that repeat a value per
//! merchant, terminal or account are held as categoricals from the parse
//! on (`input::categories`): as text they are a 16-byte view per
//! row plus the bytes, 1.5 GB at 10M rows, held through the derived
//! columns' peak. The derived checks and the key codes read them here,
//! either way.

use polars::prelude::*;

use crate::input::nullable::for_each_value;

pub(crate) enum Texts {
    /// Text, in one chunk (read by position) unless made by `of_chunks`.
    Plain(StringChunked),
    /// Codes in one chunk, and the values they stand for.
    Coded(UInt32Chunked, Arc<CategoricalMapping>),
}

impl Texts {
    /// Whether `df` has a column `name` held as text or a categorical
    /// (without copying it into one chunk, as `of` does).
    pub(crate) fn is_text(df: &DataFrame, name: &str) -> bool {
        df.schema()
            .get(name)
            .is_some_and(|d| matches!(d, DataType::String | DataType::Categorical(..)))
    }

    /// `df`'s column `name`, if it is text or a categorical.
    pub(crate) fn of(df: &DataFrame, name: &str) -> Option<Texts> {
        let s = df.column(name).ok()?.as_materialized_series();
        match s.dtype() {
            DataType::String => Some(Texts::Plain(s.str().ok()?.rechunk().into_owned())),
            DataType::Categorical(..) => {
                let cat = s.cat32().ok()?;
                Some(Texts::Coded(cat.physical().rechunk().into_owned(), cat.get_mapping().clone()))
            }
            _ => None,
        }
    }

    /// As `of`, without copying the column into one chunk: for reading a
    /// few rows by position (`get` then searches the chunks) or all rows
    /// in order. A multi-chunk card column copied whole would be 350 MB
    /// more at 10M rows, at the derived columns' peak.
    pub(crate) fn of_chunks(df: &DataFrame, name: &str) -> Option<Texts> {
        let s = df.column(name).ok()?.as_materialized_series();
        match s.dtype() {
            DataType::String => Some(Texts::Plain(s.str().ok()?.clone())),
            DataType::Categorical(..) => {
                let cat = s.cat32().ok()?;
                Some(Texts::Coded(cat.physical().clone(), cat.get_mapping().clone()))
            }
            _ => None,
        }
    }

    /// Row `i`'s value.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            Texts::Plain(s) => s.get(i),
            Texts::Coded(c, m) => m.cat_to_str(c.get(i)?),
        }
    }

    /// Every row's value, in order.
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = Option<&str>> + '_> {
        match self {
            Texts::Plain(s) => Box::new(s.iter()),
            Texts::Coded(c, m) => Box::new(c.iter().map(move |v| m.cat_to_str(v?))),
        }
    }

    /// `f` of every row's value, in row order. Where the column is coded,
    /// `f` runs once per code, not per row: the transaction checks
    /// classified ten million rows' enumerations (is it a sale, approved,
    /// a card payment) by looking up and comparing each row's text.
    pub(crate) fn map_values<T: Copy>(&self, f: impl Fn(Option<&str>) -> T) -> Vec<T> {
        match self {
            Texts::Plain(s) => s.iter().map(f).collect(),
            Texts::Coded(c, m) => {
                let mut table: Vec<Option<T>> = vec![None; m.num_cats_upper_bound() + 1];
                let mut out = Vec::with_capacity(c.len());
                for_each_slot(c, |slot| {
                    let value = || f(slot.checked_sub(1).and_then(|code| m.cat_to_str(code as u32)));
                    out.push(*table[slot].get_or_insert_with(value));
                });
                out
            }
        }
    }

    /// One code per row, equal values equal codes (null a value like any
    /// other), numbered by first appearance. Codes of a categorical are
    /// renumbered through a table, without reading the text: the same
    /// numbers the text would get, as each value has one code.
    pub(crate) fn first_codes(&self) -> Vec<u32> {
        match self {
            Texts::Plain(s) => first_codes_of_text(s),
            Texts::Coded(c, m) => {
                let mut table = vec![u32::MAX; m.num_cats_upper_bound() + 1];
                let mut next = 0u32;
                let mut out = Vec::with_capacity(c.len());
                for_each_slot(c, |slot| {
                    let code = &mut table[slot];
                    if *code == u32::MAX {
                        *code = next;
                        next += 1;
                    }
                    out.push(*code);
                });
                out
            }
        }
    }
}

/// `f` of each row's slot in a table of a categorical's values, in row
/// order: 0 for null, a category's code + 1.
fn for_each_slot(codes: &UInt32Chunked, mut f: impl FnMut(usize)) {
    for_each_value(codes, |code, valid| f(if valid { code as usize + 1 } else { 0 }));
}

/// `Texts::first_codes` of a text column.
///
/// Card hashes and transaction ids are new on almost every row (10.3M
/// distinct card hashes among 10.7M rows). One hash table over all rows
/// missed the cache on nearly every probe: 2 to 3 s of a thread per
/// column at 10M rows, a third of the derived columns' time. Here the
/// rows are first sorted into partitions by the top bits of their
/// value's hash (values equal, partition equal), each partition small
/// enough for its table to stay in the cache; the partitions run on the
/// thread pool. Each row learns the first row with its value, and one
/// pass in row order numbers the values by first appearance: the codes
/// one table would give.
///
/// Memory: 12 bytes a row while partitioned (the rows, 32 bits of each
/// hash, each row's first row), less than the one table's slots took
/// while it grew (up to 225 MB at 10M rows, the derived columns' peak).
fn first_codes_of_text(s: &StringChunked) -> Vec<u32> {
    use std::hash::BuildHasher;
    let state = PlRandomState::default();
    first_codes_hashed(s, |v| state.hash_one(v), 16_384)
}

/// `first_codes_of_text` with the hash and the rows a partition aims at
/// given (a test gives a hash that makes values collide, and small
/// partitions). Values are compared by their text where 32 bits of their
/// hashes agree (a repeat, or one probe in billions).
fn first_codes_hashed(s: &StringChunked, hash: impl Fn(&str) -> u64 + Sync, part_rows: usize) -> Vec<u32> {
    use hashbrown::hash_table::{Entry, HashTable};
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    let rows = s.len();
    // About `part_rows` a partition (16,384: a table of 150 KB), up to
    // 1,024 partitions (more spreads the sorting pass's writes too thin).
    let bits = (rows / part_rows).max(1).next_power_of_two().trailing_zeros().min(10);
    let part_of = |h: u64| if bits == 0 { 0 } else { (h >> (64 - bits)) as usize };
    // Rows of each partition, in row order, with the low 32 bits of their
    // hash; nulls are in none (their code is made in the last pass). Each
    // value is hashed twice, to count and to place, rather than holding
    // 8 bytes a row of hashes between the two passes.
    let mut starts = vec![0usize; (1 << bits) + 1];
    for v in s.iter().flatten() {
        starts[part_of(hash(v)) + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    let placed = starts[starts.len() - 1];
    let mut members = vec![0u32; placed];
    let mut low = vec![0u32; placed];
    let mut next = starts.clone();
    for (row, v) in s.iter().enumerate() {
        if let Some(v) = v {
            let h = hash(v);
            let at = &mut next[part_of(h)];
            members[*at] = row as u32;
            low[*at] = h as u32;
            *at += 1;
        }
    }
    drop(next);

    let chunks: Vec<_> = s.downcast_iter().collect();
    let chunk_starts: Vec<usize> = chunks
        .iter()
        .scan(0usize, |start, a| {
            let at = *start;
            *start += a.len();
            Some(at)
        })
        .collect();
    // The text of a row in a partition (never a null).
    let text_at = |row: u32| -> &str {
        let row = row as usize;
        let k = chunk_starts.partition_point(|&start| start <= row) - 1;
        chunks[k].value(row - chunk_starts[k])
    };
    // The 32 bits spread over the 64 the table places by (its buckets by
    // the low bits, its tags by the high ones).
    let spread = |h: u32| u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // Each row's first row with its value; a null's is its own.
    let first: Vec<AtomicU32> = (0..rows as u32).map(AtomicU32::new).collect();
    (0..1usize << bits).into_par_iter().for_each(|p| {
        let (members, low) = (&members[starts[p]..starts[p + 1]], &low[starts[p]..starts[p + 1]]);
        // Slots hold a member's place in the partition.
        let mut table: HashTable<u32> = HashTable::with_capacity(members.len());
        for (i, (&row, &h)) in members.iter().zip(low).enumerate() {
            let same = |&j: &u32| low[j as usize] == h && text_at(members[j as usize]) == text_at(row);
            match table.entry(spread(h), same, |&j| spread(low[j as usize])) {
                Entry::Occupied(slot) => first[row as usize].store(members[*slot.get() as usize], Ordering::Relaxed),
                Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                }
            }
        }
    });
    drop((members, low));

    let mut codes: Vec<u32> = Vec::with_capacity(rows);
    let mut null_code = None;
    let mut fresh = 0u32;
    for (row, valid) in first.iter().zip(s.iter().map(|v| v.is_some())) {
        let at = row.load(Ordering::Relaxed) as usize;
        let code = if !valid {
            *null_code.get_or_insert_with(|| {
                fresh += 1;
                fresh - 1
            })
        } else if at == codes.len() {
            fresh += 1;
            fresh - 1
        } else {
            codes[at]
        };
        codes.push(code);
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(values: &[Option<&str>]) -> (Texts, Texts) {
        let text = StringChunked::from_iter_options("k".into(), values.iter().copied());
        let df = DataFrame::new(values.len(), vec![text.clone().into_series().into_column()]).unwrap();
        let dtype = crate::input::categories::categories();
        let coded = df.column("k").unwrap().cast(&dtype).unwrap();
        let coded = DataFrame::new(values.len(), vec![coded]).unwrap();
        assert!(Texts::is_text(&df, "k") && Texts::is_text(&coded, "k"));
        (Texts::of(&df, "k").unwrap(), Texts::of(&coded, "k").unwrap())
    }

    #[test]
    fn text_and_categorical_read_the_same_values_and_codes() {
        // A value seen before in the shared categories ("b" from an
        // earlier frame) must not change the first-appearance numbering.
        let _ = both(&[Some("z"), Some("b")]);
        let values = [Some("b"), Some("a"), None, Some("b"), Some("c"), None, Some("a")];
        let (plain, coded) = both(&values);
        assert!(matches!(coded, Texts::Coded(..)));
        for (i, v) in values.iter().enumerate() {
            assert_eq!(plain.get(i), *v);
            assert_eq!(coded.get(i), *v);
        }
        assert_eq!(plain.iter().collect::<Vec<_>>(), values.to_vec());
        assert_eq!(coded.iter().collect::<Vec<_>>(), values.to_vec());
        assert_eq!(plain.first_codes(), vec![0, 1, 2, 0, 3, 2, 1]);
        assert_eq!(coded.first_codes(), plain.first_codes());
        let length = |v: Option<&str>| v.map_or(-1, |v| v.len() as i64 * if v == "b" { 10 } else { 1 });
        assert_eq!(plain.map_values(length), vec![10, 1, -1, 10, 1, -1, 1]);
        assert_eq!(coded.map_values(length), plain.map_values(length));
    }

    #[test]
    fn a_categorical_in_chunks_with_and_without_nulls_reads_as_its_text() {
        let dtype = crate::input::categories::categories();
        let part = |values: &[Option<&str>]| Series::new("k".into(), values).cast(&dtype).unwrap();
        let chunks: [&[Option<&str>]; 3] = [
            &[Some("q1"), None, Some("q2"), Some("q1")],
            &[Some("q3"), Some("q1")],
            &[None, Some("q4"), Some("q2"), None],
        ];
        let mut s = part(chunks[0]);
        s.append(&part(chunks[1])).unwrap();
        s.append(&part(chunks[2])).unwrap();
        assert_eq!(s.n_chunks(), 3);
        let all: Vec<Option<&str>> = chunks.concat();
        let coded = DataFrame::new(all.len(), vec![s.into_column()]).unwrap();
        let coded = Texts::of_chunks(&coded, "k").unwrap();
        let plain = Texts::Plain(StringChunked::from_iter_options("k".into(), all.iter().copied()));
        assert!(matches!(coded, Texts::Coded(..)));
        assert_eq!(coded.first_codes(), vec![0, 1, 2, 0, 3, 0, 1, 4, 2, 1]);
        assert_eq!(coded.first_codes(), plain.first_codes());
        let length = |v: Option<&str>| v.map_or(-1, |v| v.len() as i64 + v.ends_with('2') as i64 * 10);
        assert_eq!(coded.map_values(length), vec![2, -1, 12, 2, 2, 2, -1, 2, 12, -1]);
    }

    #[test]
    fn codes_of_a_large_text_column_in_chunks_number_values_by_first_appearance() {
        // 300,000 rows in three chunks: nulls, values unique to a row,
        // values repeated across chunks, short (inline) and long texts.
        let value = |i: usize| -> Option<String> {
            match i % 10 {
                0 => None,
                1..=3 => Some(format!("r{}", i % 997)),
                4 => Some(format!("{:064x}", i % 50_021)),
                _ => Some(format!("{i:032x}")),
            }
        };
        let mut column = StringChunked::from_iter_options("card_hash".into(), (0..100_000).map(value));
        for part in 1..3 {
            column
                .append(&StringChunked::from_iter_options(
                    "card_hash".into(),
                    (part * 100_000..(part + 1) * 100_000).map(value),
                ))
                .unwrap();
        }
        assert_eq!(column.chunks().len(), 3);
        let mut seen: std::collections::HashMap<Option<String>, u32> = std::collections::HashMap::new();
        let expected: Vec<u32> = (0..300_000)
            .map(|i| {
                let next = seen.len() as u32;
                *seen.entry(value(i)).or_insert(next)
            })
            .collect();
        assert_eq!(Texts::Plain(column).first_codes(), expected);
    }

    #[test]
    fn values_whose_hashes_collide_are_told_apart_by_their_text_in_any_partition() {
        // 6,000 rows in two chunks, a seventh null, 1,500 distinct values.
        let value = |i: usize| (i % 7 != 3).then(|| format!("v{}", (i * 31) % 1_499));
        let mut column = StringChunked::from_iter_options("k".into(), (0..2_500).map(value));
        column
            .append(&StringChunked::from_iter_options("k".into(), (2_500..6_000).map(value)))
            .unwrap();
        let mut seen: std::collections::HashMap<Option<String>, u32> = std::collections::HashMap::new();
        let expected: Vec<u32> = (0..6_000)
            .map(|i| {
                let next = seen.len() as u32;
                *seen.entry(value(i)).or_insert(next)
            })
            .collect();
        // Every value one hash; the low 32 bits one value and the
        // partition by length; partitions by a byte, distinct low bits.
        let hashes: [fn(&str) -> u64; 3] = [
            |_| 0,
            |v| (v.len() as u64) << 61,
            |v| (u64::from(v.as_bytes()[v.len() - 1]) << 56) | u64::from(v.as_bytes()[1]),
        ];
        for (k, hash) in hashes.into_iter().enumerate() {
            for part_rows in [1, 64, 100_000] {
                assert_eq!(
                    first_codes_hashed(&column, hash, part_rows),
                    expected,
                    "hash {k}, {part_rows} rows a part"
                );
            }
        }
    }

    #[test]
    fn other_columns_are_not_texts() {
        let df = df!("n" => [1i64, 2]).unwrap();
        assert!(Texts::of(&df, "n").is_none());
        assert!(!Texts::is_text(&df, "n") && !Texts::is_text(&df, "absent"));
        assert!(Texts::of(&df, "absent").is_none());
    }
}
