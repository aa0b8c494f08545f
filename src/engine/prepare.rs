//! From loaded inputs to the frames rules read: derived columns added once,
//! and the merchant's application joined onto transactions, fees and fee
//! changes. The same code runs on empty frames to validate rules, so the
//! schema a rule is checked against is exactly the one it runs on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use super::{keys, narrow};
use crate::checks::{self, Texts};
use crate::input::reference::{RefTable, References};
use crate::input::{InputKind, LINE_COL, SRC_COL};

pub use crate::contract::APP_PREFIX;

/// The frame each rule source reads.
#[derive(Clone, Default)]
pub struct Prepared {
    pub frames: BTreeMap<InputKind, DataFrame>,
    /// Application columns of each input's rows, gathered onto its frame
    /// when a rule reads them (`frame`).
    pub joined: BTreeMap<InputKind, Joined>,
    /// How long each preparation step took, for `--verbose`.
    pub steps: Vec<Step>,
}

/// The application columns of a frame's rows, not yet copied onto it.
/// Held on every row they were most of a prepared frame's width (contract
/// terms, limits, the settlement account: 16-byte decimals repeated for
/// each of a merchant's transactions, about a quarter of the memory at
/// 10M rows); each rule gathers the few it reads, and drops them after.
#[derive(Clone)]
pub struct Joined {
    /// One row per merchant: the application columns, under the names
    /// rules read them by.
    columns: DataFrame,
    /// Each row's application (a row of `columns`), null for none.
    at: IdxCa,
}

impl Joined {
    /// How many application columns the rows can have gathered.
    pub fn width(&self) -> usize {
        self.columns.width()
    }

    /// Whether the rows can have application column `name` gathered.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.columns.schema().contains(name)
    }

    /// The application columns the rows can have gathered, and their types.
    pub(crate) fn schema(&self) -> &Schema {
        self.columns.schema()
    }

    /// The rows for which `flags` says true: `flags` is given the
    /// application columns `names`, one row per merchant and a last row of
    /// nulls (what a row without an application reads), and answers one
    /// flag per row of them. A condition over application columns alone
    /// is so evaluated once per merchant (119,000 at the 10M month), not
    /// once per row on columns gathered onto every row. None where `flags`
    /// gives none, or not one per row.
    pub(crate) fn rows_where(
        &self,
        names: &[PlSmallStr],
        flags: impl FnOnce(&DataFrame) -> Option<BooleanChunked>,
    ) -> Option<BooleanChunked> {
        let apps = self.columns.select(names.iter().cloned()).ok()?;
        let nulls: Vec<Column> = apps
            .columns()
            .iter()
            .map(|c| Column::full_null(c.name().clone(), 1, c.dtype()))
            .collect();
        let apps = apps.vstack(&DataFrame::new(1, nulls).ok()?).ok()?;
        let of_apps = flags(&apps).filter(|f| f.len() == apps.height())?;
        let none = (apps.height() - 1) as IdxSize;
        of_apps.take(&self.at.fill_null_with_values(none).ok()?).ok()
    }
}

impl Prepared {
    /// The frame `kind`'s rules read, with the application columns among
    /// `names` gathered onto it (all of them for None), and the money
    /// held as units among them as rules read it (`checks::held`). None: no
    /// such input.
    pub fn frame(&self, kind: InputKind, names: Option<&std::collections::BTreeSet<String>>) -> PolarsResult<Option<DataFrame>> {
        self.frame_of_rows(kind, names, None, &[])
    }

    /// As `frame`, of the rows `keep` marks only (a mask over the `kind`
    /// frame's rows): the application columns are gathered and the money
    /// widened for those rows, not for all; without the columns `unread`
    /// names, the frame's or the applications' (read only by the part of a
    /// condition already applied), which are not copied.
    pub(crate) fn frame_of_rows(
        &self,
        kind: InputKind,
        names: Option<&std::collections::BTreeSet<String>>,
        keep: Option<&BooleanChunked>,
        unread: &[PlSmallStr],
    ) -> PolarsResult<Option<DataFrame>> {
        let Some(df) = self.frames.get(&kind) else { return Ok(None) };
        let df = &df.drop_many(unread.iter().cloned());
        let mut out = match keep {
            Some(keep) => df.filter(keep)?,
            None => df.clone(),
        };
        if let Some(j) = self.joined.get(&kind) {
            let wanted: Vec<PlSmallStr> = j
                .columns
                .get_column_names()
                .into_iter()
                .filter(|c| names.is_none_or(|n| n.contains(c.as_str())) && !unread.contains(c))
                .cloned()
                .collect();
            if !wanted.is_empty() {
                let at = match keep {
                    Some(keep) => j.at.filter(keep)?,
                    None => j.at.clone(),
                };
                let gathered = j.columns.select(wanted)?.take(&at)?;
                out.hstack_mut(gathered.columns())?;
            }
        }
        // Only what the rule names: `amount`, which every frame keeps, is
        // left held where the rule reads it only through `sum_amount` in its
        // findings (the plan sums the units: `plan::builtin_sums`). A peer
        // statistic or condition over `sum_amount` reads it in yuan.
        checks::held::as_read(&mut out, |c| {
            names.is_none_or(|n| n.contains(c) || (c == "amount" && n.contains("sum_amount")))
        })?;
        Ok(Some(out))
    }

