//! Reading a Parquet file, column by column.
//!
//! A Parquet file's values pass the same checks as a CSV file's text, so
//! that both formats accept and reject exactly the same values: columns of
//! the contract's own type are taken as they are (`typed`), other columns
//! are cast to text and parsed. Unlike a CSV file, whose rows arrive one at
//! a time, a Parquet file is checked a whole column at a time, and a text
//! column whose every value is already good is taken whole, without a copy.
//! A row is rejected for its first refused value, in the order a row is
//! checked (a binary value that is not UTF-8 first, then the contract's
//! columns in order), which is the reason the row-by-row parser gives.
//! Only a mapping with kinds of row (`rows`), which chooses a row's
//! columns by its values, reads row by row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use super::categories;
use super::mapping::InputMapping;
use super::nullable::Nullable;
use super::read::{
    beside_digest, decimal_scale, finish_file, io_err, parse_cell, streamed_file, Builder, Cell, CellError, Header, ParsedFile, PartSink,
    RowParser,
};
use super::typed::{typed_column, TypedColumn, TypedValues};
use super::values;
use super::{InputError, RejectedRow};
use crate::contract::{ColType, ColumnSpec, InputKind};

const NOT_UTF8: &str = "value is binary data that is not valid UTF-8 text";

/// The first refusal of each refused row: (order of the check, column,
/// value as written, reason). Refusals are rare, so a map of them is small.
#[derive(Default)]
struct Refusals(BTreeMap<usize, (usize, String, String, String)>);

impl Refusals {
    /// Keep this refusal if the row has none from an earlier check.
    fn add(&mut self, row: usize, order: usize, column: &str, value: &str, reason: impl ToString) {
        let earlier = self.0.get(&row).is_some_and(|(o, ..)| *o <= order);
        if !earlier {
            self.0
                .insert(row, (order, column.to_string(), value.to_string(), reason.to_string()));
        }
    }
}

/// A Parquet file is read in batches of whole row groups, each of at
/// least this many rows (or the whole file, if it has fewer), converted on
/// their own and in parallel. Read whole, a 10M-row file held its bytes,
/// every column as polars read it, the same columns as text and the
/// parsed columns at once, and was converted on one thread.
const BATCH_ROWS: usize = 1 << 20;

