//! A condition over few-valued columns, evaluated once per distinct
//! combination of their values instead of once per row.
//!
//! Text functions (`SUBSTR`, `UPPER`, `LIKE` prefixes) do not read the
//! categoricals `narrow` makes, so a rule using one used to read those
//! columns as text: `SUS-LOC-01` and `SUS-LOC-02` compare the first
//! digits of the transaction's and the registered city code, and widened
//! two columns of 10M rows to text and sliced each of them twice (1.2 to
//! 1.6 s apiece on the 10M month). A row-wise condition's value on a row
//! depends on nothing but that row's values of the columns it reads, so
//! where those are categoricals (a few hundred city codes each) the
//! condition is evaluated on one row of each distinct combination (on the
//! codes as the plan would, or as text where it fails on them, as the
//! widened rule would), and each row takes its combination's answer.

use polars::prelude::*;

use super::plan::is_elementwise;
use crate::input::categories;

/// At most this many columns are combined: two codes make one 64-bit key.
const MAX_COLUMNS: usize = 2;

/// The rows of `df` that `condition` keeps, evaluated once per distinct
/// combination of the values it reads (see the module comment), as it
/// would be on every row (null counts as not kept, as a filter does).
/// None where that does not apply: the condition is not row-wise, reads
/// no column, more than two, or one that is not a categorical; or its
/// combinations are more than a quarter of the rows.
pub(crate) fn kept(df: &DataFrame, condition: &Expr) -> Option<PolarsResult<BooleanChunked>> {
    if !condition.into_iter().all(|e| is_elementwise(e) || is_text_function(e)) {
        return None;
    }
    let mut roots: Vec<PlSmallStr> = Vec::new();
    for name in condition.clone().meta().root_names() {
        if !roots.contains(&name) {
            roots.push(name);
        }
    }
    if roots.is_empty() || roots.len() > MAX_COLUMNS {
        return None;
    }
    let mut codes = Vec::with_capacity(roots.len());
    for name in &roots {
        let column = df.column(name).ok()?;
        if !matches!(column.dtype(), DataType::Categorical(..)) {
            return None;
        }
        codes.push(column.as_materialized_series().cat32().ok()?.physical().rechunk().into_owned());
    }
    let (combination, first_rows) = combinations(&codes)?;
    if first_rows.len() * 4 > df.height().max(1) {
        return None;
    }
    Some(answers(df, &roots, condition, &first_rows).map(|answer| {
        let answer: Vec<bool> = answer.iter().map(|v| v.unwrap_or(false)).collect();
        BooleanChunked::from_iter_values("".into(), combination.iter().map(|&c| answer[c as usize]))
    }))
}

/// Whether `condition` calls a text function (`is_text_function`): those
/// read categoricals as text, row by row; other row-wise conditions read
/// their codes, and gain nothing from this.
pub(crate) fn has_text_function(condition: &Expr) -> bool {
    condition.into_iter().any(is_text_function)
}

/// The text functions that work row by row, beside
/// the node kinds `plan::is_elementwise` accepts.
fn is_text_function(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Function {
            function: FunctionExpr::StringExpr(
                StringFunction::Slice
                    | StringFunction::StartsWith
                    | StringFunction::EndsWith
                    | StringFunction::Lowercase
                    | StringFunction::Uppercase
                    | StringFunction::LenBytes
                    | StringFunction::LenChars
            ),
            ..
        }
    )
}

/// Each row's combination number, and the first row of each combination.
/// None where a code is the value that stands for null here (never, with
/// fewer than four billion categories).
fn combinations(codes: &[UInt32Chunked]) -> Option<(Vec<u32>, Vec<IdxSize>)> {
    const NULL: u32 = u32::MAX;
    let height = codes[0].len();
    let slice = |ca: &UInt32Chunked| -> Option<(Vec<u32>, bool)> {
        let arr = ca.downcast_iter().next()?;
        // A null's slot holds any value: only valid codes can clash.
        let clash = arr.iter().any(|c| c == Some(&NULL));
        let values: Vec<u32> = match arr.validity() {
            None => arr.values().as_slice().to_vec(),
            Some(v) => arr
                .values()
                .iter()
                .zip(v.iter())
                .map(|(&c, ok)| if ok { c } else { NULL })
                .collect(),
        };
        Some((values, clash))
    };
    let mut columns = Vec::with_capacity(codes.len());
    for ca in codes {
        let (values, clash) = slice(ca)?;
        if clash || values.len() != height {
            return None;
        }
        columns.push(values);
    }
    let key = |row: usize| -> u64 {
        match columns.as_slice() {
            [a] => a[row] as u64,
            [a, b] => ((a[row] as u64) << 32) | b[row] as u64,
            _ => unreachable!("at most MAX_COLUMNS columns"),
        }
    };
    let mut number: PlHashMap<u64, u32> = PlHashMap::new();
    let mut first_rows: Vec<IdxSize> = Vec::new();
    let mut combination = Vec::with_capacity(height);
    for row in 0..height {
        let next = first_rows.len() as u32;
        let n = *number.entry(key(row)).or_insert_with(|| {
            first_rows.push(row as IdxSize);
            next
        });
        combination.push(n);
    }
    Some((combination, first_rows))
}

