//! One-time codes are credentials: no provider writes them to a log, and `serve` without a
//! provider that delivers them says at start that patient sign-in is unavailable.

mod common;

use common::BIN;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PHONE: &str = "13800138000";

/// `cloudfilm serve` with `extra` arguments, its stderr in `log`; the banner's lines and the child.
fn serve(data: &std::path::Path, extra: &[&str], log: &std::path::Path) -> (Vec<String>, Child) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0"])
        .args(extra)
        .env("CLOUDFILM_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(if banner.is_empty() { 60 } else { 2 })) {
        banner.push(line);
    }
    assert!(banner.first().is_some_and(|l| l.starts_with("cloudfilm listening on ")), "{banner:?}");
    (banner, child)
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
}

fn request_code(url: &str) -> reqwest::blocking::Response {
    common::client()
        .post(format!("{url}/api/v1/auth/otp"))
        .json(&serde_json::json!({ "phone": PHONE }))
        .send()
        .expect("the request completes")
}

#[test]
fn without_a_provider_sign_in_is_unavailable_and_said_so_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let (banner, child) = serve(&dir.path().join("data"), &[], &log);
    assert!(banner.iter().any(|l| l.starts_with("Patient sign-in: unavailable")), "{banner:?}");
    let url = banner[0].rsplit(' ').next().unwrap().to_owned();
    let reply = request_code(&url);
    assert_eq!(reply.status(), 503);
    let body: serde_json::Value = reply.json().unwrap();
    assert_eq!(body["error"]["code"], "sms_unavailable");
    stop(child);
}

#[test]
fn the_log_provider_writes_the_kind_and_the_masked_phone_never_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let (banner, child) = serve(&dir.path().join("data"), &["--sms", "log"], &log);
    assert!(banner.iter().any(|l| l.starts_with("Patient sign-in: unavailable")), "{banner:?}");
    let url = banner[0].rsplit(' ').next().unwrap().to_owned();
    assert_eq!(request_code(&url).status(), 202);
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("SMS (log provider")).expect("the message is noted in the log");
    assert!(line.contains("138****8000") && line.contains("sign-in code"), "{line}");
    assert!(!text.contains(PHONE), "the whole phone number is in the log");
    for forbidden in ["验证码", "code is", "valid for"] {
        assert!(!text.contains(forbidden), "the message text is in the log: {forbidden}");
    }
}
