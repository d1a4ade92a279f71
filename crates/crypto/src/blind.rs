//! Keyed blind indexes (S24): HMAC-SHA-256 of a normalized value under a key derived from the
//! ring's root version, truncated to 16 bytes. They allow exact lookups (and prefix lookups
//! when each prefix is indexed) on sealed fields without storing the value.

use crate::KeyRing;
use hmac::{KeyInit, Mac};
use zeroize::Zeroizing;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub struct BlindIndexer {
    key: Zeroizing<[u8; 32]>,
}

impl BlindIndexer {
    pub fn new(ring: &KeyRing, purpose: &str) -> BlindIndexer {
        BlindIndexer { key: ring.derive_stable(&format!("blind-index/{purpose}")) }
    }

    /// The 16-byte index of `value` in `domain` (a column or token kind).
    pub fn index(&self, domain: &str, value: &str) -> Vec<u8> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.as_slice()).expect("any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// Full-length keyed hash (for secrets such as API keys): compare with [`constant_time_eq`].
    pub fn hash_secret(&self, secret: &str) -> Vec<u8> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.as_slice()).expect("any key length");
        mac.update(b"secret\0");
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// Equality that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let ring = KeyRing::generate();
        let a = BlindIndexer::new(&ring, "dicom");
        assert_eq!(a.index("pid", "X1"), a.index("pid", "X1"));
        assert_ne!(a.index("pid", "X1"), a.index("name", "X1"));
        assert_ne!(a.index("pid", "X1"), BlindIndexer::new(&KeyRing::generate(), "dicom").index("pid", "X1"));
        assert!(constant_time_eq(&a.hash_secret("k"), &a.hash_secret("k")));
        assert!(!constant_time_eq(&a.hash_secret("k"), &a.hash_secret("l")));
    }
}
