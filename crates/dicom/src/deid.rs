//! De-identification by the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.
//!
//! Every attribute of Table E.1-1 gets the action of the Basic Profile column, at every depth
//! of nesting (the submodule `table` holds the table). Attributes the table does not name are
//! kept (K), with sequences de-identified item by item. On top of the table:
//! - private attributes (odd groups), curve data (50xx,xxxx), overlay data (60xx,3000) and
//!   overlay comments (60xx,4000) are removed, as are group lengths (gggg,0000), retired and
//!   wrong once values change;
//! - a combined code (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) takes its last alternative. The profile
//!   allows removal (X) only where the attribute is Type 3 in the IOD, and an empty value (Z)
//!   only where it is Type 2 or 3; that depends on the IOD, so the alternative valid in every
//!   IOD is taken. It reveals nothing either: an empty value, a dummy, or references whose
//!   instance UIDs are replaced;
//! - a sequence replaced by a dummy (D) keeps its items, with every text, date, time and opaque
//!   binary value in them replaced by a dummy too (the table's own actions still apply inside),
//!   while coded strings, numbers and the UIDs the table keeps stay, so that the items remain
//!   well-formed (an SR document's Content Sequence keeps its tree, not its words);
//! - UIDs are replaced through the caller's [`UidMapper`] where the table says U (Study, Series
//!   and SOP Instance UIDs, Frame of Reference UIDs, Referenced SOP Instance UIDs, ...). Every
//!   other UID is kept: SOP classes, transfer syntaxes, coding schemes.
//!
//! The result is marked: Patient Identity Removed, De-identification Method and its code
//! sequence, and Longitudinal Temporal Information Modified when a date or time went. The file
//! meta follows: its Media Storage SOP Instance UID is the new SOP Instance UID, and the
//! application entity titles of the sending nodes and the sender's private meta information
//! are dropped.
//!
//! Pixel data is kept as it is. The Basic Profile does not clean pixels (that is the Clean
//! Pixel Data Option): identifying text burned into the image stays.

mod table;

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::{InMemDicomObject, InMemElement};
use dicom_object::{FileDicomObject, OpenFileOptions};

/// Replaces UIDs consistently: same input UID → same output UID within one share.
pub trait UidMapper {
    /// The replacement of `uid` (given without padding); a valid UID of at most 64 characters.
    fn map(&self, uid: &str) -> String;
}

impl<F: Fn(&str) -> String> UidMapper for F {
    fn map(&self, uid: &str) -> String {
        self(uid)
    }
}

/// Why an instance could not be de-identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeidError {
    #[error("the Part-10 file does not parse: {0}")]
    Unreadable(String),
    #[error("the de-identified file cannot be written: {0}")]
    Unwritable(String),
    #[error("{0} must hold UIDs, but its value is not text")]
    NotAUid(Tag),
}

/// De-identifies an instance in place by the Basic Profile (see the module documentation),
/// replacing instance UIDs through `uids`.
pub fn deidentify(obj: &mut FileDicomObject<InMemDicomObject>, uids: &dyn UidMapper) -> Result<(), DeidError> {
    let mut cleaner = Cleaner { uids, dates_modified: false };
    cleaner.clean(obj, false)?;
    mark_deidentified(obj, cleaner.dates_modified);
    let sop_instance_uid = match obj.get(tags::SOP_INSTANCE_UID).and_then(|e| e.to_str().ok()) {
        Some(uid) if !uid.is_empty() => uid.into_owned(),
        _ => uids.map(obj.meta().media_storage_sop_instance_uid()),
    };
    obj.update_meta(|meta| {
        meta.media_storage_sop_instance_uid = sop_instance_uid;
        meta.source_application_entity_title = None;
        meta.sending_application_entity_title = None;
        meta.receiving_application_entity_title = None;
        meta.private_information_creator_uid = None;
        meta.private_information = None;
        // This file is written here now (PS3.10 7.1).
        meta.implementation_class_uid = crate::dimse::IMPLEMENTATION_CLASS_UID.into();
        meta.implementation_version_name = Some(crate::dimse::IMPLEMENTATION_VERSION_NAME.into());
    });
    Ok(())
}

