//! `posaudit scan`: the whole run, from finding the inputs to the exit
//! code. The steps live beside it: `inputs` (find, check, parse),
//! `pack` (the rules, checked), `evaluate` / `engine::partition` (the
//! rules on the data), `write` (outputs, manifest, exit code).

use std::collections::BTreeMap;
use std::time::Instant;

use polars::prelude::{BooleanChunked, DataFrame, DataType, PlHashSet, PolarsResult};

use super::cases::{cases, load_scoring, rows_named, CaseData};
use super::evaluate::evaluate;
use super::inputs::{plan_inputs, read_inputs};
use super::memory;
pub use super::options::{ScanOptions, DEFAULT_MAX_FINDINGS};
use super::pack::{check_loaded, checked_pack, load_pack, load_references, mcc_table_gaps};
use super::triage;
use super::write::{output_targets, write_outputs, Written};
use crate::engine;
use crate::findings::lang::localize;
use crate::findings::Finding;
use crate::input::{self, InputError, InputKind};
use crate::output::manifest::Manifest;
use crate::output::progress::Progress;
use crate::rules::load::{self, RuleIssue};
use crate::Error;

pub struct ScanOutcome {
    pub exit_code: i32,
    pub manifest: Manifest,
    pub runs: Vec<engine::RuleRun>,
    /// What the officer sees (suppressed findings included, marked).
    pub findings: Vec<Finding>,
    /// Findings of shadow rules.
    pub shadow: Vec<Finding>,
    /// Cases per merchant, ranked (empty without a scoring file).
    pub cases: Vec<crate::findings::cases::Case>,
    pub warnings: Vec<RuleIssue>,
}

