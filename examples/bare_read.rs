//! The floor for the scale benchmark: a bare polars read of the same files
//! a scan reads (every input must be parsed once), and nothing else.
//!
//! `cargo run --release --example bare_read -- DIR`

/// See `posaudit::alloc` for why.
#[global_allocator]
static GLOBAL: posaudit::alloc::MiMalloc = posaudit::alloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "csv" || e == "parquet"));
    v.sort();
    v
}

fn scan(paths: &[PathBuf]) -> PolarsResult<LazyFrame> {
    let refs: Vec<PlRefPath> = paths.iter().map(|p| PlRefPath::new(p.to_string_lossy().to_string())).collect();
    if paths[0].extension().is_some_and(|e| e == "parquet") {
        LazyFrame::scan_parquet_files(refs.into(), ScanArgsParquet::default())
    } else {
        LazyCsvReader::new_paths(refs.into()).finish()
    }
}

fn main() -> PolarsResult<()> {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: bare_read DIR"));
    let started = Instant::now();
    // The daily exports together (one schema), the other inputs one by one.
    // (A single transactions file is one of the inputs below.)
    let daily = data_files(&dir.join("transactions"));
    let mut rows = if daily.is_empty() { 0 } else { scan(&daily)?.collect()?.height() };
    for f in data_files(&dir) {
        rows += scan(std::slice::from_ref(&f))?.collect()?.height();
    }
    let secs = started.elapsed().as_secs_f64();
    println!("bare polars read: {rows} rows in {secs:.2} s ({:.0} rows/s)", rows as f64 / secs);
    Ok(())
}
