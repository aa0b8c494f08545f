//! Writing a scan down: its output paths, the exit code, the findings in
//! each format, rejected rows and the manifest, all staged and committed
//! together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::exit;
use super::inputs::ReadInputs;
use super::options::ScanOptions;
use super::triage::{Triaged, RESOLVED_FILE, SHADOW_FILE};
use crate::engine::{RuleRun, RuleStatus};
use crate::findings::cases::{typology_titles, ScoringFile};
use crate::findings::lang::Lang;
use crate::input::reference::References;
use crate::input::FileStats;
use crate::output::cases_out::{CASES_CSV, CASES_JSONL};
use crate::output::manifest::{totals, CasesReport, Counts, Manifest, RulesInfo, WindowReport};
use crate::output::report_data::ReportData;
use crate::output::{self, atomic::Staged, Format, Target};
use crate::rules::load::RulePack;
use crate::Error;

/// The files a scan may write in `--out` whatever its formats.
const FIXED_FILES: [&str; 6] = ["rejected.csv", "manifest.json", SHADOW_FILE, RESOLVED_FILE, CASES_JSONL, CASES_CSV];

/// Remove the staged (half-written) files of this scan's outputs that
/// scans killed while writing left beside them (`atomic::remove_stale`):
/// in `--out`, and in each folder an output of `targets` goes to.
pub(crate) fn remove_stale_staged(opts: &ScanOptions, targets: &[Target]) -> Vec<(PathBuf, u64)> {
    let mut by_folder: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    by_folder.insert(opts.out.clone(), FIXED_FILES.iter().map(|f| f.to_string()).collect());
    for t in targets {
        let (Some(name), folder) = (t.path.file_name().and_then(|n| n.to_str()), t.path.parent()) else {
            continue;
        };
        let folder = match folder {
            Some(f) if !f.as_os_str().is_empty() => f.to_path_buf(),
            _ => PathBuf::from("."),
        };
        by_folder.entry(folder).or_default().push(name.to_string());
    }
    by_folder
        .iter()
        .flat_map(|(folder, names)| output::atomic::remove_stale(folder, names))
        .collect()
}

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
    for fixed in FIXED_FILES {
        seen.insert(key(&opts.out.join(fixed)), Format::Jsonl);
    }
    for t in &targets {
        let k = key(&t.path);
        if let Some(other) = seen.get(&k) {
            let what = if [SHADOW_FILE, RESOLVED_FILE, "rejected.csv", "manifest.json"]
                .iter()
                .any(|f| k.ends_with(f))
            {
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
    pub scoring: Option<&'a ScoringFile>,
}

/// The exit code, then every output staged and committed at once: the
/// findings in each format, rejected rows, and the manifest.
pub(crate) fn write_outputs(w: Written, tri: &Triaged, runs: &[RuleRun]) -> Result<(i32, Manifest), Error> {
    let findings = &tri.findings;
    let Written {
        opts,
        targets,
        pack,
        refs,
        inputs,
        stats,
        started,
        scoring,
    } = w;
    let rejected = &inputs.loaded.rejected;
    let plan = &inputs.plan;

    let policy = opts.fail_policy();
    let failed = runs.iter().any(|r| r.status == RuleStatus::Failed);
    let exit_code = if failed {
        exit::ERROR
    } else if findings.iter().any(|f| policy.fails(f)) {
        exit::FINDINGS
    } else {
        exit::CLEAN
    };

    // Every output's path first: the manifest lists them, and the report
    // formats show the manifest.
    let mut fixed: Vec<&str> = Vec::new();
    if tri.report.shadow.is_some() {
        fixed.push(SHADOW_FILE);
    }
    if tri.report.baseline.is_some() {
        fixed.push(RESOLVED_FILE);
    }
    if scoring.is_some() {
        fixed.extend([CASES_JSONL, CASES_CSV]);
    }
    fixed.extend(["rejected.csv", "manifest.json"]);
    let outputs: Vec<String> = targets
        .iter()
        .map(|t| t.path.clone())
        .chain(fixed.iter().map(|n| opts.out.join(n)))
        .map(|p| p.display().to_string())
        .collect();

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
        window: super::inputs::window(opts).map(|w| WindowReport {
            from: w.from.to_string(),
            to: w.to.to_string(),
            days: opts.window_days.unwrap_or(0),
            files_outside: plan.outside_window.iter().map(|p| p.display().to_string()).collect(),
        }),
        cache: inputs.cache.as_ref().map(|c| c.report(c.evict().unwrap_or(0))),
        reference_tables: refs.origins.clone(),
        rule_runs: runs.to_vec(),
        findings: Counts::of(findings),
        outputs,
        threads: opts.threads,
        partitions: opts.partitions.max(1),
        fail_on: policy.to_string(),
        triage: tri.report.clone(),
        cases: scoring.map(|s| CasesReport::of(&tri.cases, &s.file, &s.digest)),
        exit_code,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    let report = ReportData {
        manifest: &manifest,
        runs,
        findings,
        cases: &tri.cases,
        rejected,
        pack,
        lang: opts.lang,
        typologies: scoring
            .map(|s| typology_titles(&s.scoring, opts.lang == Lang::Zh))
            .unwrap_or_default(),
    };

    let mut staged = Staged::new(&opts.out).map_err(|e| Error::Output(opts.out.clone(), e))?;
    let out_err = |p: &Path, e| Error::Output(p.to_path_buf(), e);
    for t in targets {
        staged
            .write_path(&t.path, |w| match t.format {
                Format::Jsonl => output::findings_out::write_jsonl(findings, w),
                Format::Csv => output::findings_out::write_csv(findings, w),
                Format::Parquet => output::findings_out::write_parquet(findings, w),
                Format::Sarif => serde_json::to_writer_pretty(&mut *w, &output::sarif::scan(findings, &tri.resolved, pack))
                    .map_err(std::io::Error::other),
                Format::Junit => output::junit::scan(runs, findings, policy)
                    .serialize(&mut *w)
                    .map_err(std::io::Error::other),
                Format::Xlsx => output::workbook::write(&report, w),
                Format::Html => output::html::write(&report, w),
            })
            .map_err(|e| out_err(&t.path, e))?;
    }
    let written = |staged: &mut Staged, name: &str, f: &dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>| {
        staged.write(name, f).map(|_| ()).map_err(|e| out_err(&opts.out, e))
    };
    for name in fixed {
        match name {
            SHADOW_FILE => written(&mut staged, name, &|w| output::findings_out::write_jsonl(&tri.shadow, w))?,
            RESOLVED_FILE => written(&mut staged, name, &|w| {
                for v in &tri.resolved {
                    serde_json::to_writer(&mut *w, v)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })?,
            CASES_JSONL => written(&mut staged, name, &|w| output::cases_out::write_jsonl(&tri.cases, w))?,
            CASES_CSV => written(&mut staged, name, &|w| output::cases_out::write_csv(&tri.cases, opts.lang, w))?,
            "rejected.csv" => written(&mut staged, name, &|w| output::write_rejected(rejected, w))?,
            _ => written(&mut staged, name, &|w| {
                serde_json::to_writer_pretty(&mut *w, &manifest)?;
                w.write_all(b"\n")
            })?,
        }
    }
    staged.commit().map_err(|e| out_err(&opts.out, e))?;
    Ok((exit_code, manifest))
}
