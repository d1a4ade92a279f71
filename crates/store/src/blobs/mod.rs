//! Encrypted blobs: one object per stored instance, named by a fresh random id (never a DICOM
//! value), in a local directory or an S3-compatible bucket ([`BlobStore`]), encrypted above
//! the store by [`Blobs`] with the archive's key ring.

mod cache;
mod encrypted;
pub mod local;
mod location;
pub mod s3;
mod s3_reader;
mod staging;
mod store;

pub use encrypted::{Blobs, PendingBlob};
pub use local::LocalBlobStore;
pub use location::{BlobsLocation, LocationError};
pub use s3::S3BlobStore;
pub use staging::{Staging, valid_id};
pub use store::{BlobStore, Chunk, ObjectInfo, ReadSeek};

/// What a recovery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Referenced objects finished (moved into place, staged copy dropped).
    pub settled: usize,
    /// Referenced objects already in place (every stored object of a bucket).
    pub kept: usize,
    /// Unreferenced objects removed.
    pub deleted: usize,
    /// Unreferenced objects left alone: younger than the grace period.
    pub young: usize,
}

#[cfg(test)]
mod garage_fixture;
#[cfg(any(test, feature = "testing"))]
pub mod s3_fixture;
#[cfg(test)]
mod story;
