//! Holding an adult (issue 13 item 14): an account that adds an adult as parent, spouse or
//! other and matches one exam sees nothing of theirs until that adult says yes — by the code
//! sent to the phone on the hospital's record, or from their own account. The adult sees who
//! holds them and ends it at once; both access logs and the audit chain show every step.
//! Minors held by their guardian stay as they were; a child who turns 18 closes.

use crate::common::*;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{Value, json};

/// A phone on the hospital's record that no account uses.
const PHONE_RECORD: &str = "13700137000";
const PHONE_C: &str = "13600136000";

struct World {
    /// The stranger (phone B) and the member it holds the adult as.
    stranger: Browser,
    member: String,
    /// The adult's own account (phone A), its "self" matched, and the adult's two exams.
    adult: Browser,
    exams: Vec<String>,
}

/// The adult 张三 (ID A) has an exam at each of two hospitals, recorded with `record_phone`;
/// the adult's own account holds them as "self"; a stranger adds them as spouse and matches
/// one exam by the hospital's name alone.
async fn world(p: &Portal, record_phone: &str) -> World {
    let h1 = p.org("H1", "协和医院", true).await;
    let h2 = p.org("H2", "仁济医院", true).await;
    let zhang = person("ZHANG^SAN=张^三", "MRN-1", ID_A, record_phone);
    p.study(&h1, 1, &zhang, "ACC-1", "20260105").await;
    p.study(&h2, 2, &zhang, "ACC-2", "20260310").await;
    let adult = p.patient(PHONE_A).await;
    let me = p.member(&adult, "张三", ID_A, "self").await;
    let matched = p.post(&adult, &format!("/api/v1/members/{me}/match"), json!({ "accession_number": "ACC-1" })).await;
    let exams: Vec<String> =
        matched.json()["matched"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect();
    assert_eq!(exams.len(), 2, "{}", matched.text());

    let stranger = p.patient(PHONE_B).await;
    let member = p.member(&stranger, "张三", ID_A, "spouse").await;
    let reply =
        p.post(&stranger, &format!("/api/v1/members/{member}/match"), json!({ "organization": "协和医院" })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["matched"], json!([]), "the match shows nothing before the adult's yes");
    assert_eq!(reply.json()["consent"], "required");
    World { stranger, member, adult, exams }
}

fn denied(reply: &Reply, what: &str) {
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::FORBIDDEN, "member_consent_required"), "{what}");
}

/// Every read of the member's data, through the API: each answers 403 while closed.
async fn assert_closed(p: &Portal, w: &World) {
    let b = &w.stranger;
    denied(&p.get(b, &format!("/api/v1/members/{}/exams", w.member)).await, "exam list");
    for exam in &w.exams {
        denied(&p.get(b, &format!("/api/v1/exams/{exam}")).await, "exam detail");
        denied(&p.get(b, &format!("/api/v1/exams/{exam}/series/1/images/1")).await, "image");
        denied(&p.get(b, &format!("/api/v1/exams/{exam}/report.pdf")).await, "report");
        denied(&p.get(b, &format!("/api/v1/exams/{exam}/shares")).await, "share list");
        let share = json!({ "valid_hours": 1, "password": "secret1" });
        denied(&p.post(b, &format!("/api/v1/exams/{exam}/shares"), share).await, "share");
        denied(&p.post(b, &format!("/api/v1/exams/{exam}/downloads"), json!({})).await, "download");
    }
    let member = member_of(p, b, &w.member).await;
    assert_ne!(member["consent"], "given");
}

