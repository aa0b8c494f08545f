//! Reading one input file (CSV or Parquet) into a typed polars frame, row
//! by row, so that every row is either accepted or rejected with its line
//! and reason. Two hidden columns, `_src` (file index) and `_line`, carry
//! each row's origin to the findings.

use std::fs::File;
use std::io::{Read, Seek};

use rayon::prelude::*;
use std::path::Path;

use polars::prelude::*;
use sha2::{Digest, Sha256};

use super::categories::{self, CodeBuilder, TextToCode};
use super::mapping::{Encoding, InputMapping};
use super::nullable::Nullable;
use super::records::{self, Item, RecordReader, TextEncoding};
use super::values::{self, Expiry};
use super::{InputError, RejectedRow};
use crate::contract::{ColType, ColumnSpec, InputKind, Sign};

pub const SRC_COL: &str = "_src";
pub const LINE_COL: &str = "_line";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    Csv,
    Parquet,
}

impl FileFormat {
    pub fn of(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()) {
            Some(e) if e == "parquet" || e == "pq" => FileFormat::Parquet,
            _ => FileFormat::Csv,
        }
    }
}

/// What a file's header says: where each contract column sits, and which
/// columns are extra (kept as text, usable by rules).
#[derive(Debug, Clone)]
pub struct Header {
    /// For each contract column of the input, its position in the file.
    pub positions: Vec<Option<usize>>,
    /// Extra columns: (position, name as written).
    pub extras: Vec<(usize, String)>,
    /// How many fields the header has: every row must have as many.
    pub width: usize,
    /// For each contract column, whether any source gives it (a file
    /// column, a constant, the title, a kind of row): the frame has it.
    pub present: Vec<bool>,
    /// The mapping's kinds of row (`rows`), resolved to positions.
    pub cases: Vec<CaseHeader>,
    /// For each contract column, the value read from the title lines.
    pub titled: Vec<Option<String>>,
}

/// One kind of row of the mapping, resolved against a file's header.
#[derive(Debug, Clone)]
pub struct CaseHeader {
    /// (position, values): every one must hold.
    pub when: Vec<(usize, Vec<String>)>,
    /// For each contract column: its position for these rows.
    pub positions: Vec<Option<usize>>,
    /// For each contract column: its constant for these rows.
    pub constants: Vec<Option<String>>,
    /// For each contract column: shown with the opposite sign.
    pub negate: Vec<bool>,
}

impl CaseHeader {
    fn holds<'a>(&self, field: &impl Fn(usize) -> Option<&'a str>) -> bool {
        self.when
            .iter()
            .all(|(p, vals)| field(*p).map(values::clean).is_some_and(|v| vals.iter().any(|x| x == v)))
    }
}

pub(super) fn io_err(path: &Path, e: std::io::Error) -> InputError {
    InputError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

fn text_encoding(mapping: &InputMapping) -> TextEncoding {
    match mapping.encoding {
        Encoding::Utf8 => TextEncoding::Utf8,
        Encoding::Gbk => TextEncoding::Other(encoding_rs::GBK),
        Encoding::Gb18030 => TextEncoding::Other(encoding_rs::GB18030),
    }
}

/// Records of a CSV source, decoded as the mapping says and split by its
/// delimiter.
/// Why one cell of a row is refused (the rejected row's reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CellError {
    #[error("value is empty but required")]
    Empty,
    #[error("`{value}` is not one of {allowed}")]
    NotOneOf { value: String, allowed: String },
    #[error("`{0}` is negative")]
    Negative(String),
    #[error("`{0}` is a negative rate")]
    NegativeRate(String),
    #[error(transparent)]
    Value(#[from] values::ValueError),
}

/// The lines above the header, when the mapping reads values from them.
fn title_lines<R: Read>(bytes: R, mapping: &InputMapping) -> Vec<String> {
    if mapping.title.is_empty() {
        return Vec::new();
    }
    RecordReader::new(bytes, text_encoding(mapping), mapping.delimiter_byte().unwrap_or(b',')).first_lines(mapping.skip_lines)
}

fn records<R: Read>(bytes: R, mapping: &InputMapping) -> RecordReader<R> {
    RecordReader::new(bytes, text_encoding(mapping), mapping.delimiter_byte().unwrap_or(b',')).skip(mapping.skip_lines)
}

/// Names posaudit gives columns of its own: an extra column of the file
/// may not take one.
fn reserved(name: &str) -> bool {
    name.starts_with('_')
        || name.starts_with(crate::contract::APP_PREFIX)
        || name.ends_with("_permanent")
        || crate::contract::DERIVED.iter().any(|d| d.name == name)
}

/// Match headers to the contract; a missing required column is an error
/// that names the file and the column.
pub(crate) fn resolve_header(
    kind: InputKind,
    path: &Path,
    names: &[String],
    title_lines: &[String],
    mapping: &InputMapping,
) -> Result<Header, InputError> {
    let specs = kind.columns();
    let mut positions = vec![None; specs.len()];
    let mut extras: Vec<(usize, String)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match mapping.canonical(kind, name) {
            Some(canon) => {
                let idx = specs
                    .iter()
                    .position(|c| c.name == canon)
                    .expect("canonical name is a contract column");
                if positions[idx].is_some() {
                    return Err(InputError::DuplicateColumn {
                        path: path.to_path_buf(),
                        column: canon.to_string(),
                    });
                }
                positions[idx] = Some(i);
            }
            None => {
                let n = super::mapping::normalise_header(name);
                if n.is_empty() {
                    continue;
                }
                if extras.iter().any(|(_, e)| *e == n) {
                    return Err(InputError::DuplicateColumn {
                        path: path.to_path_buf(),
                        column: n,
                    });
                }
                if reserved(&n) {
                    return Err(InputError::ReservedColumn {
                        path: path.to_path_buf(),
                        column: n,
                    });
                }
                extras.push((i, n));
            }
        }
    }
    // A constant stands for a column the file does not have, never beside one.
    if let Some((s, _)) = specs
        .iter()
        .zip(&positions)
        .find(|(s, p)| p.is_some() && mapping.constant(s.name).is_some())
    {
        return Err(InputError::NotAsMapped {
            path: path.to_path_buf(),
            message: format!("`{}` is in the file and also given under `constants`: keep one", s.name),
        });
    }
    let mapping_err = |message: String| InputError::NotAsMapped {
        path: path.to_path_buf(),
        message,
    };
    let position_of = |from: &str, what: &str| -> Result<usize, InputError> {
        let h = super::mapping::normalise_header(from);
        names
            .iter()
            .position(|n| super::mapping::normalise_header(n) == h)
            .ok_or_else(|| mapping_err(format!("{what}: the file has no column `{from}`")))
    };
    let spec_of = |name: &str| specs.iter().position(|c| c.name == name).expect("validated: a contract column");
    let mut cases = Vec::with_capacity(mapping.rows.len());
    for (k, case) in mapping.rows.iter().enumerate() {
        let what = format!("{kind}: rows[{k}]");
        let mut when: Vec<(usize, Vec<String>)> = Vec::new();
        for (from, vals) in &case.when {
            when.push((position_of(from, &what)?, vals.values().iter().map(|v| v.to_string()).collect()));
        }
        when.sort();
        let mut c = CaseHeader {
            when,
            positions: vec![None; specs.len()],
            constants: vec![None; specs.len()],
            negate: vec![false; specs.len()],
        };
        for (from, to) in &case.columns {
            c.positions[spec_of(to)] = Some(position_of(from, &what)?);
        }
        for (to, v) in &case.constants {
            c.constants[spec_of(to)] = Some(v.clone());
        }
        for n in &case.negate {
            c.negate[spec_of(n)] = true;
        }
        cases.push(c);
    }
    let mut titled = vec![None; specs.len()];
    for (column, pattern) in &mapping.title {
        let re = regex::Regex::new(pattern).map_err(|e| mapping_err(e.to_string()))?;
        let found = title_lines
            .iter()
            .find_map(|l| re.captures(l).and_then(|c| c.get(1)).map(|m| m.as_str().to_string()));
        let Some(v) = found else {
            return Err(mapping_err(format!(
                "{kind}: the title pattern for `{column}` (`{pattern}`) matches none of the {} lines above the header",
                title_lines.len()
            )));
        };
        titled[spec_of(column)] = Some(v);
    }
    let present: Vec<bool> = specs
        .iter()
        .enumerate()
        .map(|(j, s)| {
            positions[j].is_some()
                || mapping.constant(s.name).is_some()
                || titled[j].is_some()
                || cases.iter().any(|c| c.positions[j].is_some() || c.constants[j].is_some())
        })
        .collect();
    if let Some(missing) = specs
        .iter()
        .zip(&present)
        .find(|(s, p)| !s.optional && !**p && !mapping.is_absent(s.name))
    {
        return Err(InputError::MissingColumn {
            path: path.to_path_buf(),
            input: kind,
            column: missing.0.name.to_string(),
        });
    }
    Ok(Header {
        positions,
        extras,
        width: names.len(),
        present,
        cases,
        titled,
    })
}

