//! Partitioned evaluation, for inputs larger than memory. Inputs are
//! parsed once; each file's rows are spilled to Parquet parts by a hash of
//! a partition key, and rules then run partition by partition. A rule is
//! split by a key that keeps each of its groups inside one partition:
//!
//! - `merchant_id` for row rules and rules grouped by merchant. All inputs
//!   are split by merchant for these, so per-merchant derived columns
//!   (gaps between purchases, refund originals, deposit timing) see the
//!   merchant's whole history.
//! - the rule's first group key otherwise (a card, a transaction id).
//! - application rules grouped across merchants run once, on all
//!   applications (they are small).
//!
//! Findings are the union over partitions, sorted as in a single run, so
//! they equal the in-memory run's byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use super::prepare::Prepared;
use super::prepare::{names_used, prepare_part};
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

fn parts_of(df: &DataFrame, key: &str, n: usize) -> PolarsResult<Vec<usize>> {
    let s = df.column(key)?.as_materialized_series().cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| part_of(v, n)).collect())
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
    /// unmasked rows); dropped before `dir`, which removes it otherwise.
    _interrupt_guard: crate::cleanup::Registered,
    dir: tempfile::TempDir,
    pub n: usize,
    /// For each non-application input, the keys it is split by.
    keys: BTreeMap<InputKind, BTreeSet<String>>,
    /// First approved purchase over all transactions (ms), for dormancy.
    period_start: AtomicI64,
}

impl Spill {
    pub fn new(pack: &RulePack, n: usize, within: Option<&std::path::Path>) -> std::io::Result<Spill> {
        let mut keys: BTreeMap<InputKind, BTreeSet<String>> = BTreeMap::new();
        for kind in [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges] {
            keys.entry(kind).or_default().insert("merchant_id".into());
        }
        for lr in &pack.rules {
            if let Split::Key(k) = split_of(&lr.compiled) {
                keys.entry(lr.compiled.source).or_default().insert(k);
            }
        }
        let dir = match within {
            Some(d) => tempfile::Builder::new().prefix(".posaudit-spill.").tempdir_in(d)?,
            None => tempfile::tempdir()?,
        };
        Ok(Spill {
            _interrupt_guard: crate::cleanup::register(dir.path()),
            dir,
            n: n.max(1),
            keys,
            period_start: AtomicI64::new(i64::MAX),
        })
    }

    fn part_dir(&self, kind: InputKind, key: &str, k: usize) -> PathBuf {
        self.dir.path().join(kind.name()).join(key).join(k.to_string())
    }

    /// Spill one parsed file; applications stay in memory.
    pub(crate) fn sink(&self, kind: InputKind, file: u32, df: DataFrame) -> PolarsResult<Option<DataFrame>> {
        if kind == InputKind::Applications {
            return Ok(Some(df));
        }
        if kind == InputKind::Transactions {
            if let Some(v) = first_purchase(&df)? {
                self.period_start.fetch_min(v, Ordering::Relaxed);
            }
        }
        for key in self.keys.get(&kind).into_iter().flatten() {
            if !df.schema().contains(key) {
                continue;
            }
            split_frame(&df, key, self.n)?
                .into_par_iter()
                .enumerate()
                .filter(|(_, part)| part.height() > 0)
                .try_for_each(|(k, mut part)| {
                    let dir = self.part_dir(kind, key, k);
                    // After an interruption removed the spill folder, never
                    // create it again.
                    if crate::cleanup::interrupted() || !self.dir.path().is_dir() {
                        polars_bail!(ComputeError: "the spill folder is gone (interrupted)");
                    }
                    std::fs::create_dir_all(&dir).map_err(|e| polars_err!(ComputeError: "spill folder: {e}"))?;
                    let f = std::fs::File::create(dir.join(format!("{file:08}.parquet")))
                        .map_err(|e| polars_err!(ComputeError: "spill file: {e}"))?;
                    // Spill files live for one scan: fast to write beats small.
                    ParquetWriter::new(f)
                        .with_compression(ParquetCompression::Lz4Raw)
                        .with_statistics(StatisticsOptions::empty())
                        .finish(&mut part)
                        .map(|_| ())
                })?;
        }
        Ok(None)
    }

    /// One partition of an input, its files in file order (None: no rows).
    pub fn read(&self, kind: InputKind, key: &str, k: usize) -> PolarsResult<Option<DataFrame>> {
        let dir = self.part_dir(kind, key, k);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(r) => r.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => return Ok(None),
        };
        files.sort();
        let mut out: Option<DataFrame> = None;
        for f in files {
            let df = ParquetReader::new(std::fs::File::open(&f).map_err(|e| polars_err!(ComputeError: "spill file: {e}"))?).finish()?;
            match &mut out {
                None => out = Some(df),
                Some(acc) => {
                    let aligned = crate::input::align(acc, df)?;
                    acc.vstack_mut_owned(aligned)?;
                }
            }
        }
        if let Some(df) = &mut out {
            df.rechunk_mut_par();
        }
        Ok(out)
    }

    pub(crate) fn period_start(&self) -> Option<i64> {
        Some(self.period_start.load(Ordering::Relaxed)).filter(|v| *v != i64::MAX)
    }
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

