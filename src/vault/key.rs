//! The master key: 32 random bytes that seal every secret at rest. This file
//! owns generating it, reading it from `RAMPART_MASTER_KEY` or
//! `data_dir/master.key`, writing a new key file, and the key id that names a
//! key without revealing it. It never prints, logs or echoes key material, not
//! even a malformed key, and never creates a key on its own initiative.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{KeyInit, OsRng};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::VaultError;

/// Name of the key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Name of the environment variable that overrides the key file.
pub const MASTER_KEY_ENV: &str = "RAMPART_MASTER_KEY";

/// Prefix hashed before the key when deriving its id, so that the id is not
/// the SHA-256 of the bare key (a value someone might compute for another
/// purpose) and cannot be confused with any other hash rampart stores.
const KEY_ID_DOMAIN: &[u8] = b"rampart vault key id v1\0";

/// Length of a master key in bytes (256 bits).
pub const KEY_LEN: usize = 32;

/// What `from_hex` tells a person who gave something else.
const HEX_EXPECTED: &str = "expected 64 hexadecimal characters (32 bytes), \
     such as the output of `openssl rand -hex 32`";

/// The 256-bit key the vault seals with. Boxed so that moves do not leave
/// copies on the stack; wiped on drop; its `Debug` shows only the key id.
pub struct MasterKey {
    bytes: Box<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A fresh key from the operating system's random source.
    ///
    /// `OsRng` panics only when the OS cannot supply entropy at all; no key
    /// could be made safely then, so there is nothing better to do.
    pub fn generate() -> MasterKey {
        let mut generated = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Box::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(generated.as_slice());
        generated.as_mut_slice().zeroize();
        MasterKey { bytes }
    }

    /// Parses the hex form (64 hex digits, surrounding whitespace allowed).
    /// The error says what is expected and never repeats the input.
    pub fn from_hex(text: &str) -> Result<MasterKey, VaultError> {
        Self::from_hex_for(text, "the master key")
    }

