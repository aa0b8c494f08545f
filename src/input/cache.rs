//! Parsed input files kept between runs, so that a daily run over the last
//! 30 daily exports parses only the file that is new today.
//!
//! An entry is one parsed and checked file: its rows (Parquet, with their
//! types), its counts and its rejected rows (already masked), so that a
//! run from the cache reconciles exactly as a run from the file. It is
//! named by a hash of the file's bytes, the input kind, the mapping, the
//! header, the source of the parser and posaudit's version: a change to
//! any of them is a different entry, never a stale one.
//!
//! The rows hold full card, account and ID numbers, which must not reach
//! disk in the clear. Each entry is encrypted (AES-256-GCM) with a
//! key derived from the file's own bytes under a separate hash, never
//! written anywhere: whoever can read an entry's plaintext already holds
//! the export it came from. A manifest's SHA-256 does not give the key.
//!
//! Size is bounded: after a run the least recently used entries are
//! removed until the folder is under its limit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use polars::prelude::*;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use super::mapping::InputMapping;
use super::read::{hex, FileStats, Header, ParsedFile, SRC_COL};
use super::{InputKind, RejectedRow};

/// Rows an entry is written and read in at a time (`store`, `load`).
const SLICE_ROWS: usize = 1 << 20;

/// The sources whose behaviour an entry depends on: a change to the
/// parser is a new cache, even within one version number.
const PARSER_SOURCES: &[&str] = &[
    include_str!("read.rs"),
    include_str!("categories.rs"),
    include_str!("nullable.rs"),
    include_str!("parquet.rs"),
    include_str!("typed.rs"),
    include_str!("records.rs"),
    include_str!("values.rs"),
    include_str!("views.rs"),
    include_str!("mapping.rs"),
    include_str!("mod.rs"),
    include_str!("cache.rs"),
    include_str!("../contract.rs"),
    include_str!("../mask.rs"),
];

/// Files in an entry's folder start with this; anything else is left alone.
const MAGIC: &[u8] = b"posaudit-parsed-v1\n";
/// An entry being written starts with this.
const WRITING: &str = ".writing.";
/// Entries end with this; `evict` removes only these.
const EXT: &str = "pac";

/// The default size limit (`--cache-size`).
pub const DEFAULT_LIMIT: u64 = 2 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache folder {path}: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
}

/// The parse cache of one run.
pub struct ParseCache {
    dir: PathBuf,
    limit: u64,
    build: String,
    /// Rows an entry is written and read in at a time (`SLICE_ROWS`).
    slice_rows: usize,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    /// Entries that could not be read back (corrupt, truncated) or
    /// written: the file was parsed instead.
    pub(crate) failures: AtomicU64,
}

/// What reading a file through the cache needs to know about it.
struct Keys {
    entry: String,
    key: [u8; 32],
}

/// The cipher of an entry: AES-256-GCM under the key its file's bytes
/// give (`Keys`), on the processor's AES instructions (ring; see
/// `engine::sealed` for the speeds measured).
fn entry_key(keys: &Keys) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &keys.key).expect("a 32-byte key"))
}

