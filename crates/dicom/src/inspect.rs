//! Inspecting an incoming Part-10 instance: its identity, the attributes the index needs and
//! where its frames lie. Reads from any seekable plaintext source (memory, or a decrypting
//! blob reader) and never loads pixel data.

use cloudfilm_core::Uid;
use cloudfilm_core::instance::{InstanceAttrs, InstanceInfo, PatientAttrs, PixelLayout, SeriesAttrs, StudyAttrs};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use dicom_object::meta::{FileMetaTable, FileMetaTableBuilder};
use dicom_object::{FileDicomObject, OpenFileOptions};
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::StatefulDecode;
use std::io::{Read, Seek, SeekFrom};

/// Why an instance cannot be stored, with the STOW-RS / C-STORE failure reason it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("not a DICOM Part-10 file: {0}")]
    NotDicom(String),
    #[error("the file meta information is unreadable: {0}")]
    BadMeta(String),
    #[error("unknown or unsupported transfer syntax {0}")]
    UnsupportedTransferSyntax(String),
    #[error("the data set does not parse: {0}")]
    Malformed(String),
    #[error("missing or invalid {0}")]
    MissingUid(&'static str),
    #[error("the pixel data is inconsistent with the image attributes: {0}")]
    BadPixelData(String),
}

impl InspectError {
    /// The DICOM failure reason (PS3.4 / PS3.18): 0xC122 for a transfer syntax we cannot read,
    /// 0xA900 for a data set that does not match its SOP class, 0xC000 otherwise.
    pub fn failure_reason(&self) -> u16 {
        match self {
            InspectError::UnsupportedTransferSyntax(_) => 0xC122,
            InspectError::MissingUid(_) | InspectError::BadPixelData(_) => 0xA900,
            _ => 0xC000,
        }
    }
}

/// A text attribute, trimmed, `None` when absent or empty.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = obj.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!value.is_empty()).then(|| value.to_owned())
}

