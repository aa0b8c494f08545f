//! The `posaudit` binary: parse the command line, run the library, turn
//! errors into messages and exit codes.

mod cli;

/// See `posaudit::alloc` for why.
#[global_allocator]
static GLOBAL: posaudit::alloc::MiMalloc = posaudit::alloc::MiMalloc;

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ExportCommand, ImportCommand, MappingCommand, RulesCommand};
use posaudit::app::exit;
use posaudit::app::options::CacheOptions;
use posaudit::app::scan::{self, ScanOptions};
use posaudit::output::{atomic::Staged, Format, Target};
use posaudit::{output, Error};

/// Today in Asia/Shanghai (UTC+8, no daylight saving).
fn today_shanghai() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Print warnings and errors with ID and card numbers masked by shape: an
/// error may quote a value from the data.
fn say(prefix: &str, text: &dyn std::fmt::Display) {
    eprintln!("{prefix}: {}", posaudit::mask::scrub(&text.to_string()));
}

/// Options for the commands that scan a data folder in memory and write
/// no scan outputs (`rules diff`, `rules eval`).
fn data_options(data: std::path::PathBuf, rules: Vec<std::path::PathBuf>, as_of: Option<chrono::NaiveDate>) -> ScanOptions {
    ScanOptions {
        dir: Some(data),
        applications: None,
        transactions: vec![],
        fees: None,
        fee_changes: None,
        mapping: None,
        rules,
        out: std::path::PathBuf::from("posaudit-out"),
        formats: vec![],
        outputs: vec![],
        as_of: as_of.unwrap_or_else(today_shanghai),
        fail_on: posaudit::findings::FailOn::Never,
        fail_on_new: None,
        baseline: None,
        exceptions: None,
        shadow: vec![],
        cache: None,
        window_days: None,
        lang: posaudit::findings::lang::Lang::En,
        threads: threads(None),
        reference: vec![],
        partitions: 1,
        max_findings: scan::DEFAULT_MAX_FINDINGS,
    }
}

/// An input's name as the command line gives it.
fn parse_input(s: &str) -> Result<posaudit::input::InputKind, Error> {
    posaudit::input::InputKind::ALL
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| Error::Usage(format!("`{s}` is not an input (applications, transactions, fees, fee_changes)")))
}

/// Print a line with ID and card numbers masked by shape.
fn say_line(text: &str) {
    println!("{}", posaudit::mask::scrub(text));
}

fn threads(requested: Option<usize>) -> usize {
    let n = requested
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // polars sizes its one pool from this variable on first use; rules run
    // inside that pool (see engine), so this caps the whole process.
    std::env::set_var("POLARS_MAX_THREADS", n.to_string());
    n
}