impl ParseCache {
    /// The folder used when none is given: `$POSAUDIT_CACHE_DIR`, else
    /// `parsed/` under the user's cache folder.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("POSAUDIT_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(base.join("posaudit").join("parsed"))
    }

    pub fn open(dir: &Path, limit: u64) -> Result<ParseCache, CacheError> {
        let folder = |source| CacheError::Folder {
            path: dir.to_path_buf(),
            source,
        };
        // A folder we create is the user's alone; an existing one (the user
        // may point at any folder) keeps its permissions: entries are
        // encrypted and written 0600 whatever the folder.
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(folder)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(folder)?;
            }
        }
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION"));
        for s in PARSER_SOURCES {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s);
        }
        Ok(ParseCache {
            dir: dir.to_path_buf(),
            limit,
            build: hex(&h.finalize()),
            slice_rows: SLICE_ROWS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One pass over the file: the entry's name and key. Both come from a
    /// hash of the bytes under a prefix of our own, not from the file's
    /// plain SHA-256 (which the manifest shows): knowing a manifest gives
    /// neither. The plain SHA-256 is stored in the entry.
    fn keys(&self, kind: InputKind, path: &Path, header: &Header, mapping: &InputMapping) -> std::io::Result<Keys> {
        let mut secret = Sha256::new();
        secret.update(b"posaudit parse cache key\0");
        super::read::hash_file(path, &mut secret)?;
        let secret: [u8; 32] = secret.finalize().into();
        let mut e = Sha256::new();
        e.update(secret);
        for part in [kind.name(), &mapping.identity(), &format!("{header:?}"), &self.build] {
            e.update([0x1f]);
            e.update(part.as_bytes());
        }
        let entry = hex(&e.finalize());
        // The key is bound to the entry (mapping, header, build) as well
        // as to the bytes.
        let mut k = Sha256::new();
        k.update(secret);
        k.update(b"key");
        k.update(entry.as_bytes());
        Ok(Keys {
            entry,
            key: k.finalize().into(),
        })
    }

    fn path_of(&self, entry: &str) -> PathBuf {
        self.dir.join(format!("{entry}.{EXT}"))
    }

    /// Read a file through the cache: the cached parse if there is one,
    /// else `parse()` (stored for next time). `coded`: the caller holds
    /// the rows' few-valued text as codes (`categories::code`), so a cached
    /// entry, stored as text, is coded as it is read.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_file(
        &self,
        kind: InputKind,
        path: &Path,
        display: &str,
        src: u32,
        header: &Header,
        mapping: &InputMapping,
        progress: &indicatif::ProgressBar,
        coded: bool,
        parse: impl FnOnce() -> Result<ParsedFile, super::InputError>,
    ) -> Result<ParsedFile, super::InputError> {
        let Ok(keys) = self.keys(kind, path, header, mapping) else {
            // An unreadable file is reported by the parser.
            self.misses.fetch_add(1, Ordering::Relaxed);
            return parse();
        };
        let at = self.path_of(&keys.entry);
        if at.is_file() {
            match self.load(&at, &keys, kind, display, src, coded) {
                Some(p) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    progress.inc(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
                    touch(&at);
                    return Ok(p);
                }
                None => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    let _ = std::fs::remove_file(&at);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let parsed = parse()?;
        if parsed.streamed {
            // Its rows went on as they were parsed: there is nothing to keep.
            return Ok(parsed);
        }
        if self.store(&at, &keys, &parsed).is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        Ok(parsed)
    }

    fn store(&self, at: &Path, keys: &Keys, p: &ParsedFile) -> std::io::Result<()> {
        let meta = serde_json::to_vec(&(&p.stats, &p.rejected)).map_err(std::io::Error::other)?;
        let mut plain = Vec::with_capacity(p.df.estimated_size() / 2);
        plain.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        plain.extend_from_slice(&meta);
        // As text: the codes are this run's (`categories`). A slice at a
        // time: the whole frame's categoricals widened at once were 2.4 GB
        // of text at 10M rows, a first cached scan's peak (5.3 GB against
        // 2.9 GB for the read without the cache).
        let text = super::categories::widen(p.df.clear())
            .map_err(std::io::Error::other)?
            .schema()
            .clone();
        let mut writer = ParquetWriter::new(&mut plain)
            .with_compression(ParquetCompression::Lz4Raw)
            .batched(&text)
            .map_err(std::io::Error::other)?;
        let h = p.df.height();
        for offset in (0..h.max(1)).step_by(self.slice_rows) {
            let mut slice = super::categories::widen(p.df.slice(offset as i64, self.slice_rows)).map_err(std::io::Error::other)?;
            slice.rechunk_mut_par();
            writer.write_batch(&slice).map_err(std::io::Error::other)?;
        }
        writer.finish().map_err(std::io::Error::other)?;
        drop(writer);
        // A random nonce: an entry of the same file is written again under
        // the same key after it was evicted.
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| std::io::Error::other("no random bytes for a nonce"))?;
        // In place, as `load` decrypts: no second buffer of the entry's size.
        entry_key(keys)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut plain)
            .map_err(|_| std::io::Error::other("encryption failed"))?;
        let sealed = plain;
        let mut tmp = tempfile::Builder::new().prefix(WRITING).tempfile_in(&self.dir)?;
        use std::io::Write;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&nonce)?;
        tmp.write_all(&sealed)?;
        // No fsync: an entry torn by a crash fails its authentication tag
        // and the file is parsed again.
        tmp.persist(at).map_err(|e| e.error)?;
        Ok(())
    }

    fn load(&self, at: &Path, keys: &Keys, kind: InputKind, display: &str, src: u32, coded: bool) -> Option<ParsedFile> {
        // Decrypted in place: an entry of a 10M-row file is 750 MB, and a
        // second buffer for the plain text raised a cached scan's peak.
        let mut entry = std::fs::read(at).ok()?;
        if !entry.starts_with(MAGIC) || entry.len() < MAGIC.len() + NONCE_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&entry[MAGIC.len()..MAGIC.len() + NONCE_LEN]).ok()?;
        entry.drain(..MAGIC.len() + NONCE_LEN);
        let plain_len = entry_key(keys).open_in_place(nonce, Aad::empty(), &mut entry).ok()?.len();
        entry.truncate(plain_len);
        let plain = entry;
        let meta_len = u64::from_le_bytes(plain.get(..8)?.try_into().ok()?) as usize;
        let meta = plain.get(8..8 + meta_len)?;
        let (mut stats, mut rejected): (FileStats, Vec<RejectedRow>) = serde_json::from_slice(meta).ok()?;
        if stats.input != kind {
            return None;
        }
        // A slice at a time, each coded as it is read where the rows are
        // held coded: the whole entry as text was 2.4 GB at 10M rows.
        let rows = plain.get(8 + meta_len..)?;
        let total = ParquetReader::new(std::io::Cursor::new(rows)).num_rows().ok()?;
        let mut df: Option<DataFrame> = None;
        for offset in (0..total.max(1)).step_by(self.slice_rows) {
            let mut slice = ParquetReader::new(std::io::Cursor::new(rows))
                .with_slice(Some((offset, self.slice_rows)))
                .finish()
                .ok()?;
            if coded {
                super::categories::code(&mut slice, kind, &[]).ok()?;
            }
            match &mut df {
                None => df = Some(slice),
                Some(df) => {
                    df.vstack_mut_owned(slice).ok()?;
                }
            }
        }
        let mut df = df?;
        // The entry may come from another name or position in the file list.
        stats.file = display.to_string();
        for r in &mut rejected {
            r.file = display.to_string();
        }
        if df.schema().contains(SRC_COL) {
            let h = df.height();
            df.with_column(UInt32Chunked::full(SRC_COL.into(), src, h).into_series().into_column())
                .ok()?;
        }
        Some(ParsedFile {
            df,
            stats,
            rejected,
            streamed: false,
        })
    }

    /// Remove the least recently used entries until the folder is within
    /// its limit. Returns the bytes removed.
    pub fn evict(&self) -> std::io::Result<u64> {
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(WRITING) {
                // Left by a run killed while writing (encrypted, but of no use).
                let old = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() > 3600));
                if old {
                    let _ = std::fs::remove_file(&p);
                }
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some(EXT) {
                continue;
            }
            let m = std::fs::metadata(&p)?;
            entries.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len(), p));
        }
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        let mut removed = 0;
        for (_, len, p) in entries {
            if total <= self.limit {
                break;
            }
            if std::fs::remove_file(&p).is_ok() {
                total -= len;
                removed += len;
            }
        }
        Ok(removed)
    }

    /// What the cache did in this run, for the manifest.
    pub fn report(&self, evicted_bytes: u64) -> CacheReport {
        CacheReport {
            dir: self.dir.display().to_string(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            evicted_bytes,
            limit_bytes: self.limit,
        }
    }
}