/// De-identifies a whole Part-10 file (see [`deidentify`]) into a new Part-10 file, with the
/// same transfer syntax and the pixel data as it was (encapsulated fragments unchanged).
pub fn deidentify_bytes(part10: &[u8], uids: &dyn UidMapper) -> Result<Vec<u8>, DeidError> {
    let mut obj = OpenFileOptions::new().from_reader(part10).map_err(|e| DeidError::Unreadable(e.to_string()))?;
    deidentify(&mut obj, uids)?;
    let mut out = Vec::with_capacity(part10.len());
    obj.write_all(&mut out).map_err(|e| DeidError::Unwritable(e.to_string()))?;
    Ok(out)
}

/// Whether [`deidentify`] removes an attribute wherever it appears: X in the Basic Profile,
/// private attributes, curve data, overlay data and comments, and group lengths.
pub fn removed_by_profile(tag: Tag) -> bool {
    profile_code(tag) == Some(Code::Remove)
}

/// An action code of the Basic Profile column of Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// D: replace with a non-empty dummy value of the VR.
    Dummy,
    /// Z: replace with an empty value.
    Zero,
    /// X: remove.
    Remove,
    /// U: replace the UID, consistently within the share.
    Uid,
    /// X/Z.
    RemoveOrZero,
    /// X/D.
    RemoveOrDummy,
    /// X/Z/D.
    RemoveZeroOrDummy,
    /// Z/D.
    ZeroOrDummy,
    /// X/Z/U*: a sequence of references, whose instance UIDs are replaced.
    RemoveZeroOrUids,
}

/// What happens to one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Remove,
    Empty,
    Dummy,
    Remap,
}

impl Code {
    /// The operation of a code; a combined code takes its last alternative (module docs).
    fn op(self) -> Op {
        match self {
            Code::Remove => Op::Remove,
            Code::Zero | Code::RemoveOrZero => Op::Empty,
            Code::Dummy | Code::RemoveOrDummy | Code::RemoveZeroOrDummy | Code::ZeroOrDummy => Op::Dummy,
            Code::Uid | Code::RemoveZeroOrUids => Op::Remap,
        }
    }
}

/// The Basic Profile code of an attribute; `None` for one kept (K).
fn profile_code(tag: Tag) -> Option<Code> {
    let Tag(group, element) = tag;
    let removed_by_rule = group % 2 == 1 // private attributes
        || element == 0x0000 // group lengths
        || (0x5000..=0x50FF).contains(&group) // curve data
        || ((0x6000..=0x60FF).contains(&group) && matches!(element, 0x3000 | 0x4000)); // overlay data, comments
    if removed_by_rule {
        return Some(Code::Remove);
    }
    let profile = table::BASIC_PROFILE;
    profile.binary_search_by_key(&tag, |&(tag, _)| tag).ok().map(|at| profile[at].1)
}

/// Values replaced inside a sequence replaced by a dummy: text, dates and times, opaque bytes.
fn replaced_in_dummy(vr: VR) -> bool {
    use VR::*;
    matches!(vr, AE | AS | DA | DT | LO | LT | PN | SH | ST | TM | UC | UR | UT | OB | OD | OF | OL | OV | OW | UN)
}

/// The dummy text of the string VRs, valid in all of them (at most 16 characters, upper case).
const DUMMY_TEXT: &str = "ANONYMOUS";

/// A dummy value of a VR (D): valid, non-empty, and meaning nothing. Never asked for UI (the
/// UID is replaced instead) nor SQ (a sequence keeps its items).
fn dummy_value(vr: VR) -> PrimitiveValue {
    match vr {
        VR::DA => "19000101".into(),
        VR::DT => "19000101000000".into(),
        VR::TM => "000000".into(),
        VR::AS => "000D".into(),
        VR::DS | VR::IS => "0".into(),
        VR::OB | VR::UN => vec![0_u8; 2].into(),
        VR::OW | VR::US => 0_u16.into(),
        VR::SS => 0_i16.into(),
        VR::OL | VR::UL => 0_u32.into(),
        VR::SL => 0_i32.into(),
        VR::OV | VR::UV => 0_u64.into(),
        VR::SV => 0_i64.into(),
        VR::OF | VR::FL => 0_f32.into(),
        VR::OD | VR::FD => 0_f64.into(),
        VR::AT => Tag(0, 0).into(),
        _ => DUMMY_TEXT.into(),
    }
}

