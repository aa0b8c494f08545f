//! What a scan is asked to do: the command line's options as the library
//! takes them.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::findings::lang::Lang;
use crate::findings::{FailOn, FailPolicy};
use crate::output::{Format, Target};
use crate::rules::model::Severity;

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
    /// With a baseline: exit 1 on a new finding at or above this severity.
    pub fail_on_new: Option<Severity>,
    /// A previous run's output folder or findings file (`--baseline`).
    pub baseline: Option<PathBuf>,
    /// The officer's exceptions (`--exceptions`; default `exceptions.yaml`
    /// in a rules folder).
    pub exceptions: Option<PathBuf>,
    /// Keep parsed input files between runs (`--cache-dir`, `--no-cache`).
    pub cache: Option<CacheOptions>,
    /// Read only transactions dated in the N days ending `as_of` (`--window`).
    pub window_days: Option<u32>,
    /// The language of messages, the summary, the report and the workbook.
    pub lang: Lang,
    /// Rules run in shadow besides those the pack marks `status: shadow`.
    pub shadow: Vec<String>,
    pub threads: usize,
    /// Reference tables named on the command line (they replace the pack's).
    pub reference: Vec<PathBuf>,
    /// Evaluate in this many partitions, spilling parsed rows to disk
    /// (1: everything in memory; `AUTO_PARTITIONS`: as many as the inputs
    /// need for the memory free, `app::memory`).
    pub partitions: usize,
    /// Findings one rule, and the whole run, may produce (see `--max-findings`).
    pub max_findings: usize,
}

#[derive(Debug, Clone)]
pub struct CacheOptions {
    pub dir: PathBuf,
    /// Bytes the folder may hold after a run (least recently used go first).
    pub limit: u64,
}

impl ScanOptions {
    pub fn fail_policy(&self) -> FailPolicy {
        FailPolicy {
            at: self.fail_on,
            new_at: self.fail_on_new,
        }
    }
}

/// The most partitions `--partitions` takes.
pub const MAX_PARTITIONS: usize = 1024;

/// `--partitions auto`: chosen before the read from the inputs' sizes and
/// the memory free (`app::memory`).
pub const AUTO_PARTITIONS: usize = 0;

/// The default of `--max-findings`.
pub const DEFAULT_MAX_FINDINGS: usize = 1_000_000;