fn multi_text(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    text(obj, tag)
        .map(|v| v.split('\\').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

fn uid(obj: &InMemDicomObject, tag: Tag, name: &'static str) -> Result<String, InspectError> {
    let raw = text(obj, tag).ok_or(InspectError::MissingUid(name))?;
    Uid::parse(&raw).map(|u| u.as_str().to_owned()).map_err(|_| InspectError::MissingUid(name))
}

/// Where the data set begins, after the optional 128-byte preamble and the file meta group.
fn read_meta<R: Read + Seek>(src: &mut R) -> Result<(FileMetaTable, u64), InspectError> {
    let mut head = [0u8; 132];
    src.seek(SeekFrom::Start(0)).map_err(|e| InspectError::NotDicom(e.to_string()))?;
    let n = read_up_to(src, &mut head).map_err(|e| InspectError::NotDicom(e.to_string()))?;
    let start = if n >= 132 && &head[128..132] == b"DICM" {
        128
    } else if n >= 4 && &head[..4] == b"DICM" {
        0
    } else {
        return Err(InspectError::NotDicom("no DICM prefix (a Part-10 file has file meta information)".into()));
    };
    check_meta_lengths(src, start + 4)?;
    src.seek(SeekFrom::Start(start)).map_err(|e| InspectError::NotDicom(e.to_string()))?;
    let meta = FileMetaTable::from_reader(&mut *src).map_err(|e| InspectError::BadMeta(e.to_string()))?;
    let dataset_start = src.stream_position().map_err(|e| InspectError::BadMeta(e.to_string()))?;
    Ok((meta, dataset_start))
}

/// File meta elements are small; a larger declared length is a forgery.
const MAX_META_ELEMENT: u64 = 64 * 1024;

/// Checks the declared lengths of the file meta group (always Explicit VR Little Endian)
/// before dicom-rs reads it, since its reader allocates what a length declares (S6). dicom-rs
/// reads as many bytes as the group length (0002,0000) declares, whatever groups they claim,
/// so every element up to there is checked, and one of another group there is a forgery.
fn check_meta_lengths<R: Read + Seek>(src: &mut R, from: u64) -> Result<(), InspectError> {
    let bad = |m: String| InspectError::BadMeta(m);
    let total = src.seek(SeekFrom::End(0)).map_err(|e| bad(e.to_string()))?;
    let mut at = from;
    let mut group_end = None;
    while at + 8 <= total && group_end.is_none_or(|end| at < end) {
        src.seek(SeekFrom::Start(at)).map_err(|e| bad(e.to_string()))?;
        let mut head = [0u8; 8];
        src.read_exact(&mut head).map_err(|e| bad(e.to_string()))?;
        if u16::from_le_bytes([head[0], head[1]]) != 0x0002 {
            if group_end.is_some() {
                return Err(bad("an element of another group lies inside the file meta group's length".into()));
            }
            return Ok(());
        }
        let (len, header) = match &head[4..6] {
            b"OB" | b"OW" | b"OF" | b"OD" | b"OL" | b"OV" | b"SQ" | b"UT" | b"UN" | b"UC" | b"UR" | b"SV" | b"UV" => {
                let mut long = [0u8; 4];
                src.read_exact(&mut long).map_err(|e| bad(e.to_string()))?;
                (u64::from(u32::from_le_bytes(long)), 12)
            }
            b"AE" | b"AS" | b"AT" | b"CS" | b"DA" | b"DS" | b"DT" | b"FL" | b"FD" | b"IS" | b"LO" | b"LT" | b"PN"
            | b"SH" | b"SL" | b"SS" | b"ST" | b"TM" | b"UI" | b"UL" | b"US" => {
                (u64::from(u16::from_le_bytes([head[6], head[7]])), 8)
            }
            _ => return Err(bad("a file meta element has an unknown value representation".into())),
        };
        if len > MAX_META_ELEMENT || at + header + len > total {
            return Err(bad(format!("a file meta element declares {len} bytes")));
        }
        // The group length (0002,0000) says how long the rest of the group is.
        if head[..4] == [0x02, 0x00, 0x00, 0x00] && len == 4 && group_end.is_none() {
            let mut value = [0u8; 4];
            src.read_exact(&mut value).map_err(|e| bad(e.to_string()))?;
            let group = u64::from(u32::from_le_bytes(value));
            if group > 16 * MAX_META_ELEMENT || at + header + len + group > total {
                return Err(bad(format!("the file meta group declares {group} bytes")));
            }
            group_end = Some(at + header + len + group);
        }
        at += header + len;
    }
    Ok(())
}

fn read_up_to<R: Read>(src: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Checks a bare data set (a command set, an identifier) before it is parsed: declared
/// lengths within the bytes, nesting bounded (S6).
pub fn check_dataset(bytes: &[u8], ts: &dicom_encoding::TransferSyntax) -> Result<(), InspectError> {
    // Every element is checked: the parser that follows reads them all, pixel data or not.
    walk_guarded(&mut std::io::Cursor::new(bytes), 0, ts, false).map(|_| ())
}

/// Where the data set begins in a Part-10 file (after preamble and file meta).
pub fn dataset_offset<R: Read + Seek>(src: &mut R) -> Result<u64, InspectError> {
    read_meta(src).map(|(_, start)| start)
}

/// Parses the file meta and the data set up to the pixel data.
pub fn read_header<R: Read + Seek>(src: &mut R) -> Result<FileDicomObject<InMemDicomObject>, InspectError> {
    src.seek(SeekFrom::Start(0)).map_err(|e| InspectError::NotDicom(e.to_string()))?;
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(&mut *src)
        .map_err(|e| InspectError::Malformed(e.to_string()))
}

/// Inspects a whole Part-10 instance.
pub fn inspect<R: Read + Seek>(src: &mut R) -> Result<InstanceInfo, InspectError> {
    inspect_with(src, true)
}

/// Inspects an instance; `fill_from_meta` lets the file meta supply SOP identifiers the data
/// set lacks (files from elsewhere), which a data set received by C-STORE may not rely on,
/// its file meta being the archive's own.
pub fn inspect_with<R: Read + Seek>(src: &mut R, fill_from_meta: bool) -> Result<InstanceInfo, InspectError> {
    inspect_bounded(src, fill_from_meta, DEFAULT_MAX_INFLATED)
}

/// Largest data set a deflated instance may inflate to, unless configured otherwise.
pub const DEFAULT_MAX_INFLATED: u64 = 1 << 30;

/// [`inspect_with`], a deflated data set refused once it inflates beyond `max_inflated` bytes.
pub fn inspect_bounded<R: Read + Seek>(
    src: &mut R,
    fill_from_meta: bool,
    max_inflated: u64,
) -> Result<InstanceInfo, InspectError> {
    let (meta, dataset_start) = read_meta(src)?;
    let ts_uid = meta.transfer_syntax().trim_end_matches('\0').trim().to_owned();
    let ts = crate::transfer::lookup(&ts_uid).ok_or_else(|| InspectError::UnsupportedTransferSyntax(ts_uid.clone()))?;
    // Lengths and depth are checked before anything is read into memory; a deflated data set
    // is checked as it inflates (into a temporary file, never whole in memory).
    let (position, mut obj) = if crate::transfer::is_dataset_codec(ts) {
        (None, inflated_header(src, &meta, dataset_start, max_inflated)?)
    } else {
        (Some(walk(src, dataset_start, ts)?), read_header(src)?.into_inner())
    };
    // The data set is authoritative; the file meta fills SOP identifiers it lacks.
    for (tag, from_meta) in [
        (tags::SOP_CLASS_UID, meta.media_storage_sop_class_uid()),
        (tags::SOP_INSTANCE_UID, meta.media_storage_sop_instance_uid()),
    ] {
        if fill_from_meta && text(&obj, tag).is_none() && !from_meta.trim_end_matches('\0').is_empty() {
            obj.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(from_meta.trim_end_matches('\0'))));
        }
    }
    let mut info = describe(&obj)?;
    info.transfer_syntax = ts_uid;
    info.layout = Some(match position {
        Some(position) => layout_of(src, position, &info)?,
        // A compressed data set has no byte offsets; all of it was walked as it inflated.
        None => PixelLayout::Whole,
    });
    Ok(info)
}

/// Elements after the pixel data play no part in rendering and are not parsed (a forged one
/// there must not make the parser allocate what it declares).
const AFTER_PIXELS: Tag = Tag(0x7FE0, 0x0011);

/// Parses a whole stored instance, up to and with its pixel data. A deflated one is inflated here, within `max_inflated`
/// bytes and exactly as at ingest, and comes back as explicit VR little endian: no other
/// inflater sees the stored bytes.
pub fn read_whole(bytes: &[u8], max_inflated: u64) -> Result<FileDicomObject<InMemDicomObject>, InspectError> {
    let malformed = |e: &dyn std::fmt::Display| InspectError::Malformed(e.to_string());
    let mut src = std::io::Cursor::new(bytes);
    let (meta, dataset_start) = read_meta(&mut src)?;
    let ts = meta.transfer_syntax().trim_end_matches('\0').trim().to_owned();
    let start = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" { 128 } else { 0 };
    if crate::transfer::lookup(&ts).is_none_or(|ts| !crate::transfer::is_dataset_codec(ts)) {
        return OpenFileOptions::new().read_until(AFTER_PIXELS).from_reader(&bytes[start..]).map_err(|e| malformed(&e));
    }
    let mut inflated = Vec::new();
    let decoder = flate2::read::DeflateDecoder::new(&bytes[dataset_start as usize..]);
    decoder.take(max_inflated + 1).read_to_end(&mut inflated).map_err(|e| malformed(&e))?;
    if inflated.len() as u64 > max_inflated {
        return Err(InspectError::Malformed(format!("the deflated data set inflates beyond {max_inflated} bytes")));
    }
    let reader = std::io::Cursor::new(explicit_meta(&meta)?).chain(std::io::Cursor::new(inflated));
    OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .read_until(AFTER_PIXELS)
        .from_reader(reader)
        .map_err(|e| malformed(&e))
}

/// "DICM" and a file meta group like `meta`'s, saying explicit VR little endian.
fn explicit_meta(meta: &FileMetaTable) -> Result<Vec<u8>, InspectError> {
    let mut bytes = b"DICM".to_vec();
    FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(meta.media_storage_sop_class_uid().trim_end_matches('\0'))
        .media_storage_sop_instance_uid(meta.media_storage_sop_instance_uid().trim_end_matches('\0'))
        .transfer_syntax(crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN)
        .build()
        .and_then(|m| m.write(&mut bytes))
        .map_err(|e| InspectError::Malformed(e.to_string()))?;
    Ok(bytes)
}

/// Inflates a deflated data set into a temporary file, refusing it beyond `max_inflated`
/// bytes, walks it like any other (lengths, nesting) and parses its header from there.
fn inflated_header<R: Read + Seek>(
    src: &mut R,
    meta: &FileMetaTable,
    dataset_start: u64,
    max_inflated: u64,
) -> Result<InMemDicomObject, InspectError> {
    let malformed = |e: &dyn std::fmt::Display| InspectError::Malformed(e.to_string());
    src.seek(SeekFrom::Start(dataset_start)).map_err(|e| malformed(&e))?;
    let mut inflated = tempfile::tempfile().map_err(|e| malformed(&e))?;
    let mut decoder = flate2::read::DeflateDecoder::new(&mut *src).take(max_inflated + 1);
    let size = std::io::copy(&mut decoder, &mut inflated)
        .map_err(|e| InspectError::Malformed(format!("the deflated data set does not inflate: {e}")))?;
    if size > max_inflated {
        return Err(InspectError::Malformed(format!(
            "the deflated data set inflates beyond the limit of {max_inflated} bytes"
        )));
    }
    let explicit = crate::transfer::lookup(crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN).expect("explicit VR LE");
    // (The walk goes past the pixel data too: the whole data set is parsed when read.)
    walk(&mut inflated, 0, explicit)?;
    // The header is parsed as any other, up to the pixel data, from a file meta that now
    // says explicit VR little endian followed by the inflated data set.
    let meta_bytes = explicit_meta(meta)?;
    inflated.seek(SeekFrom::Start(0)).map_err(|e| malformed(&e))?;
    let reader = std::io::Cursor::new(meta_bytes).chain(std::io::BufReader::new(inflated));
    OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(reader)
        .map(FileDicomObject::into_inner)
        .map_err(|e| malformed(&e))
}

/// The indexed attributes of a parsed data set.
pub fn describe(obj: &InMemDicomObject) -> Result<InstanceInfo, InspectError> {
    // (0010,1000) Other Patient IDs is retired but still what many hospitals send.
    let mut other_ids = multi_text(obj, Tag(0x0010, 0x1000));
    if let Some(seq) = obj.get(tags::OTHER_PATIENT_I_DS_SEQUENCE).and_then(|e| e.items()) {
        other_ids.extend(seq.iter().filter_map(|item| text(item, tags::PATIENT_ID)));
    }
    other_ids.dedup();
    Ok(InstanceInfo {
        transfer_syntax: String::new(),
        sop_class_uid: uid(obj, tags::SOP_CLASS_UID, "SOP Class UID")?,
        sop_instance_uid: uid(obj, tags::SOP_INSTANCE_UID, "SOP Instance UID")?,
        study_uid: uid(obj, tags::STUDY_INSTANCE_UID, "Study Instance UID")?,
        series_uid: uid(obj, tags::SERIES_INSTANCE_UID, "Series Instance UID")?,
        study: StudyAttrs {
            date: text(obj, tags::STUDY_DATE),
            time: text(obj, tags::STUDY_TIME),
            accession_number: text(obj, tags::ACCESSION_NUMBER),
            description: text(obj, tags::STUDY_DESCRIPTION),
            study_id: text(obj, tags::STUDY_ID),
            institution_name: text(obj, tags::INSTITUTION_NAME),
            referring_physician_name: text(obj, tags::REFERRING_PHYSICIAN_NAME),
        },
        patient: PatientAttrs {
            id: text(obj, tags::PATIENT_ID),
            name: text(obj, tags::PATIENT_NAME),
            birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
            sex: text(obj, tags::PATIENT_SEX),
            other_ids,
            telephone_numbers: multi_text(obj, tags::PATIENT_TELEPHONE_NUMBERS),
        },
        series: SeriesAttrs {
            modality: text(obj, tags::MODALITY),
            number: int(obj, tags::SERIES_NUMBER),
            description: text(obj, tags::SERIES_DESCRIPTION),
            body_part: text(obj, tags::BODY_PART_EXAMINED),
            date: text(obj, tags::SERIES_DATE),
            time: text(obj, tags::SERIES_TIME),
        },
        instance: InstanceAttrs {
            number: int(obj, tags::INSTANCE_NUMBER),
            frames: int(obj, tags::NUMBER_OF_FRAMES).map(|n| n.clamp(0, u32::MAX as i64) as u32).unwrap_or(1),
            rows: int(obj, tags::ROWS).map(|v| v as u16),
            columns: int(obj, tags::COLUMNS).map(|v| v as u16),
            bits_allocated: int(obj, tags::BITS_ALLOCATED).map(|v| v as u16),
            samples_per_pixel: int(obj, tags::SAMPLES_PER_PIXEL).map(|v| v as u16),
        },
        photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION),
        layout: None,
    })
}

