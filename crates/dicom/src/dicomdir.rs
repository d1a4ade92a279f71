//! PS3.10 media directories (DICOMDIR) for download packages.
//!
//! A download package holds the original instances under file IDs such as `DICOM/S0001/I00001`
//! and, at its root, a `DICOMDIR` made by [`build`]: a Media Storage Directory (PS3.3 F.2) whose
//! records form the hierarchy PATIENT → STUDY → SERIES → instance (PS3.3 F.4), with the keys of
//! PS3.3 F.5 taken from each instance's header.
//!
//! Records reference each other by byte offsets from the start of the file, so the layout is
//! computed before anything is written: every record is encoded on its own (Explicit VR Little
//! Endian, whose lengths do not depend on the offset values), and the Directory Record Sequence
//! is assembled from items of explicit length, so each item's position is a plain sum.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use dicom_core::header::{DataElementHeader, Length};
use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::Encode;
use dicom_encoding::encode::explicit_le::ExplicitVRLittleEndianEncoder;
use dicom_object::FileDicomObject;
use dicom_object::mem::{InMemDicomObject, InMemElement};
use sha2::{Digest, Sha256};

use crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN;

/// One instance of the file-set.
#[derive(Debug, Clone)]
pub struct DirectoryEntry<'a> {
    /// File ID components, e.g. `["DICOM", "S0001", "I00001"]`: one to eight components, each
    /// 1–8 characters of `A`–`Z`, `0`–`9` and `_` (PS3.10 8.2).
    pub file_id: Vec<String>,
    /// The instance's header: file meta and the data set up to (without) the pixel data, as
    /// read by [`crate::inspect::read_header`].
    pub header: &'a FileDicomObject<InMemDicomObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DicomdirError {
    #[error("invalid file ID {file_id:?}: {reason}")]
    InvalidFileId { file_id: Vec<String>, reason: &'static str },
    #[error("file ID {0} is used twice")]
    DuplicateFileId(String),
    #[error("invalid file-set ID {0:?}: at most 16 characters of A-Z, 0-9, _ and space")]
    InvalidFileSetId(String),
    #[error("{file_id}: the instance has no {attribute}")]
    MissingAttribute { file_id: String, attribute: &'static str },
    #[error("the DICOMDIR would exceed the 4 GiB that 32-bit record offsets can address")]
    TooLarge,
    #[error("encoding the DICOMDIR: {0}")]
    Encode(String),
}

/// Builds the complete Part-10 file of a DICOMDIR (preamble, `DICM`, file meta, data set)
/// describing `entries`, with File-set ID `file_set_id` (may be empty).
///
/// Patients are told apart by Patient ID (by name when an instance has no ID), studies and
/// series by their instance UIDs; records keep the order in which `entries` first mention them.
/// The Media Storage SOP Instance UID is derived from the file-set ID and the entries, so the
/// same input always gives the same bytes.
pub fn build(entries: &[DirectoryEntry], file_set_id: &str) -> Result<Vec<u8>, DicomdirError> {
    check_file_set_id(file_set_id)?;
    check_entries(entries)?;
    let mut records = Vec::new();
    let all: Vec<usize> = (0..entries.len()).collect();
    append_level(&mut records, entries, &all, Level::Patient);

    let uid = file_set_uid(entries, file_set_id);
    let mut out = crate::dimse::part10_prefix(uids::MEDIA_STORAGE_DIRECTORY_STORAGE, &uid, EXPLICIT_VR_LITTLE_ENDIAN)
        .map_err(DicomdirError::Encode)?;

    // Layout: the root elements, the headers and every record have the same encoded length
    // whatever the offset values, so item positions follow from a first encoding with zeros.
    let item_header_len = item_header(0)?.len();
    let first_item = out.len() + encode(&root_elements(file_set_id, 0, 0))?.len() + sequence_header(0)?.len();
    let mut positions = Vec::with_capacity(records.len());
    let mut position = first_item;
    for record in &records {
        positions.push(offset(position)?);
        position += item_header_len + encode(&record.keys)?.len();
    }
    let link = |target: Option<usize>| target.map_or(0, |i| positions[i]);

    let root_first = (!records.is_empty()).then_some(0);
    let root_last = records.iter().rposition(|r| r.level == Level::Patient);
    out.extend(encode(&root_elements(file_set_id, link(root_first), link(root_last)))?);
    out.extend(sequence_header(offset(position - first_item)?)?);
    for (record, &at) in records.iter_mut().zip(&positions) {
        put(&mut record.keys, tags::OFFSET_OF_THE_NEXT_DIRECTORY_RECORD, VR::UL, link(record.next));
        put(&mut record.keys, tags::OFFSET_OF_REFERENCED_LOWER_LEVEL_DIRECTORY_ENTITY, VR::UL, link(record.lower));
        let item = encode(&record.keys)?;
        debug_assert_eq!(out.len(), at as usize, "records must be where the layout put them");
        out.extend(item_header(offset(item.len())?)?);
        out.extend(item);
    }
    Ok(out)
}

/// A byte offset or length as the UL that DICOMDIR stores.
fn offset(value: usize) -> Result<u32, DicomdirError> {
    u32::try_from(value).map_err(|_| DicomdirError::TooLarge)
}

fn encode(obj: &InMemDicomObject) -> Result<Vec<u8>, DicomdirError> {
    crate::dimse::write_dataset(obj, EXPLICIT_VR_LITTLE_ENDIAN).map_err(DicomdirError::Encode)
}

/// The header of the Directory Record Sequence, of explicit length.
fn sequence_header(len: u32) -> Result<Vec<u8>, DicomdirError> {
    let mut out = Vec::new();
    let header = DataElementHeader::new(tags::DIRECTORY_RECORD_SEQUENCE, VR::SQ, Length(len));
    ExplicitVRLittleEndianEncoder::default().encode_element_header(&mut out, header).map_err(encode_error)?;
    Ok(out)
}

/// The header of an item of explicit length.
fn item_header(len: u32) -> Result<Vec<u8>, DicomdirError> {
    let mut out = Vec::new();
    ExplicitVRLittleEndianEncoder::default().encode_item_header(&mut out, len).map_err(encode_error)?;
    Ok(out)
}

fn encode_error(error: impl std::fmt::Display) -> DicomdirError {
    DicomdirError::Encode(error.to_string())
}

/// The data set elements before the Directory Record Sequence.
fn root_elements(file_set_id: &str, first: u32, last: u32) -> InMemDicomObject {
    let mut root = InMemDicomObject::new_empty();
    put(&mut root, tags::FILE_SET_ID, VR::CS, file_set_id);
    put(&mut root, tags::OFFSET_OF_THE_FIRST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY, VR::UL, first);
    put(&mut root, tags::OFFSET_OF_THE_LAST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY, VR::UL, last);
    put(&mut root, tags::FILE_SET_CONSISTENCY_FLAG, VR::US, 0u16);
    root
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

/// A "2.25" UID from a version-8 (custom) UUID whose bits come from SHA-256 over the input.
fn file_set_uid(entries: &[DirectoryEntry], file_set_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(file_set_id.as_bytes());
    for entry in entries {
        hash.update([0]);
        hash.update(entry.file_id.join("\\").as_bytes());
        hash.update([0]);
        hash.update(sop_instance_uid(entry.header).as_bytes());
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.finalize()[..16]);
    bytes[6] = (bytes[6] & 0x0F) | 0x80;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

// Validation ---------------------------------------------------------------------------------

fn check_file_set_id(id: &str) -> Result<(), DicomdirError> {
    let valid =
        id.len() <= 16 && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"_ ".contains(&b));
    if valid { Ok(()) } else { Err(DicomdirError::InvalidFileSetId(id.to_owned())) }
}

/// Checks file IDs (PS3.10 8.2, unique) and the identifiers every record needs.
fn check_entries(entries: &[DirectoryEntry]) -> Result<(), DicomdirError> {
    let mut seen = HashSet::new();
    for entry in entries {
        let invalid = |reason| DicomdirError::InvalidFileId { file_id: entry.file_id.clone(), reason };
        if entry.file_id.is_empty() || entry.file_id.len() > 8 {
            return Err(invalid("a file ID has 1 to 8 components"));
        }
        let valid_component = |c: &String| {
            (1..=8).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        };
        if !entry.file_id.iter().all(valid_component) {
            return Err(invalid("a component has 1 to 8 characters of A-Z, 0-9 and _"));
        }
        let path = entry.file_id.join("/");
        let required = [
            ("Study Instance UID", text(entry.header, tags::STUDY_INSTANCE_UID)),
            ("Series Instance UID", text(entry.header, tags::SERIES_INSTANCE_UID)),
            ("SOP Class UID", sop_class_uid(entry.header)),
            ("SOP Instance UID", sop_instance_uid(entry.header)),
            ("Transfer Syntax UID", entry.header.meta().transfer_syntax().to_owned()),
        ];
        if let Some((attribute, _)) = required.iter().find(|(_, value)| value.is_empty()) {
            return Err(DicomdirError::MissingAttribute { file_id: path, attribute });
        }
        if !seen.insert(path.clone()) {
            return Err(DicomdirError::DuplicateFileId(path));
        }
    }
    Ok(())
}

// Hierarchy ----------------------------------------------------------------------------------

/// A directory record before layout: its keys, and the records it links to (indexes).
struct Record {
    level: Level,
    keys: InMemDicomObject,
    next: Option<usize>,
    lower: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Patient,
    Study,
    Series,
    Instance,
}

impl Level {
    fn lower(self) -> Option<Level> {
        match self {
            Level::Patient => Some(Level::Study),
            Level::Study => Some(Level::Series),
            Level::Series => Some(Level::Instance),
            Level::Instance => None,
        }
    }

    /// Splits `members` (entry indexes) into this level's directory entities.
    fn group(self, entries: &[DirectoryEntry], members: &[usize]) -> Vec<Vec<usize>> {
        let header = |i: usize| entries[i].header;
        match self {
            Level::Patient => group_by(members, |i| {
                let id = text(header(i), tags::PATIENT_ID);
                let name = if id.is_empty() { text(header(i), tags::PATIENT_NAME) } else { String::new() };
                (id, name)
            }),
            Level::Study => group_by(members, |i| text(header(i), tags::STUDY_INSTANCE_UID)),
            Level::Series => group_by(members, |i| text(header(i), tags::SERIES_INSTANCE_UID)),
            Level::Instance => members.iter().map(|&i| vec![i]).collect(),
        }
    }
}

/// Splits `members` into groups of equal key, in order of first appearance.
fn group_by<K: Eq + Hash>(members: &[usize], key: impl Fn(usize) -> K) -> Vec<Vec<usize>> {
    let mut index = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &member in members {
        let group = *index.entry(key(member)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(member);
    }
    groups
}

/// Appends the records of `level` for `members` and, after each, its lower-level entity:
/// records end up in depth-first order (a patient, its first study, that study's first series,
/// its instances, the next series, …), linked by index.
fn append_level(records: &mut Vec<Record>, entries: &[DirectoryEntry], members: &[usize], level: Level) {
    let mut previous: Option<usize> = None;
    for group in level.group(entries, members) {
        let at = records.len();
        let entry = &entries[group[0]];
        let kind = match level {
            Level::Patient => RecordType::Patient,
            Level::Study => RecordType::Study,
            Level::Series => RecordType::Series,
            Level::Instance => RecordType::for_sop_class(&sop_class_uid(entry.header)),
        };
        records.push(Record { level, keys: record_keys(kind, entry), next: None, lower: None });
        if let Some(previous) = previous {
            records[previous].next = Some(at);
        }
        previous = Some(at);
        if let Some(lower) = level.lower() {
            records[at].lower = Some(records.len());
            append_level(records, entries, &group, lower);
        }
    }
}

// Records ------------------------------------------------------------------------------------

/// Directory Record Types (PS3.3 F.5) this builder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordType {
    Patient,
    Study,
    Series,
    Image,
    SrDocument,
    KeyObjectDoc,
    EncapDoc,
    Presentation,
}

/// How a key is filled from the instance's header.
#[derive(Debug, Clone, Copy)]
enum Fill {
    /// Type 1: the instance's value, or this stand-in when it has none.
    Required(&'static str),
    /// Type 2: the instance's value, or an empty one.
    Present,
    /// Type 1C or 3 (and type 1 sequences, for which no stand-in makes sense): the instance's
    /// value when it has one.
    IfPresent,
    /// The SR Content Sequence key (1C): only the root's HAS CONCEPT MOD items, if any.
    ConceptModifiers,
}

struct Key(Tag, VR, Fill);

const DATE_UNKNOWN: Fill = Fill::Required("19000101");
const TIME_UNKNOWN: Fill = Fill::Required("000000");
const NUMBER_UNKNOWN: Fill = Fill::Required("0");

const INSTANCE_NUMBER: Key = Key(tags::INSTANCE_NUMBER, VR::IS, NUMBER_UNKNOWN);
const CONTENT_DATE: Key = Key(tags::CONTENT_DATE, VR::DA, DATE_UNKNOWN);
const CONTENT_TIME: Key = Key(tags::CONTENT_TIME, VR::TM, TIME_UNKNOWN);
const CONCEPT_NAME: Key = Key(tags::CONCEPT_NAME_CODE_SEQUENCE, VR::SQ, Fill::IfPresent);
const CONCEPT_MODIFIERS: Key = Key(tags::CONTENT_SEQUENCE, VR::SQ, Fill::ConceptModifiers);

impl RecordType {
    /// The record type of an instance record, by SOP class; IMAGE for anything else.
    fn for_sop_class(uid: &str) -> RecordType {
        const SR: &str = "1.2.840.10008.5.1.4.1.1.88.";
        const ENCAPSULATED: &str = "1.2.840.10008.5.1.4.1.1.104.";
        const PRESENTATION_STATE: &str = "1.2.840.10008.5.1.4.1.1.11.";
        match uid {
            uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE => RecordType::KeyObjectDoc,
            uids::BASIC_STRUCTURED_DISPLAY_STORAGE => RecordType::Presentation,
            _ if uid.starts_with(SR) => RecordType::SrDocument,
            _ if uid.starts_with(ENCAPSULATED) => RecordType::EncapDoc,
            _ if uid.starts_with(PRESENTATION_STATE) => RecordType::Presentation,
            _ => RecordType::Image,
        }
    }

    /// The value of Directory Record Type (0004,1430).
    fn name(self) -> &'static str {
        match self {
            RecordType::Patient => "PATIENT",
            RecordType::Study => "STUDY",
            RecordType::Series => "SERIES",
            RecordType::Image => "IMAGE",
            RecordType::SrDocument => "SR DOCUMENT",
            RecordType::KeyObjectDoc => "KEY OBJECT DOC",
            RecordType::EncapDoc => "ENCAP DOC",
            RecordType::Presentation => "PRESENTATION",
        }
    }

    /// The keys of PS3.3 F.5 for this record type, Specific Character Set aside.
    fn keys(self) -> &'static [Key] {
        match self {
            RecordType::Patient => &[
                Key(tags::PATIENT_NAME, VR::PN, Fill::Present),
                Key(tags::PATIENT_ID, VR::LO, Fill::Required("UNKNOWN")),
            ],
            RecordType::Study => &[
                Key(tags::STUDY_DATE, VR::DA, DATE_UNKNOWN),
                Key(tags::STUDY_TIME, VR::TM, TIME_UNKNOWN),
                Key(tags::ACCESSION_NUMBER, VR::SH, Fill::Present),
                Key(tags::STUDY_DESCRIPTION, VR::LO, Fill::Present),
                Key(tags::STUDY_INSTANCE_UID, VR::UI, Fill::IfPresent),
                Key(tags::STUDY_ID, VR::SH, Fill::Required("UNKNOWN")),
            ],
            RecordType::Series => &[
                Key(tags::MODALITY, VR::CS, Fill::Required("OT")),
                Key(tags::SERIES_INSTANCE_UID, VR::UI, Fill::IfPresent),
                Key(tags::SERIES_NUMBER, VR::IS, NUMBER_UNKNOWN),
            ],
            RecordType::Image => &[INSTANCE_NUMBER],
            RecordType::SrDocument => &[
                CONTENT_DATE,
                CONTENT_TIME,
                INSTANCE_NUMBER,
                Key(tags::VERIFICATION_DATE_TIME, VR::DT, Fill::IfPresent),
                CONCEPT_NAME,
                CONCEPT_MODIFIERS,
                Key(tags::COMPLETION_FLAG, VR::CS, Fill::Required("PARTIAL")),
                Key(tags::VERIFICATION_FLAG, VR::CS, Fill::Required("UNVERIFIED")),
            ],
            RecordType::KeyObjectDoc => &[CONTENT_DATE, CONTENT_TIME, INSTANCE_NUMBER, CONCEPT_NAME, CONCEPT_MODIFIERS],
            RecordType::EncapDoc => &[
                Key(tags::CONTENT_DATE, VR::DA, Fill::Present),
                Key(tags::CONTENT_TIME, VR::TM, Fill::Present),
                INSTANCE_NUMBER,
                Key(tags::CONCEPT_NAME_CODE_SEQUENCE, VR::SQ, Fill::Present),
                Key(tags::HL7_INSTANCE_IDENTIFIER, VR::ST, Fill::IfPresent),
                Key(tags::DOCUMENT_TITLE, VR::ST, Fill::Present),
                Key(tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT, VR::LO, Fill::Required("application/octet-stream")),
            ],
            RecordType::Presentation => &[
                Key(tags::REFERENCED_SERIES_SEQUENCE, VR::SQ, Fill::IfPresent),
                INSTANCE_NUMBER,
                Key(tags::CONTENT_LABEL, VR::CS, Fill::Required("UNNAMED")),
                Key(tags::CONTENT_DESCRIPTION, VR::LO, Fill::Present),
                Key(tags::PRESENTATION_CREATION_DATE, VR::DA, DATE_UNKNOWN),
                Key(tags::PRESENTATION_CREATION_TIME, VR::TM, TIME_UNKNOWN),
                Key(tags::CONTENT_CREATOR_NAME, VR::PN, Fill::Present),
                Key(tags::BLENDING_SEQUENCE, VR::SQ, Fill::IfPresent),
            ],
        }
    }

    /// Whether records of this type reference a file.
    fn is_instance(self) -> bool {
        !matches!(self, RecordType::Patient | RecordType::Study | RecordType::Series)
    }
}

/// A record of type `kind` for `entry`, with zero offsets (filled in at layout).
fn record_keys(kind: RecordType, entry: &DirectoryEntry) -> InMemDicomObject {
    let header = entry.header;
    let mut record = InMemDicomObject::new_empty();
    put(&mut record, tags::OFFSET_OF_THE_NEXT_DIRECTORY_RECORD, VR::UL, 0u32);
    put(&mut record, tags::RECORD_IN_USE_FLAG, VR::US, 0xFFFFu16);
    put(&mut record, tags::OFFSET_OF_REFERENCED_LOWER_LEVEL_DIRECTORY_ENTITY, VR::UL, 0u32);
    put(&mut record, tags::DIRECTORY_RECORD_TYPE, VR::CS, kind.name());
    for &Key(tag, vr, fill) in kind.keys() {
        let value = header.get(tag).filter(|e| has_value(e));
        let element = match fill {
            Fill::ConceptModifiers => concept_modifiers(header),
            _ if value.is_some() => value.cloned(),
            Fill::Required(stand_in) => Some(DataElement::new(tag, vr, PrimitiveValue::from(stand_in))),
            Fill::Present if vr == VR::SQ => Some(DataElement::new(tag, vr, DataSetSequence::empty())),
            Fill::Present => Some(DataElement::new(tag, vr, PrimitiveValue::Empty)),
            Fill::IfPresent => None,
        };
        if let Some(element) = element {
            record.put(element);
        }
    }
    if kind.is_instance() {
        let file_id = PrimitiveValue::Strs(entry.file_id.iter().cloned().collect());
        put(&mut record, tags::REFERENCED_FILE_ID, VR::CS, file_id);
        put(&mut record, tags::REFERENCED_SOP_CLASS_UID_IN_FILE, VR::UI, sop_class_uid(header));
        put(&mut record, tags::REFERENCED_SOP_INSTANCE_UID_IN_FILE, VR::UI, sop_instance_uid(header));
        put(&mut record, tags::REFERENCED_TRANSFER_SYNTAX_UID_IN_FILE, VR::UI, header.meta().transfer_syntax());
    }
    // Specific Character Set is 1C: required when a key uses characters beyond ASCII.
    if has_extended_text(&record)
        && let Some(charset) = header.get(tags::SPECIFIC_CHARACTER_SET)
    {
        record.put(charset.clone());
    }
    record
}

/// The root content item's HAS CONCEPT MOD children, as the SR records' Content Sequence key.
fn concept_modifiers(header: &InMemDicomObject) -> Option<InMemElement> {
    let items = header.get(tags::CONTENT_SEQUENCE)?.items()?;
    let modifiers: Vec<InMemDicomObject> =
        items.iter().filter(|item| text(item, tags::RELATIONSHIP_TYPE) == "HAS CONCEPT MOD").cloned().collect();
    (!modifiers.is_empty()).then(|| DataElement::new(tags::CONTENT_SEQUENCE, VR::SQ, DataSetSequence::from(modifiers)))
}

fn has_value(element: &InMemElement) -> bool {
    match element.value() {
        Value::Primitive(value) => !trim(&value.to_str()).is_empty(),
        Value::Sequence(sequence) => !sequence.items().is_empty(),
        Value::PixelSequence(_) => true,
    }
}

fn has_extended_text(obj: &InMemDicomObject) -> bool {
    obj.iter().any(|element| match element.value() {
        Value::Primitive(PrimitiveValue::Str(s)) => !s.is_ascii(),
        Value::Primitive(PrimitiveValue::Strs(values)) => values.iter().any(|s| !s.is_ascii()),
        Value::Sequence(sequence) => sequence.items().iter().any(has_extended_text),
        _ => false,
    })
}

// Header values ------------------------------------------------------------------------------

/// An attribute's value as text without padding; empty when absent.
fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag).and_then(|e| e.to_str().ok()).map(|s| trim(&s).to_owned()).unwrap_or_default()
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
}

