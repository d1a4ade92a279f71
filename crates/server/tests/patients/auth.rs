//! One-time codes, login, sessions, CSRF and step-up, each limit at its boundary.

use crate::common::*;
use axum::http::{Method, StatusCode, header};
use chrono::Duration;
use serde_json::json;

#[tokio::test]
async fn first_login_registers_the_account_and_sets_session_cookies() {
    let p = Portal::new().await;
    let b = Browser::default();
    let sent = p.request_code(&b, "+86 138-0013-8000").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    assert_eq!(sent.json()["expires_in"], 300);
    let (to, text) = p.messages().pop().unwrap();
    assert_eq!(to, PHONE_A);
    let code = p.last_code(PHONE_A);
    assert!(code.bytes().all(|b| b.is_ascii_digit()) && code.len() == 6, "{text}");
    let reply = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": code })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let account = &reply.json()["account"];
    assert_eq!(account["phone"], "138****8000");
    assert_eq!(account["new_account"], true);
    assert!(!reply.text().contains(PHONE_A), "the phone comes back masked");
    let cookies: Vec<String> =
        reply.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("cf_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let token = session.split(';').next().unwrap().trim_start_matches("cf_session=");
    assert!(token.len() >= 43, "≥ 256-bit token: {token}");
    let csrf = cookies.iter().find(|c| c.starts_with("cf_csrf=")).unwrap();
    assert!(!csrf.contains("HttpOnly"), "the page must read the CSRF cookie");

    let mut b = Browser::default();
    take_cookies(&mut b, &reply);
    let me = p.get(&b, "/api/v1/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["id"], account["id"]);

    p.advance(Duration::seconds(60));
    let again = p.login(PHONE_A).await;
    let me_again = p.get(&again, "/api/v1/me").await;
    assert_eq!(me_again.json()["id"], account["id"], "the same phone is the same account");
    assert_ne!(again.session, b.session, "a new token at every login");
}

#[tokio::test]
async fn malformed_phones_are_refused_and_nothing_is_sent() {
    let p = Portal::new().await;
    let b = Browser::default();
    for phone in ["12800138000", "1380013800", "138001380001", "1380013800a", "", "+1 2025550100", "+85291234"] {
        let reply = p.request_code(&b, phone).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{phone}");
        assert_eq!(reply.code(), "invalid_phone");
    }
    assert!(p.messages().is_empty());
    assert_eq!(p.request_code(&b, "+852 9123 4567").await.status, StatusCode::ACCEPTED);
    assert_eq!(p.request_code(&b, "+853 6612 3456").await.status, StatusCode::ACCEPTED);
    let garbage = p.send(&b, Method::POST, "/api/v1/auth/otp", None).await;
    assert!(garbage.status.is_client_error());
    assert!(!garbage.code().is_empty(), "errors answer in the API's shape: {}", garbage.text());
}

#[tokio::test]
async fn the_fifth_wrong_code_is_the_last_try() {
    let p = Portal::new().await;
    let b = Browser::default();
    p.request_code(&b, PHONE_A).await;
    let right = p.last_code(PHONE_A);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let reply = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": wrong })).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(reply.code(), "invalid_code");
    }
    let reply = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": right })).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "code_exhausted", "after 5 wrong tries even the right code fails");

    p.advance(Duration::seconds(60));
    p.request_code(&b, PHONE_A).await;
    let right = p.last_code(PHONE_A);
    for _ in 1..=4 {
        p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": wrong })).await;
    }
    let reply = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": right })).await;
    assert_eq!(reply.status, StatusCode::OK, "4 wrong tries leave the code usable");
    let audit = p.audit_text().await;
    assert_eq!(audit.matches("wrong one-time code").count(), 9, "every failed login is audited");
    assert!(audit.contains("one-time code failed too many times"));
    assert!(audit.contains("login; account registered") && audit.contains("\"actor\":\"account:"));
    assert!(!audit.contains(PHONE_A) && !audit.contains(&right), "neither the phone nor a code is in the audit");
}

#[tokio::test]
async fn codes_live_five_minutes_and_once() {
    let p = Portal::new().await;
    let b = Browser::default();
    p.request_code(&b, PHONE_A).await;
    let code = p.last_code(PHONE_A);
    p.advance(Duration::seconds(300));
    let late = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": code })).await;
    assert_eq!((late.status, late.code().as_str()), (StatusCode::UNAUTHORIZED, "code_expired"));

    p.request_code(&b, PHONE_A).await;
    let code = p.last_code(PHONE_A);
    p.advance(Duration::seconds(299) + Duration::milliseconds(999));
    let in_time = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": code })).await;
    assert_eq!(in_time.status, StatusCode::OK);
    let replay = p.post(&b, "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": code })).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "a code is single use");
}

