//! Spill files sealed with a key that never leaves the process.
//!
//! A partitioned scan writes parsed and prepared rows to disk, and those
//! rows hold what the inputs hold: full settlement account numbers, and
//! whatever a hostile export puts in `card_no_masked`. The spill folder is
//! removed when the scan ends or is interrupted, but a scan killed with
//! SIGKILL, a crash or a power cut leaves it behind, and nothing may reach
//! disk in the clear (the parse cache is encrypted for the same reason).
//!
//! Each scan draws a fresh random key (AES-256-GCM) and keeps it in
//! memory only; each file gets its own nonce from a counter, so no nonce is
//! used twice under one key. What is left on disk after the process is
//! gone cannot be read by anyone, the user included: the spill is of no use
//! after its scan. A file changed on disk during the scan fails its tag and
//! the scan stops with an error rather than read altered rows.
//!
//! Why ring's AES-GCM: a partitioned scan of the 10M month seals every
//! spilled row once and unseals it in each pass that reads it back; with
//! ChaCha20-Poly1305 (the RustCrypto crate, 1.6-1.8 GB/s on this
//! project's machine) that was 6% of the scan's CPU samples, three
//! quarters of them unsealing. ring's AES-256-GCM, on the processor's AES
//! and carry-less multiply instructions, seals and opens 512 MiB at
//! 8-9 GB/s on the same machine (RustCrypto's `aes-gcm`: 1.4-1.7 GB/s).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const TAG_LEN: usize = 16;

/// A key for one scan's spill files, and the next nonce.
pub struct Sealer {
    key: LessSafeKey,
    next: AtomicU64,
}

impl Default for Sealer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sealer {
    /// A sealer with a fresh random key. Panics if the operating system
    /// gives no random bytes: no key can be drawn without them.
    pub fn new() -> Sealer {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the operating system's random number generator failed");
        Sealer {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key")),
            next: AtomicU64::new(0),
        }
    }

    /// Write `plain` to `path` sealed: nonce, tag, then the ciphertext.
    /// `plain` is encrypted in place (no second copy of a spill file).
    pub fn write(&self, path: &Path, mut plain: Vec<u8>) -> std::io::Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.next.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut plain)
            .map_err(|_| std::io::Error::other("encrypting a spill file failed"))?;
        let mut f = std::fs::File::create(path)?;
        f.write_all(&nonce)?;
        f.write_all(tag.as_ref())?;
        f.write_all(&plain)?;
        Ok(())
    }

    /// The plaintext of a file `write` wrote under this key; an error if
    /// it was cut short or changed.
    pub fn read(&self, path: &Path) -> std::io::Result<Plain> {
        let mut bytes = std::fs::read(path)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(changed(path));
        }
        let (head, body) = bytes.split_at_mut(NONCE_LEN + TAG_LEN);
        let (nonce, tag) = head.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| changed(path))?;
        let tag = Tag::try_from(tag).map_err(|_| changed(path))?;
        self.key
            .open_in_place_separate_tag(nonce, Aad::empty(), tag, body, 0..)
            .map_err(|_| changed(path))?;
        Ok(Plain(bytes))
    }
}

/// A spill file's plaintext, decrypted where it was read (the header in
/// front is skipped, not moved).
pub struct Plain(Vec<u8>);

impl AsRef<[u8]> for Plain {
    fn as_ref(&self) -> &[u8] {
        &self.0[NONCE_LEN + TAG_LEN..]
    }
}

fn changed(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "spill file {} was changed or cut short on disk during the scan",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_reads_back_and_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::new();
        let plain = b"6225768888888888,11010519491231002X,".repeat(100);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        s.write(&a, plain.clone()).unwrap();
        s.write(&b, plain.clone()).unwrap();
        let (on_disk_a, on_disk_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(!on_disk_a.windows(16).any(|w| w == b"6225768888888888"));
        assert_ne!(on_disk_a, on_disk_b, "two files never share a nonce");
        assert_eq!(s.read(&a).unwrap().as_ref(), plain);
        assert_eq!(s.read(&b).unwrap().as_ref(), plain);
    }

    #[test]
    fn a_changed_or_foreign_file_is_an_error_not_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::new();
        let a = dir.path().join("a");
        s.write(&a, b"rows".repeat(50)).unwrap();
        let mut bytes = std::fs::read(&a).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&a, &bytes).unwrap();
        assert!(s.read(&a).err().unwrap().to_string().contains("changed or cut short"));
        std::fs::write(&a, b"short").unwrap();
        assert!(s.read(&a).is_err());
        // Another scan's key cannot open this scan's files.
        s.write(&a, b"rows".repeat(50)).unwrap();
        assert!(Sealer::new().read(&a).is_err());
    }
}
