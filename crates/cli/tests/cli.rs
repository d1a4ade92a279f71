//! The operator CLI: organizations, keys, import with its summary, configuration.

mod common;
use common::*;

#[test]
fn organizations_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cli_ok(d, &["org", "create", "--code", "PKUH", "--name", "Peking Hospital", "--download", "off"]);
    assert!(out.contains("PKUH") && out.contains("cloud-film on") && out.contains("download off"), "{out}");
    let again = cli(d, &["org", "create", "--code", "PKUH", "--name", "x"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let out = cli_ok(d, &["org", "set", "PKUH", "--cloud-film", "off", "--download", "on"]);
    assert!(out.contains("cloud-film off") && out.contains("download on"), "{out}");
    assert!(!cli(d, &["org", "set", "NOPE", "--download", "on"]).status.success());
    assert!(!cli(d, &["org", "set", "PKUH"]).status.success(), "nothing to set");
    assert!(!cli(d, &["org", "create", "--code", "../x", "--name", "x"]).status.success());
    assert!(!cli(d, &["org", "set", "PKUH", "--download", "maybe"]).status.success());
    assert!(cli_ok(d, &["org", "list"]).contains("PKUH"));

    // The key is alone on the last line; global options work after the command name too.
    let out = std::process::Command::new(BIN)
        .args(["apikey", "create", "--org", "PKUH", "--allow", "10.1.0.0/16", "--data"])
        .arg(d)
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
    let (id, secret) = key.split_once('.').unwrap();
    assert!(id.starts_with("cfk") && secret.len() >= 43, "{key}");
    assert!(!cli(d, &["apikey", "create", "--org", "NOPE"]).status.success());
    assert!(!cli(d, &["apikey", "create", "--org", "PKUH", "--allow", "not-a-network"]).status.success());
    assert!(cli(d, &["apikey", "revoke", id]).status.success());
    assert!(!cli(d, &["apikey", "revoke", id]).status.success(), "already revoked");
    assert!(cli(d, &["audit", "verify"]).status.success());
}

#[test]
fn import_stores_reports_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let key = org_with_key(&d, "H1");
    let source = dir.path().join("export");
    std::fs::create_dir_all(source.join("nested")).unwrap();
    let instances = study(31, 6);
    for (i, bytes) in instances.iter().enumerate() {
        let sub = if i % 2 == 0 { source.clone() } else { source.join("nested") };
        std::fs::write(sub.join(format!("IM{i:04}.dcm")), bytes).unwrap();
    }
    std::fs::write(source.join("README.txt"), "not dicom").unwrap();
    std::fs::write(source.join("half.dcm"), &instances[0][..instances[0].len() / 3]).unwrap();
    std::fs::write(source.join("DICOMDIR"), b"ignored").unwrap();

    let out = cli(&d, &["import", "--org", "H1", source.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "rejections give exit code 2: {text}");
    assert!(text.contains("6 stored, 0 duplicate, 2 rejected"), "{text}");
    assert!(text.contains("not a DICOM Part-10 file") && text.contains("README.txt"), "{text}");
    assert!(text.contains("truncated") || text.contains("does not parse"), "{text}");
    assert!(text.contains("skipped DICOMDIR"), "{text}");

    let again = cli(&d, &["import", "--org", "H1", source.join("nested").to_str().unwrap()]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 stored, 3 duplicate, 0 rejected"));
    assert!(!cli(&d, &["import", "--org", "NOPE", source.to_str().unwrap()]).status.success());

    // What was imported is served, and an import beside a running server keeps the chain whole.
    let server = Server::start(&d, &[]);
    assert_eq!(qido(&server, &key, "/instances").len(), 6);
    let more = study(32, 2);
    std::fs::write(source.join("extra.dcm"), &more[0]).unwrap();
    let beside = cli(&d, &["import", "--org", "H1", source.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&beside.stdout).contains("1 stored, 6 duplicate"));
    assert_eq!(qido(&server, &key, "/instances").len(), 7);
    server.stop();
    let verify = cli(&d, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn configuration_is_documented_and_layered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cloudfilm.toml");
    std::fs::write(&file, "[limits]\nmax_parts = 7\n[http]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--config", file.to_str().unwrap(), "config"])
        .env("CLOUDFILM_LIMITS__MAX_INSTANCE_BYTES", "12345")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("max_parts = 7") && text.contains("max_instance_bytes = 12345") && text.contains("9999"),
        "{text}"
    );
    std::fs::write(&file, "[limits]\nmax_partz = 7\n").unwrap();
    let bad = std::process::Command::new(BIN).args(["--config", file.to_str().unwrap(), "config"]).output().unwrap();
    assert!(!bad.status.success(), "unknown keys are refused");
    let help = std::process::Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for key in ["max_request_bytes", "max_instance_bytes", "CLOUDFILM_MASTER_KEY", "public_url"] {
        assert!(help.contains(key), "serve --help documents {key}");
    }
}

#[test]
fn commands_beside_a_running_server_leave_its_writes_in_flight_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    org_with_key(d, "H1");
    let server = Server::start(d, &[]);
    // A temporary blob as an upload in progress leaves it.
    let in_flight = d.join("blobs/tmp").join("0123456789abcdef0123456789abcdef");
    std::fs::write(&in_flight, b"being written").unwrap();
    cli_ok(d, &["org", "list"]);
    new_key(d, "H1", &[]);
    assert!(in_flight.exists(), "another process's write in flight is not recovery's to remove");
    server.stop();
    // Alone, the next start finishes what a crash left: an unreferenced temporary is removed.
    let server = Server::start(d, &[]);
    assert!(!in_flight.exists());
    server.stop();
}