    /// Every frame with all its application columns, to write out (its
    /// enumerations as text again: `narrow`).
    pub fn into_frames(self) -> PolarsResult<BTreeMap<InputKind, DataFrame>> {
        self.frames
            .keys()
            .map(|kind| Ok((*kind, narrow::widen(self.frame(*kind, None)?.expect("a frame of this kind"))?)))
            .collect()
    }
}

/// Wall time per step, in order, and the process's peak memory after it
/// (where the system says it): where a preparation's peak is reached.
struct Laps {
    last: Instant,
    steps: Vec<Step>,
}

/// A preparation step: its name, its wall time, the peak MiB so far.
pub type Step = (&'static str, Duration, Option<u64>);

impl Laps {
    fn new() -> Self {
        Laps {
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps.push((name, now - self.last, crate::alloc::rss_mib("VmHWM:")));
        self.last = now;
    }
}

/// One application per merchant for the join: the approved one if any,
/// else the latest submitted, ties broken by application id. Without this
/// a merchant with two applications would double its transactions.
fn one_per_merchant(apps: &DataFrame) -> PolarsResult<DataFrame> {
    let ids = apps.column("merchant_id")?.str()?.clone();
    let status = apps.column("status")?.str()?.clone();
    let sub = apps.column("submitted_at")?.as_materialized_series().datetime()?.physical().clone();
    let app_id = apps.column("application_id")?.str()?.clone();
    let mut best: HashMap<&str, usize> = HashMap::new();
    let rank = |i: usize| {
        (
            status.get(i) == Some("approved"),
            sub.get(i).unwrap_or(i64::MIN),
            std::cmp::Reverse(app_id.get(i).unwrap_or("")),
        )
    };
    for i in 0..apps.height() {
        let Some(m) = ids.get(i) else { continue };
        match best.get(m) {
            Some(&j) if rank(j) >= rank(i) => {}
            _ => {
                best.insert(m, i);
            }
        }
    }
    let mut idx: Vec<IdxSize> = best.into_values().map(|i| i as IdxSize).collect();
    idx.sort_unstable();
    apps.take(&IdxCa::from_vec("idx".into(), idx))
}

/// Names each input's rules use. `None` keeps every column (rule
/// validation needs the full schema); `Some` joins and keeps only these,
/// which at millions of rows is the difference between gigabytes of
/// repeated merchant strings and a few columns.
pub(crate) type Needed = Option<HashMap<InputKind, Names>>;
pub(crate) type Names = std::collections::HashSet<String>;

/// The names `kind`'s rules use (none if no rule reads it).
fn needed_by(needed: &Needed, kind: InputKind) -> Option<Names> {
    needed.as_ref().map(|m| m.get(&kind).cloned().unwrap_or_default())
}

/// The application columns `needed` names for `base`'s rows (all of
/// them for `None`), and which application each row has.
///
/// `merchants` has one row per merchant, so each row's application is one
/// lookup. The columns are gathered onto the rows only when a rule reads
/// them (`Prepared::frame`); derived checks read contract terms through
/// the positions.
fn join_applications(
    base: &DataFrame,
    kind: InputKind,
    merchants: &DataFrame,
    needed: &Option<Names>,
) -> PolarsResult<(Joined, Vec<Option<IdxSize>>)> {
    let base_schema = base.schema().clone();
    let mut keep: Vec<Expr> = Vec::new();
    for name in merchants.get_column_names() {
        let name = name.as_str();
        if name == SRC_COL || name == LINE_COL || name == "merchant_id" {
            continue;
        }
        // Prefixed when the input has (or its contract names) a column of
        // that name: `app_mcc` stays `app_mcc` for an export without `mcc`.
        let joined_name = if base_schema.contains(name) || kind.column(name).is_some() {
            format!("{APP_PREFIX}{name}")
        } else {
            name.to_string()
        };
        if needed.as_ref().is_none_or(|set| set.contains(&joined_name)) {
            // Text as codes: a rule gathers it onto every row it reads (a
            // 16-byte view and the bytes per row as text, 4 bytes as a
            // code), and it repeats one value per merchant. A rule that
            // takes it apart (`SUBSTR`) reads it as text (`narrow`).
            let value = match merchants.column(name).map(|c| c.dtype() == &DataType::String) {
                Ok(true) => col(name).cast(narrow::categories()),
                _ => col(name),
            };
            keep.push(value.alias(joined_name));
        }
    }
    let positions = positions_in(&texts(base, "merchant_id")?, merchants.column("merchant_id")?.str()?);
    let columns = merchants.clone().lazy().select(keep).collect()?;
    let at = IdxCa::from_iter_options("at".into(), positions.iter().copied());
    Ok((Joined { columns, at }, positions))
}

/// The transaction columns made from whole merchants' and keys' rows:
/// the gaps between a merchant's purchases and the key codes (`needed`
/// names those rules group by; text keys are coded already, in input
/// order: `in_merchant_and_time_order`). Returns each row's merchant code.
///
/// The two are independent and each mostly one thread's sweep or hash
/// map, so they run at once.
fn derive_per_merchant_and_keys(
    txns: &mut DataFrame,
    app: &checks::AppRows,
    period_start: Option<i64>,
    derived: &Derived,
    needed: Option<Names>,
) -> PolarsResult<Vec<u32>> {
    let merchant_code = keys::code_column(&["merchant_id".to_string()]);
    let keep_merchant_code = needed.as_ref().is_some_and(|n| n.contains(&merchant_code));
    let mut coded: Vec<String> = needed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(keys::KEY_PREFIX) && *n != merchant_code)
        .collect();
    coded.sort_unstable();
    let rows: &DataFrame = txns;
    // Read in order: no copy of the column into one chunk.
    let codes = Texts::of_chunks(rows, "merchant_id")
        .ok_or_else(|| polars_err!(SchemaMismatch: "column merchant_id is not text"))?
        .first_codes();
    let (gaps, keyed) = rayon::join(
        || {
            derived
                .wants("days_since_prev_txn")
                .then(|| checks::derive_gaps(rows, app, period_start, &codes))
        },
        || keys::code_columns(rows, coded.iter().map(String::as_str), &[("merchant_id", &codes)]),
    );
    let keyed = keyed?;
    if let Some(gaps) = gaps {
        txns.with_column(gaps)?;
    }
    if keep_merchant_code {
        txns.with_column(
            UInt32Chunked::from_slice(merchant_code.as_str().into(), &codes)
                .into_series()
                .into_column(),
        )?;
    }
    for c in keyed {
        txns.with_column(c)?;
    }
    // Keys over the columns just derived, if a rule has any.
    keys::add_codes(txns, coded.iter().map(String::as_str))?;
    Ok(codes)
}

/// Put the transactions in order of merchant, then time, then input
/// position (`row_order`): rules grouped by merchant then group slices
/// of rows. First, what reads text row by row is made in input order (the
/// refund originals, which look each row's id up, and the codes of text
/// keys, which hash each row's text): through reordered rows the text's
/// bytes are read all over memory, and those steps took 10.7 s instead of
/// 3.4 s at 10M rows. Their columns are reordered with the others.
fn in_merchant_and_time_order(df: &mut DataFrame, derived: &Derived, laps: &mut Laps) -> PolarsResult<()> {
    // Money as integer units (`checks::held`), as the transaction checks
    // hold it anyway: 4 or 8 bytes a row to move instead of 16.
    for name in ["amount", "fee"] {
        if let Some(c) = df.column(name).ok().filter(|c| matches!(c.dtype(), DataType::Decimal(..))) {
            if let Some(held) = checks::held::held_as(c, name) {
                df.with_column(held?)?;
            }
        }
    }
    // The text keys of the key sets rules group by (categorical keys are
    // coded from their codes, in any order).
    let text_keys: BTreeSet<String> = derived
        .names
        .into_iter()
        .flatten()
        .filter_map(|n| n.strip_prefix(keys::KEY_PREFIX))
        .flat_map(|set| set.split(','))
        .filter(|k| df.schema().get(k) == Some(&DataType::String))
        .map(|k| keys::code_column(&[k.to_string()]))
        .collect();
    let rows: &DataFrame = df;
    let (originals, coded) = rayon::join(
        || match checks::ORIGINALS.iter().any(|c| derived.wants(c)) {
            true => checks::derive_originals(rows, |c| derived.wants(c)),
            false => Ok(Vec::new()),
        },
        || keys::code_columns(rows, text_keys.iter().map(String::as_str), &[]),
    );
    for c in originals?.into_iter().chain(coded?) {
        df.with_column(c)?;
    }
    laps.lap("refund originals, text key codes");
    let Some(merchants) = Texts::of_chunks(df, "merchant_id") else {
        df.rechunk_mut();
        return Ok(());
    };
    let codes = merchants.first_codes();
    drop(merchants);
    let times = match df.column("txn_time").map(|c| c.dtype().clone()) {
        Ok(DataType::Datetime(..)) => Some(df.column("txn_time")?.as_materialized_series().datetime()?.physical().clone()),
        _ => None,
    };
    let order = super::row_order::merchant_time_order(&codes, times.as_ref());
    drop((codes, times));
    // The input comes in its parts' chunks (`input::load_with`): the
    // reorder makes one chunk of each column; rows already in order are
    // made one chunk here.
    match &order {
        Some(order) => super::row_order::reorder(df, order)?,
        None => {
            df.rechunk_mut();
        }
    }
    Ok(())
}

/// Join a reference table on `left_key`; value columns are prefixed with
/// `prefix`, and the table's "known" flag becomes false where the key is
/// not in the table. With `categories`, text values come as categoricals.
fn join_reference(df: DataFrame, t: &RefTable, left_key: &str, prefix: &str, categories: bool) -> PolarsResult<DataFrame> {
    let values: Vec<Expr> =
        t.df.get_column_names()
            .into_iter()
            .filter(|name| name.as_str() != t.key)
            .map(|name| {
                let name_out = format!("{prefix}{name}");
                let value = col(name.as_str());
                // A table's few values gathered as codes (`narrow`), not as text.
                let value = match (categories, t.df.column(name).map(|c| c.dtype() == &DataType::String)) {
                    (true, Ok(true)) => value.cast(narrow::categories()),
                    _ => value,
                };
                value.alias(name_out)
            })
            .collect();
    let positions = positions_in(&texts(&df, left_key)?, t.df.column(t.key)?.str()?);
    let mut out = gather_onto(df, &t.df, values, &positions)?;
    if let Some(k) = t.known {
        let k = format!("{prefix}{k}");
        let known = out.column(&k)?.bool()?.fill_null_with_values(false)?;
        out.with_column(known.into_series().into_column())?;
    }
    Ok(out)
}

/// `df`'s text (or categorical) column `name`, an error naming it if it
/// is neither.
fn texts(df: &DataFrame, name: &str) -> PolarsResult<Texts> {
    Texts::of(df, name).ok_or_else(|| polars_err!(SchemaMismatch: "column {name} is not text"))
}

/// For each value of `left`, its row in `right`, whose values are unique
/// (one application per merchant, one reference row per key).
fn positions_in(left: &Texts, right: &StringChunked) -> Vec<Option<IdxSize>> {
    let at: PlHashMap<&str, IdxSize> = right.iter().enumerate().filter_map(|(i, v)| Some((v?, i as IdxSize))).collect();
    match left {
        Texts::Plain(left) => {
            let chunks: Vec<_> = left.downcast_iter().collect();
            let found: Vec<Vec<Option<IdxSize>>> = chunks
                .par_iter()
                .map(|arr| arr.iter().map(|v| v.and_then(|v| at.get(v).copied())).collect())
                .collect();
            found.into_iter().flatten().collect()
        }
        // Each value looked up once, when a row first has it, then the
        // other rows by their code. Only this column's values: the shared
        // categories hold every narrowed column's values of every
        // partition so far, which looked up whole for each of a thousand
        // partitions would be the run's slowest step.
        Texts::Coded(codes, mapping) => {
            let mut by_code: Vec<Option<Option<IdxSize>>> = vec![None; mapping.num_cats_upper_bound()];
            codes
                .iter()
                .map(|c| {
                    let c = c?;
                    *by_code[c as usize].get_or_insert_with(|| at.get(mapping.cat_to_str(c)?).copied())
                })
                .collect()
        }
    }
}

/// A left join by hand: `columns` of `right`, row `at[i]` for row i of
/// `left` (null where `None`). Gathering by position keeps `left`'s row
/// order (findings and group members follow it) without the sort an
/// order-keeping polars join does.
fn gather_onto(mut left: DataFrame, right: &DataFrame, columns: Vec<Expr>, at: &[Option<IdxSize>]) -> PolarsResult<DataFrame> {
    if columns.is_empty() {
        return Ok(left);
    }
    let idx = IdxCa::from_iter_options("idx".into(), at.iter().copied());
    let gathered = right.clone().lazy().select(columns).collect()?.take(&idx)?;
    left.hstack_mut(gathered.columns())?;
    Ok(left)
}

pub fn prepare(inputs: BTreeMap<InputKind, DataFrame>, refs: &References, as_of: NaiveDate, needed: &Needed) -> PolarsResult<Prepared> {
    prepare_part(inputs, refs, as_of, needed, None, false)
}

/// The application checks and reference-table columns, added to parsed
/// applications.
pub(crate) fn derive_applications(mut apps: DataFrame, refs: &References, as_of: NaiveDate) -> PolarsResult<DataFrame> {
    checks::derive_applications(&mut apps, as_of)?;
    for t in &refs.tables {
        apps = join_reference(apps, t, t.key, "", false)?;
    }
    if let (Ok(mcc), Ok(known)) = (apps.column("mcc"), apps.column("mcc_known")) {
        let valid: BooleanChunked = mcc
            .str()?
            .iter()
            .zip(known.bool()?.iter())
            .map(|(m, k)| Some(k.unwrap_or(false) || m.is_some_and(checks::mcc::is_valid)))
            .collect();
        apps.with_column(valid.with_name("mcc_valid".into()).into_series().into_column())?;
    }
    Ok(apps)
}

/// As `prepare`, for one partition of the data: `period_start` (ms) is the
/// first approved purchase of the whole data, which dormancy needs and a
/// partition cannot see. `apps_derived`: the applications already went
/// through `derive_applications` (once for all partitions).
pub(crate) fn prepare_part(
    mut inputs: BTreeMap<InputKind, DataFrame>,
    refs: &References,
    as_of: NaiveDate,
    needed: &Needed,
    period_start: Option<i64>,
    apps_derived: bool,
) -> PolarsResult<Prepared> {
    let mut frames = BTreeMap::new();
    let mut joined_columns = BTreeMap::new();
    let mut laps = Laps::new();
    let Some(mut apps) = inputs.remove(&InputKind::Applications) else {
        return Ok(Prepared {
            frames,
            joined: joined_columns,
            steps: laps.steps,
        });
    };
    if !apps_derived {
        apps = derive_applications(apps, refs, as_of)?;
    }
    let merchants = one_per_merchant(&apps)?;
    laps.lap("application checks");
    // Each transaction's merchant as an integer, for the per-merchant passes.
    let mut merchant_codes: Vec<u32> = Vec::new();
    let mut txn_apps: Vec<Option<IdxSize>> = Vec::new();
    let txn_names = needed_by(needed, InputKind::Transactions);
    let derived = Derived::new(txn_names.as_ref(), refs);
    for kind in [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges] {
        if let Some(mut df) = inputs.remove(&kind) {
            if kind == InputKind::Transactions {
                // Few-valued text as codes before anything is derived: the
                // text is freed before the derived columns are made.
                narrow::narrow(&mut df, kind)?;
                // Columns neither a rule nor a derivation reads go now, not
                // after the derivations: the masked card number alone is
                // 340 MB at 10M rows, held through the derived columns' peak.
                if let Some(names) = &txn_names {
                    df = df.select(transaction_columns_read(df.get_column_names(), names, &derived))?;
                }
                laps.lap("text columns as categoricals");
                // Before the derivations, so that their columns are made in
                // this order and need not be reordered (half the columns).
                in_merchant_and_time_order(&mut df, &derived, &mut laps)?;
                laps.lap("rows in merchant and time order");
            }
            let (apps_of_rows, at) = join_applications(&df, kind, &merchants, &needed_by(needed, kind))?;
            joined_columns.insert(kind, apps_of_rows);
            let mut joined = df;
            let app = checks::AppRows { apps: &merchants, at };
            match kind {
                InputKind::Transactions => {
                    laps.lap("join applications to transactions");
                    checks::derive_transactions(&mut joined, &app, &|c| derived.wants(c))?;
                    laps.lap("transaction checks");
                    merchant_codes = derive_per_merchant_and_keys(&mut joined, &app, period_start, &derived, needed_by(needed, kind))?;
                    txn_apps = app.at;
                    laps.lap("gaps and key codes");
                    // The MCC the transaction was submitted under, classed too
                    // (when the export has one).
                    let mcc_table = refs.tables.iter().find(|t| t.key == "mcc").filter(|_| derived.mcc_joined());
                    if let (Some(mcc), true) = (mcc_table, joined.schema().contains("mcc")) {
                        joined = join_reference(joined, mcc, "mcc", TXN_MCC_PREFIX, true)?;
                    }
                    laps.lap("join MCC table");
                }
                InputKind::FeeChanges => {
                    joined = joined
                        .lazy()
                        .with_column(
                            (col("effective_at") - col("notice_published_at"))
                                .dt()
                                .total_days(false)
                                .alias("notice_days"),
                        )
                        .collect()?;
                }
                _ => {}
            }
            frames.insert(kind, joined);
        }
    }
    if let Some(txns) = frames.get(&InputKind::Transactions) {
        let activity = checks::merchant_deposit_activity(
            txns,
            &checks::AppRows {
                apps: &merchants,
                at: txn_apps,
            },
            &merchant_codes,
            frames.get(&InputKind::Fees),
            as_of,
        )?;
        let mut args = JoinArgs::new(JoinType::Left);
        args.maintain_order = MaintainOrderJoin::Left;
        apps = apps
            .lazy()
            .join(activity.lazy(), [col("merchant_id")], [col("merchant_id")], args)
            .collect()?;
        laps.lap("deposit activity");
    }
    frames.insert(InputKind::Applications, apps);
    // Keep what the rules read: at millions of rows every unused column is
    // memory held through the whole evaluation.
    if needed.is_some() {
        for (kind, df) in frames.iter_mut() {
            let names = needed_by(needed, *kind).unwrap_or_default();
            let keep: Vec<PlSmallStr> = df
                .get_column_names()
                .into_iter()
                .filter(|c| keeps(&names, *kind, c))
                .cloned()
                .collect();
            *df = df.select(keep)?;
        }
    }
    laps.lap("fees, fee changes, projection");
    if let Some(txns) = frames.get_mut(&InputKind::Transactions) {
        // The refund originals' card (derived): empty on all but the
        // refunds, so few values (the card itself has nearly one per row).
        narrow::narrow(txns, InputKind::Transactions)?;
        laps.lap("derived text as categoricals");
    }
    Ok(Prepared {
        frames,
        joined: joined_columns,
        steps: laps.steps,
    })
}

/// The columns of a prepared frame that rules reading `names` need, less
/// integer key codes (codes are made per frame; rows carried to another
/// frame get new ones). Categoricals stay categoricals: the spill keeps
/// them as codes (`narrow::to_codes`), and the later passes read them as
/// the in-memory run does.
pub(crate) fn carried(df: &DataFrame, kind: InputKind, names: &Names) -> PolarsResult<DataFrame> {
    let keep: Vec<PlSmallStr> = df
        .get_column_names()
        .into_iter()
        .filter(|c| !c.starts_with(keys::KEY_PREFIX))
        .filter(|c| keeps(names, kind, c))
        .cloned()
        .collect();
    df.select(keep)
}

/// Columns findings need whatever the rules say: origins, entity ids,
/// merchant, amount (for `sum_amount`).
const ALWAYS_KEPT: &[&str] = &[
    SRC_COL,
    LINE_COL,
    "txn_id",
    "application_id",
    "charge_id",
    "merchant_id",
    "item",
    "effective_at",
    "amount",
];

/// The names a pack's rules use (`CompiledRule::names`: every identifier
/// in their SQL, keys, evidence, message placeholders and time column).
/// Over-inclusive on purpose: a missing name would skip a rule.
pub fn names_used(pack: &crate::rules::load::RulePack) -> HashMap<InputKind, Names> {
    let mut all: HashMap<InputKind, Names> = HashMap::new();
    for lr in &pack.rules {
        all.entry(lr.compiled.source).or_default().extend(rule_names(&lr.compiled));
    }
    all
}

/// The names one rule uses (`names_used` is their union over a pack).
pub(crate) fn rule_names(r: &crate::rules::compiled::CompiledRule) -> Names {
    let mut out: Names = r.names.iter().cloned().collect();
    // Calendar windows on a transaction's time read its derived day
    // or month.
    if let Some(crate::rules::compiled::Window::Calendar(w)) = r.window() {
        if let Some(c) = super::plan::window_column(w, r.time_column()) {
            out.insert(c.to_string());
        }
    }
    // Rolling rules sort by their keys: integer codes sort faster.
    if matches!(r.window(), Some(crate::rules::compiled::Window::Rolling { .. })) {
        out.insert(keys::code_column(r.keys()));
    }
    // Grouped transaction rules group by their keys' code and count
    // distinct values by code (`keys`: hashing text once for all rules
    // instead of once per rule). Merchant codes are made anyway (gaps
    // between purchases). A key or counted column that is not text
    // gets no code and is grouped as it is. The transaction id is coded
    // too: `SUS-DUP-01` then keeps only the ids on two rows or more by
    // counting codes (`keys::code_on_at_least`) instead of grouping 10M
    // texts (2.1 to 0.2 s at 10M rows); its code takes about 0.25 s of the
    // derived columns' step, beside the other keys' (`keys::codes`).
    if r.source == InputKind::Transactions && r.is_grouped() {
        out.insert(keys::code_column(&["merchant_id".to_string()]));
        if !r.keys().is_empty() {
            out.insert(keys::code_column(r.keys()));
        }
        for c in super::plan::distinct_counted(r) {
            out.insert(keys::code_column(&[c]));
        }
    }
    out
}

/// The derived transaction columns a pass makes: those its rules read
/// (`names`; every one without). A pass of a few rules (the peer pass of
/// a partitioned scan) then reads and derives a few columns, not every
/// fee, distance and gap of every row: that was half its time.
pub(crate) struct Derived<'a> {
    names: Option<&'a Names>,
    /// The MCC table's value columns as joined onto transactions.
    mcc_columns: Vec<String>,
}

