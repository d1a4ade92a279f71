//! The master key ring: versioned 256-bit master keys, one active for new data. Every working
//! key is derived from a master key with HKDF-SHA-256 under its own label, so no key serves two
//! purposes. Keys that must stay stable across rotations (blind indexes, the signing key) derive
//! from the ring's root version.

use crate::CryptoError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// Environment variable holding a base64 256-bit master key (a ring of one version).
pub const MASTER_KEY_ENV: &str = "CLOUDFILM_MASTER_KEY";
/// Environment variable naming a key ring file to use instead of the data directory's.
pub const KEYRING_FILE_ENV: &str = "CLOUDFILM_KEYRING_FILE";

pub struct KeyRing {
    masters: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    active: u32,
    root: u32,
}

#[derive(Serialize, Deserialize)]
struct KeyRingFile {
    format: u32,
    active: u32,
    root: u32,
    keys: Vec<KeyFileEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyFileEntry {
    version: u32,
    created: String,
    secret: String,
}

/// Where the ring came from, for the startup log (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(String),
    Created(String),
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing(versions {:?}, active {})", self.masters.keys().collect::<Vec<_>>(), self.active)
    }
}

impl KeyRing {
    /// A ring with one fresh random version (tests and first start).
    pub fn generate() -> KeyRing {
        let mut masters = BTreeMap::new();
        masters.insert(1, Zeroizing::new(crate::random::bytes::<32>()));
        KeyRing { masters, active: 1, root: 1 }
    }

    /// A ring of one version from a base64 master key.
    pub fn from_base64(b64: &str) -> Result<KeyRing, CryptoError> {
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| CryptoError::KeyRing("the master key is not valid base64".into()))?,
        );
        let key: [u8; 32] =
            raw.as_slice().try_into().map_err(|_| CryptoError::KeyRing("the master key must be 32 bytes".into()))?;
        let mut masters = BTreeMap::new();
        masters.insert(1, Zeroizing::new(key));
        Ok(KeyRing { masters, active: 1, root: 1 })
    }

    /// Takes the ring from the environment variable, else from the file the environment names,
    /// else from `default_path`, creating it there (mode 0600) on first start.
    pub fn load_or_create(default_path: &Path) -> Result<(KeyRing, KeySource), CryptoError> {
        if let Ok(b64) = std::env::var(MASTER_KEY_ENV) {
            return Ok((KeyRing::from_base64(&b64)?, KeySource::Environment));
        }
        if let Ok(path) = std::env::var(KEYRING_FILE_ENV) {
            return Ok((KeyRing::load(Path::new(&path))?, KeySource::File(path)));
        }
        if default_path.exists() {
            let ring = KeyRing::load(default_path)?;
            return Ok((ring, KeySource::File(default_path.display().to_string())));
        }
        let ring = KeyRing::generate();
        ring.save_new(default_path)?;
        Ok((ring, KeySource::Created(default_path.display().to_string())))
    }

    pub fn load(path: &Path) -> Result<KeyRing, CryptoError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(CryptoError::KeyRing(format!(
                    "{} is readable by other users (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let text = Zeroizing::new(fs::read_to_string(path)?);
        KeyRing::from_json(&text)
    }

    /// A ring from its file's JSON (the file, or a backup's copy once unsealed).
    pub fn from_json(text: &str) -> Result<KeyRing, CryptoError> {
        let file: KeyRingFile =
            serde_json::from_str(text).map_err(|e| CryptoError::KeyRing(format!("unreadable key ring: {e}")))?;
        let mut masters = BTreeMap::new();
        for entry in &file.keys {
            let one = KeyRing::from_base64(&entry.secret)?;
            masters.insert(entry.version, Zeroizing::new(*one.masters[&1]));
        }
        if !masters.contains_key(&file.active) || !masters.contains_key(&file.root) {
            return Err(CryptoError::KeyRing("the active or root version is missing".into()));
        }
        Ok(KeyRing { masters, active: file.active, root: file.root })
    }

    /// The ring as its file holds it (every version's secret: handle as the ring itself).
    pub fn to_json(&self) -> Zeroizing<String> {
        let file = KeyRingFile {
            format: 1,
            active: self.active,
            root: self.root,
            keys: self
                .masters
                .iter()
                .map(|(version, key)| KeyFileEntry {
                    version: *version,
                    created: chrono::Utc::now().to_rfc3339(),
                    secret: base64::engine::general_purpose::STANDARD.encode(key.as_slice()),
                })
                .collect(),
        };
        Zeroizing::new(serde_json::to_string_pretty(&file).expect("serializable"))
    }

    /// Writes the ring to a new file readable by its owner only; never overwrites.
    pub fn save_new(&self, path: &Path) -> Result<(), CryptoError> {
        let text = self.to_json();
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(path)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        Ok(())
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    pub fn versions(&self) -> Vec<u32> {
        self.masters.keys().copied().collect()
    }

    /// A 256-bit key for `label`, derived from master key `version`.
    pub fn derive(&self, version: u32, label: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let master = self.masters.get(&version).ok_or(CryptoError::UnknownKeyVersion(version))?;
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"cloudfilm key ring v1"), master.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(label.as_bytes(), out.as_mut_slice()).expect("32 bytes is a valid HKDF length");
        Ok(out)
    }

    /// A key for `label` that stays the same when the active version changes.
    pub fn derive_stable(&self, label: &str) -> Zeroizing<[u8; 32]> {
        self.derive(self.root, label).expect("the root version is always present")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_ring_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let ring = KeyRing::generate();
        ring.save_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let back = KeyRing::load(&path).unwrap();
        assert_eq!(*back.derive(1, "x").unwrap(), *ring.derive(1, "x").unwrap());
        assert!(ring.save_new(&path).is_err(), "an existing ring is never overwritten");
    }

    #[test]
    fn labels_give_independent_keys() {
        let ring = KeyRing::generate();
        assert_ne!(*ring.derive(1, "a").unwrap(), *ring.derive(1, "b").unwrap());
        assert!(matches!(ring.derive(2, "a"), Err(CryptoError::UnknownKeyVersion(2))));
    }

    #[test]
    fn a_world_readable_ring_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        KeyRing::generate().save_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(KeyRing::load(&path).is_err());
        }
    }
}
