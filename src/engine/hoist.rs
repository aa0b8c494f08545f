//! Row-level expressions inside aggregates, computed once as columns before
//! grouping: `SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END)`
//! becomes `SUM(__row0)` over a column `__row0` added to the rows.
//!
//! Why: polars has sliding-window kernels for an aggregate of a plain
//! column, which make a rolling sum O(rows). An aggregate of an expression
//! is evaluated per window instead, and rolling windows overlap, so that
//! costs the window size times the rows (30-day windows at 10M rows: tens
//! of seconds per rule). The result is the same: the hoisted expressions
//! are element-wise, so evaluating them on all rows and then aggregating
//! per group equals evaluating them per group.

use std::sync::Arc;

use polars::prelude::*;

/// Prefix of hoisted columns.
const HOISTED: &str = "__row";

/// Expressions with their row-level aggregate inputs replaced by columns,
/// and those columns (aliased expressions) to add to the rows first.
pub(crate) struct Hoisted {
    pub aggs: Vec<Expr>,
    pub columns: Vec<Expr>,
}

pub(crate) fn hoist(aggs: Vec<Expr>) -> Hoisted {
    let mut found: Vec<Expr> = Vec::new();
    let aggs = aggs.into_iter().map(|e| e.map_expr(|node| replace(node, &mut found))).collect();
    let columns = found
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.alias(format!("{HOISTED}{i}")))
        .collect();
    Hoisted { aggs, columns }
}

/// `COUNT(DISTINCT c)` counts distinct codes instead of distinct values
/// where `code_of(c)` names a code column: the same count (codes are one
/// per value, null included), over integers instead of text.
pub(crate) fn distinct_over_codes(aggs: Vec<Expr>, code_of: impl Fn(&str) -> Option<String>) -> Vec<Expr> {
    aggs.into_iter()
        .map(|e| {
            e.map_expr(|node| match node {
                Expr::Agg(AggExpr::NUnique(input)) => match input.as_ref() {
                    Expr::Column(c) => match code_of(c.as_str()) {
                        Some(code) => Expr::Agg(AggExpr::NUnique(Arc::new(col(code)))),
                        None => Expr::Agg(AggExpr::NUnique(input)),
                    },
                    _ => Expr::Agg(AggExpr::NUnique(input)),
                },
                other => other,
            })
        })
        .collect()
}

/// The columns `e` counts distinct values of (`COUNT(DISTINCT c)`), which
/// `distinct_over_codes` counts by code where prepare made one.
pub(crate) fn distinct_counted(e: &Expr) -> Vec<String> {
    let mut found = Vec::new();
    let _ = e.clone().map_expr(|node| {
        if let Expr::Agg(AggExpr::NUnique(input)) = &node {
            if let Expr::Column(c) = input.as_ref() {
                found.push(c.to_string());
            }
        }
        node
    });
    found
}

/// The column standing for `input`, reusing one already made for an equal
/// expression (a measure and `having` often repeat the same CASE).
fn column_for(input: &Expr, found: &mut Vec<Expr>) -> Arc<Expr> {
    let i = match found.iter().position(|e| e == input) {
        Some(i) => i,
        None => {
            found.push(input.clone());
            found.len() - 1
        }
    };
    Arc::new(col(format!("{HOISTED}{i}")))
}

fn replace(node: Expr, found: &mut Vec<Expr>) -> Expr {
    let hoistable = |input: &Expr| !matches!(input, Expr::Column(_)) && row_level(input);
    // SQL's `SUM(x)` is `WHEN x.null_count() < x.len() THEN x.sum()` in
    // polars (NULL when no value is there): the counts read `x` too, and
    // left alone they evaluate it group by group, twice per SUM: about half
    // of `SUS-UNDER-02`'s 6.3 s group-by at 10M rows (3.4 s after this).
    let node = match node {
        Expr::Function {
            input,
            function: FunctionExpr::NullCount,
        } if input.len() == 1 && hoistable(&input[0]) => {
            return Expr::Function {
                input: vec![column_for(&input[0], found).as_ref().clone()],
                function: FunctionExpr::NullCount,
            };
        }
        other => other,
    };
    let Expr::Agg(agg) = node else { return node };
    let agg = match agg {
        AggExpr::Count { input, include_nulls } if hoistable(&input) => AggExpr::Count {
            input: column_for(&input, found),
            include_nulls,
        },
        AggExpr::Sum(input) if hoistable(&input) => AggExpr::Sum(column_for(&input, found)),
        AggExpr::Mean(input) if hoistable(&input) => AggExpr::Mean(column_for(&input, found)),
        AggExpr::Min { input, propagate_nans } if hoistable(&input) => AggExpr::Min {
            input: column_for(&input, found),
            propagate_nans,
        },
        AggExpr::Max { input, propagate_nans } if hoistable(&input) => AggExpr::Max {
            input: column_for(&input, found),
            propagate_nans,
        },
        other => other,
    };
    Expr::Agg(agg)
}

