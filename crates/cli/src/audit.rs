//! `cloudfilm audit verify`.

use crate::{Global, cli_actor};
use clap::Subcommand;
use cloudfilm_audit::{Action, AuditEvent, Outcome, Verifier, merge_heads};
use cloudfilm_server::Archive;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain and the signed heads; exit 0 when intact, 1 naming the first broken entry.
    Verify,
    /// Print the entries (their canonical JSON, one per line; no personal data) after a sequence number.
    Export {
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

/// How long a command waits for entries committed but not yet in the chain (PostgreSQL's
/// sequencer integrates them within a fraction of a second).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(global: &Global, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify => verify(global).await,
        AuditCommand::Export { after } => export(global, after).await,
    }
}

async fn export(global: &Global, mut after: u64) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(global.config()?).await?;
    archive.repo.settle_audit(SETTLE).await?;
    let event = AuditEvent::new(Action::AuditLogUsed, cli_actor(), "audit-log", Outcome::Success)
        .with_detail(format!("audit export after entry {after}"));
    // Reading is recorded first; a log that cannot take the record (its disk is full) is
    // still readable by the operator, who is told.
    if let Err(e) = archive.repo.audit(vec![event]).await {
        eprintln!("warning: this reading of the audit log could not be recorded: {e}");
    }
    let mut out = std::io::stdout().lock();
    loop {
        let page = archive.repo.audit_entries(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            use std::io::Write;
            writeln!(out, "{}", entry.canonical)?;
        }
    }
    archive.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn verify(global: &Global) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(global.config()?).await?;
    archive.repo.settle_audit(SETTLE).await?;
    let outcome = verify_chain(&archive).await;
    let (code, event) = match &outcome {
        Ok(report) => {
            println!(
                "audit chain intact: {} entries, {} signed head(s) checked, root {}",
                report.entries, report.heads_checked, report.root
            );
            (ExitCode::SUCCESS, AuditEvent::new(Action::AuditLogUsed, cli_actor(), "audit-log", Outcome::Success))
        }
        Err(e) => {
            println!("audit chain BROKEN: {e}");
            let failure = Outcome::Failure(e.to_string());
            (ExitCode::FAILURE, AuditEvent::new(Action::AuditLogUsed, cli_actor(), "audit-log", failure))
        }
    };
    archive.repo.audit(vec![event.with_detail("audit verify")]).await?;
    archive.close().await;
    Ok(code)
}

/// The archive's whole chain against its signed heads (those kept outside the index and those
/// it keeps; every kept head must be outside too).
pub(crate) async fn verify_chain(archive: &Archive) -> anyhow::Result<cloudfilm_audit::VerifyReport> {
    let outside = archive.heads.read().await?;
    let kept = archive.repo.kept_audit_heads().await?;
    let public_key = archive.signer.public_key();
    let heads = merge_heads(&outside, &kept, &public_key, true)?;
    let mut verifier = Verifier::new(&heads, &public_key)?;
    let mut after = 0;
    loop {
        let page = archive.repo.audit_entries(after, 10_000).await.map_err(|e| anyhow::anyhow!(e))?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.push(entry)?;
        }
    }
    Ok(verifier.finish()?)
}
