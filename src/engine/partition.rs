//! Partitioned evaluation, for inputs larger than memory. Inputs are
//! parsed once; each file's rows are spilled to Parquet parts, encrypted
//! (`super::sealed`), by a hash of the merchant (files gathered into
//! batches), and rules then run
//! partition by partition. A rule is split by a key that keeps each of its
//! groups inside one partition:
//!
//! - `merchant_id` for row rules and rules grouped by merchant. Each
//!   merchant partition is read and prepared once, so per-merchant derived
//!   columns (gaps between purchases, refund originals, deposit timing)
//!   see the merchant's whole history.
//! - the rule's first group key otherwise (a card, a transaction id): the
//!   columns these rules read are carried from each prepared merchant
//!   partition, re-split by that key, so all rows of a card meet in one
//!   partition without being prepared again.
//! - rules with a peer baseline run in the merchant pass, with the peer
//!   statistics a peer pass made first from every merchant partition,
//!   prepared for those rules' columns only.
//! - application rules grouped across merchants, and aggregates over a
//!   whole input, run once on all rows.
//!
//! Findings are the union over partitions, sorted as in a single run, so
//! they equal the in-memory run's byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use super::prepare::Prepared;
use super::prepare::{names_used, prepare_part, transaction_columns_read, Derived};
use super::{RuleRun, RuleStatus};
use crate::findings::model::finish;
use crate::findings::Finding;
use crate::input::reference::References;
use crate::input::{FileStats, InputKind, LINE_COL, SRC_COL};
use crate::rules::compiled::CompiledRule;
use crate::rules::load::{LoadedRule, RulePack};

/// How a rule is split across partitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Merchant,
    Key(String),
    Whole,
}

/// The split follows what the compiled rule reads: rows and merchant
/// groups split by merchant; groups of another key by that key (all rows
/// of a card meet in one partition); applications grouped otherwise, and
/// aggregates over a whole input (no key), need every row at once.
pub(crate) fn split_of(rule: &CompiledRule) -> Split {
    let keys = rule.keys();
    if !rule.is_grouped() || keys.iter().any(|k| k == "merchant_id") {
        Split::Merchant
    } else if rule.source == InputKind::Applications || keys.is_empty() {
        Split::Whole
    } else {
        Split::Key(keys[0].clone())
    }
}

/// What the rows carried to the pass of `rule` can be cut on, if it is
/// split by another key than the merchant (`Split::Key`): its keys that
/// are columns of its input as read (the spill counts those), and the
/// fewest rows one of its groups needs to hit (`Grouping::min_count`). A
/// row whose value of one of these keys has fewer rows than that in the
/// whole input is in no group that hits. None: every row may hit.
fn cut_of(rule: &CompiledRule) -> Option<(Vec<String>, u64)> {
    if !matches!(split_of(rule), Split::Key(_)) || rule.peers().is_some() {
        return None;
    }
    let floor = rule.grouping.as_ref()?.min_count.filter(|m| *m > 1)?;
    let keys: Vec<String> = rule.keys().iter().filter(|k| rule.source.column(k).is_some()).cloned().collect();
    (!keys.is_empty()).then_some((keys, floor))
}

/// The keys a partitioned run counts as it spills (`Spill::counting`):
/// those the carried rows of some rule can be cut on (`cut_of`).
pub fn counted_keys(pack: &RulePack) -> BTreeSet<(InputKind, String)> {
    pack.rules
        .iter()
        .filter_map(|lr| cut_of(&lr.compiled).map(|(keys, _)| (lr.compiled.source, keys)))
        .flat_map(|(kind, keys)| keys.into_iter().map(move |k| (kind, k)))
        .collect()
}

/// The first approved purchase of some transactions (ms): where the
/// data's period starts, for dormancy (a partition cannot see it alone).
pub(crate) fn first_purchase(txns: &DataFrame) -> PolarsResult<Option<i64>> {
    let first = txns
        .clone()
        .lazy()
        .filter(col("txn_type").eq(lit("purchase")).and(col("status").eq(lit("approved"))))
        .select([col("txn_time").min().cast(DataType::Int64)])
        .collect()?;
    Ok(first.column("txn_time")?.i64()?.get(0))
}

/// Partition of a key value: a stable hash, the same on every run.
pub(crate) fn part_of(value: Option<&str>, n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    (h.finish() % n as u64) as usize
}

/// Each row's partition of `key`. A categorical key is hashed once per
/// category, not once per row (its text is the same on every row of a
/// merchant), and lands where its text would.
fn parts_of(df: &DataFrame, key: &str, n: usize) -> PolarsResult<Vec<usize>> {
    let s = df.column(key)?.as_materialized_series();
    if let Ok(cat) = s.cat32() {
        return Ok(parts_by_code(cat, n));
    }
    let s = s.cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| part_of(v, n)).collect())
}

/// Each category's partition among `n`, by its code + 1 (0: null),
/// `UNKNOWN` until a row of it is split: the run's categoricals share one
/// set of categories for the process (`input::categories`), so a merchant
/// is hashed once a run instead of once in every batch spilled (22
/// batches of the 10M-row month, 119,000 merchants each). One table per
/// number of partitions; a split on another thread meanwhile makes its own.
static PARTS_BY_CODE: std::sync::Mutex<Vec<(usize, Vec<u32>)>> = std::sync::Mutex::new(Vec::new());

const UNKNOWN: u32 = u32::MAX;

/// `parts_of` a categorical: through `PARTS_BY_CODE` when its categories
/// are the run's.
fn parts_by_code(cat: &Categorical32Chunked, n: usize) -> Vec<usize> {
    let mapping = cat.get_mapping();
    let DataType::Categorical(_, ours) = crate::input::categories::categories() else {
        unreachable!("categories() is a categorical")
    };
    if !Arc::ptr_eq(mapping, &ours) {
        return super::narrow::per_category(cat, |v| part_of(v, n));
    }
    let taken = {
        let mut tables = PARTS_BY_CODE.lock().unwrap_or_else(|e| e.into_inner());
        tables.iter().position(|(k, _)| *k == n).map(|at| tables.swap_remove(at).1)
    };
    let mut memo = taken.unwrap_or_default();
    let slots = mapping.num_cats_upper_bound() + 1;
    if memo.len() < slots {
        memo.resize(slots, UNKNOWN);
    }
    let parts = cat
        .physical()
        .iter()
        .map(|code| {
            let at = code.map_or(0, |c| c as usize + 1);
            match memo.get(at) {
                Some(&p) if p != UNKNOWN => p as usize,
                known => {
                    let p = part_of(code.and_then(|c| mapping.cat_to_str(c)), n);
                    if known.is_some() {
                        memo[at] = p as u32;
                    }
                    p
                }
            }
        })
        .collect();
    PARTS_BY_CODE.lock().unwrap_or_else(|e| e.into_inner()).push((n, memo));
    parts
}

/// Rows of `df` whose key falls in each partition, in their order. One
/// pass sorts row numbers into partitions (a mask per partition would
/// read the whole frame once per partition).
fn split_frame(df: &DataFrame, key: &str, n: usize) -> PolarsResult<Vec<DataFrame>> {
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); n];
    for (i, p) in parts_of(df, key, n)?.into_iter().enumerate() {
        rows[p].push(i as IdxSize);
    }
    rows.into_par_iter().map(|r| df.take(&IdxCa::from_vec("idx".into(), r))).collect()
}

