//! The folder a partitioned scan spills to, and the ones killed scans left.
//!
//! A scan removes its spill folder when it ends or is interrupted, but one
//! killed with SIGKILL (the kernel's out-of-memory killer, a scheduler's
//! timeout) cannot, and its folder stays: unreadable (`sealed`), but about
//! as large as the data, gigabytes for a month. So each scan holds a lock
//! on a file in its folder for as long as it runs, and the lock goes with
//! the process however it ends. A new scan in the same place removes every
//! spill folder whose lock it can take: the scan that made it is gone.
//! A folder without a lock file is one being made this instant, one whose
//! scan was killed before it made its lock, or one from a version before
//! the lock: it is removed only when nothing in it has changed for a day
//! (no scan spills for that long without writing).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Spill folders are named `.posaudit-spill.XXXXXX`.
pub const PREFIX: &str = ".posaudit-spill.";
const LOCK: &str = "lock";
/// A folder without a lock file unchanged this long has no scan left.
const UNLOCKED_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A spill folder of a killed scan, removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub path: PathBuf,
    /// Bytes its files held.
    pub bytes: u64,
}

/// This scan's spill folder: removed when dropped, locked while it lives.
pub struct SpillFolder {
    /// Held open and locked; the lock is released when the file is closed,
    /// by `Drop` or by the end of the process.
    _lock: File,
    dir: tempfile::TempDir,
}

impl SpillFolder {
    /// A new folder in `within` (the system's temporary folder if None),
    /// after removing the folders killed scans left there (a scan removes
    /// and reports those of `--out` itself first, `remove_stale`).
    pub fn new(within: Option<&Path>) -> io::Result<SpillFolder> {
        let within = within.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        remove_stale(&within);
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir_in(&within)?;
        // Locked before it has its name, so that no other scan ever sees a
        // lock file nobody holds in a live scan's folder.
        let making = dir.path().join("lock.new");
        let lock = File::create(&making)?;
        lock.try_lock().map_err(io::Error::other)?;
        std::fs::rename(&making, dir.path().join(LOCK))?;
        Ok(SpillFolder { _lock: lock, dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Remove the spill folders in `within` whose scans are gone. Errors are
/// ignored: a folder that cannot be read or removed is left as it was.
pub fn remove_stale(within: &Path) -> Vec<Stale> {
    let Ok(entries) = std::fs::read_dir(within) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let named = entry.file_name().to_str().is_some_and(|n| n.starts_with(PREFIX));
        if !named || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        match File::open(path.join(LOCK)) {
            // Held by a live scan (in this process or another): not stale.
            Ok(lock) if lock.try_lock().is_err() => continue,
            Ok(_) => {}
            Err(_) if !unchanged_for(&path, UNLOCKED_AGE) => continue,
            Err(_) => {}
        }
        let bytes = size_of(&path);
        if std::fs::remove_dir_all(&path).is_ok() {
            stale.push(Stale { path, bytes });
        }
    }
    stale.sort_by(|a, b| a.path.cmp(&b.path));
    stale
}

/// Whether nothing in `dir` (its files and folders, at any depth) was
/// modified within `age`.
fn unchanged_for(dir: &Path, age: std::time::Duration) -> bool {
    let recent = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .map_or(true, |t| t.elapsed().map_or(true, |e| e < age))
    };
    if recent(dir) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| match e.file_type() {
        Ok(t) if t.is_dir() => unchanged_for(&e.path(), age),
        Ok(_) => !recent(&e.path()),
        Err(_) => false,
    })
}

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_scans_folder_stays_and_a_dead_ones_goes() {
        let within = tempfile::tempdir().unwrap();
        let live = SpillFolder::new(Some(within.path())).unwrap();
        std::fs::write(live.path().join("part.sealed"), [7u8; 100]).unwrap();
        // A second scan beside it: the first one's folder is in use.
        let second = SpillFolder::new(Some(within.path())).unwrap();
        assert!(live.path().join("part.sealed").exists());
        assert!(remove_stale(within.path()).is_empty());
        // A folder left as a killed scan leaves one: its lock file is there
        // and nobody holds it.
        let dead = within.path().join(format!("{PREFIX}killed"));
        std::fs::create_dir_all(dead.join("transactions/merchant_id/0")).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("transactions/merchant_id/0/00001.sealed"), [1u8; 1000]).unwrap();
        // Neither a folder being made (no lock file yet) nor someone else's
        // folder is touched.
        let making = within.path().join(format!("{PREFIX}making"));
        std::fs::create_dir_all(&making).unwrap();
        let other = within.path().join("reports");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(LOCK), b"").unwrap();
        assert_eq!(
            remove_stale(within.path()),
            vec![Stale {
                path: dead.clone(),
                bytes: 1000
            }]
        );
        assert!(!dead.exists());
        assert!(making.exists() && other.exists());
        assert!(live.path().exists() && second.path().exists());
        // Without a lock file but unchanged for a day (killed before its
        // lock was made, or made by a version before the lock): removed;
        // `making` above is fresh and stays.
        let old = within.path().join(format!("{PREFIX}old"));
        std::fs::create_dir_all(old.join("transactions")).unwrap();
        let file = old.join("transactions/00001.sealed");
        std::fs::write(&file, [1u8; 10]).unwrap();
        let day_ago = std::time::SystemTime::now() - UNLOCKED_AGE - std::time::Duration::from_secs(60);
        for p in [&file, &old.join("transactions"), &old] {
            File::options().read(true).open(p).unwrap().set_modified(day_ago).unwrap();
        }
        assert_eq!(
            remove_stale(within.path()),
            vec![Stale {
                path: old.clone(),
                bytes: 10
            }]
        );
        assert!(making.exists());
        // A new folder sweeps too.
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        let third = SpillFolder::new(Some(within.path())).unwrap();
        assert!(!dead.exists() && third.path().exists());
        // Dropped, a folder is removed; nothing is left to sweep.
        let gone = live.path().to_path_buf();
        drop(live);
        assert!(!gone.exists());
        assert!(remove_stale(within.path()).is_empty());
    }
}
