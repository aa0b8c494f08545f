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
pub const KEY_PREFIX: &str = "__key_";

pub fn code_column(keys: &[String]) -> String {
    format!("{KEY_PREFIX}{}", keys.join(","))
}

/// One code per row: rows with equal values in every column get equal
/// codes (null is a value like any other).
pub fn codes(columns: &[&StringChunked]) -> Vec<u32> {
    let n = columns.first().map_or(0, |c| c.len());
    let mut code = vec![0u32; n];
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
pub fn add_codes<'a>(df: &mut DataFrame, columns: impl IntoIterator<Item = &'a str>) -> PolarsResult<()> {
    for name in columns {
        let Some(keys) = name.strip_prefix(KEY_PREFIX) else { continue };
        if df.schema().contains(name) {
            continue;
        }
        let texts: Option<Vec<&StringChunked>> = keys
            .split(',')
            .map(|k| df.column(k).ok().and_then(|c| c.as_materialized_series().str().ok()))
            .collect();
        let Some(texts) = texts else { continue };
        let coded = UInt32Chunked::from_vec(name.into(), codes(&texts));
        df.with_column(coded.into_series().into_column())?;
    }
    Ok(())
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
    fn pairs_are_coded_as_pairs() {
        let m = texts(&[Some("m1"), Some("m1"), Some("m2"), Some("m1")]);
        let c = texts(&[Some("c1"), Some("c2"), Some("c1"), Some("c1")]);
        assert_eq!(codes(&[&m, &c]), vec![0, 1, 2, 0]);
    }
}
