//! Work spread over the thread pool in a chosen order.
//!
//! rayon's parallel iterators split work in halves and steal halves, so
//! the last item started can be a big one, run by one thread while the
//! others wait (the last part of a big CSV read whole). Here each free
//! thread takes the next item, in the order given: put the big ones
//! first and the threads finish together.

use rayon::prelude::*;

/// `f(0)`, `f(1)`, ... `f(n - 1)` on the thread pool, started in that
/// order, each by the first thread that is free; their results in order,
/// or the first error in order. After an error no more are started.
pub(crate) fn in_order_on_threads<T: Send, E: Send>(n: usize, f: impl Fn(usize) -> Result<T, E> + Sync) -> Result<Vec<T>, E> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let done: Vec<Mutex<Option<Result<T, E>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let workers = rayon::current_num_threads().clamp(1, n.max(1));
    (0..workers).into_par_iter().for_each(|_| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return;
        }
        let result = f(i);
        if result.is_err() {
            next.store(n, Ordering::Relaxed);
        }
        *done[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    });
    let mut out = Vec::with_capacity(n);
    for result in done.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())) {
        match result {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            // Every index before a failed one was started (they are taken
            // in order), so one never started comes after an error.
            None => unreachable!("index {} of {n} not run without an error before it", out.len()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_run_in_order_on_the_threads_comes_back_in_order_or_as_its_first_error() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let started = std::sync::Mutex::new(Vec::new());
        let squares = pool.install(|| {
            in_order_on_threads(40, |i| -> Result<usize, String> {
                started.lock().unwrap().push(i);
                Ok(i * i)
            })
        });
        assert_eq!(squares.unwrap(), (0..40).map(|i| i * i).collect::<Vec<_>>());
        // Each index started once.
        let mut started = started.into_inner().unwrap();
        started.sort_unstable();
        assert_eq!(started, (0..40).collect::<Vec<_>>());
        let failed = pool.install(|| in_order_on_threads(40, |i| if i == 7 || i == 9 { Err(format!("part {i}")) } else { Ok(i) }));
        assert_eq!(failed, Err("part 7".to_string()));
        // After an error no more are started (on one thread, where which
        // were started before it does not depend on timing).
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let ran = std::sync::Mutex::new(Vec::new());
        let failed = one.install(|| {
            in_order_on_threads(40, |i| {
                ran.lock().unwrap().push(i);
                if i == 7 {
                    Err(i)
                } else {
                    Ok(i)
                }
            })
        });
        assert_eq!(failed, Err(7));
        assert_eq!(ran.into_inner().unwrap(), (0..=7).collect::<Vec<_>>());
        assert_eq!(in_order_on_threads(0, Ok::<_, ()>), Ok(Vec::new()));
    }
}