/// The rows a Parquet file holds, as its footer says, without reading
/// them (for the memory estimate before a scan); None where the file is
/// not readable as Parquet (the read says why).
pub(crate) fn row_count(path: &Path) -> Option<usize> {
    ParquetReader::new(std::fs::File::open(path).ok()?).num_rows().ok()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn read_parquet(
    kind: InputKind,
    path: &Path,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    on_batch: Option<&PartSink>,
    count: &(dyn Fn(u64) + Sync),
    coded: bool,
) -> Result<ParsedFile, InputError> {
    // Batches handed on are held only until their wave is: smaller ones
    // keep a partitioned scan's read under its memory.
    let batch_rows = match on_batch {
        Some(_) => STREAMED_BATCH_ROWS,
        None => BATCH_ROWS,
    };
    read_in_batches(kind, path, display, src, header, mapping, on_batch, count, coded, batch_rows)
}

/// The batches of a file whose rows a partitioned scan takes as they are
/// read: one row group of polars' writer (and of many others).
const STREAMED_BATCH_ROWS: usize = 1 << 18;

/// As `read_parquet`, in batches of at least `batch_rows` rows. With
/// `on_batch` (a partitioned scan), each batch's accepted rows go there, in
/// the file's order, as soon as the batches before it have; the file is
/// never whole in memory. With `coded`, each batch's few-valued text is
/// coded (`categories::code_batch`) before the next is added: the file's text of
/// them is never whole in memory (2.3 GB at 10M rows of text Parquet).
#[allow(clippy::too_many_arguments)]
fn read_in_batches(
    kind: InputKind,
    path: &Path,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    on_batch: Option<&PartSink>,
    count: &(dyn Fn(u64) + Sync),
    coded: bool,
    batch_rows: usize,
) -> Result<ParsedFile, InputError> {
    let parquet_err = |e: PolarsError| InputError::Parquet {
        path: PathBuf::from(path),
        message: e.to_string(),
    };
    let open = || std::fs::File::open(path).map_err(|e| io_err(path, e));
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let metadata = ParquetReader::new(open()?).get_metadata().map_err(parquet_err)?.clone();
    let batches = batches(metadata.row_groups.iter().map(|g| g.num_rows()), batch_rows);
    // The bytes a batch counts for the progress bar: its share of the
    // file, the last batch what is left, so that the counts add up to the
    // file's size (an empty file's included). In 128 bits: a file's bytes
    // times a row count can pass 2^64.
    let bytes_before = |row: usize| (u128::from(size) * row as u128 / metadata.num_rows.max(1) as u128) as u64;
    let read_batch = |&(offset, len): &(usize, usize)| -> Result<Batch, InputError> {
        let mut reader = ParquetReader::new(open()?);
        // One batch is the whole file, read with polars' own parallelism;
        // several are read side by side, each on one thread, each through
        // a footer of its own row groups only (`of_rows`).
        let reader = match batches.len() {
            1 => {
                reader.set_metadata(metadata.clone());
                reader
            }
            _ => {
                reader.set_metadata(std::sync::Arc::new(of_rows(&metadata, offset, len)));
                reader.read_parallel(ParallelStrategy::None)
            }
        };
        let raw = reader.finish().map_err(parquet_err)?;
        let batch = convert(kind, path, display, src, header, mapping, raw, offset)?;
        let end = match offset + len >= metadata.num_rows {
            true => size,
            false => bytes_before(offset + len),
        };
        count(end - bytes_before(offset));
        Ok(batch)
    };
    let (digest, read) = beside_digest(path, || -> Result<(Option<DataFrame>, u64, Vec<RejectedRow>), InputError> {
        let (mut all, mut accepted, mut rejected) = (None::<DataFrame>, 0u64, Vec::new());
        // In waves of one batch per thread, taken in order: a batch's
        // text is held only until its wave is coded or handed on.
        for chunk in batches.chunks(rayon::current_num_threads().max(1)) {
            let done: Vec<Result<Batch, InputError>> = chunk.par_iter().map(read_batch).collect();
            for b in done {
                let mut b = b?;
                if coded {
                    // In the file's order, as the whole file was coded:
                    // each column's values get their codes in row order.
                    categories::code_batch(&mut b.df, kind).map_err(|e| InputError::Internal(e.to_string()))?;
                }
                accepted += b.df.height() as u64;
                rejected.extend(b.rejected);
                match (on_batch, &mut all) {
                    (Some(sink), _) => sink(b.df)?,
                    (None, None) => all = Some(b.df),
                    (None, Some(acc)) => {
                        acc.vstack_mut_owned(b.df).map_err(|e| InputError::Internal(e.to_string()))?;
                    }
                }
            }
        }
        if let Some(df) = &mut all {
            df.rechunk_mut_par();
        }
        debug_assert!(on_batch.is_some() || all.as_ref().is_some_and(|df| df.height() as u64 == accepted));
        Ok((all, accepted, rejected))
    });
    let (df, accepted, rejected) = read?;
    let digest = digest.map_err(|e| io_err(path, e))?;
    let read = metadata.num_rows as u64;
    Ok(match df {
        Some(df) => finish_file(kind, display, digest, read, df, rejected),
        None => streamed_file(kind, display, digest, read, accepted, rejected),
    })
}

/// Batches of whole row groups of at least `batch_rows` rows each (the
/// last may have fewer), as (first row, rows); one batch for a file
/// without rows.
fn batches(group_rows: impl Iterator<Item = usize>, batch_rows: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut len) = (0, 0);
    for rows in group_rows {
        len += rows;
        if len >= batch_rows {
            out.push((start, len));
            start += len;
            len = 0;
        }
    }
    if len > 0 || out.is_empty() {
        out.push((start, len));
    }
    out
}