impl<'a> Derived<'a> {
    pub(crate) fn new(names: Option<&'a Names>, refs: &References) -> Self {
        let mcc_columns = refs
            .tables
            .iter()
            .filter(|t| t.key == "mcc")
            .flat_map(|t| {
                t.df.get_column_names()
                    .into_iter()
                    .filter(|c| c.as_str() != t.key)
                    .map(|c| format!("{TXN_MCC_PREFIX}{c}"))
            })
            .collect();
        Derived { names, mcc_columns }
    }

    /// Whether the pass makes derived column `c`.
    pub(crate) fn wants(&self, c: &str) -> bool {
        self.names.is_none_or(|n| n.contains(c))
    }

    /// Whether the transactions' MCC is looked up in the MCC table.
    fn mcc_joined(&self) -> bool {
        self.mcc_columns.iter().any(|c| self.wants(c))
    }

    /// Whether the pass's derivations read input column `c`: the
    /// transaction checks it makes (`checks::transaction_checks_read`),
    /// the MCC join, and the key codes among its names, which read their
    /// keys' text.
    pub(crate) fn reads(&self, c: &str) -> bool {
        checks::transaction_checks_read(c, &|n| self.wants(n))
            || (c == "mcc" && self.mcc_joined())
            || self.names.is_none_or(|names| {
                names
                    .iter()
                    .filter_map(|n| n.strip_prefix(keys::KEY_PREFIX))
                    .any(|keys| keys.split(',').any(|k| k == c))
            })
    }
}

