//! The DIMSE message layer (PS3.7) that dicom-ul leaves to its users: command sets, the SOP
//! classes the archive serves, identifiers of queries and retrievals, and the Part-10 file
//! meta a received C-STORE data set is stored behind.

use dicom_core::dictionary::UidDictionary;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::StandardSopClassDictionary;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// Command Field values (PS3.7 E.1).
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// Status values used (PS3.4 / PS3.7 C).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const PENDING: u16 = 0xFF00;
    pub const CANCEL: u16 = 0xFE00;
    pub const WARNING_SUBOPERATIONS: u16 = 0xB000;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;
    pub const IDENTIFIER_DOES_NOT_MATCH: u16 = 0xA900;
    pub const UNABLE_TO_PROCESS: u16 = 0xC000;
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    pub const SUBOPERATIONS_FAILED: u16 = 0xA702;
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// The query/retrieve information models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    PatientRoot,
    StudyRoot,
}

/// What the archive does with a SOP class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SopClassRole {
    Verification,
    Storage,
    Find(Model),
    Get(Model),
    Move(Model),
    Unsupported,
}

/// Classifies an abstract syntax. Storage SOP classes are the standard's: every SOP class of
/// the DICOM dictionary whose name ends in "Storage" (the media directory excepted).
pub fn classify(uid: &str) -> SopClassRole {
    let uid = uid.trim_end_matches(['\0', ' ']);
    match uid {
        VERIFICATION => SopClassRole::Verification,
        PATIENT_ROOT_FIND => SopClassRole::Find(Model::PatientRoot),
        STUDY_ROOT_FIND => SopClassRole::Find(Model::StudyRoot),
        PATIENT_ROOT_GET => SopClassRole::Get(Model::PatientRoot),
        STUDY_ROOT_GET => SopClassRole::Get(Model::StudyRoot),
        PATIENT_ROOT_MOVE => SopClassRole::Move(Model::PatientRoot),
        STUDY_ROOT_MOVE => SopClassRole::Move(Model::StudyRoot),
        "1.2.840.10008.1.3.10" => SopClassRole::Unsupported,
        _ => match StandardSopClassDictionary.by_uid(uid) {
            Some(entry) if is_storage_name(entry.name) => SopClassRole::Storage,
            _ => SopClassRole::Unsupported,
        },
    }
}

/// "CT Image Storage", "Digital X-Ray Image Storage - For Presentation", "Text SR Storage -
/// Trial (Retired)"; not "Storage Commitment Push Model SOP Class" nor the print classes.
fn is_storage_name(name: &str) -> bool {
    let name = name.trim_end_matches(" (Retired)");
    name.split(" - ").next().unwrap_or(name).ends_with("Storage")
}

/// A DIMSE command set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub field: u16,
    pub message_id: Option<u16>,
    pub responded_to: Option<u16>,
    pub sop_class: Option<String>,
    pub sop_instance: Option<String>,
    pub priority: Option<u16>,
    /// Whether a data set follows (Command Data Set Type other than 0x0101).
    pub has_dataset: bool,
    pub status: Option<u16>,
    pub move_destination: Option<String>,
    pub remaining: Option<u16>,
    pub completed: Option<u16>,
    pub failed: Option<u16>,
    pub warning: Option<u16>,
    pub error_comment: Option<String>,
    pub move_originator_ae: Option<String>,
    pub move_originator_id: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed command set: {0}")]
pub struct CommandError(String);

const NO_DATASET: u16 = 0x0101;

fn implicit_le() -> &'static dicom_encoding::TransferSyntax {
    crate::transfer::lookup(crate::transfer::IMPLICIT_VR_LITTLE_ENDIAN).expect("implicit VR little endian is known")
}

