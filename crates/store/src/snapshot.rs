//! A consistent copy of the embedded index while the archive keeps writing to it, and the
//! reads a backup is checked with (without the key ring: nothing here opens a sealed value).
//!
//! `VACUUM INTO` copies the database as one read transaction sees it: every commit before it,
//! none after, whatever the write-ahead log holds, and the copy is a compact file on its own
//! (no `-wal` beside it).

use crate::error::{Result, StoreError};
use cloudfilm_audit::StoredEntry;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use std::path::Path;

/// Writes a snapshot of the live database at `live` to `to` (which must not exist).
pub async fn take(live: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        return Err(StoreError::Database(format!("{} exists already", to.display())));
    }
    let target = to.to_str().ok_or_else(|| StoreError::Database("the snapshot's path is not UTF-8".into()))?;
    let options = SqliteConnectOptions::new().filename(live).read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    sqlx::query("VACUUM INTO $1").bind(target).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// A snapshot (or any embedded index), opened read-only.
pub async fn open(path: &Path) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true).immutable(true);
    Ok(SqlitePool::connect_with(options).await?)
}

/// The audit entries after `after_seq`, at most `limit`, in order.
pub async fn audit_entries(pool: &SqlitePool, after_seq: u64, limit: u32) -> Result<Vec<StoredEntry>> {
    let rows = sqlx::query(crate::reads::AUDIT_PAGE).bind(after_seq as i64).bind(limit as i64).fetch_all(pool).await?;
    Ok(rows.iter().map(crate::reads::stored_entry).collect::<std::result::Result<_, _>>()?)
}

/// How many instances, studies and audit entries a snapshot holds (for the backup's summary).
pub async fn counts(pool: &SqlitePool) -> Result<(u64, u64, u64)> {
    let one = |sql: &'static str| async move {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        Ok::<u64, StoreError>(n as u64)
    };
    Ok((
        one("SELECT COUNT(*) FROM instances").await?,
        one("SELECT COUNT(*) FROM studies").await?,
        one("SELECT COALESCE(MAX(seq), 0) FROM audit_log").await?,
    ))
}