/// Write `--output FORMAT=PATH` targets atomically; `allowed` says which
/// formats the command produces.
fn write_outputs(
    targets: &[Target],
    allowed: &[Format],
    write: impl Fn(Format, &mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut staged = Staged::new(std::path::Path::new(".")).map_err(|e| Error::Output(".".into(), e))?;
    for t in targets {
        if !allowed.contains(&t.format) {
            return Err(Error::Usage(format!("this command writes {:?} only, not {:?}", allowed, t.format)));
        }
        staged
            .write_path(&t.path, |w| write(t.format, w))
            .map_err(|e| Error::Output(t.path.clone(), e))?;
    }
    staged.commit().map_err(|e| Error::Output(".".into(), e))
}

/// What a scan (or `prepare`, which reads inputs as a scan does) is asked.
fn scan_options(a: cli::ScanArgs) -> ScanOptions {
    ScanOptions {
        dir: a.dir,
        applications: a.applications,
        transactions: a.transactions,
        fees: a.fees,
        fee_changes: a.fee_changes,
        mapping: a.mapping,
        rules: a.rules.rules,
        out: a.out,
        formats: a.format,
        outputs: a.output,
        as_of: a.as_of.unwrap_or_else(today_shanghai),
        fail_on: a.fail_on.unwrap_or(if a.fail_on_new.is_some() {
            posaudit::findings::FailOn::Never
        } else {
            posaudit::findings::FailOn::At(posaudit::rules::model::Severity::High)
        }),
        fail_on_new: a.fail_on_new,
        baseline: a.baseline,
        exceptions: a.exceptions,
        shadow: a.shadow,
        cache: if a.no_cache {
            None
        } else {
            a.cache_dir
                .or_else(posaudit::input::cache::ParseCache::default_dir)
                .map(|dir| CacheOptions { dir, limit: a.cache_size })
        },
        window_days: a.window,
        lang: posaudit::findings::lang::Lang::resolve(a.lang),
        threads: threads(a.threads),
        reference: a.reference,
        partitions: a.partitions,
        max_findings: a.max_findings,
    }
}

fn run(cli: Cli) -> Result<i32, Error> {
    match cli.command {
        Command::Scan(a) => {
            let a = *a;
            let (quiet, verbose) = (a.quiet, a.verbose);
            let opts = scan_options(a);
            let progress = posaudit::output::progress::Progress::new(quiet, verbose);
            let outcome = scan::scan_with(&opts, &progress)?;
            for w in &outcome.warnings {
                say("warning", w);
            }
            if !quiet || outcome.exit_code == exit::ERROR {
                print!("{}", output::summary::render(&outcome.manifest, &outcome.runs, opts.lang));
            }
            Ok(outcome.exit_code)
        }
        Command::Prepare(a) => {
            let a = *a;
            let (quiet, verbose) = (a.scan.quiet, a.scan.verbose);
            let mut scope = a.partition.unwrap_or_default();
            scope.period_start = a.period_start;
            let opts = scan_options(a.scan);
            let progress = posaudit::output::progress::Progress::new(quiet, verbose);
            let m = posaudit::app::spark::prepare(&opts, &scope, &progress)?;
            if !quiet {
                for (input, f) in &m.frames {
                    println!(
                        "{input}: {} rows, {} columns -> {}",
                        f.rows,
                        f.columns.len(),
                        opts.out.join(&f.file).display()
                    );
                }
                println!(
                    "{} rows rejected (rejected.csv); as of {}; wrote {}",
                    m.rows_rejected,
                    m.as_of,
                    opts.out.join(posaudit::app::spark::PREPARED_MANIFEST).display()
                );
            }
            Ok(exit::CLEAN)
        }
        Command::Export(ExportCommand::Spark { rules, out, partial }) => {
            let e = posaudit::app::spark::export_spark(&rules.rules, &out, partial)?;
            for (id, why) in &e.refused {
                say_line(&format!("{id}: not exported: {why}"));
            }
            if !e.written {
                say_line(&format!(
                    "{} of {} rules cannot run on Spark: nothing written (--partial writes the others)",
                    e.refused.len(),
                    e.refused.len() + e.rules
                ));
                return Ok(exit::INVALID_RULES);
            }
            println!(
                "wrote {} ({} rules{}): run it with spark-submit {}",
                out.display(),
                e.rules,
                if e.refused.is_empty() {
                    String::new()
                } else {
                    format!(", {} not exported", e.refused.len())
                },
                out.join("posaudit_spark.py").display()
            );
            Ok(exit::CLEAN)
        }
        Command::Import(ImportCommand::Spark {
            rules,
            prepared,
            hits,
            out,
        }) => {
            let i = posaudit::app::spark::import_spark(&rules.rules, &prepared, &hits, &out)?;
            for w in &i.warnings {
                say_line(&format!("warning: {w}"));
            }
            for (id, status, why) in &i.not_run {
                say_line(&format!("{id}: {status}: {}", posaudit::mask::scrub(why)));
            }
            println!("{} findings -> {}", i.findings.len(), out.join("findings.jsonl").display());
            Ok(exit::CLEAN)
        }
        Command::Mapping(MappingCommand::Infer { files, input, out }) => {
            let kind = input.as_deref().map(parse_input).transpose()?;
            let inferred = files
                .iter()
                .map(|f| posaudit::app::infer::infer(f, kind))
                .collect::<Result<Vec<_>, _>>()?;
            let draft = posaudit::app::infer::draft(&inferred);
            match out {
                Some(p) => {
                    let mut staged = Staged::new(std::path::Path::new(".")).map_err(|e| Error::Output(".".into(), e))?;
                    staged
                        .write_path(&p, |w| w.write_all(draft.as_bytes()))
                        .map_err(|e| Error::Output(p.clone(), e))?;
                    staged.commit().map_err(|e| Error::Output(p.clone(), e))?;
                    for i in &inferred {
                        eprintln!(
                            "{}: {} ({} columns matched, {} missing)",
                            i.file.display(),
                            i.kind.value,
                            i.columns.iter().filter(|(_, g)| g.is_some()).count(),
                            i.missing.len()
                        );
                    }
                    eprintln!("wrote {}", p.display());
                }
                None => print!("{draft}"),
            }
            Ok(exit::CLEAN)
        }
        Command::Mapping(MappingCommand::Check { file, mapping, input }) => {
            let kind = input.as_deref().map(parse_input).transpose()?;
            let m = posaudit::input::mapping::Mapping::load(&mapping)?;
            let r = posaudit::app::infer::check(&file, &m, kind)?;
            let s = &r.stats;
            println!("{} read as {}", file.display(), r.kind);
            println!(
                "  {} rows: {} accepted, {} rejected{}",
                s.rows_read,
                s.rows_accepted,
                s.rows_rejected,
                if s.lines_skipped > 0 {
                    format!("; {} lines around the table skipped", s.lines_skipped)
                } else {
                    String::new()
                }
            );
            if !r.extras.is_empty() {
                println!("  extra columns (kept as text): {}", r.extras.join(", "));
            }
            for (col, (n, first)) in &r.by_column {
                println!("  {col}: {n} rejected");
                for (line, value, reason) in first {
                    say_line(&format!("    line {line}: `{value}`: {reason}"));
                }
            }
            Ok(if s.rows_rejected > 0 { exit::FINDINGS } else { exit::CLEAN })
        }
        Command::Rules(RulesCommand::List(r)) => {
            let pack = posaudit::app::pack::load_pack(&r.rules).into_result().map_err(Error::Rules)?;
            println!("{:<14} {:<20} {:<9} title", "id", "family", "severity");
            for lr in &pack.rules {
                let rule = &lr.rule;
                let shadow = if rule.status.is_active() { "" } else { " (shadow)" };
                println!(
                    "{:<14} {:<20} {:<9} {}{shadow}",
                    rule.id,
                    rule.family.name(),
                    rule.severity.name(),
                    rule.title
                );
            }
            println!(
                "\n{} rules from {} (digest {})",
                pack.rules.len(),
                pack.dirs.join(", "),
                &pack.digest[..12]
            );
            Ok(exit::CLEAN)
        }
        Command::Rules(RulesCommand::Explain { id, rules }) => {
            let pack = posaudit::app::pack::load_pack(&rules.rules).into_result().map_err(Error::Rules)?;
            let lr = pack
                .rules
                .iter()
                .find(|r| r.rule.id.eq_ignore_ascii_case(&id))
                .ok_or_else(|| Error::Usage(format!("no rule `{id}` in the pack (see `posaudit rules list`)")))?;
            print!("{}", posaudit::app::doc::explain(lr));
            println!("  file:      {}", lr.file);
            Ok(exit::CLEAN)
        }
        Command::Rules(RulesCommand::Test {
            dirs,
            filter,
            allow_empty,
            output,
        }) => {
            let (pack, _) = posaudit::app::pack::checked_pack(&dirs, &BTreeMap::new(), today_shanghai())?;
            let refs = posaudit::app::pack::pack_references(&dirs)?;
            let results = posaudit::app::rule_tests::run_pack(&pack, &refs, filter.as_deref());
            let failed = results.iter().filter(|r| !r.passed).count();
            for r in &results {
                if r.passed {
                    println!("PASS {} :: {}", r.rule_id, r.case);
                } else {
                    println!("FAIL {} :: {}  ({})", r.rule_id, r.case, r.file);
                    println!("     {}", r.detail.as_deref().unwrap_or(""));
                    for m in &r.messages {
                        println!("     finding: {m}");
                    }
                }
            }
            write_outputs(&output, &[Format::Junit], |_, w| {
                output::junit::rule_tests(&results).serialize(w).map_err(std::io::Error::other)
            })?;
            println!("{} passed, {} failed", results.len() - failed, failed);
            if results.is_empty() && !allow_empty {
                eprintln!("error: no test cases (add `tests:` to the rules, or pass --allow-empty)");
                return Ok(exit::FINDINGS);
            }
            Ok(if failed > 0 { exit::FINDINGS } else { exit::CLEAN })
        }
        Command::Rules(RulesCommand::Diff {
            base,
            rules,
            data,
            as_of,
            markdown,
            json,
            max_listed,
        }) => {
            let opts = data_options(data, rules.rules, as_of);
            let d = posaudit::app::diff::diff(&base, &opts)?;
            let md = posaudit::app::diff::markdown(&d, max_listed);
            let mut staged = Staged::new(std::path::Path::new(".")).map_err(|e| Error::Output(".".into(), e))?;
            if let Some(p) = &json {
                staged
                    .write_path(p, |w| serde_json::to_writer_pretty(w, &d).map_err(std::io::Error::other))
                    .map_err(|e| Error::Output(p.clone(), e))?;
            }
            match &markdown {
                Some(p) => {
                    staged
                        .write_path(p, |w| w.write_all(md.as_bytes()))
                        .map_err(|e| Error::Output(p.clone(), e))?;
                }
                None => print!("{md}"),
            }
            staged.commit().map_err(|e| Error::Output(".".into(), e))?;
            Ok(exit::CLEAN)
        }
        Command::Rules(RulesCommand::Eval {
            data,
            labels,
            rules,
            as_of,
            min_severity,
            json,
        }) => {
            let labels = posaudit::findings::eval::read_labels(&labels).map_err(|e| Error::Usage(e.to_string()))?;
            let opts = data_options(data, rules.rules, as_of);
            let (pack, findings) = scan::findings_only(&opts)?;
            let infos: Vec<posaudit::findings::eval::RuleInfo> = pack
                .rules
                .iter()
                .map(|lr| posaudit::findings::eval::RuleInfo {
                    id: &lr.rule.id,
                    family: lr.rule.family,
                    severity: lr.rule.severity,
                })
                .collect();
            let e = posaudit::findings::eval::evaluate(&findings, &infos, &labels, min_severity);
            print!("{}", posaudit::findings::eval::markdown(&e));
            if let Some(p) = &json {
                let mut staged = Staged::new(std::path::Path::new(".")).map_err(|e| Error::Output(".".into(), e))?;
                staged
                    .write_path(p, |w| serde_json::to_writer_pretty(w, &e).map_err(std::io::Error::other))
                    .map_err(|e| Error::Output(p.clone(), e))?;
                staged.commit().map_err(|e| Error::Output(p.clone(), e))?;
            }
            Ok(exit::CLEAN)
        }
        Command::Rules(RulesCommand::Doc { rules }) => {
            let pack = posaudit::app::pack::load_pack(&rules.rules).into_result().map_err(Error::Rules)?;
            print!("{}", posaudit::app::doc::markdown(&pack));
            let dirs: Vec<std::path::PathBuf> = if rules.rules.is_empty() {
                vec!["rules".into()]
            } else {
                rules.rules.clone()
            };
            let text = dirs
                .iter()
                .find_map(|d| std::fs::read_to_string(d.join("catalogue.csv")).ok())
                .or_else(|| posaudit::rules::load::builtin_file("catalogue.csv"));
            if let Some(t) = text {
                println!();
                print!("{}", posaudit::app::doc::coverage(&t)?);
            }
            Ok(exit::CLEAN)
        }
        Command::Rules(RulesCommand::Check {
            dirs,
            strict,
            exceptions,
            output,
        }) => {
            let lint = posaudit::app::lint::lint(&dirs, exceptions.as_deref(), today_shanghai())?;
            for e in &lint.errors {
                say("error", e);
            }
            for w in &lint.warnings {
                say("warning", w);
            }
            write_outputs(&output, &[Format::Sarif], |_, w| {
                serde_json::to_writer_pretty(w, &output::sarif::lint(&lint.errors, &lint.warnings)).map_err(std::io::Error::other)
            })?;
            println!(
                "{} rules: {} errors, {} warnings",
                lint.rules,
                lint.errors.len(),
                lint.warnings.len()
            );
            let failed = !lint.errors.is_empty() || (strict && !lint.warnings.is_empty());
            Ok(if failed { exit::INVALID_RULES } else { exit::CLEAN })
        }
    }
}

fn main() -> ExitCode {
    posaudit::alloc::configure();
    posaudit::cleanup::install();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap exits 2 for usage errors; --help and --version are not errors.
            return ExitCode::from(if e.use_stderr() { exit::ERROR as u8 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            say("error", &e);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
