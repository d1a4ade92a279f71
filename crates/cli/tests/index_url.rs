//! The index chosen by URL: a PostgreSQL server that does not answer, or a URL of another
//! kind, stops the command at once with an error naming which database and where, and never
//! the password of the URL.

mod common;

use common::BIN;
use std::process::Command;

fn run_with_database(url: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--data")
        .arg(dir.path())
        .args(["--database", url, "org", "list"])
        .env("CLOUDFILM_LOG", "warn")
        .env_remove("CLOUDFILM_DATABASE")
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn an_unreachable_postgresql_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let (ok, out) = run_with_database("postgres://cloudfilm:hunter2-secret@127.0.0.1:1/archive");
    assert!(!ok, "{out}");
    assert!(out.contains("PostgreSQL at 127.0.0.1:1 database archive"), "{out}");
    assert!(!out.contains("hunter2"), "the password leaked: {out}");
}

#[test]
fn a_url_of_another_kind_is_a_configuration_error() {
    let (ok, out) = run_with_database("mysql://root:pw-secret@127.0.0.1/archive");
    assert!(!ok, "{out}");
    assert!(out.contains("sqlite:// or postgres://"), "{out}");
    assert!(!out.contains("pw-secret"), "{out}");
}
