//! A typed column under construction: its values end to end, a default in
//! place of each null, and which rows hold a value only once some row
//! does not. Polars takes both as they are (`finish`), without a copy.
//!
//! Built as `Vec<Option<i64>>`, a column took 16 bytes a row while it was
//! read and 8 more when it was copied into polars' form: at 10.7M rows and
//! five such columns, 1.3 GB of memory written for 0.4 GB of values.

use polars::prelude::*;

pub(crate) struct Nullable<T> {
    values: Vec<T>,
    /// Which rows hold a value; None while every row does.
    valid: Option<Vec<bool>>,
}

impl<T: Copy + Default> Nullable<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Nullable {
            values: Vec::with_capacity(capacity),
            valid: None,
        }
    }

    pub(crate) fn push(&mut self, value: Option<T>) {
        match value {
            Some(v) => {
                self.values.push(v);
                if let Some(valid) = &mut self.valid {
                    valid.push(true);
                }
            }
            None => {
                let rows = self.values.len();
                let valid = self.valid.get_or_insert_with(|| {
                    let mut valid = Vec::with_capacity(rows + 1);
                    valid.resize(rows, true);
                    valid
                });
                valid.push(false);
                self.values.push(T::default());
            }
        }
    }

    /// Put `value` at `row`, in place of what was pushed there.
    pub(crate) fn set(&mut self, row: usize, value: T) {
        self.values[row] = value;
        if let Some(valid) = &mut self.valid {
            valid[row] = true;
        }
    }

    /// The same values in another type (fen as the 16-byte integers
    /// behind a decimal).
    pub(crate) fn map<U>(self, f: impl Fn(T) -> U) -> Nullable<U> {
        Nullable {
            values: self.values.into_iter().map(f).collect(),
            valid: self.valid,
        }
    }
}

impl<T: Copy + Default> From<Vec<Option<T>>> for Nullable<T> {
    fn from(values: Vec<Option<T>>) -> Self {
        let mut column = Nullable::with_capacity(values.len());
        for v in values {
            column.push(v);
        }
        column
    }
}

/// `f(value, valid)` for each row of `ca` in order (a null's value is
/// whatever its slot holds), read array by array from the buffers. The
/// chunked array's own iterator of options cost about 100 ns a row where
/// a pass over 10M rows ran on one thread while the other waited (the
/// merchants' first codes: 1.2 s; session 38).
pub(crate) fn for_each_value<T: PolarsNumericType>(ca: &ChunkedArray<T>, mut f: impl FnMut(T::Native, bool)) {
    for arr in ca.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => arr.values().iter().for_each(|&v| f(v, true)),
            Some(valid) => arr.values().iter().zip(valid.iter()).for_each(|(&v, ok)| f(v, ok)),
        }
    }
}

impl<N> Nullable<N> {
    /// The column as polars' array of `T`, named `name`.
    pub(crate) fn finish<T: PolarsNumericType<Native = N>>(self, name: PlSmallStr) -> ChunkedArray<T> {
        // The flags as a bitmap, polars' validity.
        let validity = self.valid.and_then(|flags| {
            BooleanChunked::from_slice(PlSmallStr::EMPTY, &flags)
                .downcast_iter()
                .next()
                .map(|bits| bits.values().clone())
        });
        ChunkedArray::<T>::from_vec_validity(name, self.values, validity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_comes_in_row_order_across_chunks_with_its_validity() {
        let mut ca = Int64Chunked::from_vec("t".into(), vec![4, 5]);
        ca.append(&Int64Chunked::from_iter_options("t".into(), [None, Some(7), None].into_iter()))
            .unwrap();
        assert_eq!(ca.chunks().len(), 2);
        let mut seen = Vec::new();
        for_each_value(&ca, |v, valid| seen.push(valid.then_some(v)));
        assert_eq!(seen, vec![Some(4), Some(5), None, Some(7), None]);
    }

    #[test]
    fn values_and_nulls_reach_polars_as_pushed_and_set() {
        let mut c: Nullable<i64> = Nullable::with_capacity(0);
        for v in [Some(5), Some(-1), None, Some(7), None] {
            c.push(v);
        }
        c.set(4, 9);
        let ca = c.finish::<Int64Type>("amount".into());
        assert_eq!(ca.iter().collect::<Vec<_>>(), [Some(5), Some(-1), None, Some(7), Some(9)]);
        let full: Nullable<f64> = vec![Some(1.5), Some(2.0)].into();
        let ca = full.finish::<Float64Type>("lat".into());
        assert_eq!((ca.null_count(), ca.get(1)), (0, Some(2.0)));
        let wide = Nullable::from(vec![None, Some(3i64)])
            .map(i128::from)
            .finish::<Int128Type>("fee".into());
        assert_eq!(wide.iter().collect::<Vec<_>>(), [None, Some(3i128)]);
    }
}