/// `metadata` (a file's footer) with only the row groups of rows `offset`
/// to `offset + len`, which `batches` made of whole row groups: a reader
/// given it reads those groups and no other. Given the whole footer and a
/// slice instead, polars 0.55 goes through every row group from the
/// file's first (`rg_to_dfs_optionally_par_over_columns`), those before
/// the slice with an empty range: the 10M-row month as typed Parquet (134
/// row groups), read in 36 batches by a partitioned scan, spent 10.0 s of
/// CPU in ZSTD against 4.1 s for the in-memory read's 10 batches (`perf`),
/// and its read took twice as long. Now 11.3 s against 20.1 s, and the
/// in-memory read 7.4 s against 11.2 s.
fn of_rows(metadata: &FileMetadata, offset: usize, len: usize) -> FileMetadata {
    let mut start = 0;
    let groups = metadata
        .row_groups
        .iter()
        .filter(|g| {
            let at = start;
            start += g.num_rows();
            (offset..offset + len).contains(&at)
        })
        .cloned()
        .collect::<Vec<_>>();
    debug_assert_eq!(
        groups.iter().map(|g| g.num_rows()).sum::<usize>(),
        len,
        "batches are whole row groups"
    );
    FileMetadata {
        num_rows: len,
        row_groups: groups,
        ..metadata.clone()
    }
}

/// A batch converted: its accepted rows and its rejected rows.
struct Batch {
    df: DataFrame,
    rejected: Vec<RejectedRow>,
}

/// The rows of `raw`, rows `offset` on of a file, checked as the contract
/// says: accepted (`df`) or rejected with the reason.
#[allow(clippy::too_many_arguments)]
fn convert(
    kind: InputKind,
    path: &Path,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    raw: DataFrame,
    offset: usize,
) -> Result<Batch, InputError> {
    // A column that holds no single values (a list, a struct) stops the run.
    if let Some(c) = raw.columns().iter().find(|c| c.dtype().is_nested()) {
        return Err(bad_type(path, c.as_materialized_series()));
    }
    let specs = kind.columns();
    let names: Vec<String> = raw.get_column_names().iter().map(|n| n.to_string()).collect();
    // The file's columns some contract column or extra reads, in the order
    // a row's values are checked.
    let used: Vec<usize> = header
        .positions
        .iter()
        .flatten()
        .copied()
        .chain(header.extras.iter().map(|(i, _)| *i))
        .collect();
    let mut typed: Vec<Option<TypedColumn>> = (0..raw.width()).map(|_| None).collect();
    for (spec, pos) in specs.iter().zip(&header.positions) {
        if let Some(i) = *pos {
            typed[i] = typed_column(spec, raw.columns()[i].as_materialized_series(), mapping);
        }
    }
    let mut refusals = Refusals::default();
    let mut texts: Vec<Option<StringChunked>> = vec![None; raw.width()];
    for (order, &i) in used.iter().enumerate() {
        if typed[i].is_some() || texts[i].is_some() {
            continue;
        }
        let (text, not_utf8) = as_text(path, raw.columns()[i].as_materialized_series())?;
        for row in not_utf8 {
            refusals.add(row, order, &names[i], "", NOT_UTF8);
        }
        texts[i] = Some(text);
    }
    let n = raw.height();
    drop(raw);
    let df = if header.cases.is_empty() {
        by_columns(kind, header, mapping, src, n, offset, typed, &texts, used.len(), &mut refusals)?
    } else {
        by_rows(kind, header, mapping, src, n, offset, &texts, &mut refusals)?
    };
    let rejected = refusals
        .0
        .into_iter()
        .map(|(row, (_, column, value, reason))| RejectedRow::new(kind, display, (offset + row) as u64 + 1, &column, &value, reason))
        .collect();
    Ok(Batch { df, rejected })
}

fn bad_type(path: &Path, s: &Series) -> InputError {
    InputError::Parquet {
        path: PathBuf::from(path),
        message: format!(
            "column `{}` holds values of type {}, not text, numbers or dates",
            s.name(),
            s.dtype()
        ),
    }
}

