//! The rule pack on Apache Spark, in three steps around the cluster:
//!
//! 1. `posaudit prepare`: read the inputs as a scan does (mapping, checks,
//!    rejected rows) and write the frames the rules read, derived columns
//!    and joined application columns included, as Parquet. The derived
//!    columns are posaudit's own code (check characters, Luhn, expected
//!    fees, refund originals, gaps between purchases), so the cluster sees
//!    exactly the values the embedded engine sees.
//! 2. `posaudit export spark`: write a Spark job, one SQL query per rule
//!    translated from the compiled rule (`backend::spark`) and a generic
//!    PySpark driver that runs them over the prepared Parquet and writes
//!    each rule's hits.
//! 3. `posaudit import spark`: turn the hits into findings with the
//!    engine's own code (`engine::hits`): the same fingerprints, evidence,
//!    messages and masking as a scan.
//!
//! The prepared files and the hits hold the inputs' values (full card and
//! ID numbers among them, as the inputs do): they belong where the inputs
//! are kept. Findings are masked as a scan's are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::inputs::read_inputs;
use super::pack::{check_loaded, load_pack, load_references};
use super::scan::ScanOptions;
use crate::backend::spark::{translate_pack, SparkRule};
use crate::engine::{self, prepare};
use crate::findings::Finding;
use crate::input::{FileStats, InputKind};
use crate::output::atomic::Staged;
use crate::output::progress::Progress;
use crate::rules::load::RulePack;
use crate::Error;

/// What `prepare` writes beside the Parquet files.
pub const PREPARED_MANIFEST: &str = "prepared.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct PreparedManifest {
    pub as_of: NaiveDate,
    pub posaudit_version: String,
    /// The pack whose columns were kept (its digest).
    pub rules_digest: String,
    /// Input -> file written, rows.
    pub frames: BTreeMap<String, PreparedFrame>,
    /// The files read, in `_src` order (findings name them).
    pub files: Vec<FileStats>,
    pub rows_rejected: u64,
    /// `K/N`: the merchants of partition K of N (all inputs filtered by a
    /// hash of merchant_id, as `scan --partitions` splits them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The first approved purchase of all the data (dormancy needs it and
    /// a partition cannot see it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
}

/// Which part of the data a `prepare` run keeps.
#[derive(Debug, Clone, Default)]
pub struct PrepareScope {
    /// (K, N): the merchants whose id hashes to K of N.
    pub partition: Option<(usize, usize)>,
    /// The first approved purchase of all the data, when this run reads
    /// only its own partition's files (default: from the rows read).
    pub period_start: Option<chrono::NaiveDateTime>,
}

impl std::str::FromStr for PrepareScope {
    type Err = String;
    /// `K/N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a partition K/N (0 <= K < N), e.g. 3/16");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(PrepareScope {
            partition: Some((k, n)),
            period_start: None,
        })
    }
}

