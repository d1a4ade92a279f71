//! `cloudfilm migrate --to-database postgres://... --to-blobs s3://...`: copies an embedded
//! archive (SQLite + a blob directory) to the cluster's stores. Blobs first, each checked by
//! its hash on the target, so the target index never names a missing blob; then the index,
//! table by table; then every table's rows are counted and the audit chain verified on the
//! target. Run again after a kill, it resumes: nothing is copied twice.

use crate::Global;
use anyhow::Context;
use clap::Args;
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_server::archive::DataLayout;
use cloudfilm_store::blobs::BlobsLocation;
use cloudfilm_store::sealed::Sealer;
use cloudfilm_store::{HeadsOutside, Index, PgRepository, migrate};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct MigrateArgs {
    /// The PostgreSQL index to copy into (`postgres://[user@]host[:port]/dbname`).
    #[arg(long, value_name = "URL")]
    to_database: String,
    /// The object store to copy the encrypted blobs into (`s3://BUCKET?endpoint=...&region=...`).
    #[arg(long, value_name = "URL")]
    to_blobs: String,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})").expect("a valid template"));
    bar.set_message(what.to_owned());
    bar
}

pub async fn run(global: &Global, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let config = global.config()?;
    let source_db = config.database_url();
    let source_path = source_db
        .strip_prefix("sqlite://")
        .context("migrate copies an embedded archive: its --database must be sqlite://")?;
    if !args.to_database.starts_with("postgres://") && !args.to_database.starts_with("postgresql://") {
        anyhow::bail!("--to-database must be a postgres:// URL");
    }
    let (ring, _) = KeyRing::load_or_create(&config.keys_path()).context("cannot load the master key ring")?;
    let ring = Arc::new(ring);
    let sealer = Arc::new(Sealer::new(&ring)?);
    let signer = Arc::new(ArchiveSigner::new(&ring));
    let (from_blobs, _) = BlobsLocation::parse(&config.blobs_url())?.open(&config.data, ring.clone()).await?;
    let (to_blobs, _) = BlobsLocation::parse(&args.to_blobs)?.without_cache().open(&config.data, ring.clone()).await?;
    let place = cloudfilm_store::postgres::describe(&args.to_database);
    let heads_file = DataLayout::of(&config.data).audit_heads;
    let heads = HeadsOutside::for_index(&args.to_database, heads_file.clone(), to_blobs.store().clone());
    // Opening the target creates its schema.
    let target = PgRepository::open(&args.to_database, sealer.clone(), signer.clone(), heads.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the target index ({place}): {e}"))?;
    cloudfilm_store::backend::Backend::close(&target).await;
    let from = migrate::open_source(source_path)
        .await
        .with_context(|| format!("cannot open the source index {source_path}"))?;
    let to = migrate::open_target(&args.to_database).await?;

    // 1. Blobs, each checked on the target by its hash.
    let blobs = migrate::blobs_of(&from).await?;
    let progress = bar(blobs.len() as u64, "blobs");
    let mut copied = 0;
    for (id, sha256) in &blobs {
        copied += usize::from(migrate::copy_blob(from_blobs.store().as_ref(), to_blobs.store().as_ref(), id).await?);
        let (target, id, sha256) = (to_blobs.clone(), id.clone(), sha256.clone());
        tokio::task::spawn_blocking(move || target.read_verified(&id, &sha256))
            .await?
            .with_context(|| "a copied blob does not match its recorded hash on the target")?;
        progress.inc(1);
    }
    progress.finish();

    // 2. The index, table by table.
    for table in migrate::TABLES {
        let (rows, _) = migrate::counts(&from, &to, table).await?;
        let progress = bar(rows as u64, table);
        migrate::copy_table(&from, &to, table, |n| progress.set_position(n)).await?;
        progress.finish();
    }

    // 3. Everything there: row counts, and the chain with its signed heads.
    for table in migrate::TABLES {
        let (source_rows, target_rows) = migrate::counts(&from, &to, table).await?;
        anyhow::ensure!(source_rows == target_rows, "{table}: {source_rows} rows here, {target_rows} on the target");
    }
    // 4. The signed heads, into the target's object store (where the cluster keeps them out of
    // a rollback's reach): those of this node's file and those the index keeps.
    let mut source_heads = HeadsOutside::file(heads_file).read().await?;
    source_heads.extend(migrate::kept_heads(&from).await?);
    for head in &source_heads {
        let json = serde_json::to_vec(head).expect("a head serializes");
        to_blobs.store().keep_audit_head(head.tree_size, &json).await?;
    }
    let target = PgRepository::open(&args.to_database, sealer.clone(), signer.clone(), heads.clone()).await?;
    let index = Index::new(Arc::new(target), sealer);
    let mut entries = Vec::new();
    loop {
        let page = index.audit_entries(entries.len() as u64, 10_000).await?;
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    let kept = index.kept_audit_heads().await?;
    let outside = heads.read().await?;
    let report = cloudfilm_audit::merge_heads(&outside, &kept, &signer.public_key(), true)
        .and_then(|heads| cloudfilm_audit::verify_log(entries, &heads, &signer.public_key()))
        .map_err(|e| anyhow::anyhow!("the audit chain on the target does not verify: {e}"))?;
    index.close().await;
    println!(
        "migrated: {} blobs ({} copied now, every hash checked on the target), {} tables, audit chain of {} entries verified on {place}",
        blobs.len(),
        copied,
        migrate::TABLES.len(),
        report.entries
    );
    Ok(ExitCode::SUCCESS)
}