impl Command {
    /// Reads a command set (always Implicit VR Little Endian).
    pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
        crate::inspect::check_dataset(bytes, implicit_le()).map_err(|e| CommandError(e.to_string()))?;
        let obj =
            InMemDicomObject::read_dataset_with_ts(bytes, implicit_le()).map_err(|e| CommandError(e.to_string()))?;
        let us = |tag| obj.get(tag).and_then(|e| e.to_int::<u16>().ok());
        let text = |tag| crate::inspect::text(&obj, tag);
        let field = us(tags::COMMAND_FIELD).ok_or_else(|| CommandError("no Command Field".into()))?;
        Ok(Command {
            field,
            message_id: us(tags::MESSAGE_ID),
            responded_to: us(tags::MESSAGE_ID_BEING_RESPONDED_TO),
            sop_class: text(tags::AFFECTED_SOP_CLASS_UID),
            sop_instance: text(tags::AFFECTED_SOP_INSTANCE_UID),
            priority: us(tags::PRIORITY),
            has_dataset: us(tags::COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATASET),
            status: us(tags::STATUS),
            move_destination: text(tags::MOVE_DESTINATION),
            remaining: us(tags::NUMBER_OF_REMAINING_SUBOPERATIONS),
            completed: us(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS),
            failed: us(tags::NUMBER_OF_FAILED_SUBOPERATIONS),
            warning: us(tags::NUMBER_OF_WARNING_SUBOPERATIONS),
            error_comment: text(tags::ERROR_COMMENT),
            move_originator_ae: text(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE),
            move_originator_id: us(tags::MOVE_ORIGINATOR_MESSAGE_ID),
        })
    }

    /// Writes the command set with its group length.
    pub fn encode(&self) -> Vec<u8> {
        let mut obj = InMemDicomObject::new_empty();
        let mut us = |tag: Tag, v: Option<u16>| {
            if let Some(v) = v {
                obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
            }
        };
        us(tags::COMMAND_FIELD, Some(self.field));
        us(tags::MESSAGE_ID, self.message_id);
        us(tags::MESSAGE_ID_BEING_RESPONDED_TO, self.responded_to);
        us(tags::PRIORITY, self.priority);
        us(tags::COMMAND_DATA_SET_TYPE, Some(if self.has_dataset { 0x0000 } else { NO_DATASET }));
        us(tags::STATUS, self.status);
        us(tags::NUMBER_OF_REMAINING_SUBOPERATIONS, self.remaining);
        us(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, self.completed);
        us(tags::NUMBER_OF_FAILED_SUBOPERATIONS, self.failed);
        us(tags::NUMBER_OF_WARNING_SUBOPERATIONS, self.warning);
        us(tags::MOVE_ORIGINATOR_MESSAGE_ID, self.move_originator_id);
        let mut text = |tag: Tag, vr: VR, v: &Option<String>| {
            if let Some(v) = v {
                obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v.as_str())));
            }
        };
        text(tags::AFFECTED_SOP_CLASS_UID, VR::UI, &self.sop_class);
        text(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, &self.sop_instance);
        text(tags::MOVE_DESTINATION, VR::AE, &self.move_destination);
        text(tags::ERROR_COMMENT, VR::LO, &self.error_comment);
        text(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE, VR::AE, &self.move_originator_ae);
        let mut body = Vec::new();
        obj.write_dataset_with_ts(&mut body, implicit_le()).expect("a command set always encodes");
        let mut out = Vec::with_capacity(body.len() + 12);
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00]);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A response to `request`, with the request's SOP class and instance.
    pub fn response_to(request: &Command, field: u16, status: u16) -> Command {
        Command {
            field,
            responded_to: request.message_id,
            sop_class: request.sop_class.clone(),
            sop_instance: request.sop_instance.clone(),
            status: Some(status),
            ..Default::default()
        }
    }
}

/// The implementation that writes files here (PS3.7 D.3.3.2), in file metas it makes.
pub const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1509.1";
pub const IMPLEMENTATION_VERSION_NAME: &str = "CLOUDFILM_01";

/// Preamble, `DICM` and file meta for a data set received by C-STORE, so that it is stored
/// as a Part-10 file whose data set is byte for byte what was received. The meta names no
/// sending AE (the audit chain does), so the same data set from any node is the same file.
pub fn part10_prefix(sop_class: &str, sop_instance: &str, transfer_syntax: &str) -> Result<Vec<u8>, String> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    meta.write(&mut out).map_err(|e| e.to_string())?;
    // `write` includes the magic code when it writes a whole file; keep exactly one.
    if out[132..136] == *b"DICM" {
        out.drain(132..136);
    }
    Ok(out)
}

