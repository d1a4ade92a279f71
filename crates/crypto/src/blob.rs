//! Envelope-encrypted blobs (S21, S22).
//!
//! Every blob has its own random data key, wrapped with AES-256-GCM by a key-encryption key
//! derived from the active master version. The plaintext is cut into segments of
//! [`SEGMENT_SIZE`] bytes, each sealed with the STREAM construction (nonce = 7 random bytes ‖
//! 32-bit counter ‖ last-segment flag), so that one segment can be decrypted alone (one frame
//! without the whole object) while reordered, truncated or extended segments fail. The
//! object id and the header are associated data of every segment: a blob copied under another
//! id, or with an edited header, does not decrypt.
//!
//! Layout: header (80 bytes) ‖ segment 0 ‖ … ‖ segment n-1, each segment `plaintext ‖ 16-byte tag`.

use crate::{CryptoError, KeyRing};
use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom, Write};
use zeroize::Zeroizing;

pub const SEGMENT_SIZE: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"CFB1";
const ALG_AES_256_GCM: u8 = 1;
pub const HEADER_LEN: usize = 80;
const KEK_LABEL: &str = "blob-kek/aes-256-gcm";

type Stream = StreamBE32<Aes256Gcm>;

fn kek(ring: &KeyRing, version: u32) -> Result<Aes256Gcm, CryptoError> {
    let key = ring.derive(version, KEK_LABEL)?;
    Ok(Aes256Gcm::new_from_slice(key.as_slice()).expect("32-byte key"))
}

fn wrap_aad(object_id: &str, header_start: &[u8]) -> Vec<u8> {
    let mut aad = b"cloudfilm/dek\0".to_vec();
    aad.extend_from_slice(object_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header_start);
    aad
}

fn segment_aad(object_id: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(object_id.len() + 1 + header.len());
    aad.extend_from_slice(object_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header);
    aad
}

fn stream_for(dek: &[u8; 32], prefix: &[u8]) -> Stream {
    let cipher = Aes256Gcm::new_from_slice(dek).expect("32-byte key");
    let nonce = prefix.try_into().expect("7-byte prefix");
    Stream::from_aead(cipher, nonce)
}

/// Encrypts a stream of plaintext into `out`, computing the plaintext's SHA-256 on the way.
pub struct BlobWriter<W: Write> {
    out: W,
    stream: Stream,
    aad: Vec<u8>,
    buffer: Vec<u8>,
    position: u32,
    hasher: Sha256,
    plaintext_len: u64,
}

/// What a finished blob holds: plaintext length and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSummary {
    pub plaintext_len: u64,
    pub sha256: String,
}

impl<W: Write> BlobWriter<W> {
    pub fn new(ring: &KeyRing, object_id: &str, mut out: W) -> Result<Self, CryptoError> {
        let dek = Zeroizing::new(crate::random::bytes::<32>());
        let version = ring.active_version();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(ALG_AES_256_GCM);
        header.extend_from_slice(&version.to_le_bytes());
        let wrap_nonce = crate::random::bytes::<12>();
        let wrapped = kek(ring, version)?
            .encrypt((&wrap_nonce).into(), Payload { msg: dek.as_slice(), aad: &wrap_aad(object_id, &header) })
            .map_err(|_| CryptoError::Malformed("wrapping the data key failed"))?;
        header.extend_from_slice(&wrap_nonce);
        header.extend_from_slice(&wrapped);
        let prefix = crate::random::bytes::<7>();
        header.extend_from_slice(&prefix);
        header.extend_from_slice(&(SEGMENT_SIZE as u32).to_le_bytes());
        debug_assert_eq!(header.len(), HEADER_LEN);
        out.write_all(&header)?;
        Ok(BlobWriter {
            out,
            stream: stream_for(&dek, &prefix),
            aad: segment_aad(object_id, &header),
            buffer: Vec::with_capacity(SEGMENT_SIZE + TAG),
            position: 0,
            hasher: Sha256::new(),
            plaintext_len: 0,
        })
    }