/// Where the pixel data lies, as the walk found it.
enum PixelPosition {
    None,
    Native { offset: u64, len: u64, vr: VR },
    Encapsulated { fragments: Vec<(u64, u32)>, offset_table: Vec<u8> },
}

/// Nesting of sequences allowed at most (S6).
const MAX_DEPTH: usize = 64;

/// Walks the root data set's element headers without reading their values: every declared
/// length is checked against the bytes that remain, and the nesting depth bounded (S6), before
/// anything is parsed into memory; the pixel data is located on the way.
fn walk<R: Read + Seek>(
    src: &mut R,
    dataset_start: u64,
    ts: &dicom_encoding::TransferSyntax,
) -> Result<PixelPosition, InspectError> {
    walk_guarded(src, dataset_start, ts, true)
}

/// [`walk_until`], a panic of the lazy reader on a hostile data set (found by fuzzing: an item
/// after the pixel sequence has ended) taken as the malformed data set it is.
fn walk_guarded<R: Read + Seek>(
    src: &mut R,
    dataset_start: u64,
    ts: &dicom_encoding::TransferSyntax,
    stop_past_pixels: bool,
) -> Result<PixelPosition, InspectError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| walk_until(src, dataset_start, ts, stop_past_pixels)))
        .unwrap_or_else(|_| Err(InspectError::Malformed("the data set's structure could not be followed".into())))
}