/// Peer statistics of the rules with peers, over all partitions: each
/// partition's groups (`peer_base`), stacked, then the statistics of all.
fn peer_statistics(
    rules: &[&LoadedRule],
    n: usize,
    frames_of: &dyn Fn(usize, &RulePack) -> PolarsResult<Option<Prepared>>,
    as_of: NaiveDate,
) -> PolarsResult<super::PeerStats> {
    let mut out = super::PeerStats::new();
    if rules.is_empty() {
        return Ok(out);
    }
    let sub = sub_pack(rules.to_vec());
    let mut groups: BTreeMap<String, Vec<DataFrame>> = BTreeMap::new();
    for k in 0..n {
        let Some(prepared) = frames_of(k, &sub)? else { continue };
        for lr in rules {
            let Some(base) = prepared.frames.get(&lr.compiled.source) else {
                continue;
            };
            let ctx = super::plan::PlanContext {
                schema: base.schema(),
                as_of,
                rows: base.height(),
                time_range: None,
                peer_stats: None,
            };
            let lf = super::plan::peer_base(&lr.compiled, base.clone().lazy(), &ctx)
                .map_err(|e| polars_err!(ComputeError: "rule {}: peer statistics: {}", lr.compiled.id, e.message))?;
            groups.entry(lr.compiled.id.clone()).or_default().push(lf.collect()?);
        }
    }
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
    let (apps, present, files) = (inputs.apps, inputs.present, inputs.files);
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
    // The inputs of merchant partition `k`: its applications and the rows
    // spilled under its merchants.
    let merchant_inputs = |k: usize| -> PolarsResult<BTreeMap<InputKind, DataFrame>> {
        let mut frames: BTreeMap<InputKind, DataFrame> = BTreeMap::new();
        let mask: BooleanChunked = app_parts.iter().map(|p| *p == k).collect();
        frames.insert(InputKind::Applications, apps.filter(&mask)?);
        for kind in [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges] {
            if !present.contains(&kind) {
                continue;
            }
            if let Some(df) = spill.read(kind, "merchant_id", k)?.or_else(|| empty_of(kind)) {
                frames.insert(kind, df);
            }
        }
        Ok(frames)
    };
    // A merchant partition's prepared frames; None when it has no rows at all.
    let merchant_frames = |k: usize, sub: &RulePack| -> PolarsResult<Option<Prepared>> {
        let frames = merchant_inputs(k)?;
        if frames.values().all(|df| df.height() == 0) {
            return Ok(None);
        }
        prepare_part(frames, refs, as_of, &Some(names_used(sub)), period_start, true).map(Some)
    };
    let peer_stats = peer_statistics(&peer_rules, n, &merchant_frames, as_of)?;
    // Every partition of a split has the same schema: each rule resolves once.
    let probes = super::Probes::default();
    for (split, rules) in by_split {
        let sub = sub_pack(rules);
        let needed = Some(names_used(&sub));
        let partitions = if split == Split::Whole { 1 } else { n };
        for k in 0..partitions {
            let mut frames: BTreeMap<InputKind, DataFrame> = BTreeMap::new();
            match &split {
                Split::Merchant => frames = merchant_inputs(k)?,
                Split::Key(key) => {
                    frames.insert(InputKind::Applications, apps.clone());
                    for kind in sub.rules.iter().map(|r| r.compiled.source).collect::<BTreeSet<_>>() {
                        if let Some(df) = spill.read(kind, key, k)?.or_else(|| empty_of(kind)) {
                            frames.insert(kind, df);
                        }
                    }
                }
                Split::Whole => {
                    frames.insert(InputKind::Applications, apps.clone());
                    // An aggregate over a whole input (no key) needs every
                    // row at once: all its partitions, back in file order.
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
                            Some(df) => df.sort([SRC_COL, LINE_COL], SortMultipleOptions::default())?,
                            None => match empty_of(kind) {
                                Some(df) => df,
                                None => continue,
                            },
                        };
                        frames.insert(kind, all);
                    }
                }
            }
            // A partition with no rows has no findings: evaluate only the
            // first (so every rule reports how it ran), skip the rest.
            let no_rows = frames
                .iter()
                .filter(|(kind, _)| !(matches!(split, Split::Key(_)) && **kind == InputKind::Applications))
                .all(|(_, df)| df.height() == 0);
            if no_rows && k > 0 {
                continue;
            }
            let prepared = prepare_part(frames, refs, as_of, &needed, period_start, true)?;
            let (fs, rs) = super::run_with_peers(&sub, &prepared, files, as_of, &|_| {}, &peer_stats, &probes);
            absorb(fs, rs);
        }
    }
    let mut runs: Vec<RuleRun> = runs.into_values().collect();
    runs.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    for r in &runs {
        done(r);
    }
    finish(&mut findings);
    Ok((findings, runs))
}
