//! Where cloudfilm keeps things: the metadata repository (one trait; SQLite now, PostgreSQL can
//! follow without changing callers) and the encrypted blob store. Personal values are sealed
//! here, on the way in, and opened on the way out; callers see plain domain types.

pub mod backend;
pub mod blobs;
pub mod error;
pub mod heads;
pub mod index;
pub mod model;
pub mod patients;
pub mod reads;
pub mod sealed;
pub mod service;
pub mod sharing;
pub mod sqlite;
pub mod tx;

pub use blobs::{BlobStore, Blobs, BlobsLocation, LocalBlobStore, S3BlobStore};
pub use error::StoreError;
pub use index::Index;
pub use model::*;
pub use sqlite::SqliteRepository;