/// [`walk`]: every element the parser will read is checked, the pixel data's neighbours
/// included (a forged element may follow it out of order). With `stop_past_pixels`, the walk
/// ends at the first top-level tag past the pixel data, where stored instances are parsed no
/// further; without, it goes to the end (a bare data set is parsed whole).
fn walk_until<R: Read + Seek>(
    src: &mut R,
    dataset_start: u64,
    ts: &dicom_encoding::TransferSyntax,
    stop_past_pixels: bool,
) -> Result<PixelPosition, InspectError> {
    let malformed = |e: &dyn std::fmt::Display| InspectError::Malformed(e.to_string());
    let total = src.seek(SeekFrom::End(0)).map_err(|e| malformed(&e))?;
    src.seek(SeekFrom::Start(dataset_start)).map_err(|e| malformed(&e))?;
    let too_long = |what: String, len: u64, at: u64| {
        InspectError::Malformed(format!(
            "{what} declares {len} bytes but only {} remain (a truncated or forged file)",
            total.saturating_sub(at)
        ))
    };
    let mut reader = LazyDataSetReader::new_with_ts(&mut *src, ts).map_err(|e| malformed(&e))?;
    let mut depth = 0usize;
    let mut in_pixels = false;
    // Items of the pixel sequence seen so far: the first is the Basic Offset Table.
    let mut pixel_items = 0usize;
    let mut fragments: Vec<(u64, u32)> = Vec::new();
    let mut offset_table: Vec<u8> = Vec::new();
    let mut found: Option<PixelPosition> = None;
    while let Some(token) = reader.advance() {
        match token.map_err(|e| malformed(&e))? {
            LazyDataToken::ItemStart { .. } if in_pixels && depth == 1 => {
                pixel_items += 1;
                depth += 1;
            }
            token @ (LazyDataToken::SequenceStart { .. }
            | LazyDataToken::ItemStart { .. }
            | LazyDataToken::PixelSequenceStart) => {
                if depth == 0 && matches!(token, LazyDataToken::PixelSequenceStart) {
                    in_pixels = true;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(InspectError::Malformed(format!("sequences are nested deeper than {MAX_DEPTH}")));
                }
            }
            LazyDataToken::SequenceEnd if in_pixels && depth == 1 => {
                let (fragments, offset_table) = (std::mem::take(&mut fragments), std::mem::take(&mut offset_table));
                found.get_or_insert(PixelPosition::Encapsulated { fragments, offset_table });
                (in_pixels, depth) = (false, 0);
            }
            LazyDataToken::SequenceEnd | LazyDataToken::ItemEnd => depth = depth.saturating_sub(1),
            LazyDataToken::LazyItemValue { len, decoder } => {
                let at = decoder.position();
                if at + u64::from(len) > total {
                    return Err(too_long("an item".into(), u64::from(len), at));
                }
                if in_pixels && pixel_items == 1 {
                    decoder.read_to_vec(len, &mut offset_table).map_err(|e| malformed(&e))?;
                } else {
                    if in_pixels {
                        fragments.push((at, len));
                    }
                    decoder.skip_bytes(len).map_err(|e| malformed(&e))?;
                }
            }
            LazyDataToken::LazyValue { header, decoder } => {
                let at = decoder.position();
                let Some(len) = header.len.get() else {
                    return Err(InspectError::BadPixelData(format!("undefined length value of {}", header.tag)));
                };
                if at + u64::from(len) > total {
                    return Err(too_long(format!("element {}", header.tag), u64::from(len), at));
                }
                // A binary value whose length is not a whole number of values is read by the
                // parser one way and skipped here another: everything after it would be
                // checked out of step with how it is parsed.
                if let Some(width) = value_width(header.vr)
                    && len % width != 0
                {
                    return Err(InspectError::Malformed(format!(
                        "element {} ({}) has {len} bytes, not a multiple of {width}",
                        header.tag, header.vr
                    )));
                }
                if depth == 0 && header.tag == tags::PIXEL_DATA {
                    found.get_or_insert(PixelPosition::Native { offset: at, len: u64::from(len), vr: header.vr });
                }
                decoder.skip_bytes(len).map_err(|e| malformed(&e))?;
            }
            LazyDataToken::ElementHeader(header) if depth == 0 && header.tag > tags::PIXEL_DATA && stop_past_pixels => {
                break;
            }
            _ => {}
        }
    }
    Ok(match found {
        Some(position) => position,
        // A pixel sequence the file ends inside.
        None if in_pixels => PixelPosition::Encapsulated { fragments, offset_table },
        None => PixelPosition::None,
    })
}

