//! How many rows of an input hold each value of a key, counted as the
//! rows are spilled, never too few: a count-min sketch (two rows of 4-bit
//! saturating counters, each value counted in one counter of each row,
//! its count the smaller of the two). Collisions only add, so a value
//! counted below `m` has fewer than `m` rows in all.
//!
//! What for: a partitioned scan carries every prepared row to the later
//! passes of rules grouped by a card, a terminal or a transaction id
//! (`partition`), four times 10M rows written, read back and joined. Those
//! rules hit only groups of at least a few rows (`COUNT(*) >= 3`,
//! `Grouping::min_count`), and most cards pay once a month and every
//! transaction id is unique: the rows of a value with fewer rows in the
//! whole input than a rule's floor cannot reach a finding of it, and are
//! not carried.
//!
//! Exact counts of 10M distinct cards would take hundreds of MB; the
//! sketch is a fixed 64 MiB, and a value it over-counts only costs its
//! rows being carried, as all were before.

use polars::prelude::*;

/// Counters per row of the sketch (a power of two), 4 bits each: 32 MiB
/// a row. At 10.7M cards and as many transaction ids, 0.3 values per
/// counter: by that load (not measured) about 7% of the once-seen values
/// look seen twice.
const WIDTH: usize = 1 << 26;

/// The largest count a counter holds.
const SATURATED: u8 = 15;

pub(crate) struct KeyCounts {
    /// Two rows of `WIDTH` counters, two to a byte.
    nibbles: Vec<u8>,
}

impl KeyCounts {
    pub(crate) fn new() -> Self {
        KeyCounts {
            nibbles: vec![0; WIDTH], // 2 rows x WIDTH counters x 4 bits
        }
    }

    /// Count each value of `column` (as text: a categorical counts the
    /// text its code stands for) once per row.
    #[cfg(test)]
    pub(crate) fn add(&mut self, name: &str, column: &Column) -> PolarsResult<()> {
        self.add_tallied(&tally(name, column)?);
        Ok(())
    }

    /// Add what `tally` counted (made apart, so that batches spilled on
    /// several threads hash their values at once and only add here).
    pub(crate) fn add_tallied(&mut self, tallied: &[(u64, u64)]) {
        for &(h, rows) in tallied {
            self.bump(h, rows);
        }
    }

    /// Whether `value` of `name` may have `m` rows or more (false: fewer
    /// for certain).
    #[cfg(test)]
    pub(crate) fn may_reach(&self, name: &str, value: Option<&str>, m: u64) -> bool {
        reaches(self.estimate(hash(name, value)), m)
    }

    /// Each row's count of its value of `column` (`name`), saturated:
    /// at least its true count, up to 15. Made once per frame and key, and
    /// compared with each rule's floor (`may_reach` per row).
    pub(crate) fn estimates(&self, name: &str, column: &Column) -> PolarsResult<Vec<u8>> {
        let s = column.as_materialized_series();
        if let Ok(cat) = s.cat32() {
            return Ok(super::narrow::per_category(cat, |v| self.estimate(hash(name, v))));
        }
        // One value per row, each a lookup that misses the caches: on
        // all threads (the sketch is only read here).
        use rayon::prelude::*;
        let text = s.cast(&DataType::String)?;
        let values: Vec<Option<&str>> = text.str()?.iter().collect();
        Ok(values.par_iter().map(|v| self.estimate(hash(name, *v))).collect())
    }

    fn estimate(&self, h: u64) -> u8 {
        let (a, b) = slots(h);
        self.get(a).min(self.get(b))
    }

    fn bump(&mut self, h: u64, by: u64) {
        let (a, b) = slots(h);
        for slot in [a, b] {
            let now = u64::from(self.get(slot));
            self.set(slot, (now + by).min(u64::from(SATURATED)) as u8);
        }
    }

    fn get(&self, slot: usize) -> u8 {
        (self.nibbles[slot / 2] >> ((slot % 2) * 4)) & 0x0f
    }

    fn set(&mut self, slot: usize, v: u8) {
        let shift = (slot % 2) * 4;
        let byte = &mut self.nibbles[slot / 2];
        *byte = (*byte & !(0x0f << shift)) | (v << shift);
    }
}