    fn seal_segment(&mut self, last: bool) -> Result<(), CryptoError> {
        self.stream
            .encrypt_in_place(self.position, last, &self.aad, &mut self.buffer)
            .map_err(|_| CryptoError::Malformed("segment encryption failed"))?;
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        self.position = self.position.checked_add(1).ok_or(CryptoError::Malformed("blob too large"))?;
        Ok(())
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), CryptoError> {
        self.hasher.update(data);
        self.plaintext_len += data.len() as u64;
        while !data.is_empty() {
            // A full segment is sealed only when more data follows, so the last one is flagged.
            if self.buffer.len() == SEGMENT_SIZE {
                self.seal_segment(false)?;
            }
            let take = (SEGMENT_SIZE - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the last segment and returns the writer with the blob's summary.
    pub fn finish(mut self) -> Result<(W, BlobSummary), CryptoError> {
        self.seal_segment(true)?;
        self.out.flush()?;
        let summary = BlobSummary { plaintext_len: self.plaintext_len, sha256: hex::encode(self.hasher.finalize()) };
        Ok((self.out, summary))
    }
}

/// Random-access reader of an encrypted blob: `Read + Seek` over the plaintext, decrypting
/// only the segments it touches.
pub struct BlobReader<R: Read + Seek> {
    src: R,
    stream: Stream,
    aad: Vec<u8>,
    segments: u64,
    plaintext_len: u64,
    position: u64,
    current: Option<(u64, Vec<u8>)>,
}

impl<R: Read + Seek> BlobReader<R> {
    pub fn open(ring: &KeyRing, object_id: &str, mut src: R) -> Result<Self, CryptoError> {
        let total = src.seek(SeekFrom::End(0))?;
        src.seek(SeekFrom::Start(0))?;
        let mut header = [0u8; HEADER_LEN];
        src.read_exact(&mut header).map_err(|_| CryptoError::Malformed("blob shorter than its header"))?;
        if &header[..4] != MAGIC || header[4] != ALG_AES_256_GCM {
            return Err(CryptoError::Malformed("not a cloudfilm blob"));
        }
        let version = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes"));
        let wrap_nonce: [u8; 12] = header[9..21].try_into().expect("12 bytes");
        let dek = Zeroizing::new(
            kek(ring, version)?
                .decrypt(
                    (&wrap_nonce).into(),
                    Payload { msg: &header[21..69], aad: &wrap_aad(object_id, &header[..9]) },
                )
                .map_err(|_| CryptoError::Integrity)?,
        );
        let dek: [u8; 32] = dek.as_slice().try_into().map_err(|_| CryptoError::Integrity)?;
        let segment_size = u32::from_le_bytes(header[76..80].try_into().expect("4 bytes"));
        if segment_size as usize != SEGMENT_SIZE {
            return Err(CryptoError::Malformed("unsupported segment size"));
        }
        let body = total - HEADER_LEN as u64;
        let full = (SEGMENT_SIZE + TAG) as u64;
        let segments = body.div_ceil(full).max(1);
        let last_len = body - (segments - 1) * full;
        if last_len < TAG as u64 {
            return Err(CryptoError::Integrity);
        }
        Ok(BlobReader {
            stream: stream_for(&dek, &header[69..76]),
            aad: segment_aad(object_id, &header),
            segments,
            plaintext_len: body - segments * TAG as u64,
            position: 0,
            current: None,
            src,
        })
    }

    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn load_segment(&mut self, index: u64) -> io::Result<()> {
        if matches!(&self.current, Some((i, _)) if *i == index) {
            return Ok(());
        }
        let full = (SEGMENT_SIZE + TAG) as u64;
        let start = HEADER_LEN as u64 + index * full;
        let len = if index + 1 == self.segments {
            self.plaintext_len - index * SEGMENT_SIZE as u64 + TAG as u64
        } else {
            full
        };
        let mut buffer = self.current.take().map(|(_, b)| b).unwrap_or_default();
        buffer.resize(len as usize, 0);
        self.src.seek(SeekFrom::Start(start))?;
        self.src.read_exact(&mut buffer)?;
        let counter = u32::try_from(index).map_err(|_| io::Error::other("segment index overflow"))?;
        self.stream
            .decrypt_in_place(counter, index + 1 == self.segments, &self.aad, &mut buffer)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, CryptoError::Integrity))?;
        self.current = Some((index, buffer));
        Ok(())
    }

    /// Reads `len` plaintext bytes at `offset` (a frame, a header prefix).
    pub fn read_range(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if offset.checked_add(len as u64).is_none_or(|end| end > self.plaintext_len) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range beyond the end of the blob"));
        }
        let mut out = vec![0u8; len];
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(&mut out)?;
        Ok(out)
    }
}