/// The size of one value of a binary VR (its values' lengths must be multiples of it).
fn value_width(vr: VR) -> Option<u32> {
    match vr {
        VR::SS | VR::US | VR::OW => Some(2),
        VR::AT | VR::FL | VR::SL | VR::UL | VR::OF | VR::OL => Some(4),
        VR::FD | VR::SV | VR::UV | VR::OD | VR::OV => Some(8),
        _ => None,
    }
}

/// The frame layout, once the image attributes are known.
fn layout_of<R: Read + Seek>(
    src: &mut R,
    position: PixelPosition,
    info: &InstanceInfo,
) -> Result<PixelLayout, InspectError> {
    match position {
        PixelPosition::None => Ok(PixelLayout::None),
        PixelPosition::Native { offset, len, vr } => {
            let mut layout = native_layout(offset, len, info)?;
            if let PixelLayout::Native { big_endian_words, .. } = &mut layout {
                *big_endian_words = info.transfer_syntax == "1.2.840.10008.1.2.2"
                    && vr == VR::OW
                    && info.instance.bits_allocated == Some(8);
            }
            Ok(layout)
        }
        PixelPosition::Encapsulated { fragments, offset_table } => {
            encapsulated_layout(src, fragments, offset_table, info)
        }
    }
}

fn native_layout(offset: u64, len: u64, info: &InstanceInfo) -> Result<PixelLayout, InspectError> {
    let a = &info.instance;
    let (Some(rows), Some(cols), Some(bits)) = (a.rows, a.columns, a.bits_allocated) else {
        return Err(InspectError::BadPixelData("Rows, Columns or Bits Allocated is missing".into()));
    };
    let mut samples = u64::from(a.samples_per_pixel.unwrap_or(1));
    if info.photometric.as_deref() == Some("YBR_FULL_422") {
        // Two luminance samples share one pair of chrominance samples (PS3.3 C.7.6.3.1.2).
        samples = 2;
    }
    let frames = a.frames.max(1);
    let frame_bits = u64::from(rows) * u64::from(cols) * samples * u64::from(bits);
    if frame_bits == 0 {
        return Err(InspectError::BadPixelData("an image of zero size".into()));
    }
    if frame_bits % 8 != 0 {
        return Ok(PixelLayout::Whole);
    }
    let frame_len = frame_bits / 8;
    if frame_len.checked_mul(u64::from(frames)).is_none_or(|need| need > len) {
        // Stored as received; frames are then found, if at all, by decoding the whole object.
        return Ok(PixelLayout::Whole);
    }
    Ok(PixelLayout::Native { offset, frame_len, frames, big_endian_words: false })
}