async fn member_of(p: &Portal, b: &Browser, id: &str) -> Value {
    let list = p.get(b, "/api/v1/members").await.json();
    list["members"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().expect("listed")
}

/// Confirms the session of a browser logged in with `phone` by a fresh step-up code.
async fn step_up_as(p: &Portal, b: &mut Browser, phone: &str) {
    p.advance(Duration::seconds(61));
    let sent = p.post(b, "/api/v1/auth/step-up/otp", json!({})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    let code = p.last_code(phone);
    let stepped = p.post(b, "/api/v1/auth/step-up", json!({ "code": code })).await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.text());
    take_cookies(b, &stepped);
}

async fn export_text(p: &Portal, b: &mut Browser, phone: &str) -> String {
    step_up_as(p, b, phone).await;
    let reply = p.get(b, "/api/v1/me/export").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let files = unzip(&reply.body);
    files.keys().cloned().collect::<Vec<_>>().join("\n") + &String::from_utf8_lossy(&files["exams.json"])
}

async fn holders(p: &Portal, b: &Browser) -> Vec<Value> {
    let reply = p.get(b, "/api/v1/me/holders").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["holders"].as_array().unwrap().clone()
}

fn log_text(reply: Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.text()
}

#[tokio::test]
async fn an_adult_added_by_a_stranger_is_closed_on_every_read_path_until_they_approve() {
    let p = Portal::new().await;
    let mut w = world(&p, PHONE_A).await;
    assert_closed(&p, &w).await;
    let export = export_text(&p, &mut w.stranger, PHONE_B).await;
    for exam in &w.exams {
        assert!(!export.contains(exam.as_str()), "the export holds none of the adult's exams");
    }

    // The adult sees the holding in their own account, and approves it.
    let held = holders(&p, &w.adult).await;
    assert_eq!(held.len(), 1);
    assert_eq!((held[0]["id"].as_str(), held[0]["relation"].as_str()), (Some(w.member.as_str()), Some("spouse")));
    assert_eq!(
        (held[0]["consent"].as_str(), held[0]["holder_phone"].as_str()),
        (Some("required"), Some("139****9000"))
    );
    assert!(!p.get(&w.adult, "/api/v1/me/holders").await.text().contains(PHONE_B));
    let approved = p.post(&w.adult, &format!("/api/v1/me/holders/{}/approve", w.member), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    assert_eq!(
        (approved.json()["consent"].as_str(), approved.json()["consent_via"].as_str()),
        (Some("given"), Some("account"))
    );

    let list = p.get(&w.stranger, &format!("/api/v1/members/{}/exams", w.member)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(list.json()["exams"].as_array().unwrap().len(), 2, "both hospitals once the adult said yes");
    for exam in &w.exams {
        assert_eq!(p.get(&w.stranger, &format!("/api/v1/exams/{exam}")).await.status, StatusCode::OK);
        assert_eq!(p.get(&w.stranger, &format!("/api/v1/exams/{exam}/series/1/images/1")).await.status, StatusCode::OK);
    }
    assert_eq!(member_of(&p, &w.stranger, &w.member).await["consent"], "given");

    // A share made while it was open closes with the holding; so do the exams, at once.
    let exam = &w.exams[0];
    let share = p
        .post(&w.stranger, &format!("/api/v1/exams/{exam}/shares"), json!({ "valid_hours": 2, "password": "secret1" }))
        .await;
    assert_eq!(share.status, StatusCode::CREATED, "{}", share.text());
    let token = share.json()["url"].as_str().unwrap().rsplit_once("/s/").unwrap().1.to_owned();
    let mut guest = Browser::at([10, 0, 0, 9]);
    let opened = p.post(&guest, &format!("/api/v1/shared/{token}/unlock"), json!({ "password": "secret1" })).await;
    take_cookies(&mut guest, &opened);
    assert_eq!(p.get(&guest, "/api/v1/shared/exam").await.status, StatusCode::OK);

    let download = p.post(&w.stranger, &format!("/api/v1/exams/{exam}/downloads"), json!({})).await;
    assert_eq!(download.status, StatusCode::CREATED, "{}", download.text());
    let link = download.json()["url"].as_str().unwrap().rsplit_once("/d/").unwrap().1.to_owned();
    let security = p.last_code(PHONE_B);

    let ended = p.delete(&w.adult, &format!("/api/v1/me/holders/{}", w.member)).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text());
    assert_closed(&p, &w).await;
    assert_eq!(p.get(&guest, "/api/v1/shared/exam").await.status, StatusCode::GONE, "the share closes too");
    let fetched =
        p.post(&Browser::at([10, 0, 0, 8]), &format!("/api/v1/downloads/{link}"), json!({ "code": security })).await;
    assert_eq!(fetched.status, StatusCode::GONE, "the download link closes too: {}", fetched.text());
    assert_eq!(holders(&p, &w.adult).await[0]["consent"], "ended");
    assert_eq!(member_of(&p, &w.stranger, &w.member).await["consent"], "ended");

    // Both access logs tell it; the audit chain too, without personal values.
    let adult_log = log_text(p.get(&w.adult, "/api/v1/me/access-log").await);
    assert!(adult_log.contains(&format!("holding {}", w.member)), "{adult_log}");
    assert!(adult_log.contains("approved: this account now sees your exams"), "{adult_log}");
    assert!(adult_log.contains("viewed your exam list (2 exams)"), "the adult sees each look: {adult_log}");
    assert!(adult_log.contains("viewed the exam"), "{adult_log}");
    assert!(adult_log.contains("ended by you: this account no longer sees your exams"), "{adult_log}");
    let stranger_log = log_text(p.get(&w.stranger, "/api/v1/me/access-log").await);
    assert!(stranger_log.contains("approved from their own account"), "{stranger_log}");
    assert!(stranger_log.contains("ended your access from their own account"), "{stranger_log}");
    let audit = p.audit_text().await;
    assert!(audit.contains("member consent given from the member's own account"));
    assert!(audit.contains("holding ended by the member's own account"));
    assert!(!audit.contains(ID_A) && !audit.contains(PHONE_A) && !audit.contains(PHONE_B));
}

#[tokio::test]
async fn the_code_goes_to_the_phone_on_the_record_is_single_use_expires_and_is_limited() {
    let p = Portal::new().await;
    let w = world(&p, PHONE_RECORD).await;
    let ask = format!("/api/v1/members/{}/consent-request", w.member);
    let answer = format!("/api/v1/members/{}/consent", w.member);
    let before = p.messages().len();
    let sent = p.post(&w.stranger, &ask, json!({})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    assert!(!sent.text().contains(PHONE_RECORD) && !sent.text().contains("0137000"), "the phone is not shown");
    let new: Vec<_> = p.messages().into_iter().skip(before).collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].0, PHONE_RECORD, "the code goes to the phone on the hospital's record, nowhere else");
    assert!(!new[0].1.contains("张") && !new[0].1.contains(ID_A), "the message names nobody");
    assert!(new[0].1.contains("139****9000"), "it says which account asks");
    let first = p.last_code(PHONE_RECORD);
    assert_eq!(p.get(&w.adult, "/api/v1/me/holders").await.json()["holders"][0]["consent"], "requested");

    let again = p.post(&w.stranger, &ask, json!({})).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS, "one code a minute");
    let wrong = if first == "000000" { "111111" } else { "000000" };
    let reply = p.post(&w.stranger, &answer, json!({ "code": wrong })).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code"));
    assert_closed(&p, &w).await;

    p.advance(Duration::seconds(301));
    let late = p.post(&w.stranger, &answer, json!({ "code": first })).await;
    assert_eq!(late.code(), "code_expired", "five minutes");
    assert_eq!(p.post(&w.stranger, &ask, json!({})).await.status, StatusCode::ACCEPTED);
    let second = p.last_code(PHONE_RECORD);
    if second != first {
        let old = p.post(&w.stranger, &answer, json!({ "code": first })).await;
        assert_eq!(old.code(), "invalid_code", "a new code replaces the old one");
    }
    // A second holder of the same adult cannot use the code asked for the first.
    let other = p.patient(PHONE_C).await;
    let theirs = p.member(&other, "张三", ID_A, "other").await;
    p.post(&other, &format!("/api/v1/members/{theirs}/match"), json!({ "accession_number": "ACC-2" })).await;
    let borrowed = p.post(&other, &format!("/api/v1/members/{theirs}/consent"), json!({ "code": second })).await;
    assert_eq!(borrowed.status, StatusCode::UNPROCESSABLE_ENTITY, "a code answers only the holding it was asked for");

    let yes = p.post(&w.stranger, &answer, json!({ "code": second })).await;
    assert_eq!(yes.status, StatusCode::OK, "{}", yes.text());
    assert_eq!(yes.json()["consent"], "given");
    let (to, notice) = p.messages().pop().unwrap();
    assert_eq!(to, PHONE_A, "the adult's own account phone hears of it too");
    assert!(notice.contains("139****9000") && notice.contains("Who can see my exams"), "{notice}");
    let list = p.get(&w.stranger, &format!("/api/v1/members/{}/exams", w.member)).await;
    assert_eq!(list.json()["exams"].as_array().unwrap().len(), 2, "{}", list.text());
    let held = holders(&p, &w.adult).await;
    let mine = held.iter().find(|h| h["id"] == w.member.as_str()).unwrap();
    assert_eq!((mine["consent"].as_str(), mine["consent_via"].as_str()), (Some("given"), Some("code")));
    assert_eq!(held.len(), 2, "both holders are listed");
    denied(&p.get(&other, &format!("/api/v1/members/{theirs}/exams")).await, "the other holder is still closed");

    // The adult ends it: closed at once; the used code does not open it again.
    assert_eq!(p.delete(&w.adult, &format!("/api/v1/me/holders/{}", w.member)).await.status, StatusCode::NO_CONTENT);
    assert_closed(&p, &w).await;
    let reused = p.post(&w.stranger, &answer, json!({ "code": second })).await;
    assert_eq!((reused.status, reused.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code"));
    // Five wrong tries spend a code: then even the right one is refused.
    p.advance(Duration::seconds(61));
    assert_eq!(p.post(&w.stranger, &ask, json!({})).await.status, StatusCode::ACCEPTED);
    let third = p.last_code(PHONE_RECORD);
    let wrong = if third == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(p.post(&w.stranger, &answer, json!({ "code": wrong })).await.code(), "invalid_code");
    }
    assert_eq!(p.post(&w.stranger, &answer, json!({ "code": third })).await.code(), "code_exhausted");
    assert_closed(&p, &w).await;

    let adult_log = log_text(p.get(&w.adult, "/api/v1/me/access-log").await);
    assert!(adult_log.contains("asked to see your exams: a code was sent to the phone on your hospital record"));
    assert!(adult_log.contains("now sees your exams: you consented by the code sent to your phone"));
    assert!(adult_log.contains("ended by you"));
    let stranger_log = log_text(p.get(&w.stranger, "/api/v1/me/access-log").await);
    assert!(stranger_log.contains("asked the consent of your spouse member"));
    assert!(stranger_log.contains("consented by the code sent to their phone"));
    assert!(stranger_log.contains("ended your access"));
    let audit = p.audit_text().await;
    assert!(audit.contains("member consent requested: code sent to the phone on the hospital's record"));
    assert!(audit.contains("member consent by the code sent to the phone on the hospital's record"));
    assert!(!audit.contains(PHONE_RECORD) && !audit.contains(ID_A), "no phone or ID number in the audit");
}

#[tokio::test]
async fn without_a_phone_on_record_the_request_is_409_and_only_the_adults_own_approval_opens() {
    let p = Portal::new().await;
    let w = world(&p, "").await;
    let reply = p.post(&w.stranger, &format!("/api/v1/members/{}/consent-request", w.member), json!({})).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "no_phone_on_record"));
    assert!(p.messages().iter().all(|(to, _)| to == PHONE_A || to == PHONE_B), "no code went anywhere");
    // Nobody but the adult approves or ends: the stranger, or a third account, gets 404.
    let third = p.patient(PHONE_C).await;
    for b in [&w.stranger, &third] {
        assert_eq!(p.get(b, "/api/v1/me/holders").await.json()["holders"], json!([]));
        let path = format!("/api/v1/me/holders/{}", w.member);
        assert_eq!(p.post(b, &format!("{path}/approve"), json!({})).await.status, StatusCode::NOT_FOUND);
        assert_eq!(p.send(b, Method::DELETE, &path, None).await.status, StatusCode::NOT_FOUND);
    }
    // An account whose "self" is not matched is not the adult yet.
    let unverified = p.patient("13500135000").await;
    p.member(&unverified, "王五", ID_SPOUSE, "self").await;
    assert_eq!(p.get(&unverified, "/api/v1/me/holders").await.json()["self_verified"], false);
    assert_closed(&p, &w).await;
    let approved = p.post(&w.adult, &format!("/api/v1/me/holders/{}/approve", w.member), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text());
    let list = p.get(&w.stranger, &format!("/api/v1/members/{}/exams", w.member)).await;
    assert_eq!(list.json()["exams"].as_array().unwrap().len(), 2, "{}", list.text());
}