/// The first 64 KiB of a file, to check its encoding before reading it.
fn head_of(path: &Path) -> Result<Vec<u8>, InputError> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut head = Vec::with_capacity(1 << 16);
    f.take(1 << 16).read_to_end(&mut head).map_err(|e| io_err(path, e))?;
    Ok(head)
}

pub(crate) fn read_header(kind: InputKind, path: &Path, mapping: &InputMapping) -> Result<Header, InputError> {
    let mut title = Vec::new();
    let names: Vec<String> = match FileFormat::of(path) {
        FileFormat::Csv => {
            records::sniff(&head_of(path)?, text_encoding(mapping)).map_err(|message| InputError::Encoding {
                path: path.to_path_buf(),
                message,
            })?;
            title = title_lines(File::open(path).map_err(|e| io_err(path, e))?, mapping);
            let mut rdr = records(File::open(path).map_err(|e| io_err(path, e))?, mapping);
            let csv_err = |message: String| InputError::Csv {
                path: path.to_path_buf(),
                message,
            };
            match rdr.next_item().map_err(|e| io_err(path, e))? {
                None => return Err(csv_err("the file is empty: no header row".into())),
                Some(Item::Rejected { line, reason }) => {
                    return Err(csv_err(format!("line {line}: the header row is unreadable: {reason}")))
                }
                Some(Item::Record { .. }) => (0..rdr.len()).map(|i| rdr.field(i).unwrap_or("").to_string()).collect(),
            }
        }
        FileFormat::Parquet => {
            let f = File::open(path).map_err(|e| io_err(path, e))?;
            let schema = ParquetReader::new(f).schema().map_err(|e| InputError::Parquet {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            schema.iter_names().map(|n| n.to_string()).collect()
        }
    };
    resolve_header(kind, path, &names, &title, mapping)
}

/// Per-file counts for the summary and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStats {
    pub input: InputKind,
    pub file: String,
    pub sha256: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Rows dated outside `--window`: read, not checked. Then
    /// `rows_read = rows_accepted + rows_rejected + rows_outside_window`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_outside_window: u64,
    /// Lines around the table that the mapping says are no rows (a title
    /// above, a summary block below): not read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lines_skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub struct ParsedFile {
    pub df: DataFrame,
    pub stats: FileStats,
    pub rejected: Vec<RejectedRow>,
    /// The accepted rows went to a `PartSink` as they were parsed; `df`
    /// has none of them (its columns only).
    pub streamed: bool,
}

/// A column under construction.
pub(super) enum Builder {
    Str(StringChunkedBuilder),
    /// A text column taken whole, every value of it already good as it is.
    Ready(StringChunked),
    /// A few-valued text column, as codes (`categories`).
    Codes(CodeBuilder),
    /// A coded text column of many values, coded when the part is read.
    CodesLater(TextToCode),
    I64(Nullable<i64>),
    /// Money and rates as integers (fen, millionths): the 16-byte integers
    /// behind exact decimals of the given scale.
    Decimal(Nullable<i128>, usize),
    F64(Nullable<f64>),
    Date(Vec<Option<i32>>),
    Expiry(Vec<Option<i32>>, Vec<Option<bool>>),
}

/// A parsed cell, before the whole row is known to be good.
#[derive(Clone, Copy)]
pub(super) enum Cell<'a> {
    Null,
    Str(&'a str),
    /// A value of an enumeration, and where it is in the contract's list.
    Listed(usize, &'a str),
    I64(i64),
    F64(f64),
    Date(i32),
    Expiry(Option<i32>, bool),
}

impl Builder {
    pub(super) fn push(&mut self, cell: Cell) {
        match (self, cell) {
            (Builder::Str(b), Cell::Str(s) | Cell::Listed(_, s)) => b.append_value(s),
            (Builder::Str(b), _) => b.append_null(),
            (Builder::Codes(b), Cell::Listed(i, s)) => b.push_listed(i, s),
            (Builder::Codes(b), Cell::Str(s)) => b.push(Some(s)),
            (Builder::Codes(b), _) => b.push(None),
            (Builder::CodesLater(b), Cell::Str(s) | Cell::Listed(_, s)) => b.push(Some(s)),
            (Builder::CodesLater(b), _) => b.push(None),
            (Builder::I64(v), Cell::I64(x)) => v.push(Some(x)),
            (Builder::I64(v), _) => v.push(None),
            (Builder::Decimal(v, _), Cell::I64(x)) => v.push(Some(x.into())),
            (Builder::Decimal(v, _), _) => v.push(None),
            (Builder::F64(v), Cell::F64(x)) => v.push(Some(x)),
            (Builder::F64(v), _) => v.push(None),
            (Builder::Date(v), Cell::Date(x)) => v.push(Some(x)),
            (Builder::Date(v), _) => v.push(None),
            (Builder::Expiry(d, p), Cell::Expiry(x, perm)) => {
                d.push(x);
                p.push(Some(perm));
            }
            (Builder::Expiry(d, p), _) => {
                d.push(None);
                p.push(None);
            }
            (Builder::Ready(_), _) => unreachable!("a column taken whole gets no cells"),
        }
    }

    /// Put a parsed cell in place of the value at `row` (a typed column's
    /// value that went through the text parser). Text columns are never typed.
    pub(super) fn set(&mut self, row: usize, cell: Cell) {
        match (self, cell) {
            (Builder::I64(v), Cell::I64(x)) => v.set(row, x),
            (Builder::Decimal(v, _), Cell::I64(x)) => v.set(row, x.into()),
            (Builder::F64(v), Cell::F64(x)) => v.set(row, x),
            (Builder::Date(v), Cell::Date(x)) => v[row] = Some(x),
            (Builder::Expiry(d, p), Cell::Expiry(x, perm)) => {
                d[row] = x;
                p[row] = Some(perm);
            }
            _ => {}
        }
    }
}

pub(super) struct RowParser<'m> {
    specs: &'static [ColumnSpec],
    mapping: &'m InputMapping,
    pub(super) builders: Vec<Builder>,
    pub(super) extras: Vec<StringChunkedBuilder>,
    pub(super) src: Vec<u32>,
    pub(super) lines: Vec<u64>,
    /// The buffer a row's cells are parsed into, kept between rows.
    cells: Vec<Cell<'static>>,
}

/// `cells` emptied, as cells of any lifetime, in the same allocation:
/// a row's cells borrow its text, and one buffer serves every row. A
/// vector made per row was a malloc and a free a row (10.7M of each for
/// the 10M-row month). The map never runs; collecting an empty vector's
/// iterator into one of a type of the same size reuses its allocation.
fn emptied<'b>(mut cells: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    cells.clear();
    cells.into_iter().map(|_| Cell::Null).collect()
}