/// Parsed rows on disk, by input, key and partition.
pub struct Spill {
    /// Removes the folder if the process is interrupted (it holds raw,
    /// unmasked rows, encrypted); dropped before `dir`, which removes it
    /// otherwise.
    _interrupt_guard: crate::cleanup::Registered,
    dir: super::spill_folder::SpillFolder,
    /// The key the spill files are sealed with, in memory only.
    sealer: super::sealed::Sealer,
    pub n: usize,
    /// First approved purchase over all transactions (ms), for dormancy.
    period_start: AtomicI64,
    /// Parsed files not yet written, by input (see `sink`).
    pending: std::sync::Mutex<BTreeMap<InputKind, Pending>>,
    /// Batches written so far: the next batch's file name.
    batches: std::sync::atomic::AtomicU32,
    batch_rows: usize,
    /// Partitions with fewer rows are evaluated together (`MIN_PARTITION_ROWS`).
    min_rows: usize,
    /// Rows spilled so far, all inputs.
    rows: std::sync::atomic::AtomicU64,
    /// The columns of each file written as categorical codes
    /// (`narrow::to_codes`), to make categoricals again as it is read.
    coded: std::sync::Mutex<std::collections::HashMap<PathBuf, Vec<PlSmallStr>>>,
    /// Rows per value of the keys that rows carried to a later pass are cut
    /// on (`counted_keys`), by input and column, counted as batches are
    /// written; None: nothing counted.
    counts: std::sync::Mutex<Option<Counted>>,
}

/// Keys counted by the spill, and their counts.
struct Counted {
    keys: BTreeSet<(InputKind, String)>,
    counts: super::key_counts::KeyCounts,
}

/// Files of one input waiting to be split and written together.
#[derive(Default)]
struct Pending {
    files: Vec<(u32, DataFrame)>,
    rows: usize,
}

/// Rows held before a batch is split and written. Writing each file on its
/// own wrote files x keys x partitions small Parquet files (30 daily files
/// in 64 partitions: some 7,700), and reading them back dominated the run;
/// a batch writes keys x partitions files whatever the number of inputs,
/// and holds at most this many parsed rows (a few hundred MB).
/// `POSAUDIT_SPILL_BATCH_ROWS` lowers it, for tests of many batches.
const BATCH_ROWS: usize = 500_000;

