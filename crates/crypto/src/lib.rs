//! The cryptography of cloudfilm, built on RustCrypto: a versioned master key ring, envelope
//! encryption of blobs in authenticated segments (STREAM), sealed index fields, keyed blind
//! indexes for exact lookups, keyed hashes of secrets and the archive's Ed25519 signing key.

pub mod blind;
pub mod blob;
pub mod field;
pub mod keyring;
pub mod manifest;
pub mod passphrase;
pub mod password;
pub mod random;
pub mod signing;

pub use blob::{BlobReader, BlobWriter, SEGMENT_SIZE};
pub use keyring::KeyRing;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("authentication failed: the stored bytes were altered or belong to another object")]
    Integrity,
    #[error("unknown key version {0}")]
    UnknownKeyVersion(u32),
    #[error("malformed encrypted data: {0}")]
    Malformed(&'static str),
    #[error("key ring: {0}")]
    KeyRing(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// SHA-256 of a byte string, as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
