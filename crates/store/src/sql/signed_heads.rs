//! The archive's memory of its signed audit heads: each head goes to the heads file and to the
//! database, and no head is signed over a chain that no longer extends the last one signed
//! (a rewrite with recomputed hashes, a rolled-back or emptied log), whichever copy survived.

use super::{Conn, Db};
use crate::error::{Result, StoreError};
use crate::heads::HeadsOutside;
use cloudfilm_audit::{MerkleFrontier, SignedHead};

pub(super) struct SignedHeads {
    outside: HeadsOutside,
    last: Option<SignedHead>,
    /// Why the chain no longer extends the last signed head, once seen.
    broken: Option<String>,
    refusal_logged: bool,
}

impl SignedHeads {
    /// The heads kept outside and inside the database; the last of either is the one to
    /// extend. An object store that does not answer is an error (retried later): signing
    /// without its heads could sign over a rolled-back index.
    pub(super) async fn load(conn: &mut Conn, outside: HeadsOutside) -> Result<SignedHeads> {
        let out = match outside.read().await {
            Ok(heads) => heads,
            Err(e @ StoreError::Unavailable(_)) => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "the signed heads kept outside the database cannot be read");
                Vec::new()
            }
        };
        let kept = kept_heads(&mut *conn).await?;
        let lost = kept.iter().filter(|h| !out.contains(h)).count();
        if lost > 0 {
            tracing::error!(
                lost,
                "the signed heads kept outside the database lack heads the database keeps (deleted or cut short); `cloudfilm audit verify` names them"
            );
        }
        let last = out.into_iter().chain(kept).max_by_key(|h| h.tree_size);
        Ok(SignedHeads { outside, last, broken: None, refusal_logged: false })
    }

    pub(super) fn last_size(&self) -> u64 {
        self.last.as_ref().map_or(0, |h| h.tree_size)
    }

    /// Called for every entry replayed from the database, in order, with the link as stored
    /// and the link recomputed from the entries before it.
    pub(super) fn observe(
        &mut self,
        seq: u64,
        stored_link: &[u8; 32],
        expected_link: &[u8; 32],
        frontier: &MerkleFrontier,
    ) {
        if self.broken.is_some() {
            return;
        }
        if stored_link != expected_link {
            self.broken = Some(format!("entry {seq} does not link to the entry before it"));
            return;
        }
        if let Some(head) = &self.last
            && head.tree_size == seq
            && (hex::encode(frontier.root()) != head.root || hex::encode(stored_link) != head.chain)
        {
            self.broken = Some(format!("entries 1..={seq} no longer match the signed head of {}", head.at));
        }
    }

    /// After a replay: a log shorter than the last signed head was truncated or rolled back.
    pub(super) fn replayed_up_to(&mut self, size: u64) {
        if self.broken.is_none() && size < self.last_size() {
            self.broken = Some(format!(
                "the log holds {size} entries, fewer than the {} of the last signed head",
                self.last_size()
            ));
        }
    }

    /// Whether a new head may be signed; says once why not.
    pub(super) fn may_sign(&mut self) -> bool {
        let Some(reason) = &self.broken else { return true };
        if !self.refusal_logged {
            tracing::error!(
                reason = %reason,
                "refusing to sign audit heads: the chain no longer extends the last signed head; run `cloudfilm audit verify`"
            );
            self.refusal_logged = true;
        }
        false
    }

    /// Keeps a new head: first outside, then in the database (copies outside behind the
    /// database are what `audit verify` reports as lost, never the other way round).
    pub(super) async fn keep(&mut self, conn: &mut Conn, head: SignedHead) -> Result<()> {
        self.outside.keep(&head).await?;
        sqlx::query("INSERT INTO audit_heads (tree_size, head) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(head.tree_size as i64)
            .bind(serde_json::to_string(&head).expect("a head serializes"))
            .execute(conn)
            .await?;
        self.last = Some(head);
        Ok(())
    }
}

/// The heads the database keeps, by size.
pub(super) async fn kept_heads<'e>(db: impl sqlx::Executor<'e, Database = Db>) -> Result<Vec<SignedHead>> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT head FROM audit_heads ORDER BY tree_size").fetch_all(db).await?;
    rows.iter().map(|r| serde_json::from_str(r).map_err(|_| StoreError::Integrity)).collect()
}

/// The newest head the database keeps.
pub(super) async fn newest_head<'e>(db: impl sqlx::Executor<'e, Database = Db>) -> Result<Option<SignedHead>> {
    let row: Option<String> =
        sqlx::query_scalar("SELECT head FROM audit_heads ORDER BY tree_size DESC LIMIT 1").fetch_optional(db).await?;
    row.map(|r| serde_json::from_str(&r).map_err(|_| StoreError::Integrity)).transpose()
}