/// A column as the text the parser reads, and the rows whose binary value
/// is not UTF-8 (null in the text; they reject their rows only).
///
/// In the chunks polars read it in (one per row group): the column is
/// read in order or by row, which chunks allow, and a file read whole is
/// made one chunk once its batches are stacked. Made one chunk here as
/// well, each text column of each batch was copied once more (10M rows of
/// typed Parquet: the read 8.20 s with the copy, 7.37 s without).
fn as_text(path: &Path, s: &Series) -> Result<(StringChunked, Vec<usize>), InputError> {
    let bad_type = || bad_type(path, s);
    let mut not_utf8 = Vec::new();
    let text = match s.dtype() {
        DataType::Binary => s
            .binary()
            .map_err(|_| bad_type())?
            .iter()
            .enumerate()
            .map(|(row, v)| {
                v.and_then(|v| match std::str::from_utf8(v) {
                    Ok(t) => Some(t.to_string()),
                    Err(_) => {
                        not_utf8.push(row);
                        None
                    }
                })
            })
            .collect(),
        // The text path reads a datetime's first 19 characters (whole seconds).
        DataType::Datetime(_, _) => s
            .cast(&DataType::String)
            .map_err(|_| bad_type())?
            .str()
            .map_err(|_| bad_type())?
            .apply_values(|v| std::borrow::Cow::Owned(v.get(..19).unwrap_or(v).to_string())),
        _ => s
            .cast(&DataType::String)
            .map_err(|_| bad_type())?
            .str()
            .map_err(|_| bad_type())?
            .clone(),
    };
    Ok((text, not_utf8))
}

/// The rows of a mapping with kinds of row: each row's columns depend on
/// its values, so each row goes through the row parser, as a CSV row does.
#[allow(clippy::too_many_arguments)]
fn by_rows(
    kind: InputKind,
    header: &Header,
    mapping: &InputMapping,
    src: u32,
    n: usize,
    offset: usize,
    texts: &[Option<StringChunked>],
    refusals: &mut Refusals,
) -> Result<DataFrame, InputError> {
    let mut parser = RowParser::new(kind, header, mapping, n, false);
    for row in 0..n {
        if refusals.0.contains_key(&row) {
            continue;
        }
        let field = |i: usize| texts.get(i).and_then(Option::as_ref).and_then(|c| c.get(row));
        if let Err((column, value, reason)) = parser.push(header, field, src, (offset + row) as u64 + 1) {
            refusals.add(row, 0, &column, &value, reason);
        }
    }
    parser.finish(header).map_err(|e| InputError::Internal(e.to_string()))
}

/// Every row checked a column at a time; the refused rows are left out at
/// the end. `checks_before` is how many checks (UTF-8, one per column
/// read) come before the contract's columns.
#[allow(clippy::too_many_arguments)]
fn by_columns(
    kind: InputKind,
    header: &Header,
    mapping: &InputMapping,
    src: u32,
    n: usize,
    offset: usize,
    mut typed: Vec<Option<TypedColumn>>,
    texts: &[Option<StringChunked>],
    checks_before: usize,
    refusals: &mut Refusals,
) -> Result<DataFrame, InputError> {
    let mut parser = RowParser::new(kind, header, mapping, 0, false);
    for (j, spec) in kind.columns().iter().enumerate() {
        let order = checks_before + j;
        let builder = &mut parser.builders[j];
        match header.positions[j] {
            Some(i) => match typed[i].take() {
                Some(column) => *builder = typed_builder(spec, column, mapping, order, refusals),
                None => {
                    let text = texts[i].as_ref().expect("every column read has its text");
                    match whole(spec, text, mapping) {
                        Some(ready) => *builder = Builder::Ready(ready),
                        None => {
                            for (row, v) in text.iter().enumerate() {
                                let raw = v.unwrap_or("");
                                match parse_cell(mapping, spec, raw, false) {
                                    Ok(cell) => builder.push(cell),
                                    Err(e) => {
                                        refusals.add(row, order, spec.name, raw, e);
                                        builder.push(Cell::Null);
                                    }
                                }
                            }
                        }
                    }
                }
            },
            // Not in the file: the mapping's constant or the title's value,
            // the same for every row.
            None => match mapping.constant(spec.name).or(header.titled[j].as_deref()) {
                None => (0..n).for_each(|_| builder.push(Cell::Null)),
                Some(raw) => match parse_cell(mapping, spec, raw, false) {
                    Ok(cell) => (0..n).for_each(|_| builder.push(cell)),
                    Err(e) => (0..n).for_each(|row| {
                        refusals.add(row, order, spec.name, raw, e.clone());
                        builder.push(Cell::Null);
                    }),
                },
            },
        }
    }
    for (b, (pos, _)) in parser.extras.iter_mut().zip(&header.extras) {
        let text = texts[*pos].as_ref().expect("every column read has its text");
        for v in text.iter() {
            match v.map(values::clean).filter(|s| !s.is_empty()) {
                Some(s) => b.append_value(s),
                None => b.append_null(),
            }
        }
    }
    parser.src = vec![src; n];
    parser.lines = (offset as u64 + 1..=(offset + n) as u64).collect();
    let df = parser.finish(header).map_err(|e| InputError::Internal(e.to_string()))?;
    if refusals.0.is_empty() {
        return Ok(df);
    }
    let keep: BooleanChunked = (0..n).map(|row| !refusals.0.contains_key(&row)).collect();
    df.filter(&keep).map_err(|e| InputError::Internal(e.to_string()))
}

