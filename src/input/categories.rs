//! Few-valued text columns of transactions held as categoricals from the
//! moment they are read.
//!
//! A transaction's type, status, payment method, card type and entry mode
//! take a handful of values each, its MCC and city code a few hundred; its
//! merchant, terminal and settlement account repeat one value over each
//! merchant's rows, and its original transaction id is empty on all but
//! the refunds. As text every value costs a 16-byte view, and an id
//! longer than 12 bytes its bytes too: 2 GB for these columns at 10M rows.
//! As categoricals they are 4-byte codes.
//!
//! The CSV parser builds these columns as codes directly (`CodeBuilder`):
//! the text of a whole file is never held, and nothing converts it after.
//! Inputs that arrive as text (Parquet, the parse cache) are coded by
//! `code`; a partitioned scan spills the codes and reads them back into
//! the same categories (`engine::narrow::to_codes`). The engine decides
//! how rules read them (`engine::narrow`).
//!
//! Codes are 32-bit: polars' 8-bit categoricals need its `dtype-u8`
//! feature, which this build leaves out.

use std::sync::LazyLock;

use polars::prelude::*;

use crate::contract::{ColType, InputKind};

/// Transaction text columns with few distinct values besides the contract's
/// enumerations. The city code has a few hundred; the two rules that read
/// its province and city as prefixes (`SUBSTR`, which a categorical does
/// not have) read it alone as text (`engine::narrow::read_as_text`).
const FEW_VALUES: &[&str] = &["mcc", "location_city_code"];

/// Transaction text columns that repeat a value per merchant, terminal or
/// account, and the refunds' original ids (empty on all others): a few
/// hundred thousand values over millions of rows. Not coded: the card
/// (10.3M distinct values in 10.7M rows of a generated month: codes plus a
/// dictionary would be larger) and the transaction id (one per row).
const PER_ENTITY: &[&str] = &["merchant_id", "terminal_sn", "settlement_account_number", "original_txn_id"];

/// One set of categories for every coded column of every frame of a run:
/// files and partitions concatenate and join on them, and a rule may
/// compare two coded columns (`mcc <> merchant_id`), which polars allows
/// only between columns of the same categories.
///
/// Held for the life of the process. polars keeps named categories in a
/// registry of weak references, and a `Categories` that is dropped removes
/// its name from the registry *after* its last reference is gone: if
/// another thread asked for the name in between, it got a new object, and
/// the late removal then erased that new one's entry, so the next caller
/// made a third. Two frames of one run then held "equal" categories backed
/// by different objects and would not concatenate ("Categories which should
/// be equal have different backing objects"; seen once in the tests, where
/// frames of parallel tests come and go). Never dropping ours keeps one
/// object and one mapping for the whole process.
pub(crate) fn categories() -> DataType {
    static CATEGORIES: LazyLock<DataType> =
        LazyLock::new(|| DataType::from_categories(Categories::new("text".into(), "posaudit".into(), CategoricalPhysical::U32)));
    CATEGORIES.clone()
}

/// Whether `kind`'s contract column `name` is held as codes.
pub(crate) fn is_coded(kind: InputKind, name: &str) -> bool {
    kind == InputKind::Transactions
        && kind
            .column(name)
            .is_some_and(|spec| matches!(spec.ty, ColType::Enum(_)) || FEW_VALUES.contains(&spec.name) || PER_ENTITY.contains(&spec.name))
}

/// `df`'s columns that `is_coded` names and that are still text, as
/// categoricals; `more` names other columns to code alike.
pub fn code(df: &mut DataFrame, kind: InputKind, more: &[&str]) -> PolarsResult<()> {
    code_columns(df, kind, more, false)
}

/// As `code`, for a batch of a file being read (typed Parquet): the
/// `REPEATING` columns go through the tables of values entered before
/// (`ENTERED`), as a CSV part's do, so that a merchant (terminal, account)
/// of every batch is entered into the shared categories once, not once a
/// batch (polars' map of them was 5% of the 10M-row month's Parquet read).
pub(crate) fn code_batch(df: &mut DataFrame, kind: InputKind) -> PolarsResult<()> {
    code_columns(df, kind, &[], kind == InputKind::Transactions)
}

