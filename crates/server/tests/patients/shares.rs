//! Shares: an exam opened to someone without an account, for a chosen time, behind a
//! password; each limit tested at its boundary with the manual clock.

use crate::common::*;
use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{Value, json};

async fn share(p: &Portal, b: &Browser, exam: &str, body: Value) -> (String, String) {
    let reply = p.post(b, &format!("/api/v1/exams/{exam}/shares"), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let j = reply.json();
    let url = j["url"].as_str().unwrap();
    let token = url.rsplit_once("/s/").expect("a /s/ link").1.to_owned();
    assert!(token.len() >= 43, "at least 256 bits in the link token");
    (j["id"].as_str().unwrap().to_owned(), token)
}

async fn unlock(p: &Portal, b: &mut Browser, token: &str, password: &str) -> Reply {
    let reply = p.post(b, &format!("/api/v1/shared/{token}/unlock"), json!({ "password": password })).await;
    take_cookies(b, &reply);
    reply
}

fn share_state(list: &Reply, id: &str) -> Value {
    list.json()["shares"].as_array().unwrap().iter().find(|s| s["id"] == id).cloned().expect("the share is listed")
}

#[tokio::test]
async fn validity_and_password_are_checked_and_the_owner_lists_state_expiry_and_views() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let path = format!("/api/v1/exams/{exam}/shares");
    for (body, code) in [
        (json!({ "valid_hours": 0, "password": "secret1" }), "invalid_validity"),
        (json!({ "valid_hours": 721, "password": "secret1" }), "invalid_validity"),
        (json!({ "valid_hours": 24, "password": "short" }), "password_too_short"),
    ] {
        let reply = p.post(&b, &path, body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNPROCESSABLE_ENTITY, code.to_owned()));
    }
    let (id, token) = share(&p, &b, &exam, json!({ "valid_hours": 720, "password": "六个字符的密码" })).await;
    let list = p.get(&b, &path).await;
    let s = share_state(&list, &id);
    assert_eq!((s["state"].as_str(), s["views"].as_i64()), (Some("active"), Some(0)));
    assert_eq!(s["expires_at"], "2026-12-23T08:00:00.000Z", "30 days");
    let mut guest = Browser::at([10, 0, 0, 2]);
    assert_eq!(unlock(&p, &mut guest, &token, "六个字符的密码").await.status, StatusCode::OK);
    assert_eq!(share_state(&p.get(&b, &path).await, &id)["views"], 1);
    // Another account's exam id and an unknown exam answer alike.
    let other = p.patient(PHONE_B).await;
    let foreign = p.post(&other, &path, json!({ "valid_hours": 1, "password": "secret1" })).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_right_password_opens_only_this_exam_for_the_recipient() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let (_, token) = share(&p, &b, &exam, json!({ "valid_hours": 2, "password": "secret1" })).await;
    let page = p.get(&Browser::default(), &format!("/s/{token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("password") && !page.text().contains("ACC-1"), "nothing before the password");
    let mut guest = Browser::at([10, 0, 0, 2]);
    assert_eq!(p.get(&guest, "/api/v1/shared/exam").await.status, StatusCode::UNAUTHORIZED);
    let opened = unlock(&p, &mut guest, &token, "secret1").await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text());
    let detail = p.get(&guest, "/api/v1/shared/exam").await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text());
    assert_eq!(detail.json()["series"][0]["images"], 2);
    assert!(!detail.text().contains("张") && !detail.text().contains(ID_A));
    let image = p.get(&guest, "/api/v1/shared/exam/series/1/images/2").await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(&image.body[..2], &[0xFF, 0xD8], "a JPEG");
    // The share-scoped session is not an account session.
    assert_eq!(p.get(&guest, &format!("/api/v1/exams/{exam}")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(p.get(&guest, "/api/v1/members").await.status, StatusCode::UNAUTHORIZED);
    // A share of the original offers no DICOM.
    assert_eq!(p.get(&guest, "/api/v1/shared/exam/series/1/images/1/dicom").await.status, StatusCode::NOT_FOUND);

    // The view is in the audit chain, the owner's access log and the transfer log.
    let audit = p.audit_text().await;
    assert!(audit.contains(&format!("exam:{exam}")) && audit.contains("viewed the exam through the share"));
    let log = p.get(&b, "/api/v1/me/access-log").await;
    let entries = log.json()["entries"].as_array().unwrap().clone();
    assert!(entries.iter().any(|e| e["what"] == "opened the share with its password" && e["client_ip"] == "10.0.0.2"));
    assert!(entries.iter().any(|e| e["what"] == "viewed the exam through the share"));
    let transfers = p.get(&b, "/api/v1/me/transfers").await.json()["transfers"].as_array().unwrap().clone();
    assert!(transfers.iter().any(|t| t["sender"].as_str().unwrap().contains("协和医院")
        && t["receiver"].as_str().unwrap().contains("10.0.0.2")
        && t["category"].as_str().unwrap().contains("report and images")
        && t["result"].as_str().unwrap().starts_with("delivered")));
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_share_for_an_hour() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let (id, token) = share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1" })).await;
    let mut guest = Browser::at([10, 0, 0, 3]);
    for n in 1..=9 {
        let reply = unlock(&p, &mut guest, &token, "wrong-one").await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "wrong_password".into()), "try {n}");
    }
    let tenth = unlock(&p, &mut guest, &token, "wrong-one").await;
    assert_eq!((tenth.status, tenth.code()), (StatusCode::TOO_MANY_REQUESTS, "share_locked".into()));
    let right = unlock(&p, &mut guest, &token, "secret1").await;
    assert_eq!((right.status, right.code()), (StatusCode::TOO_MANY_REQUESTS, "share_locked".into()), "locked");
    assert_eq!(share_state(&p.get(&b, &format!("/api/v1/exams/{exam}/shares")).await, &id)["state"], "locked");
    p.advance(Duration::seconds(3599));
    assert_eq!(unlock(&p, &mut guest, &token, "secret1").await.status, StatusCode::TOO_MANY_REQUESTS);
    p.advance(Duration::seconds(1));
    assert_eq!(unlock(&p, &mut guest, &token, "secret1").await.status, StatusCode::OK, "open again after the hour");
    assert!(p.audit_text().await.contains("share locked for an hour"));
}