fn batch_rows() -> usize {
    std::env::var("POSAUDIT_SPILL_BATCH_ROWS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(BATCH_ROWS)
}

/// Partitions with fewer rows than this are evaluated together, up to
/// this many rows: below it the cost of evaluating every rule once more
/// outweighs the memory saved (1M rows in 64 partitions of 17,000 rows
/// took 4x the in-memory time). Partitions share no key, so rules see in
/// their union exactly what they see in each. `POSAUDIT_PARTITION_MIN_ROWS`
/// changes it (0: every partition alone, as tests of many partitions want).
const MIN_PARTITION_ROWS: usize = 250_000;

fn min_partition_rows() -> usize {
    std::env::var("POSAUDIT_PARTITION_MIN_ROWS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MIN_PARTITION_ROWS)
}

/// Partitions gathered for one evaluation: their numbers, each input's
/// frames, and how many rows those hold.
#[derive(Default)]
struct Gathered {
    parts: Vec<usize>,
    frames: BTreeMap<InputKind, Vec<DataFrame>>,
    rows: usize,
}

impl Gathered {
    fn add(&mut self, k: usize, frames: BTreeMap<InputKind, DataFrame>, rows: usize) {
        self.parts.push(k);
        for (kind, df) in frames {
            self.frames.entry(kind).or_default().push(df);
        }
        self.rows += rows;
    }

    /// One input's rows of all gathered partitions, in input order (as
    /// one partition's rows are).
    fn union(&mut self, kind: InputKind) -> PolarsResult<Option<DataFrame>> {
        let Some(mut frames) = self.frames.remove(&kind) else {
            return Ok(None);
        };
        let mut all = frames.remove(0);
        if frames.is_empty() {
            return Ok(Some(all));
        }
        for df in frames {
            let aligned = crate::input::align(&mut all, df)?;
            all.vstack_mut_owned(aligned)?;
        }
        Ok(Some(in_input_order_sorted(all)?))
    }
}

/// Partitions `0..n`, read by `read` (their frames and rows), handed to
/// `evaluate` in gatherings of at least `min_rows` rows, each as soon as it
/// is complete, so that no more than one is in memory. A partition with no
/// rows has no findings and is skipped, unless every partition is empty:
/// then one empty gathering (partition 0) is evaluated, so every rule
/// reports how it ran.
fn in_gatherings(
    n: usize,
    min_rows: usize,
    mut read: impl FnMut(usize) -> PolarsResult<(BTreeMap<InputKind, DataFrame>, usize)>,
    mut evaluate: impl FnMut(Gathered) -> PolarsResult<()>,
) -> PolarsResult<()> {
    let mut gathering = Gathered::default();
    let mut evaluated = false;
    for k in 0..n {
        let (frames, rows) = read(k)?;
        if rows == 0 {
            continue;
        }
        gathering.add(k, frames, rows);
        if gathering.rows >= min_rows {
            evaluate(std::mem::take(&mut gathering))?;
            evaluated = true;
        }
    }
    if !gathering.parts.is_empty() || !evaluated {
        if gathering.parts.is_empty() {
            gathering.parts.push(0);
        }
        evaluate(gathering)?;
    }
    Ok(())
}

/// Where a partitioned run's time goes, summed over its partitions: one
/// line per step, in the order each step first ran, for `--verbose`.
/// The phase's single figure hid whether reading spilled rows back,
/// preparing each partition or the rules cost the run its time.
#[derive(Default)]
pub struct Tally(std::sync::Mutex<Vec<(&'static str, Duration, usize)>>);

impl Tally {
    /// Run `f`, adding its time to step `name` (and one to its count).
    fn time<R>(&self, name: &'static str, f: impl FnOnce() -> R) -> R {
        let started = Instant::now();
        let r = f();
        self.add(name, started.elapsed());
        r
    }

    /// Add `took` to step `name` (and one to its count).
    fn add(&self, name: &'static str, took: Duration) {
        if let Ok(mut steps) = self.0.lock() {
            match steps.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, d, k)) => {
                    *d += took;
                    *k += 1;
                }
                None => steps.push((name, took, 1)),
            }
        }
    }

    /// Each step: its name, its time summed, and how many times it ran.
    pub fn steps(&self) -> Vec<(&'static str, Duration, usize)> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Spill {
    pub fn new(n: usize, within: Option<&std::path::Path>) -> std::io::Result<Spill> {
        let dir = super::spill_folder::SpillFolder::new(within)?;
        Ok(Spill {
            _interrupt_guard: crate::cleanup::register(dir.path()),
            dir,
            sealer: super::sealed::Sealer::new(),
            n: n.max(1),
            period_start: AtomicI64::new(i64::MAX),
            pending: Default::default(),
            batches: Default::default(),
            batch_rows: batch_rows(),
            min_rows: min_partition_rows(),
            rows: Default::default(),
            coded: Default::default(),
            counts: Default::default(),
        })
    }

    /// Count the rows of each value of `keys` (`counted_keys`) as rows are
    /// spilled, so that rows that cannot reach a finding of a rule split
    /// by another key are not carried to its pass.
    pub fn counting(self, keys: BTreeSet<(InputKind, String)>) -> Spill {
        if !keys.is_empty() {
            if let Ok(mut counts) = self.counts.lock() {
                *counts = Some(Counted {
                    keys,
                    counts: super::key_counts::KeyCounts::new(),
                });
            }
        }
        self
    }

    /// Evaluate every partition alone, however small: for checking that a
    /// rule's split is right (rule tests), where gathering would hide it.
    pub fn each_partition_alone(mut self) -> Spill {
        self.min_rows = 0;
        self
    }

    fn part_dir(&self, kind: InputKind, key: &str, k: usize) -> PathBuf {
        self.dir.path().join(kind.name()).join(key).join(k.to_string())
    }

    /// Spill one parsed file; applications stay in memory. Files are
    /// gathered into batches of about `BATCH_ROWS` rows, each split and
    /// written at once; `flush` writes the last one.
    pub(crate) fn sink(&self, kind: InputKind, file: u32, df: DataFrame) -> PolarsResult<Option<DataFrame>> {
        if kind == InputKind::Applications {
            return Ok(Some(df));
        }
        if kind == InputKind::Transactions {
            if let Some(v) = first_purchase(&df)? {
                self.period_start.fetch_min(v, Ordering::Relaxed);
            }
        }
        let full = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| polars_err!(ComputeError: "a spill thread panicked"))?;
            let p = pending.entry(kind).or_default();
            p.rows += df.height();
            p.files.push((file, df));
            if p.rows >= self.batch_rows {
                Some(std::mem::take(p))
            } else {
                None
            }
        };
        if let Some(batch) = full {
            self.write_batch(kind, batch)?;
        }
        Ok(None)
    }

    /// Write what `sink` still holds. Called before partitions are read.
    pub(crate) fn flush(&self) -> PolarsResult<()> {
        let pending = std::mem::take(
            &mut *self
                .pending
                .lock()
                .map_err(|_| polars_err!(ComputeError: "a spill thread panicked"))?,
        );
        for (kind, batch) in pending {
            self.write_batch(kind, batch)?;
        }
        Ok(())
    }

    /// One batch of parsed files, in file order, split by merchant into
    /// one Parquet file per non-empty partition. Parsed rows are split by
    /// merchant only: rules split by another key read prepared rows,
    /// re-split in the merchant pass (`run`).
    fn write_batch(&self, kind: InputKind, mut batch: Pending) -> PolarsResult<()> {
        batch.files.sort_by_key(|(file, _)| *file);
        let mut frames = batch.files.into_iter().map(|(_, df)| df);
        let Some(mut df) = frames.next() else { return Ok(()) };
        for next in frames {
            let aligned = crate::input::align(&mut df, next)?;
            df.vstack_mut_owned(aligned)?;
        }
        df.rechunk_mut_par();
        self.count(kind, &df)?;
        self.rows.fetch_add(df.height() as u64, Ordering::Relaxed);
        let name = format!("{:08}.sealed", self.batches.fetch_add(1, Ordering::Relaxed));
        self.write_split(kind, "merchant_id", Some("merchant_id"), 0, self.n, &name, df)
    }

    /// Count the keys `counting` named in a batch of `kind`'s rows. A
    /// batch without one of them (an optional column some files lack)
    /// counts its rows as nulls, which they will be once aligned.
    fn count(&self, kind: InputKind, df: &DataFrame) -> PolarsResult<()> {
        let lock = || self.counts.lock().map_err(|_| polars_err!(ComputeError: "a spill thread panicked"));
        let names: Vec<String> = match lock()?.as_ref() {
            Some(counted) => counted.keys.iter().filter(|(k, _)| *k == kind).map(|(_, n)| n.clone()).collect(),
            None => return Ok(()),
        };
        // Hashed before the lock is taken: batches on other threads hash
        // theirs meanwhile.
        let mut tallies = Vec::new();
        for name in &names {
            let tallied = match df.column(name) {
                Ok(c) => super::key_counts::tally(name, c)?,
                Err(_) => {
                    let nulls = Column::full_null(name.as_str().into(), df.height(), &DataType::String);
                    super::key_counts::tally(name, &nulls)?
                }
            };
            tallies.push(tallied);
        }
        if let Some(counted) = lock()?.as_mut() {
            for tallied in &tallies {
                counted.counts.add_tallied(tallied);
            }
        }
        Ok(())
    }

    /// The rows of `df` (prepared rows of `kind`) that may reach a finding
    /// of one of `cut`'s rules, each given as the counted keys it groups
    /// by and its floor (`cut_of`); None if every row may. `estimates`
    /// keeps each key's counts per row for the next pass's cut of the same
    /// rows (a card is a key of two passes).
    fn may_reach(
        &self,
        kind: InputKind,
        df: &DataFrame,
        cut: &[(Vec<String>, u64)],
        estimates: &mut BTreeMap<(InputKind, String), Vec<u8>>,
    ) -> PolarsResult<Option<BooleanChunked>> {
        let guard = self
            .counts
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a spill thread panicked"))?;
        let Some(counted) = guard.as_ref() else { return Ok(None) };
        if cut
            .iter()
            .flat_map(|(keys, _)| keys)
            .any(|k| !counted.keys.contains(&(kind, k.clone())))
        {
            return Ok(None);
        }
        for key in cut.iter().flat_map(|(keys, _)| keys) {
            if let std::collections::btree_map::Entry::Vacant(e) = estimates.entry((kind, key.clone())) {
                e.insert(counted.counts.estimates(key, df.column(key)?)?);
            }
        }
        let rules: Vec<(Vec<&[u8]>, u64)> = cut
            .iter()
            .map(|(keys, floor)| (keys.iter().map(|k| estimates[&(kind, k.clone())].as_slice()).collect(), *floor))
            .collect();
        let keep: BooleanChunked = (0..df.height())
            .map(|row| {
                rules
                    .iter()
                    .any(|(counts, floor)| counts.iter().all(|c| super::key_counts::reaches(c[row], *floor)))
            })
            .collect();
        Ok((keep.num_trues() < df.height()).then_some(keep))
    }

    /// Prepared rows of merchant partition `from`, kept under `dir` for a
    /// later pass: split by `key` into `parts` partitions, or (None) kept
    /// as partition `from`.
    pub(crate) fn write_prepared(
        &self,
        kind: InputKind,
        dir: &str,
        key: Option<&str>,
        from: usize,
        parts: usize,
        df: DataFrame,
    ) -> PolarsResult<()> {
        self.write_split(kind, dir, key, from, parts, &format!("{from:08}.sealed"), df)
    }

    /// How many partitions rows carried to a key's split are spread over:
    /// no more than gatherings would make of all the rows (a few hundred
    /// rows in each of 64 partitions were written and read back only to be
    /// gathered again), and every partition when each is evaluated alone.
    pub(crate) fn carried_parts(&self) -> usize {
        match self.min_rows {
            0 => self.n,
            min => (self.rows.load(Ordering::Relaxed) as usize).div_ceil(min).clamp(1, self.n),
        }
    }

    /// `df` split by `key` into `parts` partitions (or all of it as
    /// partition `from`), each non-empty part written as `name` under its
    /// partition of `dir`.
    #[allow(clippy::too_many_arguments)]
    fn write_split(
        &self,
        kind: InputKind,
        dir: &str,
        key: Option<&str>,
        from: usize,
        parts: usize,
        name: &str,
        df: DataFrame,
    ) -> PolarsResult<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let parts = match key {
            Some(key) => split_frame(&df, key, parts)?.into_iter().enumerate().collect(),
            None => vec![(from, df)],
        };
        parts
            .into_par_iter()
            .filter(|(_, part)| part.height() > 0)
            .try_for_each(|(k, mut part)| self.write_part(&self.part_dir(kind, dir, k), name, &mut part))
    }

    fn write_part(&self, dir: &std::path::Path, name: &str, part: &mut DataFrame) -> PolarsResult<()> {
        // After an interruption removed the spill folder, never create it
        // again.
        if crate::cleanup::interrupted() || !self.dir.path().is_dir() {
            polars_bail!(ComputeError: "the spill folder is gone (interrupted)");
        }
        std::fs::create_dir_all(dir).map_err(|e| polars_err!(ComputeError: "spill folder: {e}"))?;
        let path = dir.join(name);
        let coded = super::narrow::to_codes(part)?;
        self.coded
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a spill thread panicked"))?
            .insert(path.clone(), coded);
        // Spill files live for one scan: fast to write beats small. LZ4
        // made them 0.55x the size, and cost 3-6% of a partitioned scan;
        // polars' guessed dictionaries cost more (`spill_parquet`).
        let plain = super::spill_parquet::parquet_bytes(part)?;
        // Sealed: the rows hold full account numbers (`sealed`).
        self.sealer
            .write(&path, plain)
            .map_err(|e| polars_err!(ComputeError: "spill file: {e}"))
    }

    /// One partition of an input, its files in file order (None: no rows).
    pub fn read(&self, kind: InputKind, key: &str, k: usize) -> PolarsResult<Option<DataFrame>> {
        self.read_columns(kind, key, k, None)
    }

    /// As `read`, only `columns` (those the spill has) where given.
    pub fn read_columns(&self, kind: InputKind, key: &str, k: usize, columns: Option<&[&str]>) -> PolarsResult<Option<DataFrame>> {
        let mut out = self.stacked(kind, key, k, columns, None)?;
        if let Some(df) = &mut out {
            df.rechunk_mut_par();
        }
        Ok(out)
    }

    /// The rows of one partition of an input that `keep` keeps, in input
    /// order, with only `columns` (those the spill has) and the rows'
    /// source and line: for a few rows looked up by id, without `read`'s
    /// whole partition (all its columns) held at once. Each file is cut
    /// as it is read.
    pub fn rows_where(
        &self,
        kind: InputKind,
        key: &str,
        k: usize,
        columns: &[&str],
        keep: impl Fn(&DataFrame) -> PolarsResult<BooleanChunked> + Sync,
    ) -> PolarsResult<Option<DataFrame>> {
        let mut wanted = columns.to_vec();
        wanted.extend([SRC_COL, LINE_COL]);
        self.stacked(kind, key, k, Some(&wanted), Some(&keep))
    }

    /// A partition's files (only `columns`, and only the rows `keep`
    /// keeps, where given), stacked in input order. The files are read on
    /// all threads: unsealing a file is serial work, and a partition
    /// read file after file left the other threads idle (the read-back
    /// steps of a partitioned scan of the 10M month were a tenth of its
    /// partitions phase).
    fn stacked(
        &self,
        kind: InputKind,
        key: &str,
        k: usize,
        columns: Option<&[&str]>,
        keep: Option<&RowFilter<'_>>,
    ) -> PolarsResult<Option<DataFrame>> {
        let frames: Vec<DataFrame> = self
            .files_of(kind, key, k)
            .par_iter()
            .map(|f| {
                let df = self.read_file(f, columns)?;
                match keep {
                    Some(keep) => df.filter(&keep(&df)?),
                    None => Ok(df),
                }
            })
            .collect::<PolarsResult<_>>()?;
        let mut out: Option<DataFrame> = None;
        for df in frames {
            match &mut out {
                None => out = Some(df),
                Some(acc) => {
                    let aligned = crate::input::align(acc, df)?;
                    acc.vstack_mut_owned(aligned)?;
                }
            }
        }
        // Batches are written as files finish parsing, which on several
        // threads is not always file order: put the rows back in it.
        match out {
            Some(df) if !in_input_order(&df)? => in_input_order_sorted(df).map(Some),
            out => Ok(out),
        }
    }

    /// The spill files of one partition of an input, in file order.
    fn files_of(&self, kind: InputKind, key: &str, k: usize) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(self.part_dir(kind, key, k)) {
            Ok(r) => r.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        files
    }

    /// One spill file, unsealed, with its coded columns as categoricals;
    /// only `columns` of it where given.
    fn read_file(&self, f: &std::path::Path, columns: Option<&[&str]>) -> PolarsResult<DataFrame> {
        let plain = self.sealer.read(f).map_err(|e| polars_err!(ComputeError: "spill file: {e}"))?;
        let mut reader = ParquetReader::new(std::io::Cursor::new(plain));
        let mut df = match columns {
            Some(c) => {
                let present = reader.schema()?;
                let c = c.iter().filter(|n| present.contains(n)).map(|n| n.to_string()).collect();
                reader.with_columns(Some(c)).finish()?
            }
            None => reader.finish()?,
        };
        let coded: Vec<PlSmallStr> = self
            .coded
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a spill thread panicked"))?
            .get(f)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| df.schema().contains(n))
            .collect();
        super::narrow::from_codes(&mut df, &coded)?;
        Ok(df)
    }

    pub(crate) fn period_start(&self) -> Option<i64> {
        Some(self.period_start.load(Ordering::Relaxed)).filter(|v| *v != i64::MAX)
    }
}

