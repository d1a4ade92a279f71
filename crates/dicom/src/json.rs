//! DICOM JSON (PS3.18 Annex F) for QIDO-RS results and WADO-RS metadata, through dicom-json.

use crate::query::tag_u32;
use cloudfilm_core::instance::ResultRow;
use cloudfilm_core::query::{Attr, Include, Level, Query};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::str::FromStr;

fn tag_of(v: u32) -> Tag {
    Tag((v >> 16) as u16, (v & 0xFFFF) as u16)
}

/// The value of an indexed attribute in a result, with multiple values as a list.
pub fn value_of(attr: Attr, r: &ResultRow) -> Vec<String> {
    let one = |v: Option<&String>| v.cloned().into_iter().collect::<Vec<_>>();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).into_iter().collect::<Vec<_>>();
    let s = &r.study;
    match attr {
        Attr::StudyDate => one(s.attrs.date.as_ref()),
        Attr::StudyTime => one(s.attrs.time.as_ref()),
        Attr::AccessionNumber => one(s.attrs.accession_number.as_ref()),
        Attr::ModalitiesInStudy => s.modalities.clone(),
        Attr::InstitutionName => one(s.attrs.institution_name.as_ref()),
        Attr::ReferringPhysicianName => one(s.attrs.referring_physician_name.as_ref()),
        Attr::StudyDescription => one(s.attrs.description.as_ref()),
        Attr::PatientName => one(s.patient.name.as_ref()),
        Attr::PatientID => one(s.patient.id.as_ref()),
        Attr::PatientBirthDate => one(s.patient.birth_date.as_ref()),
        Attr::PatientSex => one(s.patient.sex.as_ref()),
        Attr::OtherPatientIDs => s.patient.other_ids.clone(),
        Attr::PatientTelephoneNumbers => s.patient.telephone_numbers.clone(),
        Attr::StudyInstanceUID => vec![s.study_uid.clone()],
        Attr::StudyID => one(s.attrs.study_id.as_ref()),
        Attr::NumberOfStudyRelatedSeries => vec![s.num_series.to_string()],
        Attr::NumberOfStudyRelatedInstances => vec![s.num_instances.to_string()],
        _ => match (&r.series, &r.instance) {
            (Some(se), _) if attr.level() == Level::Series => match attr {
                Attr::Modality => one(se.attrs.modality.as_ref()),
                Attr::SeriesDate => one(se.attrs.date.as_ref()),
                Attr::SeriesTime => one(se.attrs.time.as_ref()),
                Attr::SeriesDescription => one(se.attrs.description.as_ref()),
                Attr::BodyPartExamined => one(se.attrs.body_part.as_ref()),
                Attr::SeriesInstanceUID => vec![se.series_uid.clone()],
                Attr::SeriesNumber => num(se.attrs.number),
                Attr::NumberOfSeriesRelatedInstances => vec![se.num_instances.to_string()],
                _ => Vec::new(),
            },
            (_, Some(i)) => match attr {
                Attr::SOPClassUID => vec![i.sop_class_uid.clone()],
                Attr::SOPInstanceUID => vec![i.sop_uid.clone()],
                Attr::InstanceNumber => num(i.attrs.number),
                Attr::NumberOfFrames => vec![i.attrs.frames.to_string()],
                Attr::Rows => num(i.attrs.rows.map(i64::from)),
                Attr::Columns => num(i.attrs.columns.map(i64::from)),
                Attr::BitsAllocated => num(i.attrs.bits_allocated.map(i64::from)),
                Attr::AvailableTransferSyntaxUID => vec![i.transfer_syntax.clone()],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
    }
}

/// An indexed attribute as a data element (numbers for IS/US, lists for multiple values).
pub fn element(attr: Attr, values: Vec<String>) -> DataElement<InMemDicomObject> {
    let vr = VR::from_str(attr.vr()).unwrap_or(VR::LO);
    let tag = tag_of(attr.tag());
    let value = match vr {
        VR::US => PrimitiveValue::U16(values.iter().filter_map(|v| v.parse().ok()).collect()),
        VR::IS if !values.is_empty() => PrimitiveValue::I64(values.iter().filter_map(|v| v.parse().ok()).collect()),
        _ if values.is_empty() => PrimitiveValue::Empty,
        _ if values.len() == 1 => PrimitiveValue::from(values[0].clone()),
        _ => PrimitiveValue::Strs(values.into_iter().collect()),
    };
    DataElement::new(tag, vr, value)
}

/// Which indexed attributes a result carries.
pub fn returned_attrs(query: &Query) -> Vec<Attr> {
    let mut attrs: Vec<Attr> = Vec::new();
    let mut add = |list: &[Attr]| {
        for a in list {
            if !attrs.contains(a) {
                attrs.push(*a);
            }
        }
    };
    let levels: Vec<Level> =
        [Level::Study, Level::Series, Level::Instance].into_iter().filter(|l| *l <= query.level).collect();
    for level in &levels {
        // Attributes of the levels above are returned when that level is not fixed by the path.
        let fixed = match level {
            Level::Study => query.study_uid.is_some(),
            Level::Series => query.series_uid.is_some(),
            Level::Instance => false,
        };
        if *level == query.level || !fixed {
            add(Attr::defaults(*level));
        }
    }
    add(&[Attr::StudyInstanceUID]);
    if query.level >= Level::Series {
        add(&[Attr::SeriesInstanceUID]);
    }
    match &query.include {
        Include::All => {
            let all: Vec<Attr> = Attr::ALL.iter().copied().filter(|a| levels.contains(&a.level())).collect();
            add(&all);
        }
        Include::Tags(tags) => {
            let indexed: Vec<Attr> =
                tags.iter().filter_map(|t| Attr::from_tag(*t)).filter(|a| levels.contains(&a.level())).collect();
            add(&indexed);
        }
        Include::Defaults => {}
    }
    let filtered: Vec<Attr> = query.filters.iter().map(|f| f.attr).collect();
    add(&filtered);
    attrs
}

/// Requested tags that the index does not hold (read from a stored header instead).
pub fn unindexed_tags(query: &Query) -> Vec<u32> {
    match &query.include {
        Include::Tags(tags) => tags.iter().copied().filter(|t| Attr::from_tag(*t).is_none()).collect(),
        _ => Vec::new(),
    }
}

/// One attribute of a result: an indexed value, or one taken from a stored header.
enum Entry {
    Indexed { vr: &'static str, values: Vec<String> },
    Header(Value),
}

impl Serialize for Entry {
    /// Indexed values in the shape dicom-json gives [`element`]: numbers for IS/US, person
    /// names by component group, no "Value" when empty (PS3.18 F.2.5).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (vr, values) = match self {
            Entry::Header(v) => return v.serialize(serializer),
            Entry::Indexed { vr, values } => (*vr, values),
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("vr", vr)?;
        match vr {
            "US" | "IS" => {
                let numbers: Vec<i64> = match vr {
                    "US" => values.iter().filter_map(|v| v.parse::<u16>().ok().map(i64::from)).collect(),
                    _ => values.iter().filter_map(|v| v.parse::<i64>().ok()).collect(),
                };
                if !numbers.is_empty() {
                    map.serialize_entry("Value", &numbers)?;
                }
            }
            "PN" if !values.is_empty() => {
                map.serialize_entry("Value", &values.iter().map(|v| PersonName(v)).collect::<Vec<_>>())?;
            }
            _ if !values.is_empty() => map.serialize_entry("Value", values)?,
            _ => {}
        }
        map.end()
    }
}

struct PersonName<'a>(&'a str);

