//! Where the frames of an instance lie inside its stored bytes, so that one frame can be read
//! (and decrypted) without the rest.

use serde::{Deserialize, Serialize};

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
            PixelLayout::Native {
                offset,
                frame_len,
                frames,
            } if index < *frames => Some(vec![(offset + u64::from(index) * frame_len, *frame_len)]),
            PixelLayout::Encapsulated { frames } => frames
                .get(index as usize)
                .map(|f| f.iter().map(|&(o, l)| (o, u64::from(l))).collect()),
            _ => None,
        }
    }
}
