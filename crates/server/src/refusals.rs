//! Refusals of clients that hold no credential go through the archive's [`RefusalLedger`]:
//! the first of a window per address is audited at once, the rest as one summary entry with
//! their count when the window ends (or the archive closes), so a client without a key cannot
//! grow the audit chain at will.

use crate::archive::Archive;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::refusals::{Refusal, RefusalLedger, Summary, Verdict};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One summary per address and kind of refusal at most this often.
pub const WINDOW_SECONDS: i64 = 60;
/// Addresses tracked one by one; beyond them refusals are counted together.
pub const TRACKED_ADDRESSES: usize = 10_000;

pub fn ledger() -> std::sync::Mutex<RefusalLedger> {
    std::sync::Mutex::new(RefusalLedger::new(chrono::Duration::seconds(WINDOW_SECONDS), TRACKED_ADDRESSES))
}

impl Archive {
    /// Audits `event` (the refusal itself) if it is the first of its window, and any summary due.
    pub async fn audit_refusal(
        &self,
        refusal: Refusal,
        address: IpAddr,
        event: AuditEvent,
    ) -> Result<(), cloudfilm_store::StoreError> {
        let (verdict, summary) =
            self.refusals.lock().expect("the refusal ledger").refuse(self.clock.now(), address, refusal);
        let mut events: Vec<AuditEvent> = summary.into_iter().map(summary_event).collect();
        if verdict == Verdict::Record {
            events.push(event);
        }
        if events.is_empty() { Ok(()) } else { self.repo.audit(events).await }
    }

    /// Audits the summaries of ended windows (of every window when `all`, at close).
    pub async fn flush_refusals(&self, all: bool) {
        let summaries = self.refusals.lock().expect("the refusal ledger").flush(self.clock.now(), all);
        if summaries.is_empty() {
            return;
        }
        if let Err(e) = self.repo.audit(summaries.into_iter().map(summary_event).collect()).await {
            tracing::error!(error = %e, "could not audit the summary of refused requests");
        }
    }
}

/// Audits ended windows every few seconds while the archive is open.
pub fn flush_periodically(archive: Arc<Archive>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            archive.flush_refusals(false).await;
        }
    });
}

fn summary_event(summary: Summary) -> AuditEvent {
    let from = match summary.source.address() {
        Some(_) => "this address",
        None => "addresses beyond the tracked ones",
    };
    AuditEvent::new(
        Action::SecurityAlert,
        "unauthenticated",
        summary.refusal.object,
        Outcome::Failure(format!(
            "{}: {} more refusal(s) from {from} in the {WINDOW_SECONDS} s since {}",
            summary.refusal.reason,
            summary.count,
            summary.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
    )
    .from_client(summary.source.address().map(|a| a.to_string()), None)
    .with_detail(format!("count={}", summary.count))
}