fn code_columns(df: &mut DataFrame, kind: InputKind, more: &[&str], through_entered: bool) -> PolarsResult<()> {
    use rayon::prelude::*;
    let text: Vec<&Column> = df
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::String && (is_coded(kind, c.name()) || more.contains(&c.name().as_str())))
        .collect();
    // Each column's every value is hashed: one column per thread.
    let cats: Vec<Column> = text
        .par_iter()
        .map(|c| match through_entered && REPEATING.contains(&c.name().as_str()) {
            true => Ok(coded_through_entered(c.name().clone(), c.len(), c.str()?.iter())?.into_column()),
            false => to_categorical(c),
        })
        .collect::<PolarsResult<_>>()?;
    for cat in cats {
        df.with_column(cat)?;
    }
    Ok(())
}

/// `df` with every categorical back as text: for files written to disk
/// (the parse cache), whose readers know nothing of this run's categories.
pub fn widen(df: DataFrame) -> PolarsResult<DataFrame> {
    widen_where(df, |_| true)
}

/// `df` with its categoricals that `wanted` names back as text.
pub(crate) fn widen_where(mut df: DataFrame, wanted: impl Fn(&str) -> bool) -> PolarsResult<DataFrame> {
    let names: Vec<PlSmallStr> = df
        .schema()
        .iter()
        .filter(|(n, d)| matches!(d, DataType::Categorical(..)) && wanted(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    for n in names {
        let text = df.column(&n)?.cast(&DataType::String)?;
        df.with_column(text)?;
    }
    Ok(df)
}

/// A text column as a categorical of `categories()`, the same as polars'
/// cast gives. The cast puts every value into the shared categories (a
/// quality hash and a lookup in a concurrent map per value, about 150 ns a
/// value on this project's machine: 9 s of a 10M scan for eleven columns);
/// these columns repeat a few hundred thousand values at most, so each value
/// is numbered among the column's own first (`Numbering`), and only a value
/// seen for the first time goes to the shared categories.
pub(crate) fn to_categorical(c: &Column) -> PolarsResult<Column> {
    let text = c.str()?;
    let mut numbering = Numbering::with_capacity(text.len());
    numbering.number_text(text);
    Ok(numbering.finish(c.name().clone())?.into_column())
}

/// `n` values (nulls as None) as a categorical of `categories()` named
/// `name`, built as `to_categorical` builds a column's: for values that
/// are made, not read (a derived column), without a text column first.
pub(crate) fn coded<'a>(name: PlSmallStr, n: usize, values: impl Iterator<Item = Option<&'a str>>) -> PolarsResult<Series> {
    let mut numbering = Numbering::with_capacity(n);
    numbering.number_all(values);
    numbering.finish(name)
}

/// A column's values numbered among themselves by first appearance
/// (`InlineCodes`), and each row's number (`NULL` for none): what a coded
/// column is before its values enter the shared categories, once each, in
/// the order of their numbers (`shared_codes`).
struct Numbering<'a> {
    table: InlineCodes,
    values: Vec<&'a str>,
    rows: Vec<u32>,
}

impl<'a> Numbering<'a> {
    fn with_capacity(n: usize) -> Self {
        Numbering {
            table: InlineCodes::new(),
            values: Vec::new(),
            rows: Vec::with_capacity(n),
        }
    }

    /// Number each of `values` (a new one gets the next number) and push
    /// it to `rows` (`NULL` for none).
    fn number_all(&mut self, values: impl Iterator<Item = Option<&'a str>>) {
        let Numbering { table, values: seen, rows } = self;
        let Ok(()) = table.code_all(values, |v| next_number(seen, v), rows);
    }

    /// `number_all` of a text column's values, a value held whole in its
    /// view (`views`) looked up by the view after its first row: the
    /// columns coded here are mostly enumerations and codes of a few
    /// bytes. Longer values are numbered one by one.
    fn number_text(&mut self, text: &'a StringChunked) {
        let mut by_view: PlHashMap<u128, u32> = PlHashMap::default();
        super::views::for_each_row(text, |value, view| {
            let Some(value) = value else {
                self.rows.push(NULL);
                return;
            };
            let code = match view.filter(|_| by_view.len() < super::views::REMEMBERED_AT_MOST) {
                Some(v) => match by_view.get(&v) {
                    Some(&code) => code,
                    None => {
                        let code = self.number(value);
                        by_view.insert(v, code);
                        code
                    }
                },
                None => self.number(value),
            };
            self.rows.push(code);
        });
    }

    /// The number of `value`, the next one if it is new.
    fn number(&mut self, value: &'a str) -> u32 {
        let Numbering { table, values, .. } = self;
        let Ok(code) = table.code_or_insert(value, table.hash_of(value), || next_number(values, value));
        code
    }

    fn finish(self, name: PlSmallStr) -> PolarsResult<Series> {
        shared_codes(name, self.values.into_iter(), self.rows)
    }
}

