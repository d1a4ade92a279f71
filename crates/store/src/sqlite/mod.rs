//! The SQLite repository: WAL, `synchronous=FULL`, one writer task that group-commits the jobs
//! of concurrent requests (with their audit events) in one transaction, and a pool of readers.

mod writer;

// The SQL shared with every backend, compiled here with SQLite's types.
type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;
type DbRow = sqlx::sqlite::SqliteRow;
type Pool = sqlx::SqlitePool;
/// The one writer's heads file holds every head signed.
#[path = "../sql/chain.rs"]
mod chain;
#[path = "../sql/patient_reads.rs"]
mod patient_reads;
#[path = "../sql/query.rs"]
mod query;
#[path = "../sql/reads.rs"]
mod reads;
#[path = "../sql/rows.rs"]
mod rows;
#[path = "../sql/sharing_reads.rs"]
mod sharing_reads;
#[path = "../sql/signed_heads.rs"]
mod signed_heads;
#[path = "../sql/tx.rs"]
mod tx;

/// Where SQLite's SQL differs.
mod dialect {
    /// DICOM wildcard matching, case-sensitive as DICOM matching is.
    pub const WILDCARD_OPERATOR: &str = "GLOB";

    /// DICOM wildcards (`*`, `?`) as a GLOB pattern.
    pub fn wildcard_pattern(pattern: &str) -> String {
        pattern.chars().fold(String::new(), |mut out, c| {
            match c {
                '[' => out.push_str("[[]"),
                ']' => out.push_str("[]]"),
                other => out.push(other),
            }
            out
        })
    }

    /// A token's studies in the token's order: CROSS JOIN keeps SQLite's planner on it.
    pub const FROM_TOKENS_THEN_STUDIES: &str = " FROM study_tokens t CROSS JOIN studies s ON s.pk = t.study_pk";
}

use crate::backend::{Backend, PoolState, Work};
use crate::error::{Result, StoreError};
use crate::heads::HeadsOutside;
use crate::reads::Reads;
use crate::sealed::Sealer;
use async_trait::async_trait;
use cloudfilm_audit::SignedHead;
use cloudfilm_crypto::signing::ArchiveSigner;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub struct SqliteRepository {
    readers: reads::Readers,
    checkpointer: tokio::task::JoinHandle<()>,
    tx: mpsc::Sender<writer::Msg>,
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        .pragma("temp_store", "memory")
        .log_statements(tracing::log::LevelFilter::Trace)
}

const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Copies committed pages from the write-ahead log into the database file (as much as readers
/// allow) every `interval`, on its own connection, so that no commit waits for it.
async fn checkpoint_every(mut conn: sqlx::SqliteConnection, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "a checkpoint of the index log failed");
        }
    }
}

impl SqliteRepository {
    /// Opens (creating and migrating) the database at `path`; signed audit heads go to
    /// `heads_path`.
    pub async fn open(
        path: &Path,
        sealer: Arc<Sealer>,
        signer: Arc<ArchiveSigner>,
        heads_path: PathBuf,
    ) -> Result<SqliteRepository> {
        SqliteRepository::open_with_heads(path, sealer, signer, HeadsOutside::file(heads_path)).await
    }

    /// [`open`](Self::open), the heads kept where `heads` says.
    pub async fn open_with_heads(
        path: &Path,
        sealer: Arc<Sealer>,
        signer: Arc<ArchiveSigner>,
        heads: HeadsOutside,
    ) -> Result<SqliteRepository> {
        // The writer's commits do not copy the log into the database file themselves (a commit
        // that did waited for that copy and its sync): a checkpointer does, beside it.
        let mut conn = options(path).create_if_missing(true).pragma("wal_autocheckpoint", "0").connect().await?;
        crate::schema::sqlite()
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        // Readers are renewed every minute: a connection plans with the statistics it loaded
        // when it opened, and the writer refreshes them as the archive grows.
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .max_lifetime(Duration::from_secs(60))
            .connect_with(options(path).read_only(true))
            .await?;
        let tx = writer::spawn(conn, signer, heads).await?;
        let checkpointer = tokio::spawn(checkpoint_every(options(path).connect().await?, CHECKPOINT_INTERVAL));
        Ok(SqliteRepository { readers: reads::Readers { pool: readers, sealer }, checkpointer, tx })
    }

    async fn send<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Msg) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl crate::tx::Tx for tx::SqlTx<'_> {
    /// The single writer decides one transaction at a time: nothing to lock.
    async fn lock(&mut self, _keys: &mut [Vec<u8>]) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Backend for SqliteRepository {
    fn reads(&self) -> &(dyn Reads + 'static) {
        &self.readers
    }

    async fn transact(&self, work: Work) -> Result<Box<dyn Any + Send>> {
        self.send(|reply| writer::Msg::Job(work, reply)).await
    }

    async fn sign_audit_head(&self) -> Result<Option<SignedHead>> {
        self.send(writer::Msg::SignHead).await
    }

    /// Entries are in the chain when their transaction commits.
    async fn settle_audit(&self, _within: Duration) -> Result<()> {
        Ok(())
    }

    async fn check(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.readers.pool).await?;
        Ok(())
    }

    fn pool_state(&self) -> PoolState {
        let pool = &self.readers.pool;
        let writer_queue = Some(self.tx.max_capacity() - self.tx.capacity());
        PoolState { size: pool.size(), idle: pool.num_idle() as u32, writer_queue }
    }

    async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(writer::Msg::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
        self.readers.pool.close().await;
        self.checkpointer.abort();
    }
}