/// Which rows of a frame to keep (`Spill::rows_where`).
type RowFilter<'a> = dyn Fn(&DataFrame) -> PolarsResult<BooleanChunked> + Sync + 'a;

/// The rows ordered by file, then line. Sorted by one integer (file
/// index above line number): a sort by the two columns compared rows
/// through polars' generic multi-column comparison, several times slower.
fn in_input_order_sorted(df: DataFrame) -> PolarsResult<DataFrame> {
    let src = df.column(SRC_COL)?.u32()?;
    let line = df.column(LINE_COL)?.u64()?;
    if line.max().is_some_and(|l| l >= 1 << 40) || src.max().is_some_and(|s| s >= 1 << 24) {
        return df.sort([SRC_COL, LINE_COL], SortMultipleOptions::default());
    }
    let keys: Vec<u64> = src
        .into_no_null_iter()
        .zip(line.into_no_null_iter())
        .map(|(s, l)| (u64::from(s) << 40) | l)
        .collect();
    let mut order: Vec<IdxSize> = (0..keys.len() as IdxSize).collect();
    order.par_sort_unstable_by_key(|i| keys[*i as usize]);
    // SAFETY: every index is below the frame's height.
    Ok(unsafe { df.take_unchecked(&IdxCa::from_vec(PlSmallStr::EMPTY, order)) })
}

/// Whether rows are ordered by file, then line.
fn in_input_order(df: &DataFrame) -> PolarsResult<bool> {
    let src = df.column(SRC_COL)?.u32()?;
    let line = df.column(LINE_COL)?.u64()?;
    let mut last = (0u32, 0u64);
    for (s, l) in src.iter().zip(line.iter()) {
        let at = (s.unwrap_or(0), l.unwrap_or(0));
        if at < last {
            return Ok(false);
        }
        last = at;
    }
    Ok(true)
}

/// The empty frame of an input that has a schema but no rows here: the
/// schema of its first non-empty partition.
fn empty_like(kind: InputKind, spill: &Spill) -> Option<DataFrame> {
    (0..spill.n)
        .find_map(|k| spill.read(kind, "merchant_id", k).ok().flatten())
        .map(|df| df.clear())
}