/// Parse one cell's text as the contract's type for `spec`, through the
/// mapping's value map; `negate` turns the sign of money.
pub(super) fn parse_cell<'a>(m: &'a InputMapping, spec: &ColumnSpec, raw: &'a str, negate: bool) -> Result<Cell<'a>, CellError> {
    let s = values::clean(raw);
    // A value mapped to "" is no value (WeChat's 付款银行 `OTHERS`
    // says nothing of the card's type).
    let s: &'a str = if s.is_empty() { s } else { m.value_of(spec.name, s).unwrap_or(s) };
    if s.is_empty() {
        return if spec.required_value {
            Err(CellError::Empty)
        } else {
            Ok(Cell::Null)
        };
    }
    Ok(match spec.ty {
        ColType::Str | ColType::List => Cell::Str(s),
        ColType::Enum(allowed) => {
            if let Some(i) = allowed.iter().position(|a| *a == s) {
                Cell::Listed(i, s)
            } else {
                return Err(CellError::NotOneOf {
                    value: s.to_string(),
                    allowed: allowed.join(", "),
                });
            }
        }
        ColType::Int => Cell::I64(values::parse_int(s)?),
        ColType::Money(sign) => {
            let v = values::parse_money(s, m.amount_unit)?;
            let v = if negate { -v } else { v };
            if sign == Sign::Positive && v < 0 {
                return Err(CellError::Negative(s.to_string()));
            }
            Cell::I64(v)
        }
        ColType::Rate => {
            let v = values::parse_rate(s)?;
            if v < 0 {
                return Err(CellError::NegativeRate(s.to_string()));
            }
            Cell::I64(v)
        }
        ColType::Number => Cell::I64(values::parse_number6(s)?),
        ColType::Coord => Cell::F64(values::parse_coord(s)?),
        ColType::Date => Cell::Date(values::days_since_epoch(values::parse_date(s, m.date_format.as_deref())?)),
        ColType::DateTime => Cell::I64(values::parse_datetime(s, m.datetime_format.as_deref())?),
        ColType::Expiry => match values::parse_expiry(s, m.date_format.as_deref())? {
            Expiry::Permanent => Cell::Expiry(None, true),
            Expiry::Date(d) => Cell::Expiry(Some(values::days_since_epoch(d)), false),
        },
    })
}

impl<'m> RowParser<'m> {
    /// With `coded`, few-valued text columns are built as codes
    /// (`categories::is_coded`), else as text.
    pub(super) fn new(kind: InputKind, header: &Header, mapping: &'m InputMapping, capacity: usize, coded: bool) -> Self {
        let specs = kind.columns();
        let builders = specs
            .iter()
            .map(|s| match (s.ty, decimal_scale(s.ty)) {
                _ if coded && categories::is_coded_later(kind, s.name) => Builder::CodesLater(TextToCode::new(s.name.into(), capacity)),
                _ if coded && categories::is_coded(kind, s.name) => Builder::Codes(CodeBuilder::new(s.name.into(), capacity)),
                (_, Some(scale)) => Builder::Decimal(Nullable::with_capacity(capacity), scale),
                (ColType::Str | ColType::List | ColType::Enum(_), _) => Builder::Str(StringChunkedBuilder::new(s.name.into(), capacity)),
                (ColType::Coord, _) => Builder::F64(Nullable::with_capacity(capacity)),
                (ColType::Date, _) => Builder::Date(Vec::with_capacity(capacity)),
                (ColType::Expiry, _) => Builder::Expiry(Vec::with_capacity(capacity), Vec::with_capacity(capacity)),
                // Money, rates and numbers have a scale (above).
                (ColType::Int | ColType::DateTime | ColType::Money(_) | ColType::Rate | ColType::Number, _) => {
                    Builder::I64(Nullable::with_capacity(capacity))
                }
            })
            .collect();
        let extras = header
            .extras
            .iter()
            .map(|(_, n)| StringChunkedBuilder::new(n.as_str().into(), capacity))
            .collect();
        RowParser {
            specs,
            mapping,
            builders,
            extras,
            src: Vec::with_capacity(capacity),
            lines: Vec::with_capacity(capacity),
            cells: Vec::with_capacity(specs.len()),
        }
    }

    /// Parse one row; on success append it, on failure return the reason.
    pub(super) fn push<'a>(
        &mut self,
        header: &'a Header,
        field: impl Fn(usize) -> Option<&'a str>,
        src: u32,
        line: u64,
    ) -> Result<(), (String, String, String)>
    where
        'm: 'a,
    {
        let mut scratch: Vec<Cell<'a>> = emptied(std::mem::take(&mut self.cells));
        let case = header.cases.iter().find(|c| c.holds(&field));
        for (j, (spec, pos)) in self.specs.iter().zip(&header.positions).enumerate() {
            // This kind of row's own source first, then the file's column,
            // the mapping's constant, the title's value.
            let from_case = case.and_then(|c| match (c.positions[j], &c.constants[j]) {
                (Some(p), _) => Some(field(p).unwrap_or("")),
                (None, Some(v)) => Some(v.as_str()),
                (None, None) => None,
            });
            let raw = match (from_case, pos, self.mapping.constant(spec.name), &header.titled[j]) {
                (Some(r), ..) => r,
                (None, Some(p), ..) => field(*p).unwrap_or(""),
                (None, None, Some(c), _) => c,
                (None, None, None, Some(t)) => t.as_str(),
                (None, None, None, None) => {
                    scratch.push(Cell::Null);
                    continue;
                }
            };
            let negate = case.is_some_and(|c| c.negate[j]);
            match parse_cell(self.mapping, spec, raw, negate) {
                Ok(c) => scratch.push(c),
                Err(reason) => return Err((spec.name.to_string(), raw.to_string(), reason.to_string())),
            }
        }
        for (b, cell) in self.builders.iter_mut().zip(scratch.drain(..)) {
            b.push(cell);
        }
        self.cells = emptied(scratch);
        for (b, (pos, _)) in self.extras.iter_mut().zip(&header.extras) {
            match field(*pos).map(values::clean).filter(|s| !s.is_empty()) {
                Some(s) => b.append_value(s),
                None => b.append_null(),
            }
        }
        self.src.push(src);
        self.lines.push(line);
        Ok(())
    }

    pub(super) fn finish(self, header: &Header) -> PolarsResult<DataFrame> {
        let height = self.src.len();
        let mut cols: Vec<Column> = Vec::with_capacity(self.builders.len() + 2);
        for ((spec, b), present) in self.specs.iter().zip(self.builders).zip(&header.present) {
            // Optional (or mapped absent) columns missing from the file stay
            // absent from the frame, so that rules needing them are
            // skipped, not run on nulls; a constant makes a column.
            if !present {
                continue;
            }
            let name: PlSmallStr = spec.name.into();
            match b {
                Builder::Str(b) => cols.push(b.finish().into_series().into_column()),
                Builder::Ready(ca) => cols.push(ca.with_name(name).into_series().into_column()),
                Builder::Codes(b) => cols.push(b.finish()?.into_column()),
                Builder::CodesLater(b) => cols.push(b.finish()?.into_column()),
                Builder::I64(v) => {
                    let ca = v.finish::<Int64Type>(name);
                    let s = match spec.ty {
                        ColType::DateTime => ca.into_datetime(TimeUnit::Milliseconds, None).into_series(),
                        _ => ca.into_series(),
                    };
                    cols.push(s.into_column());
                }
                Builder::Decimal(v, scale) => cols.push(v.finish::<Int128Type>(name).into_decimal(18, scale)?.into_series().into_column()),
                Builder::F64(v) => cols.push(v.finish::<Float64Type>(name).into_series().into_column()),
                Builder::Date(v) => cols.push(
                    Int32Chunked::from_iter_options(name, v.into_iter())
                        .into_date()
                        .into_series()
                        .into_column(),
                ),
                Builder::Expiry(d, p) => {
                    cols.push(
                        Int32Chunked::from_iter_options(name, d.into_iter())
                            .into_date()
                            .into_series()
                            .into_column(),
                    );
                    let pname = format!("{}_permanent", spec.name);
                    cols.push(
                        BooleanChunked::from_iter_options(pname.into(), p.into_iter())
                            .into_series()
                            .into_column(),
                    );
                }
            }
        }
        for b in self.extras {
            cols.push(b.finish().into_series().into_column());
        }
        cols.push(UInt32Chunked::from_vec(SRC_COL.into(), self.src).into_series().into_column());
        cols.push(UInt64Chunked::from_vec(LINE_COL.into(), self.lines).into_series().into_column());
        DataFrame::new(height, cols)
    }
}

/// The scale of the decimals a column of type `ty` is held as: fen for
/// money, millionths for rates and numbers; None for other types.
pub(super) fn decimal_scale(ty: ColType) -> Option<usize> {
    match ty {
        ColType::Money(_) => Some(2),
        ColType::Rate | ColType::Number => Some(6),
        _ => None,
    }
}

/// Integer units (fen, millionths) to an exact Decimal(18, scale).
pub(crate) fn decimal_from_scaled(ca: Int64Chunked, scale: usize) -> PolarsResult<Series> {
    let name = ca.name().clone();
    // polars' cast widens a whole buffer at once; collecting an iterator
    // of options built the column a value at a time.
    let wide = ca.cast(&DataType::Int128)?.i128()?.clone();
    Ok(wide.with_name(name).into_decimal(18, scale)?.into_series())
}

