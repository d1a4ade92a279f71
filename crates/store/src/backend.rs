//! A database behind the index: the reads of every area, and transactions in which the
//! service layer's work runs with its audit entries.

use crate::error::Result;
use crate::reads::Reads;
use crate::tx::Tx;
use async_trait::async_trait;
use cloudfilm_audit::{AuditEvent, SignedHead};
use futures::future::BoxFuture;
use std::any::Any;

/// What a piece of work answers: its value (of the work's own type) and the audit entries
/// that commit with its effect.
pub struct Done {
    pub value: Box<dyn Any + Send>,
    pub audit: Vec<AuditEvent>,
}

/// The connection pool and the write queue as they stand (what operators watch).
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolState {
    /// Connections open.
    pub size: u32,
    /// Of those, connections not in use.
    pub idle: u32,
    /// Transactions waiting for the single writer (SQLite; none where every connection writes).
    pub writer_queue: Option<usize>,
}

/// A piece of work for one transaction.
pub type Work = Box<dyn for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<Done>> + Send>;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// What the index answers, from this backend.
    fn reads(&self) -> &(dyn Reads + 'static);

    /// Runs the work in one transaction and appends its audit entries to the chain in that same
    /// transaction; answers after the commit is durable. A work that fails leaves nothing.
    async fn transact(&self, work: Work) -> Result<Box<dyn Any + Send>>;

    /// Signs a head over the log as it stands, and keeps it outside the database and in it;
    /// none while the log no longer extends the last head signed.
    async fn sign_audit_head(&self) -> Result<Option<SignedHead>>;

    /// Waits (at most `within`) until every committed audit entry is in the chain.
    async fn settle_audit(&self, within: std::time::Duration) -> Result<()>;

    /// Whether the database answers.
    async fn check(&self) -> Result<()>;

    /// The connection pool and the write queue as they stand.
    fn pool_state(&self) -> PoolState;

    /// Signs a last head and stops.
    async fn close(&self);
}
