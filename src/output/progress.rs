//! Progress on long scans: bars on stderr (bytes read with throughput and
//! ETA, rules evaluated), shown only on a terminal and never with
//! `--quiet`; `--verbose` adds phase and per-rule timings as log lines.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{RuleRun, RuleStatus};

pub struct Progress {
    multi: Option<MultiProgress>,
    verbose: bool,
    quiet: bool,
}

impl Progress {
    /// Bars when stderr is a terminal and not quiet; log lines when verbose.
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let show = !quiet && std::io::stderr().is_terminal();
        Progress {
            multi: show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4))),
            verbose,
            quiet,
        }
    }

    pub fn silent() -> Progress {
        Progress {
            multi: None,
            verbose: false,
            quiet: true,
        }
    }

    fn bar(&self, total: u64, template: &str) -> ProgressBar {
        match &self.multi {
            None => ProgressBar::hidden(),
            Some(m) => {
                let pb = m.add(ProgressBar::new(total));
                pb.set_style(
                    ProgressStyle::with_template(template)
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                pb.enable_steady_tick(Duration::from_millis(250));
                pb
            }
        }
    }

    /// Input bytes: throughput and time left.
    pub fn reading(&self, total_bytes: u64) -> ProgressBar {
        self.bar(
            total_bytes,
            "reading  [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
    }

    pub fn rules(&self, total: u64) -> ProgressBar {
        self.bar(total, "rules    [{bar:30}] {pos}/{len} {msg}")
    }

    /// A phase finished (verbose only).
    pub fn phase(&self, what: &str, elapsed: Duration, detail: &str) {
        if self.verbose {
            let peak = match (crate::alloc::rss_mib("VmRSS:"), crate::alloc::rss_mib("VmHWM:")) {
                (Some(now), Some(peak)) => format!(" (memory {now} MiB, peak so far {peak} MiB)"),
                _ => String::new(),
            };
            self.log(&format!("{what}: {:.2} s {detail}{peak}", elapsed.as_secs_f64()));
        }
    }

    /// A warning the operator should see before a long run goes on (not
    /// with `--quiet`).
    pub(crate) fn warn(&self, line: &str) {
        if !self.quiet {
            self.log(&format!("warning: {line}"));
        }
    }

    /// A line for `--verbose` only.
    pub(crate) fn note(&self, line: &str) {
        if self.verbose {
            self.log(line);
        }
    }

    /// A rule finished: advance the bar; log its time when verbose.
    pub(crate) fn rule_done(&self, bar: &ProgressBar, run: &RuleRun) {
        bar.inc(1);
        bar.set_message(run.rule_id.clone());
        if self.verbose {
            let status = match run.status {
                RuleStatus::Ran => format!("{} findings", run.findings),
                RuleStatus::Skipped => format!("skipped: {}", run.reason.as_deref().unwrap_or("")),
                RuleStatus::Failed => format!("FAILED: {}", run.reason.as_deref().unwrap_or("")),
            };
            self.log(&format!(
                "rule {:<14} {:>7} ms  {:>10} rows  {status}",
                run.rule_id, run.elapsed_ms, run.rows
            ));
        }
    }

    fn log(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}
