//! Rewrite a folder of inputs in the contract's CSV form as Parquet with
//! the contract's types (money as Decimal(18,2), times as datetimes, dates
//! as dates, rates as Decimal(18,6), coordinates as floats): the kind of
//! Parquet a warehouse writes, for benchmarks and tests of typed reading.
//! Rows posaudit rejects are left out (a typed column cannot hold them);
//! the example says how many.
//!
//! `cargo run --release --example typed_parquet -- IN_DIR OUT_DIR`

use std::path::{Path, PathBuf};

use polars::prelude::*;
use posaudit::input::mapping::InputMapping;
use posaudit::input::read::read_csv_bytes;
use posaudit::input::InputKind;

fn convert(kind: InputKind, from: &Path, to: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(from)?;
    let parsed = read_csv_bytes(kind, &bytes, &InputMapping::default())?;
    let mut df = posaudit::input::typed::contract_frame(parsed.df)?;
    ParquetWriter::new(std::fs::File::create(to)?).finish(&mut df)?;
    if !parsed.rejected.is_empty() {
        eprintln!("{}: {} rejected rows left out", from.display(), parsed.rejected.len());
    }
    Ok(())
}

fn csv_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "csv"));
    v.sort();
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (from, to) = match args.as_slice() {
        [_, a, b] => (PathBuf::from(a), PathBuf::from(b)),
        _ => return Err("usage: typed_parquet IN_DIR OUT_DIR".into()),
    };
    std::fs::create_dir_all(&to)?;
    for kind in InputKind::ALL {
        let name = kind.name();
        let file = from.join(format!("{name}.csv"));
        if file.is_file() {
            convert(kind, &file, &to.join(format!("{name}.parquet")))?;
        }
        let dir = from.join(name);
        if dir.is_dir() {
            std::fs::create_dir_all(to.join(name))?;
            for f in csv_files(&dir) {
                let out = to.join(name).join(f.with_extension("parquet").file_name().expect("a file name"));
                convert(kind, &f, &out)?;
            }
        }
    }
    Ok(())
}
