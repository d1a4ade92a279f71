//! Reports inside DICOM: the text of a Structured Report's content tree, and the document of
//! an Encapsulated PDF instance. Person names in the tree (observers, verifiers) are left out:
//! the patient's screen needs findings, not names.

use crate::inspect::text;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// SOP classes whose instances are Structured Reports.
pub fn is_structured_report(sop_class: &str) -> bool {
    sop_class.starts_with("1.2.840.10008.5.1.4.1.1.88.")
}

pub const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";

/// Deepest content tree walked, and most text returned.
const MAX_DEPTH: usize = 16;
const MAX_TEXT: usize = 256 * 1024;

/// The readable text of an SR: section headings and their findings, one per line.
pub fn sr_text(obj: &InMemDicomObject) -> String {
    let mut out = String::new();
    if let Some(title) = concept_name(obj) {
        out.push_str(&title);
        out.push('\n');
    }
    walk(obj, 0, &mut out);
    if out.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out.trim_end().to_owned()
}

fn concept_name(item: &InMemDicomObject) -> Option<String> {
    let seq = item.element(tags::CONCEPT_NAME_CODE_SEQUENCE).ok()?.items()?.first()?;
    text(seq, tags::CODE_MEANING)
}

fn walk(obj: &InMemDicomObject, depth: usize, out: &mut String) {
    if depth >= MAX_DEPTH || out.len() > MAX_TEXT {
        return;
    }
    let Some(items) = obj.element(tags::CONTENT_SEQUENCE).ok().and_then(|e| e.items()) else { return };
    for item in items {
        let name = concept_name(item);
        let value = match text(item, tags::VALUE_TYPE).as_deref() {
            Some("TEXT") => text(item, tags::TEXT_VALUE),
            Some("CODE") => item
                .element(tags::CONCEPT_CODE_SEQUENCE)
                .ok()
                .and_then(|e| e.items())
                .and_then(|i| i.first())
                .and_then(|c| text(c, tags::CODE_MEANING)),
            Some("NUM") => item.element(tags::MEASURED_VALUE_SEQUENCE).ok().and_then(|e| e.items()).and_then(|i| {
                let m = i.first()?;
                let unit = m
                    .element(tags::MEASUREMENT_UNITS_CODE_SEQUENCE)
                    .ok()
                    .and_then(|e| e.items())
                    .and_then(|u| u.first())
                    .and_then(|u| text(u, tags::CODE_VALUE));
                Some(format!("{} {}", text(m, tags::NUMERIC_VALUE)?, unit.unwrap_or_default()).trim().to_owned())
            }),
            Some("DATE") => text(item, tags::DATE),
            Some("CONTAINER") => {
                if let Some(heading) = name.as_deref() {
                    out.push_str(&format!("\n{heading}\n"));
                }
                walk(item, depth + 1, out);
                continue;
            }
            _ => None,
        };
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            match name {
                Some(name) => out.push_str(&format!("{name}: {}\n", value.trim())),
                None => out.push_str(&format!("{}\n", value.trim())),
            }
        }
        walk(item, depth + 1, out);
    }
}

/// The bytes of an Encapsulated PDF document (without the padding byte of an odd length).
pub fn encapsulated_pdf(obj: &InMemDicomObject) -> Option<Vec<u8>> {
    let bytes = obj.element(tags::ENCAPSULATED_DOCUMENT).ok()?.to_bytes().ok()?.into_owned();
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].starts_with(b"%PDF").then(|| bytes[..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, VR};

    fn code(meaning: &str) -> InMemDicomObject {
        InMemDicomObject::from_element_iter([DataElement::new(tags::CODE_MEANING, VR::LO, meaning)])
    }

    fn item(value_type: &str, name: &str, extra: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
        let mut elements = vec![
            DataElement::new(tags::VALUE_TYPE, VR::CS, value_type),
            DataElement::new(
                tags::CONCEPT_NAME_CODE_SEQUENCE,
                VR::SQ,
                dicom_core::value::DataSetSequence::from(vec![code(name)]),
            ),
        ];
        elements.extend(extra);
        InMemDicomObject::from_element_iter(elements)
    }

    #[test]
    fn text_of_a_report_tree_without_names() {
        let findings = item("TEXT", "Findings", vec![DataElement::new(tags::TEXT_VALUE, VR::UT, "No focal lesion.")]);
        let observer = item("PNAME", "Observer", vec![DataElement::new(tags::PERSON_NAME, VR::PN, "Wang^Wu")]);
        let section = item(
            "CONTAINER",
            "Impression",
            vec![DataElement::new(
                tags::CONTENT_SEQUENCE,
                VR::SQ,
                dicom_core::value::DataSetSequence::from(vec![findings]),
            )],
        );
        let mut root = item("CONTAINER", "CT Chest Report", vec![]);
        root.put(DataElement::new(
            tags::CONTENT_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![observer, section]),
        ));
        let text = sr_text(&root);
        assert_eq!(text, "CT Chest Report\n\nImpression\nFindings: No focal lesion.");
        assert!(!text.contains("Wang"));
    }

    #[test]
    fn pdf_bytes_come_back_without_padding() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::ENCAPSULATED_DOCUMENT,
            VR::OB,
            dicom_core::PrimitiveValue::from(b"%PDF-1.4 x\0".to_vec()),
        ));
        assert_eq!(encapsulated_pdf(&obj).unwrap(), b"%PDF-1.4 x");
        obj.put(DataElement::new(
            tags::ENCAPSULATED_DOCUMENT,
            VR::OB,
            dicom_core::PrimitiveValue::from(b"<html>".to_vec()),
        ));
        assert!(encapsulated_pdf(&obj).is_none());
    }
}
