//! Findings in JSON Lines, CSV and Parquet.

use std::io::Write;

use polars::prelude::*;

use crate::findings::model::Status;
use crate::findings::Finding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
    /// JUnit XML: one test per rule.
    Junit,
    /// The officer's workbook: summary, cases, findings, rejected rows, rules.
    Xlsx,
    /// The officer's report: one self-contained HTML page.
    Html,
}

impl Format {
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Jsonl => "findings.jsonl",
            Format::Csv => "findings.csv",
            Format::Parquet => "findings.parquet",
            Format::Sarif => "findings.sarif",
            Format::Junit => "junit.xml",
            Format::Xlsx => "report.xlsx",
            Format::Html => "report.html",
        }
    }
}

/// `FORMAT=PATH`: one output of a run, written wherever the user says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub format: Format,
    pub path: std::path::PathBuf,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (f, p) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not FORMAT=PATH (e.g. sarif=out/findings.sarif)"))?;
        let format = <Format as clap::ValueEnum>::from_str(f, true)
            .map_err(|_| format!("unknown output format `{f}` (jsonl, csv, parquet, sarif, junit, xlsx, html)"))?;
        if p.is_empty() {
            return Err(format!("`{s}`: the path is empty"));
        }
        Ok(Target { format, path: p.into() })
    }
}

pub(crate) fn write_jsonl(findings: &[Finding], w: &mut dyn Write) -> std::io::Result<()> {
    for f in findings {
        serde_json::to_writer(&mut *w, f)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

const FLAT_COLUMNS: [&str; 18] = [
    "fingerprint",
    "rule_id",
    "family",
    "severity",
    "merchant_id",
    "merchant_ids",
    "entity_kind",
    "entity_id",
    "txn_ids",
    "evidence",
    "message",
    "basis",
    "source_input",
    "source_file",
    "source_line",
    "status",
    "exception_id",
    "baseline",
];

/// One finding as flat text fields (lists joined with `;`, evidence as JSON).
fn flat(f: &Finding) -> [String; 18] {
    [
        f.fingerprint.clone(),
        f.rule_id.clone(),
        f.family.name().to_string(),
        f.severity.name().to_string(),
        f.merchant_id.clone().unwrap_or_default(),
        f.merchant_ids.join(";"),
        f.entity_kind.clone(),
        f.entity_id.clone(),
        f.txn_ids.join(";"),
        serde_json::to_string(&f.evidence).unwrap_or_default(),
        f.message.clone(),
        f.basis.clone(),
        f.source.as_ref().map(|s| s.input.name().to_string()).unwrap_or_default(),
        f.source.as_ref().map(|s| s.file.clone()).unwrap_or_default(),
        f.source.as_ref().map(|s| s.line.to_string()).unwrap_or_default(),
        match f.status {
            Status::Open => "open",
            Status::Suppressed => "suppressed",
        }
        .to_string(),
        f.exception_id.clone().unwrap_or_default(),
        f.baseline.map(|b| b.name().to_string()).unwrap_or_default(),
    ]
}

pub(crate) fn write_csv(findings: &[Finding], w: &mut dyn Write) -> std::io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(FLAT_COLUMNS)?;
    for f in findings {
        c.write_record(flat(f))?;
    }
    c.flush()?;
    Ok(())
}

pub(crate) fn findings_frame(findings: &[Finding]) -> PolarsResult<DataFrame> {
    let rows: Vec<[String; 18]> = findings.iter().map(flat).collect();
    let cols = FLAT_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if *name == "source_line" {
                let v: Vec<Option<u64>> = rows.iter().map(|r| r[i].parse().ok()).collect();
                UInt64Chunked::from_iter_options((*name).into(), v.into_iter())
                    .into_series()
                    .into_column()
            } else {
                let v: Vec<Option<&str>> = rows.iter().map(|r| Some(r[i].as_str()).filter(|s| !s.is_empty())).collect();
                StringChunked::from_iter_options((*name).into(), v.into_iter())
                    .into_series()
                    .into_column()
            }
        })
        .collect();
    DataFrame::new(rows.len(), cols)
}

pub fn write_parquet(findings: &[Finding], w: &mut dyn Write) -> std::io::Result<()> {
    let mut df = findings_frame(findings).map_err(std::io::Error::other)?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df).map_err(std::io::Error::other)?;
    w.write_all(&buf)
}
