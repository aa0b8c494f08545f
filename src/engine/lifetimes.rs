//! Columns dropped once the last rule that reads them has run, and rules
//! ordered so that the wide columns few rules read go first.
//!
//! Prepared frames are held through the whole rules phase, and the
//! phase's peak is the frames plus the rules running at once. At 10M
//! transactions a third of the frame is read by a handful of short rules:
//! the six fee-check columns by `FEE-REC-01` and `FEE-ADD-01`, the
//! coordinates and distance by `SUS-LOC-03`, the refund originals by
//! `SUS-REF-02`, the card by eight rules. Run early and released, they are
//! gone before the rules with the largest working sets (the month's
//! approved purchases per merchant) run.
//!
//! Each rule sees only the columns it reads (`prepare::rule_names`, the
//! names the preparation keeps for it), so a long rule does not hold a
//! column another rule has finished with. The order changes no finding:
//! findings are sorted at the end and runs reported in the pack's order.

use std::collections::HashMap;
use std::sync::Mutex;

use polars::prelude::*;

use super::prepare::{self, Prepared};
use crate::input::InputKind;
use crate::rules::load::RulePack;

/// A run's prepared frames, shared by its rules, less what no rule still
/// to finish reads.
pub(crate) struct Columns {
    prepared: Mutex<Prepared>,
    /// Each rule's source and the columns of it that the rule reads.
    reads: Vec<(InputKind, Vec<PlSmallStr>)>,
    /// How many rules not yet finished read each column.
    left: Mutex<HashMap<(InputKind, PlSmallStr), usize>>,
    /// The bytes each column holds, to order the rules by.
    bytes: HashMap<(InputKind, PlSmallStr), usize>,
}

impl Columns {
    pub(crate) fn new(pack: &RulePack, prepared: Prepared) -> Self {
        let reads: Vec<(InputKind, Vec<PlSmallStr>)> = pack
            .rules
            .iter()
            .map(|lr| {
                let kind = lr.compiled.source;
                let columns = prepared
                    .frames
                    .get(&kind)
                    .map(|df| prepare::columns_read(&lr.compiled, df))
                    .unwrap_or_default();
                (kind, columns)
            })
            .collect();
        let mut left = HashMap::new();
        for (kind, columns) in &reads {
            for c in columns {
                *left.entry((*kind, c.clone())).or_insert(0) += 1;
            }
        }
        let bytes = prepared
            .frames
            .iter()
            .flat_map(|(kind, df)| df.columns().iter().map(move |c| ((*kind, c.name().clone()), read_bytes(c))))
            .collect();
        Columns {
            prepared: Mutex::new(prepared),
            reads,
            left: Mutex::new(left),
            bytes,
        }
    }

    /// The order to start the rules in (indices into the pack): greedily,
    /// the rule with the largest share of the columns it reads, each
    /// column's bytes divided among the rules still to run that read it.
    /// Rules that alone read wide columns come first; rules that read only
    /// what every rule reads come last. Ties keep the pack's order.
    pub(crate) fn order(&self) -> Vec<usize> {
        let mut left = self.left.lock().expect("not poisoned").clone();
        let mut todo: Vec<usize> = (0..self.reads.len()).collect();
        let mut order = Vec::with_capacity(todo.len());
        while !todo.is_empty() {
            let share = |i: usize| -> u128 {
                let (kind, columns) = &self.reads[i];
                columns
                    .iter()
                    .map(|c| {
                        let key = (*kind, c.clone());
                        let bytes = self.bytes.get(&key).copied().unwrap_or(0) as u128;
                        bytes / left.get(&key).copied().unwrap_or(1).max(1) as u128
                    })
                    .sum()
            };
            // The first of the largest: `max_by_key` keeps the last.
            let (at, _) = todo.iter().enumerate().fold((0, None::<u128>), |best, (at, &i)| {
                let s = share(i);
                match best.1 {
                    Some(b) if b >= s => best,
                    _ => (at, Some(s)),
                }
            });
            let i = todo.remove(at);
            let (kind, columns) = &self.reads[i];
            for c in columns {
                if let Some(n) = left.get_mut(&(*kind, c.clone())) {
                    *n = n.saturating_sub(1);
                }
            }
            order.push(i);
        }
        order
    }

    /// What rule `i` reads: its source's frame with only its columns.
    pub(crate) fn for_rule(&self, i: usize) -> Prepared {
        let (kind, columns) = &self.reads[i];
        let all = self.prepared.lock().expect("not poisoned");
        let mut own = Prepared::default();
        if let Some(df) = all.frames.get(kind) {
            let present: Vec<PlSmallStr> = columns.iter().filter(|c| df.schema().contains(c)).cloned().collect();
            if let Ok(narrow) = df.select(present) {
                own.frames.insert(*kind, narrow);
            }
        }
        if let Some(j) = all.joined.get(kind) {
            own.joined.insert(*kind, j.clone());
        }
        own
    }

