//! A text column's values read with the views polars holds them in.
//!
//! polars keeps a value of up to 12 bytes whole in its 16-byte view, the
//! bytes after it zero (polars' own equality kernels rely on that), so two
//! such values are equal exactly when their views are. A column of few
//! values (an enumeration, an MCC, a city code) then needs each distinct
//! value's text looked at once: every other row is a 16-byte compare,
//! where looking up or checking its text cost a hash and a `memcmp` a row
//! (a fifth of the 10M-row month's typed Parquet read went to coding and
//! checking such columns).

use polars::prelude::*;

/// `f(value, view)` for each row of `text` in order: None for a null; the
/// view as a number where it holds the whole value (up to 12 bytes), so
/// that equal such values come with equal numbers.
pub(crate) fn for_each_row<'a>(text: &'a StringChunked, mut f: impl FnMut(Option<&'a str>, Option<u128>)) {
    for arr in text.downcast_iter() {
        for (view, value) in arr.views().iter().zip(arr.iter()) {
            match value {
                Some(value) => f(Some(value), view.is_inline().then(|| view.as_u128())),
                None => f(None, None),
            }
        }
    }
}

/// How many distinct values a pass over a column remembers by their views
/// (`all_values`, `categories`): a column of more short values than this
/// (ids) is not one of few values, and its rows past them are looked at
/// by their text, with no lookup first.
pub(crate) const REMEMBERED_AT_MOST: usize = 4096;

/// Whether every value of `text` passes `good`, each value held whole in
/// its view (`for_each_row`) tested once.
pub(crate) fn all_values(text: &StringChunked, good: impl Fn(&str) -> bool) -> bool {
    let mut passed: PlHashSet<u128> = PlHashSet::default();
    let mut all = true;
    for_each_row(text, |value, view| {
        let Some(value) = value else { return };
        if !all {
            return;
        }
        match view.filter(|_| passed.len() < REMEMBERED_AT_MOST) {
            Some(v) if passed.contains(&v) => {}
            Some(v) if good(value) => {
                passed.insert(v);
            }
            _ => all = good(value),
        }
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: &[Option<&str>]) -> StringChunked {
        // Two chunks, one with nulls.
        let (a, b) = values.split_at(values.len() / 2);
        let mut ca = StringChunked::from_iter_options("t".into(), a.iter().copied());
        ca.append(&StringChunked::from_iter_options("t".into(), b.iter().copied())).unwrap();
        ca
    }

    #[test]
    fn equal_short_values_have_equal_views_and_long_ones_none() {
        let long = "a value longer than twelve bytes";
        let values = [
            Some("approved"),
            None,
            Some(""),
            Some("declined"),
            Some(long),
            Some("approved"),
            Some(""),
            None,
        ];
        let ca = column(&values);
        assert_eq!(ca.chunks().len(), 2);
        let mut rows = Vec::new();
        for_each_row(&ca, |v, view| rows.push((v, view)));
        assert_eq!(rows.iter().map(|(v, _)| *v).collect::<Vec<_>>(), values);
        let view = |i: usize| rows[i].1;
        assert!(view(0).is_some() && view(0) == view(5));
        assert!(view(2).is_some() && view(2) == view(6));
        assert_ne!(view(0), view(3));
        assert_ne!(view(0), view(2));
        assert_eq!((view(1), view(4), view(7)), (None, None, None));
    }

    #[test]
    fn all_values_is_every_value_passing() {
        let ok = |v: &str| v.len() < 10;
        assert!(all_values(&column(&[Some("a"), None, Some("b"), Some("a")]), ok));
        assert!(!all_values(
            &column(&[Some("a"), None, Some("b"), Some("far too long a value")]),
            ok
        ));
        // A bad short value after the same value passed elsewhere cannot
        // be: equal views, equal values. A bad one first fails at once.
        assert!(!all_values(&column(&[Some("0123456789"), Some("a"), Some("0123456789")]), ok));
        // More short values than are remembered, each tested.
        let many: Vec<String> = (0..2 * REMEMBERED_AT_MOST).map(|i| format!("v{i}")).collect();
        let mut values: Vec<Option<&str>> = many.iter().map(|v| Some(v.as_str())).collect();
        assert!(all_values(&column(&values), |v| v.starts_with('v')));
        values.push(Some("x1"));
        assert!(!all_values(&column(&values), |v| v.starts_with('v')));
    }
}
