//! Integer codes for text keys, so that grouping rows by merchant or card
//! sorts integers instead of comparing strings.
//!
//! Rolling windows need the rows of each key together and in time order.
//! Sorting 10M rows by a text key spent most of its time in string
//! comparisons; a code per distinct value (by first appearance) groups the
//! rows the same way. The order of keys among themselves does not matter:
//! findings are sorted at the end.

use polars::prelude::*;

/// Prefix of a key set's code column: `__key_merchant_id,card_hash` codes
/// the pair.
pub(crate) const KEY_PREFIX: &str = "__key_";

pub(crate) fn code_column(keys: &[String]) -> String {
    format!("{KEY_PREFIX}{}", keys.join(","))
}

/// One code per row: rows with equal values in every column get equal
/// codes (null is a value like any other).
pub fn codes(columns: &[&StringChunked]) -> Vec<u32> {
    let n = columns.first().map_or(0, |c| c.len());
    codes_from(vec![0u32; n], columns)
}

/// As `codes`, refining codes already made for leading key columns.
fn codes_from(mut code: Vec<u32>, columns: &[&StringChunked]) -> Vec<u32> {
    for c in columns {
        let mut seen: PlHashMap<(u32, Option<&str>), u32> = PlHashMap::with_capacity(1 << 16);
        for (slot, v) in code.iter_mut().zip(c.iter()) {
            let next = seen.len() as u32;
            *slot = *seen.entry((*slot, v)).or_insert(next);
        }
    }
    code
}

/// Add a code column for each key set named by `columns` (code column
/// names); a set with a column that is absent or not text gets none.
///
/// Sets of one key are coded first, all at once on the thread pool (each
/// is a pass over millions of rows through a hash map: 4 s one after the
/// other at 10M rows); then sets of several keys, at once too, each
/// refining its leading key's codes when that key has them.
pub(crate) fn add_codes<'a>(df: &mut DataFrame, columns: impl IntoIterator<Item = &'a str>) -> PolarsResult<()> {
    use rayon::prelude::*;
    let wanted: Vec<&str> = columns
        .into_iter()
        .filter(|name| name.starts_with(KEY_PREFIX) && !df.schema().contains(name))
        .collect();
    for pass in [false, true] {
        let names: Vec<&str> = wanted.iter().copied().filter(|n| n.contains(',') == pass).collect();
        let frame: &DataFrame = df;
        let made: Vec<Option<Column>> = names.par_iter().map(|name| code_of(frame, name)).collect();
        for c in made.into_iter().flatten() {
            df.with_column(c)?;
        }
    }
    Ok(())
}

/// The code column `name` names, made from `df`'s key columns; None when
/// a key is absent or not text.
fn code_of(df: &DataFrame, name: &str) -> Option<Column> {
    let keys: Vec<&str> = name.strip_prefix(KEY_PREFIX)?.split(',').collect();
    let texts: Option<Vec<&StringChunked>> = keys
        .iter()
        .map(|k| df.column(k).ok().and_then(|c| c.as_materialized_series().str().ok()))
        .collect();
    let texts = texts?;
    // A pair starting with an already coded key (merchant ids are)
    // refines that key's codes: one text column hashed instead of two.
    let leading = df.column(&code_column(&[keys[0].to_string()])).ok().and_then(|c| {
        c.as_materialized_series()
            .u32()
            .ok()
            .map(|c| c.into_no_null_iter().collect::<Vec<u32>>())
    });
    let coded = match leading {
        Some(start) if keys.len() > 1 && start.len() == df.height() => codes_from(start, &texts[1..]),
        _ => codes(&texts),
    };
    Some(UInt32Chunked::from_vec(name.into(), coded).into_series().into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &[Option<&str>]) -> StringChunked {
        StringChunked::from_iter_options("k".into(), v.iter().copied())
    }

    #[test]
    fn equal_values_share_a_code() {
        let s = texts(&[Some("b"), Some("a"), None, Some("b"), Some("a"), None]);
        assert_eq!(codes(&[&s]), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn pairs_refined_from_a_coded_key_group_as_pairs() {
        let m = texts(&[Some("m1"), Some("m1"), Some("m2"), Some("m1"), Some("m2")]);
        let c = texts(&[Some("c1"), Some("c2"), Some("c1"), Some("c1"), Some("c1")]);
        let mut df = DataFrame::new(
            5,
            vec![
                m.clone().with_name("m".into()).into_column(),
                c.clone().with_name("c".into()).into_column(),
            ],
        )
        .unwrap();
        add_codes(&mut df, ["__key_m"]).unwrap();
        add_codes(&mut df, ["__key_m,c"]).unwrap();
        let pair: Vec<u32> = df.column("__key_m,c").unwrap().u32().unwrap().into_no_null_iter().collect();
        // Rows 0 and 3 are (m1, c1); rows 2 and 4 are (m2, c1); row 1 differs.
        assert_eq!(pair[0], pair[3]);
        assert_eq!(pair[2], pair[4]);
        let distinct: std::collections::HashSet<u32> = pair.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn pairs_are_coded_as_pairs() {
        let m = texts(&[Some("m1"), Some("m1"), Some("m2"), Some("m1")]);
        let c = texts(&[Some("c1"), Some("c2"), Some("c1"), Some("c1")]);
        assert_eq!(codes(&[&m, &c]), vec![0, 1, 2, 0]);
    }
}
