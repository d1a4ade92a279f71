//! The archive's Ed25519 signing key (signed audit tree heads, download manifests), derived
//! from the ring's root version so it survives key rotation.

use crate::KeyRing;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

pub struct ArchiveSigner {
    key: SigningKey,
}

impl ArchiveSigner {
    pub fn new(ring: &KeyRing) -> ArchiveSigner {
        let seed = ring.derive_stable("signing/ed25519");
        ArchiveSigner { key: SigningKey::from_bytes(&seed) }
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

/// Checks a signature against a public key.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let signer = ArchiveSigner::new(&KeyRing::generate());
        let sig = signer.sign(b"tree head");
        assert!(verify(&signer.public_key(), b"tree head", &sig));
        assert!(!verify(&signer.public_key(), b"tree heaD", &sig));
    }
}