/// Of the transactions' input columns `columns`, those a preparation for
/// rules reading `names` reads: the rules' own, those findings need, and
/// those its derivations read (`Derived`).
pub(crate) fn transaction_columns_read<'c>(
    columns: impl IntoIterator<Item = &'c PlSmallStr>,
    names: &Names,
    derived: &Derived,
) -> Vec<PlSmallStr> {
    columns
        .into_iter()
        .filter(|c| keeps(names, InputKind::Transactions, c) || derived.reads(c))
        .cloned()
        .collect()
}

/// The prefix of the MCC table's columns joined onto transactions by the
/// MCC they were submitted under.
const TXN_MCC_PREFIX: &str = "txn_";

/// Whether a prepared `kind` frame keeps column `c` for rules using
/// `names`: those, the columns findings need, and the input's time.
/// The columns of `df` (a frame of `rule`'s source) that `rule` reads:
/// those the frame would have with the rule alone in its pack (`keeps`
/// with the rule's own `rule_names`).
pub(crate) fn columns_read(rule: &crate::rules::compiled::CompiledRule, df: &DataFrame) -> Vec<PlSmallStr> {
    let names = rule_names(rule);
    df.get_column_names()
        .into_iter()
        .filter(|c| keeps(&names, rule.source, c))
        .cloned()
        .collect()
}

