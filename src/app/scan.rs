//! `posaudit scan`: the whole run, from finding the inputs to the exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;

use super::exit;
use super::pack::{check_loaded, checked_pack, load_pack, load_references, mcc_table_gaps};
use crate::engine::{self, prepare, RuleStatus};
use crate::findings::FailOn;
use crate::findings::Finding;
use crate::input::mapping::Mapping;
use crate::input::{self, InputError, InputKind, InputPlan};
use crate::output::manifest::{totals, Counts, Manifest, RulesInfo};
use crate::output::progress::Progress;
use crate::output::{self, atomic::Staged, Format, Target};
use crate::rules::load::{self, RuleIssue};
use crate::Error;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub dir: Option<PathBuf>,
    pub applications: Option<PathBuf>,
    pub transactions: Vec<PathBuf>,
    pub fees: Option<PathBuf>,
    pub fee_changes: Option<PathBuf>,
    pub mapping: Option<PathBuf>,
    /// Rule folders; empty means the default (./rules, else built in).
    pub rules: Vec<PathBuf>,
    pub out: PathBuf,
    pub formats: Vec<Format>,
    /// Extra outputs at paths of the user's choosing (`--output FORMAT=PATH`).
    pub outputs: Vec<Target>,
    pub as_of: NaiveDate,
    pub fail_on: FailOn,
    pub threads: usize,
    /// Reference tables named on the command line (they replace the pack's).
    pub reference: Vec<PathBuf>,
    /// Evaluate in this many partitions, spilling parsed rows to disk
    /// (1: everything in memory).
    pub partitions: usize,
    /// Findings one rule, and the whole run, may produce (see `--max-findings`).
    pub max_findings: usize,
}

/// The default of `--max-findings`.
pub const DEFAULT_MAX_FINDINGS: usize = 1_000_000;

/// Every output path of a scan, each once: two outputs at one path would
/// overwrite each other.
fn output_targets(opts: &ScanOptions) -> Result<Vec<Target>, Error> {
    let mut targets: Vec<Target> = opts
        .formats
        .iter()
        .map(|f| Target {
            format: *f,
            path: opts.out.join(f.file_name()),
        })
        .collect();
    targets.extend(opts.outputs.iter().cloned());
    targets.sort_by(|a, b| a.path.cmp(&b.path));
    targets.dedup();
    let key = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen: BTreeMap<PathBuf, Format> = BTreeMap::new();
    for fixed in ["rejected.csv", "manifest.json"] {
        seen.insert(key(&opts.out.join(fixed)), Format::Jsonl);
    }
    for t in &targets {
        let k = key(&t.path);
        if let Some(other) = seen.get(&k) {
            let what = if k.ends_with("rejected.csv") || k.ends_with("manifest.json") {
                "a file every scan writes".to_string()
            } else {
                format!("the {} output", format!("{other:?}").to_lowercase())
            };
            return Err(Error::Usage(format!(
                "--output {}={}: that path is already {what}; give each output its own path",
                format!("{:?}", t.format).to_lowercase(),
                t.path.display()
            )));
        }
        seen.insert(k, t.format);
    }
    Ok(targets)
}

pub struct ScanOutcome {
    pub exit_code: i32,
    pub manifest: Manifest,
    pub runs: Vec<engine::RuleRun>,
    pub findings: Vec<Finding>,
    pub warnings: Vec<RuleIssue>,
}

/// Which files to read: the folder's conventional names, then flags.
pub(crate) fn plan_inputs(opts: &ScanOptions) -> Result<InputPlan, InputError> {
    let mut plan = match &opts.dir {
        Some(d) => InputPlan::discover(d)?,
        None => InputPlan::default(),
    };
    let mut set = |kind: InputKind, paths: Vec<PathBuf>| {
        if !paths.is_empty() {
            plan.files.insert(kind, paths);
        }
    };
    set(InputKind::Applications, opts.applications.iter().cloned().collect());
    let mut txns = Vec::new();
    for t in &opts.transactions {
        txns.extend(input::expand_path(t)?);
    }
    set(InputKind::Transactions, txns);
    set(InputKind::Fees, opts.fees.iter().cloned().collect());
    set(InputKind::FeeChanges, opts.fee_changes.iter().cloned().collect());
    if let Some(m) = &opts.mapping {
        plan.mapping = Some(m.clone());
    }
    for (kind, files) in &plan.files {
        for f in files {
            if !f.is_file() {
                return Err(InputError::Io {
                    path: f.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("{kind} file not found")),
                });
            }
        }
    }
    plan.check_required()?;
    Ok(plan)
}