/// Reads an identifier (C-FIND / C-GET / C-MOVE) in the presentation context's syntax.
pub fn read_identifier(bytes: &[u8], transfer_syntax: &str) -> Result<InMemDicomObject, String> {
    let ts = crate::transfer::lookup(transfer_syntax).ok_or("unknown transfer syntax")?;
    crate::inspect::check_dataset(bytes, ts).map_err(|e| e.to_string())?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts).map_err(|e| e.to_string())
}

/// Writes a data set (a C-FIND response) in the presentation context's syntax.
pub fn write_dataset(obj: &InMemDicomObject, transfer_syntax: &str) -> Result<Vec<u8>, String> {
    let ts = crate::transfer::lookup(transfer_syntax).ok_or("unknown transfer syntax")?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `dimse` fuzz target: an element past where pixel data would be, with a
    /// length of 4 GB in 9 bytes. The check stopped there (as it does for stored instances,
    /// whose parse stops there too) while the identifier's parser read on and reserved it.
    #[test]
    fn a_forged_length_after_the_pixel_data_tag_is_refused_before_parsing() {
        let forged = [0xFE, 0xFF, 0xFF, 0xFF, 0x63, 0xF5, 0x00, 0xF5, 0x00];
        for ts in ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"] {
            let refused = read_identifier(&forged, ts).unwrap_err();
            assert!(refused.contains("declares") || refused.contains("malformed"), "{refused}");
        }
    }

    /// Also found by the `dimse` target: a UL of one byte. The parser reads no value from it
    /// and goes on from there, the check skipped the byte: from then on they disagreed, and
    /// a header the check never saw declared 2 GB.
    #[test]
    fn a_value_that_is_not_a_whole_number_of_values_is_refused() {
        let mut bytes = vec![0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00];
        bytes.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80]);
        let refused = read_identifier(&bytes, "1.2.840.10008.1.2").unwrap_err();
        assert!(refused.contains("not a multiple of 4"), "{refused}");
    }

    #[test]
    fn storage_classes_come_from_the_dictionary() {
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.2"), SopClassRole::Storage, "CT Image Storage");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.88.33"), SopClassRole::Storage, "Comprehensive SR");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.104.1"), SopClassRole::Storage, "Encapsulated PDF");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.481.2"), SopClassRole::Storage, "RT Dose");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.1.1"), SopClassRole::Storage, "DX for presentation");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.1.1.1"), SopClassRole::Storage, "DX for processing");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.1.2"), SopClassRole::Storage, "mammography");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.2.3"), SopClassRole::Storage, "CT for processing");
        assert_eq!(classify("1.2.840.10008.5.1.4.1.1.88.1"), SopClassRole::Storage, "retired trial SR");
        assert_eq!(classify("1.2.840.10008.5.1.1.27"), SopClassRole::Unsupported, "stored print");
        assert_eq!(classify("1.2.840.10008.1.20.1"), SopClassRole::Unsupported, "storage commitment");
        assert_eq!(classify("1.2.840.10008.5.1.4.31"), SopClassRole::Unsupported, "worklist");
        assert_eq!(classify("1.2.3.4"), SopClassRole::Unsupported);
        assert_eq!(classify(STUDY_ROOT_MOVE), SopClassRole::Move(Model::StudyRoot));
    }

    #[test]
    fn commands_round_trip() {
        let c = Command {
            field: field::C_STORE_RQ,
            message_id: Some(7),
            sop_class: Some("1.2.840.10008.5.1.4.1.1.2".into()),
            sop_instance: Some("1.2.3.4.5".into()),
            priority: Some(0),
            has_dataset: true,
            move_originator_ae: Some("MOVER".into()),
            ..Default::default()
        };
        let bytes = c.encode();
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, bytes.len() - 12);
        assert_eq!(Command::decode(&bytes).unwrap(), c);
        let rsp = Command::response_to(&c, field::C_STORE_RSP, status::SUCCESS);
        assert_eq!(Command::decode(&rsp.encode()).unwrap().status, Some(0));
        assert!(Command::decode(b"garbage").is_err());
        // An element claiming 2 GB is refused before anything is allocated.
        let forged = [0, 0, 0, 0, 4, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2];
        assert!(Command::decode(&forged).is_err());
    }

    #[test]
    fn a_received_data_set_becomes_a_part10_file() {
        let spec = &crate::synth::demo_studies(0.02)[1];
        let file = &crate::synth::generate_study(spec)[0];
        let info = crate::inspect(&mut std::io::Cursor::new(file)).unwrap();
        let dataset_start = 132 + 12 + u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
        let mut rebuilt = part10_prefix(&info.sop_class_uid, &info.sop_instance_uid, &info.transfer_syntax).unwrap();
        rebuilt.extend_from_slice(&file[dataset_start..]);
        let again = crate::inspect(&mut std::io::Cursor::new(&rebuilt)).unwrap();
        assert_eq!(again.sop_instance_uid, info.sop_instance_uid);
        assert_eq!(again.patient.name, info.patient.name);
    }
}