/// A typed column's builder: its values as they are, the values that were
/// not parsed from their text, and a refusal for each missing required value.
fn typed_builder(spec: &ColumnSpec, column: TypedColumn, mapping: &InputMapping, order: usize, refusals: &mut Refusals) -> Builder {
    let TypedColumn { values, fallback } = column;
    // Rows with no value (a fallback row's value is decided by its text).
    let mut missing: Vec<usize> = if spec.required_value {
        let nulls: Vec<bool> = match &values {
            TypedValues::I64(v) => v.iter().map(Option::is_none).collect(),
            TypedValues::F64(v) => v.iter().map(Option::is_none).collect(),
            TypedValues::Date(v) => v.iter().map(Option::is_none).collect(),
            // A "never" has no date but is a value.
            TypedValues::Expiry(_, p) => p.iter().map(Option::is_none).collect(),
        };
        nulls.iter().enumerate().filter(|(_, null)| **null).map(|(row, _)| row).collect()
    } else {
        Vec::new()
    };
    // `fallback` is in row order.
    missing.retain(|row| fallback.binary_search_by_key(row, |(r, _)| *r).is_err());
    for row in missing {
        refusals.add(row, order, spec.name, "", CellError::Empty);
    }
    let mut builder = match values {
        TypedValues::I64(v) => match decimal_scale(spec.ty) {
            Some(scale) => Builder::Decimal(Nullable::from(v).map(i128::from), scale),
            None => Builder::I64(v.into()),
        },
        TypedValues::F64(v) => Builder::F64(v.into()),
        TypedValues::Date(v) => Builder::Date(v),
        TypedValues::Expiry(d, p) => Builder::Expiry(d, p),
    };
    for (row, text) in &fallback {
        match parse_cell(mapping, spec, text, false) {
            Ok(cell) => builder.set(*row, cell),
            Err(e) => refusals.add(*row, order, spec.name, text, e),
        }
    }
    builder
}