/// Inputs read once, ready to be evaluated by one pack or several.
pub(crate) struct ReadInputs {
    pub plan: InputPlan,
    pub loaded: input::Loaded,
}

/// Find, check and parse the inputs. Headers are checked first, so a
/// missing column stops the run before any data is parsed; `check_rules`
/// runs between the two, when the schema is known but no data is read.
pub(crate) fn read_inputs(
    opts: &ScanOptions,
    progress: &Progress,
    sink: &input::FileSink,
    check_rules: impl FnOnce(&BTreeMap<InputKind, Vec<String>>) -> Result<(), Error>,
) -> Result<ReadInputs, Error> {
    let plan = plan_inputs(opts).map_err(Error::Input)?;
    let mapping = match &plan.mapping {
        Some(p) => Mapping::load(p).map_err(Error::Input)?,
        None => Mapping::default(),
    };
    let headers = input::read_headers(&plan, &mapping).map_err(Error::Input)?;
    let extras: BTreeMap<InputKind, Vec<String>> = headers
        .iter()
        .map(|(k, hs)| {
            let mut names: Vec<String> = hs.iter().flat_map(|h| h.extras.iter().map(|(_, n)| n.clone())).collect();
            names.sort();
            names.dedup();
            (*k, names)
        })
        .collect();
    check_rules(&extras)?;
    let started = Instant::now();
    let bar = progress.reading(input::total_bytes(&plan));
    let loaded = engine::in_pool(|| input::load_with(&plan, &mapping, headers, &bar, sink)).map_err(Error::Input)?;
    bar.finish_and_clear();
    let rows: u64 = loaded.stats.iter().map(|s| s.rows_read).sum();
    progress.phase(
        "read inputs",
        started.elapsed(),
        &format!(
            "({rows} rows, {:.0} rows/s)",
            rows as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ),
    );
    Ok(ReadInputs { plan, loaded })
}

