//! `cloudfilm verify-manifest`: checks a downloaded exam package offline — the manifest's
//! Ed25519 signature with the archive's published public key, then the SHA-256 and size of
//! every file, and that the package holds exactly the files the manifest lists.

use anyhow::{Context, bail};
use clap::Args;
use cloudfilm_crypto::manifest::{self, Digests};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct VerifyArgs {
    /// The downloaded zip.
    package: PathBuf,
    /// The archive's Ed25519 public key: 64 hex digits, or a file holding them (the archive
    /// publishes it at /.well-known/cloudfilm-signing-key).
    #[arg(long)]
    public_key: String,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = public_key(&args.public_key)?;
    let file = std::fs::File::open(&args.package).with_context(|| format!("{}", args.package.display()))?;
    let mut zip = zip::ZipArchive::new(file).context("the package is not a readable zip")?;
    let (mut manifest, mut signature, mut digests) = (None, None, Digests::new());
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).context("a zip entry cannot be read")?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().context("a zip entry has no readable name")?.into_owned();
        if name == manifest::MANIFEST_PATH || name == manifest::SIGNATURE_PATH {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).with_context(|| format!("{name} cannot be read"))?;
            *(if name == manifest::MANIFEST_PATH { &mut manifest } else { &mut signature }) = Some(bytes);
            continue;
        }
        let (mut hasher, mut size, mut buf) = (Sha256::new(), 0u64, vec![0u8; 64 * 1024]);
        loop {
            let n = entry.read(&mut buf).with_context(|| format!("{name} cannot be read"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        digests.insert(name, (size, hex::encode(hasher.finalize())));
    }
    let (Some(manifest), Some(signature)) = (manifest, signature) else {
        bail!("the package has no {} and {}", manifest::MANIFEST_PATH, manifest::SIGNATURE_PATH);
    };
    match manifest::verify(&manifest, &signature, &key, &digests) {
        Ok(m) => {
            println!("ok: {} files as signed by the archive (exam {}, {})", m.files.len(), m.exam, m.created_at);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("NOT VERIFIED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(crate) fn public_key(value: &str) -> anyhow::Result<[u8; 32]> {
    let text = if value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()) {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).with_context(|| format!("the public key file {value}"))?
    };
    let bytes = hex::decode(text.trim()).context("the public key is not hex")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the public key is not 32 bytes"))
}
