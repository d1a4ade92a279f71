//! The authorization matrix: two accounts (one holding a child as guardian), two organizations
//! (one with the cloud film service off). Nobody reaches what is not theirs through any
//! endpoint: every id of the other side answers exactly like an id that does not exist.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

struct Side {
    browser: Browser,
    members: Vec<String>,
    exams: Vec<String>,
}

async fn side(p: &Portal, phone: &str, people: &[(&str, &str, &str, &str)]) -> Side {
    let browser = p.patient(phone).await;
    let mut members = Vec::new();
    let mut exams = Vec::new();
    for (name, id, relation, accession) in people {
        let member = p.member(&browser, name, id, relation).await;
        let reply = p
            .post(&browser, &format!("/api/v1/members/{member}/match"), json!({ "accession_number": accession }))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        exams.extend(reply.json()["matched"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()));
        members.push(member);
    }
    Side { browser, members, exams }
}

fn member_requests(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/api/v1/members/{id}/exams"), None),
        (Method::GET, format!("/api/v1/members/{id}/id-number"), None),
        (Method::POST, format!("/api/v1/members/{id}/match"), Some(json!({ "accession_number": "ACC-A1" }))),
        (Method::POST, format!("/api/v1/members/{id}/consent-request"), Some(json!({}))),
        (Method::POST, format!("/api/v1/members/{id}/consent"), Some(json!({ "code": "123456" }))),
        (Method::POST, format!("/api/v1/me/holders/{id}/approve"), Some(json!({}))),
        (Method::DELETE, format!("/api/v1/me/holders/{id}"), None),
        (Method::DELETE, format!("/api/v1/members/{id}"), None),
    ]
}

fn exam_requests(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/api/v1/exams/{id}"), None),
        (Method::GET, format!("/api/v1/exams/{id}/series/1/images/1"), None),
        (Method::GET, format!("/api/v1/exams/{id}/report.pdf"), None),
    ]
}

#[tokio::test]
async fn nobody_reaches_what_is_not_theirs() {
    let p = Portal::new().await;
    let on = p.org("ON", "协和医院", true).await;
    let off = p.org("OFF", "关闭医院", false).await;
    let parent = person("ZHANG^SAN=张^三", "MRN-A", ID_A, "");
    let child = person("ZHANG^XIAOMING=张^小明", "MRN-C", ID_CHILD, "");
    let other = person("LI^SI=李^四", "MRN-B", ID_B, "");
    p.study(&on, 1, &parent, "ACC-A1", "20260105").await;
    p.study(&off, 2, &parent, "ACC-A2", "20260106").await;
    p.study(&on, 3, &child, "ACC-C1", "20260107").await;
    p.study(&on, 4, &other, "ACC-B1", "20260108").await;
    p.study(&off, 5, &other, "ACC-B2", "20260109").await;

    let a = side(&p, PHONE_A, &[("张三", ID_A, "self", "ACC-A1"), ("张小明", ID_CHILD, "child", "ACC-C1")]).await;
    let b = side(&p, PHONE_B, &[("李四", ID_B, "self", "ACC-B1")]).await;
    assert_eq!((a.exams.len(), b.exams.len()), (2, 1), "exams of the organization that is off stay hidden");

    let nonexistent_member = "0".repeat(32);
    let nonexistent_exam = "f".repeat(32);
    for (me, them) in [(&a, &b), (&b, &a)] {
        for id in &me.members {
            for (method, path, body) in member_requests(id).into_iter().filter(|(m, _, _)| *m == Method::GET) {
                let reply = p.send(&me.browser, method, &path, body).await;
                assert_ne!(reply.status, StatusCode::NOT_FOUND, "own {path}: {}", reply.text());
            }
        }
        let reference: Vec<Reply> = {
            let mut v = Vec::new();
            for (method, path, body) in member_requests(&nonexistent_member) {
                v.push(p.send(&me.browser, method, &path, body).await);
            }
            v
        };
        for id in &them.members {
            for ((method, path, body), expected) in member_requests(id).into_iter().zip(&reference) {
                let reply = p.send(&me.browser, method, &path, body).await;
                assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
                assert_eq!(reply.body, expected.body, "{path} answers like a missing member");
            }
        }
        let reference: Vec<Reply> = {
            let mut v = Vec::new();
            for (method, path, body) in exam_requests(&nonexistent_exam) {
                v.push(p.send(&me.browser, method, &path, body).await);
            }
            v
        };
        for id in &them.exams {
            for ((method, path, body), expected) in exam_requests(id).into_iter().zip(&reference) {
                let reply = p.send(&me.browser, method, &path, body).await;
                assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
                assert_eq!(reply.body, expected.body, "{path} answers like a missing exam");
            }
        }
        for id in &me.exams {
            assert_eq!(p.get(&me.browser, &format!("/api/v1/exams/{id}")).await.status, StatusCode::OK);
        }
    }
    for id in a.members.iter().chain(&b.members) {
        assert_eq!(
            p.get(&Browser::default(), &format!("/api/v1/members/{id}/exams")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for id in a.exams.iter().chain(&b.exams) {
        assert_eq!(p.get(&Browser::default(), &format!("/api/v1/exams/{id}")).await.status, StatusCode::UNAUTHORIZED);
    }
    let listed = p.get(&a.browser, "/api/v1/members").await.json();
    assert_eq!(listed["members"].as_array().unwrap().len(), 2, "B's members never appear in A's list");
    p.set_cloud_film(&on, false).await;
    for id in &a.exams {
        assert_eq!(
            p.get(&a.browser, &format!("/api/v1/exams/{id}")).await.status,
            StatusCode::NOT_FOUND,
            "service off"
        );
    }
}
