//! Where the blobs are, from `--blobs URL`: `file://PATH` or
//! `s3://BUCKET?endpoint=http://127.0.0.1:3900&region=garage` (credentials from
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, never from the URL), and opening it.
//! `cache=SIZE` (default 1 GiB, `0` for none) bounds this node's copy of recent objects
//! under `DATA/cache/` ([`super::cache`]).

use super::{Blobs, LocalBlobStore, S3BlobStore};
use cloudfilm_crypto::KeyRing;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobsLocation {
    File(PathBuf),
    S3 {
        bucket: String,
        /// `http(s)://host[:port]`; AWS's regional endpoint when absent.
        endpoint: Option<String>,
        region: Option<String>,
        /// The bound of this node's cache in bytes (0: none).
        cache: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("invalid blob store URL: {0}")]
    Invalid(String),
    #[error("blob store {store}: {reason}")]
    Unavailable { store: String, reason: String },
}

const FORMS: &str = "use file://PATH or s3://BUCKET?endpoint=http://HOST:PORT&region=REGION";

impl BlobsLocation {
    /// The default: `file://DATA/blobs`.
    pub fn default_url(data: &Path) -> String {
        format!("file://{}", data.join("blobs").display())
    }

    pub fn parse(url: &str) -> Result<BlobsLocation, LocationError> {
        let invalid = |m: String| Err(LocationError::Invalid(m));
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return invalid("file:// names no directory".into());
            }
            return Ok(BlobsLocation::File(PathBuf::from(path)));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            let scheme: String = scheme.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
            return invalid(format!("unsupported scheme {scheme:?}: {FORMS}"));
        };
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        if bucket.contains('@') {
            return invalid(
                "credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            );
        }
        let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
        if bucket.is_empty() {
            return invalid(format!("the S3 URL names no bucket: {FORMS}"));
        }
        if bucket.contains('/') {
            return invalid("a key prefix after the bucket name is not supported: give the bucket alone".into());
        }
        if !valid_bucket(bucket) {
            return invalid(format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
            ));
        }
        let (mut endpoint, mut region, mut cache) = (None, None, super::cache::DEFAULT_CAPACITY);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "endpoint" => {
                    let value = value.trim_end_matches('/');
                    let Some(authority) = value.strip_prefix("http://").or_else(|| value.strip_prefix("https://"))
                    else {
                        return invalid("the endpoint must start with http:// or https://".into());
                    };
                    if authority.is_empty() || authority.contains('@') || authority.contains('/') {
                        return invalid("the endpoint is http(s)://HOST[:PORT], without credentials or path".into());
                    }
                    endpoint = Some(value.to_owned());
                }
                "region" if !value.is_empty() => region = Some(value.into_owned()),
                "cache" => {
                    let Some(bytes) = super::cache::parse_size(&value) else {
                        return invalid("cache= is a size such as 0, 512MiB or 4GiB".into());
                    };
                    cache = bytes;
                }
                other => {
                    let other: String =
                        other.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(32).collect();
                    return invalid(format!("unknown S3 URL parameter {other:?} (endpoint, region, cache)"));
                }
            }
        }
        Ok(BlobsLocation::S3 { bucket: bucket.to_owned(), endpoint, region, cache })
    }

    /// The same store without a local cache (a one-off copy such as a migration).
    pub fn without_cache(self) -> BlobsLocation {
        match self {
            BlobsLocation::S3 { bucket, endpoint, region, .. } => {
                BlobsLocation::S3 { bucket, endpoint, region, cache: 0 }
            }
            file => file,
        }
    }

    /// The location for messages: path, or bucket and endpoint (never a credential).
    pub fn describe(&self) -> String {
        match self {
            BlobsLocation::File(path) => format!("file://{}", path.display()),
            BlobsLocation::S3 { bucket, endpoint, .. } => match endpoint {
                Some(endpoint) => format!("s3://{bucket} at {endpoint}"),
                None => format!("s3://{bucket} (AWS)"),
            },
        }
    }

    /// Opens the store (S3: checks at once that the bucket answers) with `data` as this node's
    /// local directory (the S3 spool); the flag tells whether recovery may run.
    pub async fn open(&self, data: &Path, ring: Arc<KeyRing>) -> Result<(Blobs, bool), LocationError> {
        let unavailable = |reason: String| LocationError::Unavailable { store: self.describe(), reason };
        match self {
            BlobsLocation::File(root) => {
                let (store, alone) = LocalBlobStore::open(root).map_err(|e| unavailable(e.to_string()))?;
                Ok((Blobs::new(ring, Arc::new(store)), alone))
            }
            BlobsLocation::S3 { bucket, endpoint, region, cache } => {
                let credentials = super::s3::Credentials::from_env().map_err(unavailable)?;
                let options = super::s3::S3Options {
                    bucket: bucket.clone(),
                    endpoint: endpoint.clone(),
                    region: region.clone(),
                    credentials,
                    spool: data.join("spool"),
                    grace: super::s3::DEFAULT_GRACE,
                    cache: Some((data.join("cache"), *cache)),
                };
                let (store, alone) = S3BlobStore::open(options).await.map_err(unavailable)?;
                Ok((Blobs::new(ring, Arc::new(store)), alone))
            }
        }
    }
}

