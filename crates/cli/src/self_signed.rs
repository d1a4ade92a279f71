//! The demo's own certificate (`demo --tls`): self-signed for `localhost`, `127.0.0.1` and
//! `::1`, valid for a year, made once in `DATA/tls/` (the key readable by its owner only) and
//! made again when it is missing or has expired.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// The certificate and key files, made first if needed.
pub fn for_localhost(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::fs::metadata(&cert).and_then(|m| m.modified()).ok();
    let fresh =
        made.and_then(|t| t.elapsed().ok()).is_some_and(|age| age < std::time::Duration::from_secs(360 * 86_400));
    if fresh && key.exists() {
        return Ok((cert, key));
    }
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()])
            .context("certificate names")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "cloudfilm demo (localhost)");
    let now = rcgen::date_time_ymd(1970, 1, 1) + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(365 * 86_400);
    let signing = rcgen::KeyPair::generate().context("a key pair for the demo certificate")?;
    let certificate = params.self_signed(&signing).context("the demo certificate")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_private(&key, signing.serialize_pem().as_bytes())?;
    std::fs::write(&cert, certificate.pem()).with_context(|| format!("cannot write {}", cert.display()))?;
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
