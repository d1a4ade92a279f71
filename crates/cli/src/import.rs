//! `cloudfilm import --org CODE DIR`: every DICOM file under DIR, several at a time, through
//! the same pipeline as STOW-RS, with a progress bar and a summary.

use crate::{Global, cli_actor};
use anyhow::Context;
use clap::Args;
use cloudfilm_core::OrgCode;
use cloudfilm_server::Archive;
use cloudfilm_server::ingest::{self, Disposition};
use cloudfilm_store::ImportContext;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct ImportArgs {
    #[arg(long, value_parser = |s: &str| OrgCode::parse(s).map_err(|e| e.to_string()))]
    org: OrgCode,
    /// Directory to import (recursively).
    dir: PathBuf,
    /// Files read and parsed at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

/// Files committed to the index together.
const BATCH: usize = 64;

pub async fn run(global: &Global, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let archive = Arc::new(Archive::open(global.config()?).await?);
    let org = archive.repo.org_by_code(&args.org).await?.with_context(|| format!("no organization {}", args.org))?;
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&args.dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let (dicomdirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| p.file_name().is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR")));
    let bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = ProgressBar::new(bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("a valid template"),
    );
    let started = std::time::Instant::now();
    let (mut stored, mut duplicate) = (0usize, 0usize);
    let mut rejected: BTreeMap<String, (usize, PathBuf)> = BTreeMap::new();
    for chunk in files.chunks(BATCH) {
        let received: Vec<_> = futures::stream::iter(chunk.iter().cloned())
            .map(|path| {
                let archive = archive.clone();
                async move { ingest::receive_file(&archive, &path).await }
            })
            .buffered(args.jobs.max(1))
            .collect()
            .await;
        let context = ImportContext { actor: cli_actor(), interface: "import".into(), ..Default::default() };
        let results = ingest::commit(&archive, org.id, received, None, context).await?;
        for (path, result) in chunk.iter().zip(results) {
            match result.disposition {
                Disposition::Stored => stored += 1,
                Disposition::Duplicate => duplicate += 1,
                Disposition::Failed { message, .. } => {
                    let entry = rejected.entry(message).or_insert((0, path.clone()));
                    entry.0 += 1;
                }
            }
            bar.inc(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        }
        bar.set_message(format!(
            "{stored} stored, {duplicate} duplicate, {} rejected",
            rejected.values().map(|v| v.0).sum::<usize>()
        ));
    }
    bar.finish_and_clear();
    archive.close().await;
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let failed: usize = rejected.values().map(|v| v.0).sum();
    println!(
        "imported {} file(s) in {elapsed:.1} s ({:.1} MB/s): {stored} stored, {duplicate} duplicate, {failed} rejected",
        files.len(),
        bytes as f64 / 1e6 / elapsed
    );
    for path in &dicomdirs {
        println!("  skipped {} (a media directory, not an instance)", relative(&args.dir, path).display());
    }
    for (reason, (count, example)) in &rejected {
        println!("  rejected {count}: {reason} (e.g. {})", relative(&args.dir, example).display());
    }
    Ok(if failed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn relative<'a>(base: &Path, path: &'a Path) -> &'a Path {
    path.strip_prefix(base).unwrap_or(path)
}
