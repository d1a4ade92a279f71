//! Data-subject requests with their due dates, and the account export.

use crate::common::*;
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn requests_are_due_in_working_days() {
    let p = Portal::new().await;
    let b = p.patient(PHONE_A).await;
    // Filed on Monday 2026-11-23.
    let access = p.post(&b, "/api/v1/me/requests", json!({ "kind": "access", "detail": "all my data" })).await;
    assert_eq!(access.status, StatusCode::CREATED, "{}", access.text());
    assert_eq!(
        (access.json()["due_date"].as_str(), access.json()["status"].as_str()),
        (Some("2026-12-02"), Some("open"))
    );
    let deletion = p.post(&b, "/api/v1/me/requests", json!({ "kind": "deletion" })).await;
    assert_eq!(deletion.json()["due_date"], "2026-12-14", "15 working days");
    let wrong = p.post(&b, "/api/v1/me/requests", json!({ "kind": "everything" })).await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_kind".into()));
    let list = p.get(&b, "/api/v1/me/requests").await.json();
    assert_eq!(list["requests"].as_array().unwrap().len(), 2);
    assert_eq!(list["requests"][0]["kind"], "deletion", "newest first");
}

#[tokio::test]
async fn the_export_holds_the_accounts_data_and_its_exams_after_a_step_up() {
    let p = Portal::new().await;
    let (mut b, exam, _) = p.matched_exam(true).await;
    let refused = p.get(&b, "/api/v1/me/export").await;
    assert_eq!((refused.status, refused.code()), (StatusCode::FORBIDDEN, "step_up_required".into()));
    p.step_up(&mut b).await;
    let reply = p.get(&b, "/api/v1/me/export").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let files = unzip(&reply.body);
    let text = |name: &str| String::from_utf8(files[name].clone()).unwrap();
    assert!(text("account.json").contains(PHONE_A), "the export is unmasked");
    assert!(text("members.json").contains(ID_A));
    assert!(text("exams.json").contains(&exam));
    assert!(files.contains_key(&format!("exams/{exam}/DICOMDIR")));
    assert_eq!(files.keys().filter(|k| k.starts_with(&format!("exams/{exam}/DICOM/"))).count(), 2);
    let digests = digests(&files);
    let key = p.archive.signer.public_key();
    cloudfilm_crypto::manifest::verify(&files["MANIFEST.json"], &files["MANIFEST.sig"], &key, &digests).unwrap();
    assert!(p.audit_text().await.contains("account export started"));
}
