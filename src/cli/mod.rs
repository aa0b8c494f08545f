//! Command-line interface (clap). Parsing only: the work is in the library.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use posaudit::app::options::MAX_PARTITIONS;
use posaudit::findings::FailOn;
use posaudit::output::Format;
use posaudit::rules::model::Severity;

#[derive(Debug, Parser)]
#[command(
    name = "posaudit",
    version,
    about = "Risk and compliance checks for POS merchant acquiring: YAML rules over merchant applications and transaction exports",
    after_help = "Exit codes: 0 clean (nothing at or above --fail-on), 1 findings at or above --fail-on, 2 usage, input or internal error, 3 invalid rules."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan applications and transaction exports and write findings.
    Scan(Box<ScanArgs>),
    /// Work with the rule pack.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Read a new export format: guess its mapping, check it.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Read and check the inputs as a scan does and write the frames the
    /// rules read (derived columns and application columns joined) as
    /// Parquet in --out, with rejected.csv and prepared.json: the map-side
    /// step of the Spark job.
    Prepare(Box<PrepareArgs>),
    /// Write the rule pack for another engine.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Read what another engine's run of the pack found.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Keep the merchants of partition K of N (by a hash of merchant_id):
    /// one map task's share; run K = 0..N-1 into N folders.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<posaudit::app::spark::PrepareScope>,
    /// The first approved purchase of all the data (YYYY-MM-DD HH:MM:SS),
    /// when this run reads only its partition's files (default: the first
    /// in the rows read).
    #[arg(long = "period-start", value_name = "DATETIME", value_parser = parse_datetime)]
    pub period_start: Option<chrono::NaiveDateTime>,
}