pub fn scan_with(opts: &ScanOptions, progress: &Progress) -> Result<ScanOutcome, Error> {
    let started = Instant::now();
    let resolved;
    let opts = match fit_memory(opts, progress) {
        Some(partitions) => {
            resolved = ScanOptions {
                partitions,
                ..opts.clone()
            };
            &resolved
        }
        None => opts,
    };
    let targets = output_targets(opts)?;
    engine::set_max_hits(opts.max_findings);
    // A pack that does not parse is reported before anything is read.
    // The pack is loaded once; a pack that does not parse stops the run
    // before any input is touched.
    let loaded = load_pack(&opts.rules);
    if !loaded.issues.is_empty() {
        check_loaded(loaded, &BTreeMap::new(), opts.as_of)?;
        unreachable!("a pack with issues does not check");
    }
    // Keys whose values the spill counts, to carry fewer rows (`counted_keys`).
    let counted = engine::partition::counted_keys(&loaded.pack);
    let mut loaded = Some(loaded);
    let mut checked = None;
    let mut triage_inputs = None;
    let mut scoring = None;
    remove_stale_spills(opts, progress);
    for (path, bytes) in super::write::remove_stale_staged(opts, &targets) {
        progress.warn(&format!(
            "removed {} ({}), an output an earlier scan was writing when it was killed",
            path.display(),
            memory::size(bytes)
        ));
    }
    // A partitioned read goes without huge pages; its passes have them.
    crate::alloc::huge_pages(opts.partitions <= 1 && crate::alloc::ALLOW_THP);
    let spill = if opts.partitions > 1 {
        std::fs::create_dir_all(&opts.out).map_err(|e| Error::Output(opts.out.clone(), e))?;
        Some(
            engine::partition::Spill::new(opts.partitions, Some(&opts.out))
                .map_err(|e| Error::Output(opts.out.clone(), e))?
                .counting(counted),
        )
    } else {
        None
    };
    let keep: &input::FileSink = &|_, _, df| Ok(Some(df));
    let to_disk = |kind, file, df| match &spill {
        Some(sp) => sp
            .sink(kind, file, df)
            .map_err(|e| InputError::Internal(format!("spilling a partition: {e}"))),
        None => Ok(Some(df)),
    };
    let sink: &input::FileSink = if spill.is_some() { &to_disk } else { keep };
    let mut inputs = read_inputs(opts, progress, sink, |extras| {
        let c = check_loaded(loaded.take().expect("checked once"), extras, opts.as_of)?;
        triage_inputs = Some(triage::prepare(opts, &c.0)?);
        scoring = load_scoring(&c.0)?;
        checked = Some(c);
        Ok(())
    })?;
    let (pack, mut warnings) = checked.expect("rules are checked before data is read");
    let triage_inputs = triage_inputs.expect("prepared with the rules");
    let refs = load_references(&inputs.plan, &opts.rules, &opts.reference)?;
    if let Some(apps) = inputs.loaded.frames.get(&InputKind::Applications) {
        warnings.extend(mcc_table_gaps(apps, &refs));
    }
    let mut case_data = CaseData::default();
    let (findings, mut runs) = match &spill {
        None => {
            let frames = std::mem::take(&mut inputs.loaded.frames);
            // The ids and amounts as prepared, with where each row came
            // from: of repeated ids, cases take the last in the input.
            let keep: &[&str] = if scoring.is_some() {
                case_data = CaseData::with_names(frames.get(&InputKind::Applications));
                &["txn_id", "amount", crate::input::SRC_COL, crate::input::LINE_COL]
            } else {
                &[]
            };
            let (findings, runs, kept) = evaluate(&pack, &refs, frames, &inputs.loaded.stats, opts.as_of, progress, keep)?;
            case_data.txns.extend(kept);
            (findings, runs)
        }
        Some(sp) => {
            let started = Instant::now();
            let apps = inputs
                .loaded
                .frames
                .get(&InputKind::Applications)
                .cloned()
                .ok_or_else(|| Error::Internal("no applications".into()))?;
            let present = inputs.plan.files.keys().copied().collect();
            let bar = progress.rules(pack.rules.len() as u64);
            let tally = engine::partition::Tally::default();
            crate::alloc::huge_pages(crate::alloc::ALLOW_THP);
            let held = crate::alloc::HoldFreed::under_peak();
            super::evaluate::note_held(progress, &held);
            let r = engine::in_pool(|| {
                let data = engine::partition::Inputs {
                    apps: &apps,
                    present: &present,
                    files: &inputs.loaded.stats,
                    tally: &tally,
                };
                engine::partition::run(&pack, &refs, &data, sp, opts.as_of, &|r| progress.rule_done(&bar, r))
            })
            .map_err(|e| Error::Internal(e.to_string()))?;
            drop(held);
            bar.finish_and_clear();
            progress.phase("partitions", started.elapsed(), &format!("({} partitions)", sp.n));
            for (step, took, times) in tally.steps() {
                progress.note(&format!("  {step}: {:.2} s ({times}x)", took.as_secs_f64()));
            }
            if let Some(s) = &scoring {
                case_data = CaseData::with_names(Some(&apps));
                let cash = s.scoring.cash_out_rules();
                // Amounts come back from the spill only when a cash-out
                // signal fired, and only for the rows those findings name:
                // every row's id and amount was the partitioned scan's
                // peak (1.5 GB at 10M rows).
                let named: PlHashSet<&str> =
                    r.0.iter()
                        .filter(|f| cash.contains(f.rule_id.as_str()))
                        .flat_map(|f| f.txn_ids.iter().map(String::as_str))
                        .collect();
                if !named.is_empty() {
                    let named_rows = |df: &DataFrame| -> PolarsResult<BooleanChunked> {
                        Ok(rows_named(df.column("txn_id")?.cast(&DataType::String)?.str()?, &named))
                    };
                    for k in 0..sp.n {
                        let rows = sp
                            .rows_where(InputKind::Transactions, "merchant_id", k, &["txn_id", "amount"], named_rows)
                            .map_err(|e| Error::Internal(e.to_string()))?;
                        case_data.txns.extend(rows.and_then(|df| df.select(["txn_id", "amount"]).ok()));
                    }
                }
            }
            r
        }
    };
    if findings.len() > opts.max_findings {
        return Err(Error::Usage(format!(
            "the rules found {} findings, more than --max-findings ({}); nothing was written. Check the rules that found most (run with --verbose), or raise the limit",
            findings.len(),
            opts.max_findings
        )));
    }
    let finishing = Instant::now();
    let mut triaged = triage::apply(&triage_inputs, findings, &mut runs, opts.as_of);
    localize(&mut triaged.findings, opts.lang);
    localize(&mut triaged.shadow, opts.lang);
    if let Some(s) = &scoring {
        triaged.cases = cases(s, &triaged.findings, &case_data);
    }
    let stats = inputs.loaded.stats.clone();
    let (exit_code, manifest) = write_outputs(
        Written {
            opts,
            targets: &targets,
            pack: &pack,
            refs: &refs,
            inputs: &inputs,
            stats,
            started,
            scoring: scoring.as_ref(),
        },
        &triaged,
        &runs,
    )?;
    progress.phase("triage, cases and outputs", finishing.elapsed(), "");
    Ok(ScanOutcome {
        exit_code,
        manifest,
        runs,
        findings: triaged.findings,
        shadow: triaged.shadow,
        cases: triaged.cases,
        warnings,
    })
}

