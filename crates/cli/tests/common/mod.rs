//! Black-box test harness: the real `cloudfilm` binary on a free port with its own data
//! directory, stopped at the end of every test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_cloudfilm");

pub struct Server {
    child: Child,
    pub url: String,
    /// The DIMSE listener's port.
    pub dimse_port: u16,
    pub data: PathBuf,
}

impl Server {
    /// Starts `cloudfilm serve` on a free port; `env` adds configuration variables.
    pub fn start(data: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with_open_files(data, env, None)
    }

    /// [`Server::start`] under a limit of `open_files` file descriptors (RLIMIT_NOFILE).
    pub fn start_with_open_files(data: &Path, env: &[(&str, &str)], open_files: Option<u64>) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data").arg(data).args(["serve", "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0"]);
        cmd.env("CLOUDFILM_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().take(3).map_while(Result::ok) {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let mut banner = Vec::new();
        while banner.len() < 3 {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => banner.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("the server did not start within 60 s (banner so far: {banner:?})");
                }
            }
        }
        let url = banner[0].rsplit(' ').next().expect("a URL").to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected banner {banner:?}");
        let dimse_port = banner[2].rsplit(':').next().and_then(|p| p.parse().ok()).expect("the DIMSE port");
        Server { child, url, dimse_port, data: data.to_owned() }
    }

    pub fn dicomweb(&self) -> String {
        format!("{}/dicom-web", self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, waiting at most 30 s for a clean exit.
    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the server exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("the server did not stop within 30 s of SIGTERM");
    }

    /// SIGKILL: the crash case.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a CLI command against `data`.
pub fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("--data").arg(data).args(args).env("CLOUDFILM_LOG", "warn").output().expect("the binary runs")
}

pub fn cli_ok(data: &Path, args: &[&str]) -> String {
    let out = cli(data, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Creates an organization and returns a fresh API key for it.
pub fn org_with_key(data: &Path, code: &str) -> String {
    cli_ok(data, &["org", "create", "--code", code, "--name", &format!("{code} hospital")]);
    new_key(data, code, &[])
}

pub fn new_key(data: &Path, code: &str, allow: &[&str]) -> String {
    let mut args = vec!["apikey", "create", "--org", code];
    for a in allow {
        args.extend(["--allow", a]);
    }
    cli_ok(data, &args).lines().last().expect("the key on the last line").to_owned()
}

pub fn client() -> reqwest::blocking::Client {
    cloudfilm_store::tls::install_provider();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().expect("a client")
}

/// A `multipart/related; type="application/dicom"` body of the given parts.
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cloudfilm-test-boundary-7d3f";
    let mut body = Vec::new();
    for (content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"), body)
}

pub struct Stow {
    pub status: u16,
    pub json: serde_json::Value,
    pub warning: String,
}

impl Stow {
    /// FailureReason of each failed instance.
    pub fn failure_reasons(&self) -> Vec<u64> {
        self.json["00081198"]["Value"]
            .as_array()
            .map(|items| items.iter().map(|i| i["00081197"]["Value"][0].as_u64().unwrap()).collect())
            .unwrap_or_default()
    }

    pub fn stored(&self) -> usize {
        self.json["00081199"]["Value"].as_array().map(Vec::len).unwrap_or(0)
    }
}

pub fn stow_parts(server: &Server, key: &str, path: &str, parts: &[(&str, &[u8])]) -> Stow {
    let (content_type, body) = multipart(parts);
    let response = client()
        .post(format!("{}{path}", server.dicomweb()))
        .bearer_auth(key)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .expect("the STOW request completes");
    let status = response.status().as_u16();
    let warning = response.headers().get("warning").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let json = response.json().unwrap_or(serde_json::Value::Null);
    Stow { status, json, warning }
}

/// POSTs `instances` to `{dicomweb}/studies` with a client of the caller's (ingest loops).
pub fn post_instances(
    client: &reqwest::blocking::Client,
    dicomweb: &str,
    key: &str,
    instances: &[&[u8]],
) -> reqwest::Result<reqwest::blocking::Response> {
    let parts: Vec<(&str, &[u8])> = instances.iter().map(|i| ("application/dicom", *i)).collect();
    let (content_type, body) = multipart(&parts);
    client.post(format!("{dicomweb}/studies")).bearer_auth(key).header("Content-Type", content_type).body(body).send()
}

pub fn stow(server: &Server, key: &str, instances: &[&[u8]]) -> Stow {
    let parts: Vec<(&str, &[u8])> = instances.iter().map(|i| ("application/dicom", *i)).collect();
    stow_parts(server, key, "/studies", &parts)
}

pub fn get(server: &Server, key: &str, path: &str) -> reqwest::blocking::Response {
    client().get(format!("{}{path}", server.dicomweb())).bearer_auth(key).send().expect("the GET completes")
}

pub fn qido(server: &Server, key: &str, path: &str) -> Vec<serde_json::Value> {
    let response = get(server, key, path);
    assert_eq!(response.status(), 200, "QIDO {path}");
    response.json().expect("a JSON array")
}

/// The parts of a multipart/related response.
pub fn parts(response: reqwest::blocking::Response) -> Vec<Vec<u8>> {
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let boundary =
        content_type.split("boundary=").nth(1).unwrap().split(';').next().unwrap().trim_matches('"').to_owned();
    let body = response.bytes().expect("a complete body").to_vec();
    let delimiter = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut rest = &body[..];
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let header_end = find(rest, b"\r\n\r\n").expect("part headers") + 4;
        let next = find(&rest[header_end..], &delimiter).expect("a next delimiter");
        out.push(rest[header_end..header_end + next - 2].to_vec());
        rest = &rest[header_end + next..];
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Instances of the demo patient's studies at a small scale (CT, MR, CR).
pub fn demo_instances(scale: f64) -> Vec<Vec<u8>> {
    cloudfilm_dicom::synth::demo_studies(scale).iter().flat_map(cloudfilm_dicom::synth::generate_study).collect()
}

/// A study of `n` small CT-like instances with its own UIDs (seeded).
pub fn study(seed: u64, slices: u32) -> Vec<Vec<u8>> {
    let mut spec = cloudfilm_dicom::synth::demo_studies(1.0).remove(1);
    spec.seed = seed;
    spec.accession_number = format!("ACC{seed}");
    spec.series.truncate(1);
    spec.series[0].slices = slices;
    cloudfilm_dicom::synth::generate_study(&spec)
}

pub fn sop_uid(bytes: &[u8]) -> String {
    cloudfilm_dicom::inspect(&mut std::io::Cursor::new(bytes)).unwrap().sop_instance_uid
}

pub fn study_uid(bytes: &[u8]) -> String {
    cloudfilm_dicom::inspect(&mut std::io::Cursor::new(bytes)).unwrap().study_uid
}

pub fn instance_path(bytes: &[u8]) -> String {
    let info = cloudfilm_dicom::inspect(&mut std::io::Cursor::new(bytes)).unwrap();
    format!("/studies/{}/series/{}/instances/{}", info.study_uid, info.series_uid, info.sop_instance_uid)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out
}

/// Every audit entry of a stopped server's data directory: (sequence number, canonical text).
pub fn audit_log(data: &Path) -> Vec<(i64, String)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(data.join("index.db"))
            .read_only(true)
            .connect()
            .await
            .unwrap();
        let rows =
            sqlx::query_as("SELECT seq, canonical FROM audit_log ORDER BY seq").fetch_all(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        rows
    })
}