/// A reader that hashes every byte it passes on, so a file is read once
/// for both its digest and its rows.
struct Hashing<'p, R> {
    inner: R,
    hasher: std::sync::Arc<std::sync::Mutex<Sha256>>,
    progress: &'p indicatif::ProgressBar,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.lock().expect("hasher lock").update(&buf[..n]);
        self.progress.inc(n as u64);
        Ok(n)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read a CSV file, in parts on every thread when it is big. With
/// `on_part`, the rows of a file read in parts go there part by part
/// (`ParsedFile::streamed`); a file read in one piece is returned whole.
/// `scan_bytes`: the size of all the files read beside this one
/// (`parts_among`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_csv(
    kind: InputKind,
    path: &Path,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    progress: &indicatif::ProgressBar,
    on_part: Option<&PartSink>,
    coded: bool,
    scan_bytes: u64,
) -> Result<ParsedFile, InputError> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let parts = match on_part {
        Some(_) => streamed_parts_of(size, mapping),
        None => parts_among(size, scan_bytes, mapping),
    };
    if parts > 1 {
        let open = |start: u64, len: u64| -> std::io::Result<Box<dyn Read + Send + '_>> {
            let mut f = File::open(path)?;
            f.seek(std::io::SeekFrom::Start(start))?;
            Ok(Box::new(f.take(len)))
        };
        let count = |n: u64| progress.inc(n);
        let (digest, parsed) = beside_digest(path, || {
            parse_parts(kind, &open, &count, size, parts, display, src, header, mapping, on_part, coded)
        });
        let p = parsed.map_err(|e| parse_err(path, e))?;
        let digest = digest.map_err(|e| io_err(path, e))?;
        return Ok(match p.df {
            Some(df) => finish_file(kind, display, digest, p.read, df, p.rejected),
            None => streamed_file(kind, display, digest, p.read, p.accepted, p.rejected),
        });
    }
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let raw = Hashing {
        inner: f,
        hasher: hasher.clone(),
        progress,
    };
    let (df, read, rejected, skipped) = parse_csv(kind, raw, size, display, src, header, mapping, coded).map_err(|e| parse_err(path, e))?;
    let digest = hex(&hasher.lock().expect("hasher lock").clone().finalize());
    let mut file = finish_file(kind, display, digest, read, df, rejected);
    file.stats.lines_skipped = skipped;
    Ok(file)
}

/// How many parts a CSV file of `size` bytes read through `mapping` is
/// parsed in when it is read alone (`parts_among`).
fn parts_of(size: u64, mapping: &InputMapping) -> usize {
    parts_among(size, 0, mapping)
}

/// How many parts a CSV file of `size` bytes read through `mapping` is
/// parsed in when it is one of files of `scan_bytes` in all, read side by
/// side into memory. A file with a title or a summary block is read top
/// to bottom, in one. Others are cut into parts of `part_bytes()`, or of
/// an eighth of a thread's share of all the files when that is more.
/// Files are read on every thread at once, so a month of daily files
/// keeps the threads busy with a file each; cutting each file as well
/// adds no thread, and every part enters each merchant, terminal and
/// account it holds into the run's categories again (a daily file of a
/// 10M-row month in four parts did so for 60,000 of each per part, a
/// fifth of the read's samples; `categories::shared_codes`). One big file
/// is cut as when read alone.
fn parts_among(size: u64, scan_bytes: u64, mapping: &InputMapping) -> usize {
    if mapping.has_frame() {
        return 1;
    }
    let share = scan_bytes / (8 * rayon::current_num_threads() as u64).max(1);
    parts_for(size, part_bytes().max(share))
}

/// How many parts a CSV file whose parts go to a `PartSink` (a
/// partitioned scan) is parsed in: as `parts_of` says, and at least one
/// per `part_bytes()`. The parts of a wave are held until the wave is
/// handed on; a 2.1 GB file in `parts_of`'s eight parts held two of 260 MB
/// of text and their parsed rows at once: the read's peak was 2.0 GB, and
/// the whole partitioned scan's. In 32 MB parts it is 0.9 GB.
fn streamed_parts_of(size: u64, mapping: &InputMapping) -> usize {
    match parts_of(size, mapping) {
        1 => 1,
        parts => parts.max(size.div_ceil(part_bytes()) as usize),
    }
}

/// Whether the file at `path` is read in parts: CSV that `read_csv`
/// parses in parts, or Parquet of more than a part's bytes, which
/// `parquet::read_parquet` reads in batches of row groups.
pub(crate) fn read_in_parts(path: &Path, mapping: &InputMapping) -> bool {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match FileFormat::of(path) {
        FileFormat::Csv => parts_of(size, mapping) > 1,
        FileFormat::Parquet => size > part_bytes(),
    }
}

enum ParseError {
    Io(std::io::Error),
    Frame(PolarsError),
    /// Where parsed parts went (`PartSink`) failed.
    Sink(InputError),
}

/// Files from this size are parsed in parts, one per thread: one big
/// export uses every core, not one. A partitioned scan's parts are no
/// larger than this (`streamed_parts_of`). `POSAUDIT_PART_BYTES` lowers
/// it, for tests on small files.
const PART_BYTES: u64 = 32 << 20;

/// `PART_BYTES`, or `POSAUDIT_PART_BYTES`.
fn part_bytes() -> u64 {
    std::env::var("POSAUDIT_PART_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(PART_BYTES)
}

/// How many parts to parse a file of `size` bytes in, in parts of about
/// `part_bytes` (half to all of it; four per thread at most).
fn parts_for(size: u64, part_bytes: u64) -> usize {
    let threads = rayon::current_num_threads();
    if threads < 2 || size < part_bytes {
        return 1;
    }
    (size / (part_bytes / 2).max(1)).clamp(2, 4 * threads as u64) as usize
}

/// Counts the bytes read after the first `skip` (already counted) with
/// `count`: the progress bar.
struct Counting<'c, R> {
    inner: R,
    skip: u64,
    count: &'c (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)? as u64;
        let skipped = n.min(self.skip);
        self.skip -= skipped;
        if n > skipped {
            (self.count)(n - skipped);
        }
        Ok(n as usize)
    }
}

/// `work()`, while the file's digest (of its bytes in order, so by one
/// thread) is made on a thread of its own, outside the pool: hashing
/// mostly waits for the disk. As one of the pool's threads it held that
/// thread from the parts for the first 15 s of the 10M-row month's read,
/// busy a third of the time (profile, session 41).
pub(super) fn beside_digest<T: Send>(path: &Path, work: impl FnOnce() -> T) -> (std::io::Result<String>, T) {
    std::thread::scope(|s| {
        let digest = s.spawn(|| sha256_of(path));
        let out = work();
        (digest.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), out)
    })
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    hash_file(path, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Feed a file's bytes to a hasher, a megabyte at a time.
pub(crate) fn hash_file(path: &Path, h: &mut Sha256) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

/// Where the line after byte `pos` starts (None: no line break after it).
fn line_start_after<'a>(
    open: &dyn Fn(u64, u64) -> std::io::Result<Box<dyn Read + Send + 'a>>,
    pos: u64,
    size: u64,
) -> std::io::Result<Option<u64>> {
    let mut r = open(pos, size - pos)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = pos;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
            return Ok(Some(at + i as u64 + 1));
        }
        at += n as u64;
    }
}

/// Where the rows of a file read in parts go, part by part in file order,
/// when they are not to be held as one frame: a partitioned run spills
/// each part as it is parsed, so one big export is never whole in memory.
pub(crate) type PartSink<'a> = dyn Fn(DataFrame) -> Result<(), InputError> + Sync + 'a;

/// What reading a file in parts gave: the rows as one frame (None when
/// they went to a `PartSink`), rows read and accepted, rejected rows.
struct PartsRead {
    df: Option<DataFrame>,
    read: u64,
    accepted: u64,
    rejected: Vec<RejectedRow>,
}