/// Mark an entry used now, for least-recently-used eviction.
fn touch(p: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(p) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheReport {
    pub dir: String,
    /// Files read from the cache.
    pub hits: u64,
    /// Files parsed (and stored).
    pub misses: u64,
    /// Entries that could not be read back or written (the file was parsed).
    pub failures: u64,
    pub evicted_bytes: u64,
    pub limit_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_written_and_read_in_slices_gives_back_its_rows_coded_or_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ParseCache::open(dir.path(), DEFAULT_LIMIT).unwrap();
        // Three slices and a bit: every slice boundary is crossed.
        cache.slice_rows = 7;
        let n = 23;
        let statuses = ["approved", "declined", "reversed"];
        let mut df = df!(
            "txn_id" => (0..n).map(|i| format!("T{i:03}")).collect::<Vec<_>>(),
            "status" => (0..n).map(|i| statuses[i % 3]).collect::<Vec<_>>(),
            "amount" => (0..n as i64).map(|i| i * 101).collect::<Vec<_>>(),
            SRC_COL => vec![0u32; n],
        )
        .unwrap();
        super::super::categories::code(&mut df, InputKind::Transactions, &[]).unwrap();
        assert!(matches!(df.column("status").unwrap().dtype(), DataType::Categorical(..)));
        let stats = FileStats {
            input: InputKind::Transactions,
            file: "t.csv".into(),
            sha256: "00".into(),
            rows_read: n as u64,
            rows_accepted: n as u64,
            rows_rejected: 0,
            rows_outside_window: 0,
            lines_skipped: 0,
        };
        let parsed = ParsedFile {
            df: df.clone(),
            stats,
            rejected: Vec::new(),
            streamed: false,
        };
        let keys = Keys {
            entry: "e".into(),
            key: [7; 32],
        };
        let at = cache.path_of(&keys.entry);
        cache.store(&at, &keys, &parsed).unwrap();
        let text = super::super::categories::widen(df.clone()).unwrap();
        let coded = cache.load(&at, &keys, InputKind::Transactions, "t.csv", 0, true).unwrap();
        assert_eq!(coded.df.height(), n);
        assert!(matches!(coded.df.column("status").unwrap().dtype(), DataType::Categorical(..)));
        assert!(super::super::categories::widen(coded.df).unwrap().equals_missing(&text));
        let plain = cache.load(&at, &keys, InputKind::Transactions, "t.csv", 0, false).unwrap();
        assert_eq!(plain.df.column("status").unwrap().dtype(), &DataType::String);
        assert!(plain.df.equals_missing(&text));
        // An empty file's entry: its columns, no rows.
        let empty = ParsedFile { df: df.clear(), ..parsed };
        cache.store(&at, &keys, &empty).unwrap();
        let back = cache.load(&at, &keys, InputKind::Transactions, "t.csv", 0, true).unwrap();
        assert_eq!((back.df.height(), back.df.width()), (0, 4));
    }

    #[test]
    fn every_source_that_decides_how_rows_are_parsed_is_part_of_the_cache_key() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/input");
        // The window applies after the cache; reference tables are not cached.
        let not_parsing = ["window.rs", "reference.rs"];
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || not_parsing.contains(&name.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                super::PARSER_SOURCES.contains(&text.as_str()),
                "src/input/{name} is not in PARSER_SOURCES: a change to it would not invalidate cached parses"
            );
        }
    }
}
