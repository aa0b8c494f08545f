//! Atomic output: every file is written to a temporary file in the output
//! folder and renamed into place only when complete, so a crash never
//! leaves a half-written file under a final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

pub struct Staged {
    dir: PathBuf,
    pending: Vec<(NamedTempFile, PathBuf)>,
}

impl Staged {
    pub fn new(dir: &Path) -> std::io::Result<Staged> {
        std::fs::create_dir_all(dir)?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
        })
    }

    /// Write a file's whole content through `f` into a temporary file.
    pub fn write(&mut self, name: &str, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<PathBuf> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&self.dir)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            f(&mut w)?;
            w.flush()?;
        }
        tmp.as_file().sync_all()?;
        let target = self.dir.join(name);
        self.pending.push((tmp, target.clone()));
        Ok(target)
    }

    /// Rename every staged file into place, in the order written (write the
    /// manifest last: its presence marks a complete run).
    pub fn commit(self) -> std::io::Result<()> {
        for (tmp, target) in self.pending {
            tmp.persist(&target).map_err(|e| e.error)?;
        }
        Ok(())
    }
}