/// The rows of merchants in partition `k` of `n`.
fn keep_partition(df: DataFrame, k: usize, n: usize) -> Result<DataFrame, Error> {
    // Transactions' merchant is a categorical (`input::categories`).
    let ids = df
        .column("merchant_id")
        .and_then(|c| c.cast(&DataType::String))
        .and_then(|c| c.str().cloned())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mask: BooleanChunked = ids.iter().map(|v| Some(engine::partition::part_of(v, n) == k)).collect();
    df.filter(&mask).map_err(|e| Error::Internal(e.to_string()))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PreparedFrame {
    pub file: String,
    pub rows: usize,
    pub columns: Vec<String>,
}

fn output_err(dir: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Output(dir.to_path_buf(), e)
}

/// `posaudit prepare`: the inputs read, checked and prepared, as Parquet in
/// `opts.out`, with `rejected.csv` and `prepared.json`.
pub fn prepare(opts: &ScanOptions, scope: &PrepareScope, progress: &Progress) -> Result<PreparedManifest, Error> {
    let mut loaded = Some(load_pack(&opts.rules));
    let mut checked = None;
    let keep: &crate::input::FileSink = &|_, _, df| Ok(Some(df));
    let inputs = read_inputs(opts, progress, keep, |extras| {
        checked = Some(check_loaded(loaded.take().expect("checked once"), extras, opts.as_of)?);
        Ok(())
    })?;
    let (pack, _) = checked.expect("rules are checked before data is read");
    let refs = load_references(&inputs.plan, &opts.rules, &opts.reference)?;
    let stats = inputs.loaded.stats.clone();
    // Rejected rows may have no merchant to place them by: partition 0
    // reports them all, so that the partitions' counts add up.
    let rejected = match scope.partition {
        Some((k, _)) if k != 0 => Vec::new(),
        _ => inputs.loaded.rejected,
    };
    let as_of = opts.as_of;
    let mut frames = inputs.loaded.frames;
    let mut period_start = scope.period_start.map(|t| t.and_utc().timestamp_millis());
    if let Some((k, n)) = scope.partition {
        if period_start.is_none() {
            if let Some(t) = frames.get(&InputKind::Transactions) {
                period_start = engine::partition::first_purchase(t).map_err(|e| Error::Internal(e.to_string()))?;
            }
        }
        frames = frames
            .into_iter()
            .map(|(kind, df)| Ok((kind, keep_partition(df, k, n)?)))
            .collect::<Result<_, Error>>()?;
    }
    let needed = Some(prepare::names_used(&pack));
    let prepared = engine::in_pool(|| prepare::prepare_part(frames, &refs, as_of, &needed, period_start, false))
        .map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::create_dir_all(&opts.out).map_err(output_err(&opts.out))?;
    let mut staged = Staged::new(&opts.out).map_err(output_err(&opts.out))?;
    let mut frames = BTreeMap::new();
    for (kind, df) in prepared.into_frames().map_err(|e| Error::Internal(e.to_string()))? {
        // Integer key codes are the engine's own shortcut, not data.
        let keep: Vec<PlSmallStr> = df
            .get_column_names()
            .into_iter()
            .filter(|c| !c.starts_with(crate::engine::keys::KEY_PREFIX))
            .cloned()
            .collect();
        let mut df = df.select(keep).map_err(|e| Error::Internal(e.to_string()))?;
        let file = format!("{}.parquet", kind.name());
        staged
            .write(&file, |w| {
                ParquetWriter::new(w)
                    .finish(&mut df)
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .map_err(output_err(&opts.out))?;
        frames.insert(
            kind.name().to_string(),
            PreparedFrame {
                file,
                rows: df.height(),
                columns: df.get_column_names().iter().map(|c| c.to_string()).collect(),
            },
        );
    }
    staged
        .write("rejected.csv", |w| crate::output::write_rejected(&rejected, w))
        .map_err(output_err(&opts.out))?;
    let manifest = PreparedManifest {
        as_of,
        posaudit_version: env!("CARGO_PKG_VERSION").to_string(),
        rules_digest: pack.digest.clone(),
        frames,
        files: stats,
        rows_rejected: rejected.len() as u64,
        partition: scope.partition.map(|(k, n)| format!("{k}/{n}")),
        period_start: period_start.map(|ms| {
            crate::input::values::datetime_from_millis(ms)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        }),
    };
    staged
        .write(PREPARED_MANIFEST, |w| {
            serde_json::to_writer_pretty(&mut *w, &manifest).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(output_err(&opts.out))?;
    staged.commit().map_err(output_err(&opts.out))?;
    Ok(manifest)
}

/// The driver every exported job runs (generic: it reads `rules.json`).
const DRIVER: &str = include_str!("../backend/posaudit_spark.py");

/// What `export spark` wrote and what it could not.
pub struct Exported {
    pub rules: usize,
    pub refused: BTreeMap<String, String>,
    pub written: bool,
}

/// The columns each input can have once prepared: every contract and
/// derived column (the schema the rules are checked against).
fn full_columns(as_of: NaiveDate) -> Result<BTreeMap<InputKind, BTreeSet<String>>, Error> {
    let schemas = engine::validate::contract_schemas(&BTreeMap::new(), as_of).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(schemas
        .into_iter()
        .map(|(k, s)| (k, s.iter_names().map(|n| n.to_string()).collect()))
        .collect())
}

/// `posaudit export spark`: the job for `rules`, in `out`. A rule the
/// translation cannot express is named with its reason; unless `partial`,
/// nothing is written then.
pub fn export_spark(rules: &[PathBuf], out: &Path, partial: bool) -> Result<Exported, Error> {
    let as_of = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
    let (pack, _) = check_loaded(load_pack(rules), &BTreeMap::new(), as_of)?;
    let (translated, refused) = translate_pack(pack.rules.iter().map(|r| &r.compiled), &full_columns(as_of)?);
    if !refused.is_empty() && !partial {
        return Ok(Exported {
            rules: translated.len(),
            refused,
            written: false,
        });
    }
    std::fs::create_dir_all(out).map_err(output_err(out))?;
    let mut staged = Staged::new(out).map_err(output_err(out))?;
    for r in &translated {
        staged
            .write(&format!("sql/{}.sql", r.id), |w| {
                writeln!(w, "-- {} ({}, {}): generated by posaudit export spark", r.id, r.shape, r.source)?;
                writeln!(w, "{}", r.sql)
            })
            .map_err(output_err(out))?;
    }
    let job = JobFile {
        posaudit_version: env!("CARGO_PKG_VERSION").to_string(),
        rules_digest: pack.digest.clone(),
        rules: translated.clone(),
        refused: refused.clone(),
    };
    staged
        .write("rules.json", |w| {
            serde_json::to_writer_pretty(&mut *w, &job).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(output_err(out))?;
    staged
        .write("posaudit_spark.py", |w| w.write_all(DRIVER.as_bytes()))
        .map_err(output_err(out))?;
    staged
        .write("README.md", |w| w.write_all(job_readme(&translated, &refused).as_bytes()))
        .map_err(output_err(out))?;
    staged.commit().map_err(output_err(out))?;
    Ok(Exported {
        rules: translated.len(),
        refused,
        written: true,
    })
}

#[derive(Serialize)]
struct JobFile {
    posaudit_version: String,
    rules_digest: String,
    rules: Vec<SparkRule>,
    refused: BTreeMap<String, String>,
}

fn job_readme(rules: &[SparkRule], refused: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    s += "# posaudit rule pack as a Spark job\n\n";
    s += "Generated by `posaudit export spark`; do not edit (export again).\n\n";
    s += "```sh\n";
    s += "posaudit prepare DATA --as-of 2026-11-20 --out prepared/         # per input partition, on any machine\n";
    s += "spark-submit posaudit_spark.py --prepared prepared/ --hits hits/  # the rules, on the cluster\n";
    s += "posaudit import spark --prepared prepared/ --hits hits/ --out findings/\n";
    s += "```\n\n";
    s += &format!("{} rules, one query each in `sql/`.\n", rules.len());
    if !refused.is_empty() {
        s += "\nNot exported (the translation cannot express them):\n\n";
        for (id, why) in refused {
            s += &format!("- {id}: {why}\n");
        }
    }
    s
}

/// What the driver says of each rule (`hits/status.json`).
#[derive(Debug, Deserialize)]
struct RuleStatus {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The findings of an import and the rules that gave none because they
/// did not run on the cluster (id, status, reason).
pub struct Imported {
    pub findings: Vec<Finding>,
    pub not_run: Vec<(String, String, String)>,
    /// What the user should know (a pack other than the prepared files').
    pub warnings: Vec<String>,
}

/// `posaudit import spark`: the hits of a Spark run as findings, written
/// as `findings.jsonl` in `out`.
pub fn import_spark(rules: &[PathBuf], prepared: &Path, hits: &Path, out: &Path) -> Result<Imported, Error> {
    let read_json = |p: PathBuf| -> Result<String, Error> {
        std::fs::read_to_string(&p).map_err(|e| Error::Usage(format!("cannot read {}: {e}", p.display())))
    };
    let manifest: PreparedManifest = serde_json::from_str(&read_json(prepared.join(PREPARED_MANIFEST))?)
        .map_err(|e| Error::Usage(format!("{}: not a posaudit prepare manifest: {e}", prepared.display())))?;
    let status: BTreeMap<String, RuleStatus> = serde_json::from_str(&read_json(hits.join("status.json"))?)
        .map_err(|e| Error::Usage(format!("{}: not a posaudit Spark run: {e}", hits.display())))?;
    let (pack, _) = check_loaded(load_pack(rules), &BTreeMap::new(), manifest.as_of)?;
    let mut imported = findings_of_hits(&pack, &status, hits, &manifest.files)?;
    if pack.digest != manifest.rules_digest {
        // The digest covers the files' paths: the same pack read from
        // another folder differs too, so this is a warning.
        imported.warnings.push(format!(
            "{} was prepared for another rule pack (or the same pack at another path) than the one importing its hits",
            prepared.display()
        ));
    }
    std::fs::create_dir_all(out).map_err(output_err(out))?;
    let mut staged = Staged::new(out).map_err(output_err(out))?;
    staged
        .write("findings.jsonl", |w| {
            crate::output::findings_out::write_jsonl(&imported.findings, w)
        })
        .map_err(output_err(out))?;
    staged.commit().map_err(output_err(out))?;
    Ok(imported)
}

fn findings_of_hits(pack: &RulePack, status: &BTreeMap<String, RuleStatus>, hits: &Path, files: &[FileStats]) -> Result<Imported, Error> {
    let mut findings = Vec::new();
    let mut not_run = Vec::new();
    for lr in &pack.rules {
        let id = &lr.compiled.id;
        let Some(st) = status.get(id) else {
            not_run.push((id.clone(), "missing".into(), "the Spark run has no status for it".into()));
            continue;
        };
        if st.status != "ran" {
            not_run.push((id.clone(), st.status.clone(), st.reason.clone().unwrap_or_default()));
            continue;
        }
        let path = hits.join(format!("{id}.parquet"));
        let df = read_hits(&path)?;
        let mut f = if lr.compiled.is_grouped() {
            engine::hits::group_findings(lr, &df, files)
        } else {
            engine::hits::row_findings(lr, &df, files)
        };
        findings.append(&mut f);
    }
    crate::findings::model::sort(&mut findings);
    Ok(Imported {
        findings,
        not_run,
        warnings: Vec::new(),
    })
}

/// A rule's hits as Spark wrote them: one Parquet file, or a folder of
/// part files.
fn read_hits(path: &Path) -> Result<DataFrame, Error> {
    let bad = |e: String| Error::Usage(format!("{}: {e}", path.display()));
    let mut parts: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| bad(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    parts.sort();
    let mut out: Option<DataFrame> = None;
    for p in parts {
        let f = std::fs::File::open(&p).map_err(|e| bad(e.to_string()))?;
        let df = ParquetReader::new(f).finish().map_err(|e| bad(e.to_string()))?;
        out = Some(match out {
            None => df,
            Some(mut acc) => {
                acc.vstack_mut(&df).map_err(|e| bad(e.to_string()))?;
                acc
            }
        });
    }
    out.ok_or_else(|| bad("no hits file".into()))
}
