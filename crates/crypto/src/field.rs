//! Sealed index fields: personal values in the metadata database (names, ID numbers, birth
//! dates, phone numbers) are stored as `version ‖ nonce ‖ AES-256-GCM(value)`, with the column
//! name as associated data so a value cannot be moved to another column unnoticed.

use crate::{CryptoError, KeyRing};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use std::collections::BTreeMap;

const LABEL: &str = "index-field/aes-256-gcm";

/// Seals and opens index fields with keys derived from every version of the ring.
pub struct FieldCipher {
    active: u32,
    ciphers: BTreeMap<u32, Aes256Gcm>,
}

impl FieldCipher {
    pub fn new(ring: &KeyRing, versions: &[u32]) -> Result<FieldCipher, CryptoError> {
        let mut ciphers = BTreeMap::new();
        for &v in versions {
            let key = ring.derive(v, LABEL)?;
            ciphers.insert(v, Aes256Gcm::new_from_slice(key.as_slice()).expect("32-byte key"));
        }
        Ok(FieldCipher { active: ring.active_version(), ciphers })
    }

    pub fn seal(&self, column: &str, value: &[u8]) -> Vec<u8> {
        let nonce = crate::random::bytes::<12>();
        let sealed = self.ciphers[&self.active]
            .encrypt((&nonce).into(), Payload { msg: value, aad: column.as_bytes() })
            .expect("AES-GCM encryption of a short field cannot fail");
        let mut out = Vec::with_capacity(4 + 12 + sealed.len());
        out.extend_from_slice(&self.active.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, column: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 4 + 12 + 16 {
            return Err(CryptoError::Malformed("sealed field too short"));
        }
        let version = u32::from_le_bytes(sealed[..4].try_into().expect("4 bytes"));
        let cipher = self.ciphers.get(&version).ok_or(CryptoError::UnknownKeyVersion(version))?;
        let nonce: [u8; 12] = sealed[4..16].try_into().expect("12 bytes");
        cipher
            .decrypt((&nonce).into(), Payload { msg: &sealed[16..], aad: column.as_bytes() })
            .map_err(|_| CryptoError::Integrity)
    }

    pub fn open_string(&self, column: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(column, sealed)?).map_err(|_| CryptoError::Malformed("field is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_bound_to_the_column() {
        let ring = KeyRing::generate();
        let cipher = FieldCipher::new(&ring, &[1]).unwrap();
        let sealed = cipher.seal("patient_name", "王^志强".as_bytes());
        assert_eq!(cipher.open_string("patient_name", &sealed).unwrap(), "王^志强");
        assert!(cipher.open("patient_id", &sealed).is_err());
        assert_ne!(sealed, cipher.seal("patient_name", "王^志强".as_bytes()), "random nonces");
    }
}