/// Whether an attribute holds a date or time, itself or in its items.
fn holds_dates(elem: &InMemElement) -> bool {
    match elem.value() {
        Value::Sequence(seq) => seq.items().iter().any(|item| item.iter().any(holds_dates)),
        Value::Primitive(value) => matches!(elem.vr(), VR::DA | VR::DT | VR::TM) && !value.to_str().is_empty(),
        Value::PixelSequence(_) => false,
    }
}

/// One de-identification pass over a data set.
struct Cleaner<'a> {
    uids: &'a dyn UidMapper,
    /// Whether a date or time was removed or replaced.
    dates_modified: bool,
}

impl Cleaner<'_> {
    /// De-identifies a data set or a sequence item; `in_dummy` inside a sequence replaced by a
    /// dummy.
    fn clean(&mut self, obj: &mut InMemDicomObject, in_dummy: bool) -> Result<(), DeidError> {
        for tag in obj.tags().collect::<Vec<_>>() {
            let Some(elem) = obj.take(tag) else { continue };
            if let Some(elem) = self.clean_element(elem, in_dummy)? {
                obj.put(elem);
            }
        }
        Ok(())
    }

    /// The de-identified attribute, `None` when it is removed.
    fn clean_element(&mut self, elem: InMemElement, in_dummy: bool) -> Result<Option<InMemElement>, DeidError> {
        let (tag, vr) = (elem.tag(), elem.vr());
        let op = match profile_code(tag) {
            Some(code) => code.op(),
            None if in_dummy && replaced_in_dummy(vr) => Op::Dummy,
            None => Op::Keep,
        };
        if matches!(op, Op::Remove | Op::Empty | Op::Dummy) && holds_dates(&elem) {
            self.dates_modified = true;
        }
        Ok(match op {
            Op::Remove => None,
            Op::Empty => Some(DataElement::empty(tag, vr)),
            _ if matches!(elem.value(), Value::Sequence(_)) => {
                let mut items = elem.into_value().into_items().unwrap_or_default().into_vec();
                for item in &mut items {
                    self.clean(item, in_dummy || op == Op::Dummy)?;
                }
                // A new sequence: the lengths read with the old items no longer hold.
                Some(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)))
            }
            Op::Remap => Some(self.remap(elem)?),
            Op::Dummy if vr == VR::UI => Some(self.remap(elem)?),
            Op::Dummy => Some(DataElement::new(tag, vr, dummy_value(vr))),
            Op::Keep => Some(elem),
        })
    }

    /// The attribute with each of its UIDs replaced.
    fn remap(&self, elem: InMemElement) -> Result<InMemElement, DeidError> {
        let tag = elem.tag();
        let text = match elem.value() {
            Value::Primitive(PrimitiveValue::Empty) => return Ok(elem),
            Value::Primitive(value @ (PrimitiveValue::Str(_) | PrimitiveValue::Strs(_))) => value.to_str().into_owned(),
            // An explicit VR of UN: the value's bytes are its text.
            Value::Primitive(PrimitiveValue::U8(bytes)) => {
                String::from_utf8(bytes.to_vec()).map_err(|_| DeidError::NotAUid(tag))?
            }
            _ => return Err(DeidError::NotAUid(tag)),
        };
        let uids: Vec<String> = text
            .split('\\')
            .map(|uid| uid.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
            .map(|uid| if uid.is_empty() { String::new() } else { self.uids.map(uid) })
            .collect();
        Ok(DataElement::new(tag, VR::UI, PrimitiveValue::Strs(uids.into())))
    }
}

/// The value of De-identification Method (0012,0063).
const METHOD: &str = "PS3.15 E.1 Basic Application Level Confidentiality Profile";
/// The item of De-identification Method Code Sequence (0012,0064): the profile's code (CID 7050).
const METHOD_CODE: [(Tag, VR, &str); 3] = [
    (tags::CODE_VALUE, VR::SH, "113100"),
    (tags::CODING_SCHEME_DESIGNATOR, VR::SH, "DCM"),
    (tags::CODE_MEANING, VR::LO, "Basic Application Confidentiality Profile"),
];