/// Parse CSV in `parts` byte ranges cut at line starts, in parallel, and
/// put the parts back together in order with the file's line numbers.
/// Each part starts on a record boundary if the one before it ended
/// outside a quoted value (by induction from the file's start). A part
/// that ends inside one (a multi-line value across a cut) takes in the
/// parts after it, one, then three, then seven (each try parses the span
/// again from the part's start), until the span ends outside a quoted
/// value or reaches the end of the file; the parts after the span start on
/// a record boundary again, and are used as parsed. The result is the
/// same as reading the file in one piece (property tests check), and no
/// more than a span is read on one thread: a quoted value across a cut
/// used to have the whole file (in memory) or the whole rest of it
/// (partitioned) read in one piece.
///
/// With `on_part`, parts are parsed a wave (one per thread) at a time and
/// handed on in order as each wave is done, so that no more than a wave's
/// parts are held at once.
#[allow(clippy::too_many_arguments)]
fn parse_parts<'a>(
    kind: InputKind,
    open: &(dyn Fn(u64, u64) -> std::io::Result<Box<dyn Read + Send + 'a>> + Sync),
    count: &(dyn Fn(u64) + Sync),
    size: u64,
    parts: usize,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    on_part: Option<&PartSink>,
    coded: bool,
) -> Result<PartsRead, ParseError> {
    let mut cuts = vec![0u64];
    let targets = match on_part {
        Some(_) => (1..parts).map(|k| size * k as u64 / parts as u64).collect(),
        None => shrinking_cuts(size, parts, rayon::current_num_threads()),
    };
    for pos in targets {
        if let Some(c) = line_start_after(open, pos.max(*cuts.last().unwrap_or(&0)), size).map_err(ParseError::Io)? {
            if c < size && c > *cuts.last().unwrap_or(&0) {
                cuts.push(c);
            }
        }
    }
    cuts.push(size);
    let ranges: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    // Parts `i` to `last`, as one; the bytes before `counted` were read
    // (and counted for the progress bar) before.
    let parse = |i: usize, last: usize, counted: u64| -> Result<Parsed, ParseError> {
        let (start, _) = ranges[i];
        let (_, end) = ranges[last];
        let raw = Counting {
            inner: open(start, end - start).map_err(ParseError::Io)?,
            skip: counted.saturating_sub(start),
            count,
        };
        let rdr = records(raw, mapping);
        let rdr = if i == 0 { rdr } else { rdr.part() };
        parse_records(kind, rdr, end - start, display, src, header, mapping, i == 0, coded)
    };
    let mut out = PartsRead {
        df: None,
        read: 0,
        accepted: 0,
        rejected: Vec::new(),
    };
    let mut offset = 0u64;
    // Renumber a part's lines after the ones before it, and count it.
    let mut number = |mut p: Parsed| -> Result<DataFrame, ParseError> {
        if offset > 0 {
            let lines = p.df.column(LINE_COL).map_err(ParseError::Frame)?.as_materialized_series() + offset;
            p.df.with_column(lines.with_name(LINE_COL.into()).into_column())
                .map_err(ParseError::Frame)?;
            for r in &mut p.rejected {
                r.line += offset;
            }
        }
        offset += p.lines;
        out.read += p.read;
        out.accepted += p.df.height() as u64;
        out.rejected.extend(p.rejected);
        Ok(p.df)
    };
    let final_part = ranges.len() - 1;
    // Part `i` as parsed, or the span from it that ends outside a quoted
    // value (or at the end of the file), and the span's last part. Parts
    // through `counted` (a byte offset) were parsed alone before: their
    // bytes are not counted again.
    let settle = |i: usize, mut p: Parsed, counted: &mut u64| -> Result<(Parsed, usize), ParseError> {
        let (mut end, mut grow) = (i, 1);
        while p.ended_in_quote && end < final_part {
            end = (i + grow).min(final_part);
            grow = 2 * grow + 1;
            p = parse(i, end, *counted)?;
            *counted = (*counted).max(ranges[end].1);
        }
        Ok((p, end))
    };
    let Some(on_part) = on_part else {
        let parsed: Vec<Parsed> = crate::pool::in_order_on_threads(ranges.len(), |i| parse(i, i, 0))?;
        let mut counted = size;
        let mut all: Option<DataFrame> = None;
        // Parts below `next` were taken into a span already.
        let mut next = 0;
        for (i, p) in parsed.into_iter().enumerate() {
            if i < next {
                continue;
            }
            let (p, end) = settle(i, p, &mut counted)?;
            next = end + 1;
            let df = number(p)?;
            match &mut all {
                None => all = Some(df),
                Some(acc) => {
                    acc.vstack_mut_owned(df).map_err(ParseError::Frame)?;
                }
            }
        }
        // Left in its parts' chunks: `input::load_with` makes one chunk of
        // each column, and of the transactions' only those a rule reads,
        // one at a time, when preparation reorders them (`row_order`).
        out.df = Some(all.unwrap_or_default());
        return Ok(out);
    };
    let wave = rayon::current_num_threads().max(1);
    let mut first = 0;
    let mut counted_before = 0u64;
    while first < ranges.len() {
        let last = (first + wave).min(ranges.len());
        let parsed: Vec<Result<Parsed, ParseError>> = (first..last).into_par_iter().map(|i| parse(i, i, 0)).collect();
        let mut counted = ranges[last - 1].1.max(counted_before);
        let mut next = first;
        for (i, p) in (first..last).zip(parsed) {
            if i < next {
                continue;
            }
            let (p, end) = settle(i, p?, &mut counted)?;
            on_part(number(p)?).map_err(ParseError::Sink)?;
            next = end + 1;
        }
        counted_before = counted;
        first = next.max(last);
    }
    Ok(out)
}

/// Where to cut a file of `size` bytes read whole in `parts` parts' worth
/// (byte offsets, before they are moved to line starts): parts that
/// shrink towards the end of the file, each a `2 * threads`-th of what is
/// left and no smaller than a quarter of an even part.
///
/// Parts are parsed in file order by whichever thread is free
/// (`pool::in_order_on_threads`), so the last parts started are the small ones
/// and the threads finish together. With eight even parts of the 10M-row
/// month's 1.9 GB on 2 threads, one thread parsed the last part alone for
/// 4.5 s of the read's 23.8 (profile with `perf`, session 40): a part is
/// 5 s of a thread, and one thread also hashed the whole file (the
/// digest) before it joined in. With these parts the profile shows both
/// threads busy to the end, but the read's time alone changed within the
/// machine's noise (medians of 3 pairs: 22.5 s before, 23.9 s after);
/// the digest off the pool (`beside_digest`) is what made it faster.
fn shrinking_cuts(size: u64, parts: usize, threads: usize) -> Vec<u64> {
    let least = (size / (4 * parts.max(1) as u64)).max(1);
    let share = 2 * threads.max(1) as u64;
    let mut cuts = Vec::new();
    let mut at = 0u64;
    loop {
        at += ((size - at) / share).max(least);
        if at >= size {
            return cuts;
        }
        cuts.push(at);
    }
}

/// Parse CSV from any bytes (header row included, checked as `header`
/// says): the frame of accepted rows, rows read, and the rejected rows.
#[allow(clippy::too_many_arguments)]
fn parse_csv<R: Read>(
    kind: InputKind,
    raw: R,
    size: u64,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    coded: bool,
) -> Result<(DataFrame, u64, Vec<RejectedRow>, u64), ParseError> {
    let p = parse_records(kind, records(raw, mapping), size, display, src, header, mapping, true, coded)?;
    Ok((p.df, p.read, p.rejected, p.skipped))
}

/// What parsing some CSV gave.
struct Parsed {
    df: DataFrame,
    read: u64,
    rejected: Vec<RejectedRow>,
    /// Physical lines read (to number the lines of the next part).
    lines: u64,
    /// The bytes ended inside a quoted value.
    ended_in_quote: bool,
    /// Lines the mapping says are no rows (title above, summary below).
    skipped: u64,
}

