//! Backups of an archive on PostgreSQL and an object store: their engines' own tools copy
//! them consistently (a dump, a bucket copy); this command seals the key ring, says what to
//! run, and `backup verify --engines` checks a restored copy the way a backup directory is
//! checked: every blob against its hash, the audit chain against its signed heads.

use super::SEALED_RING;
use anyhow::Context;
use cloudfilm_crypto::KeyRing;
use cloudfilm_server::{Archive, Config};
use std::path::Path;
use std::process::ExitCode;

pub async fn plan(config: &Config, to: &Path, passphrase: &str) -> anyhow::Result<ExitCode> {
    let (ring, _) = KeyRing::load_or_create(&config.keys_path()).context("cannot load the master key ring")?;
    super::empty_private_dir(to)?;
    let sealed = cloudfilm_crypto::passphrase::seal(ring.to_json().as_bytes(), passphrase)?;
    super::write_private(&to.join(SEALED_RING), &sealed)?;
    let database = cloudfilm_server::config::redact_password(&config.database_url());
    let blobs = cloudfilm_store::BlobsLocation::parse(&config.blobs_url())?.describe();
    let dir = to.display();
    println!(
        "This archive's index is in PostgreSQL and its blobs in {blobs}: their own tools copy them.\n\
         Done now: the key ring, sealed under the backup passphrase, in {dir}/{SEALED_RING}.\n\
         To do, in this order:\n  \
         1. the index: pg_dump --format=custom --file={dir}/index.pgdump '{database}'\n  \
         2. the blobs, after the dump (objects are never rewritten, so a copy made after the dump holds\n     \
            every object it names): the bucket's replication to a second site, or a copy of the bucket\n     \
            with an S3 tool (the objects are ciphertext; the sealed ring is what reads them).\n\
         To check a copy: pg_restore it into an empty database, make the bucket copy reachable, then\n  \
         cloudfilm --database postgres://…/restored --blobs s3://copy?… --keys RING backup verify --engines\n\
         (RING: `cloudfilm backup unseal {dir} --to RING`, or the archive's own); it reads every blob back\n\
         against its hash and verifies the audit chain against the signed heads kept in the bucket."
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks the archive the configuration names (a restored dump and bucket copy): every
/// instance's blob decrypts to its recorded SHA-256, and the audit chain verifies.
pub async fn check(config: Config) -> anyhow::Result<ExitCode> {
    let url = config.database_url();
    anyhow::ensure!(
        !url.starts_with("sqlite://"),
        "--engines checks an archive on PostgreSQL; an embedded one is backed up to a directory (`backup verify DIR`)"
    );
    let archive = Archive::open(config).await?;
    let outcome = async {
        let pool = cloudfilm_store::migrate::open_target(&url).await?;
        let blobs: Vec<(String, String)> =
            sqlx::query_as("SELECT blob_id, sha256 FROM instances ORDER BY pk").fetch_all(&pool).await?;
        pool.close().await;
        for (id, sha256) in &blobs {
            let (reader, blob, sum) = (archive.blobs.clone(), id.clone(), sha256.clone());
            tokio::task::spawn_blocking(move || reader.read_verified(&blob, &sum))
                .await?
                .with_context(|| format!("blob {id} does not read back to its recorded content"))?;
        }
        let report = crate::audit::verify_chain(&archive).await?;
        Ok::<_, anyhow::Error>((blobs.len(), report))
    }
    .await;
    archive.close().await;
    match outcome {
        Ok((blobs, report)) => {
            println!(
                "copy verified: {blobs} blobs read back against their hashes, audit chain of {} entries",
                report.entries
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("copy NOT VERIFIED: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}