/// Groups fragments into frames: one frame takes all; a Basic Offset Table decides; as many
/// fragments as frames map one to one; otherwise frame starts are found by codec markers.
fn encapsulated_layout<R: Read + Seek>(
    src: &mut R,
    fragments: Vec<(u64, u32)>,
    offset_table: Vec<u8>,
    info: &InstanceInfo,
) -> Result<PixelLayout, InspectError> {
    let frames = info.instance.frames.max(1) as usize;
    if fragments.is_empty() {
        return Err(InspectError::BadPixelData("encapsulated pixel data without fragments".into()));
    }
    if frames == 1 {
        return Ok(PixelLayout::Encapsulated { frames: vec![fragments] });
    }
    let offsets: Vec<u64> =
        offset_table.chunks_exact(4).map(|c| u64::from(u32::from_le_bytes(c.try_into().expect("4 bytes")))).collect();
    let starts: Vec<usize> = if offsets.len() == frames {
        // Offsets count from the first fragment's item tag; each item has an 8-byte header.
        let first = fragments[0].0 - 8;
        let mut starts = Vec::with_capacity(frames);
        for off in &offsets {
            match fragments.iter().position(|(pos, _)| pos - 8 - first == *off) {
                Some(i) => starts.push(i),
                None => return Ok(PixelLayout::Whole),
            }
        }
        starts
    } else if fragments.len() == frames {
        (0..frames).collect()
    } else {
        let mut starts = Vec::new();
        for (i, (pos, len)) in fragments.iter().enumerate() {
            let mut magic = [0u8; 2];
            if *len >= 2 {
                src.seek(SeekFrom::Start(*pos)).map_err(|e| InspectError::Malformed(e.to_string()))?;
                src.read_exact(&mut magic).map_err(|e| InspectError::Malformed(e.to_string()))?;
            }
            // JPEG SOI, JPEG 2000 codestream SOC, JP2 signature box length.
            if matches!(magic, [0xFF, 0xD8] | [0xFF, 0x4F] | [0x00, 0x00]) {
                starts.push(i);
            }
        }
        if starts.len() != frames || starts.first() != Some(&0) {
            return Ok(PixelLayout::Whole);
        }
        starts
    };
    if starts.windows(2).any(|w| w[0] >= w[1]) {
        return Ok(PixelLayout::Whole);
    }
    let mut grouped = Vec::with_capacity(frames);
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(fragments.len());
        grouped.push(fragments[start..end].to_vec());
    }
    Ok(PixelLayout::Encapsulated { frames: grouped })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_element_of_another_group_inside_the_meta_group_length_is_refused_before_parsing() {
        // Found by fuzzing (part10): dicom-rs read the whole declared group, a forged element
        // of group 4C02 inside it, and allocated gigabytes for what followed.
        let bytes = include_bytes!("../../../fuzz/regressions/part10/meta-element-of-unknown-vr-with-huge-length");
        let error = inspect_bounded(&mut std::io::Cursor::new(&bytes[..]), true, 1 << 20).unwrap_err();
        assert!(matches!(error, InspectError::BadMeta(_)), "{error}");
        assert!(read_whole(bytes, 1 << 20).is_err());
    }

    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use std::io::Cursor;

    /// A small instance with `extra` elements, as Part-10 bytes.
    fn instance(extra: Vec<DataElement<InMemDicomObject>>) -> Vec<u8> {
        let mut obj = InMemDicomObject::new_empty();
        for (tag, value) in [
            (tags::SOP_CLASS_UID, "1.2.840.10008.5.1.4.1.1.7"),
            (tags::SOP_INSTANCE_UID, "1.2.3.4"),
            (tags::STUDY_INSTANCE_UID, "1.2.3"),
            (tags::SERIES_INSTANCE_UID, "1.2.3.1"),
        ] {
            obj.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(value)));
        }
        for e in extra {
            obj.put(e);
        }
        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
                    .media_storage_sop_instance_uid("1.2.3.4")
                    .transfer_syntax(crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN),
            )
            .unwrap();
        let mut out = Vec::new();
        file.write_all(&mut out).unwrap();
        out
    }

    #[test]
    fn a_plain_instance_inspects() {
        let info = inspect(&mut Cursor::new(instance(vec![]))).unwrap();
        assert_eq!(info.sop_instance_uid, "1.2.3.4");
        assert_eq!(info.layout, Some(PixelLayout::None));
    }

    #[test]
    fn a_declared_length_beyond_the_end_is_refused_before_reading() {
        let blob = DataElement::new(Tag(0x0009, 0x1010), VR::OB, PrimitiveValue::U8(vec![7u8; 100_000].into()));
        let creator = DataElement::new(Tag(0x0009, 0x0010), VR::LO, PrimitiveValue::from("TEST"));
        let bytes = instance(vec![creator, blob]);
        let cut = &bytes[..bytes.len() - 50_000];
        let err = inspect(&mut Cursor::new(cut)).unwrap_err();
        assert!(matches!(&err, InspectError::Malformed(m) if m.contains("declares 100000 bytes")), "{err}");
    }

    /// Found by the `part10` and `render` fuzz targets: after the pixel data, an element with
    /// a lower tag (out of order) declaring 3 GB. Inspection stopped at the pixel data; reading
    /// the stored instance parsed on and reserved it.
    #[test]
    fn an_element_out_of_order_after_the_pixel_data_is_checked_too() {
        let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
        let mut bytes = instance(vec![
            us(tags::ROWS, 8),
            us(tags::COLUMNS, 8),
            us(tags::BITS_ALLOCATED, 16),
            us(tags::BITS_STORED, 16),
            us(tags::HIGH_BIT, 15),
            us(tags::SAMPLES_PER_PIXEL, 1),
            us(tags::PIXEL_REPRESENTATION, 0),
            DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, PrimitiveValue::from("MONOCHROME2")),
            DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(vec![7u16; 64].into())),
        ]);
        assert!(inspect(&mut Cursor::new(&bytes)).is_ok());
        // (0D88,D800) UN, 0xC0000000 bytes declared, 4 present.
        bytes.extend_from_slice(&[0x88, 0x0D, 0x00, 0xD8, b'U', b'N', 0, 0, 0, 0, 0, 0xC0, 1, 2, 3, 4]);
        let err = inspect(&mut Cursor::new(&bytes)).unwrap_err();
        assert!(matches!(&err, InspectError::Malformed(m) if m.contains("declares 3221225472 bytes")), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut inner = InMemDicomObject::new_empty();
        inner.put(DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("x")));
        for _ in 0..70 {
            let mut outer = InMemDicomObject::new_empty();
            outer.put(DataElement::new(tags::REFERENCED_SERIES_SEQUENCE, VR::SQ, DataSetSequence::from(vec![inner])));
            inner = outer;
        }
        let seq = inner.take(tags::REFERENCED_SERIES_SEQUENCE).unwrap();
        let err = inspect(&mut Cursor::new(instance(vec![seq]))).unwrap_err();
        assert!(matches!(&err, InspectError::Malformed(m) if m.contains("nested deeper")), "{err}");
    }

    /// Part-10 bytes of a deflated data set: file meta, then `dataset` (explicit VR LE) deflated.
    fn deflated(dataset: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
            .media_storage_sop_instance_uid("1.2.3.4")
            .transfer_syntax("1.2.840.10008.1.2.1.99")
            .build()
            .unwrap();
        let mut out = Vec::new();
        meta.write(&mut out).unwrap();
        if !out.starts_with(b"DICM") {
            out.splice(0..0, *b"DICM");
        }
        let mut encoder = flate2::write::DeflateEncoder::new(out, flate2::Compression::best());
        encoder.write_all(dataset).unwrap();
        encoder.finish().unwrap()
    }

    fn dataset_of(part10: &[u8]) -> &[u8] {
        &part10[dataset_offset(&mut Cursor::new(part10)).unwrap() as usize..]
    }

    #[test]
    fn a_forged_file_meta_group_length_is_refused() {
        let mut bytes = instance(vec![]);
        let at = bytes.windows(4).position(|w| w == [0x02, 0x00, 0x00, 0x00]).unwrap();
        bytes[at + 8..at + 12].copy_from_slice(&0xF000_0000u32.to_le_bytes());
        let err = inspect(&mut Cursor::new(&bytes[..279.min(bytes.len())])).unwrap_err();
        assert!(matches!(&err, InspectError::BadMeta(m) if m.contains("group declares")), "{err}");
    }

    #[test]
    fn a_deflated_instance_inspects() {
        let bytes = deflated(dataset_of(&instance(vec![])));
        let info = inspect(&mut Cursor::new(bytes)).unwrap();
        assert_eq!((info.sop_instance_uid.as_str(), info.layout), ("1.2.3.4", Some(PixelLayout::Whole)));
    }

    #[test]
    fn deep_nesting_inside_a_deflated_data_set_is_refused() {
        // 100 000 nested sequences of undefined length: 2 MB that deflate to a few kilobytes.
        let mut dataset = dataset_of(&instance(vec![])).to_vec();
        for _ in 0..100_000 {
            dataset.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            dataset.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let err = inspect(&mut Cursor::new(deflated(&dataset))).unwrap_err();
        assert!(matches!(&err, InspectError::Malformed(m) if m.contains("nested deeper")), "{err}");
    }

    #[test]
    fn a_deflate_bomb_is_refused_while_inflating() {
        let blob = DataElement::new(Tag(0x0009, 0x1010), VR::OB, PrimitiveValue::U8(vec![0u8; 64 << 20].into()));
        let creator = DataElement::new(Tag(0x0009, 0x0010), VR::LO, PrimitiveValue::from("TEST"));
        let bytes = deflated(dataset_of(&instance(vec![creator, blob])));
        assert!(bytes.len() < 200_000, "{} bytes inflate to 64 MiB", bytes.len());
        let err = inspect_bounded(&mut Cursor::new(&bytes), true, 16 << 20).unwrap_err();
        assert!(matches!(&err, InspectError::Malformed(m) if m.contains("inflates beyond")), "{err}");
        assert!(inspect_bounded(&mut Cursor::new(&bytes), true, 128 << 20).is_ok(), "within the limit it is stored");
    }

    #[test]
    fn garbage_never_panics() {
        let good = instance(vec![]);
        let mut state = 0x1234_5678_u64;
        for _ in 0..2000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mut bytes = good.clone();
            let pos = (state >> 33) as usize % bytes.len();
            bytes[pos] = (state >> 8) as u8;
            if state.is_multiple_of(3) {
                bytes.truncate(pos.max(1));
            }
            let _ = inspect(&mut Cursor::new(bytes));
        }
    }

    #[test]
    fn a_forged_file_meta_length_is_refused_before_reading() {
        let mut bytes = instance(vec![]);
        // The Media Storage SOP Instance UID (UI, 2-byte length) is the third meta element.
        let at = bytes.windows(4).position(|w| w == [0x02, 0x00, 0x03, 0x00]).unwrap();
        bytes[at + 4..at + 6].copy_from_slice(b"OB");
        bytes.splice(at + 6..at + 8, [0, 0, 0xF0, 0xFF, 0xFF, 0xFF]);
        let err = inspect(&mut Cursor::new(bytes)).unwrap_err();
        assert!(matches!(&err, InspectError::BadMeta(m) if m.contains("declares")), "{err}");
    }
}