/// Parse records (after the header row, if `header_row`), each accepted
/// into the frame or rejected with its reason. Line numbers count from the
/// reader's first line. With `coded`, few-valued text columns are built
/// as codes (`categories`).
#[allow(clippy::too_many_arguments)]
fn parse_records<R: Read>(
    kind: InputKind,
    mut rdr: RecordReader<R>,
    size: u64,
    display: &str,
    src: u32,
    header: &Header,
    mapping: &InputMapping,
    header_row: bool,
    coded: bool,
) -> Result<Parsed, ParseError> {
    // A rough row estimate from the size avoids regrowing builders.
    let capacity = (size / 120).min(50_000_000) as usize;
    let mut parser = RowParser::new(kind, header, mapping, capacity, coded);
    let mut rejected = Vec::new();
    let mut read = 0u64;
    let reject = |rejected: &mut Vec<RejectedRow>, line, column: &str, value: &str, reason| {
        rejected.push(RejectedRow::new(kind, display, line, column, value, reason));
    };
    // The header row (read_header checked it).
    if header_row {
        rdr.next_item().map_err(ParseError::Io)?;
    }
    let mut skipped = if header_row { mapping.skip_lines as u64 } else { 0 };
    while let Some(item) = rdr.next_item().map_err(ParseError::Io)? {
        if let Item::Record { lines, .. } = item {
            if !mapping.footer.is_empty() && rdr.field(0).is_some_and(|f| mapping.is_footer(f)) {
                skipped += lines as u64 + rdr.drain().map_err(ParseError::Io)?;
                break;
            }
        }
        read += 1;
        let (line, lines) = match item {
            Item::Rejected { line, reason } => {
                reject(&mut rejected, line, "", "", reason);
                continue;
            }
            Item::Record { line, lines } => (line, lines),
        };
        // A record that spans lines is kept only if it is good in every
        // way; otherwise its first line had a stray quote (see records).
        let unwind = |rdr: &mut RecordReader<_>, rejected: &mut Vec<RejectedRow>| {
            if let Item::Rejected { line, reason } = rdr.unwind() {
                rejected.push(RejectedRow::new(kind, display, line, "", "", reason));
            }
        };
        if rdr.len() != header.width {
            if lines > 1 {
                unwind(&mut rdr, &mut rejected);
            } else {
                let reason = format!("the row has {} fields, the header has {}", rdr.len(), header.width);
                reject(&mut rejected, line, "", "", reason);
            }
            continue;
        }
        if (0..rdr.len()).all(|i| rdr.field(i).is_none_or(|f| values::clean(f).is_empty())) {
            reject(&mut rejected, line, "", "", "empty row".to_string());
            continue;
        }
        let pushed = {
            let r = &rdr;
            parser.push(header, |i| r.field(i), src, line)
        };
        if let Err((column, value, reason)) = pushed {
            if lines > 1 {
                unwind(&mut rdr, &mut rejected);
            } else {
                reject(&mut rejected, line, &column, &value, reason);
            }
        }
    }
    let df = parser.finish(header).map_err(ParseError::Frame)?;
    Ok(Parsed {
        df,
        read,
        rejected,
        lines: rdr.lines_read(),
        ended_in_quote: rdr.ended_in_quote(),
        skipped,
    })
}

/// Read a whole CSV file given as bytes, header and all, through a
/// mapping: what a scan in memory does with one file, without the file
/// (few-valued columns as codes, `categories`). For fuzzing and property
/// tests; the counts always reconcile (read = accepted + rejected).
pub fn read_csv_bytes(kind: InputKind, bytes: &[u8], mapping: &InputMapping) -> Result<ParsedFile, InputError> {
    let header = bytes_header(kind, bytes, mapping)?;
    let (df, read, rejected, skipped) =
        parse_csv(kind, bytes, bytes.len() as u64, BYTES, 0, &header, mapping, true).map_err(|e| parse_err(Path::new(BYTES), e))?;
    let mut file = finish_file(kind, BYTES, String::new(), read, df, rejected);
    file.stats.lines_skipped = skipped;
    Ok(file)
}

/// As `read_csv_bytes`, parsing the records after the header in `parts`
/// byte ranges, as a big file is: for property tests that the parts give
/// what one piece gives.
pub fn read_csv_bytes_in_parts(kind: InputKind, bytes: &[u8], mapping: &InputMapping, parts: usize) -> Result<ParsedFile, InputError> {
    let header = bytes_header(kind, bytes, mapping)?;
    let open = |start: u64, len: u64| -> std::io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(&bytes[start as usize..(start + len) as usize]))
    };
    let parsed = parse_parts(
        kind,
        &open,
        &|_| {},
        bytes.len() as u64,
        parts.max(1),
        BYTES,
        0,
        &header,
        mapping,
        None,
        true,
    )
    .map_err(|e| parse_err(Path::new(BYTES), e))?;
    Ok(finish_file(
        kind,
        BYTES,
        String::new(),
        parsed.read,
        parsed.df.unwrap_or_default(),
        parsed.rejected,
    ))
}

/// As `read_csv_bytes_in_parts`, handing the parts on one at a time as a
/// partitioned run does (`PartSink`): the file's stats and rejected rows,
/// and the accepted rows of each part (or span of parts, see
/// `parse_parts`) in order, all columns as text (a partitioned run spills them).
pub fn read_csv_bytes_streamed(
    kind: InputKind,
    bytes: &[u8],
    mapping: &InputMapping,
    parts: usize,
) -> Result<(ParsedFile, Vec<DataFrame>), InputError> {
    let header = bytes_header(kind, bytes, mapping)?;
    let open = |start: u64, len: u64| -> std::io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(&bytes[start as usize..(start + len) as usize]))
    };
    let got = std::sync::Mutex::new(Vec::new());
    let on_part = |df: DataFrame| -> Result<(), InputError> {
        got.lock().expect("parts lock").push(df);
        Ok(())
    };
    let p = parse_parts(
        kind,
        &open,
        &|_| {},
        bytes.len() as u64,
        parts.max(1),
        BYTES,
        0,
        &header,
        mapping,
        Some(&on_part),
        false,
    )
    .map_err(|e| parse_err(Path::new(BYTES), e))?;
    let file = streamed_file(kind, BYTES, String::new(), p.read, p.accepted, p.rejected);
    Ok((file, got.into_inner().expect("parts lock")))
}

/// The name files given as bytes go by.
const BYTES: &str = "(bytes)";

/// The checked header of CSV given as bytes, as `read_header` checks a file's.
fn bytes_header(kind: InputKind, bytes: &[u8], mapping: &InputMapping) -> Result<Header, InputError> {
    let path = Path::new(BYTES);
    records::sniff(&bytes[..bytes.len().min(1 << 16)], text_encoding(mapping)).map_err(|message| InputError::Encoding {
        path: path.to_path_buf(),
        message,
    })?;
    let mut rdr = records(bytes, mapping);
    let csv_err = |message: String| InputError::Csv {
        path: path.to_path_buf(),
        message,
    };
    let names: Vec<String> = match rdr.next_item().map_err(|e| io_err(path, e))? {
        None => return Err(csv_err("the file is empty: no header row".into())),
        Some(Item::Rejected { line, reason }) => return Err(csv_err(format!("line {line}: the header row is unreadable: {reason}"))),
        Some(Item::Record { .. }) => (0..rdr.len()).map(|i| rdr.field(i).unwrap_or("").to_string()).collect(),
    };
    resolve_header(kind, path, &names, &title_lines(bytes, mapping), mapping)
}

fn parse_err(path: &Path, e: ParseError) -> InputError {
    match e {
        ParseError::Io(e) => io_err(path, e),
        ParseError::Frame(e) => InputError::Internal(e.to_string()),
        ParseError::Sink(e) => e,
    }
}

pub(super) fn finish_file(
    kind: InputKind,
    display: &str,
    sha256: String,
    read: u64,
    df: DataFrame,
    rejected: Vec<RejectedRow>,
) -> ParsedFile {
    let accepted = df.height() as u64;
    parsed_file(kind, display, sha256, read, accepted, df, rejected, false)
}

/// A file whose `accepted` rows went to a `PartSink`.
pub(super) fn streamed_file(
    kind: InputKind,
    display: &str,
    sha256: String,
    read: u64,
    accepted: u64,
    rejected: Vec<RejectedRow>,
) -> ParsedFile {
    parsed_file(kind, display, sha256, read, accepted, DataFrame::empty(), rejected, true)
}

#[allow(clippy::too_many_arguments)]
fn parsed_file(
    kind: InputKind,
    display: &str,
    sha256: String,
    read: u64,
    accepted: u64,
    df: DataFrame,
    rejected: Vec<RejectedRow>,
    streamed: bool,
) -> ParsedFile {
    let stats = FileStats {
        input: kind,
        file: display.to_string(),
        sha256,
        rows_read: read,
        rows_accepted: accepted,
        rows_rejected: rejected.len() as u64,
        rows_outside_window: 0,
        lines_skipped: 0,
    };
    debug_assert_eq!(stats.rows_read, stats.rows_accepted + stats.rows_rejected);
    ParsedFile {
        df,
        stats,
        rejected,
        streamed,
    }
}