fn sub_pack(rules: Vec<&LoadedRule>) -> RulePack {
    RulePack {
        rules: rules.into_iter().cloned().collect(),
        ..Default::default()
    }
}

/// One partition's groups of a rule with peers (`peer_base`).
fn peer_base(rule: &CompiledRule, base: &DataFrame, as_of: NaiveDate) -> PolarsResult<DataFrame> {
    let ctx = super::plan::PlanContext {
        schema: base.schema(),
        as_of,
        rows: base.height(),
        time_range: None,
        peer_stats: None,
        condition: Default::default(),
    };
    let lf = super::plan::peer_base(rule, base.clone().lazy(), &ctx)
        .map_err(|e| polars_err!(ComputeError: "rule {}: peer statistics: {}", rule.id, e.message))?;
    lf.collect()
}

/// Peer statistics of the rules with peers, over all partitions: each
/// partition's groups (`peer_base`), stacked, then the statistics of all.
fn peer_statistics(rules: &[&LoadedRule], mut groups: BTreeMap<String, Vec<DataFrame>>) -> PolarsResult<super::PeerStats> {
    let mut out = super::PeerStats::new();
    for lr in rules {
        let Some(parts) = groups.remove(&lr.compiled.id) else { continue };
        let mut all: Option<DataFrame> = None;
        for df in parts {
            match &mut all {
                None => all = Some(df),
                Some(acc) => {
                    acc.vstack_mut_owned(df)?;
                }
            }
        }
        let Some(all) = all else { continue };
        let stats = super::plan::peer_stats(&lr.compiled, all.lazy())
            .map_err(|e| polars_err!(ComputeError: "rule {}: peer statistics: {}", lr.compiled.id, e.message))?;
        out.insert(lr.compiled.id.clone(), stats.collect()?);
    }
    Ok(out)
}

/// What the partitioned run reads besides the spill.
pub struct Inputs<'a> {
    /// All applications (they stay in memory).
    pub apps: &'a DataFrame,
    /// Which inputs were given (optional ones may not be).
    pub present: &'a BTreeSet<InputKind>,
    pub files: &'a [FileStats],
    /// Where the run's time goes (`Tally`).
    pub tally: &'a Tally,
}

