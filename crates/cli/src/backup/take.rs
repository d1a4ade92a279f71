//! Taking a backup of the embedded archive while it runs: the sealed key ring, the index
//! snapshot, then exactly the blobs that snapshot names (an instance stored after the snapshot
//! is not in it, and its blob is not copied), the signed heads its chain reaches; the chain is
//! verified before the signed manifest is written, so a backup that exists has checked out once.

use super::{BackupManifest, FORMAT, HEADS, INDEX, MANIFEST, SEALED_RING, SIGNATURE};
use crate::{Global, cli_actor};
use anyhow::Context;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::manifest::{self, FileEntry};
use cloudfilm_server::Archive;
use cloudfilm_server::archive::DataLayout;
use cloudfilm_store::{BlobStore, StoreError, heads, migrate, snapshot};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::process::ExitCode;

pub async fn run(global: &Global, to: &Path, passphrase: &str) -> anyhow::Result<ExitCode> {
    let config = global.config()?;
    let database = config.database_url();
    let Some(index) = database.strip_prefix("sqlite://").map(std::path::PathBuf::from) else {
        return super::engines::plan(&config, to, passphrase).await;
    };
    anyhow::ensure!(index.exists(), "there is no archive at {} to back up", index.display());
    let archive = Archive::open(config.clone()).await?;
    let (ring, _) = KeyRing::load_or_create(&config.keys_path()).context("cannot load the master key ring")?;
    super::empty_private_dir(to)?;
    let mut files = Vec::new();

    // 1. The key ring, sealed.
    let sealed = cloudfilm_crypto::passphrase::seal(ring.to_json().as_bytes(), passphrase)?;
    super::write_private(&to.join(SEALED_RING), &sealed)?;
    files.push(entry(SEALED_RING, &sealed));

    // 2. The index as of now.
    let snapshot_path = to.join(INDEX);
    snapshot::take(&index, &snapshot_path).await.context("cannot snapshot the index")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&snapshot_path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(&snapshot_path)?.sync_all()?;
    files.push(hashed(&snapshot_path, INDEX)?);
    let snapshot = snapshot::open(&snapshot_path).await?;

    // 3. The blobs it names.
    let blobs = migrate::blobs_of(&snapshot).await?;
    let progress = bar(blobs.len() as u64);
    let store = archive.blobs.store().clone();
    for (id, _) in &blobs {
        let (store, id, to) = (store.clone(), id.clone(), to.to_owned());
        files.push(tokio::task::spawn_blocking(move || copy_out(store.as_ref(), &id, &to)).await??);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let dirs: std::collections::BTreeSet<_> =
        files.iter().filter_map(|f| Path::new(&f.path).parent().map(|p| to.join(p))).collect();
    for dir in dirs.iter().chain([&to.join("blobs"), &to.to_path_buf()]) {
        if dir.exists() {
            super::sync_dir(dir)?;
        }
    }

    // 4. The signed heads the snapshot's chain reaches (read after the snapshot: a head is
    // kept outside before the index records it, so every head the snapshot keeps is here).
    let (instances, studies, entries) = snapshot::counts(&snapshot).await?;
    let reached: Vec<_> = heads::read_all(&DataLayout::of(&config.data).audit_heads)
        .context("the signed heads file cannot be read")?
        .into_iter()
        .filter(|h| h.tree_size <= entries)
        .collect();
    let mut lines = String::new();
    for head in &reached {
        lines.push_str(&serde_json::to_string(head).expect("a head serializes"));
        lines.push('\n');
    }
    super::write_private(&to.join(HEADS), lines.as_bytes())?;
    files.push(entry(HEADS, lines.as_bytes()));

    // 5. The chain of the snapshot, checked now.
    let public_key = archive.signer.public_key();
    let report = super::check::chain(&snapshot, &to.join(HEADS), &public_key)
        .await
        .context("the snapshot's audit chain does not verify; no backup was written")?;
    snapshot.close().await;

    // 6. The signed manifest, last: a backup without one is unfinished.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = BackupManifest {
        format: FORMAT.into(),
        created_at: chrono::Utc::now().to_rfc3339(),
        cloudfilm: env!("CARGO_PKG_VERSION").into(),
        public_key: hex::encode(public_key),
        instances,
        studies,
        audit_entries: report.entries,
        audit_root: report.root.clone(),
        files,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    super::write_private(&to.join(SIGNATURE), &manifest::signature_file(&archive.signer, &bytes))?;
    super::write_private(&to.join(MANIFEST), &bytes)?;
    super::sync_dir(to)?;

    let detail = format!("backup of {instances} instances, {studies} studies, {} audit entries", report.entries);
    let event = AuditEvent::new(Action::Export, cli_actor(), "archive", Outcome::Success).with_detail(detail.clone());
    archive.repo.audit(vec![event]).await?;
    archive.close().await;
    println!("{detail}: {} files written, signed by key {}", manifest.files.len(), manifest.public_key);
    Ok(ExitCode::SUCCESS)
}

fn entry(path: &str, bytes: &[u8]) -> FileEntry {
    FileEntry { path: path.into(), size: bytes.len() as u64, sha256: cloudfilm_crypto::sha256_hex(bytes) }
}

fn hashed(path: &Path, name: &str) -> anyhow::Result<FileEntry> {
    let (size, sha256) = super::copy_hashing(&mut std::fs::File::open(path)?, &mut std::io::sink())?;
    Ok(FileEntry { path: name.into(), size, sha256 })
}

/// Copies one blob's ciphertext into the backup. The server may move a new blob into place
/// meanwhile: one missing at the first look is looked for once more.
fn copy_out(store: &dyn BlobStore, id: &str, to: &Path) -> anyhow::Result<FileEntry> {
    let name = super::blob_path(id).with_context(|| format!("the index names a blob {id:?} that is not a blob id"))?;
    let mut source = match store.open_sync(id) {
        Err(StoreError::NotFound) => store.open_sync(id),
        other => other,
    }
    .with_context(|| format!("blob {id}, named by the index, cannot be read from {}", store.describe()))?;
    let path = to.join(&name);
    std::fs::create_dir_all(path.parent().expect("blobs/ab/id has a parent"))?;
    let mut out = super::create_private(&path)?;
    let (size, sha256) = super::copy_hashing(&mut source, &mut out).with_context(|| format!("copying blob {id}"))?;
    out.sync_all()?;
    Ok(FileEntry { path: name, size, sha256 })
}

fn bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({eta})").expect("a valid template"));
    bar.set_message("blobs");
    bar
}
