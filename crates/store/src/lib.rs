//! Where cloudfilm keeps things: the index (typed writes whose rules live in `service`, over
//! SQLite or PostgreSQL) and the encrypted blob store. Personal values are sealed
//! here, on the way in, and opened on the way out; callers see plain domain types.

// The SQL in `src/sql` is compiled once per backend (`#[path]` modules in `sqlite` and
// `postgres`), each time with that backend's types: the same text, not a copy.
#![allow(clippy::duplicate_mod)]

pub mod backend;
pub mod blobs;
pub mod error;
pub mod heads;
pub mod index;
pub mod migrate;
pub mod model;
pub mod open;
pub mod patients;
pub mod postgres;
pub mod reads;
pub mod schema;
pub mod scratch;
pub mod sealed;
pub mod service;
pub mod sharing;
pub mod snapshot;
pub mod sqlite;
pub mod tls;
pub mod tx;

pub use blobs::{BlobStore, Blobs, BlobsLocation, LocalBlobStore, S3BlobStore};
pub use error::StoreError;
pub use heads::HeadsOutside;
pub use index::Index;
pub use model::*;
pub use postgres::PgRepository;
pub use sqlite::SqliteRepository;