/// Whether `e` is computed row by row from columns and literals alone.
/// A whitelist: anything else (aggregates, windows, sorts, unknown
/// functions) stays inside the aggregate, where polars gets it right.
fn row_level(e: &Expr) -> bool {
    e.into_iter().all(|node| match node {
        Expr::Column(_) | Expr::Literal(_) | Expr::BinaryExpr { .. } | Expr::Ternary { .. } | Expr::Cast { .. } | Expr::Alias(..) => true,
        Expr::Function { function, .. } => matches!(
            function,
            FunctionExpr::Boolean(
                BooleanFunction::IsNull | BooleanFunction::IsNotNull | BooleanFunction::Not | BooleanFunction::IsIn { .. }
            ) | FunctionExpr::TemporalExpr(_)
                | FunctionExpr::ToPhysical
                | FunctionExpr::Abs
                | FunctionExpr::Negate
                | FunctionExpr::FillNull
        ),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::sql::sql_expr;

    fn frame() -> DataFrame {
        df!(
            "k" => ["a", "a", "b", "b", "b"],
            "t" => ["refund", "purchase", "purchase", "refund", "purchase"],
            "amount" => [5i64, 100, 40, 10, 60],
        )
        .unwrap()
    }

    fn grouped(aggs: Vec<Expr>, extra: Vec<Expr>) -> DataFrame {
        grouped_in(&frame(), aggs, extra)
    }

    fn grouped_in(df: &DataFrame, aggs: Vec<Expr>, extra: Vec<Expr>) -> DataFrame {
        df.clone()
            .lazy()
            .with_columns(extra)
            .group_by_stable([col("k")])
            .agg(aggs)
            .collect()
            .unwrap()
    }

    #[test]
    fn case_inside_sum_becomes_a_column_with_the_same_result() {
        let text = "SUM(CASE WHEN t = 'refund' THEN amount ELSE 0 END)";
        let original = vec![sql_expr(text).unwrap().alias("refunds")];
        let h = hoist(original.clone());
        assert_eq!(h.columns.len(), 1);
        assert!(format!("{:?}", h.aggs[0]).contains("__row0"));
        assert_eq!(grouped(original, vec![]), grouped(h.aggs, h.columns));
    }

    #[test]
    fn no_part_of_a_hoisted_sum_reads_the_expression_group_by_group() {
        // SQL's SUM is NULL for a group without values, so polars wraps it
        // in counts of the same input; those read the column as well. Group
        // "a" has a refund, "c" none: its SUM stays NULL.
        let df = df!(
            "k" => ["a", "a", "c", "c"],
            "t" => ["refund", "purchase", "purchase", "purchase"],
            "amount" => [5i64, 100, 40, 10],
        )
        .unwrap();
        let text = "SUM(CASE WHEN t = 'refund' THEN amount END)";
        let original = vec![
            sql_expr(text).unwrap().alias("refunds"),
            sql_expr(format!("{text} > 0.1 * COUNT(*)")).unwrap().alias("hit"),
        ];
        let h = hoist(original.clone());
        assert_eq!(h.columns.len(), 1);
        for agg in &h.aggs {
            assert!(
                !format!("{agg:?}").contains("col(\"t\")"),
                "the CASE is still read per group: {agg:?}"
            );
        }
        let (plain, hoisted) = (grouped_in(&df, original, vec![]), grouped_in(&df, h.aggs, h.columns));
        assert!(plain.equals_missing(&hoisted), "{plain:?} vs {hoisted:?}");
        assert_eq!(hoisted.column("refunds").unwrap().null_count(), 1, "no refund in c: NULL");
    }

    #[test]
    fn equal_inputs_share_one_column_and_plain_columns_stay() {
        let case = "SUM(CASE WHEN t = 'refund' THEN amount ELSE 0 END)";
        let aggs = vec![
            sql_expr(case).unwrap().alias("a"),
            sql_expr(format!("{case} > 0.1 * SUM(amount)")).unwrap().alias("b"),
            sql_expr("MAX(amount)").unwrap().alias("c"),
        ];
        let h = hoist(aggs.clone());
        assert_eq!(h.columns.len(), 1, "one CASE, two uses; plain columns are not hoisted");
        assert_eq!(grouped(aggs, vec![]), grouped(h.aggs, h.columns));
    }

    #[test]
    fn distinct_counts_over_codes_equal_distinct_counts_over_values() {
        let mut df = df!(
            "k" => ["a", "a", "a", "b", "b"],
            "m" => [Some("x"), None, Some("y"), Some("x"), Some("x")],
        )
        .unwrap();
        let codes = crate::engine::keys::codes(&[df.column("m").unwrap().str().unwrap()]);
        df.with_column(UInt32Chunked::from_vec("m_code".into(), codes).into_series().into_column())
            .unwrap();
        let count = vec![sql_expr("COUNT(DISTINCT m)").unwrap().alias("n")];
        let coded = distinct_over_codes(count.clone(), |c| (c == "m").then(|| "m_code".to_string()));
        assert!(format!("{:?}", coded[0]).contains("m_code"));
        let run = |aggs: Vec<Expr>| df.clone().lazy().group_by_stable([col("k")]).agg(aggs).collect().unwrap();
        let (plain, via_codes) = (run(count), run(coded));
        assert_eq!(plain, via_codes);
        let n = plain.column("n").unwrap().cast(&DataType::Int64).unwrap();
        assert_eq!(n.i64().unwrap().to_vec(), vec![Some(2), Some(1)], "nulls are not counted");
    }

    #[test]
    fn aggregates_of_aggregates_are_left_alone() {
        let aggs = vec![sql_expr("COUNT(DISTINCT k)").unwrap().alias("n"), len().alias("count")];
        let h = hoist(aggs);
        assert!(h.columns.is_empty());
    }
}