/// The SOP class of the file: from its meta, else from its data set.
fn sop_class_uid(header: &FileDicomObject<InMemDicomObject>) -> String {
    Some(header.meta().media_storage_sop_class_uid())
        .filter(|uid| !uid.is_empty())
        .map_or_else(|| text(header, tags::SOP_CLASS_UID), str::to_owned)
}

/// The SOP instance of the file: from its meta, else from its data set.
fn sop_instance_uid(header: &FileDicomObject<InMemDicomObject>) -> String {
    Some(header.meta().media_storage_sop_instance_uid())
        .filter(|uid| !uid.is_empty())
        .map_or_else(|| text(header, tags::SOP_INSTANCE_UID), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, Modality, SeriesSpec, StudySpec, SynthPatient};

    fn study(seed: u64, patient: &SynthPatient, slices: &[u32]) -> StudySpec {
        StudySpec {
            seed,
            patient: patient.clone(),
            accession_number: format!("ACC{seed}"),
            study_date: "20260101".into(),
            study_time: "101500".into(),
            institution: "Test Hospital".into(),
            description: format!("MR STUDY {seed}"),
            series: slices
                .iter()
                .map(|&slices| SeriesSpec { modality: Modality::Mr, slices, description: "T1".into() })
                .collect(),
        }
    }

    /// Part-10 files of two patients: the demo patient with two MR studies of two series
    /// (2 + 3 and 2 + 2 instances) and the second study's report (SR + PDF), and another
    /// patient with one instance.
    fn files() -> Vec<Vec<u8>> {
        let other = SynthPatient { name: "DOE^JANE".into(), patient_id: "MRN0009999".into(), ..synth::demo_patient() };
        let second = study(2, &synth::demo_patient(), &[2, 2]);
        let mut files = synth::generate_study(&study(1, &synth::demo_patient(), &[2, 3]));
        files.extend(synth::generate_study(&second));
        files.extend(synth::report_instances(&second, "No findings.", "Normal."));
        files.extend(synth::generate_study(&study(3, &other, &[1])));
        files
    }

    fn read_header(file: &[u8]) -> FileDicomObject<InMemDicomObject> {
        crate::inspect::read_header(&mut std::io::Cursor::new(file)).unwrap()
    }

    /// File IDs `DICOM/Snnnn/Innnnn`, series numbered in order of appearance.
    fn file_ids(headers: &[FileDicomObject<InMemDicomObject>]) -> Vec<Vec<String>> {
        let mut series = HashMap::new();
        let mut ids = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let count = series.len();
            let s = *series.entry(text(header, tags::SERIES_INSTANCE_UID)).or_insert(count + 1);
            ids.push(vec!["DICOM".into(), format!("S{s:04}"), format!("I{:05}", i + 1)]);
        }
        ids
    }

    fn entries<'a>(headers: &'a [FileDicomObject<InMemDicomObject>], ids: &[Vec<String>]) -> Vec<DirectoryEntry<'a>> {
        headers.iter().zip(ids).map(|(header, id)| DirectoryEntry { file_id: id.clone(), header }).collect()
    }

    fn ul(obj: &InMemDicomObject, tag: Tag) -> u32 {
        obj.get(tag).unwrap().to_int().unwrap()
    }

    /// The record at `offset`, which must be the first byte of an item's tag.
    fn record_at(bytes: &[u8], offset: u32) -> InMemDicomObject {
        let at = offset as usize;
        assert_eq!(bytes[at..at + 4], [0xFE, 0xFF, 0x00, 0xE0], "no item at offset {offset}");
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let ts = crate::transfer::lookup(EXPLICIT_VR_LITTLE_ENDIAN).unwrap();
        InMemDicomObject::read_dataset_with_ts(&bytes[at + 8..at + 8 + len], ts).unwrap()
    }

    /// The records of a directory entity, by following Offset of the Next Directory Record.
    fn entity(bytes: &[u8], first: u32) -> Vec<InMemDicomObject> {
        let mut records = Vec::new();
        let mut at = first;
        while at != 0 {
            let record = record_at(bytes, at);
            assert_eq!(ul(&record, tags::RECORD_IN_USE_FLAG), 0xFFFF);
            at = ul(&record, tags::OFFSET_OF_THE_NEXT_DIRECTORY_RECORD);
            records.push(record);
        }
        records
    }

    fn lower(bytes: &[u8], record: &InMemDicomObject) -> Vec<InMemDicomObject> {
        entity(bytes, ul(record, tags::OFFSET_OF_REFERENCED_LOWER_LEVEL_DIRECTORY_ENTITY))
    }

    fn record_type(record: &InMemDicomObject) -> String {
        text(record, tags::DIRECTORY_RECORD_TYPE)
    }

    #[test]
    fn offsets_lead_through_the_hierarchy_to_every_instance() {
        let headers: Vec<_> = files().iter().map(|f| read_header(f)).collect();
        let ids = file_ids(&headers);
        let bytes = build(&entries(&headers, &ids), "CLOUDFILM").unwrap();

        let dicomdir = dicom_object::OpenFileOptions::new().from_reader(bytes.as_slice()).unwrap();
        assert_eq!(&bytes[128..132], b"DICM");
        assert_eq!(dicomdir.meta().media_storage_sop_class_uid(), "1.2.840.10008.1.3.10");
        assert_eq!(dicomdir.meta().transfer_syntax(), EXPLICIT_VR_LITTLE_ENDIAN);
        let uid = dicomdir.meta().media_storage_sop_instance_uid();
        assert!(uid.starts_with("2.25.") && uid.len() <= 64, "{uid}");
        assert_eq!(text(&dicomdir, tags::FILE_SET_ID), "CLOUDFILM");
        assert_eq!(ul(&dicomdir, tags::FILE_SET_CONSISTENCY_FLAG), 0);
        let all_records = dicomdir.get(tags::DIRECTORY_RECORD_SEQUENCE).unwrap().items().unwrap().len();

        let patients =
            entity(&bytes, ul(&dicomdir, tags::OFFSET_OF_THE_FIRST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY));
        let last = ul(&dicomdir, tags::OFFSET_OF_THE_LAST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY);
        assert_eq!(text(&record_at(&bytes, last), tags::PATIENT_ID), "MRN0009999");
        let patient_ids: Vec<_> = patients.iter().map(|p| text(p, tags::PATIENT_ID)).collect();
        assert_eq!(patient_ids, ["MRN0001234", "MRN0009999"]);

        let mut visited = patients.len();
        let mut instances = Vec::new();
        for patient in &patients {
            assert_eq!(record_type(patient), "PATIENT");
            for study in lower(&bytes, patient) {
                assert_eq!(record_type(&study), "STUDY");
                for series in lower(&bytes, &study) {
                    assert_eq!(record_type(&series), "SERIES");
                    for instance in lower(&bytes, &series) {
                        assert_eq!(ul(&instance, tags::OFFSET_OF_REFERENCED_LOWER_LEVEL_DIRECTORY_ENTITY), 0);
                        let uid = text(&instance, tags::REFERENCED_SOP_INSTANCE_UID_IN_FILE);
                        let i = headers.iter().position(|h| sop_instance_uid(h) == uid).expect("a known instance");
                        let header = &headers[i];
                        for (record, tag) in [
                            (patient, tags::PATIENT_ID),
                            (&study, tags::STUDY_INSTANCE_UID),
                            (&series, tags::SERIES_INSTANCE_UID),
                            (&instance, tags::INSTANCE_NUMBER),
                        ] {
                            assert_eq!(text(record, tag), text(header, tag));
                        }
                        let file_id = instance.get(tags::REFERENCED_FILE_ID).unwrap().to_multi_str().unwrap();
                        assert_eq!(*file_id, ids[i]);
                        let class = text(&instance, tags::REFERENCED_SOP_CLASS_UID_IN_FILE);
                        assert_eq!(class, text(header, tags::SOP_CLASS_UID));
                        let ts = text(&instance, tags::REFERENCED_TRANSFER_SYNTAX_UID_IN_FILE);
                        assert_eq!(ts, header.meta().transfer_syntax());
                        instances.push((i, record_type(&instance)));
                        visited += 1;
                    }
                    visited += 1;
                }
                visited += 1;
            }
        }
        instances.sort();
        let types: Vec<_> = instances.iter().map(|(i, t)| (*i, t.as_str())).collect();
        let mut expected: Vec<_> = (0..headers.len()).map(|i| (i, "IMAGE")).collect();
        expected[9].1 = "SR DOCUMENT";
        expected[10].1 = "ENCAP DOC";
        assert_eq!(types, expected);
        assert_eq!(visited, all_records, "every record is reachable, once");
        assert_eq!(all_records, 2 + 3 + 7 + headers.len());
    }

    #[test]
    fn records_carry_the_keys_of_their_type() {
        let headers: Vec<_> = files().iter().map(|f| read_header(f)).collect();
        let ids = file_ids(&headers);
        let bytes = build(&entries(&headers, &ids), "").unwrap();
        let dicomdir = dicom_object::OpenFileOptions::new().from_reader(bytes.as_slice()).unwrap();
        let records = dicomdir.get(tags::DIRECTORY_RECORD_SEQUENCE).unwrap().items().unwrap().to_vec();
        let of_type = |t: &'static str| records.iter().filter(move |r| record_type(r) == t);

        let patient = of_type("PATIENT").next().unwrap();
        assert_eq!(text(patient, tags::PATIENT_NAME), "ZHANG^SAN=张^三");
        assert_eq!(text(patient, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
        let study = of_type("STUDY").next().unwrap();
        assert_eq!(text(study, tags::STUDY_DATE), "20260101");
        assert_eq!(text(study, tags::STUDY_ID), "1");
        assert_eq!(text(study, tags::ACCESSION_NUMBER), "ACC1");
        assert!(study.get(tags::SPECIFIC_CHARACTER_SET).is_none(), "ASCII keys need no character set");
        let series = of_type("SERIES").next().unwrap();
        assert_eq!((text(series, tags::MODALITY).as_str(), text(series, tags::SERIES_NUMBER).as_str()), ("MR", "1"));
        for image in of_type("IMAGE") {
            assert!(!text(image, tags::INSTANCE_NUMBER).is_empty());
        }
        let sr = of_type("SR DOCUMENT").next().unwrap();
        assert_eq!(text(sr, tags::COMPLETION_FLAG), "COMPLETE");
        assert_eq!(text(sr, tags::CONTENT_DATE), "19000101", "the instance has none: a stand-in");
        assert!(sr.get(tags::CONTENT_SEQUENCE).is_none(), "no HAS CONCEPT MOD items");
        let title = &sr.get(tags::CONCEPT_NAME_CODE_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(text(title, tags::CODE_MEANING), "影像报告 Imaging Report");
        assert_eq!(text(sr, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
        let pdf = of_type("ENCAP DOC").next().unwrap();
        assert_eq!(text(pdf, tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT), "application/pdf");
        assert_eq!(text(pdf, tags::DOCUMENT_TITLE), "Imaging Report");
        assert!(pdf.get(tags::CONTENT_DATE).is_some_and(|e| !has_value(e)), "type 2: present, empty");
    }

    #[test]
    fn missing_type_1_keys_get_stand_ins_and_patients_without_id_go_by_name() {
        let file = synth::generate_study(&study(7, &synth::demo_patient(), &[1])).remove(0);
        let mut headers = vec![read_header(&file), read_header(&file)];
        for (header, name) in headers.iter_mut().zip(["DOE^JOHN", "ROE^RICHARD"]) {
            for tag in [tags::PATIENT_ID, tags::STUDY_DATE, tags::STUDY_ID, tags::MODALITY, tags::INSTANCE_NUMBER] {
                header.remove_element(tag);
            }
            put(header, tags::PATIENT_NAME, VR::PN, name);
        }
        let ids = [vec!["A".to_owned()], vec!["B".to_owned()]];
        let bytes = build(&entries(&headers, &ids), "").unwrap();
        let dicomdir = dicom_object::OpenFileOptions::new().from_reader(bytes.as_slice()).unwrap();
        let records = dicomdir.get(tags::DIRECTORY_RECORD_SEQUENCE).unwrap().items().unwrap();
        let types: Vec<_> = records.iter().map(record_type).collect();
        assert_eq!(types, ["PATIENT", "STUDY", "SERIES", "IMAGE", "PATIENT", "STUDY", "SERIES", "IMAGE"]);
        for (key, stand_in) in [
            (tags::PATIENT_ID, "UNKNOWN"),
            (tags::STUDY_DATE, "19000101"),
            (tags::STUDY_ID, "UNKNOWN"),
            (tags::MODALITY, "OT"),
            (tags::INSTANCE_NUMBER, "0"),
        ] {
            assert!(records.iter().any(|r| text(r, key) == stand_in), "{key}");
        }
    }

    #[test]
    fn records_are_encoded_in_the_instance_character_set() {
        let file = synth::generate_study(&study(7, &synth::demo_patient(), &[1])).remove(0);
        let mut header = read_header(&file);
        put(&mut header, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
        put(&mut header, tags::PATIENT_NAME, VR::PN, "MÜLLER^HANS");
        let bytes = build(&[DirectoryEntry { file_id: vec!["A".into()], header: &header }], "").unwrap();
        assert!(bytes.windows(6).any(|w| w == b"M\xDCLLER"), "Latin-1 bytes");
        let dicomdir = dicom_object::OpenFileOptions::new().from_reader(bytes.as_slice()).unwrap();
        let patient = &dicomdir.get(tags::DIRECTORY_RECORD_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(text(patient, tags::PATIENT_NAME), "MÜLLER^HANS");
    }

    #[test]
    fn rejects_bad_file_ids_and_file_set_ids() {
        let file = synth::generate_study(&study(7, &synth::demo_patient(), &[1])).remove(0);
        let header = read_header(&file);
        let with_id = |id: &[&str]| {
            build(&[DirectoryEntry { file_id: id.iter().map(|c| c.to_string()).collect(), header: &header }], "")
        };
        for id in [&[][..], &["dicom"], &["TOOLONGID"], &[""], &["A-B"], &["A"; 9], &["DICOM", "Ä"]] {
            assert!(matches!(with_id(id), Err(DicomdirError::InvalidFileId { .. })), "{id:?}");
        }
        assert!(with_id(&["DICOM", "S_1", "I12345678"]).is_err());
        assert!(with_id(&["DICOM", "S_1", "I1234567"]).is_ok());
        let entry = DirectoryEntry { file_id: vec!["A".into()], header: &header };
        assert_eq!(build(&[entry.clone(), entry], ""), Err(DicomdirError::DuplicateFileId("A".into())));
        assert!(matches!(build(&[], "lowercase"), Err(DicomdirError::InvalidFileSetId(_))));
        assert!(matches!(build(&[], "SEVENTEEN_CHARS_X"), Err(DicomdirError::InvalidFileSetId(_))));
    }

    #[test]
    fn the_same_input_gives_the_same_bytes_and_an_empty_file_set_is_valid() {
        let file = synth::generate_study(&study(7, &synth::demo_patient(), &[1])).remove(0);
        let header = read_header(&file);
        let entry = [DirectoryEntry { file_id: vec!["A".into()], header: &header }];
        assert_eq!(build(&entry, "X").unwrap(), build(&entry, "X").unwrap());
        assert_ne!(build(&entry, "X").unwrap(), build(&entry, "Y").unwrap());

        let empty = build(&[], "EMPTY").unwrap();
        let dicomdir = dicom_object::OpenFileOptions::new().from_reader(empty.as_slice()).unwrap();
        assert_eq!(ul(&dicomdir, tags::OFFSET_OF_THE_FIRST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY), 0);
        assert!(dicomdir.get(tags::DIRECTORY_RECORD_SEQUENCE).unwrap().items().unwrap().is_empty());
    }
}