/// Run the pack partition by partition.
pub fn run(
    pack: &RulePack,
    refs: &References,
    inputs: &Inputs,
    spill: &Spill,
    as_of: NaiveDate,
    done: &(dyn Fn(&RuleRun) + Sync),
) -> PolarsResult<(Vec<Finding>, Vec<RuleRun>)> {
    let (apps, present, files, tally) = (inputs.apps, inputs.present, inputs.files, inputs.tally);
    spill.flush()?;
    let n = spill.n;
    let period_start = spill.period_start();
    let mut by_split: BTreeMap<Split, Vec<&LoadedRule>> = BTreeMap::new();
    // A peer baseline compares a merchant with merchants of other
    // partitions: its statistics are computed first over all partitions
    // (see `peer_base`). Rules split by another key than the merchant
    // cannot do that yet.
    let mut not_split: Vec<RuleRun> = Vec::new();
    let mut peer_rules: Vec<&LoadedRule> = Vec::new();
    for lr in &pack.rules {
        if lr.compiled.peers().is_some() && split_of(&lr.compiled) != Split::Merchant {
            not_split.push(RuleRun {
                rule_id: lr.compiled.id.clone(),
                status: RuleStatus::Skipped,
                shadow: false,
                reason: Some(
                    "a peer baseline over groups that are not merchants cannot be split: run this rule without --partitions".into(),
                ),
                findings: 0,
                rows: 0,
                elapsed_ms: 0,
            });
            continue;
        }
        if lr.compiled.peers().is_some() {
            peer_rules.push(lr);
        }
        by_split.entry(split_of(&lr.compiled)).or_default().push(lr);
    }
    let mut findings: Vec<Finding> = Vec::new();
    let mut runs: BTreeMap<String, RuleRun> = BTreeMap::new();
    let mut absorb = |fs: Vec<Finding>, rs: Vec<RuleRun>| {
        findings.extend(fs);
        for r in rs {
            match runs.get_mut(&r.rule_id) {
                None => {
                    runs.insert(r.rule_id.clone(), r);
                }
                Some(acc) => {
                    acc.findings += r.findings;
                    acc.rows += r.rows;
                    acc.elapsed_ms += r.elapsed_ms;
                    if acc.status != RuleStatus::Ran {
                        (acc.status, acc.reason) = (r.status, r.reason);
                    }
                }
            }
        }
    };
    absorb(vec![], not_split);
    let app_parts = parts_of(apps, "merchant_id", n)?;
    // Application checks once, not once per partition: rules split by card
    // or transaction see every application in every partition.
    let apps = &super::prepare::derive_applications(apps.clone(), refs, as_of)?;
    // Found once per input: looking them up per empty partition made many
    // partitions cost their square.
    let empties: BTreeMap<InputKind, Option<DataFrame>> = [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges]
        .into_iter()
        .map(|kind| (kind, empty_like(kind, spill)))
        .collect();
    let empty_of = |kind: InputKind| empties.get(&kind).cloned().flatten();
    let min_rows = spill.min_rows;
    let carried_parts = spill.carried_parts();
    // Applications per merchant partition, to size the partitions.
    let mut app_rows = vec![0usize; n];
    for p in &app_parts {
        app_rows[*p] += 1;
    }
    // The spilled rows of merchant partition `k` (none: no row there),
    // only `txn_columns` of the transactions where given.
    let merchant_spilled = |k: usize, txn_columns: Option<&[&str]>| -> PolarsResult<BTreeMap<InputKind, DataFrame>> {
        let mut frames = BTreeMap::new();
        for kind in [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges] {
            if present.contains(&kind) {
                let columns = txn_columns.filter(|_| kind == InputKind::Transactions);
                if let Some(df) = spill.read_columns(kind, "merchant_id", k, columns)? {
                    frames.insert(kind, df);
                }
            }
        }
        Ok(frames)
    };
    // The inputs of the gathered merchant partitions: their applications
    // and the rows spilled under their merchants.
    let merchant_inputs = |mut gathered: Gathered| -> PolarsResult<BTreeMap<InputKind, DataFrame>> {
        let mut frames: BTreeMap<InputKind, DataFrame> = BTreeMap::new();
        let mask: BooleanChunked = app_parts.iter().map(|p| gathered.parts.contains(p)).collect();
        frames.insert(InputKind::Applications, apps.filter(&mask)?);
        for kind in [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges] {
            if !present.contains(&kind) {
                continue;
            }
            if let Some(df) = gathered.union(kind)?.or_else(|| empty_of(kind)) {
                frames.insert(kind, df);
            }
        }
        Ok(frames)
    };
    // Every partition of a split has the same schema: each rule resolves once.
    let probes = super::Probes::default();
    let merchant_rules = sub_pack(by_split.remove(&Split::Merchant).unwrap_or_default());
    let whole_rules = by_split.remove(&Split::Whole).map(sub_pack);
    let key_rules: Vec<(String, RulePack)> = by_split
        .into_iter()
        .filter_map(|(split, rules)| match split {
            Split::Key(key) => Some((key, sub_pack(rules))),
            _ => None,
        })
        .collect();
    let peered: Vec<&LoadedRule> = merchant_rules.rules.iter().filter(|lr| lr.compiled.peers().is_some()).collect();
    // Both passes read the spilled rows; each counts its reads as its own step.
    let (spilled_of, app_rows) = (&merchant_spilled, &app_rows);
    let read_merchants = |step: &'static str, txn_columns: Option<Vec<PlSmallStr>>| {
        move |k: usize| -> PolarsResult<(BTreeMap<InputKind, DataFrame>, usize)> {
            let columns: Option<Vec<&str>> = txn_columns.as_ref().map(|c| c.iter().map(PlSmallStr::as_str).collect());
            let spilled = tally.time(step, || spilled_of(k, columns.as_deref()))?;
            let rows = app_rows.get(k).copied().unwrap_or(0) + spilled.values().map(DataFrame::height).sum::<usize>();
            Ok((spilled, rows))
        }
    };
    // The peer pass, before the merchant pass: each merchant partition
    // prepared for the peer rules' columns only, and their groups
    // (`peer_base`) gathered from all partitions into the statistics a
    // merchant is compared with. The merchant pass then runs the peer rules
    // with the others. They used to wait for the statistics on every
    // prepared row carried past the merchant pass: 10.7M rows and 1.2 GB
    // of columns written, read back and evaluated again, a third of a
    // partitioned scan of the 10M month.
    let peer_stats = if peered.is_empty() {
        super::PeerStats::new()
    } else {
        let peer_needed = Some(names_used(&sub_pack(peered.clone())));
        // Only the transaction columns the peer rules and their derived
        // columns read: a few of the spill's.
        let peer_columns = peer_needed.as_ref().and_then(|needed| {
            let names = needed.get(&InputKind::Transactions)?;
            let schema = empty_of(InputKind::Transactions)?;
            Some(transaction_columns_read(
                schema.get_column_names(),
                names,
                &Derived::new(Some(names), refs),
            ))
        });
        let mut peer_groups: BTreeMap<String, Vec<DataFrame>> = BTreeMap::new();
        in_gatherings(
            n,
            min_rows,
            read_merchants("peer pass: spilled rows read back", peer_columns),
            |gathered| {
                let prepared = tally.time("peer pass: derived columns and joins", || {
                    prepare_part(merchant_inputs(gathered)?, refs, as_of, &peer_needed, period_start, true)
                })?;
                tally.time("peer pass: peer rules' groups", || -> PolarsResult<()> {
                    for lr in &peered {
                        if let Some(base) = prepared.frame(lr.compiled.source, Some(&lr.compiled.names))? {
                            peer_groups
                                .entry(lr.compiled.id.clone())
                                .or_default()
                                .push(peer_base(&lr.compiled, &base, as_of)?);
                        }
                    }
                    Ok(())
                })
            },
        )?;
        tally.time("peer statistics", || peer_statistics(&peered, peer_groups))?
    };
    // The merchant pass: each merchant partition is read and prepared once
    // (derived columns need a merchant's whole history), its rules run,
    // and what the other splits read is taken from the prepared rows:
    // rules grouped by a card or terminal need that key's rows from every
    // partition.
    let mut needed = names_used(&merchant_rules);
    for (_, sub) in &key_rules {
        for (kind, names) in names_used(sub) {
            needed.entry(kind).or_default().extend(names);
        }
    }
    let needed = Some(needed);
    // Rows not carried to a later pass because they reach no finding of
    // its rules (`cut_of`), by pass and input: still rows those rules
    // were run on, as in the in-memory run.
    let mut not_carried: BTreeMap<(String, InputKind), usize> = BTreeMap::new();
    let mut schemas: BTreeMap<(String, InputKind), DataFrame> = BTreeMap::new();
    in_gatherings(
        n,
        min_rows,
        read_merchants("merchant pass: spilled rows read back", None),
        |gathered| {
            // Carried rows are written under the first partition's number.
            let k = gathered.parts[0];
            let prepared = tally.time("merchant pass: derived columns and joins", || {
                prepare_part(merchant_inputs(gathered)?, refs, as_of, &needed, period_start, true)
            })?;
            let (fs, rs) = tally.time("merchant pass: rules", || {
                super::run_with_peers(&merchant_rules, &prepared, files, as_of, &|_| {}, &peer_stats, &probes)
            });
            absorb(fs, rs);
            let carried: Vec<(String, &str, &RulePack)> = key_rules
                .iter()
                .map(|(key, sub)| (format!("prepared-{key}"), key.as_str(), sub))
                .collect();
            let mut estimates = BTreeMap::new();
            for (dir, key, sub) in carried {
                let names = names_used(sub);
                for kind in prepared.frames.keys() {
                    let Some(names) = names.get(kind) else { continue };
                    let wanted: BTreeSet<String> = names.iter().cloned().collect();
                    let df = tally.time("merchant pass: carried columns taken", || -> PolarsResult<_> {
                        match prepared.frame(*kind, Some(&wanted))? {
                            Some(df) => super::prepare::carried(&df, *kind, names).map(Some),
                            None => Ok(None),
                        }
                    })?;
                    let Some(mut df) = df else { continue };
                    schemas.entry((dir.clone(), *kind)).or_insert_with(|| df.clear());
                    tally.time("merchant pass: carried rows cut to those that may hit", || -> PolarsResult<()> {
                        let cut: Option<Vec<(Vec<String>, u64)>> = sub
                            .rules
                            .iter()
                            .filter(|r| r.compiled.source == *kind)
                            .map(|r| cut_of(&r.compiled))
                            .collect();
                        if let Some(keep) = cut
                            .filter(|c| !c.is_empty())
                            .and_then(|c| spill.may_reach(*kind, &df, &c, &mut estimates).transpose())
                        {
                            let keep = keep?;
                            *not_carried.entry((dir.clone(), *kind)).or_default() += df.height() - keep.num_trues();
                            df = df.filter(&keep)?;
                        }
                        Ok(())
                    })?;
                    tally.time("merchant pass: carried rows split and written", || {
                        spill.write_prepared(*kind, &dir, Some(key), k, carried_parts, df)
                    })?;
                }
            }
            Ok(())
        },
    )?;
    // The carried rows of the gathered partitions, with key codes made
    // afresh (a merchant partition's codes are its own).
    let carried_frames = |dir: &str, sub: &RulePack, mut gathered: Gathered| -> PolarsResult<Prepared> {
        let mut prepared = Prepared::default();
        for kind in sub.rules.iter().map(|r| r.compiled.source).collect::<BTreeSet<_>>() {
            let Some(mut df) = gathered.union(kind)?.or_else(|| schemas.get(&(dir.to_string(), kind)).cloned()) else {
                continue;
            };
            let names = names_used(sub).remove(&kind).unwrap_or_default();
            let mut coded: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|n| n.starts_with(super::keys::KEY_PREFIX))
                .collect();
            coded.sort_unstable();
            super::keys::add_codes(&mut df, coded)?;
            prepared.frames.insert(kind, df);
        }
        Ok(prepared)
    };
    let later: Vec<(String, &RulePack)> = key_rules.iter().map(|(key, sub)| (format!("prepared-{key}"), sub)).collect();
    for (dir, sub) in later {
        let kinds: BTreeSet<InputKind> = sub.rules.iter().map(|r| r.compiled.source).collect();
        // As in the merchant pass: empty partitions skipped, small ones
        // gathered, each gathering evaluated when complete.
        let read_carried = |k: usize| -> PolarsResult<(BTreeMap<InputKind, DataFrame>, usize)> {
            let mut frames = BTreeMap::new();
            for kind in &kinds {
                if let Some(df) = tally.time("later passes: carried rows read back", || spill.read(*kind, &dir, k))? {
                    frames.insert(*kind, df);
                }
            }
            let rows = frames.values().map(DataFrame::height).sum::<usize>();
            Ok((frames, rows))
        };
        in_gatherings(n, min_rows, read_carried, |gathered| {
            let prepared = tally.time("later passes: parts joined, keys coded", || carried_frames(&dir, sub, gathered))?;
            let (fs, rs) = tally.time("later passes: rules", || {
                super::run_with_peers(sub, &prepared, files, as_of, &|_| {}, &peer_stats, &probes)
            });
            absorb(fs, rs);
            Ok(())
        })?;
    }
    // An aggregate over a whole input (no key) needs every row at once:
    // all its partitions, back in file order.
    if let Some(sub) = whole_rules {
        let whole_started = Instant::now();
        let mut frames: BTreeMap<InputKind, DataFrame> = BTreeMap::new();
        frames.insert(InputKind::Applications, apps.clone());
        for kind in sub.rules.iter().map(|r| r.compiled.source).collect::<BTreeSet<_>>() {
            if kind == InputKind::Applications {
                continue;
            }
            let mut all: Option<DataFrame> = None;
            for j in 0..n {
                if let Some(df) = spill.read(kind, "merchant_id", j)? {
                    match &mut all {
                        None => all = Some(df),
                        Some(acc) => {
                            let aligned = crate::input::align(acc, df)?;
                            acc.vstack_mut_owned(aligned)?;
                        }
                    }
                }
            }
            let all = match all {
                Some(df) => in_input_order_sorted(df)?,
                None => match empty_of(kind) {
                    Some(df) => df,
                    None => continue,
                },
            };
            frames.insert(kind, all);
        }
        let prepared = prepare_part(frames, refs, as_of, &Some(names_used(&sub)), period_start, true)?;
        let (fs, rs) = super::run_with_peers(&sub, &prepared, files, as_of, &|_| {}, &peer_stats, &probes);
        absorb(fs, rs);
        tally.add(
            "rules over a whole input: rows read back, prepared and run",
            whole_started.elapsed(),
        );
    }
    let mut runs: Vec<RuleRun> = runs.into_values().collect();
    for (key, sub) in &key_rules {
        for lr in &sub.rules {
            let cut = not_carried
                .get(&(format!("prepared-{key}"), lr.compiled.source))
                .copied()
                .unwrap_or(0);
            if let Some(r) = runs.iter_mut().find(|r| r.rule_id == lr.compiled.id) {
                r.rows += cut;
            }
        }
    }
    runs.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    for r in &runs {
        done(r);
    }
    finish(&mut findings);
    Ok((findings, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_sums_each_step_over_its_runs_in_the_order_steps_first_ran() {
        let tally = Tally::default();
        assert_eq!(tally.time("rules", || 7), 7);
        tally.add("read", Duration::from_millis(30));
        tally.add("rules", Duration::from_millis(20));
        tally.add("read", Duration::from_millis(5));
        let steps = tally.steps();
        let names: Vec<_> = steps.iter().map(|(n, _, k)| (*n, *k)).collect();
        assert_eq!(names, [("rules", 2), ("read", 2)]);
        assert!(steps[0].1 >= Duration::from_millis(20));
        assert_eq!(steps[1].1, Duration::from_millis(35));
    }

    fn file(src: u32, merchants: &[&str]) -> DataFrame {
        let n = merchants.len();
        df! {
            "merchant_id" => merchants,
            SRC_COL => vec![src; n],
            LINE_COL => (2..2 + n as u64).collect::<Vec<_>>(),
        }
        .unwrap()
    }

    #[test]
    fn the_packs_passes_by_card_terminal_and_transaction_id_carry_only_rows_of_values_seen_often_enough() {
        let rules = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"));
        let pack = crate::rules::load::load(&[rules]).pack;
        let floors: BTreeMap<&str, (Vec<String>, u64)> = pack
            .rules
            .iter()
            .filter_map(|lr| cut_of(&lr.compiled).map(|c| (lr.compiled.id.as_str(), c)))
            .collect();
        // COUNT(*) > 1 by id; COUNT(DISTINCT merchant_id) > 3 by card and
        // day; COUNT(*) >= 3 by terminal and card.
        assert_eq!(floors["SUS-DUP-01"], (vec!["txn_id".to_string()], 2));
        assert_eq!(floors["SUS-CARD-01"], (vec!["card_hash".to_string()], 4));
        assert_eq!(floors["SUS-TIME-02"], (vec!["terminal_sn".to_string(), "card_hash".to_string()], 3));
        // Rules split by merchant are never cut: they run on every row.
        assert!(pack
            .rules
            .iter()
            .filter(|lr| split_of(&lr.compiled) == Split::Merchant)
            .all(|lr| cut_of(&lr.compiled).is_none()));
        let counted = counted_keys(&pack);
        for key in ["txn_id", "card_hash", "terminal_sn"] {
            assert!(counted.contains(&(InputKind::Transactions, key.to_string())), "{counted:?}");
        }
    }

    #[test]
    fn a_carried_frame_keeps_the_rows_whose_values_may_reach_a_rules_floor() {
        let spill = Spill::new(2, None)
            .unwrap()
            .counting([(InputKind::Fees, "card_hash".to_string())].into());
        // Card A four times, B twice, C once, and a null twice.
        let cards = [
            Some("A"),
            Some("B"),
            Some("A"),
            None,
            Some("C"),
            Some("A"),
            Some("B"),
            Some("A"),
            None,
        ];
        let mut df = file(0, &["m1"; 9]);
        df.with_column(Column::new("card_hash".into(), cards)).unwrap();
        spill.sink(InputKind::Fees, 0, df.clone()).unwrap();
        spill.flush().unwrap();
        let mut estimates = BTreeMap::new();
        let kept = |floor: u64, estimates: &mut BTreeMap<_, _>| -> Vec<Option<String>> {
            let cut = [(vec!["card_hash".to_string()], floor)];
            let kept = match spill.may_reach(InputKind::Fees, &df, &cut, estimates).unwrap() {
                Some(keep) => df.filter(&keep).unwrap(),
                None => df.clone(),
            };
            let cards = kept.column("card_hash").unwrap().str().unwrap().clone();
            cards.iter().map(|c| c.map(str::to_string)).collect()
        };
        let owned = |v: &[Option<&str>]| -> Vec<Option<String>> { v.iter().map(|c| c.map(str::to_string)).collect() };
        assert_eq!(kept(4, &mut estimates), owned(&[Some("A"); 4]));
        assert_eq!(
            kept(2, &mut estimates),
            owned(&[Some("A"), Some("B"), Some("A"), None, Some("A"), Some("B"), Some("A"), None])
        );
        assert_eq!(kept(1, &mut estimates), owned(&cards));
        // A key not counted cuts nothing.
        let cut = [(vec!["txn_id".to_string()], 2)];
        assert!(spill.may_reach(InputKind::Fees, &df, &cut, &mut estimates).unwrap().is_none());
    }

    #[test]
    fn a_categorical_key_lands_in_the_partitions_its_text_lands_in() {
        let ids: Vec<Option<String>> = (0..500).map(|i| (i % 9 != 0).then(|| format!("8221000{:08}", i % 37))).collect();
        let text = df! { "merchant_id" => ids.clone() }.unwrap();
        let mut coded = text.clone();
        super::super::narrow::narrow(&mut coded, InputKind::Transactions).unwrap();
        assert!(matches!(coded.column("merchant_id").unwrap().dtype(), DataType::Categorical(..)));
        // Twice each: the second through the partitions kept by code; and
        // a categorical of other categories, which are not kept.
        let other = text
            .column("merchant_id")
            .unwrap()
            .cast(&DataType::from_categories(Categories::random(
                "other".into(),
                CategoricalPhysical::U32,
            )))
            .unwrap();
        let other = DataFrame::new(other.len(), vec![other]).unwrap();
        for n in [1, 3, 8, 3, 8] {
            let by_text = parts_of(&text, "merchant_id", n).unwrap();
            assert_eq!(parts_of(&coded, "merchant_id", n).unwrap(), by_text);
            assert_eq!(parts_of(&other, "merchant_id", n).unwrap(), by_text);
        }
    }

    #[test]
    fn categoricals_spilled_read_back_as_the_same_categoricals() {
        let spill = Spill::new(2, None).unwrap();
        let mut df = file(0, &["m1", "m2", "m3", "m1"]);
        df.with_column(Column::new("status".into(), ["approved", "declined", "approved", "approved"]))
            .unwrap();
        super::super::narrow::narrow(&mut df, InputKind::Transactions).unwrap();
        assert!(matches!(df.column("status").unwrap().dtype(), DataType::Categorical(..)));
        spill
            .write_prepared(InputKind::Transactions, "prepared-x", Some("merchant_id"), 0, 2, df.clone())
            .unwrap();
        let back: Vec<DataFrame> = (0..2)
            .filter_map(|k| spill.read(InputKind::Transactions, "prepared-x", k).unwrap())
            .collect();
        assert_eq!(back.iter().map(|d| d.height()).sum::<usize>(), 4);
        for d in &back {
            assert_eq!(d.schema(), df.schema());
            assert_eq!(d.column("merchant_id").unwrap().dtype(), &super::super::narrow::categories());
        }
        let mut all = back[0].clone();
        for d in &back[1..] {
            all.vstack_mut(d).unwrap();
        }
        let all = in_input_order_sorted(all).unwrap();
        assert!(all.equals_missing(&df), "{all} vs {df}");
    }

    #[test]
    fn batches_written_out_of_file_order_read_back_in_input_order() {
        let mut spill = Spill::new(2, None).unwrap();
        // A batch per file, and files finishing in reverse order (as
        // parallel parsing may): the partitions still read in file order.
        spill.batch_rows = 1;
        for src in [3u32, 1, 2, 0] {
            let df = file(src, &["m1", "m2", "m3", "m1"]);
            assert!(spill.sink(InputKind::Fees, src, df).unwrap().is_none());
        }
        spill.flush().unwrap();
        let mut seen = 0;
        for k in 0..2 {
            let Some(df) = spill.read(InputKind::Fees, "merchant_id", k).unwrap() else {
                continue;
            };
            assert!(in_input_order(&df).unwrap(), "{df}");
            seen += df.height();
        }
        assert_eq!(seen, 16);
        // Four batches, not four files per key and partition each.
        assert_eq!(spill.batches.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn rows_where_reads_only_the_kept_rows_and_columns_in_input_order() {
        let mut spill = Spill::new(2, None).unwrap();
        spill.batch_rows = 1;
        // Files finishing out of order (fees: the transactions' sink
        // counts keys these rows do not have), a coded column.
        for src in [2u32, 0, 1] {
            let mut df = file(src, &["m1", "m2", "m1"]);
            let ids: Vec<String> = ["a", "b", "c"].iter().map(|i| format!("{i}{src}")).collect();
            df.with_column(Column::new("txn_id".into(), ids)).unwrap();
            df.with_column(Column::new("status".into(), ["approved", "declined", "approved"]))
                .unwrap();
            df.with_column(Column::new("amount".into(), [src as i64 * 10, 1, 2])).unwrap();
            super::super::narrow::narrow(&mut df, InputKind::Transactions).unwrap();
            assert!(spill.sink(InputKind::Fees, src, df).unwrap().is_none());
        }
        spill.flush().unwrap();
        let named = ["a0", "a2", "c1", "b1"];
        let keep = |df: &DataFrame| -> PolarsResult<BooleanChunked> {
            let ids = df.column("txn_id")?.cast(&DataType::String)?;
            Ok(ids.str()?.iter().map(|id| id.is_some_and(|id| named.contains(&id))).collect())
        };
        let mut seen = Vec::new();
        for k in 0..2 {
            let whole = spill.read(InputKind::Fees, "merchant_id", k).unwrap();
            let Some(rows) = spill
                .rows_where(InputKind::Fees, "merchant_id", k, &["txn_id", "amount", "no_such_column"], keep)
                .unwrap()
            else {
                assert!(whole.is_none());
                continue;
            };
            let names: Vec<&str> = rows.get_column_names().into_iter().map(|c| c.as_str()).collect();
            assert_eq!(names, ["txn_id", "amount", SRC_COL, LINE_COL]);
            // The same rows as the whole partition's, cut, in its order.
            let whole = whole.unwrap();
            let cut = whole.filter(&keep(&whole).unwrap()).unwrap();
            let cut = cut.select(names.iter().copied()).unwrap();
            assert!(rows.equals_missing(&cut), "{rows} vs {cut}");
            let ids = rows.column("txn_id").unwrap().cast(&DataType::String).unwrap();
            seen.extend(ids.str().unwrap().iter().flatten().map(str::to_string));
        }
        seen.sort();
        assert_eq!(seen, ["a0", "a2", "b1", "c1"]);
    }

    #[test]
    fn files_are_gathered_into_one_batch_below_its_size() {
        let mut spill = Spill::new(3, None).unwrap();
        spill.batch_rows = 100;
        for src in 0..10u32 {
            spill.sink(InputKind::Fees, src, file(src, &["a", "b", "c"])).unwrap();
        }
        assert_eq!(spill.batches.load(Ordering::Relaxed), 0, "nothing written before the batch fills");
        spill.flush().unwrap();
        assert_eq!(spill.batches.load(Ordering::Relaxed), 1);
        let rows: usize = (0..3)
            .filter_map(|k| spill.read(InputKind::Fees, "merchant_id", k).unwrap())
            .map(|df| df.height())
            .sum();
        assert_eq!(rows, 30);
    }

    #[test]
    fn spill_files_hold_no_number_in_the_clear() {
        // A scan killed with SIGKILL leaves its spill behind: what is on
        // disk must not give the account and card numbers of the rows.
        let spill = Spill::new(2, None).unwrap();
        let account = "6225768888888888";
        let mut df = file(0, &["m1", "m2", "m3", "m1"]);
        df.with_column(Column::new("settlement_account_number".into(), vec![account; 4]))
            .unwrap();
        df.with_column(Column::new("card_no_masked".into(), vec!["6222021234567890123"; 4]))
            .unwrap();
        // (As fees: a transactions batch also looks for its first purchase.)
        spill.sink(InputKind::Fees, 0, df.clone()).unwrap();
        spill.flush().unwrap();
        let mut files = Vec::new();
        let mut dirs = vec![spill.dir.path().to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        assert!(!files.is_empty());
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            for secret in [account, "6222021234567890123", "settlement_account_number"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} in the clear in {f:?}"
                );
            }
        }
        // And the rows come back whole.
        let back: Vec<DataFrame> = (0..2)
            .filter_map(|k| spill.read(InputKind::Fees, "merchant_id", k).unwrap())
            .collect();
        assert_eq!(back.iter().map(|d| d.height()).sum::<usize>(), 4);
        for d in &back {
            assert!(d
                .column("settlement_account_number")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .all(|v| v == Some(account)));
        }
    }
}
