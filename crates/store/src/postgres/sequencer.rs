//! The cluster's audit sequencer (the model: Trillian's log signer over queued leaves). Every
//! node runs a candidate; the one holding a session advisory lock on its own connection
//! integrates the queued entries into the hash chain and RFC 6962 tree, in the order it
//! finds them committed, each batch in one transaction (entries appended, queue rows
//! deleted), and signs heads. When that node dies its connection ends, the lock is free,
//! and another candidate takes over from what is committed: nothing is lost or reordered.

use super::Conn;
use super::chain::ChainWriter;
use crate::error::{Result, StoreError};
use crate::heads::HeadsOutside;
use cloudfilm_audit::{AuditEvent, SignedHead};
use cloudfilm_crypto::signing::ArchiveSigner;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// The advisory lock the sequencer holds ("cfseq").
const SEQUENCER_LOCK: i64 = 0x0063_6673_6571;
/// How often queued entries are looked for when nothing wakes the sequencer.
const POLL: Duration = Duration::from_millis(100);
/// How often a new head is signed while entries keep arriving.
const HEAD_INTERVAL: Duration = Duration::from_secs(5);
/// Entries integrated in one transaction at most.
const BATCH: i64 = 1000;

enum Msg {
    SignHead(oneshot::Sender<Result<Option<SignedHead>>>),
    Close(oneshot::Sender<()>),
}

pub struct Handle {
    wake: Arc<Notify>,
    tx: mpsc::Sender<Msg>,
}

impl Handle {
    /// Entries were queued here: integrate them now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Integrates what is queued and signs a head, when this node is the sequencer.
    pub async fn sign_head(&self) -> Result<Option<SignedHead>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::SignHead(reply)).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Signs a last head (when this node is the sequencer) and gives the role up.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

pub fn spawn(options: PgConnectOptions, signer: Arc<ArchiveSigner>, heads: HeadsOutside) -> Handle {
    let wake = Arc::new(Notify::new());
    let (tx, rx) = mpsc::channel(16);
    let candidate = Candidate { options, signer, heads, leader: None, wake: wake.clone(), outage: Outage::default() };
    tokio::spawn(candidate.run(rx));
    Handle { wake, tx }
}

struct Leader {
    conn: Conn,
    chain: ChainWriter,
}

struct Candidate {
    options: PgConnectOptions,
    signer: Arc<ArchiveSigner>,
    heads: HeadsOutside,
    leader: Option<Leader>,
    wake: Arc<Notify>,
    outage: Outage,
}

/// While the database or the object store does not answer: retries spaced out (up to
/// [`HEAD_INTERVAL`]), one warning when it starts and one notice when it ends.
#[derive(Default)]
struct Outage {
    failures: u32,
    retry_at: Option<tokio::time::Instant>,
}

impl Outage {
    fn waiting(&self) -> bool {
        self.retry_at.is_some_and(|at| tokio::time::Instant::now() < at)
    }

    fn record(&mut self, result: Result<()>) {
        match result {
            Ok(()) if self.failures > 0 => {
                tracing::info!(retries = self.failures, "the audit sequencer works again");
                *self = Outage::default();
            }
            Ok(()) => {}
            Err(e) => {
                if self.failures == 0 {
                    tracing::warn!(error = %e, "the audit sequencer cannot work now; it retries, and entries wait in the queue");
                }
                self.failures += 1;
                let pause = (POLL * 2u32.saturating_pow(self.failures.min(6))).min(HEAD_INTERVAL);
                self.retry_at = Some(tokio::time::Instant::now() + pause);
            }
        }
    }
}

impl Candidate {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut heads = tokio::time::interval(HEAD_INTERVAL);
        heads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::SignHead(reply)) => {
                        let _ = reply.send(self.integrate_and_sign().await);
                    }
                    Some(Msg::Close(reply)) => {
                        if let Err(e) = self.integrate_and_sign().await {
                            tracing::error!(error = %e, "could not sign the last audit head");
                        }
                        if let Some(leader) = self.leader.take() {
                            let _ = leader.conn.close().await;
                        }
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                },
                _ = heads.tick(), if !self.outage.waiting() => {
                    let result = self.integrate_and_sign().await;
                    self.settle(result.map(|_| ()));
                }
                _ = self.wake.notified() => self.step().await,
                _ = tokio::time::sleep(POLL) => self.step().await,
            }
        }
    }

    async fn step(&mut self) {
        if self.outage.waiting() {
            return;
        }
        let result = self.integrate().await;
        self.settle(result);
    }

    /// After a failure the role is given up (its connection may be broken; another node, or
    /// this one at the next retry, takes it from what is committed).
    fn settle(&mut self, result: Result<()>) {
        if result.is_err() {
            self.leader = None;
        }
        self.outage.record(result);
    }

    /// Becomes the sequencer when no other node is; `None` while another one is.
    async fn lead(&mut self) -> Result<Option<&mut Leader>> {
        if self.leader.is_none() {
            let mut conn = self.options.connect().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let got: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(SEQUENCER_LOCK).fetch_one(&mut conn).await?;
            if !got {
                let _ = conn.close().await;
                return Ok(None);
            }
            let chain = ChainWriter::open(&mut conn, self.signer.clone(), self.heads.clone()).await?;
            tracing::info!(entries = chain.chain.size, "this node is the audit sequencer");
            self.leader = Some(Leader { conn, chain });
        }
        Ok(self.leader.as_mut())
    }

    /// Integrates queued entries, batch by batch, until none is left.
    async fn integrate(&mut self) -> Result<()> {
        let Some(leader) = self.lead().await? else { return Ok(()) };
        loop {
            let mut tx = leader.conn.begin().await?;
            // Only the sequencer appends; a chain someone else wrote to (a migration, a restore)
            // is read again rather than trusted from memory.
            leader.chain.catch_up(&mut tx).await?;
            let before = leader.chain.chain.clone();
            let rows = sqlx::query("SELECT id, at, event FROM audit_queue ORDER BY id LIMIT $1")
                .bind(BATCH)
                .fetch_all(&mut *tx)
                .await?;
            if rows.is_empty() {
                return Ok(());
            }
            let mut ids = Vec::with_capacity(rows.len());
            let mut appended = Ok(());
            for row in &rows {
                ids.push(row.try_get::<i64, _>("id")?);
                let at: String = row.try_get("at")?;
                let event: AuditEvent = serde_json::from_str(&row.try_get::<String, _>("event")?)
                    .map_err(|e| StoreError::Database(format!("a queued audit entry does not parse: {e}")))?;
                appended = leader.chain.append_at(&mut tx, &event, &at).await;
                if appended.is_err() {
                    break;
                }
            }
            let deleted = match appended {
                Ok(()) => sqlx::query("DELETE FROM audit_queue WHERE id = ANY($1)").bind(&ids).execute(&mut *tx).await,
                Err(e) => {
                    drop(tx);
                    leader.chain.chain = before;
                    return Err(e);
                }
            };
            if let Err(e) = deleted {
                drop(tx);
                leader.chain.chain = before;
                return Err(e.into());
            }
            if let Err(e) = tx.commit().await {
                leader.chain.chain = before;
                return Err(e.into());
            }
        }
    }

    async fn integrate_and_sign(&mut self) -> Result<Option<SignedHead>> {
        self.integrate().await?;
        match self.leader.as_mut() {
            Some(leader) => leader.chain.sign_head(&mut leader.conn).await,
            None => Ok(None),
        }
    }
}
