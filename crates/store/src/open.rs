//! The index backend a URL names: SQLite's file (`sqlite://PATH`, the embedded default), or a
//! PostgreSQL server several nodes share (`postgres://...`). Callers name no backend type.

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::heads::HeadsOutside;
use crate::sealed::Sealer;
use crate::{PgRepository, SqliteRepository};
use cloudfilm_crypto::signing::ArchiveSigner;
use std::path::Path;
use std::sync::Arc;

/// Opens the index at `url`; signed audit heads are kept outside it too (`heads`, made by
/// [`HeadsOutside::for_index`]). Errors name the database and where it is, never a password.
pub async fn open_index(
    url: &str,
    sealer: Arc<Sealer>,
    signer: Arc<ArchiveSigner>,
    heads: HeadsOutside,
) -> Result<Arc<dyn Backend>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let repo = SqliteRepository::open_with_heads(Path::new(path), sealer, signer, heads)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open the index database {path}: {e}")))?;
        return Ok(Arc::new(repo));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let place = crate::postgres::describe(url);
        let repo = PgRepository::open(url, sealer, signer, heads)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open the index database ({place}): {e}")))?;
        return Ok(Arc::new(repo));
    }
    let scheme = url.split("://").next().unwrap_or(url);
    Err(StoreError::Database(format!(
        "the index database URL must start with sqlite:// or postgres:// (got a {scheme:?} URL)"
    )))
}