/// The text column as it is, when every value is one the parser would
/// keep unchanged: no value map, nothing to trim, no empty value, every
/// value of an enumeration allowed, no missing required value.
fn whole(spec: &ColumnSpec, text: &StringChunked, mapping: &InputMapping) -> Option<StringChunked> {
    let allowed: &[&str] = match spec.ty {
        ColType::Str | ColType::List => &[],
        ColType::Enum(allowed) => allowed,
        _ => return None,
    };
    if mapping.values.contains_key(spec.name) || (spec.required_value && text.null_count() > 0) {
        return None;
    }
    let good = |v: &str| !v.is_empty() && values::clean(v).len() == v.len() && (allowed.is_empty() || allowed.contains(&v));
    super::views::all_values(text, good).then(|| text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::mapping::Mapping;
    use crate::input::read::{read_csv_bytes, read_header, LINE_COL};
    use crate::input::read_file;

    /// The reasons of a file's rejected rows: (line, column, reason).
    fn reasons(f: &ParsedFile, header_lines: u64) -> Vec<(u64, String, String)> {
        f.rejected
            .iter()
            .map(|r| (r.line - header_lines, r.column.clone(), r.reason.clone()))
            .collect()
    }

    /// Read `df` written as Parquet and `csv` through the same mapping.
    fn both(df: DataFrame, csv: &str, mapping_yaml: &str) -> (ParsedFile, ParsedFile) {
        let m = Mapping::parse(mapping_yaml, Path::new("m.yaml")).unwrap();
        let text = read_csv_bytes(InputKind::Transactions, csv.as_bytes(), m.get(InputKind::Transactions)).unwrap();
        (parquet(df, mapping_yaml), text)
    }

    fn parquet(mut df: DataFrame, mapping_yaml: &str) -> ParsedFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        let m = Mapping::parse(mapping_yaml, Path::new("m.yaml")).unwrap();
        let kind = InputKind::Transactions;
        let mapping = m.get(kind);
        let header = read_header(kind, &path, mapping).unwrap();
        read_file(kind, &path, "t.parquet", 0, &header, mapping, &indicatif::ProgressBar::hidden()).unwrap()
    }

    #[test]
    fn text_columns_checked_a_column_at_a_time_accept_and_reject_as_csv_rows_do() {
        let col = |name: &str, v: &[Option<&str>]| Column::new(name.into(), v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>());
        let n = 6;
        let df = DataFrame::new(
            n,
            vec![
                col(
                    "txn_id",
                    &[Some("T1"), Some(" T2 "), Some("T3"), Some("T4"), Some("T5"), Some("T6")],
                ),
                col(
                    "merchant_id",
                    &[Some("M1"), Some("M1"), None, Some("M1"), Some("M1"), Some("=\"M2\"")],
                ),
                col("txn_time", &[Some("2026-09-21 14:13:20"); 6]),
                // Row 3 has two bad values (merchant, type): the merchant is
                // checked first. Row 4's type is not one of the allowed.
                col(
                    "txn_type",
                    &[
                        Some("purchase"),
                        Some("purchase"),
                        Some("cashout"),
                        Some("cashout"),
                        Some("refund"),
                        Some("purchase"),
                    ],
                ),
                col("status", &[Some("approved"); 6]),
                col(
                    "amount",
                    &[Some("1.00"), Some("2.00"), Some("3.00"), Some("4.00"), Some("5.001"), Some("6")],
                ),
                col("payment_method", &[Some("card"); 6]),
                col("memo", &[Some(" x "), None, Some(""), Some("y"), Some("z"), Some("w")]),
            ],
        )
        .unwrap();
        let csv = "txn_id,merchant_id,txn_time,txn_type,status,amount,payment_method,memo\n\
T1,M1,2026-09-21 14:13:20,purchase,approved,1.00,card, x \n \
T2 ,M1,2026-09-21 14:13:20,purchase,approved,2.00,card,\n\
T3,,2026-09-21 14:13:20,cashout,approved,3.00,card,\n\
T4,M1,2026-09-21 14:13:20,cashout,approved,4.00,card,y\n\
T5,M1,2026-09-21 14:13:20,refund,approved,5.001,card,z\n\
T6,\"=\"\"M2\"\"\",2026-09-21 14:13:20,purchase,approved,6,card,w\n";
        let absent = "transactions:\n  absent: [terminal_sn, card_type, card_no_masked, card_hash, entry_mode, mcc, location_city_code, original_txn_id, settlement_account_number, fee, lat, lon]\n";
        let (pq, text) = both(df, csv, absent);
        assert_eq!(pq.stats.rows_accepted, 3, "{:?}", pq.rejected);
        assert_eq!(reasons(&pq, 0), reasons(&text, 1));
        assert_eq!(reasons(&pq, 0)[0].1, "merchant_id", "the first bad value in a row's order");
        let without_lines = |df: &DataFrame| df.drop(LINE_COL).unwrap();
        assert!(
            without_lines(&pq.df).equals_missing(&without_lines(&text.df)),
            "{:?}\n{:?}",
            pq.df,
            text.df
        );

        // A constant that does not parse rejects every row, as in a CSV file.
        let df = DataFrame::new(
            1,
            vec![
                col("txn_id", &[Some("T1")]),
                col("merchant_id", &[Some("M1")]),
                col("txn_time", &[Some("2026-09-21 14:13:20")]),
                col("txn_type", &[Some("purchase")]),
                col("amount", &[Some("1.00")]),
                col("payment_method", &[Some("card")]),
            ],
        )
        .unwrap();
        let csv = "txn_id,merchant_id,txn_time,txn_type,amount,payment_method\nT1,M1,2026-09-21 14:13:20,purchase,1.00,card\n";
        let constant = format!("{absent}  constants:\n    status: maybe\n");
        let (pq, text) = both(df, csv, &constant);
        assert_eq!(pq.stats.rows_rejected, 1);
        assert_eq!(reasons(&pq, 0), reasons(&text, 1));
    }

    /// A file of `n` rows (11 in most tests) in row groups of 3, rows 2, 5, 6 and 10 refused
    /// (a bad amount, a missing merchant, an unknown type), read in
    /// batches of `batch_rows` (handed to a sink with `streamed`).
    fn in_batches(n: usize, mapping_yaml: &str, batch_rows: usize, streamed: bool, coded: bool) -> (ParsedFile, DataFrame) {
        let text = |f: &dyn Fn(usize) -> Option<String>| (0..n).map(f).collect::<Vec<_>>();
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new("txn_id".into(), text(&|i| Some(format!("T{i}")))),
                Column::new("merchant_id".into(), text(&|i| (i != 5).then(|| format!("M{}", i % 4)))),
                Column::new("txn_time".into(), text(&|i| Some(format!("2026-09-{:02} 14:13:20", i + 1)))),
                Column::new(
                    "txn_type".into(),
                    text(&|i| Some(if i == 6 { "cashout" } else { "purchase" }.into())),
                ),
                Column::new("status".into(), text(&|_| Some("approved".into()))),
                Column::new(
                    "amount".into(),
                    text(&|i| Some(if i == 2 || i == 10 { "1.001".into() } else { format!("{i}.50") })),
                ),
                Column::new("payment_method".into(), text(&|_| Some("card".into()))),
                Column::new("memo".into(), text(&|i| Some(if i % 3 == 0 { "y" } else { " x " }.into()))),
            ],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_row_group_size(Some(3))
            .finish(&mut df)
            .unwrap();
        let m = Mapping::parse(mapping_yaml, Path::new("m.yaml")).unwrap();
        let kind = InputKind::Transactions;
        let mapping = m.get(kind);
        let header = read_header(kind, &path, mapping).unwrap();
        let got = std::sync::Mutex::new(Vec::new());
        let sink = |df: DataFrame| -> Result<(), InputError> {
            got.lock().unwrap().push(df);
            Ok(())
        };
        let on_batch: Option<&PartSink> = if streamed { Some(&sink) } else { None };
        let counted = std::sync::atomic::AtomicU64::new(0);
        let count = |n: u64| {
            counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        let file = read_in_batches(kind, &path, "t.parquet", 0, &header, mapping, on_batch, &count, coded, batch_rows).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        {
            use sha2::Digest;
            assert_eq!(
                file.stats.sha256,
                crate::input::read::hex(&sha2::Sha256::digest(&bytes)),
                "the file's own digest"
            );
        }
        assert_eq!(
            counted.into_inner(),
            bytes.len() as u64,
            "progress counts the whole file, batch by batch"
        );
        let mut handed = DataFrame::empty();
        for part in got.into_inner().unwrap() {
            match handed.width() {
                0 => handed = part,
                _ => {
                    handed.vstack_mut_owned(part).unwrap();
                }
            }
        }
        (file, handed)
    }

    #[test]
    fn batches_of_row_groups_accept_reject_and_number_rows_as_the_whole_file_does() {
        assert_eq!(batches([3, 3, 3, 2].into_iter(), 4), [(0, 6), (6, 5)]);
        assert_eq!(batches([3, 3, 3, 2].into_iter(), 3), [(0, 3), (3, 3), (6, 3), (9, 2)]);
        assert_eq!(batches([3, 3].into_iter(), 100), [(0, 6)]);
        assert_eq!(batches(std::iter::empty(), 4), [(0, 0)]);
        let absent = "transactions:\n  absent: [terminal_sn, card_type, card_no_masked, card_hash, entry_mode, mcc, location_city_code, original_txn_id, settlement_account_number, fee, lat, lon]\n";
        // Kinds of row go through the row parser, row by row.
        let cases = format!("{absent}  rows:\n    - when: {{memo: y}}\n      constants: {{status: declined}}\n");
        // A file without rows: nothing accepted, its bytes counted all the same.
        let (empty, _) = in_batches(0, absent, 4, false, false);
        assert_eq!((empty.stats.rows_read, empty.df.height()), (0, 0));
        for mapping in [absent.to_string(), cases] {
            let (whole, _) = in_batches(11, &mapping, usize::MAX, false, false);
            assert_eq!(whole.stats.rows_accepted, 7, "{:?}", whole.rejected);
            let lines: Vec<u64> = whole.rejected.iter().map(|r| r.line).collect();
            assert_eq!(lines, [3, 6, 7, 11]);
            for batch_rows in [1, 4, 7] {
                let (batched, _) = in_batches(11, &mapping, batch_rows, false, false);
                assert_eq!(reasons(&batched, 0), reasons(&whole, 0), "batches of {batch_rows}");
                assert!(
                    batched.df.equals_missing(&whole.df),
                    "batches of {batch_rows}:\n{:?}\n{:?}",
                    batched.df,
                    whole.df
                );
                assert_eq!(batched.df.column(LINE_COL).unwrap().n_chunks(), 1, "rechunked");
                // Coded batch by batch as the whole frame is coded.
                let (coded, _) = in_batches(11, &mapping, batch_rows, false, true);
                let mut whole_coded = whole.df.clone();
                categories::code(&mut whole_coded, InputKind::Transactions, &[]).unwrap();
                assert!(coded.df.column("merchant_id").unwrap().dtype().is_categorical());
                assert!(coded.df.equals_missing(&whole_coded), "coded in batches of {batch_rows}");
                let (streamed, handed) = in_batches(11, &mapping, batch_rows, true, false);
                assert!(streamed.streamed && streamed.df.height() == 0);
                assert_eq!(streamed.stats.rows_accepted, 7);
                assert_eq!(reasons(&streamed, 0), reasons(&whole, 0));
                assert!(handed.equals_missing(&whole.df), "handed on in batches of {batch_rows}");
            }
        }
    }

    #[test]
    fn a_binary_value_that_is_not_utf8_is_the_reason_before_any_other() {
        let bin = |name: &str, v: Vec<&[u8]>| Column::new(name.into(), v);
        let col = |name: &str, v: &[&str]| Column::new(name.into(), v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let df = DataFrame::new(
            2,
            vec![
                col("txn_id", &["T1", "T2"]),
                col("merchant_id", &["M1", "M1"]),
                col("txn_time", &["2026-09-21 14:13:20"; 2]),
                col("txn_type", &["bogus", "purchase"]),
                col("status", &["approved"; 2]),
                col("amount", &["1.00", "2.00"]),
                col("payment_method", &["card"; 2]),
                bin("memo", vec![b"\xff\xfe", b"ok"]),
            ],
        )
        .unwrap();
        let pq = parquet(df, "transactions:\n  absent: [terminal_sn, card_type, card_no_masked, card_hash, entry_mode, mcc, location_city_code, original_txn_id, settlement_account_number, fee, lat, lon]\n");
        assert_eq!(pq.stats.rows_accepted, 1);
        assert_eq!(reasons(&pq, 0), [(1, "memo".to_string(), NOT_UTF8.to_string())]);
    }
}