/// A C-FIND request read from its identifier.
#[derive(Debug, Clone)]
pub struct FindRequest {
    pub level: QrLevel,
    pub query: cloudfilm_core::query::Query,
    /// The keys to return, with their VRs, in the identifier's order.
    pub returned: Vec<(Tag, VR)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrLevel {
    Patient,
    Study,
    Series,
    Image,
}

/// The Query/Retrieve Level of an identifier, checked against the information model.
pub fn qr_level(identifier: &InMemDicomObject, model: Model) -> Result<QrLevel, String> {
    let level = crate::inspect::text(identifier, tags::QUERY_RETRIEVE_LEVEL).unwrap_or_default();
    match (level.as_str(), model) {
        ("PATIENT", Model::PatientRoot) => Ok(QrLevel::Patient),
        ("PATIENT", Model::StudyRoot) => Err("the study root model has no PATIENT level".into()),
        ("STUDY", _) => Ok(QrLevel::Study),
        ("SERIES", _) => Ok(QrLevel::Series),
        ("IMAGE", _) => Ok(QrLevel::Image),
        (other, _) => Err(format!("unknown Query/Retrieve Level {other:?}")),
    }
}

/// Keys with values become matching keys (as QIDO-RS matches); every key is returned.
/// Matching on attributes the index does not hold is not supported: they return empty.
pub fn find_request(identifier: &InMemDicomObject, level: QrLevel) -> Result<FindRequest, String> {
    use cloudfilm_core::query::{Attr, Filter, Level, Matcher, Query};
    let index_level = match level {
        QrLevel::Patient | QrLevel::Study => Level::Study,
        QrLevel::Series => Level::Series,
        QrLevel::Image => Level::Instance,
    };
    let mut query = Query::new(index_level);
    query.limit = 50_000;
    let mut returned = Vec::new();
    for element in identifier.iter() {
        let tag = element.header().tag;
        if tag == tags::QUERY_RETRIEVE_LEVEL || tag == tags::SPECIFIC_CHARACTER_SET || tag.group() == 0x0002 {
            continue;
        }
        let vr = element.header().vr;
        returned.push((tag, vr));
        if vr == VR::SQ {
            continue;
        }
        let value =
            element.to_str().map(|v| v.trim_matches(|c: char| c == '\0' || c == ' ').to_owned()).unwrap_or_default();
        let Some(attr) = Attr::from_tag(crate::query::tag_u32(tag)) else { continue };
        if value.is_empty() || attr.level() > index_level {
            continue;
        }
        match Matcher::parse(attr, &value) {
            Ok(Some(matcher)) => query.filters.push(Filter { attr, matcher }),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", attr.keyword())),
        }
    }
    Ok(FindRequest { level, query, returned })
}

/// Patient-level counts that only C-FIND returns.
pub struct PatientCounts {
    pub studies: i64,
    pub series: i64,
    pub instances: i64,
}

/// One C-FIND response data set: the requested keys with this row's values.
pub fn find_response(
    row: &cloudfilm_core::instance::ResultRow,
    request: &FindRequest,
    retrieve_ae: &str,
    patient: Option<&PatientCounts>,
) -> InMemDicomObject {
    use cloudfilm_core::query::Attr;
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, PrimitiveValue::from("ISO_IR 192")));
    let level = match request.level {
        QrLevel::Patient => "PATIENT",
        QrLevel::Study => "STUDY",
        QrLevel::Series => "SERIES",
        QrLevel::Image => "IMAGE",
    };
    obj.put(DataElement::new(tags::QUERY_RETRIEVE_LEVEL, VR::CS, PrimitiveValue::from(level)));
    obj.put(DataElement::new(tags::RETRIEVE_AE_TITLE, VR::AE, PrimitiveValue::from(retrieve_ae)));
    for &(tag, vr) in &request.returned {
        let count = |n: i64| DataElement::new(tag, VR::IS, PrimitiveValue::from(n.to_string()));
        let element = match (tag, patient) {
            (t, Some(p)) if t == tags::NUMBER_OF_PATIENT_RELATED_STUDIES => count(p.studies),
            (t, Some(p)) if t == tags::NUMBER_OF_PATIENT_RELATED_SERIES => count(p.series),
            (t, Some(p)) if t == tags::NUMBER_OF_PATIENT_RELATED_INSTANCES => count(p.instances),
            _ => match Attr::from_tag(crate::query::tag_u32(tag)) {
                Some(attr) => {
                    let mut e = crate::json::element(attr, crate::json::value_of(attr, row));
                    if vr != e.header().vr && vr != VR::UN {
                        e = DataElement::new(tag, e.header().vr, e.into_value());
                    }
                    e
                }
                None if vr == VR::SQ => {
                    DataElement::new(tag, VR::SQ, dicom_core::value::DataSetSequence::<InMemDicomObject>::empty())
                }
                None => DataElement::new(tag, vr, PrimitiveValue::Empty),
            },
        };
        obj.put(element);
    }
    obj
}

