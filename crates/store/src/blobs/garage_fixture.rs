//! A one-node Garage (the real distributed S3 store, which ignores `If-None-Match`) for the
//! blob store's tests, started by `tests/cluster/garage.py` (its bucket and key from its
//! `export` lines) and stopped with SIGTERM. Missing Garage or Python fails the test unless
//! `CLOUDFILM_SKIP_S3` is set.

use super::Blobs;
use super::s3::{Credentials, S3BlobStore, S3Options};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub struct Garage {
    child: Child,
    settings: HashMap<String, String>,
}

fn unquote(value: &str) -> String {
    value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(value).replace("'\"'\"'", "'")
}

impl Garage {
    pub fn start() -> Option<Garage> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/cluster/garage.py");
        let mut child = Command::new("python3")
            .args([script, "--nodes", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut settings = HashMap::new();
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                settings.insert(name.to_owned(), unquote(value));
            } else if line.starts_with('#') {
                break;
            }
        }
        if settings.contains_key("AWS_ENDPOINT_URL") {
            std::thread::spawn(move || for _ in lines {});
            return Some(Garage { child, settings });
        }
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        let _ = child.wait();
        if std::env::var_os("CLOUDFILM_SKIP_S3").is_some() {
            eprintln!("\n*** GARAGE TESTS SKIPPED (CLOUDFILM_SKIP_S3 is set): {}\n", err.trim());
            return None;
        }
        panic!("Garage did not start (run tests/setup, or set CLOUDFILM_SKIP_S3=1 to skip): {err}");
    }

    pub async fn blobs(&self, spool: &std::path::Path, grace: Duration) -> Blobs {
        let options = S3Options {
            bucket: self.settings["S3_BUCKET"].clone(),
            endpoint: Some(self.settings["AWS_ENDPOINT_URL"].clone()),
            region: Some(self.settings["AWS_REGION"].clone()),
            credentials: Credentials::new(&self.settings["AWS_ACCESS_KEY_ID"], &self.settings["AWS_SECRET_ACCESS_KEY"]),
            spool: spool.to_owned(),
            grace,
            cache: None,
        };
        let (store, _) = S3BlobStore::open(options).await.expect("the Garage store opens");
        Blobs::new(Arc::new(cloudfilm_crypto::KeyRing::generate()), Arc::new(store))
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        // SAFETY: a plain signal to our own child; it stops its nodes and exits.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
