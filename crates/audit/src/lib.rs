//! The tamper-evident audit chain (S26–S28), as pure logic: entries, their canonical bytes,
//! the hash chain, the RFC 6962 Merkle tree, signed tree heads and the verifier. Storage of
//! entries is the `store` crate's; this crate never does I/O.

pub mod entry;
pub mod merkle;
pub mod verify;

pub use entry::{Action, AuditEvent, Outcome};
pub use merkle::{MerkleFrontier, SignedHead, chain_hash, leaf_hash, merkle_root};
pub use verify::{Broken, StoredEntry, Verifier, VerifyReport, merge_heads, verify_log};
