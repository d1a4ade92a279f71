//! The single writer. Concurrent jobs are gathered into one `BEGIN IMMEDIATE` transaction (one
//! fsync for many requests), each job inside its own savepoint so that one failing job leaves
//! the others intact. Audit entries are appended to the chain in the same transaction as the
//! effect they record (S26). Signed tree heads are written every few seconds and at close.

use super::chain::ChainWriter;
use super::tx::SqlTx;
use crate::backend::Work;
use crate::error::{Result, StoreError};
use crate::heads::HeadsOutside;
use cloudfilm_audit::SignedHead;
use cloudfilm_crypto::signing::ArchiveSigner;
use sqlx::SqliteConnection;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What a job answers: the work's own value.
type Answer = Result<Box<dyn Any + Send>>;

pub enum Msg {
    Job(Work, oneshot::Sender<Answer>),
    SignHead(oneshot::Sender<Result<Option<SignedHead>>>),
    Close(oneshot::Sender<()>),
}

/// Jobs gathered into one transaction at most.
const MAX_BATCH: usize = 64;
/// How often a new signed head is written while entries keep arriving.
const HEAD_INTERVAL: Duration = Duration::from_secs(5);

struct Writer {
    conn: SqliteConnection,
    chain: ChainWriter,
    /// Audit size when the planner's statistics were last refreshed.
    analyzed_at_size: u64,
}

pub async fn spawn(
    conn: SqliteConnection,
    signer: Arc<ArchiveSigner>,
    heads: HeadsOutside,
) -> Result<mpsc::Sender<Msg>> {
    let mut conn = conn;
    let chain = ChainWriter::open(&mut conn, signer, heads).await?;
    let writer = Writer { conn, chain, analyzed_at_size: 0 };
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(writer.run(rx));
    Ok(tx)
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut tick = tokio::time::interval(HEAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => msg,
                _ = tick.tick() => {
                    if let Err(e) = self.sign_head().await {
                        tracing::error!(error = %e, "could not sign an audit head");
                    }
                    if let Err(e) = self.refresh_statistics().await {
                        tracing::warn!(error = %e, "could not refresh the query planner's statistics");
                    }
                    continue;
                }
            };
            match msg {
                None => break,
                Some(Msg::SignHead(reply)) => {
                    let _ = reply.send(self.sign_head().await);
                }
                Some(Msg::Close(reply)) => {
                    if let Err(e) = self.sign_head().await {
                        tracing::error!(error = %e, "could not sign the last audit head");
                    }
                    let _ = reply.send(());
                    break;
                }
                Some(Msg::Job(job, reply)) => {
                    let mut batch = vec![(job, reply)];
                    let mut deferred = None;
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Msg::Job(job, reply)) => batch.push((job, reply)),
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(batch).await;
                    match deferred {
                        Some(Msg::SignHead(reply)) => {
                            let _ = reply.send(self.sign_head().await);
                        }
                        Some(Msg::Close(reply)) => {
                            let _ = self.sign_head().await;
                            let _ = reply.send(());
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    async fn commit_batch(&mut self, batch: Vec<(Work, oneshot::Sender<Answer>)>) {
        let before = self.chain.chain.clone();
        let mut results: Vec<Answer> = Vec::with_capacity(batch.len());
        let begun = self.begin().await;
        if let Err(e) = begun {
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Database(e.to_string())));
            }
            return;
        }
        let mut replies = Vec::with_capacity(batch.len());
        for (work, reply) in batch {
            results.push(self.apply_in_savepoint(work).await);
            replies.push(reply);
        }
        let committed = sqlx::query("COMMIT").execute(&mut self.conn).await;
        if let Err(e) = committed {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            self.chain.chain = before;
            let err = StoreError::from(e);
            tracing::error!(error = %err, "the index transaction did not commit");
            for reply in replies {
                let _ = reply.send(Err(clone_error(&err)));
            }
            return;
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    async fn begin(&mut self) -> Result<()> {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await?;
        if let Err(e) = self.chain.catch_up(&mut self.conn).await {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            return Err(e);
        }
        Ok(())
    }

    async fn apply_in_savepoint(&mut self, work: Work) -> Answer {
        let before = self.chain.chain.clone();
        sqlx::query("SAVEPOINT job").execute(&mut self.conn).await?;
        let result = match work(&mut SqlTx { conn: &mut self.conn }).await {
            Ok(done) => self.chain.append(&mut self.conn, &done.audit).await.map(|_| done.value),
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => {
                sqlx::query("RELEASE job").execute(&mut self.conn).await?;
                Ok(value)
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO job").execute(&mut self.conn).await?;
                sqlx::query("RELEASE job").execute(&mut self.conn).await?;
                self.chain.chain = before;
                Err(e)
            }
        }
    }

    /// Refreshes SQLite's planner statistics (a sampled ANALYZE, tens of milliseconds even at
    /// 100 000 studies) whenever the archive has grown by a quarter since the last time:
    /// without them the planner may walk every instance of an organization to find one study.
    async fn refresh_statistics(&mut self) -> Result<()> {
        if self.chain.chain.size < self.analyzed_at_size + self.analyzed_at_size / 4 + 200 {
            return Ok(());
        }
        sqlx::query("PRAGMA analysis_limit = 1000").execute(&mut self.conn).await?;
        sqlx::query("ANALYZE").execute(&mut self.conn).await?;
        self.analyzed_at_size = self.chain.chain.size;
        Ok(())
    }

    async fn sign_head(&mut self) -> Result<Option<SignedHead>> {
        self.chain.sign_head(&mut self.conn).await
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Full => StoreError::Full,
        other => StoreError::Database(other.to_string()),
    }
}
