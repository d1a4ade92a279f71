//! `cloudfilm restore --from DIR`: a checked backup brought back into an empty data directory.
//! The backup is verified first (with the passphrase, so the ring is known to be the
//! archive's); every blob goes into the blob store the configuration names and is read back,
//! decrypted, against its recorded SHA-256; then the restored archive's audit chain is verified
//! as `audit verify` does and the restore itself is recorded in it.

use super::{HEADS, INDEX};
use crate::{Global, cli_actor};
use anyhow::Context;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_server::Archive;
use cloudfilm_server::archive::DataLayout;
use cloudfilm_store::BlobsLocation;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(global: &Global, from: &Path, passphrase: &str) -> anyhow::Result<ExitCode> {
    let config = global.config()?;
    let database = config.database_url();
    let index = database.strip_prefix("sqlite://").map(std::path::PathBuf::from).context(
        "restore brings back an embedded archive: --database must be sqlite:// (PostgreSQL restores with pg_restore)",
    )?;
    let keys = config.keys_path();
    let heads = DataLayout::of(&config.data).audit_heads;
    for (what, path) in [("index", &index), ("key ring", &keys), ("heads file", &heads)] {
        anyhow::ensure!(!path.exists(), "restore only fills an empty archive: the {what} {} exists", path.display());
    }
    super::empty_private_dir(&config.data)?;

    let mut checked = super::check::check(from, None, Some(passphrase))
        .await
        .with_context(|| format!("the backup in {} does not verify", from.display()))?;
    let ring = Arc::new(checked.ring.take().expect("the passphrase was given"));
    fill(&config, from, &checked, ring, (&index, &keys, &heads)).await.with_context(|| {
        format!("the restore stopped halfway: remove {} before trying again", config.data.display())
    })?;

    let archive = Archive::open(config).await?;
    let report = crate::audit::verify_chain(&archive).await.context("the restored audit chain does not verify")?;
    let m = &checked.manifest;
    let detail = format!(
        "restored from a backup of {} ({} instances, {} audit entries)",
        m.created_at, m.instances, m.audit_entries
    );
    archive
        .repo
        .audit(vec![
            AuditEvent::new(Action::Import, cli_actor(), "archive", Outcome::Success).with_detail(detail.clone()),
        ])
        .await?;
    archive.close().await;
    println!("{detail}: every blob read back against its hash, audit chain of {} entries verified", report.entries);
    Ok(ExitCode::SUCCESS)
}

/// Writes the ring, the index and the heads, then every blob into the configured store, each
/// read back and decrypted against its hash.
async fn fill(
    config: &cloudfilm_server::Config,
    from: &Path,
    checked: &super::check::Checked,
    ring: Arc<cloudfilm_crypto::KeyRing>,
    (index, keys, heads): (&Path, &Path, &Path),
) -> anyhow::Result<()> {
    ring.save_new(keys).with_context(|| format!("cannot write the key ring to {}", keys.display()))?;
    copy_synced(&from.join(INDEX), index)?;
    copy_synced(&from.join(HEADS), heads)?;
    let (blobs, _) = BlobsLocation::parse(&config.blobs_url())?.without_cache().open(&config.data, ring).await?;
    for (id, sha256) in &checked.blobs {
        let source = from.join(super::blob_path(id).expect("checked ids"));
        let staged = blobs.store().staging().path(id);
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut out = std::fs::File::create(&staged)?;
            super::copy_hashing(&mut std::fs::File::open(&source)?, &mut out)?;
            out.sync_all()?;
            Ok(())
        })
        .await??;
        blobs.store().put(std::slice::from_ref(id)).await?;
        blobs.store().settle(id).await?;
        let (reader, blob, sum) = (blobs.clone(), id.clone(), sha256.clone());
        tokio::task::spawn_blocking(move || reader.read_verified(&blob, &sum))
            .await?
            .with_context(|| format!("restored blob {id} does not decrypt to its recorded content"))?;
    }
    // Dropped here: the archive opened next takes the blob store's lock itself.
    drop(blobs);
    Ok(())
}

fn copy_synced(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut out = super::create_private(to).with_context(|| format!("{}", to.display()))?;
    super::copy_hashing(&mut std::fs::File::open(from)?, &mut out)?;
    out.sync_all()?;
    super::sync_dir(to.parent().unwrap_or(Path::new(".")))?;
    Ok(())
}