/// A value new to a `Numbering`: the next number, the value kept in
/// `seen` at it.
fn next_number<'a>(seen: &mut Vec<&'a str>, value: &'a str) -> Result<u32, std::convert::Infallible> {
    seen.push(value);
    Ok(seen.len() as u32 - 1)
}

/// A column of codes built value by value (a CSV part's rows), the values
/// numbered among themselves first and entered into the shared categories
/// once each at the end, in the order they first appeared.
///
/// 10.7M lookups among 119,000 merchants (or terminals, or accounts) take
/// 2-2.7 s a column on this project's machine, against 0.2-0.3 s for an
/// enumeration: the map outgrows the caches. Keys copied next to each
/// other, or held in the map's own slots, changed nothing measurable
/// (tried).
pub(crate) struct CodeBuilder {
    name: PlSmallStr,
    seen: PlHashMap<Box<str>, u32>,
    /// Values by their own number, in the order they first appeared.
    values: Vec<Box<str>>,
    /// Each row's own number, `NULL` for none.
    rows: Vec<u32>,
    /// The own number of each value of an enumeration by its place in
    /// the contract's list (`push_listed`), `NULL` until seen.
    listed: Vec<u32>,
}

const NULL: u32 = u32::MAX;

impl CodeBuilder {
    pub(crate) fn new(name: PlSmallStr, capacity: usize) -> Self {
        CodeBuilder {
            name,
            seen: PlHashMap::default(),
            values: Vec::new(),
            rows: Vec::with_capacity(capacity),
            listed: Vec::new(),
        }
    }

    /// Push the value at place `i` of an enumeration's list: after its
    /// first time, by its place, without hashing the text (five columns of
    /// every transaction are enumerations).
    pub(crate) fn push_listed(&mut self, i: usize, value: &str) {
        match self.listed.get(i) {
            Some(&code) if code != NULL => self.rows.push(code),
            _ => {
                self.push(Some(value));
                if self.listed.len() <= i {
                    self.listed.resize(i + 1, NULL);
                }
                self.listed[i] = *self.rows.last().expect("just pushed");
            }
        }
    }

    pub(crate) fn push(&mut self, value: Option<&str>) {
        let code = match value {
            None => NULL,
            Some(s) => match self.seen.get(s) {
                Some(&code) => code,
                None => {
                    let code = self.values.len() as u32;
                    self.seen.insert(s.into(), code);
                    self.values.push(s.into());
                    code
                }
            },
        };
        self.rows.push(code);
    }

    pub(crate) fn finish(self) -> PolarsResult<Series> {
        drop(self.seen);
        shared_codes(self.name, self.values.iter().map(|v| &**v), self.rows)
    }
}

/// A categorical of `categories()` named `name` from each row's own
/// number among `values` (`NULL` for a null), the values in the order of
/// their numbers: each value is entered into the shared categories once.
fn shared_codes<'a>(name: PlSmallStr, values: impl Iterator<Item = &'a str>, mut rows: Vec<u32>) -> PolarsResult<Series> {
    let dtype = categories();
    let DataType::Categorical(_, mapping) = &dtype else {
        unreachable!("categories() is a categorical")
    };
    let shared: Vec<u32> = values.map(|s| mapping.insert_cat(s)).collect::<PolarsResult<_>>()?;
    for c in rows.iter_mut().filter(|c| **c != NULL) {
        *c = shared[*c as usize];
    }
    Ok(categorical(name, rows))
}

/// A categorical of `categories()` named `name` from each row's code in
/// them (`NULL` for a null).
fn categorical(name: PlSmallStr, rows: Vec<u32>) -> Series {
    let ids: UInt32Chunked = if rows.contains(&NULL) {
        rows.iter().map(|&c| (c != NULL).then_some(c)).collect()
    } else {
        UInt32Chunked::from_vec(PlSmallStr::EMPTY, rows)
    };
    // SAFETY: every code came from the categories of `categories()`, the
    // process's one object (`categories`): the caller's promise.
    let cat = unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(ids.with_name(name), categories()) };
    cat.into_series()
}

/// Columns whose parts' values are looked up in a table of the values
/// entered before (`ENTERED`): a merchant's, terminal's or account's value
/// comes back in part after part of one file, and in file after file of a
/// month. Not the refunds' original ids: each comes once.
const REPEATING: &[&str] = &["merchant_id", "terminal_sn", "settlement_account_number"];

/// Values a table of `ENTERED` holds at most (64 MiB of slots); past that
/// it starts again empty, so an input of millions of terminals is not kept
/// whole. (The tests start again past a few thousand, to cover it.)
const ENTERED_AT_MOST: usize = if cfg!(test) { 5_000 } else { 1 << 20 };

