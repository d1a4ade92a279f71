//! The audit chain as a writer extends it: the hash chain and the RFC 6962 frontier of what
//! is committed, entries appended in order inside the transaction of their effects, and
//! signed heads kept (S26). The same SQL on every backend; one writer at a time holds it
//! (SQLite's single writer, PostgreSQL's sequencer).

use super::Conn;
use super::signed_heads::SignedHeads;
use crate::error::{Result, StoreError};
use crate::heads::HeadsOutside;
use cloudfilm_audit::{AuditEvent, MerkleFrontier, SignedHead, chain_hash, leaf_hash};
use cloudfilm_crypto::signing::ArchiveSigner;
use sqlx::{Connection, Row};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Chain {
    pub size: u64,
    link: [u8; 32],
    frontier: MerkleFrontier,
}

pub struct ChainWriter {
    pub chain: Chain,
    heads: SignedHeads,
    signer: Arc<ArchiveSigner>,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ChainWriter {
    /// Loads the kept heads and replays the committed chain.
    pub async fn open(conn: &mut Conn, signer: Arc<ArchiveSigner>, heads: HeadsOutside) -> Result<ChainWriter> {
        let heads = SignedHeads::load(&mut *conn, heads).await?;
        let mut writer = ChainWriter { chain: Chain::default(), heads, signer };
        writer.catch_up(conn).await?;
        Ok(writer)
    }

    /// Appends entries stamped now (the single writer; the sequencer appends queued ones).
    #[allow(dead_code)]
    pub async fn append(&mut self, conn: &mut Conn, events: &[AuditEvent]) -> Result<()> {
        let at = now();
        for event in events {
            self.append_at(conn, event, &at).await?;
        }
        Ok(())
    }

    /// Appends one entry with the time it happened.
    pub async fn append_at(&mut self, conn: &mut Conn, event: &AuditEvent, at: &str) -> Result<()> {
        let seq = self.chain.size + 1;
        let canonical = event.canonical(seq, at);
        let leaf = leaf_hash(canonical.as_bytes());
        let link = chain_hash(&self.chain.link, &leaf);
        sqlx::query("INSERT INTO audit_log (seq, canonical, leaf, chain) VALUES ($1, $2, $3, $4)")
            .bind(seq as i64)
            .bind(&canonical)
            .bind(&leaf[..])
            .bind(&link[..])
            .execute(&mut *conn)
            .await?;
        self.chain.size = seq;
        self.chain.link = link;
        self.chain.frontier.push(leaf);
        Ok(())
    }

    /// Brings the in-memory chain tail up to the database's (another process may have
    /// appended, e.g. `cloudfilm import` beside a running server).
    pub async fn catch_up(&mut self, conn: &mut Conn) -> Result<()> {
        let tail: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(&mut *conn).await?;
        let tail = tail.unwrap_or(0) as u64;
        if tail == self.chain.size {
            self.heads.replayed_up_to(tail);
            return Ok(());
        }
        if tail < self.chain.size {
            self.chain = Chain::default();
        }
        let rows = sqlx::query("SELECT seq, leaf, chain FROM audit_log WHERE seq > $1 ORDER BY seq")
            .bind(self.chain.size as i64)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let leaf: Vec<u8> = row.try_get("leaf")?;
            let link: Vec<u8> = row.try_get("chain")?;
            let leaf: [u8; 32] = leaf.try_into().map_err(|_| StoreError::Integrity)?;
            let link: [u8; 32] = link.try_into().map_err(|_| StoreError::Integrity)?;
            let expected = chain_hash(&self.chain.link, &leaf);
            self.chain.frontier.push(leaf);
            self.chain.link = link;
            self.chain.size = row.try_get::<i64, _>("seq")? as u64;
            self.heads.observe(self.chain.size, &link, &expected, &self.chain.frontier);
        }
        self.heads.replayed_up_to(self.chain.size);
        Ok(())
    }

    /// Signs a head over what is committed, unless nothing was added or the chain no longer
    /// extends the last head signed.
    pub async fn sign_head(&mut self, conn: &mut Conn) -> Result<Option<SignedHead>> {
        // Heads are signed over what is committed.
        if conn.ping().await.is_ok() {
            self.catch_up(conn).await?;
        }
        if self.chain.size == 0 || self.chain.size <= self.heads.last_size() || !self.heads.may_sign() {
            return Ok(None);
        }
        let signer = self.signer.clone();
        let head = SignedHead::sign(self.chain.size, &self.chain.frontier.root(), &self.chain.link, &now(), |m| {
            signer.sign(m)
        });
        self.heads.keep(conn, head.clone()).await?;
        Ok(Some(head))
    }
}
