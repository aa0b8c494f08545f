//! Writing a scan down: its output paths, the exit code, the findings in
//! each format, rejected rows and the manifest, all staged and committed
//! together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::exit;
use super::inputs::ReadInputs;
use super::options::ScanOptions;
use crate::engine::{RuleRun, RuleStatus};
use crate::findings::{FailOn, Finding};
use crate::input::reference::References;
use crate::input::FileStats;
use crate::output::manifest::{totals, Counts, Manifest, RulesInfo};
use crate::output::{self, atomic::Staged, Format, Target};
use crate::rules::load::RulePack;
use crate::Error;

/// Every output path of a scan, each once: two outputs at one path would
/// overwrite each other.
pub(crate) fn output_targets(opts: &ScanOptions) -> Result<Vec<Target>, Error> {
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

/// What a scan writes about itself and its findings.
pub(crate) struct Written<'a> {
    pub opts: &'a ScanOptions,
    pub targets: &'a [Target],
    pub pack: &'a RulePack,
    pub refs: &'a References,
    pub inputs: &'a ReadInputs,
    pub stats: Vec<FileStats>,
    pub started: Instant,
}

/// The exit code, then every output staged and committed at once: the
/// findings in each format, rejected rows, and the manifest.
pub(crate) fn write_outputs(w: Written, findings: &[Finding], runs: &[RuleRun]) -> Result<(i32, Manifest), Error> {
    let Written {
        opts,
        targets,
        pack,
        refs,
        inputs,
        stats,
        started,
    } = w;
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
    for t in targets {
        let path = staged
            .write_path(&t.path, |w| match t.format {
                Format::Jsonl => output::findings_out::write_jsonl(findings, w),
                Format::Csv => output::findings_out::write_csv(findings, w),
                Format::Parquet => output::findings_out::write_parquet(findings, w),
                Format::Sarif => serde_json::to_writer_pretty(&mut *w, &output::sarif::scan(findings, pack)).map_err(std::io::Error::other),
                Format::Junit => output::junit::scan(runs, findings, opts.fail_on)
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
        rule_runs: runs.to_vec(),
        findings: Counts::of(findings),
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
    Ok((exit_code, manifest))
}
