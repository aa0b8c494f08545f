//! Finding, checking and parsing a scan's inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::options::ScanOptions;
use crate::engine;
use crate::input::cache::ParseCache;
use crate::input::mapping::Mapping;
use crate::input::window::TimeWindow;
use crate::input::{self, InputError, InputKind, InputPlan};
use crate::output::progress::Progress;
use crate::Error;

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
    drop_outside_window(opts, &mut plan)?;
    plan.check_required()?;
    Ok(plan)
}

/// Leave out the transaction files dated outside `--window`.
fn drop_outside_window(opts: &ScanOptions, plan: &mut InputPlan) -> Result<(), InputError> {
    if let Some(w) = window(opts) {
        if let Some(files) = plan.files.get_mut(&InputKind::Transactions) {
            let (keep, skip): (Vec<PathBuf>, Vec<PathBuf>) = files.drain(..).partition(|f| w.may_hold(f));
            if keep.is_empty() && !skip.is_empty() {
                return Err(InputError::Usage(format!(
                    "no transaction file is dated in the window {} to {} ({} files dated outside it)",
                    w.from,
                    w.to,
                    skip.len()
                )));
            }
            *files = keep;
            plan.outside_window = skip;
        }
    }
    Ok(())
}

/// The `--window` of a run, if it has one.
pub(crate) fn window(opts: &ScanOptions) -> Option<TimeWindow> {
    opts.window_days.map(|d| TimeWindow::ending(opts.as_of, d))
}

/// Inputs read once, ready to be evaluated by one pack or several.
pub(crate) struct ReadInputs {
    pub plan: InputPlan,
    pub loaded: input::Loaded,
    /// The parse cache used, if any (evicted after the outputs are written).
    pub cache: Option<ParseCache>,
}

/// Freed memory a partitioned read holds for reuse, at most (MiB). The
/// passes after it reach about 1.5 GB at 10M rows, and hold freed memory
/// under that (`HoldFreed::under_peak`); held under the same 1,536 MiB,
/// the read of the month as typed Parquet reached 1,641 MiB and raised
/// the scan's peak by ~100 MiB; under 1,024 MiB it did not.
const READ_HOLD_MIB: u64 = 1024;

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
    let cache = match &opts.cache {
        Some(c) => {
            Some(ParseCache::open(&c.dir, c.limit).map_err(|e| Error::Usage(format!("{e} (give another --cache-dir, or --no-cache)")))?)
        }
        None => None,
    };
    // A partitioned read parses a big file in parts and spills each part
    // as it is parsed: each part's buffers are freed and the next part's
    // allocated at once. Handed back to the system in between, they came
    // back as fresh pages to fault in and zero: 16% of the read's samples
    // on the 10M-row month in one CSV (perf). Held for reuse under
    // `READ_HOLD_MIB`.
    let held = (opts.partitions > 1).then(|| crate::alloc::HoldFreed::under(READ_HOLD_MIB));
    let loaded = engine::in_pool(|| {
        input::load_with(
            &plan,
            &mapping,
            headers,
            &bar,
            sink,
            cache.as_ref(),
            window(opts).as_ref(),
            opts.partitions > 1,
        )
    })
    .map_err(Error::Input)?;
    drop(held);
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
    Ok(ReadInputs { plan, loaded, cache })
}
