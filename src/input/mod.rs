//! Inputs: finding the files, reading them through the mapping, and
//! accounting for every row (accepted or rejected with a reason).

pub mod cache;
pub mod categories;
pub mod mapping;
pub(crate) mod nullable;
mod parquet;
pub mod read;
pub mod records;
pub mod reference;
pub mod typed;
pub mod values;
pub(crate) mod views;
pub mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

pub use crate::contract::InputKind;
use mapping::Mapping;
pub(crate) use parquet::row_count as parquet_rows;
pub use read::{FileStats, Header, LINE_COL, SRC_COL};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not readable as CSV: {message}")]
    Csv { path: PathBuf, message: String },
    #[error("{path}: not readable as Parquet: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: required column `{column}` of the {input} input is missing (rename it in a mapping file if the export calls it something else)")]
    MissingColumn { path: PathBuf, input: InputKind, column: String },
    #[error("{path}: column `{column}` appears twice")]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{path}: column `{column}` takes a name posaudit uses for its own columns (names starting with `_` or `app_`, ending in `_permanent`, or a derived column); rename it in the file or map it in the mapping file")]
    ReservedColumn { path: PathBuf, column: String },
    #[error("{path}: {message}")]
    Encoding { path: PathBuf, message: records::EncodingMismatch },
    #[error("{path}: {message}")]
    BadLink { path: PathBuf, message: String },
    #[error("mapping file {path}: {message}")]
    Mapping { path: PathBuf, message: String },
    /// The file and the mapping disagree (a header the mapping names is
    /// not there, a title pattern finds nothing): `path` is the data file.
    #[error("{path} does not fit the mapping: {message}")]
    NotAsMapped { path: PathBuf, message: String },
    #[error("no {input} input: {hint}")]
    Missing { input: InputKind, hint: String },
    #[error("reference table {source_name}: {message}")]
    Reference { source_name: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("internal error while reading inputs: {0}")]
    Internal(String),
}

/// A row that was not checked, and why. Values of sensitive columns are
/// masked before they get here.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RejectedRow {
    pub input: InputKind,
    pub file: String,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl RejectedRow {
    pub fn new(input: InputKind, file: &str, line: u64, column: &str, value: &str, reason: String) -> Self {
        let cleaned = values::clean(value);
        let masked = crate::mask::mask_value(column, cleaned);
        // Reasons quote the value; quote the masked one for sensitive columns.
        let reason = if masked != cleaned {
            reason.replace(cleaned, &masked)
        } else {
            reason
        };
        // Whatever the column is called, a value shaped like an ID or card
        // number is masked (headers may be swapped or mislabelled).
        use crate::mask::scrub;
        RejectedRow {
            input,
            file: file.to_string(),
            line,
            column: column.to_string(),
            value: scrub(&masked).into_owned(),
            reason: scrub(&reason).into_owned(),
        }
    }
}

/// Which files make up each input.
#[derive(Debug, Clone, Default)]
pub struct InputPlan {
    pub files: BTreeMap<InputKind, Vec<PathBuf>>,
    /// Reference tables found beside the inputs (file name -> path).
    pub reference: BTreeMap<String, PathBuf>,
    pub mapping: Option<PathBuf>,
    /// Transaction files not read: dated (by name) outside `--window`.
    pub outside_window: Vec<PathBuf>,
    /// Files in a scanned folder that are none of the above.
    pub ignored: Vec<PathBuf>,
}

/// Reference table names a scanned folder may hold to replace the pack's.
pub(crate) const REFERENCE_TABLES: &[&str] = &["terminal_models.csv", "mcc.csv", "merchant_type_limits.csv"];

fn is_data_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
        Some("csv" | "parquet" | "pq" | "txt")
    )
}

/// A folder's entries, sorted. An entry that cannot be followed (a broken
/// symbolic link, a link loop, no permission) is an error naming it: a
/// daily file must never drop out of a scan unnoticed.
fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let io = |path: &Path, e| InputError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = e.map_err(|e| io(dir, e))?.path();
        follow(&path)?;
        entries.push(path);
    }
    entries.sort();
    Ok(entries)
}

/// What a path leads to, or an error that says why it leads nowhere.
fn follow(path: &Path) -> Result<std::fs::Metadata, InputError> {
    std::fs::metadata(path).map_err(|e| {
        let what = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(path) {
                Ok(t) => format!("symbolic link to {} cannot be followed ({e})", t.display()),
                Err(_) => format!("symbolic link cannot be followed ({e})"),
            },
            _ => format!("cannot be read ({e})"),
        };
        InputError::BadLink {
            path: path.to_path_buf(),
            message: format!("{what}; remove it or fix the link"),
        }
    })
}

