//! Atomic output: every file is written to a temporary file in the output
//! folder and renamed into place only when complete, so a crash never
//! leaves a half-written file under a final name.

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
