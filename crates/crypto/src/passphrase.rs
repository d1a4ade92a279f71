//! Secrets sealed under a passphrase, for what leaves the archive with a person rather than a
//! key (a backup's key ring): the key is Argon2id of the passphrase with a random salt, the
//! secret AES-256-GCM under it, and the envelope's header (format, cost, salt) is the
//! associated data, so a header edited to weaken the cost fails like a wrong passphrase.

use crate::CryptoError;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The shortest passphrase accepted for sealing.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
const FORMAT: &str = "cloudfilm-passphrase-sealed/v1 argon2id aes-256-gcm";

/// The envelope as stored (JSON).
#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    /// Argon2id memory (KiB), passes and lanes.
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    salt: String,
    nonce: String,
    sealed: String,
}

impl Envelope {
    fn header(&self) -> String {
        format!("{}|{}|{}|{}|{}", self.format, self.memory_kib, self.passes, self.lanes, self.salt)
    }

    fn cipher(&self, passphrase: &str, salt: &[u8]) -> Result<Aes256Gcm, CryptoError> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, Some(32))
            .map_err(|_| CryptoError::Malformed("the envelope's key-derivation cost is invalid"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, key.as_mut_slice())
            .map_err(|_| CryptoError::Malformed("the envelope's salt is invalid"))?;
        Ok(Aes256Gcm::new_from_slice(key.as_slice()).expect("32-byte key"))
    }
}

/// Seals `secret` under `passphrase` (64 MiB and 3 passes of Argon2id: about a second here).
pub fn seal(secret: &[u8], passphrase: &str) -> Result<Vec<u8>, CryptoError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(CryptoError::KeyRing(format!(
            "the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters"
        )));
    }
    let salt = crate::random::bytes::<16>();
    let nonce = crate::random::bytes::<12>();
    let mut envelope = Envelope {
        format: FORMAT.into(),
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 1,
        salt: STANDARD.encode(salt),
        nonce: STANDARD.encode(nonce),
        sealed: String::new(),
    };
    let cipher = envelope.cipher(passphrase, &salt)?;
    let sealed = cipher
        .encrypt((&nonce).into(), Payload { msg: secret, aad: envelope.header().as_bytes() })
        .expect("AES-GCM encryption of a small secret cannot fail");
    envelope.sealed = STANDARD.encode(sealed);
    Ok(serde_json::to_vec_pretty(&envelope).expect("serializable"))
}

/// Opens an envelope made by [`seal`]; a wrong passphrase and an altered envelope are the same
/// error.
pub fn open(envelope: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|_| CryptoError::Malformed("not a passphrase-sealed envelope"))?;
    if envelope.format != FORMAT {
        return Err(CryptoError::Malformed("an unknown envelope format"));
    }
    // The cost is bounded before any work: an envelope may come from anywhere.
    if envelope.memory_kib > 1024 * 1024 || envelope.passes > 16 || envelope.lanes > 8 {
        return Err(CryptoError::Malformed("the envelope's key-derivation cost is out of bounds"));
    }
    let decode = |field: &str| STANDARD.decode(field).map_err(|_| CryptoError::Malformed("the envelope is not base64"));
    let (salt, nonce, sealed) = (decode(&envelope.salt)?, decode(&envelope.nonce)?, decode(&envelope.sealed)?);
    let nonce: [u8; 12] =
        nonce.try_into().map_err(|_| CryptoError::Malformed("the envelope's nonce is not 12 bytes"))?;
    let cipher = envelope.cipher(passphrase, &salt)?;
    cipher
        .decrypt((&nonce).into(), Payload { msg: &sealed, aad: envelope.header().as_bytes() })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Integrity)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &str = "correct horse battery staple";

    #[test]
    fn a_sealed_secret_opens_with_its_passphrase_only() {
        let envelope = seal(b"the key ring", PASSPHRASE).unwrap();
        assert_eq!(open(&envelope, PASSPHRASE).unwrap().as_slice(), b"the key ring");
        assert!(matches!(open(&envelope, "correct horse battery stapler"), Err(CryptoError::Integrity)));
        let text = String::from_utf8(envelope.clone()).unwrap();
        assert!(!text.contains("the key ring") && !text.contains(&STANDARD.encode("the key ring")));
    }

    #[test]
    fn a_short_passphrase_is_refused() {
        assert!(seal(b"x", "short").is_err());
    }

    #[test]
    fn a_weakened_or_altered_header_fails_like_a_wrong_passphrase() {
        let envelope = seal(b"secret", PASSPHRASE).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        json["passes"] = 1.into();
        assert!(matches!(open(&serde_json::to_vec(&json).unwrap(), PASSPHRASE), Err(CryptoError::Integrity)));
        json["passes"] = 1000.into();
        assert!(matches!(open(&serde_json::to_vec(&json).unwrap(), PASSPHRASE), Err(CryptoError::Malformed(_))));
        assert!(open(b"{}", PASSPHRASE).is_err());
    }
}