/// Tables of the shared code of each value entered into `categories()`,
/// each for one `REPEATING` column, until the inputs are read
/// (`forget_entered`). A part takes its column's table out while it codes
/// (parts coded at once on other threads take others, or make new ones)
/// and puts it back. A code never changes (`categories` is never dropped),
/// so a table holds wherever it is used.
///
/// Numbered afresh in each part, a 32 MB part's ~80,000 merchants
/// (terminals, accounts) of the 10M-row month filled a new table and went
/// into polars' shared map again, in each of 66 parts of one 2.1 GB file.
/// (Tables per thread, emptied on every thread of the pool at the end of
/// the read, were tried: a thread waiting for the others to empty theirs
/// ran other scans' reads meanwhile, on its own stack, and the rule
/// tests' many small scans overflowed it.)
static ENTERED: std::sync::Mutex<Vec<(PlSmallStr, InlineCodes)>> = std::sync::Mutex::new(Vec::new());

/// Drop the tables of values entered (`ENTERED`): when the inputs are
/// read, so that they do not stay through the rules, where a scan's peak
/// is. A part coding meanwhile (another scan of the process) puts its
/// table back after.
pub(crate) fn forget_entered() {
    // Freed after the lock is let go: other parts need not wait for it.
    let dropped = std::mem::take(&mut *ENTERED.lock().unwrap_or_else(|e| e.into_inner()));
    drop(dropped);
}

/// The values (nulls as None) of `REPEATING` column `name` as a
/// categorical of `categories()`, through a table of values entered
/// before (`ENTERED`).
fn coded_through_entered<'a>(name: PlSmallStr, n: usize, values: impl Iterator<Item = Option<&'a str>>) -> PolarsResult<Series> {
    let dtype = categories();
    let DataType::Categorical(_, mapping) = &dtype else {
        unreachable!("categories() is a categorical")
    };
    let taken = {
        let mut tables = ENTERED.lock().unwrap_or_else(|e| e.into_inner());
        tables.iter().position(|(n, _)| *n == name).map(|at| tables.swap_remove(at).1)
    };
    let mut table = match taken {
        Some(t) if t.len() <= ENTERED_AT_MOST => t,
        _ => InlineCodes::new(),
    };
    let mut rows = Vec::with_capacity(n);
    let coded = table.code_all(values, |v| mapping.insert_cat(v), &mut rows);
    // The table goes back even after an error: its codes hold.
    ENTERED.lock().unwrap_or_else(|e| e.into_inner()).push((name.clone(), table));
    coded?;
    Ok(categorical(name, rows))
}

/// Values numbered by first appearance in a table whose slots hold the
/// values themselves, up to `INLINE` bytes (longer ones go to a map).
///
/// A part's 119,000 merchants (or terminals, or accounts) at 10M rows
/// outgrow the caches. In a map of boxed text a lookup missed them three
/// times (the control bytes, the slot, the text): 160 ns, 15% of the
/// read's time for these four columns. Here one 32-byte slot holds 32 bits
/// of the hash, the number and the text: a probe is one miss.
struct InlineCodes<S = PlRandomState> {
    slots: Vec<Slot>,
    /// Slots in use.
    used: usize,
    longer: PlHashMap<Box<str>, u32>,
    state: S,
}

const INLINE: usize = 23;

#[derive(Clone, Copy)]
struct Slot {
    hash: u32,
    /// `NULL`: empty.
    code: u32,
    len: u8,
    bytes: [u8; INLINE],
}

const EMPTY: Slot = Slot {
    hash: 0,
    code: NULL,
    len: 0,
    bytes: [0; INLINE],
};

impl InlineCodes {
    fn new() -> Self {
        InlineCodes::with_hasher(PlRandomState::default())
    }
}

impl<S: std::hash::BuildHasher> InlineCodes<S> {
    fn with_hasher(state: S) -> Self {
        InlineCodes {
            slots: vec![EMPTY; 1 << 10],
            used: 0,
            longer: PlHashMap::default(),
            state,
        }
    }

    /// Values held.
    fn len(&self) -> usize {
        self.used + self.longer.len()
    }