/// Records the de-identification in the data set; methods applied before stay listed first.
fn mark_deidentified(obj: &mut InMemDicomObject, dates_modified: bool) {
    obj.put_str(tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES");

    let mut methods = obj.get(tags::DEIDENTIFICATION_METHOD).and_then(|e| e.to_multi_str().ok()).unwrap_or_default();
    if !methods.iter().any(|m| m == METHOD) {
        methods.to_mut().push(METHOD.to_owned());
    }
    let methods = PrimitiveValue::Strs(methods.into_owned().into());
    obj.put(DataElement::new(tags::DEIDENTIFICATION_METHOD, VR::LO, methods));

    let mut codes = obj
        .take(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.into_value().into_items())
        .map(|items| items.into_vec())
        .unwrap_or_default();
    let is_ours = |item: &InMemDicomObject| {
        METHOD_CODE[..2]
            .iter()
            .all(|&(tag, _, value)| item.get(tag).and_then(|e| e.to_str().ok()).as_deref() == Some(value))
    };
    if !codes.iter().any(is_ours) {
        let code = METHOD_CODE.map(|(tag, vr, value)| DataElement::new(tag, vr, PrimitiveValue::from(value)));
        codes.push(InMemDicomObject::from_element_iter(code));
    }
    obj.put(DataElement::new(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE, VR::SQ, DataSetSequence::from(codes)));

    if dates_modified {
        obj.put_str(tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED, VR::CS, "REMOVED");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::PixelFragmentSequence;
    use dicom_object::meta::FileMetaTableBuilder;
    use sha2::{Digest, Sha256};

    /// The caller's kind of mapper: 2.25 and 128 bits of a keyed hash.
    fn test_uid(uid: &str) -> String {
        let digest = Sha256::digest(format!("test share key:{uid}"));
        format!("2.25.{}", u128::from_be_bytes(digest[..16].try_into().unwrap()))
    }

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const STUDY: &str = "1.2.826.0.1.3680043.99.1";
    const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
    /// Identifying values of the instances below, none of which may survive.
    const SECRETS: [&str; 13] = [
        "DOE^JANE",
        "PID-4711",
        "19710203",
        "RES-998877",
        "ACC-778899",
        "Saint Example Hospital",
        "REFERRER^ROB",
        "OPERATOR^OLLIE",
        "READER^RITA",
        "secret private note",
        "findings about Jane",
        "20240315",
        "1 Example Street",
    ];

    fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }

    fn item(elements: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        for &(tag, vr, value) in elements {
            put(&mut obj, tag, vr, value);
        }
        obj
    }

    fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    }

    /// A CT image of the study, as Part-10 bytes: identifying attributes at the top and in
    /// sequences, a private attribute, an overlay, a curve, an SR-like content tree, and a
    /// reference to `referenced` (another instance of the study) when given.
    fn instance(sop_uid: &str, referenced: Option<&str>, ts: &str, pixels: Value<InMemDicomObject>) -> Vec<u8> {
        let mut obj = item(&[
            (tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
            (tags::SOP_CLASS_UID, VR::UI, CT),
            (tags::SOP_INSTANCE_UID, VR::UI, sop_uid),
            (tags::STUDY_DATE, VR::DA, "20240315"),
            (tags::SERIES_DATE, VR::DA, "20240315"),
            (tags::STUDY_TIME, VR::TM, "101500"),
            (tags::ACCESSION_NUMBER, VR::SH, "ACC-778899"),
            (tags::MODALITY, VR::CS, "CT"),
            (tags::INSTITUTION_NAME, VR::LO, "Saint Example Hospital"),
            (tags::INSTITUTION_ADDRESS, VR::ST, "1 Example Street"),
            (tags::REFERRING_PHYSICIAN_NAME, VR::PN, "REFERRER^ROB"),
            (tags::OPERATORS_NAME, VR::PN, "OPERATOR^OLLIE"),
            (tags::PATIENT_NAME, VR::PN, "DOE^JANE"),
            (tags::PATIENT_ID, VR::LO, "PID-4711"),
            (tags::PATIENT_BIRTH_DATE, VR::DA, "19710203"),
            (tags::PATIENT_SEX, VR::CS, "F"),
            (tags::PATIENT_ADDRESS, VR::LO, "1 Example Street"),
            (tags::STUDY_INSTANCE_UID, VR::UI, STUDY),
            (tags::SERIES_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.99.1.1"),
            (tags::FRAME_OF_REFERENCE_UID, VR::UI, "1.2.826.0.1.3680043.99.1.9"),
            (Tag(0x0009, 0x0010), VR::LO, "ACME 1.0"),
            (Tag(0x0009, 0x1001), VR::LO, "secret private note"),
            (Tag(0x6000, 0x4000), VR::LT, "overlay about DOE^JANE"),
        ]);
        for (tag, value) in
            [(Tag(0x5000, 0x0005), 1_u16), (Tag(0x6000, 0x0010), 2), (tags::ROWS, 2), (tags::COLUMNS, 2)]
        {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        }
        obj.put(DataElement::new(Tag(0x6000, 0x3000), VR::OW, PrimitiveValue::from(vec![0_u8; 2])));
        obj.put(sequence(
            tags::OTHER_PATIENT_I_DS_SEQUENCE,
            vec![item(&[(tags::PATIENT_ID, VR::LO, "RES-998877"), (tags::TYPE_OF_PATIENT_ID, VR::CS, "TEXT")])],
        ));
        // A kept sequence whose items hold a name, instance UIDs and a nested reference.
        let mut series_ref = item(&[
            (tags::SERIES_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.99.1.1"),
            (tags::OPERATORS_NAME, VR::PN, "OPERATOR^OLLIE"),
        ]);
        if let Some(referenced) = referenced {
            let reference = || {
                item(&[
                    (tags::REFERENCED_SOP_CLASS_UID, VR::UI, CT),
                    (tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, referenced),
                ])
            };
            series_ref.put(sequence(tags::REFERENCED_INSTANCE_SEQUENCE, vec![reference()]));
            obj.put(sequence(tags::REFERENCED_IMAGE_SEQUENCE, vec![reference()]));
        }
        obj.put(sequence(tags::REFERENCED_SERIES_SEQUENCE, vec![series_ref]));
        // Removed whole (X), with a date inside.
        obj.put(sequence(
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            vec![item(&[(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, "20240315")])],
        ));
        // Replaced by a dummy (D): the tree stays, its words go.
        let mut text = item(&[
            (tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
            (tags::VALUE_TYPE, VR::CS, "TEXT"),
            (tags::TEXT_VALUE, VR::UT, "findings about Jane"),
        ]);
        text.put(sequence(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![item(&[
                (tags::CODE_VALUE, VR::SH, "121071"),
                (tags::CODING_SCHEME_DESIGNATOR, VR::SH, "DCM"),
                (tags::CODE_MEANING, VR::LO, "Finding"),
            ])],
        ));
        let name = item(&[
            (tags::RELATIONSHIP_TYPE, VR::CS, "HAS OBS CONTEXT"),
            (tags::VALUE_TYPE, VR::CS, "PNAME"),
            (tags::PERSON_NAME, VR::PN, "READER^RITA"),
        ]);
        obj.put(sequence(tags::CONTENT_SEQUENCE, vec![text, name]));
        obj.put(DataElement::new(tags::PIXEL_DATA, if ts == JPEG_BASELINE { VR::OB } else { VR::OW }, pixels));
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(CT)
            .media_storage_sop_instance_uid(sop_uid)
            .transfer_syntax(ts)
            .source_application_entity_title("HOSPITAL_CT1");
        let mut out = Vec::new();
        obj.with_meta(meta).unwrap().write_all(&mut out).unwrap();
        out
    }

    fn native_pixels() -> Value<InMemDicomObject> {
        PrimitiveValue::U16(vec![1, 2, 3, 0xFFFF].into()).into()
    }

    fn native(sop_uid: &str, referenced: Option<&str>) -> Vec<u8> {
        instance(sop_uid, referenced, crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN, native_pixels())
    }

    fn parse(bytes: &[u8]) -> FileDicomObject<InMemDicomObject> {
        OpenFileOptions::new().from_reader(bytes).expect("the de-identified file parses")
    }

    fn text(obj: &InMemDicomObject, tag: Tag) -> String {
        obj.get(tag).unwrap_or_else(|| panic!("{tag} is missing")).to_str().unwrap().into_owned()
    }

    fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
        obj.get(tag).and_then(|e| e.items()).unwrap_or_else(|| panic!("{tag} is not a sequence"))
    }

    /// The bytes from the Pixel Data element to the end of the file.
    fn pixel_data_bytes(part10: &[u8]) -> &[u8] {
        let at = part10.windows(4).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00]).unwrap();
        &part10[at..]
    }

    #[test]
    fn the_table_is_sorted_by_tag_without_duplicates() {
        assert!(table::BASIC_PROFILE.len() > 600);
        assert!(table::BASIC_PROFILE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn removed_by_profile_follows_the_table_and_the_rules_for_ranges() {
        for removed in [
            tags::PATIENT_ADDRESS,
            tags::OTHER_PATIENT_I_DS_SEQUENCE,
            tags::INSTITUTION_ADDRESS,
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            Tag(0x0009, 0x0010),
            Tag(0x7FE1, 0x1010),
            Tag(0x5002, 0x3000),
            Tag(0x6000, 0x3000),
            Tag(0x601E, 0x4000),
            Tag(0x0008, 0x0000),
        ] {
            assert!(removed_by_profile(removed), "{removed} is removed");
        }
        for kept in [
            tags::PATIENT_NAME,
            tags::STUDY_INSTANCE_UID,
            tags::SOP_CLASS_UID,
            tags::INSTITUTION_NAME,
            tags::PIXEL_DATA,
            tags::MODALITY,
            Tag(0x6000, 0x0010),
        ] {
            assert!(!removed_by_profile(kept), "{kept} is not removed");
        }
    }

    #[test]
    fn identifying_values_are_gone_from_the_written_file() {
        let original = native("1.2.826.0.1.3680043.99.1.1.1", Some("1.2.826.0.1.3680043.99.1.1.2"));
        for secret in SECRETS {
            assert!(original.windows(secret.len()).any(|w| w == secret.as_bytes()), "the test puts {secret} in");
        }
        let out = deidentify_bytes(&original, &test_uid).unwrap();
        for secret in SECRETS.iter().chain(&["1.2.826.0.1.3680043.99", "HOSPITAL_CT1"]) {
            assert!(!out.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} survives");
        }
        let obj = parse(&out);
        // Z leaves the attribute empty, D puts a dummy, both keep the attribute.
        assert_eq!(text(&obj, tags::PATIENT_NAME), "");
        assert_eq!(text(&obj, tags::STUDY_DATE), "");
        assert_eq!(text(&obj, tags::PATIENT_ID), DUMMY_TEXT);
        assert_eq!(text(&obj, tags::SERIES_DATE), "19000101");
        assert_eq!(text(&obj, tags::MODALITY), "CT");
        assert_eq!(text(&items(&obj, tags::REFERENCED_SERIES_SEQUENCE)[0], tags::OPERATORS_NAME), DUMMY_TEXT);
    }

    #[test]
    fn no_removed_attribute_remains_at_any_depth() {
        fn walk(obj: &InMemDicomObject, seen: &mut usize) {
            for elem in obj {
                assert!(!removed_by_profile(elem.tag()), "{} remains", elem.tag());
                *seen += 1;
                for item in elem.items().unwrap_or_default() {
                    walk(item, seen);
                }
            }
        }
        let obj = parse(&deidentify_bytes(&native("1.2.3.1", Some("1.2.3.2")), &test_uid).unwrap());
        let mut seen = 0;
        walk(&obj, &mut seen);
        assert!(seen > 30, "the walk went through the nested items ({seen})");
        assert_eq!(text(&obj, Tag(0x6000, 0x0010)), "2", "the overlay's other attributes are kept");
    }

    #[test]
    fn uids_are_replaced_consistently_across_instances() {
        let (first, second) = ("1.2.826.0.1.3680043.99.1.1.1", "1.2.826.0.1.3680043.99.1.1.2");
        let a = parse(&deidentify_bytes(&native(first, None), &test_uid).unwrap());
        let b = parse(&deidentify_bytes(&native(second, Some(first)), &test_uid).unwrap());
        let new_first = text(&a, tags::SOP_INSTANCE_UID);
        assert_eq!(new_first, test_uid(first));
        assert_eq!(a.meta().media_storage_sop_instance_uid(), new_first);
        assert_eq!(b.meta().media_storage_sop_instance_uid(), test_uid(second));
        assert_eq!(text(&a, tags::STUDY_INSTANCE_UID), text(&b, tags::STUDY_INSTANCE_UID));
        assert_eq!(text(&a, tags::STUDY_INSTANCE_UID), test_uid(STUDY));
        assert_eq!(text(&a, tags::FRAME_OF_REFERENCE_UID), test_uid("1.2.826.0.1.3680043.99.1.9"));
        // References inside sequences, at two depths, point at the first instance's new UID.
        let image_ref = &items(&b, tags::REFERENCED_IMAGE_SEQUENCE)[0];
        assert_eq!(text(image_ref, tags::REFERENCED_SOP_INSTANCE_UID), new_first);
        let series_ref = &items(&b, tags::REFERENCED_SERIES_SEQUENCE)[0];
        assert_eq!(text(series_ref, tags::SERIES_INSTANCE_UID), text(&b, tags::SERIES_INSTANCE_UID));
        let instance_ref = &items(series_ref, tags::REFERENCED_INSTANCE_SEQUENCE)[0];
        assert_eq!(text(instance_ref, tags::REFERENCED_SOP_INSTANCE_UID), new_first);
        // Well-known UIDs stay.
        for obj in [&a, &b] {
            assert_eq!(text(obj, tags::SOP_CLASS_UID), CT);
            assert_eq!(obj.meta().media_storage_sop_class_uid(), CT);
            assert_eq!(obj.meta().transfer_syntax(), crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN);
        }
        assert_eq!(text(image_ref, tags::REFERENCED_SOP_CLASS_UID), CT);
    }

    #[test]
    fn pixel_data_is_written_back_byte_for_byte() {
        let fragments = PixelFragmentSequence::new(vec![0_u32], vec![vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9, 0]]);
        let jpeg = instance("1.2.3.1", None, JPEG_BASELINE, Value::PixelSequence(fragments));
        for original in [native("1.2.3.2", None), jpeg] {
            let out = deidentify_bytes(&original, &test_uid).unwrap();
            assert_eq!(pixel_data_bytes(&out), pixel_data_bytes(&original));
            let obj = parse(&out);
            assert_eq!(obj.meta().transfer_syntax(), parse(&original).meta().transfer_syntax());
        }
    }

    #[test]
    fn a_sequence_replaced_by_a_dummy_keeps_its_tree_not_its_words() {
        let obj = parse(&deidentify_bytes(&native("1.2.3.1", None), &test_uid).unwrap());
        let content = items(&obj, tags::CONTENT_SEQUENCE);
        assert_eq!(content.len(), 2);
        assert_eq!(text(&content[0], tags::VALUE_TYPE), "TEXT");
        assert_eq!(text(&content[0], tags::TEXT_VALUE), DUMMY_TEXT);
        assert_eq!(text(&items(&content[0], tags::CONCEPT_NAME_CODE_SEQUENCE)[0], tags::CODE_MEANING), DUMMY_TEXT);
        assert_eq!(text(&content[1], tags::PERSON_NAME), DUMMY_TEXT);
    }

    #[test]
    fn the_result_is_marked_as_deidentified() {
        let obj = parse(&deidentify_bytes(&native("1.2.3.1", None), &test_uid).unwrap());
        assert_eq!(text(&obj, tags::PATIENT_IDENTITY_REMOVED), "YES");
        assert_eq!(text(&obj, tags::DEIDENTIFICATION_METHOD), METHOD);
        assert_eq!(text(&obj, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED), "REMOVED");
        let code = &items(&obj, tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)[0];
        for (tag, _, value) in METHOD_CODE {
            assert_eq!(text(code, tag), value);
        }
        assert_eq!(obj.meta().source_application_entity_title(), None);

        // De-identifying again lists the method and its code once.
        let mut again = obj;
        deidentify(&mut again, &test_uid).unwrap();
        assert_eq!(again.get(tags::DEIDENTIFICATION_METHOD).unwrap().to_multi_str().unwrap().len(), 1);
        assert_eq!(items(&again, tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE).len(), 1);
    }

    #[test]
    fn an_instance_without_dates_is_not_marked_as_modified_in_time() {
        let mut obj = parse(&native("1.2.3.1", None));
        obj.retain(|e| !holds_dates(e));
        deidentify(&mut obj, &test_uid).unwrap();
        assert!(obj.get(tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).is_none());
    }
}