/// S3 bucket naming: 3–63 characters of lowercase letters, digits, dots and hyphens, starting
/// and ending with a letter or digit.
fn valid_bucket(name: &str) -> bool {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&name.len())
        && name.bytes().all(|c| ok(c) || c == b'.' || c == b'-')
        && ok(name.as_bytes()[0])
        && ok(name.as_bytes()[name.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(BlobsLocation::parse("file:///srv/blobs").unwrap(), BlobsLocation::File("/srv/blobs".into()));
        assert_eq!(BlobsLocation::parse("file://./data/blobs").unwrap(), BlobsLocation::File("./data/blobs".into()));
        assert_eq!(
            BlobsLocation::parse("s3://films?endpoint=http://127.0.0.1:3900&region=garage").unwrap(),
            BlobsLocation::S3 {
                bucket: "films".into(),
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: Some("garage".into()),
                cache: 1 << 30,
            }
        );
        assert_eq!(
            BlobsLocation::parse("s3://films?cache=0").unwrap(),
            BlobsLocation::S3 { bucket: "films".into(), endpoint: None, region: None, cache: 0 }
        );
        assert_eq!(
            BlobsLocation::parse("s3://films?region=x&cache=4GiB").unwrap().without_cache(),
            BlobsLocation::S3 { bucket: "films".into(), endpoint: None, region: Some("x".into()), cache: 0 }
        );
    }

    #[test]
    fn refuses_what_cannot_work() {
        for (url, says) in [
            ("ftp://x", "unsupported scheme \"ftp\""),
            ("/srv/blobs", "unsupported scheme"),
            ("file://", "names no directory"),
            ("s3://", "names no bucket"),
            ("s3://?endpoint=http://h:1", "names no bucket"),
            ("s3://Films", "not a bucket name"),
            ("s3://films/prefix", "key prefix"),
            ("s3://AKIA:secret@films", "credentials do not belong"),
            ("s3://films?endpoint=127.0.0.1:3900", "http:// or https://"),
            ("s3://films?endpoint=http://u:p@h:1", "without credentials"),
            ("s3://films?secret_access_key=x", "unknown S3 URL parameter"),
            ("s3://films?cache=lots", "cache= is a size"),
        ] {
            let message = BlobsLocation::parse(url).unwrap_err().to_string();
            assert!(message.contains(says), "{url}: {message}");
            assert!(!message.contains("secret") || says.contains("unknown"), "{url}: {message}");
            assert!(!message.contains(":p@"), "{url}: {message}");
        }
    }

    #[test]
    fn describes_without_credentials() {
        let location = BlobsLocation::parse("s3://films?endpoint=http://127.0.0.1:3900&region=garage").unwrap();
        assert_eq!(location.describe(), "s3://films at http://127.0.0.1:3900");
    }
}
