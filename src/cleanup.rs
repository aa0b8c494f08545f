//! Temporary files and folders to remove if the process is interrupted.
//!
//! Partition spill files hold parsed input rows, unmasked, and staged
//! outputs are half written; `Drop` removes both on every normal path, but
//! SIGINT or SIGTERM end the process without running destructors. Each
//! such path is registered here while it exists, and [`install`] sets a
//! handler that removes whatever is registered and exits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static REGISTERED: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether an interruption is being handled: writers of temporary files
/// check it so as not to recreate what the handler removed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// While alive, its path is removed on interruption.
#[derive(Debug)]
pub(crate) struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut r = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|(id, _)| *id != self.0);
    }
}

/// Remove `path` (a file or a folder) if the process is interrupted while
/// the returned guard lives.
pub(crate) fn register(path: &Path) -> Registered {
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).push((id, path.to_path_buf()));
    Registered(id)
}

/// Remove everything registered now; returns how many paths were removed.
pub(crate) fn remove_all() -> usize {
    let paths: Vec<PathBuf> = REGISTERED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .map(|(_, p)| p)
        .collect();
    let mut n = 0;
    for p in paths {
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if removed.is_ok() {
            n += 1;
        }
    }
    n
}

/// On SIGINT, SIGTERM or SIGHUP: remove the registered paths, say so, and
/// exit with code 2 (the run did not complete; no output was committed
/// unless the manifest was written).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let n = remove_all();
        eprintln!("error: interrupted; removed {n} temporary file(s) and folder(s); the run did not complete");
        std::process::exit(2);
    });
}