impl Serialize for PersonName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, group) in ["Alphabetic", "Ideographic", "Phonetic"].into_iter().zip(self.0.split('=')) {
            if !group.is_empty() {
                map.serialize_entry(key, group)?;
            }
        }
        map.end()
    }
}

/// One QIDO-RS result as DICOM JSON, serialized straight to text with its attributes in tag
/// order: a page holds up to a few hundred of these, and building them as DICOM objects or
/// JSON trees first cost most of the request's time.
pub struct ResultJson(BTreeMap<u32, Entry>);

impl Serialize for ResultJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (tag, entry) in &self.0 {
            map.serialize_entry(&format_args!("{tag:08X}"), entry)?;
        }
        map.end()
    }
}

/// One QIDO-RS result; `attrs` are [`returned_attrs`] of the query, `extra` holds attributes
/// taken from a stored header.
pub fn result_json(
    r: &ResultRow,
    query: &Query,
    attrs: &[Attr],
    base_url: &str,
    extra: Option<&InMemDicomObject>,
) -> ResultJson {
    let mut entries: BTreeMap<u32, Entry> = BTreeMap::new();
    if let Some(extra) = extra {
        let wanted = unindexed_tags(query);
        let all = query.include == Include::All && query.level == Level::Instance;
        let mut obj = InMemDicomObject::new_empty();
        for e in extra.iter() {
            let tag = e.header().tag;
            if (all || wanted.contains(&tag_u32(tag))) && tag != tags::PIXEL_DATA {
                obj.put(e.clone());
            }
        }
        if let Ok(Value::Object(map)) = dicom_json::to_value(&obj) {
            entries.extend(
                map.into_iter().filter_map(|(k, v)| Some((u32::from_str_radix(&k, 16).ok()?, Entry::Header(v)))),
            );
        }
    }
    for &attr in attrs {
        entries.insert(attr.tag(), Entry::Indexed { vr: attr.vr(), values: value_of(attr, r) });
    }
    let text = |vr, value: String| Entry::Indexed { vr, values: vec![value] };
    entries.insert(tag_u32(tags::SPECIFIC_CHARACTER_SET), text("CS", "ISO_IR 192".into()));
    let mut url = format!("{base_url}/studies/{}", r.study.study_uid);
    if let (Some(se), true) = (&r.series, query.level >= Level::Series) {
        url.push_str(&format!("/series/{}", se.series_uid));
    }
    if let (Some(i), true) = (&r.instance, query.level == Level::Instance) {
        url.push_str(&format!("/instances/{}", i.sop_uid));
    }
    entries.insert(tag_u32(tags::RETRIEVE_URL), text("UR", url));
    ResultJson(entries)
}

