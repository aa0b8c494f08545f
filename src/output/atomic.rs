//! Atomic output: every file is written to a temporary file in the output
//! folder and renamed into place only when complete, so a crash never
//! leaves a half-written file under a final name.
//!
//! A staged file (`.NAME.XXXXXX.tmp`) is removed when its writer fails or
//! is interrupted, but a process killed with SIGKILL leaves it. So each
//! staged file is locked while it is open, and the next scan removes the
//! staged files of its own outputs whose lock it can take (`remove_stale`).

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

pub struct Staged {
    dir: PathBuf,
    pending: Vec<(NamedTempFile, PathBuf, crate::cleanup::Registered)>,
}

impl Staged {
    pub fn new(dir: &Path) -> std::io::Result<Staged> {
        std::fs::create_dir_all(dir)?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
        })
    }

    /// Write a file of the output folder through `f` into a temporary file.
    pub fn write(&mut self, name: &str, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<PathBuf> {
        let target = self.dir.join(name);
        self.write_path(&target, f)
    }

    /// Write a file anywhere; its temporary file sits beside it, so the
    /// final rename stays on one file system.
    pub fn write_path(&mut self, target: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<PathBuf> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)?;
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("output");
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)?;
        // Held until the file is renamed into place and closed; a process
        // killed mid-write releases it, which tells the next scan the file
        // is abandoned.
        tmp.as_file().try_lock().map_err(std::io::Error::other)?;
        let guard = crate::cleanup::register(tmp.path());
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            f(&mut w)?;
            w.flush()?;
        }
        tmp.as_file().sync_all()?;
        self.pending.push((tmp, target.to_path_buf(), guard));
        Ok(target.to_path_buf())
    }

    /// Rename every staged file into place, in the order written (write the
    /// manifest last: its presence marks a complete run).
    pub fn commit(self) -> std::io::Result<()> {
        for (tmp, target, _guard) in self.pending {
            tmp.persist(&target).map_err(|e| e.error)?;
        }
        Ok(())
    }
}

/// A staged file younger than this is left alone even when unlocked: its
/// writer may have made it and not locked it yet.
const UNLOCKED_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Remove from `dir` the staged files of `names` (final file names) that
/// killed processes left: named `.NAME.XXXXXX.tmp`, unlocked, and unchanged
/// for a minute. Returns what was removed, with its size. Errors are
/// ignored: a file that cannot be read or removed is left as it was.
pub fn remove_stale(dir: &Path, names: &[String]) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(staged_of) = file_name.to_str().and_then(staged_name) else {
            continue;
        };
        if !names.iter().any(|n| n == staged_of) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= UNLOCKED_GRACE);
        let Ok(file) = std::fs::File::open(&path) else { continue };
        if !settled || file.try_lock().is_err() {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed.push((path, meta.len()));
        }
    }
    removed.sort();
    removed
}

/// The final name a staged file's name stands for: `.NAME.XXXXXX.tmp`
/// (six random characters, `tempfile`'s) gives NAME.
fn staged_name(file: &str) -> Option<&str> {
    let inner = file.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, random) = inner.rsplit_once('.')?;
    (random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric()) && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(then).unwrap();
    }

    #[test]
    fn staged_names_are_told_from_other_files() {
        assert_eq!(staged_name(".findings.jsonl.a1B2c3.tmp"), Some("findings.jsonl"));
        assert_eq!(staged_name(".report.html.ZZZZZZ.tmp"), Some("report.html"));
        assert_eq!(staged_name("findings.jsonl.a1B2c3.tmp"), None);
        assert_eq!(staged_name(".findings.jsonl.a1B2.tmp"), None);
        assert_eq!(staged_name(".findings.jsonl.a1B2c3.tmp.bak"), None);
        assert_eq!(staged_name("..a1B2c3.tmp"), None);
    }

    #[test]
    fn only_abandoned_staged_files_of_the_named_outputs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["findings.jsonl".to_string(), "cases.csv".to_string()];
        // A live writer's staged file: locked (by this process's handle), old.
        let mut live = Staged::new(dir.path()).unwrap();
        live.write("cases.csv", |w| w.write_all(b"live")).unwrap();
        let live_path = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        age(&live_path, 3600);
        // What a killed writer leaves: unlocked; one old, one just made.
        let dead = dir.path().join(".findings.jsonl.Ab12Cd.tmp");
        std::fs::write(&dead, b"half").unwrap();
        age(&dead, 3600);
        let fresh = dir.path().join(".findings.jsonl.Xy98Zw.tmp");
        std::fs::write(&fresh, b"half").unwrap();
        // Not an output of this scan, and not a staged file at all.
        let other = dir.path().join(".notes.txt.Ab12Cd.tmp");
        std::fs::write(&other, b"theirs").unwrap();
        age(&other, 3600);
        let plain = dir.path().join("findings.jsonl");
        std::fs::write(&plain, b"done").unwrap();
        age(&plain, 3600);

        let removed = remove_stale(dir.path(), &names);
        assert_eq!(removed, vec![(dead.clone(), 4)]);
        assert!(!dead.exists());
        for kept in [&live_path, &fresh, &other, &plain] {
            assert!(kept.exists(), "{} should be kept", kept.display());
        }
        // The live writer still commits.
        live.commit().unwrap();
        assert_eq!(std::fs::read(dir.path().join("cases.csv")).unwrap(), b"live");
    }
}
