//! Members: validation of names and ID numbers, the rules for minors and "self", masking.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn bad_members_get_a_clear_422_and_nothing_changes() {
    let p = Portal::new().await;
    let b = p.patient(PHONE_A).await;
    let cases = [
        ("张三", "110101199003077777", "self", "invalid_id_number"),
        ("张三", "11010519491231002", "self", "invalid_id_number"),
        ("张三", "11010519491231002XX", "self", "invalid_id_number"),
        ("张三", "110105194902300025", "self", "invalid_id_number"),
        ("张三", "990105194912310020", "self", "invalid_id_number"),
        ("张三", &id_born("20991231"), "self", "invalid_id_number"),
        ("张三", "1101051949123100AX", "self", "invalid_id_number"),
        ("  ", ID_A, "self", "invalid_name"),
        (&"张".repeat(65), ID_A, "self", "invalid_name"),
        ("张三", ID_A, "cousin", "invalid_relation"),
    ];
    for (name, id, relation, code) in cases {
        let reply = p.add_member(&b, name, id, relation).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{id} {relation}");
    }
    let wrong_shape = p.post(&b, "/api/v1/members", json!({ "name": "张三" })).await;
    assert_eq!(wrong_shape.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_type = p
        .post(&b, "/api/v1/members", json!({ "name": "张三", "id_number": 110105194912310020u64, "relation": "self" }))
        .await;
    assert_eq!(wrong_type.code(), "invalid_body");
    assert!(!wrong_type.text().contains("110105194912310020"), "errors do not echo submitted values");
    let huge = p
        .post(&b, "/api/v1/members", json!({ "name": "x".repeat(100_000), "id_number": ID_A, "relation": "self" }))
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(p.get(&b, "/api/v1/members").await.json()["members"], json!([]));
}

#[tokio::test]
async fn every_single_digit_change_of_a_valid_number_is_refused() {
    let p = Portal::new().await;
    let b = p.patient(PHONE_A).await;
    let valid = ID_B.as_bytes();
    for i in [3usize, 9, 14, 16, 17] {
        let mut changed = valid.to_vec();
        changed[i] = if changed[i] == b'5' { b'6' } else { b'5' };
        let reply = p.add_member(&b, "李四", std::str::from_utf8(&changed).unwrap(), "self").await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "digit {i} changed");
    }
    assert_eq!(p.add_member(&b, "李四", ID_B, "self").await.status, StatusCode::CREATED, "the unchanged number");
}

#[tokio::test]
async fn members_come_back_masked_with_age_from_the_number() {
    let p = Portal::new().await;
    let b = p.patient(PHONE_A).await;
    let reply = p.add_member(&b, "  张三丰 ", "１１０１０５１９４９１２３１００２ｘ", "self").await;
    assert_eq!(reply.status, StatusCode::CREATED, "full-width digits and a small x are normalized");
    let m = reply.json();
    assert_eq!(m["name"], "张*丰");
    assert_eq!(m["id_number"], "1101**********002X");
    assert_eq!(m["age"], 76);
    assert_eq!(m["verified"], true);
    assert_eq!(m["matched"], false);
    let list = p.get(&b, "/api/v1/members").await;
    assert!(!list.text().contains(ID_A) && !list.text().contains("张三丰"));
    let audit = p.audit_text().await;
    assert!(audit.contains("member added as self"));
    assert!(
        !audit.contains(ID_A) && !audit.contains("张三丰") && !audit.contains(PHONE_A),
        "no personal values in the audit"
    );
}

#[tokio::test]
async fn minors_only_as_children_of_an_adult_and_self_only_once() {
    let p = Portal::new().await;
    let a = p.patient(PHONE_A).await;
    let first_child = p.add_member(&a, "张小明", ID_CHILD, "child").await;
    assert_eq!(first_child.code(), "self_first");
    p.member(&a, "张三", ID_A, "self").await;
    let as_spouse = p.add_member(&a, "张小明", ID_CHILD, "spouse").await;
    assert_eq!(as_spouse.code(), "minor_needs_guardian");
    p.member(&a, "张小明", ID_CHILD, "child").await;
    let eighteen_today = id_born("20081123");
    let eighteen_tomorrow = id_born("20081124");
    assert_eq!(p.add_member(&a, "甲", &eighteen_tomorrow, "other").await.code(), "minor_needs_guardian");
    assert_eq!(p.add_member(&a, "乙", &eighteen_today, "other").await.status, StatusCode::CREATED);

    let duplicate = p.add_member(&a, "张小明", ID_CHILD, "child").await;
    assert_eq!((duplicate.status, duplicate.code().as_str()), (StatusCode::CONFLICT, "duplicate_member"));
    let second_self = p.add_member(&a, "王五", ID_SPOUSE, "self").await;
    assert_eq!((second_self.status, second_self.code().as_str()), (StatusCode::CONFLICT, "self_exists"));

    let b = p.patient(PHONE_B).await;
    let stolen = p.add_member(&b, "张三", ID_A, "self").await;
    assert_eq!((stolen.status, stolen.code().as_str()), (StatusCode::CONFLICT, "self_elsewhere"));
    assert_eq!(p.add_member(&b, "张三", ID_A, "parent").await.status, StatusCode::CREATED, "family may share members");
    let minor_self = p.add_member(&b, "张小明", ID_CHILD, "self").await;
    assert_eq!(minor_self.code(), "minor_needs_guardian");

    let list = p.get(&a, "/api/v1/members").await.json();
    let relations: Vec<&str> =
        list["members"].as_array().unwrap().iter().map(|m| m["relation"].as_str().unwrap()).collect();
    assert_eq!(relations, ["self", "child", "other"]);
    let child = list["members"][1]["id"].as_str().unwrap();
    assert_eq!(
        p.send(&a, Method::DELETE, &format!("/api/v1/members/{child}"), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(p.get(&a, "/api/v1/members").await.json()["members"].as_array().unwrap().len(), 2);
    assert_eq!(p.delete(&a, &format!("/api/v1/members/{child}")).await.status, StatusCode::NOT_FOUND);
}
