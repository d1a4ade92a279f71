//! Download links: where the organization allows it, the original DICOM behind a security
//! code sent to the account's phone; each limit tested at its boundary with the manual clock.

use crate::common::*;
use axum::http::{StatusCode, header};
use chrono::Duration;
use cloudfilm_dicom::synth;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Creates a link after a step-up (S13): its token and the code texted to phone A.
async fn link(p: &Portal, b: &mut Browser, exam: &str) -> (String, String) {
    let path = format!("/api/v1/exams/{exam}/downloads");
    assert_eq!(p.post(b, &path, json!({})).await.code(), "step_up_required");
    p.step_up(b).await;
    let reply = p.post(b, &format!("/api/v1/exams/{exam}/downloads"), json!({})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let url = reply.json()["url"].as_str().unwrap().to_owned();
    let (_, text) = p.messages().pop().expect("a text went out");
    assert!(text.contains("security code"));
    (url.rsplit_once("/d/").expect("a /d/ link").1.to_owned(), p.last_code(PHONE_A))
}

async fn try_code(p: &Portal, from: &Browser, token: &str, code: &str) -> Reply {
    p.post(from, &format!("/api/v1/downloads/{token}"), json!({ "code": code })).await
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test]
async fn the_right_code_streams_the_originals_with_a_dicomdir_and_a_signed_manifest() {
    let p = Portal::new().await;
    let (mut b, exam, h1) = p.matched_exam(true).await;
    let (token, code) = link(&p, &mut b, &exam).await;
    let page = p.get(&Browser::default(), &format!("/d/{token}")).await;
    assert!(page.status == StatusCode::OK && page.text().contains("security code"));
    let reply = try_code(&p, &Browser::at([10, 1, 0, 1]), &token, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/zip");
    let files = unzip(&reply.body);
    let originals =
        synth::generate_study(&spec(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, PHONE_A), "ACC-1", "20260105"));
    let sent: BTreeSet<String> = originals.iter().map(|f| hex::encode(Sha256::digest(f))).collect();
    let dicom: BTreeSet<String> = files
        .iter()
        .filter(|(name, _)| name.starts_with("DICOM/"))
        .map(|(_, f)| hex::encode(Sha256::digest(f)))
        .collect();
    assert_eq!(dicom, sent, "the originals, byte-identical");
    assert!(files.contains_key("DICOM/S0001/I00001") && files.contains_key("DICOMDIR"));
    let directory = dicom_object::OpenFileOptions::new().from_reader(&files["DICOMDIR"][128..]).unwrap();
    assert_eq!(directory.meta().media_storage_sop_class_uid(), "1.2.840.10008.1.3.10");

    let manifest = &files[cloudfilm_crypto::manifest::MANIFEST_PATH];
    let signature = &files[cloudfilm_crypto::manifest::SIGNATURE_PATH];
    let digests = digests(&files);
    let key = p.archive.signer.public_key();
    cloudfilm_crypto::manifest::verify(manifest, signature, &key, &digests).expect("the manifest verifies");
    let mut changed = digests.clone();
    changed.get_mut("DICOM/S0001/I00002").unwrap().1 = hex::encode(Sha256::digest(b"other"));
    assert!(cloudfilm_crypto::manifest::verify(manifest, signature, &key, &changed).is_err());

    let transfers = p.get(&b, "/api/v1/me/transfers").await.json()["transfers"].as_array().unwrap().clone();
    assert!(transfers.iter().any(|t| t["result"] == "delivered: 2 files"
        && t["receiver"].as_str().unwrap().contains("10.1.0.1")
        && t["category"].as_str().unwrap().contains("original DICOM")
        && t["sender"].as_str().unwrap().contains("协和医院")));
    let log = p.get(&b, "/api/v1/me/access-log").await.text();
    assert!(log.contains("downloaded the original DICOM"));
    assert!(p.audit_text().await.contains("original DICOM download"));
}

#[tokio::test]
async fn after_ten_wrong_codes_the_right_one_works_the_eleventh_wrong_one_ends_the_link() {
    let p = Portal::new().await;
    let (mut b, exam, _) = p.matched_exam(true).await;
    let (token, code) = link(&p, &mut b, &exam).await;
    for n in 1..=10 {
        let from = Browser::at([10, 2, 0, n]);
        let reply = try_code(&p, &from, &token, &wrong(&code)).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "wrong_code".into()), "wrong code {n}");
    }
    assert_eq!(try_code(&p, &Browser::at([10, 2, 1, 1]), &token, &code).await.status, StatusCode::OK);
    let eleventh = try_code(&p, &Browser::at([10, 2, 1, 2]), &token, &wrong(&code)).await;
    assert_eq!((eleventh.status, eleventh.code()), (StatusCode::GONE, "link_invalidated".into()));
    let right = try_code(&p, &Browser::at([10, 2, 1, 3]), &token, &code).await;
    assert_eq!((right.status, right.code()), (StatusCode::GONE, "link_invalidated".into()), "for good");
    p.advance(Duration::days(1));
    assert_eq!(try_code(&p, &Browser::at([10, 2, 1, 4]), &token, &code).await.code(), "link_invalidated");
    // A new link can be requested.
    let mut b = p.login(PHONE_A).await;
    let (token, code) = link(&p, &mut b, &exam).await;
    assert_eq!(try_code(&p, &Browser::at([10, 2, 1, 5]), &token, &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn racing_wrong_codes_do_not_slip_past_the_limit() {
    let p = Portal::new().await;
    let (mut b, exam, _) = p.matched_exam(true).await;
    let (token, code) = link(&p, &mut b, &exam).await;
    let attempts = (0..24u8).map(|n| {
        let (p, token, code) = (&p, token.clone(), wrong(&code));
        async move { try_code(p, &Browser::at([10, 3, 0, n]), &token, &code).await.status }
    });
    let statuses = futures::future::join_all(attempts).await;
    let count = |s| statuses.iter().filter(|x| **x == s).count();
    assert_eq!((count(StatusCode::UNAUTHORIZED), count(StatusCode::GONE)), (10, 14), "{statuses:?}");
    assert_eq!(try_code(&p, &Browser::at([10, 3, 1, 1]), &token, &code).await.status, StatusCode::GONE);
}

#[tokio::test]
async fn a_link_lives_thirty_minutes() {
    let p = Portal::new().await;
    let (mut b, exam, _) = p.matched_exam(true).await;
    let (token, code) = link(&p, &mut b, &exam).await;
    p.advance(Duration::seconds(29 * 60 + 59));
    assert_eq!(try_code(&p, &Browser::default(), &token, &code).await.status, StatusCode::OK, "at 29:59");
    let mut b = p.login(PHONE_A).await;
    let (token, code) = link(&p, &mut b, &exam).await;
    p.advance(Duration::seconds(30 * 60 + 1));
    let late = try_code(&p, &Browser::default(), &token, &code).await;
    assert_eq!((late.status, late.code()), (StatusCode::GONE, "link_expired".into()), "at 30:01");
    assert!(late.json()["error"]["message"].as_str().unwrap().contains("request a new one"));
}

#[tokio::test]
async fn no_download_where_the_organization_disallows_it() {
    let p = Portal::new().await;
    let (mut b, exam, h1) = p.matched_exam(false).await;
    assert_eq!(p.get(&b, &format!("/api/v1/exams/{exam}")).await.json()["download_allowed"], false, "not offered");
    let reply = p.post(&b, &format!("/api/v1/exams/{exam}/downloads"), json!({})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "download_disabled".into()));
    assert!(!p.messages().iter().any(|(_, t)| t.contains("security code")), "no code sent");
    // A link made while it was allowed stops working when it is switched off.
    p.archive.set_org_switches(&h1.code, None, Some(true), "test").await.unwrap();
    let (token, code) = link(&p, &mut b, &exam).await;
    p.archive.set_org_switches(&h1.code, None, Some(false), "test").await.unwrap();
    assert_eq!(try_code(&p, &Browser::default(), &token, &code).await.code(), "download_disabled");
}

#[tokio::test]
async fn guessing_tokens_and_codes_from_one_address_is_limited_and_tells_nothing() {
    let p = Portal::new().await;
    let (mut b, exam, _) = p.matched_exam(true).await;
    let guesser = Browser::at([10, 4, 0, 1]);
    let a = try_code(&p, &guesser, &"C".repeat(43), "123456").await;
    let b2 = try_code(&p, &guesser, "not-a-token", "123456").await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "link_not_found".into()));
    assert_eq!(a.body, b2.body);
    let (token, code) = link(&p, &mut b, &exam).await;
    for _ in 0..28 {
        try_code(&p, &guesser, &"D".repeat(43), "123456").await;
    }
    let limited = try_code(&p, &guesser, &token, &code).await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into()));
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(try_code(&p, &Browser::at([10, 4, 0, 2]), &token, &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_preamble_that_is_not_zero_is_exported_as_zeros() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    let mut files =
        synth::generate_study(&spec(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, PHONE_A), "ACC-1", "20260105"));
    files[0][..4].copy_from_slice(b"MZ\x90\x00");
    let received = files[0].clone();
    p.store(&h1, files).await;
    let mut b = p.patient(PHONE_A).await;
    let me = p.member(&b, "张三", ID_A, "self").await;
    let matched = p.post(&b, &format!("/api/v1/members/{me}/match"), json!({ "accession_number": "ACC-1" })).await;
    let exam = matched.json()["matched"][0].as_str().unwrap().to_owned();
    let (token, code) = link(&p, &mut b, &exam).await;
    let files = unzip(&try_code(&p, &Browser::default(), &token, &code).await.body);
    let exported = files.values().find(|f| f.len() == received.len() && f[132..] == received[132..]).expect("exported");
    assert!(exported[..128].iter().all(|b| *b == 0), "S8");
    let digests = digests(&files);
    let (manifest, signature) = (&files["MANIFEST.json"], &files["MANIFEST.sig"]);
    cloudfilm_crypto::manifest::verify(manifest, signature, &p.archive.signer.public_key(), &digests)
        .expect("the manifest lists what was sent");
}
