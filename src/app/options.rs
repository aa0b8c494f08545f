//! What a scan is asked to do: the command line's options as the library
//! takes them.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::findings::FailOn;
use crate::output::{Format, Target};

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