#[tokio::test]
async fn an_address_that_tries_many_shares_is_limited() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1" })).await.1);
    }
    let mut attacker = Browser::at([10, 6, 6, 6]);
    for n in 0..30 {
        let reply = unlock(&p, &mut attacker, &tokens[n % 3], &format!("guess-{n}")).await;
        assert_ne!(reply.status, StatusCode::OK);
    }
    let limited = unlock(&p, &mut attacker, &tokens[3], "secret1").await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into()));
    let guessed = unlock(&p, &mut attacker, "A".repeat(43).as_str(), "secret1").await;
    assert_eq!(guessed.status, StatusCode::TOO_MANY_REQUESTS, "unknown tokens too");
    let mut friend = Browser::at([10, 0, 0, 9]);
    assert_eq!(unlock(&p, &mut friend, &tokens[3], "secret1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_tokens_answer_alike() {
    let p = Portal::new().await;
    let mut guest = Browser::at([10, 0, 0, 4]);
    let a = unlock(&p, &mut guest, &"B".repeat(43), "secret1").await;
    let b = unlock(&p, &mut guest, "short", "secret1").await;
    assert_eq!((a.status, b.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(a.body, b.body);
}

#[tokio::test]
async fn a_share_ends_at_its_expiry_and_at_once_when_revoked() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let (_, token) = share(&p, &b, &exam, json!({ "valid_hours": 1, "password": "secret1" })).await;
    let mut guest = Browser::at([10, 0, 0, 5]);
    p.advance(Duration::seconds(3599));
    assert_eq!(unlock(&p, &mut guest, &token, "secret1").await.status, StatusCode::OK, "at 59:59");
    assert_eq!(p.get(&guest, "/api/v1/shared/exam").await.status, StatusCode::OK);
    p.advance(Duration::seconds(1));
    let late = unlock(&p, &mut guest, &token, "secret1").await;
    assert_eq!((late.status, late.code()), (StatusCode::GONE, "share_expired".into()));
    assert!(late.json()["error"]["message"].as_str().unwrap().contains("expired"));
    assert_eq!(p.get(&guest, "/api/v1/shared/exam").await.status, StatusCode::GONE, "its sessions end too");

    let b = p.login(PHONE_A).await;
    let (id, token) = share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1" })).await;
    let mut viewer = Browser::at([10, 0, 0, 6]);
    assert_eq!(unlock(&p, &mut viewer, &token, "secret1").await.status, StatusCode::OK);
    assert_eq!(p.get(&viewer, "/api/v1/shared/exam").await.status, StatusCode::OK);
    assert_eq!(p.delete(&b, &format!("/api/v1/shares/{id}")).await.status, StatusCode::NO_CONTENT);
    let after = p.get(&viewer, "/api/v1/shared/exam").await;
    assert_eq!((after.status, after.code()), (StatusCode::GONE, "share_revoked".into()));
    let again = unlock(&p, &mut viewer, &token, "secret1").await;
    assert_eq!((again.status, again.code()), (StatusCode::GONE, "share_revoked".into()));
    let other = p.patient(PHONE_B).await;
    assert_eq!(p.delete(&other, &format!("/api/v1/shares/{id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_owner_is_told_once_when_a_share_is_first_opened_unless_turned_off() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let notices = |p: &Portal| p.messages().iter().filter(|(to, t)| to == PHONE_A && t.contains("opened")).count();
    let (_, token) = share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1" })).await;
    let mut guest = Browser::at([10, 0, 0, 7]);
    unlock(&p, &mut guest, &token, "secret1").await;
    unlock(&p, &mut guest, &token, "secret1").await;
    assert_eq!(notices(&p), 1);
    let (_, quiet) = share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1", "notify": false })).await;
    unlock(&p, &mut guest, &quiet, "secret1").await;
    assert_eq!(notices(&p), 1);
    assert!(!p.messages().iter().any(|(_, t)| t.contains("张") || t.contains(ID_A)), "no personal data in texts");
}

#[tokio::test]
async fn a_de_identified_share_shows_no_identifying_value() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let body = json!({ "valid_hours": 24, "password": "secret1", "deidentified": true });
    let (_, token) = share(&p, &b, &exam, body).await;
    let mut guest = Browser::at([10, 0, 0, 8]);
    assert_eq!(unlock(&p, &mut guest, &token, "secret1").await.status, StatusCode::OK);
    let detail = p.get(&guest, "/api/v1/shared/exam").await;
    let text = detail.text();
    assert!(!text.contains("协和") && !text.contains("ACC-1") && !text.contains("2026-01-05"), "{text}");
    assert_eq!(detail.json()["report"]["available"], false);
    let mut study_uids = Vec::new();
    for n in 1..=2 {
        let reply = p.get(&guest, &format!("/api/v1/shared/exam/series/1/images/{n}/dicom")).await;
        assert_eq!(reply.status, StatusCode::OK);
        let obj = dicom_object::OpenFileOptions::new().from_reader(&reply.body[128..]).unwrap();
        let text = |tag| obj.element(tag).ok().and_then(|e| e.to_str().ok()).map(|s| s.trim().to_owned());
        use dicom_dictionary_std::tags;
        assert_ne!(text(tags::PATIENT_NAME).as_deref(), Some("ZHANG^SAN=张^三"));
        assert_ne!(text(tags::PATIENT_ID).as_deref(), Some("MRN-1"));
        assert!(obj.element(tags::OTHER_PATIENT_I_DS_SEQUENCE).is_err(), "removed (X)");
        assert_ne!(text(tags::INSTITUTION_NAME).as_deref(), Some("协和医院"), "replaced (X/Z/D)");
        assert_eq!(text(tags::PATIENT_IDENTITY_REMOVED).as_deref(), Some("YES"));
        let raw = String::from_utf8_lossy(&reply.body);
        assert!(!raw.contains(ID_A) && !raw.contains("ACC-1") && !raw.contains(PHONE_A));
        study_uids.push(text(tags::STUDY_INSTANCE_UID).unwrap());
    }
    assert_eq!(study_uids[0], study_uids[1], "UIDs remapped consistently");
    assert!(study_uids[0].starts_with("2.25."));
}

#[tokio::test]
async fn a_share_stops_when_its_owner_withdraws_consent_or_loses_the_exam() {
    let p = Portal::new().await;
    let (b, exam, h1) = p.matched_exam(true).await;
    let (_, token) = share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1" })).await;
    let mut guest = Browser::at([10, 0, 0, 10]);
    assert_eq!(unlock(&p, &mut guest, &token, "secret1").await.status, StatusCode::OK);
    p.set_cloud_film(&h1, false).await;
    let off = p.get(&guest, "/api/v1/shared/exam").await;
    assert_eq!((off.status, off.code()), (StatusCode::GONE, "exam_unavailable".into()), "service off");
    p.set_cloud_film(&h1, true).await;
    assert_eq!(p.get(&guest, "/api/v1/shared/exam").await.status, StatusCode::OK);
    assert_eq!(p.delete(&b, "/api/v1/me/consents/health_data").await.status, StatusCode::NO_CONTENT);
    let withdrawn = p.get(&guest, "/api/v1/shared/exam").await;
    assert_eq!((withdrawn.status, withdrawn.code()), (StatusCode::GONE, "exam_unavailable".into()), "S33");
}

#[tokio::test]
async fn racing_wrong_passwords_do_not_slip_past_the_lock() {
    let p = Portal::new().await;
    let (b, exam, _) = p.matched_exam(true).await;
    let (_, token) = share(&p, &b, &exam, json!({ "valid_hours": 24, "password": "secret1" })).await;
    let attempts = (0..15u8).map(|n| {
        let (p, token) = (&p, token.clone());
        async move {
            let mut guest = Browser::at([10, 5, 0, n]);
            unlock(p, &mut guest, &token, "wrong-one").await.status
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let count = |s| statuses.iter().filter(|x| **x == s).count();
    assert_eq!((count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS)), (9, 6), "{statuses:?}");
    let mut friend = Browser::at([10, 5, 1, 1]);
    assert_eq!(unlock(&p, &mut friend, &token, "secret1").await.status, StatusCode::TOO_MANY_REQUESTS, "locked");
}