    fn from_hex_for(text: &str, origin: &str) -> Result<MasterKey, VaultError> {
        let text = text.trim();
        let bad = |reason: String| VaultError::BadKey {
            origin: origin.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(bad(format!("it is empty; {HEX_EXPECTED}")));
        }
        // Counting characters (not bytes) and naming the count is safe: it
        // says nothing about the key's value.
        let len = text.chars().count();
        if len != KEY_LEN * 2 {
            return Err(bad(format!("it has {len} characters; {HEX_EXPECTED}")));
        }
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "it contains characters that are not hexadecimal; {HEX_EXPECTED}"
            )));
        }
        let mut bytes = Box::new([0u8; KEY_LEN]);
        // Cannot fail after the checks above; map anyway rather than unwrap.
        hex::decode_to_slice(text, bytes.as_mut_slice())
            .map_err(|_| bad(HEX_EXPECTED.to_string()))?;
        Ok(MasterKey { bytes })
    }

    /// Reads a key file: the hex form and a newline. A file that group or
    /// others may read or write is refused, like OpenSSH refuses such private
    /// keys: whoever can read it can decrypt every stored secret.
    pub fn load_file(path: &Path) -> Result<MasterKey, VaultError> {
        let file = File::open(path).map_err(|source| VaultError::Io {
            action: "read master key file",
            path: path.to_path_buf(),
            source,
        })?;
        Self::load_open_file(path, file)
    }

    fn load_open_file(path: &Path, file: File) -> Result<MasterKey, VaultError> {
        let origin = format!("master key file {}", path.display());
        let io_err = |source| VaultError::Io {
            action: "read master key file",
            path: path.to_path_buf(),
            source,
        };
        // The permissions of the file we opened, not of whatever the path
        // names a moment later.
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(VaultError::BadKey {
                origin,
                reason: "it is not a regular file".to_string(),
            });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::BadKey {
                origin,
                reason: format!(
                    "it is accessible by group or others (mode {mode:04o}); \
                     run `chmod 600 {}` and check who may have read it",
                    path.display()
                ),
            });
        }
        // A key file is 65 bytes; reading at most a few KiB keeps a wrong
        // path (a log file, a device) from filling memory.
        let mut text = Zeroizing::new(String::new());
        file.take(4096).read_to_string(&mut text).map_err(io_err)?;
        Self::from_hex_for(&text, &origin)
    }

    /// Writes this key to a new file with mode 0600 set at creation (so there
    /// is no moment when it is readable by others). Never overwrites: an
    /// existing file may hold the only key to the stored secrets.
    pub fn write_new_file(&self, path: &Path) -> Result<(), VaultError> {
        let io_err = |source| VaultError::Io {
            action: "create master key file",
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        let mut text = Zeroizing::new(hex::encode(self.bytes.as_slice()));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(())
    }

    /// 16 hex characters naming this key: the first 8 bytes of
    /// SHA-256(domain prefix || key). Stored beside every sealed value so a
    /// value sealed under another key is recognised (and keys can be rotated
    /// later); a truncated hash of a 256-bit random key reveals nothing
    /// usable about it.
    pub fn key_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(KEY_ID_DOMAIN);
        hasher.update(self.bytes.as_slice());
        let digest = hasher.finalize();
        hex::encode(digest.get(..8).unwrap_or_default())
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// Finds the master key: `RAMPART_MASTER_KEY` (its value passed in by the
/// caller, so this stays testable) wins over `data_dir/master.key`; `None`
/// when neither exists.
///
/// A variable that is set but empty or malformed is an error, not a reason
/// to fall back to the file: the operator meant something and should learn
/// that it did not work.
///
/// This never creates a key. Whether a missing key is fatal is the caller's
/// decision: `serve` on an empty data directory generates one, but when the
/// database already holds sealed values a missing key must stop start-up,
/// because a new key would silently make every stored secret unreadable.
pub fn resolve_master_key(
    data_dir: &Path,
    env_value: Option<&str>,
) -> Result<Option<MasterKey>, VaultError> {
    if let Some(value) = env_value {
        return MasterKey::from_hex_for(value, MASTER_KEY_ENV).map(Some);
    }
    let path: PathBuf = data_dir.join(MASTER_KEY_FILE);
    match File::open(&path) {
        Ok(file) => MasterKey::load_open_file(&path, file).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VaultError::Io {
            action: "read master key file",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn hex_round_trips_and_allows_whitespace() {
        let key = MasterKey::from_hex(&format!("  {HEX}\n")).unwrap();
        assert_eq!(hex::encode(key.bytes()), HEX);
        assert_eq!(key.key_id().len(), 16);
        assert!(key.key_id().bytes().all(|b| b.is_ascii_hexdigit()));
        // The id is not a prefix of the key or of its plain SHA-256.
        assert!(!HEX.contains(&key.key_id()));
        let plain = hex::encode(Sha256::digest(key.bytes()));
        assert!(!plain.starts_with(&key.key_id()));
    }

    #[test]
    fn bad_hex_is_explained_without_echo() {
        let cases = [
            "",
            "abc",
            &HEX[..63],
            &format!("{HEX}00"),
            &format!("{}zz", &HEX[..62]),
            &format!("{} {}", &HEX[..32], &HEX[32..]),
        ];
        for case in cases {
            let err = MasterKey::from_hex(case).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, VaultError::BadKey { .. }), "{case}: {text}");
            assert!(text.contains("64 hexadecimal characters"), "{text}");
            if case.len() > 8 {
                assert!(!text.contains(&case[..8]), "input echoed: {text}");
            }
        }
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let key = MasterKey::from_hex(HEX).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.key_id()), "{shown}");
        assert!(!shown.contains("0001020304"), "{shown}");
        assert!(!shown.contains("[0, 1, 2"), "{shown}");
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.key_id(), b.key_id());
    }

    #[test]
    fn written_file_is_0600_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let key = MasterKey::generate();
        key.write_new_file(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && text.len() == 65);
        let loaded = MasterKey::load_file(&path).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
    }

    #[test]
    fn existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let first = MasterKey::generate();
        first.write_new_file(&path).unwrap();
        let err = MasterKey::generate().write_new_file(&path).unwrap_err();
        assert!(matches!(err, VaultError::Io { .. }), "{err}");
        assert_eq!(
            MasterKey::load_file(&path).unwrap().key_id(),
            first.key_id()
        );
    }

    #[test]
    fn group_readable_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        fs::write(&path, format!("{HEX}\n")).unwrap();
        for mode in [0o640, 0o604, 0o620] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load_file(&path).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("chmod 600"), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(!text.contains(&HEX[..16]), "{text}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(MasterKey::load_file(&path).is_ok());
    }

    #[test]
    fn resolve_prefers_env_then_file_then_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(resolve_master_key(dir.path(), None).unwrap().is_none());

        let file_key = MasterKey::generate();
        file_key
            .write_new_file(&dir.path().join(MASTER_KEY_FILE))
            .unwrap();
        let found = resolve_master_key(dir.path(), None).unwrap().unwrap();
        assert_eq!(found.key_id(), file_key.key_id());

        let env_key = MasterKey::from_hex(HEX).unwrap();
        let found = resolve_master_key(dir.path(), Some(HEX)).unwrap().unwrap();
        assert_eq!(found.key_id(), env_key.key_id());

        let err = resolve_master_key(dir.path(), Some("")).unwrap_err();
        assert!(err.to_string().contains(MASTER_KEY_ENV), "{err}");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