/// Spill folders that partitioned scans killed before their end left in
/// `--out` (sealed, but as large as the data): removed by any scan into it,
/// with a warning (`engine::spill_folder`).
fn remove_stale_spills(opts: &ScanOptions, progress: &Progress) {
    for stale in engine::spill_folder::remove_stale(&opts.out) {
        progress.warn(&format!(
            "removed {} ({}), the spill folder of an earlier scan that was killed before it ended",
            stale.path.display(),
            memory::size(stale.bytes)
        ));
    }
}

/// Before the read: warn when a scan in memory will not fit in the memory
/// free, and resolve `--partitions auto` (`app::memory`). The partitions
/// to use where they are not the options' own. With partitions given,
/// the operator has chosen; where the inputs cannot be listed, the read
/// reports why.
fn fit_memory(opts: &ScanOptions, progress: &Progress) -> Option<usize> {
    let auto = opts.partitions == crate::app::options::AUTO_PARTITIONS;
    if opts.partitions > 1 {
        return None;
    }
    let need = memory::estimate(&plan_inputs(opts).ok()?);
    match (memory::available(), auto) {
        (Some(free), true) => {
            let n = memory::auto_partitions(need, free);
            progress.note(&format!(
                "--partitions auto: about {} in memory, {} free: {}",
                memory::gib(need),
                memory::gib(free),
                if n == 1 {
                    "in memory".to_string()
                } else {
                    format!("{n} partitions")
                }
            ));
            Some(n)
        }
        (None, true) => {
            progress.note("--partitions auto: the memory free is not known: in memory");
            Some(1)
        }
        (Some(free), false) => {
            if let Some(w) = memory::warning(need, free) {
                progress.warn(&w);
            }
            None
        }
        (None, false) => None,
    }
}

/// The findings of a scan, held in memory and written nowhere (`rules eval`).
pub fn findings_only(opts: &ScanOptions) -> Result<(load::RulePack, Vec<Finding>), Error> {
    engine::set_max_hits(opts.max_findings);
    let mut checked = None;
    let mut inputs = read_inputs(opts, &Progress::silent(), &|_, _, df| Ok(Some(df)), |extras| {
        checked = Some(checked_pack(&opts.rules, extras, opts.as_of)?.0);
        Ok(())
    })?;
    let pack = checked.expect("rules are checked before data is read");
    let refs = load_references(&inputs.plan, &opts.rules, &opts.reference)?;
    let frames = std::mem::take(&mut inputs.loaded.frames);
    let (findings, _, _) = evaluate(&pack, &refs, frames, &inputs.loaded.stats, opts.as_of, &Progress::silent(), &[])?;
    Ok((pack, findings))
}