/// Expand a `--transactions` argument: a file, a folder of files, or a glob.
pub(crate) fn expand_path(arg: &Path) -> Result<Vec<PathBuf>, InputError> {
    if arg.is_dir() {
        return Ok(sorted_dir(arg)?.into_iter().filter(|p| p.is_file() && is_data_file(p)).collect());
    }
    if arg.exists() {
        return Ok(vec![arg.to_path_buf()]);
    }
    let pattern = arg.to_string_lossy();
    if pattern.contains(['*', '?', '[']) {
        let mut v: Vec<PathBuf> = Vec::new();
        for entry in glob::glob(&pattern).map_err(|e| InputError::Usage(format!("bad glob `{pattern}`: {e}")))? {
            let p = entry.map_err(|e| InputError::Io {
                path: e.path().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if follow(&p)?.is_file() {
                v.push(p);
            }
        }
        v.sort();
        if v.is_empty() {
            return Err(InputError::Usage(format!("no file matches `{pattern}`")));
        }
        return Ok(v);
    }
    Err(InputError::Io {
        path: arg.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
    })
}

impl InputPlan {
    /// Find the inputs in a folder by their conventional names:
    /// `applications.csv`, `transactions.csv` or `transactions/` or
    /// `transactions_*.csv`, `fees.csv`, `fee_changes.csv` (or `.parquet`),
    /// reference tables by their names, and `mapping.yaml`.
    pub fn discover(dir: &Path) -> Result<InputPlan, InputError> {
        if !dir.is_dir() {
            return Err(InputError::Usage(format!("{} is not a folder", dir.display())));
        }
        let mut plan = InputPlan::default();
        for path in sorted_dir(dir)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            let stem = path.file_stem().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
            if path.is_dir() {
                if stem == "transactions" {
                    plan.files.entry(InputKind::Transactions).or_default().extend(expand_path(&path)?);
                } else {
                    plan.ignored.push(path);
                }
                continue;
            }
            if REFERENCE_TABLES.contains(&name.as_str()) {
                plan.reference.insert(name, path);
                continue;
            }
            if name == "mapping.yaml" || name == "mapping.yml" {
                plan.mapping = Some(path);
                continue;
            }
            let kind = if !is_data_file(&path) {
                None
            } else if stem.starts_with("transactions") {
                Some(InputKind::Transactions)
            } else {
                InputKind::ALL
                    .into_iter()
                    .find(|k| *k != InputKind::Transactions && stem == k.name())
            };
            match kind {
                Some(k) => plan.files.entry(k).or_default().push(path),
                None => plan.ignored.push(path),
            }
        }
        Ok(plan)
    }

    pub(crate) fn check_required(&self) -> Result<(), InputError> {
        for kind in [InputKind::Applications, InputKind::Transactions] {
            if self.files.get(&kind).is_none_or(|v| v.is_empty()) {
                return Err(InputError::Missing {
                    input: kind,
                    hint: format!(
                        "put `{}.csv` in the scanned folder or pass --{}",
                        kind.name(),
                        kind.name().replace('_', "-")
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Everything read from the inputs.
pub struct Loaded {
    pub frames: BTreeMap<InputKind, DataFrame>,
    pub headers: BTreeMap<InputKind, Vec<Header>>,
    /// One entry per file, in `_src` order.
    pub stats: Vec<FileStats>,
    pub rejected: Vec<RejectedRow>,
}

/// Read every header first (cheap), so that a missing column stops the run
/// before any data is parsed.
pub fn read_headers(plan: &InputPlan, mapping: &Mapping) -> Result<BTreeMap<InputKind, Vec<Header>>, InputError> {
    let mut out = BTreeMap::new();
    for (kind, files) in &plan.files {
        let hs = files
            .iter()
            .map(|p| read::read_header(*kind, p, mapping.get(*kind)))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(*kind, hs);
    }
    Ok(out)
}

/// Parse all files in parallel (the caller runs this inside the one thread
/// pool) and concatenate each input's files in file order.
pub fn load(plan: &InputPlan, mapping: &Mapping, headers: BTreeMap<InputKind, Vec<Header>>) -> Result<Loaded, InputError> {
    load_observed(plan, mapping, headers, &indicatif::ProgressBar::hidden())
}

/// Total size of the input files, for a progress bar.
pub(crate) fn total_bytes(plan: &InputPlan) -> u64 {
    plan.files
        .values()
        .flatten()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// As `load`, advancing `progress` by the bytes read.
pub(crate) fn load_observed(
    plan: &InputPlan,
    mapping: &Mapping,
    headers: BTreeMap<InputKind, Vec<Header>>,
    progress: &indicatif::ProgressBar,
) -> Result<Loaded, InputError> {
    load_with(plan, mapping, headers, progress, &|_, _, df| Ok(Some(df)), None, None, false)
}

/// Read one input file, CSV or Parquet by its name, accepting or rejecting
/// every row.
pub(crate) fn read_file(
    kind: InputKind,
    path: &Path,
    display: &str,
    src: u32,
    header: &read::Header,
    mapping: &mapping::InputMapping,
    progress: &indicatif::ProgressBar,
) -> Result<read::ParsedFile, InputError> {
    read_file_to(kind, path, display, src, header, mapping, progress, None, false, 0)
}

/// As `read_file`; a CSV file read in parts has its rows handed to
/// `on_part` part by part, if given (`read::read_csv`; a Parquet file's
/// batches alike). With `coded`, a file's few-valued text columns are
/// parsed as codes (`categories`): a CSV file's as it is parsed, a Parquet
/// file's batch by batch. `scan_bytes`: the size of all the files read
/// beside it (`read::read_csv`).
#[allow(clippy::too_many_arguments)]
fn read_file_to(
    kind: InputKind,
    path: &Path,
    display: &str,
    src: u32,
    header: &read::Header,
    mapping: &mapping::InputMapping,
    progress: &indicatif::ProgressBar,
    on_part: Option<&read::PartSink>,
    coded: bool,
    scan_bytes: u64,
) -> Result<read::ParsedFile, InputError> {
    match read::FileFormat::of(path) {
        read::FileFormat::Csv => read::read_csv(kind, path, display, src, header, mapping, progress, on_part, coded, scan_bytes),
        read::FileFormat::Parquet => {
            let count = |n: u64| progress.inc(n);
            parquet::read_parquet(kind, path, display, src, header, mapping, on_part, &count, coded)
        }
    }
}

/// What to do with each parsed file: keep it in memory (`Some`), or hand
/// it elsewhere (spill to disk) and keep nothing (`None`).
pub(crate) type FileSink<'a> = dyn Fn(InputKind, u32, DataFrame) -> Result<Option<DataFrame>, InputError> + Sync + 'a;

/// As `load_observed`, passing each parsed file through `sink` as soon as
/// it is parsed, so a spilled file never waits in memory for the others.
/// With `by_part`, a big CSV or Parquet file read in parts goes through `sink` part
/// by part as the parts are parsed, so it is never whole in memory either
/// (such a file then bypasses the parse cache, which stores whole files).
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_with(
    plan: &InputPlan,
    mapping: &Mapping,
    headers: BTreeMap<InputKind, Vec<Header>>,
    progress: &indicatif::ProgressBar,
    sink: &FileSink,
    cache: Option<&cache::ParseCache>,
    window: Option<&window::TimeWindow>,
    by_part: bool,
) -> Result<Loaded, InputError> {
    let jobs: Vec<(InputKind, &PathBuf, &Header)> = plan
        .files
        .iter()
        .flat_map(|(k, files)| files.iter().zip(&headers[k]).map(move |(p, h)| (*k, p, h)))
        .collect();
    let scan_bytes: u64 = jobs.iter().map(|(_, path, _)| std::fs::metadata(path).map_or(0, |m| m.len())).sum();
    // The window, then the sink: rows kept in memory, and rows the window left out.
    let through = |kind: InputKind, i: usize, df: DataFrame| -> Result<(Option<DataFrame>, u64), InputError> {
        let (df, out) = match (window, kind) {
            (Some(w), InputKind::Transactions) => w.keep(df, kind.time_column()).map_err(|e| InputError::Internal(e.to_string()))?,
            _ => (df, 0),
        };
        Ok((sink(kind, i as u32, df)?, out))
    };
    let parsed = jobs
        .par_iter()
        .enumerate()
        .map(|(i, (kind, path, header))| {
            let display = path.to_string_lossy().to_string();
            let m = mapping.get(*kind);
            // Few-valued text as codes from the parse on (`categories`),
            // spilled rows too: the spill writes the codes and reads them
            // back into the same categories (`engine::narrow::to_codes`).
            // Spilled as text, every text column was tried for a
            // dictionary by the spill's writer and coded again per
            // partition: 10M rows in one CSV with `--partitions 8`, four
            // interleaved pairs, CPU 92.8 to 88.4 s and peak 1,413 to
            // 1,327 MiB (medians).
            let by_part = by_part && read::read_in_parts(path, m);
            // What the parts handed on left in memory, and the window left out.
            let kept: std::sync::Mutex<(Option<DataFrame>, u64)> = std::sync::Mutex::new((None, 0));
            let on_part = |df: DataFrame| -> Result<(), InputError> {
                let (df, out) = through(*kind, i, df)?;
                let mut k = kept.lock().map_err(|_| InputError::Internal("a reading thread panicked".into()))?;
                k.1 += out;
                match (&mut k.0, df) {
                    (_, None) => {}
                    (None, Some(df)) => k.0 = Some(df),
                    (Some(acc), Some(df)) => {
                        acc.vstack_mut_owned(df).map_err(|e| InputError::Internal(e.to_string()))?;
                    }
                }
                Ok(())
            };
            let on_part: Option<&read::PartSink> = if by_part { Some(&on_part) } else { None };
            let parse = || read_file_to(*kind, path, &display, i as u32, header, m, progress, on_part, true, scan_bytes);
            let mut file = match cache.filter(|_| !by_part) {
                Some(c) => c.read_file(*kind, path, &display, i as u32, header, m, progress, true, parse)?,
                None => parse()?,
            };
            if file.streamed {
                let (kept, out) = kept
                    .into_inner()
                    .map_err(|_| InputError::Internal("a reading thread panicked".into()))?;
                file.stats.rows_accepted -= out;
                file.stats.rows_outside_window += out;
                return Ok((kept, file.stats, file.rejected));
            }
            // The window applies after the cache: one cached file serves
            // every window that reaches it.
            let (mut kept, out) = through(*kind, i, std::mem::take(&mut file.df))?;
            if let Some(df) = &mut kept {
                // Cached files come as text.
                categories::code(df, *kind, &[]).map_err(|e| InputError::Internal(e.to_string()))?;
            }
            file.stats.rows_accepted -= out;
            file.stats.rows_outside_window += out;
            Ok((kept, file.stats, file.rejected))
        })
        .collect::<Result<Vec<_>, InputError>>();
    // The values entered while parsing are not looked up again: their
    // tables (some 60 MiB for the 10M-row month) would otherwise stay
    // through the rules, where the scan's peak is; nor after a failed
    // read, in a process that goes on (the rule tests' many scans).
    categories::forget_entered();
    let parsed = parsed?;

    let mut frames: BTreeMap<InputKind, DataFrame> = BTreeMap::new();
    let mut stats = Vec::new();
    let mut rejected = Vec::new();
    for ((kind, _, _), (kept, file_stats, file_rejected)) in jobs.iter().zip(parsed) {
        stats.push(file_stats);
        rejected.extend(file_rejected);
        let Some(file_df) = kept else { continue };
        match frames.get_mut(kind) {
            None => {
                frames.insert(*kind, file_df);
            }
            Some(df) => {
                let aligned = align(df, file_df).map_err(|e| InputError::Internal(e.to_string()))?;
                df.vstack_mut_owned(aligned).map_err(|e| InputError::Internal(e.to_string()))?;
            }
        }
    }
    // One column at a time: rechunking all columns at once (in parallel)
    // held two copies of every input, the largest peak of a scan. Not the
    // transactions: preparation drops the columns no rule reads and makes
    // one chunk of each other column as it puts them in merchant order
    // (`engine::row_order::reorder`), a column's copy freed before the
    // next is made. On the 10M-row month in one CSV (session 50, three
    // interleaved pairs) the read took 16.4/16.9/15.0 s instead of
    // 18.7/18.2/17.2 s and the scan 38.4/40.5/36.6 s instead of
    // 40.3/41.8/37.5 s, at the same peak.
    for (kind, df) in frames.iter_mut() {
        if *kind != InputKind::Transactions {
            df.rechunk_mut();
        }
    }
    Ok(Loaded {
        frames,
        headers,
        stats,
        rejected,
    })
}

/// Files of one input can differ in optional and extra columns: give the
/// new frame exactly the first frame's columns (nulls where it lacks one).
/// Money held as units (`checks::held`) is Int32 in a frame whose values
/// all fit and Int64 in another: the first frame's column is widened,
/// never the next's narrowed (a cast that does not fit gives a null).
pub(crate) fn align(first: &mut DataFrame, next: DataFrame) -> PolarsResult<DataFrame> {
    for c in next.columns() {
        match first.column(c.name()).map(|f| f.dtype().clone()) {
            Err(_) => {
                let nulls = Column::full_null(c.name().clone(), first.height(), c.dtype());
                first.with_column(nulls)?;
            }
            Ok(DataType::Int32) if c.dtype() == &DataType::Int64 => {
                let wide = first.column(c.name())?.cast(&DataType::Int64)?;
                first.with_column(wide)?;
            }
            Ok(_) => {}
        }
    }
    let h = next.height();
    let cols = first
        .columns()
        .iter()
        .map(|c| match next.column(c.name()) {
            Ok(n) => n.cast(c.dtype()),
            Err(_) => Ok(Column::full_null(c.name().clone(), h, c.dtype())),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(h, cols)
}