pub(crate) fn keeps(names: &Names, kind: InputKind, c: &str) -> bool {
    names.contains(c) || ALWAYS_KEPT.contains(&c) || c == kind.time_column()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_over_application_columns_is_answered_per_merchant_for_each_row() {
        // Three merchants' settlement account types (a categorical, as
        // rules read it; the third unknown), and five rows, one of them of
        // a merchant without an application.
        let types = Series::new("settlement_account_type".into(), [Some("corporate"), Some("personal"), None])
            .cast(&narrow::categories())
            .unwrap();
        let joined = Joined {
            columns: DataFrame::new(3, vec![types.into_column()]).unwrap(),
            at: IdxCa::new("at".into(), [Some(0), Some(1), None, Some(2), Some(0)]),
        };
        let names = [PlSmallStr::from("settlement_account_type")];
        let rows_where = |e: Expr| {
            let kept = joined.rows_where(&names, |apps| super::super::evaluate(apps, e)).unwrap();
            kept.iter().map(|k| k.unwrap()).collect::<Vec<_>>()
        };
        let corporate = col("settlement_account_type").eq(lit("corporate"));
        assert_eq!(rows_where(corporate.clone()), [true, false, false, false, true]);
        // The same as the condition on the column gathered onto the rows.
        let gathered = joined.columns.take(&joined.at).unwrap();
        let on_rows = super::super::evaluate(&gathered, corporate).unwrap();
        assert_eq!(
            on_rows.iter().map(|k| k.unwrap()).collect::<Vec<_>>(),
            [true, false, false, false, true]
        );
        // A row without an application reads nulls: unknown and none alike.
        let unknown = col("settlement_account_type").is_null();
        assert_eq!(rows_where(unknown), [false, false, true, true, false]);
        // Not one flag per merchant: no answer.
        assert!(joined
            .rows_where(&names, |_| Some(BooleanChunked::full("k".into(), true, 1)))
            .is_none());
    }

    #[test]
    fn grouped_transaction_rules_have_their_keys_and_counted_columns_coded_the_row_id_too() {
        let pack = crate::rules::load::load_builtin().into_result().expect("the bundled pack loads");
        let names = &names_used(&pack)[&InputKind::Transactions];
        let code = |keys: &[&str]| keys::code_column(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        // SUS-CARD-01 groups cards by day; SUS-CARD-02 counts distinct cards.
        assert!(names.contains(&code(&["card_hash"])));
        // LIM-AML-01 groups by merchant and settlement account.
        assert!(names.contains(&code(&["merchant_id", "settlement_account_number"])));
        assert!(names.contains(&code(&["merchant_id"])));
        // SUS-DUP-01 groups by the transaction id: counted by code
        // (`keys::code_on_at_least`), not grouped as text.
        assert!(names.contains(&code(&["txn_id"])));
    }

    #[test]
    fn rows_go_in_merchant_and_time_order_after_what_reads_the_input_order() {
        let time = |h: i64| h * 3_600_000;
        // t1 twice at m1: first in the input at 10:00, then at 9:00.
        let mut df = df!(
            "merchant_id" => ["m2", "m1", "m1", "m1", "m1"],
            "txn_id" => ["t9", "t1", "t1", "r1", "t5"],
            "original_txn_id" => [None, None, None, Some("t1"), None],
            "card_hash" => ["c1", "c2", "c2", "c2", "c3"],
            "txn_time" => [time(8), time(10), time(9), time(11), time(9)],
            "amount" => [1i64, 5, 7, 7, 3],
        )
        .unwrap();
        for (name, dtype) in [
            ("txn_time", DataType::Datetime(TimeUnit::Milliseconds, None)),
            ("amount", DataType::Decimal(18, 2)),
        ] {
            let cast = df.column(name).unwrap().cast(&dtype).unwrap();
            df.with_column(cast).unwrap();
        }
        let needed: Names = [
            "original_found",
            "original_amount",
            "__key_card_hash",
            "__key_merchant_id,card_hash",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        in_merchant_and_time_order(&mut df, &Derived::new(Some(&needed), &References::default()), &mut Laps::new()).unwrap();
        let texts = |name: &str| -> Vec<String> {
            let c = df.column(name).unwrap().cast(&DataType::String).unwrap();
            c.str().unwrap().iter().map(|v| v.unwrap().to_string()).collect()
        };
        // m2 (first in the input), then m1 by time, ties by position: the
        // input's rows 0, 2, 4, 1, 3.
        assert_eq!(texts("txn_id"), ["t9", "t1", "t5", "t1", "r1"]);
        // Money held as units (fen) from here on.
        assert!(!matches!(df.column("amount").unwrap().dtype(), DataType::Decimal(..)));
        assert_eq!(
            checks::scaled(&df, "amount").unwrap(),
            [Some(100), Some(700), Some(300), Some(500), Some(700)]
        );
        // The refund's original is t1's first row in the input (5.00),
        // not its first row in the frame now (7.00).
        assert_eq!(checks::scaled(&df, "original_amount").unwrap(), [None, None, None, None, Some(500)]);
        // The text key coded in input order (c1, c2, c3), moved with its rows.
        let codes: Vec<u32> = df.column("__key_card_hash").unwrap().u32().unwrap().into_no_null_iter().collect();
        assert_eq!(codes, [0, 1, 2, 1, 1]);
    }

    /// Transactions prepared with the applications of `merchants` joined.
    fn prepared_transactions(txns: DataFrame, merchants: &DataFrame) -> Prepared {
        let (joined, _) = join_applications(&txns, InputKind::Transactions, merchants, &None).unwrap();
        Prepared {
            frames: [(InputKind::Transactions, txns)].into(),
            joined: [(InputKind::Transactions, joined)].into(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_frame_of_some_rows_is_the_whole_frame_filtered_application_columns_and_money_included() {
        let merchants = df!(
            "merchant_id" => ["m1", "m2"],
            "contract_debit_cap" => [Some(20i64), None],
        )
        .unwrap();
        let txns = df!(
            "merchant_id" => ["m2", "m1", "m3", "m1", "m2"],
            "status" => ["approved", "declined", "approved", "approved", "approved"],
            "fee_diff" => [Some(101i64), Some(-5), None, Some(0), Some(7)],
        )
        .unwrap();
        let prepared = prepared_transactions(txns, &merchants);
        let names: std::collections::BTreeSet<String> = ["merchant_id", "status", "fee_diff", "contract_debit_cap"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let keep = BooleanChunked::from_slice("k".into(), &[true, false, true, false, true]);
        let whole = prepared.frame(InputKind::Transactions, Some(&names)).unwrap().unwrap();
        let some = prepared
            .frame_of_rows(InputKind::Transactions, Some(&names), Some(&keep), &[])
            .unwrap()
            .unwrap();
        assert!(some.equals_missing(&whole.filter(&keep).unwrap()));
        assert!(matches!(some.column("fee_diff").unwrap().dtype(), DataType::Decimal(..)));
    }

    #[test]
    fn application_text_is_gathered_onto_rows_as_codes_with_the_same_values() {
        let merchants = df!(
            "merchant_id" => ["m1", "m2"],
            "mcc" => [Some("5411"), None],
            "registered_city_code" => ["330203", "110101"],
            "declared_monthly_volume" => [100i64, 200],
        )
        .unwrap();
        let txns = df!(
            "merchant_id" => ["m2", "m1", "m3", "m1"],
            "mcc" => ["5411", "5411", "5812", "5411"],
        )
        .unwrap();
        let prepared = prepared_transactions(txns, &merchants);
        let rows = prepared.frame(InputKind::Transactions, None).unwrap().unwrap();
        // The export has an `mcc` of its own: the application's is `app_mcc`.
        for name in ["app_mcc", "registered_city_code"] {
            assert!(matches!(rows.column(name).unwrap().dtype(), DataType::Categorical(..)), "{name}");
        }
        assert_eq!(rows.column("declared_monthly_volume").unwrap().dtype(), &DataType::Int64);
        let text = |name: &str| -> Vec<Option<String>> {
            let c = rows.column(name).unwrap().cast(&DataType::String).unwrap();
            c.str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
        };
        let s = |v: &[Option<&str>]| v.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(text("app_mcc"), s(&[None, Some("5411"), None, Some("5411")]));
        assert_eq!(
            text("registered_city_code"),
            s(&[Some("110101"), Some("330203"), None, Some("330203")])
        );
        // Compared with the export's own codes, as a rule does.
        let mut coded = rows.clone();
        narrow::narrow(&mut coded, InputKind::Transactions).unwrap();
        let same = coded
            .lazy()
            .filter(polars::sql::sql_expr("app_mcc = mcc").unwrap())
            .collect()
            .unwrap();
        assert_eq!(same.height(), 2);
    }
}