/// Evaluate a pack on parsed input frames with the given reference tables.
/// The frames are consumed: columns no rule reads are freed before the
/// rules run (give a clone to evaluate the same inputs again).
pub fn evaluate(
    pack: &load::RulePack,
    refs: &input::reference::References,
    frames: BTreeMap<InputKind, polars::prelude::DataFrame>,
    stats: &[input::FileStats],
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<(Vec<Finding>, Vec<engine::RuleRun>), Error> {
    let started = Instant::now();
    let prepared = engine::in_pool(|| prepare::prepare(frames, refs, as_of, &Some(prepare::names_used(pack))))
        .map_err(|e| Error::Internal(e.to_string()))?;
    progress.phase("derived columns and joins", started.elapsed(), "");
    for (step, took) in &prepared.steps {
        progress.phase(&format!("  {step}"), *took, "");
    }
    for (kind, df) in &prepared.frames {
        progress.note(&format!(
            "  {kind}: {} rows, {} columns, {:.0} MB in memory",
            df.height(),
            df.width(),
            df.estimated_size() as f64 / 1e6
        ));
    }
    let started = Instant::now();
    let bar = progress.rules(pack.rules.len() as u64);
    let result = engine::run_observed(pack, &prepared, stats, as_of, &|r| progress.rule_done(&bar, r));
    bar.finish_and_clear();
    progress.phase("rules", started.elapsed(), &format!("({} rules)", pack.rules.len()));
    Ok(result)
}

pub fn scan_with(opts: &ScanOptions, progress: &Progress) -> Result<ScanOutcome, Error> {
    let started = Instant::now();
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
    let mut loaded = Some(loaded);
    let mut checked = None;
    let spill = if opts.partitions > 1 {
        let pack = &loaded.as_ref().expect("loaded above").pack;
        std::fs::create_dir_all(&opts.out).map_err(|e| Error::Output(opts.out.clone(), e))?;
        Some(engine::partition::Spill::new(pack, opts.partitions, Some(&opts.out)).map_err(|e| Error::Output(opts.out.clone(), e))?)
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
        checked = Some(check_loaded(loaded.take().expect("checked once"), extras, opts.as_of)?);
        Ok(())
    })?;
    let (pack, mut warnings) = checked.expect("rules are checked before data is read");
    let refs = load_references(&inputs.plan, &opts.rules, &opts.reference)?;
    if let Some(apps) = inputs.loaded.frames.get(&InputKind::Applications) {
        warnings.extend(mcc_table_gaps(apps, &refs));
    }
    let (findings, runs) = match &spill {
        None => {
            let frames = std::mem::take(&mut inputs.loaded.frames);
            evaluate(&pack, &refs, frames, &inputs.loaded.stats, opts.as_of, progress)?
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
            let r = engine::in_pool(|| {
                let data = engine::partition::Inputs {
                    apps: &apps,
                    present: &present,
                    files: &inputs.loaded.stats,
                };
                engine::partition::run(&pack, &refs, &data, sp, opts.as_of, &|r| progress.rule_done(&bar, r))
            })
            .map_err(|e| Error::Internal(e.to_string()))?;
            bar.finish_and_clear();
            progress.phase("partitions", started.elapsed(), &format!("({} partitions)", sp.n));
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
    let stats = inputs.loaded.stats.clone();
    let rejected = &inputs.loaded.rejected;
    let plan = &inputs.plan;

    let failed = runs.iter().any(|r| r.status == RuleStatus::Failed);
    let exit_code = if failed {
        exit::ERROR
    } else if match opts.fail_on {
        FailOn::Never => false,
        FailOn::At(s) => findings.iter().any(|f| f.severity >= s),
    } {
        exit::FINDINGS
    } else {
        exit::CLEAN
    };

    let mut staged = Staged::new(&opts.out).map_err(|e| Error::Output(opts.out.clone(), e))?;
    let mut outputs = Vec::new();
    let out_err = |p: &Path, e| Error::Output(p.to_path_buf(), e);
    for t in &targets {
        let path = staged
            .write_path(&t.path, |w| match t.format {
                Format::Jsonl => output::findings_out::write_jsonl(&findings, w),
                Format::Csv => output::findings_out::write_csv(&findings, w),
                Format::Parquet => output::findings_out::write_parquet(&findings, w),
                Format::Sarif => {
                    serde_json::to_writer_pretty(&mut *w, &output::sarif::scan(&findings, &pack)).map_err(std::io::Error::other)
                }
                Format::Junit => output::junit::scan(&runs, &findings, opts.fail_on)
                    .serialize(&mut *w)
                    .map_err(std::io::Error::other),
            })
            .map_err(|e| out_err(&t.path, e))?;
        outputs.push(path.display().to_string());
    }
    let path = staged
        .write("rejected.csv", |w| output::write_rejected(rejected, w))
        .map_err(|e| out_err(&opts.out, e))?;
    outputs.push(path.display().to_string());
    let manifest_path = opts.out.join("manifest.json");
    outputs.push(manifest_path.display().to_string());

    let manifest = Manifest {
        tool: "posaudit",
        version: env!("CARGO_PKG_VERSION"),
        as_of: opts.as_of.to_string(),
        rules: RulesInfo {
            dirs: pack.dirs.clone(),
            files: pack.files.clone(),
            digest: pack.digest.clone(),
            count: pack.rules.len(),
        },
        totals: totals(&stats),
        inputs: stats,
        ignored_files: plan.ignored.iter().map(|p| p.display().to_string()).collect(),
        mapping: plan.mapping.as_ref().map(|p| p.display().to_string()),
        reference_tables: refs.origins.clone(),
        rule_runs: runs.clone(),
        findings: Counts::of(&findings),
        outputs,
        threads: opts.threads,
        fail_on: opts.fail_on.to_string(),
        exit_code,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    staged
        .write("manifest.json", |w| {
            serde_json::to_writer_pretty(&mut *w, &manifest)?;
            w.write_all(b"\n")
        })
        .map_err(|e| out_err(&opts.out, e))?;
    staged.commit().map_err(|e| out_err(&opts.out, e))?;
    Ok(ScanOutcome {
        exit_code,
        manifest,
        runs,
        findings,
        warnings,
    })
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
    let (findings, _) = evaluate(&pack, &refs, frames, &inputs.loaded.stats, opts.as_of, &Progress::silent())?;
    Ok((pack, findings))
}