/// An empty frame with every contract column of the input (optional ones
/// included) and the given extra columns: the schema rules are checked against.
pub(crate) fn empty_frame(kind: InputKind, extras: &[String]) -> PolarsResult<DataFrame> {
    let header = Header {
        positions: (0..kind.columns().len()).map(Some).collect(),
        extras: extras
            .iter()
            .enumerate()
            .map(|(i, n)| (kind.columns().len() + i, n.clone()))
            .collect(),
        width: kind.columns().len() + extras.len(),
        present: vec![true; kind.columns().len()],
        cases: Vec::new(),
        titled: vec![None; kind.columns().len()],
    };
    RowParser::new(kind, &header, &InputMapping::default(), 0, false).finish(&header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::mapping::Mapping;

    fn column(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        let s = df.column(name).unwrap().cast(&DataType::String).unwrap();
        s.str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn the_progress_bar_counts_each_byte_once_when_parts_are_joined() {
        let base = include_str!("../../tests/bad_inputs/_base/transactions.csv");
        let mut rows = base.lines();
        let head = format!("{},memo", rows.next().unwrap());
        let body: Vec<&str> = rows.collect();
        let row = |i: usize| format!("{},", body[i % body.len()]);
        let mut text = format!("{head}\n");
        for i in 0..40 {
            text.push_str(&format!("{}\n", row(i)));
        }
        // A memo quoted over 60 lines: some cuts fall inside it, and the
        // parts around them are parsed again as one.
        text.push_str(&format!("{}\"{}\"\n", row(40), vec!["abcdefghij".repeat(4); 60].join("\n")));
        for i in 41..200 {
            text.push_str(&format!("{}\n", row(i)));
        }
        let bytes = text.as_bytes();
        let m = InputMapping::default();
        let header = bytes_header(InputKind::Transactions, bytes, &m).unwrap();
        let open = |start: u64, len: u64| -> std::io::Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(&bytes[start as usize..(start + len) as usize]))
        };
        let mut joined = false;
        for parts in [2, 4, 8, 16] {
            for streamed in [false, true] {
                let counted = std::sync::atomic::AtomicU64::new(0);
                let count = |n: u64| {
                    counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                };
                let handed = std::sync::atomic::AtomicUsize::new(0);
                let sink = |_: DataFrame| -> Result<(), InputError> {
                    handed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                };
                let on_part: Option<&PartSink> = if streamed { Some(&sink) } else { None };
                let p = parse_parts(
                    InputKind::Transactions,
                    &open,
                    &count,
                    bytes.len() as u64,
                    parts,
                    BYTES,
                    0,
                    &header,
                    &m,
                    on_part,
                    !streamed,
                )
                .ok()
                .expect("the file parses");
                assert_eq!(p.read, 200);
                assert_eq!(counted.into_inner(), bytes.len() as u64, "{parts} parts, streamed: {streamed}");
                joined |= streamed && handed.into_inner() < parts;
            }
        }
        assert!(joined, "a cut fell inside the quoted value");
    }

    #[test]
    fn a_rows_cells_are_parsed_into_one_buffer_kept_between_rows() {
        let text = String::from("x");
        let mut cells = Vec::with_capacity(19);
        cells.push(Cell::Str(&text));
        let (at, capacity) = (cells.as_ptr() as usize, cells.capacity());
        let kept: Vec<Cell<'static>> = emptied(cells);
        assert!(kept.is_empty());
        assert_eq!((kept.as_ptr() as usize, kept.capacity()), (at, capacity));
    }

    #[test]
    fn a_big_file_read_for_partitions_is_cut_finer_than_one_read_whole() {
        let plain = Mapping::default();
        let m = plain.get(InputKind::Transactions);
        let big = 2_100 << 20;
        // On one thread a file is read in one piece either way.
        let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        assert_eq!(pool(1).install(|| (parts_of(big, m), streamed_parts_of(big, m))), (1, 1));
        let (whole, streamed) = pool(2).install(|| (parts_of(big, m), streamed_parts_of(big, m)));
        assert_eq!(whole, 8, "four parts per thread at most");
        assert_eq!(streamed, 66, "one per 32 MB");
        // A file below one part is not cut at all.
        assert_eq!(pool(2).install(|| streamed_parts_of(1 << 20, m)), 1);
        // A mapped export with a title or a summary is read top to bottom.
        let wechat = Mapping::load(Path::new("preset:wechat")).unwrap();
        assert_eq!(pool(2).install(|| streamed_parts_of(big, wechat.get(InputKind::Transactions))), 1);
    }

    #[test]
    fn a_file_read_whole_is_cut_in_parts_that_shrink_towards_its_end() {
        let size = 1_900u64 << 20;
        let cuts = shrinking_cuts(size, 8, 2);
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(size);
        let parts: Vec<u64> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
        // A quarter of the file first (a fourth of what is left, on two
        // threads), then smaller, none under a quarter of an even part.
        assert_eq!(parts[0], size / 4);
        assert!(parts.windows(2).all(|w| w[1] <= w[0]), "{parts:?}");
        let least = size / 32;
        assert!(parts[..parts.len() - 1].iter().all(|&p| p >= least), "{parts:?}");
        assert!(*parts.last().unwrap() <= least, "the last part is among the smallest: {parts:?}");
        assert_eq!(parts.iter().sum::<u64>(), size);
        assert!((8..=16).contains(&parts.len()), "{} parts", parts.len());
        // Tiny files and one part's worth.
        assert_eq!(shrinking_cuts(3, 8, 2), vec![1, 2]);
        assert!(shrinking_cuts(0, 8, 2).is_empty());
        assert!(shrinking_cuts(1, 1, 1).is_empty());
    }

    #[test]
    fn a_file_among_many_is_read_whole_and_one_big_file_in_parts() {
        let plain = Mapping::default();
        let m = plain.get(InputKind::Transactions);
        let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let daily = 70 << 20;
        let month = 30 * daily;
        // A daily file of a month on two threads: the other files keep the
        // second thread busy; read alone, it is cut.
        assert_eq!(pool(2).install(|| parts_among(daily, month, m)), 1);
        assert_eq!(pool(2).install(|| parts_among(daily, daily, m)), 4);
        // On sixteen threads an eighth of a thread's share is under a part:
        // cut as when read alone.
        assert_eq!(pool(16).install(|| parts_among(daily, month, m)), 4);
        // The month in one file is cut as `parts_of` cuts it.
        let one = 2_100 << 20;
        assert_eq!(pool(2).install(|| parts_among(one, one + (60 << 20), m)), 8);
        // Three big files on two threads: still several parts each.
        assert_eq!(pool(2).install(|| parts_among(700 << 20, 2_100 << 20, m)), 8);
        // A mapped export with a title or a summary is read top to bottom.
        let wechat = Mapping::load(Path::new("preset:wechat")).unwrap();
        assert_eq!(pool(2).install(|| parts_among(one, one, wechat.get(InputKind::Transactions))), 1);
    }

    #[test]
    fn a_wechat_refund_row_takes_its_id_original_and_amount_from_its_own_columns() {
        let m = Mapping::load(Path::new("preset:wechat")).unwrap();
        let bill = "交易时间,特约商户号,设备号,微信订单号,用户标识,交易类型,交易状态,付款银行,应结订单金额,微信退款单号,退款金额,手续费\n\
`2026-10-01 10:00:00,`822100056910006,`SN1,`4200001,`oA,`MICROPAY,`SUCCESS,`CMB_CREDIT,`100.00,`,`0.00,`0.38\n\
`2026-10-02 11:00:00,`822100056910006,`SN1,`4200001,`oA,`MICROPAY,`REFUND,`ICBC_DEBIT,`100.00,`5030009,`40.00,`-0.15\n\
`2026-10-02 12:00:00,`822100056910006,`SN1,`4200002,`oB,`APP,`SUCCESS,`OTHERS,`7.00,`,`0.00,`0.03\n\
总交易单数,应结订单总金额\n`2,`107.00\n";
        let f = read_csv_bytes(InputKind::Transactions, bill.as_bytes(), m.get(InputKind::Transactions)).unwrap();
        assert_eq!(f.stats.rows_accepted, 3, "{:?}", f.rejected);
        assert_eq!(f.stats.lines_skipped, 2);
        let df = &f.df;
        let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(column(df, "txn_id"), s(&[Some("4200001"), Some("5030009"), Some("4200002")]));
        assert_eq!(column(df, "original_txn_id"), s(&[None, Some("4200001"), None]));
        assert_eq!(column(df, "txn_type"), s(&[Some("purchase"), Some("refund"), Some("purchase")]));
        assert_eq!(column(df, "amount"), s(&[Some("100.00"), Some("40.00"), Some("7.00")]));
        assert_eq!(column(df, "fee"), s(&[Some("0.38"), Some("-0.15"), Some("0.03")]));
        // Patterns: *_CREDIT and *_DEBIT; anything else (the wallet) is no card type.
        assert_eq!(column(df, "card_type"), s(&[Some("credit"), Some("debit"), None]));
        assert_eq!(column(df, "entry_mode"), s(&[Some("qr_dynamic"), Some("qr_dynamic"), None]));
        assert_eq!(column(df, "payment_method"), s(&[Some("qr_wechat"); 3]));
        assert!(df.column("card_no_masked").is_err(), "absent columns stay out of the frame");
    }

    #[test]
    fn an_alipay_bill_takes_its_merchant_from_the_title_and_turns_refund_amounts_positive() {
        let m = Mapping::load(Path::new("preset:alipay")).unwrap();
        let bill = "#支付宝业务明细查询\n#账号：[20881234567890120156]\n#起始日期：[2026年10月01日 00:00:00]\n#----\n\
支付宝交易号,业务类型,完成时间,终端号,对方账户,订单金额（元）,服务费（元）,退款批次号/请求号\n\
2026001\t,交易\t,2026-10-01 10:00:00\t,T1\t,138****0000\t,50.00\t,0.30\t,\t\n\
2026001\t,退款\t,2026-10-02 10:00:00\t,T1\t,138****0000\t,-20.00\t,-0.12\t,R9\t\n\
2026002\t,退款\t,2026-10-02 11:00:00\t,T1\t,138****0000\t,20.00\t,0.00\t,R10\t\n\
#交易合计：1笔\n";
        let bytes = encoding_rs::GB18030.encode(bill).0;
        let f = read_csv_bytes(InputKind::Transactions, &bytes, m.get(InputKind::Transactions)).unwrap();
        assert_eq!(f.stats.rows_read, 3);
        assert_eq!(f.stats.rows_accepted, 2);
        assert_eq!(f.stats.lines_skipped, 5);
        // A refund shown as a positive amount is not what the bill writes: rejected, with the reason.
        assert_eq!(f.rejected.len(), 1);
        assert_eq!(f.rejected[0].column, "amount");
        let df = &f.df;
        let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(column(df, "merchant_id"), s(&[Some("20881234567890120156"); 2]));
        assert_eq!(column(df, "txn_id"), s(&[Some("2026001"), Some("R9")]));
        assert_eq!(column(df, "original_txn_id"), s(&[None, Some("2026001")]));
        assert_eq!(column(df, "amount"), s(&[Some("50.00"), Some("20.00")]));
        assert_eq!(column(df, "fee"), s(&[Some("0.30"), Some("-0.12")]));
    }

    #[test]
    fn a_title_pattern_that_finds_nothing_is_an_error_that_says_so() {
        let m = Mapping::load(Path::new("preset:alipay")).unwrap();
        let bill = "#a\n#b\n#c\n#d\n支付宝交易号,业务类型,完成时间,订单金额（元）,退款批次号/请求号\n";
        let bytes = encoding_rs::GB18030.encode(bill).0;
        let e = read_csv_bytes(InputKind::Transactions, &bytes, m.get(InputKind::Transactions))
            .err()
            .unwrap();
        assert!(e.to_string().contains("matches none of the 4 lines above the header"), "{e}");
    }

    /// A transactions Parquet file of the contract's types, and the same
    /// values as CSV text (written as a cast to text writes them).
    fn typed_and_text() -> (DataFrame, String) {
        let n = 6;
        let text = |name: &str, v: &[Option<&str>]| Column::new(name.into(), v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>());
        let ids: Vec<String> = (1..=n).map(|i| format!("T{i}")).collect();
        let ms = 1_790_000_000_000i64;
        let df = DataFrame::new(
            n,
            vec![
                Column::new("txn_id".into(), ids.clone()),
                text("merchant_id", &[Some("M1"), Some("M1"), Some("M1"), None, Some("M1"), Some("M1")]),
                Int64Chunked::from_vec("txn_time".into(), vec![ms, ms + 500, ms, ms, ms, ms])
                    .into_datetime(TimeUnit::Milliseconds, None)
                    .into_series()
                    .into_column(),
                text("txn_type", &[Some("purchase"); 6]),
                text("status", &[Some("approved"); 6]),
                // 12.300, 12.345 (a third decimal), -5.000 (negative), 1.000 x3
                Int128Chunked::from_vec("amount".into(), vec![12_300, 12_345, -5_000, 1_000, 1_000, 1_000])
                    .into_decimal_unchecked(18, 3)
                    .into_series()
                    .into_column(),
                text("payment_method", &[Some("card"); 6]),
                Int128Chunked::from_vec("fee".into(), vec![-10, 5, 5, 5, 5, 5])
                    .into_decimal_unchecked(18, 2)
                    .into_series()
                    .into_column(),
                Column::new(
                    "lat".into(),
                    vec![Some(39.9), Some(39.9), Some(39.9), Some(39.9), Some(f64::NAN), None],
                ),
            ],
        )
        .unwrap();
        let csv = "txn_id,merchant_id,txn_time,txn_type,status,amount,payment_method,fee,lat\n\
T1,M1,2026-09-21 14:13:20,purchase,approved,12.300,card,-0.10,39.9\n\
T2,M1,2026-09-21 14:13:20,purchase,approved,12.345,card,0.05,39.9\n\
T3,M1,2026-09-21 14:13:20,purchase,approved,-5.000,card,0.05,39.9\n\
T4,,2026-09-21 14:13:20,purchase,approved,1.000,card,0.05,39.9\n\
T5,M1,2026-09-21 14:13:20,purchase,approved,1.000,card,0.05,NaN\n\
T6,M1,2026-09-21 14:13:20,purchase,approved,1.000,card,0.05,\n"
            .to_string();
        (df, csv)
    }

    #[test]
    fn typed_parquet_columns_are_taken_as_they_are_and_checked_as_text_is() {
        let (mut df, csv) = typed_and_text();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        let m = Mapping::parse(
            "transactions:\n  absent: [terminal_sn, card_type, card_no_masked, card_hash, entry_mode, mcc, location_city_code, original_txn_id, settlement_account_number]\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        let kind = InputKind::Transactions;
        let mapping = m.get(kind);
        let header = read_header(kind, &path, mapping).unwrap();
        let typed = crate::input::read_file(kind, &path, "t.parquet", 0, &header, mapping, &indicatif::ProgressBar::hidden()).unwrap();
        let text = read_csv_bytes(kind, csv.as_bytes(), mapping).unwrap();
        // The same rows accepted (the 500 ms are cut as the text path cuts
        // them), the same rows rejected for the same reasons.
        // Parquet comes as text, CSV with its few-valued columns as codes.
        let without_lines = |df: &DataFrame| categories::widen(df.drop(LINE_COL).unwrap()).unwrap();
        assert_eq!(typed.stats.rows_accepted, 2, "{:?}", typed.rejected);
        assert!(
            without_lines(&typed.df).equals_missing(&without_lines(&text.df)),
            "{:?}\n{:?}",
            typed.df,
            text.df
        );
        let reasons = |f: &ParsedFile| {
            f.rejected
                .iter()
                .map(|r| (r.line, r.column.clone(), r.reason.clone()))
                .collect::<Vec<_>>()
        };
        let mut from_csv = reasons(&text);
        for r in &mut from_csv {
            r.0 -= 1; // CSV line 1 is the header
        }
        assert_eq!(reasons(&typed), from_csv);
        assert!(reasons(&typed).iter().any(|r| r.2.contains("12.345")), "{:?}", reasons(&typed));
    }

    #[test]
    fn mapping_files_with_row_cases_are_checked_before_reading() {
        let bad = |yaml: &str| Mapping::parse(yaml, Path::new("m.yaml")).err().unwrap().to_string();
        assert!(bad("transactions:\n  rows:\n    - columns: {a: txn_id}\n").contains("missing field `when`"));
        assert!(bad("transactions:\n  rows:\n    - when: {}\n").contains("has no `when`"));
        assert!(bad("transactions:\n  rows:\n    - when: {a: b}\n      negate: [txn_id]\n").contains("`txn_id` is not one"));
        assert!(bad("transactions:\n  rows:\n    - when: {a: b}\n      columns: {x: nope}\n").contains("`nope` is not a column"));
        assert!(bad("transactions:\n  skip_lines: 1\n  title: {merchant_id: 'x'}\n").contains("exactly one capture group"));
        assert!(bad("transactions:\n  title: {merchant_id: '(x)'}\n").contains("give `skip_lines`"));
    }
}
