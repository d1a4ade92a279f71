//! `cloudfilm backup --to DIR`, `cloudfilm backup verify DIR` and `cloudfilm restore --from DIR`.
//!
//! A backup of the embedded archive is a directory:
//! - `index.db`: a snapshot of the index, consistent as of one moment while the server keeps
//!   ingesting (SQLite's `VACUUM INTO`);
//! - `blobs/ab/<id>`: the ciphertext of every blob that snapshot names, as stored (still
//!   encrypted under the key ring);
//! - `audit-heads.jsonl`: the signed audit heads the snapshot's chain reaches;
//! - `keyring.sealed`: the key ring sealed under a backup passphrase (Argon2id, AES-256-GCM);
//! - `backup.json` and `backup.sig`: every other file with its size and SHA-256, the counts and
//!   the audit chain's root, signed by the archive's Ed25519 key.
//!
//! Nothing in it is readable without the passphrase: the index's personal values are sealed
//! and the blobs encrypted under the ring, which only travels sealed.

mod check;
mod engines;
mod restore;
mod take;

use anyhow::Context;
use clap::{Args, Subcommand};
use cloudfilm_crypto::manifest::FileEntry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

pub const FORMAT: &str = "cloudfilm-backup/1";
pub const MANIFEST: &str = "backup.json";
pub const SIGNATURE: &str = "backup.sig";
pub const INDEX: &str = "index.db";
pub const HEADS: &str = "audit-heads.jsonl";
pub const SEALED_RING: &str = "keyring.sealed";
const PASSPHRASE_ENV: &str = "CLOUDFILM_BACKUP_PASSPHRASE";

/// What a backup holds, signed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub format: String,
    pub created_at: String,
    /// The version of cloudfilm that wrote it.
    pub cloudfilm: String,
    /// The archive's signing key, hex (the one to trust is the archive's published key).
    pub public_key: String,
    pub instances: u64,
    pub studies: u64,
    pub audit_entries: u64,
    pub audit_root: String,
    pub files: Vec<FileEntry>,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// The directory to write the backup to (created; if it exists it must be empty).
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
    #[command(flatten)]
    passphrase: Passphrase,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check a backup without restoring it: the manifest's signature, every file's SHA-256, that
    /// every blob the index names is there, and the audit chain against its signed heads; with
    /// the passphrase, also that the sealed key ring is this archive's. Exit 0 when all hold.
    Verify {
        /// The backup directory.
        #[arg(required_unless_present = "engines")]
        dir: Option<PathBuf>,
        /// Check instead the archive that --database and --blobs name: a restored PostgreSQL
        /// dump and bucket copy (every blob read back against its hash, the audit chain).
        #[arg(long, conflicts_with = "dir")]
        engines: bool,
        /// The archive's Ed25519 public key (64 hex digits, or a file holding them) to check the
        /// signature with, instead of the key the backup names.
        #[arg(long)]
        public_key: Option<String>,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Write a backup's key ring, unsealed, to a new file: what a restored PostgreSQL dump and
    /// bucket copy are opened with (`--keys FILE`).
    Unseal(UnsealArgs),
}

#[derive(Args)]
pub struct UnsealArgs {
    /// The backup directory.
    dir: PathBuf,
    /// The key ring file to write (new; readable by its owner only).
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    #[command(flatten)]
    passphrase: Passphrase,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup directory.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    #[command(flatten)]
    passphrase: Passphrase,
}

/// The backup passphrase: from a file, else from `CLOUDFILM_BACKUP_PASSPHRASE` (never an
/// argument: the process list would show it).
#[derive(Args)]
pub struct Passphrase {
    /// A file holding the backup passphrase (its first line) [default: CLOUDFILM_BACKUP_PASSPHRASE].
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

impl Passphrase {
    fn get(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(file) = &self.passphrase_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(file).with_context(|| format!("the passphrase file {}", file.display()))?,
            );
            return Ok(Some(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned())));
        }
        Ok(std::env::var(PASSPHRASE_ENV).ok().map(Zeroizing::new))
    }

    fn required(&self, what: &str) -> anyhow::Result<Zeroizing<String>> {
        self.get()?.with_context(|| {
            format!("{what} needs the backup passphrase: set {PASSPHRASE_ENV} or give --passphrase-file")
        })
    }
}

pub async fn backup(global: &crate::Global, args: BackupArgs) -> anyhow::Result<ExitCode> {
    match (args.command, args.to) {
        (Some(BackupCommand::Verify { engines: true, .. }), _) => engines::check(global.config()?).await,
        (Some(BackupCommand::Verify { dir, public_key, passphrase, .. }), _) => {
            let key = public_key.as_deref().map(crate::verify::public_key).transpose()?;
            let dir = dir.expect("clap requires it without --engines");
            check::run(&dir, key, passphrase.get()?.as_deref().map(String::as_str)).await
        }
        (Some(BackupCommand::Unseal(args)), _) => unseal(&args),
        (None, Some(to)) => take::run(global, &to, &args.passphrase.required("a backup")?).await,
        (None, None) => anyhow::bail!("say where to: `cloudfilm backup --to DIR` (or `cloudfilm backup verify DIR`)"),
    }
}

pub async fn restore(global: &crate::Global, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    restore::run(global, &args.from, &args.passphrase.required("a restore")?).await
}

fn unseal(args: &UnsealArgs) -> anyhow::Result<ExitCode> {
    let passphrase = args.passphrase.required("unsealing a key ring")?;
    let ring = check::open_ring(&args.dir.join(SEALED_RING), &passphrase)?;
    ring.save_new(&args.to).with_context(|| format!("cannot write {} (it must not exist)", args.to.display()))?;
    println!("the key ring is in {} (mode 600): keep it as safe as the archive's own", args.to.display());
    Ok(ExitCode::SUCCESS)
}

/// Where a blob's ciphertext is inside a backup; `None` for a name that is not a blob id (a
/// tampered index must not name a path outside the backup).
pub fn blob_path(id: &str) -> Option<String> {
    cloudfilm_store::blobs::valid_id(id).then(|| format!("blobs/{}/{id}", &id[..2]))
}

/// Copies `from` into `to`, returning the size and SHA-256 of what went through.
pub fn copy_hashing(from: &mut dyn Read, to: &mut dyn Write) -> std::io::Result<(u64, String)> {
    let (mut hasher, mut size, mut buf) = (Sha256::new(), 0u64, vec![0u8; 1 << 20]);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Writes a new file (never over an existing one), readable by its owner only, and syncs it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Creates `dir` (owner only) or accepts it empty.
pub fn empty_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))?;
        anyhow::ensure!(entries.next().is_none(), "{} is not empty", dir.display());
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("{}", dir.display()))
}

/// Makes a directory's entries durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
