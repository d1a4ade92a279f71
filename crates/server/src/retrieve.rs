//! Reading stored instances back: headers, single frames and whole instances, decrypting only
//! what is needed. Every read is authenticated (AEAD per segment, content hash for whole
//! instances); an integrity failure is a clean error (S3).

use crate::archive::Archive;
use cloudfilm_core::instance::{InstanceRow, PixelLayout};
use cloudfilm_dicom::render::{FrameSource, Header};
use cloudfilm_store::StoreError;
use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error("frame {0} does not exist")]
    NoSuchFrame(u32),
    #[error("the instance has no pixel data")]
    NoPixels,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored instance does not parse: {0}")]
    Parse(String),
}

/// Remembers whether an authentication failure happened underneath a parser, which reports
/// every read failure its own way.
struct Tracking<R> {
    inner: R,
    integrity_failed: bool,
}

impl<R: Read> Read for Tracking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                self.integrity_failed = true;
            }
        })
    }
}

impl<R: std::io::Seek> std::io::Seek for Tracking<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The data set up to the pixel data, with its file meta.
pub fn header(archive: &Archive, row: &InstanceRow) -> Result<Header, RetrieveError> {
    let mut reader = Tracking { inner: archive.blobs.open_blob(&row.blob_id)?, integrity_failed: false };
    cloudfilm_dicom::inspect::read_header(&mut reader).map_err(|e| {
        if reader.integrity_failed {
            RetrieveError::Store(StoreError::Integrity)
        } else {
            RetrieveError::Parse(e.to_string())
        }
    })
}

/// The whole stored instance, checked against its hash.
pub fn whole(archive: &Archive, row: &InstanceRow) -> Result<Vec<u8>, RetrieveError> {
    Ok(archive.blobs.read_verified(&row.blob_id, &row.sha256)?)
}

/// Frame `number` (1-based) as the layout finds it: its stored bytes and the header to decode
/// them with.
pub fn frame(archive: &Archive, row: &InstanceRow, number: u32) -> Result<(Header, FrameSource), RetrieveError> {
    if number == 0 {
        return Err(RetrieveError::NoSuchFrame(0));
    }
    let index = number - 1;
    match &row.layout {
        PixelLayout::None => Err(RetrieveError::NoPixels),
        PixelLayout::Whole => {
            if index >= row.attrs.frames.max(1) {
                return Err(RetrieveError::NoSuchFrame(number));
            }
            let bytes = whole(archive, row)?;
            let obj = cloudfilm_dicom::inspect::read_whole(&bytes, archive.config.limits.max_inflated_bytes)
                .map_err(|e| RetrieveError::Parse(e.to_string()))?;
            Ok((obj.clone(), FrameSource::Whole(Box::new(obj), index)))
        }
        PixelLayout::Native { offset, frame_len, big_endian_words: true, .. } => {
            // Read whole 16-bit words around the frame, swap each pair, keep the frame's bytes.
            if index >= row.attrs.frames.max(1) {
                return Err(RetrieveError::NoSuchFrame(number));
            }
            let start = offset + u64::from(index) * frame_len;
            let (aligned, end) = (offset + (start - offset) / 2 * 2, start + frame_len);
            let mut reader = archive.blobs.open_blob(&row.blob_id)?;
            let aligned_end = (offset + (end - offset).div_ceil(2) * 2).min(reader.plaintext_len());
            let mut words = reader.read_range(aligned, (aligned_end - aligned) as usize).map_err(StoreError::from)?;
            for pair in words.chunks_exact_mut(2) {
                pair.swap(0, 1);
            }
            let skip = (start - aligned) as usize;
            let bytes = words[skip..skip + *frame_len as usize].to_vec();
            Ok((header(archive, row)?, FrameSource::Native(bytes)))
        }
        layout => {
            let ranges = layout.frame_ranges(index).ok_or(RetrieveError::NoSuchFrame(number))?;
            let header = header(archive, row)?;
            let mut reader = archive.blobs.open_blob(&row.blob_id)?;
            let mut parts = Vec::with_capacity(ranges.len());
            for (offset, len) in ranges {
                parts.push(reader.read_range(offset, len as usize).map_err(StoreError::from)?);
            }
            let source = match layout {
                PixelLayout::Native { .. } => FrameSource::Native(parts.concat()),
                _ => FrameSource::Fragments(parts),
            };
            Ok((header, source))
        }
    }
}

/// The bytes of a frame as stored: native samples, or the concatenated fragments of a
/// compressed frame.
pub fn stored_frame_bytes(source: &FrameSource) -> Option<Vec<u8>> {
    match source {
        FrameSource::Native(bytes) => Some(bytes.clone()),
        FrameSource::Fragments(parts) => Some(parts.concat()),
        FrameSource::Whole(..) => None,
    }
}

/// Streams a stored instance in chunks, checking its hash at the end.
pub struct InstanceChunks {
    reader: cloudfilm_crypto::BlobReader<Box<dyn cloudfilm_store::blobs::ReadSeek>>,
    hasher: sha2::Sha256,
    expected: String,
    done: bool,
}

impl InstanceChunks {
    pub fn open(archive: &Archive, row: &InstanceRow) -> Result<InstanceChunks, RetrieveError> {
        use sha2::Digest;
        Ok(InstanceChunks {
            reader: archive.blobs.open_blob(&row.blob_id)?,
            hasher: sha2::Sha256::new(),
            expected: row.sha256.clone(),
            done: false,
        })
    }

    /// The next chunk, `None` at the end; an altered blob is an error, never wrong bytes.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        use sha2::Digest;
        if self.done {
            return Ok(None);
        }
        let mut buf = vec![0u8; cloudfilm_crypto::SEGMENT_SIZE * 4];
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.reader.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        let at_end = filled < buf.len();
        buf.truncate(filled);
        self.hasher.update(&buf);
        if at_end {
            self.done = true;
            let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
            if actual != self.expected {
                return Err(StoreError::Integrity);
            }
        }
        Ok(if buf.is_empty() { None } else { Some(buf) })
    }
}

/// The data set of a stored instance (what follows its file meta), in chunks from a blocking
/// reader, its content hash checked at the end; an error ends the stream.
pub fn dataset_chunks(
    archive: std::sync::Arc<Archive>,
    row: InstanceRow,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, StoreError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let offset = match archive.blobs.open_blob(&row.blob_id) {
            Ok(mut reader) => match cloudfilm_dicom::inspect::dataset_offset(&mut reader) {
                Ok(offset) => offset as usize,
                Err(_) => {
                    let _ = tx.blocking_send(Err(StoreError::Integrity));
                    return;
                }
            },
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut chunks = match InstanceChunks::open(&archive, &row) {
            Ok(chunks) => chunks,
            Err(RetrieveError::Store(e)) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            Err(_) => {
                let _ = tx.blocking_send(Err(StoreError::Integrity));
                return;
            }
        };
        let mut skip = offset;
        loop {
            match chunks.next_chunk() {
                Ok(Some(mut chunk)) => {
                    if skip > 0 {
                        let n = skip.min(chunk.len());
                        chunk.drain(..n);
                        skip -= n;
                    }
                    if !chunk.is_empty() && tx.blocking_send(Ok(chunk)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}
