//! `cloudfilm audit verify`: an intact chain verifies; an edited, deleted, reordered or
//! consistently rewritten entry, a truncated tail, a forged head and a deleted or shortened
//! heads file are detected and named.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::path::Path;

/// A data directory whose chain holds org/key creation, imports, queries and reads.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let instances = study(21, 3);
    for instance in &instances {
        assert_eq!(stow(&server, &key, &[instance]).status, 200);
    }
    for _ in 0..5 {
        qido(&server, &key, "/studies?PatientName=ZHANG*");
    }
    assert_eq!(get(&server, &key, &instance_path(&instances[0])).status(), 200);
    server.stop();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn sql(data: &Path, statements: &[&str]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn =
            sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("index.db")).connect().await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    });
}

/// Verifies a tampered copy; returns (success, stdout).
fn verify_after(original: &Path, tamper: impl FnOnce(&Path)) -> (bool, String) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original, copy.path());
    tamper(copy.path());
    let out = cli(copy.path(), &["audit", "verify"]);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn hex_sql(bytes: &[u8]) -> String {
    format!("X'{}'", hex::encode(bytes))
}

#[test]
fn tampering_is_detected_and_named() {
    let data = populated();
    let all = audit_log(data.path());
    let n = all.len() as i64;
    assert!(n >= 10, "{n} entries");
    let middle = n / 2;
    let text = |s: &str| s.replace('\'', "''");

    let (ok, out) = verify_after(data.path(), |_| {});
    assert!(ok && out.contains("audit chain intact"), "{out}");
    assert!(all.iter().any(|(_, c)| c.contains("\"event_id\":\"110107\"")), "imports are audited");
    assert!(all.iter().any(|(_, c)| c.contains("\"event_id\":\"110112\"")), "queries are audited");
    assert!(all.iter().any(|(_, c)| c.contains("\"event_id\":\"110103\"")), "reads are audited");
    assert!(!all.iter().any(|(_, c)| c.contains("ZHANG")), "no personal value in the chain");

    let edited = all[middle as usize - 1].1.replace("\"result\":\"success\"", "\"result\":\"failure\"");
    assert_ne!(edited, all[middle as usize - 1].1);
    let (ok, out) = verify_after(data.path(), |d| {
        sql(d, &[&format!("UPDATE audit_log SET canonical = '{}' WHERE seq = {middle}", text(&edited))])
    });
    assert!(!ok && out.contains(&format!("entry {middle} was altered")), "{out}");

    let (ok, out) = verify_after(data.path(), |d| sql(d, &[&format!("DELETE FROM audit_log WHERE seq = {middle}")]));
    assert!(!ok && out.contains(&format!("entry {middle} is missing")), "{out}");

    let (a, b) = (middle, middle + 1);
    let (ok, out) = verify_after(data.path(), |d| {
        sql(
            d,
            &[
                &format!("UPDATE audit_log SET seq = -1 WHERE seq = {a}"),
                &format!("UPDATE audit_log SET seq = {a} WHERE seq = {b}"),
                &format!("UPDATE audit_log SET seq = {b} WHERE seq = -1"),
            ],
        )
    });
    assert!(!ok && out.contains(&format!("entry {a} is out of place")), "{out}");

    let (ok, out) = verify_after(data.path(), |d| sql(d, &[&format!("DELETE FROM audit_log WHERE seq > {}", n - 3)]));
    assert!(!ok && out.contains("truncated or rolled back"), "{out}");

    // A rewrite with every hash recomputed passes the chain but not the signed heads.
    let rewrite = |d: &Path| {
        let mut link = [0u8; 32];
        let mut statements = Vec::new();
        for (seq, canonical) in &all {
            let canonical = if *seq == middle { edited.clone() } else { canonical.clone() };
            let leaf: [u8; 32] = Sha256::new().chain_update([0u8]).chain_update(canonical.as_bytes()).finalize().into();
            link = Sha256::new().chain_update(link).chain_update(leaf).finalize().into();
            statements.push(format!(
                "UPDATE audit_log SET canonical = '{}', leaf = {}, chain = {} WHERE seq = {seq}",
                text(&canonical),
                hex_sql(&leaf),
                hex_sql(&link)
            ));
        }
        let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
        sql(d, &refs);
    };
    let (ok, out) = verify_after(data.path(), rewrite);
    assert!(!ok && out.contains("no longer match the signed head"), "{out}");

    // Deleting the heads file, alone or to hide that rewrite, is itself named; and the archive
    // does not sign a fresh head over the rewritten chain (a second verify still fails).
    let heads_file = |d: &Path| d.join("audit-heads.jsonl");
    let (ok, out) = verify_after(data.path(), |d| std::fs::remove_file(heads_file(d)).unwrap());
    assert!(!ok && out.contains("heads file lost the signed head"), "{out}");
    let copy = tempfile::tempdir().unwrap();
    copy_dir(data.path(), copy.path());
    rewrite(copy.path());
    std::fs::remove_file(heads_file(copy.path())).unwrap();
    for _ in 0..2 {
        let out = cli(copy.path(), &["audit", "verify"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success() && stdout.contains("heads file lost the signed head"), "{stdout}");
        assert!(!heads_file(copy.path()).exists(), "no head signed over a rewritten chain");
    }
    let server = Server::start(copy.path(), &[]);
    server.stop();
    assert!(!heads_file(copy.path()).exists(), "a server opening the archive signs no head either");
    // A file cut short (its last heads removed) is named the same way.
    let (ok, out) = verify_after(data.path(), |d| {
        assert!(cli(d, &["audit", "verify"]).status.success(), "a verify signs one more head at close");
        let heads = std::fs::read_to_string(heads_file(d)).unwrap();
        assert!(heads.lines().count() >= 2, "{heads}");
        let first = heads.lines().next().unwrap();
        std::fs::write(heads_file(d), format!("{first}\n")).unwrap();
    });
    assert!(!ok && out.contains("heads file lost the signed head"), "{out}");

    let (ok, out) = verify_after(data.path(), |d| {
        let heads = std::fs::read_to_string(d.join("audit-heads.jsonl")).unwrap();
        std::fs::write(d.join("audit-heads.jsonl"), heads.replacen("\"tree_size\":", "\"tree_size\":1", 1)).unwrap();
    });
    assert!(!ok && out.contains("invalid signature"), "{out}");
}
