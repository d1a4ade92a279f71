//! The seam between the archive and where its encrypted objects live: a local directory or an
//! S3-compatible bucket. A [`BlobStore`] only ever sees ciphertext (the layer above encrypts),
//! and only ever under fresh random ids (never a DICOM value), so uniqueness never depends on
//! the store's conditional writes (Garage ignores `If-None-Match`).
//!
//! A new object is written to the store's local [`Staging`] area first, then made durable in
//! the store by [`put`](BlobStore::put) — before the index commits the row naming it — and
//! [`settle`](BlobStore::settle)d after the commit.

use super::Staging;
use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use std::io::{Read, Seek};
use std::ops::Range;
use std::time::Duration;

/// A blocking reader over an object's ciphertext, for callers on blocking threads.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Bytes read from an object, with the object's whole length.
pub struct Chunk {
    pub bytes: bytes::Bytes,
    pub object_len: u64,
}

/// An object found by [`BlobStore::list_for_recovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub id: String,
    pub last_modified: DateTime<Utc>,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Where the store is, for messages and logs: a path, or a bucket and endpoint; never a
    /// credential.
    fn describe(&self) -> String;

    /// The local area where new objects' ciphertext is written before [`put`](Self::put).
    fn staging(&self) -> &Staging;

    /// Makes the staged objects `ids` durable in the store, each created under its own fresh
    /// id; when this returns `Ok`, every one survives a crash. Local: fsync (one `syncfs` for a
    /// batch); S3: a completed PUT (multipart when large) streamed from the staged file.
    async fn put(&self, ids: &[String]) -> Result<()>;

    /// The index references the object: the local store moves it into place, the S3 store
    /// drops its staged copy.
    async fn settle(&self, id: &str) -> Result<()>;

    /// Reads `range` of an object's ciphertext (clamped to its end; empty past it).
    async fn read(&self, id: &str, range: Range<u64>) -> Result<Chunk>;

    /// Opens an object for blocking random access (called on blocking threads only).
    fn open_sync(&self, id: &str) -> Result<Box<dyn ReadSeek>>;

    /// Removes an object, staged or stored; a missing object is not an error.
    async fn delete(&self, id: &str) -> Result<()>;

    /// Objects a crash may have left without an index row, with their last modification:
    /// local, the temporaries; S3, every object of the bucket.
    fn list_for_recovery(&self) -> BoxStream<'_, Result<ObjectInfo>>;

    /// How old an unreferenced object must be before recovery deletes it: zero where only this
    /// process writes (the local store, under its lock), longer where other nodes may be
    /// between their PUT and their commit.
    fn recovery_grace(&self) -> Duration;

    /// A cheap check that the store answers (for `/healthz` and at start).
    async fn check(&self) -> Result<()>;

    /// Keeps a signed audit head (public, signed JSON, no personal data) under its tree size,
    /// beside the objects and out of reach of a rollback of the index; durable on `Ok`.
    async fn keep_audit_head(&self, tree_size: u64, head: &[u8]) -> Result<()>;

    /// Every audit head kept by [`keep_audit_head`](Self::keep_audit_head), in no order.
    async fn kept_audit_heads(&self) -> Result<Vec<bytes::Bytes>>;
}

/// The name a kept audit head has in a store: sorted by tree size.
pub(super) fn audit_head_name(tree_size: u64) -> String {
    format!("{tree_size:020}.json")
}