#[tokio::test]
async fn one_code_per_minute_and_hourly_limits() {
    let p = Portal::new().await;
    let b = Browser::default();
    assert_eq!(p.request_code(&b, PHONE_A).await.status, StatusCode::ACCEPTED);
    p.advance(Duration::seconds(59) + Duration::milliseconds(999));
    let early = p.request_code(&b, PHONE_A).await;
    assert_eq!(early.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(early.headers["retry-after"], "1");
    p.advance(Duration::milliseconds(1));
    assert_eq!(p.request_code(&b, PHONE_A).await.status, StatusCode::ACCEPTED, "the 61st second");
    for _ in 0..3 {
        p.advance(Duration::seconds(60));
        assert_eq!(p.request_code(&b, PHONE_A).await.status, StatusCode::ACCEPTED);
    }
    p.advance(Duration::seconds(60));
    assert_eq!(p.request_code(&b, PHONE_A).await.status, StatusCode::TOO_MANY_REQUESTS, "6th code in an hour");
    assert_eq!(p.messages().len(), 5);
    p.advance(Duration::minutes(56));
    assert_eq!(p.request_code(&b, PHONE_A).await.status, StatusCode::ACCEPTED, "the hour has passed");

    let from = Browser { ip: Some([10, 0, 0, 9]), ..Default::default() };
    for i in 0..20 {
        let phone = format!("1370000{:04}", i);
        assert_eq!(p.request_code(&from, &phone).await.status, StatusCode::ACCEPTED, "{phone}");
    }
    assert_eq!(
        p.request_code(&from, "13711110000").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "21st from one address"
    );
    let other = Browser { ip: Some([10, 0, 0, 10]), ..Default::default() };
    assert_eq!(p.request_code(&other, "13711110000").await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn sessions_end_when_idle_after_twelve_hours_and_at_logout() {
    let p = Portal::new().await;
    let b = p.login(PHONE_A).await;
    p.advance(Duration::minutes(29));
    assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::OK, "activity at 29 minutes");
    p.advance(Duration::minutes(29));
    assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::OK, "29 minutes after the last activity");
    p.advance(Duration::minutes(30));
    let idle = p.get(&b, "/api/v1/me").await;
    assert_eq!((idle.status, idle.code().as_str()), (StatusCode::UNAUTHORIZED, "session_expired"));

    let b = p.login(PHONE_A).await;
    for _ in 0..24 {
        p.advance(Duration::minutes(29));
        assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::OK);
    }
    p.advance(Duration::minutes(24));
    assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::UNAUTHORIZED, "12 hours is the absolute limit");

    p.advance(Duration::seconds(61));
    let b = p.login(PHONE_A).await;
    let out = p.post(&b, "/api/v1/auth/logout", json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(p.get(&b, "/api/v1/me").await.status, StatusCode::UNAUTHORIZED, "revoked server-side");
    assert_eq!(p.get(&Browser::default(), "/api/v1/me").await.code(), "unauthenticated");
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_header() {
    let p = Portal::new().await;
    let b = p.login(PHONE_A).await;
    let version = cloudfilm_core::consent::POLICY_VERSION;
    let body = json!({ "policy_version": version, "health_data": true });
    let no_header = Browser { csrf: None, ..b.clone() };
    let refused = p.post(&no_header, "/api/v1/me/consents", body.clone()).await;
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::FORBIDDEN, "csrf"));
    let forged = Browser { csrf: Some("forged".into()), ..b.clone() };
    assert_eq!(p.post(&forged, "/api/v1/me/consents", body.clone()).await.code(), "csrf");
    let other = p.login(PHONE_B).await;
    let crossed = Browser { csrf: other.csrf.clone(), ..b.clone() };
    assert_eq!(p.post(&crossed, "/api/v1/me/consents", body.clone()).await.code(), "csrf", "another session's token");
    assert_eq!(p.get(&b, "/api/v1/me").await.json()["consents"]["complete"], false, "nothing changed");
    assert_eq!(p.post(&b, "/api/v1/me/consents", body).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_unmasked_id_number_needs_a_fresh_code() {
    let p = Portal::new().await;
    let mut b = p.patient(PHONE_A).await;
    let member = p.member(&b, "张三", ID_A, "self").await;
    let path = format!("/api/v1/members/{member}/id-number");
    let masked = p.get(&b, "/api/v1/members").await;
    assert!(masked.text().contains("1101**********002X") && !masked.text().contains(ID_A));
    assert_eq!(p.get(&b, &path).await.code(), "step_up_required");

    p.advance(Duration::seconds(60));
    assert_eq!(p.post(&b, "/api/v1/auth/step-up/otp", json!({})).await.status, StatusCode::ACCEPTED);
    let code = p.last_code(PHONE_A);
    let old = b.clone();
    let stepped = p.post(&b, "/api/v1/auth/step-up", json!({ "code": code })).await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.text());
    take_cookies(&mut b, &stepped);
    assert_ne!(b.session, old.session, "a new token at step-up");
    assert_eq!(p.get(&old, "/api/v1/me").await.status, StatusCode::UNAUTHORIZED, "the old token is revoked");
    let revealed = p.get(&b, &path).await;
    assert_eq!(revealed.json()["id_number"], ID_A);
    assert_eq!(revealed.json()["name"], "张三");
    p.advance(Duration::seconds(299));
    assert_eq!(p.get(&b, &path).await.status, StatusCode::OK);
    p.advance(Duration::seconds(1));
    assert_eq!(p.get(&b, &path).await.code(), "step_up_required", "fresh means the last 5 minutes");
    let login_code_for_step_up = p.post(&b, "/api/v1/auth/step-up", json!({ "code": code })).await;
    assert_eq!(login_code_for_step_up.status, StatusCode::UNAUTHORIZED, "a used code does not step up again");
}

#[tokio::test]
async fn under_tls_every_answer_asks_for_https_and_cookies_are_secure() {
    let p = Portal::with(|c| c.patients.secure_cookies = true).await;
    let page = p.get(&Browser::default(), "/").await;
    assert_eq!(page.headers[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000; includeSubDomains");
    assert_eq!(p.request_code(&Browser::default(), PHONE_A).await.status, StatusCode::ACCEPTED);
    let code = p.last_code(PHONE_A);
    let login = p.post(&Browser::default(), "/api/v1/auth/login", json!({ "phone": PHONE_A, "code": code })).await;
    assert!(login.headers.get_all(header::SET_COOKIE).iter().all(|c| c.to_str().unwrap().contains("; Secure")));
    let plain = Portal::new().await;
    assert!(!plain.get(&Browser::default(), "/").await.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}
