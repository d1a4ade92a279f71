//! `cloudfilm backup verify DIR`: a backup checked without restoring it, and the check a
//! restore starts with. Each failure names the file that does not check out.

use super::{BackupManifest, FORMAT, HEADS, INDEX, MANIFEST, SEALED_RING, SIGNATURE};
use anyhow::{Context, bail};
use cloudfilm_audit::{Verifier, VerifyReport, merge_heads};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::manifest::{Digests, check_files, check_signature};
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_store::{heads, migrate, snapshot};
use sqlx::sqlite::SqlitePool;
use std::path::Path;
use std::process::ExitCode;

/// A backup that checked out.
pub struct Checked {
    pub manifest: BackupManifest,
    /// The key ring, when the passphrase was given.
    pub ring: Option<KeyRing>,
    /// Every blob the index names, with its content's SHA-256.
    pub blobs: Vec<(String, String)>,
}

pub async fn run(dir: &Path, public_key: Option<[u8; 32]>, passphrase: Option<&str>) -> anyhow::Result<ExitCode> {
    match check(dir, public_key, passphrase).await {
        Ok(checked) => {
            let m = &checked.manifest;
            println!(
                "backup verified: {} files, {} instances of {} studies, audit chain of {} entries (root {}), signed by key {}{}",
                m.files.len(),
                m.instances,
                m.studies,
                m.audit_entries,
                m.audit_root,
                m.public_key,
                if public_key.is_some() { " (the key given)" } else { " (the key the backup names)" },
            );
            if checked.ring.is_none() {
                println!("the sealed key ring was not opened (no passphrase given)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("backup NOT VERIFIED: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Checks the signature, every file, the blobs the index names and the audit chain; with the
/// passphrase, that the sealed ring holds the key the backup is signed with.
pub async fn check(dir: &Path, public_key: Option<[u8; 32]>, passphrase: Option<&str>) -> anyhow::Result<Checked> {
    let read = |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("{name} cannot be read"));
    let (bytes, signature) = (read(MANIFEST)?, read(SIGNATURE)?);
    let manifest: BackupManifest =
        serde_json::from_slice(&bytes).with_context(|| format!("{MANIFEST} is not a backup manifest"))?;
    anyhow::ensure!(manifest.format == FORMAT, "{MANIFEST}: unknown format {:?}", manifest.format);
    let named: [u8; 32] = hex::decode(&manifest.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .with_context(|| format!("{MANIFEST}: the public key is not 32 bytes of hex"))?;
    let key = public_key.unwrap_or(named);
    check_signature(&bytes, &signature, &key).with_context(|| format!("{MANIFEST} and {SIGNATURE}"))?;
    anyhow::ensure!(key == named, "{MANIFEST} names another signing key than the one given");

    let digests = tokio::task::spawn_blocking({
        let dir = dir.to_owned();
        move || digests(&dir)
    })
    .await??;
    check_files(&manifest.files, &digests)?;

    let index = snapshot::open(&dir.join(INDEX)).await.with_context(|| format!("{INDEX} cannot be opened"))?;
    let outcome = async {
        let blobs = migrate::blobs_of(&index).await.with_context(|| format!("{INDEX} cannot be read"))?;
        for (id, _) in &blobs {
            let path =
                super::blob_path(id).with_context(|| format!("{INDEX} names a blob {id:?} that is not an id"))?;
            anyhow::ensure!(digests.contains_key(&path), "{INDEX} names blob {id}, which the backup lacks ({path})");
        }
        let report = chain(&index, &dir.join(HEADS), &key).await?;
        anyhow::ensure!(
            report.entries == manifest.audit_entries && report.root == manifest.audit_root,
            "{INDEX}: its audit chain ({} entries, root {}) is not the one {MANIFEST} signs",
            report.entries,
            report.root
        );
        Ok(blobs)
    }
    .await;
    index.close().await;
    let blobs = outcome?;

    let ring = match passphrase {
        None => None,
        Some(passphrase) => {
            let ring = open_ring(&dir.join(SEALED_RING), passphrase)?;
            if ArchiveSigner::new(&ring).public_key() != key {
                bail!("{SEALED_RING} holds the key ring of another archive than the one that signed {MANIFEST}");
            }
            Some(ring)
        }
    };
    Ok(Checked { manifest, ring, blobs })
}

/// The key ring a sealed file holds.
pub fn open_ring(sealed: &Path, passphrase: &str) -> anyhow::Result<KeyRing> {
    let sealed = std::fs::read(sealed).with_context(|| format!("{SEALED_RING} cannot be read"))?;
    let json = cloudfilm_crypto::passphrase::open(&sealed, passphrase).map_err(|e| match e {
        cloudfilm_crypto::CryptoError::Integrity => {
            anyhow::anyhow!("{SEALED_RING}: wrong passphrase (or the file was altered)")
        }
        other => anyhow::anyhow!("{SEALED_RING}: {other}"),
    })?;
    let text = std::str::from_utf8(&json).with_context(|| format!("{SEALED_RING} holds no key ring"))?;
    KeyRing::from_json(text).with_context(|| format!("{SEALED_RING} holds no key ring"))
}

/// The audit chain of an index against the signed heads of a heads file and those the index
/// keeps (each kept head must be in the file too).
pub async fn chain(index: &SqlitePool, heads_file: &Path, public_key: &[u8; 32]) -> anyhow::Result<VerifyReport> {
    let file = heads::read_all(heads_file).with_context(|| format!("{HEADS} cannot be read"))?;
    let kept = migrate::kept_heads(index).await.with_context(|| format!("{INDEX}: its signed heads cannot be read"))?;
    let heads = merge_heads(&file, &kept, public_key, true).with_context(|| format!("{HEADS} and {INDEX}"))?;
    let mut verifier = Verifier::new(&heads, public_key).with_context(|| HEADS.to_string())?;
    let mut after = 0;
    loop {
        let page = snapshot::audit_entries(index, after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.push(entry).with_context(|| format!("{INDEX}: the audit chain"))?;
        }
    }
    verifier.finish().with_context(|| format!("{INDEX}: the audit chain"))
}

/// The size and SHA-256 of every file of the backup but the manifest and its signature, by
/// its path inside the backup.
fn digests(dir: &Path) -> anyhow::Result<Digests> {
    let mut out = Digests::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.context("the backup directory cannot be listed")?;
        if entry.file_type().is_dir() {
            continue;
        }
        let relative = entry.path().strip_prefix(dir).expect("under the walked directory");
        let name = relative.to_str().with_context(|| format!("{} is not a UTF-8 name", relative.display()))?;
        if name == MANIFEST || name == SIGNATURE {
            continue;
        }
        let mut file = std::fs::File::open(entry.path()).with_context(|| format!("{name} cannot be read"))?;
        let digest =
            super::copy_hashing(&mut file, &mut std::io::sink()).with_context(|| format!("{name} cannot be read"))?;
        out.insert(name.to_owned(), digest);
    }
    Ok(out)
}