impl<R: Read + Seek> Read for BlobReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.plaintext_len || buf.is_empty() {
            return Ok(0);
        }
        let index = self.position / SEGMENT_SIZE as u64;
        self.load_segment(index)?;
        let (_, segment) = self.current.as_ref().expect("loaded");
        let within = (self.position - index * SEGMENT_SIZE as u64) as usize;
        let n = (segment.len() - within).min(buf.len());
        buf[..n].copy_from_slice(&segment[within..within + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for BlobReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.plaintext_len as i128 + d as i128,
            SeekFrom::Current(d) => self.position as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.position = target as u64;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn seal(ring: &KeyRing, id: &str, data: &[u8]) -> Vec<u8> {
        let mut writer = BlobWriter::new(ring, id, Vec::new()).unwrap();
        for chunk in data.chunks(7777) {
            writer.write_all(chunk).unwrap();
        }
        let (out, summary) = writer.finish().unwrap();
        assert_eq!(summary.plaintext_len, data.len() as u64);
        assert_eq!(summary.sha256, crate::sha256_hex(data));
        out
    }

    fn open_all(ring: &KeyRing, id: &str, sealed: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut reader = BlobReader::open(ring, id, Cursor::new(sealed)).map_err(io::Error::other)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_segment_boundaries() {
        let ring = KeyRing::generate();
        for len in [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 5] {
            let data = sample(len);
            let sealed = seal(&ring, "obj", &data);
            assert_eq!(open_all(&ring, "obj", sealed).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn reads_a_range_without_the_rest() {
        let ring = KeyRing::generate();
        let data = sample(5 * SEGMENT_SIZE + 100);
        let mut sealed = seal(&ring, "obj", &data);
        // Corrupt segment 0: a range inside segment 3 still reads, segment 0 does not.
        sealed[HEADER_LEN + 10] ^= 1;
        let mut reader = BlobReader::open(&ring, "obj", Cursor::new(sealed)).unwrap();
        let off = 3 * SEGMENT_SIZE as u64 + 17;
        assert_eq!(reader.read_range(off, 70_000).unwrap(), data[off as usize..off as usize + 70_000]);
        assert!(reader.read_range(0, 10).is_err());
        assert!(reader.read_range(data.len() as u64 - 5, 10).is_err());
    }

    #[test]
    fn ciphertext_hides_the_plaintext() {
        let ring = KeyRing::generate();
        let data = b"ZHANG^SAN 11010519491231002X".repeat(100);
        let sealed = seal(&ring, "obj", &data);
        assert!(!sealed.windows(9).any(|w| w == b"ZHANG^SAN"));
    }

    #[test]
    fn tampering_is_detected() {
        let ring = KeyRing::generate();
        let data = sample(2 * SEGMENT_SIZE + 9);
        let sealed = seal(&ring, "obj", &data);
        // Another object id (a swapped blob).
        assert!(BlobReader::open(&ring, "other", Cursor::new(sealed.clone())).is_err());
        // Another ring.
        assert!(BlobReader::open(&KeyRing::generate(), "obj", Cursor::new(sealed.clone())).is_err());
        // A flipped byte in the last segment.
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 0x80;
        assert!(open_all(&ring, "obj", flipped).is_err());
        // Truncated to a segment boundary: the new last segment was not sealed as last.
        let truncated = sealed[..HEADER_LEN + 2 * (SEGMENT_SIZE + TAG)].to_vec();
        assert!(open_all(&ring, "obj", truncated).is_err());
        // Two segments swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + SEGMENT_SIZE + TAG);
        let first = swapped[a..b].to_vec();
        let second = swapped[b..b + SEGMENT_SIZE + TAG].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + SEGMENT_SIZE + TAG].copy_from_slice(&first);
        assert!(open_all(&ring, "obj", swapped).is_err());
        // An edited header field (segment nonce prefix).
        let mut header = sealed;
        header[70] ^= 1;
        assert!(open_all(&ring, "obj", header).is_err());
    }

    #[test]
    fn data_keys_differ_per_blob() {
        let ring = KeyRing::generate();
        let a = seal(&ring, "obj", b"same bytes");
        let b = seal(&ring, "obj", b"same bytes");
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }
}
