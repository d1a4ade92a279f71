//! Consent: nothing but the consent endpoints before it, withdrawal at once, every event kept.

use crate::common::*;
use axum::http::StatusCode;
use chrono::Duration;
use cloudfilm_core::consent::POLICY_VERSION;
use serde_json::json;

#[tokio::test]
async fn without_consent_only_the_consent_endpoints_answer() {
    let p = Portal::new().await;
    let b = p.login(PHONE_A).await;
    let policy = p.get(&Browser::default(), "/api/v1/policy").await;
    assert_eq!(policy.json()["version"], POLICY_VERSION);
    assert!(policy.json()["text"].as_str().unwrap().contains("健康"));
    for path in ["/api/v1/members", "/api/v1/members/x/exams", "/api/v1/exams/0123456789abcdef0123456789abcdef"] {
        let reply = p.get(&b, path).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::FORBIDDEN, "consent_required"), "{path}");
    }
    let add = p.add_member(&b, "张三", ID_A, "self").await;
    assert_eq!(add.code(), "consent_required");
    assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::OK);

    let outdated =
        p.post(&b, "/api/v1/me/consents", json!({ "policy_version": "2020-01-01", "health_data": true })).await;
    assert_eq!((outdated.status, outdated.code().as_str()), (StatusCode::CONFLICT, "policy_outdated"));
    let policy_only =
        p.post(&b, "/api/v1/me/consents", json!({ "policy_version": POLICY_VERSION, "health_data": false })).await;
    assert_eq!(policy_only.status, StatusCode::CREATED);
    assert_eq!(p.get(&b, "/api/v1/members").await.code(), "consent_required", "health data needs its own consent");
    p.advance(Duration::minutes(1));
    let both =
        p.post(&b, "/api/v1/me/consents", json!({ "policy_version": POLICY_VERSION, "health_data": true })).await;
    assert_eq!(both.status, StatusCode::CREATED);
    assert_eq!(p.get(&b, "/api/v1/members").await.status, StatusCode::OK);
}

#[tokio::test]
async fn withdrawal_stops_processing_at_once_and_every_event_is_kept() {
    let p = Portal::new().await;
    let b = p.patient(PHONE_A).await;
    let member = p.member(&b, "张三", ID_A, "self").await;
    p.advance(Duration::minutes(5));
    let withdrawn = p.delete(&b, "/api/v1/me/consents/health_data").await;
    assert_eq!(withdrawn.status, StatusCode::NO_CONTENT);
    assert_eq!(p.get(&b, "/api/v1/members").await.code(), "consent_required");
    assert_eq!(p.get(&b, &format!("/api/v1/members/{member}/exams")).await.code(), "consent_required");
    p.advance(Duration::minutes(5));
    let again =
        p.post(&b, "/api/v1/me/consents", json!({ "policy_version": POLICY_VERSION, "health_data": true })).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(p.get(&b, "/api/v1/members").await.status, StatusCode::OK);

    let me = p.get(&b, "/api/v1/me").await.json();
    let events = me["consents"]["events"].as_array().unwrap();
    let summary: Vec<(String, bool, String)> = events
        .iter()
        .map(|e| {
            (e["kind"].as_str().unwrap().into(), e["granted"].as_bool().unwrap(), e["at"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("privacy_policy".into(), true, "2026-11-23T08:00:00.000Z".into()),
            ("health_data".into(), true, "2026-11-23T08:00:00.000Z".into()),
            ("health_data".into(), false, "2026-11-23T08:05:00.000Z".into()),
            ("privacy_policy".into(), true, "2026-11-23T08:10:00.000Z".into()),
            ("health_data".into(), true, "2026-11-23T08:10:00.000Z".into()),
        ]
    );
    assert!(events.iter().all(|e| e["policy_version"] == POLICY_VERSION));
    let audit = p.audit_text().await;
    assert!(audit.contains("consent to process health data withdrawn"));
}

#[tokio::test]
async fn rights_outlast_a_withdrawn_consent() {
    let p = Portal::new().await;
    let (mut b, exam, _) = p.matched_exam(true).await;
    assert_eq!(p.get(&b, &format!("/api/v1/exams/{exam}")).await.status, StatusCode::OK);
    assert_eq!(p.delete(&b, "/api/v1/me/consents/health_data").await.status, StatusCode::NO_CONTENT);
    // Processing for the withdrawn purpose stops...
    assert_eq!(p.get(&b, &format!("/api/v1/exams/{exam}")).await.code(), "consent_required");
    // ...the rights do not: the logs, requests, the export and withdrawing again.
    for path in ["/api/v1/me/access-log", "/api/v1/me/transfers", "/api/v1/me/requests"] {
        let reply = p.get(&b, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    }
    let filed = p.post(&b, "/api/v1/me/requests", json!({ "kind": "deletion", "detail": "" })).await;
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.text());
    assert_eq!(p.get(&b, "/api/v1/me/requests").await.json()["requests"][0]["kind"], "deletion");
    assert_eq!(p.get(&b, "/api/v1/me/export").await.code(), "step_up_required");
    p.step_up(&mut b).await;
    let export = p.get(&b, "/api/v1/me/export").await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text());
    assert!(unzip(&export.body).keys().any(|name| name.ends_with(".json")));
    assert_eq!(p.delete(&b, "/api/v1/me/consents/health_data").await.status, StatusCode::NO_CONTENT);
    // Still no health data without the consent, and nothing for a visitor without a session.
    assert_eq!(p.get(&b, &format!("/api/v1/exams/{exam}")).await.code(), "consent_required");
    assert_eq!(p.get(&Browser::default(), "/api/v1/me/access-log").await.status, StatusCode::UNAUTHORIZED);
}