/// The condition's value on one row of each combination: on the
/// categoricals, as the plan would evaluate it, or where it fails on them,
/// on their text, as the rule would after `narrow::read_as_text`.
fn answers(df: &DataFrame, roots: &[PlSmallStr], condition: &Expr, first_rows: &[IdxSize]) -> PolarsResult<BooleanChunked> {
    let rows = IdxCa::from_vec("".into(), first_rows.to_vec());
    let few = df.select(roots.iter().cloned())?.take(&rows)?;
    let answer = |few: DataFrame| -> PolarsResult<BooleanChunked> {
        let out = few.lazy().select([condition.clone().alias("__answer")]).collect()?;
        out.column("__answer")?.bool().cloned()
    };
    answer(few.clone()).or_else(|_| answer(categories::widen(few)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::sql::sql_expr;

    fn coded(name: &str, values: &[Option<&str>]) -> Column {
        Series::new(name.into(), values)
            .cast(&crate::engine::narrow::categories())
            .unwrap()
            .into_column()
    }

    #[test]
    fn a_text_function_over_codes_keeps_the_rows_it_keeps_on_the_text() {
        let here = [Some("310101"), Some("310104"), None, Some("440301"), Some("320101"), Some("310115")];
        let registered = [
            Some("310101"),
            Some("310101"),
            Some("310101"),
            Some("310101"),
            Some("320501"),
            Some("310101"),
        ];
        // Enough rows that the combinations are few beside them.
        let n = 40;
        let here: Vec<_> = here.iter().cycle().take(here.len() * n).copied().collect();
        let registered: Vec<_> = registered.iter().cycle().take(registered.len() * n).copied().collect();
        let df = DataFrame::new(
            here.len(),
            vec![coded("location_city_code", &here), coded("registered_city_code", &registered)],
        )
        .unwrap();
        let condition = sql_expr(
            "location_city_code IS NOT NULL AND SUBSTR(location_city_code, 1, 2) = SUBSTR(registered_city_code, 1, 2) \
             AND SUBSTR(location_city_code, 1, 4) <> SUBSTR(registered_city_code, 1, 4)",
        )
        .unwrap();
        let by_combination = kept(&df, &condition).expect("applies").unwrap();
        let text = categories::widen(df.clone()).unwrap();
        let by_row = text
            .lazy()
            .select([condition.alias("k")])
            .collect()
            .unwrap()
            .column("k")
            .unwrap()
            .bool()
            .unwrap()
            .clone();
        let by_row: Vec<bool> = by_row.iter().map(|v| v.unwrap_or(false)).collect();
        let by_combination: Vec<bool> = by_combination.iter().map(|v| v.unwrap()).collect();
        assert_eq!(by_combination, by_row);
        // Only 320101 registered in 320501 is the same province in another city.
        assert_eq!(by_row.iter().filter(|k| **k).count(), n);
        let condition = sql_expr("SUBSTR(location_city_code, 1, 4) = '3101'").unwrap();
        let kept_rows: Vec<bool> = kept(&df, &condition).unwrap().unwrap().iter().map(|v| v.unwrap()).collect();
        assert_eq!(kept_rows.iter().filter(|k| **k).count(), 3 * n);
        assert!(!kept_rows[2], "a null city code keeps no row");
    }

    #[test]
    fn it_does_not_apply_to_text_to_aggregates_or_to_many_combinations() {
        let n = 100;
        let codes: Vec<Option<&str>> = ["a", "b"].iter().cycle().take(n).map(|s| Some(*s)).collect();
        let df = DataFrame::new(
            n,
            vec![
                coded("c", &codes),
                Series::new("t".into(), vec!["x"; n]).into_column(),
                coded("d", &codes),
                coded("e", &codes),
            ],
        )
        .unwrap();
        assert!(kept(&df, &sql_expr("SUBSTR(t, 1, 1) = 'x'").unwrap()).is_none(), "text, not codes");
        assert!(
            kept(&df, &col("c").eq(lit("a")).and(col("c").count().gt(lit(1)))).is_none(),
            "an aggregate"
        );
        assert!(kept(&df, &sql_expr("c = d AND d = e").unwrap()).is_none(), "three columns");
        let many: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let many: Vec<Option<&str>> = many.iter().map(|s| Some(s.as_str())).collect();
        let df = DataFrame::new(n, vec![coded("c", &many)]).unwrap();
        assert!(
            kept(&df, &sql_expr("SUBSTR(c, 1, 1) = '1'").unwrap()).is_none(),
            "one combination a row"
        );
    }
}
