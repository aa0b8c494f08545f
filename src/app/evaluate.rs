//! Evaluating a pack on inputs read once, in memory.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;

use crate::engine::{self, prepare};
use crate::findings::Finding;
use crate::input::{self, InputKind};
use crate::output::progress::Progress;
use crate::rules::load;
use crate::Error;

/// Findings, rule runs, and the prepared columns kept (`evaluate`).
pub type Evaluated = (Vec<Finding>, Vec<engine::RuleRun>, Option<polars::prelude::DataFrame>);

/// Evaluate a pack on parsed input frames with the given reference tables.
/// The frames are consumed: columns no rule reads are freed before the
/// rules run (give a clone to evaluate the same inputs again).
///
/// Also returns the prepared transactions' columns `keep` names (those
/// of them it has), as the rules saw them: held money, rows in merchant
/// order. Taken from the prepared frame, they share its memory; taken
/// from the parsed frames, they held the parsed columns (the ids' 171 MB
/// at 10M rows) beside their prepared copies.
pub fn evaluate(
    pack: &load::RulePack,
    refs: &input::reference::References,
    frames: BTreeMap<InputKind, polars::prelude::DataFrame>,
    stats: &[input::FileStats],
    as_of: NaiveDate,
    progress: &Progress,
    keep: &[&str],
) -> Result<Evaluated, Error> {
    let started = Instant::now();
    let prepared = engine::in_pool(|| prepare::prepare(frames, refs, as_of, &Some(prepare::names_used(pack))))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let kept = match (keep.is_empty(), prepared.frames.get(&InputKind::Transactions)) {
        (false, Some(df)) => {
            let present: Vec<&str> = keep.iter().copied().filter(|c| df.schema().contains(c)).collect();
            Some(df.select(present).map_err(|e| Error::Internal(e.to_string()))?)
        }
        _ => None,
    };
    progress.phase("derived columns and joins", started.elapsed(), "");
    for (step, took, peak) in &prepared.steps {
        let peak = peak.map(|p| format!(" (peak so far {p} MiB)")).unwrap_or_default();
        progress.note(&format!("  {step}: {:.2} s{peak}", took.as_secs_f64()));
    }
    for (kind, df) in &prepared.frames {
        let apps = prepared
            .joined
            .get(kind)
            .map(|j| format!(" (+ {} application columns, gathered per rule)", j.width()))
            .unwrap_or_default();
        // Where the memory is: the largest columns.
        let mut sizes: Vec<(usize, &str)> = df
            .columns()
            .iter()
            .map(|c| (engine::lifetimes::held_bytes(c.as_materialized_series()), c.name().as_str()))
            .collect();
        progress.note(&format!(
            "  {kind}: {} rows, {} columns, {:.0} MB in memory{apps}",
            df.height(),
            df.width(),
            sizes.iter().map(|(b, _)| *b).sum::<usize>() as f64 / 1e6
        ));
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let largest: Vec<String> = sizes
            .iter()
            .take(8)
            .filter(|(size, _)| *size >= 1_000_000)
            .map(|(size, name)| format!("{name} {:.0}", *size as f64 / 1e6))
            .collect();
        if !largest.is_empty() {
            progress.note(&format!("    largest columns (MB): {}", largest.join(", ")));
        }
    }
    let started = Instant::now();
    let bar = progress.rules(pack.rules.len() as u64);
    let held = crate::alloc::HoldFreed::under_peak();
    note_held(progress, &held);
    let result = engine::run_releasing(pack, prepared, stats, as_of, &|r| progress.rule_done(&bar, r));
    drop(held);
    bar.finish_and_clear();
    progress.phase("rules", started.elapsed(), &format!("({} rules)", pack.rules.len()));
    Ok((result.0, result.1, kept))
}

/// Say under what ceiling freed memory is held (`--verbose`).
pub(crate) fn note_held(progress: &Progress, held: &crate::alloc::HoldFreed) {
    if let Some(mib) = held.ceiling_mib() {
        progress.note(&format!("  freed memory held for reuse under {mib} MiB"));
    }
}