/// Each value of `column` hashed (`hash`), with its rows: a categorical's
/// once per category, a text's once per row.
pub(crate) fn tally(name: &str, column: &Column) -> PolarsResult<Vec<(u64, u64)>> {
    let s = column.as_materialized_series();
    if let Ok(cat) = s.cat32() {
        let mapping = cat.get_mapping();
        let mut per_code: PlHashMap<Option<u32>, u64> = PlHashMap::default();
        for code in cat.physical().iter() {
            *per_code.entry(code).or_default() += 1;
        }
        return Ok(per_code
            .into_iter()
            .map(|(code, rows)| (hash(name, code.and_then(|c| mapping.cat_to_str(c))), rows))
            .collect());
    }
    let text = s.cast(&DataType::String)?;
    Ok(text.str()?.iter().map(|v| (hash(name, v), 1)).collect())
}

/// Whether a count `estimates` gave may be `m` or more.
pub(crate) fn reaches(estimate: u8, m: u64) -> bool {
    u64::from(estimate) >= m.min(u64::from(SATURATED))
}

/// Counters per cache line (64 bytes of nibbles).
const LINE: usize = 128;

/// A counter in each row of the sketch, both in one cache line of the
/// sketch: a lookup is one cache miss, not two (random reads of 64 MiB
/// took most of the time spent cutting carried rows). The line is chosen
/// by the low bits of the hash, the counters within it by two others;
/// the second row is the line's other half.
fn slots(h: u64) -> (usize, usize) {
    let line = (h as usize) & (WIDTH * 2 / LINE - 1);
    let a = ((h >> 40) as usize) & (LINE / 2 - 1);
    let b = ((h >> 48) as usize) & (LINE / 2 - 1);
    (line * LINE + a, line * LINE + LINE / 2 + b)
}

/// A value of a column, hashed with a fixed seed (the counts need no
/// secret, and the same value hashes alike in every batch).
fn hash(name: &str, value: Option<&str>) -> u64 {
    use std::hash::BuildHasher;
    PlFixedStateQuality::default().hash_one((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_never_below_the_truth_and_exact_without_collisions() {
        let mut counts = KeyCounts::new();
        let values: Vec<Option<String>> = (0..30_000)
            .map(|i| match i % 10 {
                0 => None,
                _ => Some(format!("card{}", i % 7_001)),
            })
            .collect();
        let column = Column::new("card_hash".into(), values.clone());
        counts.add("card_hash", &column).unwrap();
        let mut truth: std::collections::HashMap<Option<&str>, u64> = Default::default();
        for v in &values {
            *truth.entry(v.as_deref()).or_default() += 1;
        }
        let mut exact = 0;
        for (v, n) in &truth {
            assert!(counts.may_reach("card_hash", *v, *n), "{v:?} has {n} rows");
            if !counts.may_reach("card_hash", *v, n + 1) || *n >= u64::from(SATURATED) {
                exact += 1;
            }
        }
        // 7,002 values in 2 x 64M counters: collisions are rare.
        assert!(exact * 100 >= truth.len() * 99, "{exact} of {}", truth.len());
        // A value never seen (almost surely) counts below 1; the same text
        // in another column is another value.
        assert!(!counts.may_reach("card_hash", Some("never"), 1));
        assert!(!counts.may_reach("txn_id", Some("card5"), 1));
    }

    #[test]
    fn a_categorical_counts_as_its_text_does() {
        let values: Vec<Option<&str>> = vec![Some("SN1"), Some("SN2"), Some("SN1"), None, Some("SN1")];
        let text = Column::new("terminal_sn".into(), values.clone());
        let coded = crate::input::categories::coded("terminal_sn".into(), values.len(), values.iter().copied())
            .unwrap()
            .into_column();
        for column in [text, coded] {
            let mut counts = KeyCounts::new();
            // Added in two batches, as spilled.
            counts.add("terminal_sn", &column.slice(0, 2)).unwrap();
            counts.add("terminal_sn", &column.slice(2, 3)).unwrap();
            assert!(counts.may_reach("terminal_sn", Some("SN1"), 3));
            assert!(!counts.may_reach("terminal_sn", Some("SN1"), 4));
            assert!(counts.may_reach("terminal_sn", Some("SN2"), 1));
            assert!(!counts.may_reach("terminal_sn", Some("SN2"), 2));
            assert!(counts.may_reach("terminal_sn", None, 1));
            assert!(!counts.may_reach("terminal_sn", None, 2));
        }
    }

    #[test]
    fn counts_saturate_and_a_floor_above_them_keeps_every_counted_value() {
        let mut counts = KeyCounts::new();
        let column = Column::new("txn_id".into(), vec!["T1"; 40]);
        counts.add("txn_id", &column).unwrap();
        assert!(counts.may_reach("txn_id", Some("T1"), 15));
        assert!(counts.may_reach("txn_id", Some("T1"), 100));
    }
}
