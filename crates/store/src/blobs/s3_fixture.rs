//! A real S3 server for the tests: `s3s-fs` (installed by `tests/setup`) on a free port of
//! 127.0.0.1, serving a temporary directory, one directory per bucket. Without the binary
//! the S3 tests fail, unless `CLOUDFILM_SKIP_S3` is set: then they say loudly that they did
//! not run.

use super::s3::{Credentials, S3Options};
use super::{Blobs, S3BlobStore};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const KEY_ID: &str = "cloudfilmtestkey";
pub const SECRET: &str = "cloudfilm-test-secret-0123456789";

pub struct S3Server {
    child: Child,
    pub root: tempfile::TempDir,
    pub endpoint: String,
}

fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CLOUDFILM_S3S_FS") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let mut candidates = vec![home.join("bin/s3s-fs")];
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("s3s-fs")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

impl S3Server {
    /// Starts the server, or `None` when it is missing and `CLOUDFILM_SKIP_S3` is set.
    pub fn start() -> Option<S3Server> {
        let Some(binary) = binary() else {
            if std::env::var_os("CLOUDFILM_SKIP_S3").is_some() {
                eprintln!("\n*** S3 TESTS SKIPPED: s3s-fs is not installed and CLOUDFILM_SKIP_S3 is set ***\n");
                return None;
            }
            panic!(
                "s3s-fs is not installed: run tests/setup (cargo install s3s-fs --version 0.14.1 --features binary \
                 --locked), or set CLOUDFILM_SKIP_S3=1 to skip the S3 tests"
            );
        };
        let root = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", KEY_ID, "--secret-key", SECRET])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(S3Server { child, root, endpoint: format!("http://127.0.0.1:{port}") })
    }

    /// Creates a bucket (a directory of the server's root).
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.root.path().join(name)).unwrap();
        name.to_owned()
    }

    /// A store reading through to the bucket (no local cache).
    pub async fn store(&self, bucket: &str, spool: &std::path::Path, grace: Duration) -> (S3BlobStore, bool) {
        self.store_with(bucket, spool, grace, None).await
    }

    /// A store with its local cache at `cache` (as `serve` has one, 1 GiB).
    pub async fn store_cached(&self, bucket: &str, spool: &std::path::Path, cache: &std::path::Path) -> S3BlobStore {
        self.store_with(bucket, spool, Duration::ZERO, Some((cache.to_owned(), 1 << 30))).await.0
    }

    async fn store_with(
        &self,
        bucket: &str,
        spool: &std::path::Path,
        grace: Duration,
        cache: Option<(std::path::PathBuf, u64)>,
    ) -> (S3BlobStore, bool) {
        let options = S3Options {
            bucket: bucket.to_owned(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            credentials: Credentials::new(KEY_ID, SECRET),
            spool: spool.to_owned(),
            grace,
            cache,
        };
        S3BlobStore::open(options).await.expect("the S3 store opens")
    }

    pub async fn blobs(&self, bucket: &str, spool: &std::path::Path, grace: Duration) -> Blobs {
        let (store, _) = self.store(bucket, spool, grace).await;
        Blobs::new(Arc::new(cloudfilm_crypto::KeyRing::generate()), Arc::new(store))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
