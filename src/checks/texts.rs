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

    /// One code per row, equal values equal codes (null a value like any
    /// other), numbered by first appearance. Codes of a categorical are
    /// renumbered through a table, without reading the text: the same
    /// numbers the text would get, as each value has one code.
    pub(crate) fn first_codes(&self) -> Vec<u32> {
        match self {
            Texts::Plain(s) => first_codes_of_text(s),
            Texts::Coded(c, m) => {
                // Slot 0 is null; a category's slot is its code + 1.
                let mut table = vec![u32::MAX; m.num_cats_upper_bound() + 1];
                let mut next = 0u32;
                c.iter()
                    .map(|v| {
                        let slot = &mut table[v.map_or(0, |v| v as usize + 1)];
                        if *slot == u32::MAX {
                            *slot = next;
                            next += 1;
                        }
                        *slot
                    })
                    .collect()
            }
        }
    }
}

/// `Texts::first_codes` of a text column, through a table of 8-byte
/// slots: 32 bits of a value's hash and the row where the value first
/// appeared, whose code is the value's. A map from each value's text to
/// its code had 24-byte slots: 10.3M distinct card hashes among 10.7M
/// rows grew it to 16.7M slots (400 MB) while the table before (200 MB)
/// was still held, the derived columns' peak and the scan's. Here the
/// slots take 150 MB at most; values are compared by their text where
/// the 32 bits agree (a repeat, or one in four billion pairs of others).
fn first_codes_of_text(s: &StringChunked) -> Vec<u32> {
    use hashbrown::hash_table::{Entry, HashTable};
    use std::hash::BuildHasher;

    let chunks: Vec<_> = s.downcast_iter().collect();
    let starts: Vec<usize> = chunks
        .iter()
        .scan(0usize, |start, a| {
            let at = *start;
            *start += a.len();
            Some(at)
        })
        .collect();
    // The text of a row the table holds (never a null: nulls have no slot).
    let text_at = |row: u32| -> &str {
        let row = row as usize;
        let k = starts.partition_point(|&start| start <= row) - 1;
        chunks[k].value(row - starts[k])
    };
    let state = PlRandomState::default();
    // The slot's 32 bits spread over the 64 the table places by (its
    // buckets by the low bits, its tags by the high ones), the same on
    // insertion and when the table grows.
    let spread = |h: u32| u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut table: HashTable<(u32, u32)> = HashTable::with_capacity(1 << 16);
    let mut codes: Vec<u32> = Vec::with_capacity(s.len());
    let mut null_code = None;
    let mut next = 0u32;
    let mut fresh = || {
        next += 1;
        next - 1
    };
    for v in s.iter() {
        let code = match v {
            None => *null_code.get_or_insert_with(&mut fresh),
            Some(v) => {
                let h = (state.hash_one(v) >> 32) as u32;
                let row = codes.len() as u32;
                match table.entry(spread(h), |&(sh, first)| sh == h && text_at(first) == v, |&(sh, _)| spread(sh)) {
                    Entry::Occupied(slot) => codes[slot.get().1 as usize],
                    Entry::Vacant(slot) => {
                        slot.insert((h, row));
                        fresh()
                    }
                }
            }
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
    fn other_columns_are_not_texts() {
        let df = df!("n" => [1i64, 2]).unwrap();
        assert!(Texts::of(&df, "n").is_none());
        assert!(!Texts::is_text(&df, "n") && !Texts::is_text(&df, "absent"));
        assert!(Texts::of(&df, "absent").is_none());
    }
}
