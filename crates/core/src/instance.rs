//! An instance as the index describes it: identity, the attributes queries and patients need,
//! and where its frames lie in the stored bytes. Personal values are in clear here; the store
//! seals them before they reach the disk.

use serde::{Deserialize, Serialize};

/// What the index keeps of an instance. Personal values are returned here in clear; the store
/// seals them before they touch the disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub study: StudyAttrs,
    pub patient: PatientAttrs,
    pub series: SeriesAttrs,
    pub instance: InstanceAttrs,
    pub photometric: Option<String>,
    pub layout: Option<PixelLayout>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyAttrs {
    pub date: Option<String>,
    pub time: Option<String>,
    pub accession_number: Option<String>,
    pub description: Option<String>,
    pub study_id: Option<String>,
    pub institution_name: Option<String>,
    pub referring_physician_name: Option<String>,
}

/// Personal attributes: sealed at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientAttrs {
    pub id: Option<String>,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub other_ids: Vec<String>,
    pub telephone_numbers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesAttrs {
    pub modality: Option<String>,
    pub number: Option<i64>,
    pub description: Option<String>,
    pub body_part: Option<String>,
    pub date: Option<String>,
    pub time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceAttrs {
    pub number: Option<i64>,
    pub frames: u32,
    pub rows: Option<u16>,
    pub columns: Option<u16>,
    pub bits_allocated: Option<u16>,
    pub samples_per_pixel: Option<u16>,
}

/// Where the frames of an instance lie inside its stored bytes, so that one frame can be read
/// (and decrypted) without the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PixelLayout {
    /// No pixel data.
    None,
    /// Uncompressed frames of `frame_len` bytes each, one after another from `offset`.
    Native {
        offset: u64,
        frame_len: u64,
        frames: u32,
        /// 8-bit samples packed in big-endian 16-bit words (OW in Explicit VR Big Endian):
        /// each byte pair of the stored value is swapped.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        big_endian_words: bool,
    },
    /// Compressed frames: per frame, the (offset, length) of each fragment's bytes.
    Encapsulated { frames: Vec<Vec<(u64, u32)>> },
    /// Frames can only be found by decoding the whole object (deflate, 1-bit, odd layouts).
    Whole,
}

impl PixelLayout {
    pub fn frame_count(&self) -> Option<u32> {
        match self {
            PixelLayout::None => Some(0),
            PixelLayout::Native { frames, .. } => Some(*frames),
            PixelLayout::Encapsulated { frames } => Some(frames.len() as u32),
            PixelLayout::Whole => None,
        }
    }

    /// Byte ranges of frame `index` (0-based), if the layout knows them.
    pub fn frame_ranges(&self, index: u32) -> Option<Vec<(u64, u64)>> {
        match self {
            PixelLayout::Native { offset, frame_len, frames, .. } if index < *frames => {
                Some(vec![(offset + u64::from(index) * frame_len, *frame_len)])
            }
            PixelLayout::Encapsulated { frames } => {
                frames.get(index as usize).map(|f| f.iter().map(|&(o, l)| (o, u64::from(l))).collect())
            }
            _ => None,
        }
    }
}

/// A study as queries return it.
#[derive(Debug, Clone, Default)]
pub struct StudyRow {
    pub study_uid: String,
    pub attrs: StudyAttrs,
    pub patient: PatientAttrs,
    pub modalities: Vec<String>,
    pub num_series: i64,
    pub num_instances: i64,
}

#[derive(Debug, Clone, Default)]
pub struct SeriesRow {
    pub series_uid: String,
    pub attrs: SeriesAttrs,
    pub num_instances: i64,
}

#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub attrs: InstanceAttrs,
    pub transfer_syntax: String,
    pub size: u64,
    pub sha256: String,
    pub blob_id: String,
    pub layout: PixelLayout,
}

/// One QIDO / C-FIND result: the study, and the series and instance at deeper levels.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub study: StudyRow,
    pub series: Option<SeriesRow>,
    pub instance: Option<InstanceRow>,
}