    /// Rule `i` has run: drop the columns no rule still to finish reads.
    pub(crate) fn done(&self, i: usize) {
        let (kind, columns) = &self.reads[i];
        let mut unread = Vec::new();
        {
            let mut left = self.left.lock().expect("not poisoned");
            for c in columns {
                if let Some(n) = left.get_mut(&(*kind, c.clone())) {
                    *n -= 1;
                    if *n == 0 {
                        unread.push(c.clone());
                    }
                }
            }
        }
        if unread.is_empty() {
            return;
        }
        let mut all = self.prepared.lock().expect("not poisoned");
        if let Some(df) = all.frames.get_mut(kind) {
            for c in unread {
                let _ = df.drop_in_place(&c);
            }
        }
    }
}

/// The bytes a rule that reads `c` holds of it: what it holds, or for
/// money held as units (`checks::held`) its copy as rules read it, a
/// 16-byte decimal a row. Weighed as held (4 bytes a row), the fee
/// checks' columns no longer put their rules first, and the card rules,
/// whose cuts copy the cards of 9M purchases, ran first, two at once,
/// beside every column: the 10M month's peak rose from 4,063 to 4,293 MiB.
fn read_bytes(c: &Column) -> usize {
    let s = c.as_materialized_series();
    match (crate::checks::held::read_as(c.name()), s.dtype()) {
        (Some(crate::checks::held::ReadAs::Decimal(_)), DataType::Int32 | DataType::Int64) => 16 * s.len(),
        (Some(crate::checks::held::ReadAs::Int64), DataType::Int32) => 8 * s.len(),
        _ => held_bytes(s),
    }
}

/// The bytes a column holds. polars' `estimated_size` counts a text
/// column's characters only; each value also has a 16-byte view (171 MB
/// for any text column of 10.7M rows, however short its values).
pub(crate) fn held_bytes(s: &Series) -> usize {
    let views = if s.dtype() == &DataType::String { 16 * s.len() } else { 0 };
    s.estimated_size() + views
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{LINE_COL, SRC_COL};

    /// The bundled pack over a transactions frame of `n` rows: what every
    /// rule reads, a status most rules read, and the coordinates only
    /// `SUS-LOC-03` reads.
    fn columns(n: usize) -> (RulePack, Columns) {
        let pack = crate::rules::load::load_builtin().into_result().expect("the bundled pack loads");
        let ints = |name: &str| Column::new(name.into(), (0..n as i64).collect::<Vec<_>>());
        let texts = |name: &str| Column::new(name.into(), (0..n).map(|i| format!("value-{i}")).collect::<Vec<_>>());
        let df = DataFrame::new(
            n,
            vec![
                texts("txn_id"),
                texts("merchant_id"),
                ints("amount"),
                ints("txn_time"),
                ints(SRC_COL),
                ints(LINE_COL),
                texts("status"),
                ints("lat"),
                ints("lon"),
                ints("distance_km"),
            ],
        )
        .expect("a frame");
        let mut prepared = Prepared::default();
        prepared.frames.insert(InputKind::Transactions, df);
        let columns = Columns::new(&pack, prepared);
        (pack, columns)
    }

    fn index(pack: &RulePack, id: &str) -> usize {
        pack.rules.iter().position(|lr| lr.compiled.id == id).expect("a bundled rule")
    }

    fn names(p: &Prepared) -> Vec<String> {
        p.frames[&InputKind::Transactions]
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn the_rule_that_alone_reads_wide_columns_runs_first_and_every_rule_once() {
        let (pack, columns) = columns(1000);
        let order = columns.order();
        assert_eq!(order[0], index(&pack, "SUS-LOC-03"));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..pack.rules.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_rule_sees_only_its_columns_and_a_column_goes_when_its_last_reader_is_done() {
        let (pack, columns) = columns(10);
        let loc = index(&pack, "SUS-LOC-03");
        let dup = index(&pack, "SUS-DUP-01");
        let own = names(&columns.for_rule(loc));
        for c in ["lat", "lon", "distance_km", "txn_id", "merchant_id", "txn_time", LINE_COL] {
            assert!(own.contains(&c.to_string()), "{c} missing from {own:?}");
        }
        assert!(!own.contains(&"status".to_string()), "SUS-LOC-03 does not read the status");
        assert!(!names(&columns.for_rule(dup)).contains(&"lat".to_string()));
        // A frame taken before the column goes keeps it; later ones lack it.
        let before = columns.for_rule(loc);
        columns.done(loc);
        assert!(names(&before).contains(&"distance_km".to_string()));
        let after = names(&columns.for_rule(dup));
        let left = names(&columns.prepared.lock().expect("not poisoned"));
        for gone in ["lat", "lon", "distance_km"] {
            assert!(!left.contains(&gone.to_string()), "{gone} is still held");
        }
        for kept in ["amount", "txn_id", "status"] {
            assert!(left.contains(&kept.to_string()), "{kept} was dropped while other rules read it");
        }
        assert!(after.contains(&"amount".to_string()));
    }
}