#[tokio::test]
async fn a_minor_is_held_by_the_guardian_as_before_until_their_18th_birthday() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    let almost = id_born("20081124");
    p.study(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, PHONE_A), "ACC-1", "20260105").await;
    p.study(&h1, 2, &person("ZHANG^XIAOMING=张^小明", "MRN-C", ID_CHILD, PHONE_A), "ACC-C", "20260107").await;
    p.study(&h1, 3, &person("ZHANG^XIAOHONG=张^小红", "MRN-D", &almost, PHONE_A), "ACC-D", "20260108").await;
    let b = p.patient(PHONE_A).await;
    p.member(&b, "张三", ID_A, "self").await;
    let child = p.member(&b, "张小明", ID_CHILD, "child").await;
    let teen = p.member(&b, "张小红", &almost, "child").await;
    for (member, accession) in [(&child, "ACC-C"), (&teen, "ACC-D")] {
        let reply =
            p.post(&b, &format!("/api/v1/members/{member}/match"), json!({ "accession_number": accession })).await;
        assert_eq!(reply.json()["matched"].as_array().unwrap().len(), 1, "{}", reply.text());
        assert_eq!(p.get(&b, &format!("/api/v1/members/{member}/exams")).await.status, StatusCode::OK);
        assert_eq!(member_of(&p, &b, member).await["consent"], "not_needed");
        let ask = p.post(&b, &format!("/api/v1/members/{member}/consent-request"), json!({})).await;
        assert_eq!((ask.status, ask.code().as_str()), (StatusCode::CONFLICT, "consent_not_needed"));
    }
    let teen_exam =
        p.get(&b, &format!("/api/v1/members/{teen}/exams")).await.json()["exams"][0]["id"].as_str().unwrap().to_owned();
    // The next day the teen is an adult: the guardian now needs their yes as anyone would.
    p.advance(Duration::days(1));
    let b = p.patient(PHONE_A).await;
    assert_eq!(p.get(&b, &format!("/api/v1/members/{child}/exams")).await.status, StatusCode::OK, "still a minor");
    denied(&p.get(&b, &format!("/api/v1/members/{teen}/exams")).await, "18 today");
    denied(&p.get(&b, &format!("/api/v1/exams/{teen_exam}")).await, "18 today");
    assert_eq!(member_of(&p, &b, &teen).await["consent"], "required");
    assert_eq!(
        p.post(&b, &format!("/api/v1/members/{teen}/consent-request"), json!({})).await.status,
        StatusCode::ACCEPTED
    );
    let code = p.last_code(PHONE_A);
    let yes = p.post(&b, &format!("/api/v1/members/{teen}/consent"), json!({ "code": code })).await;
    assert_eq!(yes.status, StatusCode::OK, "{}", yes.text());
    assert_eq!(p.get(&b, &format!("/api/v1/exams/{teen_exam}")).await.status, StatusCode::OK);
}
