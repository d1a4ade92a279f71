//! Matching (DESIGN §2): the first match is manual and must agree with the hospital's record;
//! then every exam with the member's ID number (and, for "self", the account's phone) attaches,
//! across organizations whose service is on, including studies that arrive later.

use crate::common::*;
use axum::http::StatusCode;
use serde_json::{Value, json};

fn exam_ids(v: &Value) -> Vec<String> {
    v["exams"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_first_match_is_manual_and_must_agree_with_the_record() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    let h2 = p.org("H2", "仁济医院", true).await;
    let off = p.org("H3", "关闭医院", false).await;
    let zhang = person("ZHANG^SAN=张^三", "MRN-1", ID_A, "");
    p.study(&h1, 1, &zhang, "ACC-100", "20260105").await;
    p.study(&h2, 2, &zhang, "ACC-200", "20260310").await;
    p.study(&off, 3, &zhang, "ACC-300", "20260401").await;
    let someone = person("LI^SI=李^四", "MRN-2", ID_B, "");
    p.study(&h1, 4, &someone, "ACC-400", "20260105").await;

    let b = p.patient(PHONE_A).await;
    let me = p.member(&b, "张三", ID_A, "self").await;
    let exams = format!("/api/v1/members/{me}/exams");
    let matching = format!("/api/v1/members/{me}/match");
    assert_eq!(exam_ids(&p.get(&b, &exams).await.json()).len(), 0, "nothing before the first manual match");

    let empty = p.post(&b, &matching, json!({})).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    for claim in [
        json!({ "accession_number": "ACC-999" }),
        json!({ "accession_number": "ACC-400" }),
        json!({ "accession_number": "ACC-300" }),
        json!({ "accession_number": "ACC-100", "exam_date": "2026-01-06" }),
        json!({ "organization": "关闭医院" }),
    ] {
        let reply = p.post(&b, &matching, claim.clone()).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::NOT_FOUND, "no_match"), "{claim}");
    }
    let reply = p.post(&b, &matching, json!({ "accession_number": "acc-100 ", "exam_date": "20260105" })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["matched"].as_array().unwrap().len(), 2, "both hospitals with the service on");

    let list = p.get(&b, &exams).await.json();
    let orgs: Vec<&str> =
        list["exams"].as_array().unwrap().iter().map(|e| e["organization"].as_str().unwrap()).collect();
    assert_eq!(orgs, ["仁济医院", "协和医院"], "newest first");
    assert_eq!(list["exams"][0]["date"], "2026-03-10");
    assert_eq!(list["exams"][0]["modality"], "CT");
    assert_eq!(p.get(&b, "/api/v1/members").await.json()["members"][0]["matched"], true);

    p.study(&h1, 5, &zhang, "ACC-101", "20261120").await;
    assert_eq!(exam_ids(&p.get(&b, &exams).await.json()).len(), 3, "a later study attaches by itself");
    p.set_cloud_film(&h2, false).await;
    assert_eq!(exam_ids(&p.get(&b, &exams).await.json()).len(), 2, "switching the service off hides its exams");
    p.set_cloud_film(&off, true).await;
    assert_eq!(exam_ids(&p.get(&b, &exams).await.json()).len(), 3);
}

#[tokio::test]
async fn the_name_must_agree_too_in_any_written_form() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    p.study(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, ""), "ACC-1", "20260105").await;
    let b = p.patient(PHONE_B).await;
    let impostor = p.member(&b, "张四", ID_A, "parent").await;
    let reply = p.post(&b, &format!("/api/v1/members/{impostor}/match"), json!({ "accession_number": "ACC-1" })).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "the ID number alone is not enough");
    let pinyin = p.member(&b, "Zhang San", ID_SPOUSE, "spouse").await;
    let reply = p.post(&b, &format!("/api/v1/members/{pinyin}/match"), json!({ "accession_number": "ACC-1" })).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "the name alone is not enough");

    let c = p.patient(PHONE_A).await;
    let fullwidth = p.member(&c, "ＺＨＡＮＧ ｓａｎ", ID_A, "self").await;
    let reply = p.post(&c, &format!("/api/v1/members/{fullwidth}/match"), json!({ "organization": "协和 医院" })).await;
    assert_eq!(reply.status, StatusCode::OK, "width, spaces and case do not matter");
}

#[tokio::test]
async fn the_account_holder_also_gets_exams_recorded_with_the_account_phone() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    p.study(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, PHONE_A), "ACC-1", "20260105").await;
    p.study(&h1, 2, &person("ZHANG^SAN=张^三", "MRN-9", "", PHONE_A), "ACC-2", "20260201").await;
    let b = p.patient(PHONE_A).await;
    let me = p.member(&b, "张三", ID_A, "self").await;
    let reply = p.post(&b, &format!("/api/v1/members/{me}/match"), json!({ "accession_number": "ACC-1" })).await;
    assert_eq!(reply.json()["matched"].as_array().unwrap().len(), 2);

    let other = p.patient(PHONE_B).await;
    let parent = p.member(&other, "张三", ID_A, "parent").await;
    let reply =
        p.post(&other, &format!("/api/v1/members/{parent}/match"), json!({ "accession_number": "ACC-1" })).await;
    assert_eq!(reply.json()["matched"], json!([]), "an adult held by another account shows nothing before their yes");
    let holding = p.get(&b, "/api/v1/me/holders").await.json()["holders"][0]["id"].as_str().unwrap().to_owned();
    let approved = p.post(&b, &format!("/api/v1/me/holders/{holding}/approve"), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    let list = p.get(&other, &format!("/api/v1/members/{parent}/exams")).await.json();
    assert_eq!(exam_ids(&list).len(), 1, "phone matching is only for the holder's own phone");
}

#[tokio::test]
async fn match_attempts_are_limited_and_reveal_nothing() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    p.study(&h1, 1, &person("LI^SI=李^四", "MRN-2", ID_B, ""), "ACC-LI", "20260105").await;
    let b = p.patient(PHONE_A).await;
    let me = p.member(&b, "张三", ID_A, "self").await;
    let path = format!("/api/v1/members/{me}/match");
    let existing = p.post(&b, &path, json!({ "accession_number": "ACC-LI" })).await;
    let missing = p.post(&b, &path, json!({ "accession_number": "ACC-NONE" })).await;
    assert_eq!(existing.status, StatusCode::NOT_FOUND);
    assert_eq!(existing.body, missing.body, "someone else's exam looks exactly like no exam");
    for _ in 2..10 {
        assert_eq!(p.post(&b, &path, json!({ "accession_number": "ACC-LI" })).await.status, StatusCode::NOT_FOUND);
    }
    let limited = p.post(&b, &path, json!({ "accession_number": "ACC-LI" })).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "the 11th attempt in an hour");
    for minutes in [29, 29, 3] {
        p.advance(chrono::Duration::minutes(minutes));
        assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::OK);
    }
    assert_eq!(p.post(&b, &path, json!({ "accession_number": "ACC-LI" })).await.status, StatusCode::NOT_FOUND);
    let audit = p.audit_text().await;
    assert!(audit.contains("manual match: no record agrees"));
    assert!(!audit.contains("ACC-LI") && !audit.contains(ID_B));
}