/// WADO-RS metadata of one instance: every attribute of the stored header, the pixel data
/// replaced by a bulk data URI.
pub fn metadata_json(header: &InMemDicomObject, has_pixels: bool, instance_url: &str) -> Value {
    let mut value = dicom_json::to_value(header).unwrap_or(Value::Null);
    if let (true, Some(map)) = (has_pixels, value.as_object_mut()) {
        map.insert(
            "7FE00010".into(),
            serde_json::json!({ "vr": "OW", "BulkDataURI": format!("{instance_url}/bulkdata/7FE00010") }),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudfilm_core::instance::{PatientAttrs, StudyAttrs, StudyRow};
    use cloudfilm_core::query::{Filter, Matcher};

    #[test]
    fn study_results_carry_defaults_filters_and_names_by_group() {
        let view = ResultRow {
            study: StudyRow {
                study_uid: "1.2.3".into(),
                attrs: StudyAttrs {
                    date: Some("20261101".into()),
                    accession_number: Some("A1".into()),
                    ..Default::default()
                },
                patient: PatientAttrs {
                    name: Some("WANG^ZHIQIANG=王^志强".into()),
                    id: Some("P1".into()),
                    ..Default::default()
                },
                modalities: vec!["CT".to_owned(), "SR".to_owned()],
                num_series: 2,
                num_instances: 7,
            },
            series: None,
            instance: None,
        };
        let mut q = Query::new(Level::Study);
        q.filters.push(Filter { attr: Attr::InstitutionName, matcher: Matcher::Exact("X".into()) });
        let json =
            serde_json::to_value(result_json(&view, &q, &returned_attrs(&q), "http://h/dicom-web", None)).unwrap();
        assert_eq!(json["00100010"]["Value"][0]["Alphabetic"], "WANG^ZHIQIANG");
        assert_eq!(json["00100010"]["Value"][0]["Ideographic"], "王^志强");
        assert_eq!(json["00080061"]["Value"], serde_json::json!(["CT", "SR"]));
        assert_eq!(json["00201208"]["Value"][0], 7);
        assert_eq!(json["00081190"]["Value"][0], "http://h/dicom-web/studies/1.2.3");
        assert!(json.get("00080080").is_some(), "a matching key is returned");
        assert!(json.get("00100030").is_some(), "defaults are returned even when empty");
        assert_eq!(json["00100030"]["vr"], "DA");
    }

    /// What dicom-json writes for the same attributes put in a DICOM object (the shape
    /// `result_json` used to be built through), with the same retrieve URL.
    fn through_dicom_json(r: &ResultRow, query: &Query, base_url: &str) -> Value {
        let mut obj = InMemDicomObject::new_empty();
        for attr in returned_attrs(query) {
            obj.put(element(attr, value_of(attr, r)));
        }
        obj.put(DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, PrimitiveValue::from("ISO_IR 192")));
        let json = serde_json::to_value(result_json(r, query, &returned_attrs(query), base_url, None)).unwrap();
        let url = json["00081190"]["Value"][0].as_str().unwrap().to_owned();
        obj.put(DataElement::new(tags::RETRIEVE_URL, VR::UR, PrimitiveValue::from(url)));
        let mut reference = dicom_json::to_value(&obj).unwrap();
        // dicom-json writes an empty US as `"Value": []`; PS3.18 F.2.5 leaves "Value" out.
        for attr in reference.as_object_mut().unwrap().values_mut() {
            if attr.get("Value").is_some_and(|v| v.as_array().is_some_and(Vec::is_empty)) {
                attr.as_object_mut().unwrap().remove("Value");
            }
        }
        reference
    }

    #[test]
    fn direct_json_is_what_dicom_json_writes() {
        use cloudfilm_core::instance::{InstanceAttrs, InstanceRow, SeriesAttrs, SeriesRow};
        let names = ["WANG^ZHIQIANG=王^志强", "Yamada^Tarou=山田^太郎=やまだ^たろう", "=李^雷", "", "SOLO"];
        for (k, name) in names.iter().enumerate() {
            let full = k % 2 == 0;
            let some = |v: &str| full.then(|| v.to_owned());
            let row = ResultRow {
                study: StudyRow {
                    study_uid: format!("1.2.{k}"),
                    attrs: StudyAttrs {
                        date: some("20261101"),
                        time: some("101010.5"),
                        accession_number: some("A1"),
                        description: some("胸部 CT"),
                        study_id: some("7"),
                        institution_name: some("Hospital"),
                        referring_physician_name: some("LI^LEI"),
                    },
                    patient: PatientAttrs {
                        name: (!name.is_empty()).then(|| name.to_string()),
                        id: some("P1"),
                        birth_date: some("19800101"),
                        sex: some("F"),
                        other_ids: if full { vec!["X1".into(), "X2".into()] } else { Vec::new() },
                        telephone_numbers: Vec::new(),
                    },
                    modalities: if full { vec!["CT".into(), "SR".into()] } else { Vec::new() },
                    num_series: 2,
                    num_instances: 7,
                },
                series: Some(SeriesRow {
                    series_uid: format!("1.2.{k}.1"),
                    attrs: SeriesAttrs {
                        modality: some("CT"),
                        number: full.then_some(3),
                        description: some("axial"),
                        body_part: some("CHEST"),
                        date: None,
                        time: None,
                    },
                    num_instances: 5,
                }),
                instance: Some(InstanceRow {
                    study_uid: format!("1.2.{k}"),
                    series_uid: format!("1.2.{k}.1"),
                    sop_uid: format!("1.2.{k}.1.1"),
                    sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                    attrs: InstanceAttrs {
                        number: full.then_some(12),
                        frames: 1,
                        rows: Some(512),
                        columns: full.then_some(512),
                        bits_allocated: Some(16),
                        samples_per_pixel: Some(1),
                    },
                    transfer_syntax: "1.2.840.10008.1.2.1".into(),
                    size: 1,
                    sha256: String::new(),
                    blob_id: String::new(),
                    layout: cloudfilm_core::instance::PixelLayout::None,
                }),
            };
            for level in [Level::Study, Level::Series, Level::Instance] {
                for include in [Include::Defaults, Include::All] {
                    let mut q = Query::new(level);
                    q.include = include.clone();
                    let result = result_json(&row, &q, &returned_attrs(&q), "http://h/dicom-web", None);
                    let text = serde_json::to_string(&result).unwrap();
                    let direct: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(direct, through_dicom_json(&row, &q, "http://h/dicom-web"), "{name} {level:?}");
                    let keys: Vec<&String> = direct.as_object().unwrap().keys().collect();
                    assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys in tag order");
                }
            }
        }
    }
}
