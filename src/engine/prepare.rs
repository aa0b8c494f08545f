//! From loaded inputs to the frames rules read: derived columns added once,
//! and the merchant's application joined onto transactions, fees and fee
//! changes. The same code runs on empty frames to validate rules, so the
//! schema a rule is checked against is exactly the one it runs on.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::checks;
use crate::input::{InputKind, LINE_COL, SRC_COL};

/// Prefix for application columns whose name the joined input already has.
pub const APP_PREFIX: &str = "app_";

/// The frame each rule source reads.
#[derive(Clone, Default)]
pub struct Prepared {
    pub frames: BTreeMap<InputKind, DataFrame>,
}

impl Prepared {
    pub fn schema(&self, kind: InputKind) -> Option<SchemaRef> {
        self.frames.get(&kind).map(|df| df.schema().clone())
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

fn join_applications(base: DataFrame, apps: &DataFrame) -> PolarsResult<DataFrame> {
    let base_schema = base.schema().clone();
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut keep: Vec<Expr> = Vec::new();
    for name in apps.get_column_names() {
        let name = name.as_str();
        if name == SRC_COL || name == LINE_COL {
            continue;
        }
        if name != "merchant_id" && base_schema.contains(name) {
            renames.push((name.to_string(), format!("{APP_PREFIX}{name}")));
            keep.push(col(name).alias(format!("{APP_PREFIX}{name}")));
        } else {
            keep.push(col(name));
        }
    }
    let mut args = JoinArgs::new(JoinType::Left);
    // Keep the input's row order: findings and group members follow it.
    args.maintain_order = MaintainOrderJoin::Left;
    base.lazy()
        .join(apps.clone().lazy().select(keep), [col("merchant_id")], [col("merchant_id")], args)
        .collect()
}

pub fn prepare(mut inputs: BTreeMap<InputKind, DataFrame>, as_of: NaiveDate) -> PolarsResult<Prepared> {
    let mut frames = BTreeMap::new();
    let Some(mut apps) = inputs.remove(&InputKind::Applications) else {
        return Ok(Prepared { frames });
    };
    checks::derive_applications(&mut apps, as_of)?;
    let merchants = one_per_merchant(&apps)?;
    for kind in [InputKind::Transactions, InputKind::Fees, InputKind::FeeChanges] {
        if let Some(df) = inputs.remove(&kind) {
            let mut joined = join_applications(df, &merchants)?;
            if kind == InputKind::Transactions {
                checks::derive_transactions(&mut joined)?;
            }
            frames.insert(kind, joined);
        }
    }
    frames.insert(InputKind::Applications, apps);
    Ok(Prepared { frames })
}
