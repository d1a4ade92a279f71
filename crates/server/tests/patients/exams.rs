//! Exam detail with the hospital's report, and rendered images of each series.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

async fn matched_patient(p: &Portal) -> (Browser, String) {
    let h1 = p.org("H1", "协和医院", true).await;
    p.study(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, ""), "ACC-1", "20260105").await;
    let key = p.archive.create_api_key(&h1, Vec::new(), "test").await.unwrap();
    let report = Request::post("/api/v1/reports")
        .header(header::AUTHORIZATION, format!("Bearer {}", key.key))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({ "accession_number": "ACC-1", "text": "影像所见：双肺纹理清晰。\n印象：未见异常。" }).to_string(),
        ))
        .unwrap();
    let attached = p.raw(report).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.text());
    let no_key = Request::post("/api/v1/reports")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "accession_number": "ACC-1", "text": "x" }).to_string()))
        .unwrap();
    assert_eq!(p.raw(no_key).await.status, StatusCode::UNAUTHORIZED);
    let unknown = Request::post("/api/v1/reports")
        .header(header::AUTHORIZATION, format!("Bearer {}", key.key))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "accession_number": "ACC-404", "text": "x" }).to_string()))
        .unwrap();
    assert_eq!(p.raw(unknown).await.status, StatusCode::NOT_FOUND);

    let b = p.patient(PHONE_A).await;
    let me = p.member(&b, "张三", ID_A, "self").await;
    let matched = p.post(&b, &format!("/api/v1/members/{me}/match"), json!({ "accession_number": "ACC-1" })).await;
    let exam = matched.json()["matched"][0].as_str().unwrap().to_owned();
    (b, exam)
}

#[tokio::test]
async fn the_detail_shows_the_report_and_the_series() {
    let p = Portal::new().await;
    let (b, exam) = matched_patient(&p).await;
    let detail = p.get(&b, &format!("/api/v1/exams/{exam}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text());
    let d = detail.json();
    assert_eq!(d["organization"], "协和医院");
    assert_eq!(d["accession_number"], "ACC-1");
    assert!(d["report"]["text"].as_str().unwrap().contains("未见异常"));
    assert_eq!(d["series"][0]["id"], "1");
    assert_eq!(d["series"][0]["images"], 2);
    assert_eq!(d["series"][0]["modality"], "CT");
    assert!(!detail.text().contains("张三") && !detail.text().contains(ID_A), "no personal values in the detail");
    assert_eq!(detail.headers[header::CACHE_CONTROL], "no-store");
    let audit = p.audit_text().await;
    assert!(audit.contains(&format!("exam:{exam}")) && audit.contains("exam viewed through member:"));
}

#[tokio::test]
async fn images_render_with_a_window_and_out_of_range_is_404() {
    let p = Portal::new().await;
    let (b, exam) = matched_patient(&p).await;
    let plain = p.get(&b, &format!("/api/v1/exams/{exam}/series/1/images/1")).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(plain.headers[header::CONTENT_TYPE], "image/jpeg");
    assert!(plain.body.starts_with(&[0xFF, 0xD8]));
    let windowed = p.get(&b, &format!("/api/v1/exams/{exam}/series/1/images/1?window=40,80")).await;
    assert_eq!(windowed.status, StatusCode::OK);
    assert_ne!(windowed.body, plain.body, "a window changes the picture");
    let png = p.get(&b, &format!("/api/v1/exams/{exam}/series/1/images/2")).await;
    assert_eq!(png.status, StatusCode::OK);
    for path in [
        "series/1/images/3",
        "series/2/images/1",
        "series/0/images/1",
        "series/1/images/0",
        "series/1/images/1?frame=2",
    ] {
        assert_eq!(p.get(&b, &format!("/api/v1/exams/{exam}/{path}")).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let bad_window = p.get(&b, &format!("/api/v1/exams/{exam}/series/1/images/1?window=abc")).await;
    assert_eq!(bad_window.status, StatusCode::BAD_REQUEST);
    assert!(p.audit_text().await.contains("image 1/1 frame 1 viewed through member:"));
}

#[tokio::test]
async fn structured_and_pdf_reports_sent_as_dicom_show_in_the_detail() {
    let p = Portal::new().await;
    let h1 = p.org("H1", "协和医院", true).await;
    let zhang = person("ZHANG^SAN=张^三", "MRN-1", ID_A, "");
    let study = spec(&h1, 7, &zhang, "ACC-7", "20260105");
    let mut files = cloudfilm_dicom::synth::generate_study(&study);
    files.extend(cloudfilm_dicom::synth::report_instances(&study, "右肺上叶小结节 4 mm。", "建议 12 个月后复查。"));
    p.store(&h1, files).await;
    let b = p.patient(PHONE_A).await;
    let me = p.member(&b, "张三", ID_A, "self").await;
    let matched = p.post(&b, &format!("/api/v1/members/{me}/match"), json!({ "accession_number": "ACC-7" })).await;
    let exam = matched.json()["matched"][0].as_str().unwrap().to_owned();
    let list = p.get(&b, &format!("/api/v1/members/{me}/exams")).await.json();
    assert_eq!(list["exams"][0]["modality"], "CT", "report documents are not image modalities");
    let d = p.get(&b, &format!("/api/v1/exams/{exam}")).await.json();
    let text = d["report"]["text"].as_str().unwrap();
    assert!(text.contains("影像所见 Findings: 右肺上叶小结节 4 mm。"), "{text}");
    assert!(text.contains("印象 Impression: 建议 12 个月后复查。"), "{text}");
    assert_eq!(d["series"].as_array().unwrap().len(), 1, "report series are not image series");
    let pdf_path = d["report"]["pdf"].as_str().unwrap();
    let pdf = p.get(&b, pdf_path).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(pdf.body.starts_with(b"%PDF-1.4") && pdf.body.ends_with(b"%%EOF\n"));
}