/// Writes a data set in UTF-8 (ISO_IR 192), for responses that carry names.
pub fn write_dataset_utf8(obj: &InMemDicomObject, transfer_syntax: &str) -> Result<Vec<u8>, String> {
    let ts = crate::transfer::lookup(transfer_syntax).ok_or("unknown transfer syntax")?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts_cs(&mut out, ts, dicom_encoding::text::SpecificCharacterSet::ISO_IR_192)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The instances a C-GET / C-MOVE identifier names: its unique keys (Patient ID, Study,
/// Series, SOP Instance UIDs, lists allowed), the one of its level required.
pub fn retrieval_query(identifier: &InMemDicomObject, model: Model) -> Result<cloudfilm_core::query::Query, String> {
    use cloudfilm_core::query::{Attr, Filter, Level, Matcher, Query};
    let level = qr_level(identifier, model)?;
    let mut query = Query::new(Level::Instance);
    query.limit = 100_000;
    for (tag, attr) in [
        (tags::PATIENT_ID, Attr::PatientID),
        (tags::STUDY_INSTANCE_UID, Attr::StudyInstanceUID),
        (tags::SERIES_INSTANCE_UID, Attr::SeriesInstanceUID),
        (tags::SOP_INSTANCE_UID, Attr::SOPInstanceUID),
    ] {
        if let Some(value) = crate::inspect::text(identifier, tag)
            && let Some(matcher) = Matcher::parse(attr, &value).map_err(|e| e.to_string())?
        {
            query.filters.push(Filter { attr, matcher });
        }
    }
    let required = match level {
        QrLevel::Patient => Attr::PatientID,
        QrLevel::Study => Attr::StudyInstanceUID,
        QrLevel::Series => Attr::SeriesInstanceUID,
        QrLevel::Image => Attr::SOPInstanceUID,
    };
    if query.filter(required).is_none() {
        return Err(format!("a {level:?} level retrieval names its {}", required.keyword()));
    }
    Ok(query)
}
