//! `posaudit-gen`: write a folder of synthetic inputs (applications, daily
//! transaction files, fees, fee changes) with planted violations, and
//! `labels.csv` saying which merchant carries which.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Parser;

use posaudit_gen::{generate, GenFormat, GenOptions};

/// Generate synthetic inputs with planted violations (same seed, same bytes).
#[derive(Debug, Parser)]
#[command(name = "posaudit-gen", version)]
struct GenArgs {
    #[arg(long, default_value_t = 40, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    merchants: usize,
    #[arg(long, default_value_t = 14, value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=3660))]
    days: u32,
    /// Transactions per day across all merchants.
    #[arg(long = "txns-per-day", default_value_t = 240, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000_000))]
    txns_per_day: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value = "csv")]
    format: GenFormat,
    /// First day of the period.
    #[arg(long, value_parser = parse_date, default_value = "2026-11-01")]
    start: NaiveDate,
    /// Share of merchants with one planted violation each (0 to 1).
    #[arg(long, default_value_t = 0.05, value_parser = parse_share)]
    violations: f64,
    /// Append a few unparseable transaction rows to the last day.
    #[arg(long = "bad-rows")]
    bad_rows: bool,
    /// A tidy background without honest look-alikes (many MCCs, night
    /// businesses, chains, shoppers at several merchants): how the demo was made.
    #[arg(long)]
    tidy: bool,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

/// A share between 0 and 1.
fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not between 0 and 1"))
    }
}

fn main() -> ExitCode {
    let g = GenArgs::parse();
    let opts = GenOptions {
        merchants: g.merchants,
        days: g.days,
        txns_per_day: g.txns_per_day,
        seed: g.seed,
        out: g.out,
        format: g.format,
        start: g.start,
        violation_share: g.violations,
        bad_rows: g.bad_rows,
        lookalikes: !g.tidy,
    };
    let started = std::time::Instant::now();
    match generate(&opts) {
        Ok(s) => {
            println!(
                "wrote {} merchants and {} transactions in {} files to {} ({:.1} s)",
                s.merchants,
                s.transactions,
                s.files.len(),
                opts.out.display(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write in {}: {e}", opts.out.display());
            ExitCode::from(2)
        }
    }
}