    /// `code_or_insert` of each of `values` in turn, pushed to `rows`
    /// (`NULL` for none); `new` makes a new value's code.
    ///
    /// A table of a file's 119,000 merchants (terminals, accounts) is
    /// megabytes: each probe missed the caches, one after another, and
    /// waiting on them was three quarters of coding these columns (perf:
    /// one load, 5% of a 10M-row CSV read; `Numbering`, 11% of the typed
    /// Parquet read). Here the values go in groups of `AHEAD`: each
    /// group's slots are asked of memory at once, then probed in order,
    /// so the misses overlap. Probing is as `code_or_insert`, so the codes
    /// are the same.
    fn code_all<'v, E>(
        &mut self,
        values: impl Iterator<Item = Option<&'v str>>,
        mut new: impl FnMut(&'v str) -> Result<u32, E>,
        rows: &mut Vec<u32>,
    ) -> Result<(), E> {
        const AHEAD: usize = 16;
        let mut values = values.peekable();
        let mut group: Vec<(Option<&'v str>, u32)> = Vec::with_capacity(AHEAD);
        while values.peek().is_some() {
            group.clear();
            group.extend(values.by_ref().take(AHEAD).map(|v| (v, v.map_or(0, |v| self.hash_of(v)))));
            for &(v, hash) in &group {
                if v.is_some_and(|v| v.len() <= INLINE) {
                    self.prefetch(hash);
                }
            }
            for &(v, hash) in &group {
                rows.push(match v {
                    None => NULL,
                    Some(v) => self.code_or_insert(v, hash, || new(v))?,
                });
            }
        }
        Ok(())
    }

    /// The 32 bits of `value`'s hash its slot is found by (0 for a value
    /// too long for a slot: those are held apart).
    fn hash_of(&self, value: &str) -> u32 {
        if value.len() > INLINE {
            return 0;
        }
        self.state.hash_one(value) as u32
    }

    /// Ask for the slot a probe for `hash` starts at to be brought into
    /// the cache; a hint, which changes nothing else.
    #[inline]
    fn prefetch(&self, hash: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let at = hash as usize & (self.slots.len() - 1);
            let slot: *const Slot = &self.slots[at];
            // SAFETY: a prefetch reads nothing and faults on no address
            // (this one is a slot of the table).
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot.cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// The code held for `value`, whose `hash_of` is `hash`, or else
    /// `new`'s, held from then on.
    fn code_or_insert<E>(&mut self, value: &str, hash: u32, new: impl FnOnce() -> Result<u32, E>) -> Result<u32, E> {
        if value.len() > INLINE {
            if let Some(&code) = self.longer.get(value) {
                return Ok(code);
            }
            let code = new()?;
            self.longer.insert(value.into(), code);
            return Ok(code);
        }
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = &self.slots[at];
            if slot.code == NULL {
                break;
            }
            if slot.hash == hash && usize::from(slot.len) == value.len() && &slot.bytes[..value.len()] == value.as_bytes() {
                return Ok(slot.code);
            }
            at = (at + 1) & mask;
        }
        let code = new()?;
        debug_assert_ne!(code, NULL, "NULL marks an empty slot");
        let mut slot = Slot {
            hash,
            code,
            len: value.len() as u8,
            bytes: [0; INLINE],
        };
        slot.bytes[..value.len()].copy_from_slice(value.as_bytes());
        self.slots[at] = slot;
        self.used += 1;
        // At most half full: probes stay short.
        if 2 * self.used > self.slots.len() {
            self.grow();
        }
        Ok(code)
    }

    fn grow(&mut self) {
        let wider = vec![EMPTY; 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, wider);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| s.code != NULL) {
            let mut at = s.hash as usize & mask;
            while self.slots[at].code != NULL {
                at = (at + 1) & mask;
            }
            self.slots[at] = s;
        }
    }
}

/// The text of a coded column that repeats a value per merchant, terminal
/// or account (`PER_ENTITY`) as a CSV part is parsed, its bytes end to
/// end, coded in one pass when the part is done (`finish`).
///
/// Coded as each row was parsed, these columns' lookups took about three
/// times what the same lookups take in one pass (2-2.7 s against 0.4 s a
/// column of 10.7M values on this project's machine): the rest of the
/// row's parsing pushed the lookup tables (119,000 values) out of the
/// caches between rows. A few-valued column's table stays in them.
pub(crate) struct TextToCode {
    name: PlSmallStr,
    text: String,
    /// Each row's value's length in `text`; `NO_VALUE` marks a null.
    lens: Vec<u32>,
}

/// The length that marks a row without a value (no value read is as long:
/// `records` bounds a line's length far below it).
const NO_VALUE: u32 = u32::MAX;

