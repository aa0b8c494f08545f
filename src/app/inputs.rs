//! Finding, checking and parsing a scan's inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::options::ScanOptions;
use crate::engine;
use crate::input::mapping::Mapping;
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