fn parse_datetime(s: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").map_err(|e| format!("`{s}`: {e} (expected YYYY-MM-DD HH:MM:SS)"))
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A Spark job: one Spark SQL query per rule, translated from the
    /// compiled rules, and a PySpark driver (exit 3, naming each rule,
    /// when some rule cannot be translated, unless --partial).
    Spark {
        #[command(flatten)]
        rules: RulesArgs,
        /// The job's folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write the rules that translate and name the others.
        #[arg(long)]
        partial: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Turn a Spark run's hits into findings (findings.jsonl in --out),
    /// with the same fingerprints, messages and masking as a scan.
    Spark {
        #[command(flatten)]
        rules: RulesArgs,
        /// The folder `posaudit prepare` wrote.
        #[arg(long, value_name = "DIR")]
        prepared: PathBuf,
        /// The folder the Spark job wrote its hits to.
        #[arg(long, value_name = "DIR")]
        hits: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Guess a mapping from samples of export files (encoding, delimiter,
    /// header row, title and summary lines, columns, units, formats, enum
    /// values), each guess with its confidence and evidence.
    Infer {
        /// Export files (one input each; several files of one input share its section).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The input the files are (default: guessed from their headers).
        #[arg(long = "input", value_name = "INPUT")]
        input: Option<String>,
        /// Write the draft here (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read a whole file through a mapping and print what a scan would
    /// accept and reject, per column, with the first rejected values
    /// (exit 0 when every row reads, 1 when some are rejected).
    Check {
        file: PathBuf,
        #[arg(long, value_name = "FILE")]
        mapping: PathBuf,
        /// The input the file is (default: the one whose header it has).
        #[arg(long = "input", value_name = "INPUT")]
        input: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Rule folder (repeatable). Default: ./rules, else the pack built into the binary.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, family, severity, title.
    List(RulesArgs),
    /// Show one rule in full: conditions, parameters, basis and message.
    Explain {
        id: String,
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Print the rule catalogue (Markdown) generated from the rule files.
    Doc {
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Run every rule's own test cases (exit 1 on a failure).
    Test {
        /// Rule folders (default: ./rules, else the built-in pack).
        dirs: Vec<PathBuf>,
        /// Only rules whose id contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Pass even when no rule has test cases.
        #[arg(long = "allow-empty")]
        allow_empty: bool,
        /// Write the results as JUnit XML too: --output junit=PATH.
        #[arg(long = "output", value_name = "junit=PATH")]
        output: Vec<posaudit::output::Target>,
    },
    /// Show what a change to the pack does to the findings on real data.
    Diff {
        /// The old pack: a folder, or a git revision of the repository holding the rules.
        #[arg(long)]
        base: String,
        #[command(flatten)]
        rules: RulesArgs,
        /// Folder with the inputs (as for `scan`).
        data: PathBuf,
        /// The as-of date for both runs (YYYY-MM-DD; default today in Asia/Shanghai).
        #[arg(long = "as-of", value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Write the Markdown report here (default: standard output).
        #[arg(long, value_name = "PATH")]
        markdown: Option<PathBuf>,
        /// Write the JSON report here.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Findings listed per rule and direction in the Markdown.
        #[arg(long = "max-listed", default_value_t = 20)]
        max_listed: usize,
    },
    /// Measure detection quality against labels: per rule and family,
    /// flagged merchants, true and false alarms, misses, precision, recall, F1.
    Eval {
        /// Folder with the inputs (as for `scan`).
        data: PathBuf,
        /// Labels (CSV: merchant_id, rule_id, family, disposition =
        /// confirmed or dismissed); `posaudit-gen` writes one as labels.csv.
        #[arg(long, value_name = "FILE")]
        labels: PathBuf,
        #[command(flatten)]
        rules: RulesArgs,
        /// The as-of date (YYYY-MM-DD; default today in Asia/Shanghai).
        #[arg(long = "as-of", value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Count findings at or above this severity only.
        #[arg(long = "min-severity", default_value = "medium")]
        min_severity: posaudit::rules::model::Severity,
        /// Write the report as JSON here too.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },
    /// Check the pack without reading data (exit 3 on errors).
    Check {
        /// Rule folders (default: ./rules, else the built-in pack).
        dirs: Vec<PathBuf>,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// The exceptions file to check (default: exceptions.yaml in the rules folder).
        #[arg(long, value_name = "FILE")]
        exceptions: Option<PathBuf>,
        /// Write the problems as SARIF too: --output sarif=PATH.
        #[arg(long = "output", value_name = "sarif=PATH")]
        output: Vec<posaudit::output::Target>,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Folder holding the inputs under their conventional names
    /// (applications.csv, transactions.csv or transactions/, fees.csv,
    /// fee_changes.csv, or .parquet; mapping.yaml if present).
    pub dir: Option<PathBuf>,
    /// Applications file (overrides the folder's).
    #[arg(long, value_name = "FILE")]
    pub applications: Option<PathBuf>,
    /// Transactions: a file, a folder or a glob of daily exports (repeatable).
    #[arg(long, value_name = "PATH")]
    pub transactions: Vec<PathBuf>,
    /// Fees file (optional input).
    #[arg(long, value_name = "FILE")]
    pub fees: Option<PathBuf>,
    /// Fee changes file (optional input).
    #[arg(long = "fee-changes", value_name = "FILE")]
    pub fee_changes: Option<PathBuf>,
    /// Column mapping (YAML): header renames, amount unit, formats, encoding, delimiter.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// A reference table replacing the pack's (terminal_models.csv, mcc.csv or
    /// merchant_type_limits.csv, by file name); repeatable.
    #[arg(long, value_name = "FILE")]
    pub reference: Vec<PathBuf>,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "posaudit-out")]
    pub out: PathBuf,
    /// Findings formats written into --out, comma-separated or repeated
    /// (jsonl, csv, parquet, sarif, junit).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "jsonl")]
    pub format: Vec<Format>,
    /// Also write FORMAT to PATH (repeatable), e.g. --output sarif=findings.sarif --output junit=report.xml.
    #[arg(long = "output", value_name = "FORMAT=PATH")]
    pub output: Vec<posaudit::output::Target>,
    /// The date expiry and age checks use (YYYY-MM-DD). Default: today in Asia/Shanghai.
    #[arg(long = "as-of", value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<NaiveDate>,
    /// Exit 1 when an open finding is at or above this severity (info, low,
    /// medium, high, critical, or never). Default: high, or never when
    /// --fail-on-new is given. Suppressed and shadow findings never count.
    #[arg(long = "fail-on")]
    pub fail_on: Option<FailOn>,
    /// With --baseline: exit 1 when a new finding (not in the baseline) is at
    /// or above this severity.
    #[arg(long = "fail-on-new", value_name = "SEVERITY")]
    pub fail_on_new: Option<Severity>,
    /// A previous run's --out folder (or its findings.jsonl / findings.csv):
    /// mark each finding new or unchanged, and write the ones gone today to
    /// resolved.jsonl.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// The officer's exceptions (YAML). Default: exceptions.yaml in the rules folder.
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// Run this rule in shadow (repeatable): evaluated, its findings written to
    /// shadow-findings.jsonl, kept out of the exit code and the findings outputs.
    #[arg(long, value_name = "RULE_ID")]
    pub shadow: Vec<String>,
    /// Evaluate in N partitions (by merchant, card, ...), spilling parsed rows
    /// to disk beside --out: for inputs larger than memory. Same findings.
    /// At most 1024. `auto`: in memory when the inputs fit in the memory
    /// free, else enough partitions that each does (estimated from the
    /// files' sizes before reading).
    #[arg(long, value_name = "N|auto", default_value_t = 1, value_parser = parse_partitions)]
    pub partitions: usize,
    /// Worker threads for reading and rules (default: all cores; at most 256).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Stop a rule that hits more than N times, and the run when all rules
    /// together find more than N: a flood of findings is a mis-configured
    /// rule or wrong input, and holding millions of findings takes gigabytes.
    #[arg(long = "max-findings", value_name = "N", default_value_t = posaudit::app::scan::DEFAULT_MAX_FINDINGS)]
    pub max_findings: usize,
    /// Read only the transactions dated in the N days ending --as-of (`30d`):
    /// files named with a date outside it are not opened; rows outside it
    /// are counted as out of the window, not checked.
    #[arg(long, value_name = "DAYS", value_parser = parse_window)]
    pub window: Option<u32>,
    /// Where parsed input files are kept between runs, encrypted (default:
    /// $POSAUDIT_CACHE_DIR, else ~/.cache/posaudit/parsed).
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Parse every file, and keep nothing between runs.
    #[arg(long = "no-cache", conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// The most the cache folder holds after a run (`500M`, `2G`); the least
    /// recently used files go first.
    #[arg(long = "cache-size", value_name = "SIZE", default_value = "2G", value_parser = parse_size)]
    pub cache_size: u64,
    /// Language of messages, the summary, the HTML report and the workbook:
    /// en or zh (default: $POSAUDIT_LANG, else en).
    #[arg(long, value_name = "LANG")]
    pub lang: Option<posaudit::findings::lang::Lang>,
    /// Print nothing on success, and no progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Log phase and per-rule timings on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The most threads `--threads` takes: more than the cores gains nothing,
/// and thousands exhaust the process limit.
pub const MAX_THREADS: usize = 256;

fn bounded(s: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

fn parse_threads(s: &str) -> Result<usize, String> {
    bounded(s, 1, MAX_THREADS)
}

fn parse_partitions(s: &str) -> Result<usize, String> {
    if s == "auto" {
        return Ok(posaudit::app::options::AUTO_PARTITIONS);
    }
    bounded(s, 1, MAX_PARTITIONS).map_err(|e| format!("{e}, or `auto`"))
}

fn parse_window(s: &str) -> Result<u32, String> {
    let days = s.strip_suffix('d').unwrap_or(s);
    match days.parse::<u32>() {
        Ok(n) if (1..=3660).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a window in days (1d to 3660d, e.g. 30d)")),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mult = match t[i..].to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1u64 << 40,
                _ => return Err(format!("`{s}` is not a size (e.g. 500M, 2G)")),
            };
            (&t[..i], mult)
        }
        None => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n.saturating_mul(mult))
        .map_err(|_| format!("`{s}` is not a size (e.g. 500M, 2G)"))
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))
}