impl TextToCode {
    pub(crate) fn new(name: PlSmallStr, capacity: usize) -> Self {
        TextToCode {
            name,
            // Room for ids of 24 bytes: memory is taken as it is written,
            // and a text grown by copies wrote each byte twice or more.
            text: String::with_capacity(capacity.saturating_mul(24)),
            lens: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn push(&mut self, value: Option<&str>) {
        match value {
            Some(s) => {
                debug_assert!(s.len() < NO_VALUE as usize, "values are bounded by `records`");
                self.text.push_str(s);
                self.lens.push(s.len() as u32);
            }
            None => self.lens.push(NO_VALUE),
        }
    }

    /// The values in row order.
    fn values(&self) -> impl Iterator<Item = Option<&str>> {
        let mut start = 0usize;
        self.lens.iter().map(move |&len| {
            if len == NO_VALUE {
                return None;
            }
            let end = start + len as usize;
            let value = &self.text[start..end];
            start = end;
            Some(value)
        })
    }

    /// The part's column of codes: through a table of the values entered
    /// before for a `REPEATING` column (`ENTERED`), else numbered in the
    /// part (`Numbering`).
    pub(crate) fn finish(self) -> PolarsResult<Series> {
        if REPEATING.contains(&self.name.as_str()) {
            return coded_through_entered(self.name.clone(), self.lens.len(), self.values());
        }
        let mut numbering = Numbering::with_capacity(self.lens.len());
        numbering.number_all(self.values());
        numbering.finish(self.name.clone())
    }
}

/// Whether `kind`'s coded column `name` is coded when its part is read
/// (`TextToCode`) rather than as each row is.
pub(crate) fn is_coded_later(kind: InputKind, name: &str) -> bool {
    is_coded(kind, name) && PER_ENTITY.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_gives_what_polars_cast_gives_and_widens_back_unchanged() {
        // Short (inline in a view) and long ids, nulls, repeats, and two chunks.
        let values = |from: usize| -> Vec<Option<String>> {
            (from..from + 5000)
                .map(|i| match i % 7 {
                    0 => None,
                    1 => Some(format!("8221000{:08}", i % 301)),
                    2 => Some(format!("T2026100100000000000000{:05}", i % 11)),
                    _ => Some(format!("t{}", i % 13)),
                })
                .collect()
        };
        let mut text = Column::new("merchant_id".into(), values(0));
        text.append_owned(Column::new("merchant_id".into(), values(5000))).unwrap();
        assert_eq!(text.as_materialized_series().n_chunks(), 2);
        let ours = to_categorical(&text).unwrap();
        let theirs = text.cast(&categories()).unwrap();
        assert_eq!(ours.dtype(), theirs.dtype());
        assert_eq!(ours.null_count(), theirs.null_count());
        assert!(ours.cast(&DataType::String).unwrap().equals_missing(&text));
        // Same categories: the two compare equal value by value.
        assert!(ours.as_materialized_series().equals_missing(theirs.as_materialized_series()));
        let back = widen(DataFrame::new(ours.len(), vec![ours]).unwrap()).unwrap();
        assert!(back.column("merchant_id").unwrap().equals_missing(&text));
    }

    #[test]
    fn values_gathered_from_a_few_in_two_chunks_code_as_polars_cast_codes_them() {
        // Rows gathered from a few values share their views, as rows
        // decoded from a Parquet page's dictionary do; a second chunk
        // gathered from the same values stored again has other views for
        // them; a long value that differs from another only after its
        // prefix, and short values that differ in their last byte. (Coding
        // by view, tried, was slower: plain-encoded ids have a view each.)
        let dictionary = |order: &[usize]| -> StringChunked {
            let all = [
                "822100000000001",
                "822100000000002",
                "SN12345678901",
                "SN12345678902",
                "a",
                "b",
                "123456789012",
                "123456789013",
            ];
            order.iter().map(|&i| Some(all[i])).collect()
        };
        let rows = |dict: &StringChunked, seed: u32| -> StringChunked {
            let idx: Vec<Option<IdxSize>> = (0..3000u32)
                .map(|i| (i % 17 != 0).then_some((i * 7 + seed) % dict.len() as u32))
                .collect();
            dict.take(&IdxCa::from_iter_options("i".into(), idx.into_iter())).unwrap()
        };
        let mut text = rows(&dictionary(&[0, 1, 2, 3, 4, 5, 6, 7]), 0);
        text.append_owned(rows(&dictionary(&[7, 6, 5, 4, 3, 2, 1, 0]), 3)).unwrap();
        assert_eq!(text.chunks().len(), 2);
        let text = text.with_name("merchant_id".into()).into_column();
        let ours = to_categorical(&text).unwrap();
        let theirs = text.cast(&categories()).unwrap();
        assert!(ours.as_materialized_series().equals_missing(theirs.as_materialized_series()));
        assert!(ours.cast(&DataType::String).unwrap().equals_missing(&text));
    }

    #[test]
    fn frames_made_and_dropped_on_many_threads_share_one_set_of_categories() {
        // Each thread makes two columns after the other threads' columns may
        // all have been dropped, and appends one to the other: polars
        // refuses that unless both hold the very same categories object.
        // Before `categories()` held its object for the process, this met
        // polars' registry race (see `categories`) within a few thousand
        // rounds on two cores.
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..20_000 {
                        let v = format!("t{t}-{}", i % 7);
                        let mut a = coded("merchant_id".into(), 1, std::iter::once(Some(v.as_str()))).unwrap();
                        let b = coded("merchant_id".into(), 1, std::iter::once(Some("x"))).unwrap();
                        a.append(&b).unwrap();
                        assert_eq!(a.len(), 2);
                    }
                });
            }
        });
    }

    #[test]
    fn values_pushed_by_their_place_in_a_list_code_as_by_their_text() {
        let list = ["purchase", "refund", "reversal"];
        let rows = [Some(1), Some(0), None, Some(1), Some(2), Some(0)];
        let mut by_place = CodeBuilder::new("txn_type".into(), 0);
        let mut by_text = CodeBuilder::new("txn_type".into(), 0);
        for r in rows {
            match r {
                Some(i) => by_place.push_listed(i, list[i]),
                None => by_place.push(None),
            }
            by_text.push(r.map(|i| list[i]));
        }
        let (a, b) = (by_place.finish().unwrap(), by_text.finish().unwrap());
        assert!(a.equals_missing(&b));
        assert_eq!(a.null_count(), 1);
    }

    #[test]
    fn a_column_without_nulls_and_an_empty_one_code_alike() {
        let mut b = CodeBuilder::new("status".into(), 0);
        for v in ["approved", "declined", "approved"] {
            b.push(Some(v));
        }
        let s = b.finish().unwrap();
        assert_eq!(s.null_count(), 0);
        let text: Vec<Option<String>> = s
            .cast(&DataType::String)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect();
        assert_eq!(
            text,
            [Some("approved"), Some("declined"), Some("approved")].map(|v| v.map(str::to_string))
        );
        let empty = CodeBuilder::new("status".into(), 0).finish().unwrap();
        assert_eq!((empty.len(), empty.dtype()), (0, &categories()));
    }

    #[test]
    fn only_transactions_enumerations_and_few_valued_text_are_coded() {
        let coded: Vec<&str> = InputKind::Transactions
            .columns()
            .iter()
            .map(|c| c.name)
            .filter(|n| is_coded(InputKind::Transactions, n))
            .collect();
        assert_eq!(
            coded,
            [
                "merchant_id",
                "terminal_sn",
                "txn_type",
                "status",
                "payment_method",
                "card_type",
                "entry_mode",
                "mcc",
                "location_city_code",
                "original_txn_id",
                "settlement_account_number"
            ]
        );
        assert!(!is_coded(InputKind::Fees, "merchant_id"));
        assert!(!is_coded(InputKind::Transactions, "txn_id"));
        assert!(!is_coded(InputKind::Transactions, "card_hash"));
    }

    #[test]
    fn the_inline_table_numbers_values_by_first_appearance_and_tells_equal_hashes_apart() {
        // Each new value the next number, as `Numbering` numbers them.
        fn number<S: std::hash::BuildHasher>(t: &mut InlineCodes<S>, values: &[Option<&str>]) -> Vec<u32> {
            let mut next = 0u32;
            let mut rows = Vec::new();
            let numbered = t.code_all(
                values.iter().copied(),
                |_| {
                    next += 1;
                    Ok::<u32, ()>(next - 1)
                },
                &mut rows,
            );
            assert!(numbered.is_ok());
            rows
        }
        let mut t = InlineCodes::new();
        let (x23, y24) = ("x".repeat(23), "y".repeat(24));
        let values = ["a", "b", "a", "", "b", "c", &x23, &y24, &y24, "c"].map(Some);
        let codes = number(&mut t, &values);
        assert_eq!(codes, [0, 1, 0, 2, 1, 3, 4, 5, 5, 3]);
        assert_eq!(t.len(), 6);
        // Nulls in groups of any place (16 values a group).
        let mut t = InlineCodes::new();
        let values: Vec<Option<String>> = (0..100).map(|i| (i % 7 != 3).then(|| format!("v{}", i % 40))).collect();
        let values: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
        let codes = number(&mut t, &values);
        let mut first: Vec<&str> = Vec::new();
        let expected: Vec<u32> = values
            .iter()
            .map(|v| match v {
                None => NULL,
                Some(v) => match first.iter().position(|f| f == v) {
                    Some(at) => at as u32,
                    None => {
                        first.push(v);
                        first.len() as u32 - 1
                    }
                },
            })
            .collect();
        assert_eq!(codes, expected);
        assert_eq!(t.len(), first.len());
        // An error from `new` stops the coding with it.
        let mut t = InlineCodes::new();
        let mut rows = Vec::new();
        let stopped = t.code_all(
            ["a", "b", "c"].map(Some).into_iter(),
            |v| if v == "b" { Err(v) } else { Ok(0) },
            &mut rows,
        );
        assert_eq!((stopped, rows), (Err("b"), vec![0]));
        // One hash for all: told apart by length and bytes, along the
        // probe, through growing (1,024 slots at first).
        struct Same;
        impl std::hash::BuildHasher for Same {
            type Hasher = Seven;
            fn build_hasher(&self) -> Seven {
                Seven
            }
        }
        struct Seven;
        impl std::hash::Hasher for Seven {
            fn finish(&self) -> u64 {
                7
            }
            fn write(&mut self, _: &[u8]) {}
        }
        let mut t = InlineCodes::with_hasher(Same);
        let values: Vec<String> = (0..3_000).map(|i| format!("{}", i % 1_500)).collect();
        let values: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
        let codes = number(&mut t, &values);
        assert_eq!(codes, (0..3_000).map(|i| i % 1_500).collect::<Vec<u32>>());
        assert_eq!(t.len(), 1_500);
    }

    #[test]
    fn text_coded_at_the_end_codes_as_value_by_value() {
        let rows = [Some("822100001"), None, Some(""), Some("SN-7"), Some("822100001"), None, Some("店")];
        let mut later = TextToCode::new("merchant_id".into(), 0);
        let mut now = CodeBuilder::new("merchant_id".into(), 0);
        for r in rows {
            later.push(r);
            now.push(r);
        }
        let (a, b) = (later.finish().unwrap(), now.finish().unwrap());
        assert!(a.equals_missing(&b));
        assert_eq!((a.len(), a.null_count()), (7, 2));
        // Enough values for the table to grow many times; every length
        // from 1 to 30 bytes (held in the slots up to 23, in a map past
        // that), repeats far apart, and nulls.
        let many: Vec<Option<String>> = (0..100_000)
            .map(|i: usize| (i % 11 != 4).then(|| format!("{:0w$}", i % 7_919, w = 1 + i % 30)))
            .collect();
        let mut later = TextToCode::new("terminal_sn".into(), 0);
        let mut now = CodeBuilder::new("terminal_sn".into(), 0);
        for r in &many {
            later.push(r.as_deref());
            now.push(r.as_deref());
        }
        let (a, b) = (later.finish().unwrap(), now.finish().unwrap());
        assert!(a.equals_missing(&b));
        assert!(a
            .cast(&DataType::String)
            .unwrap()
            .equals_missing(&Series::new("terminal_sn".into(), &many)));
        let empty = TextToCode::new("merchant_id".into(), 0).finish().unwrap();
        assert_eq!((empty.len(), empty.dtype()), (0, &categories()));
    }

    #[test]
    fn parts_coded_through_the_values_entered_before_code_as_polars_cast_codes_them() {
        // Part after part, values coming back from earlier parts, long and
        // short; the third part starts past the table's limit (a few
        // thousand values in the tests), so the table starts again; then
        // parts on two threads at once, and after the tables are dropped.
        let part = |from: usize, n: usize| -> Vec<Option<String>> {
            (from..from + n)
                .map(|i| (i % 13 != 5).then(|| format!("{:0w$}", i % 6_007, w = 8 + i % 20)))
                .collect()
        };
        let check = |values: &[Option<String>]| {
            let mut later = TextToCode::new("settlement_account_number".into(), 0);
            for v in values {
                later.push(v.as_deref());
            }
            let ours = later.finish().unwrap();
            let text = Series::new("settlement_account_number".into(), values);
            let theirs = text.cast(&categories()).unwrap();
            assert!(ours.equals_missing(&theirs));
            assert!(ours.cast(&DataType::String).unwrap().equals_missing(&text));
        };
        for from in [0, 3_000, 9_000, 0] {
            check(&part(from, 8_000));
        }
        std::thread::scope(|s| {
            s.spawn(|| check(&part(1_000, 8_000)));
            s.spawn(|| check(&part(2_000, 8_000)));
        });
        forget_entered();
        check(&part(500, 8_000));
    }
}
