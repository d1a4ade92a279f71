//! Converting a stored instance to another transfer syntax, without I/O: losslessly between the
//! native syntaxes (implicit/explicit little endian, explicit big endian, deflate) and by
//! decoding encapsulated pixel data (JPEG, JPEG-LS, JPEG 2000, RLE) to a native syntax.
//! Never to an encapsulated (compressed) syntax, so never lossy. The decoded size is checked
//! against a limit from the declared geometry before any decoder runs.

use crate::transfer::lookup;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::Transcode as _;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranscodeError {
    #[error("unknown or unsupported transfer syntax")]
    UnknownSyntax,
    #[error("conversion to a compressed transfer syntax is not offered")]
    CompressedTarget,
    #[error("the stored instance could not be parsed: {0}")]
    Malformed(String),
    #[error("decoded pixel data would exceed the limit ({0} bytes)")]
    TooLarge(u64),
    #[error("pixel data could not be decoded: {0}")]
    Decode(String),
}

/// Whether `to` is a syntax the archive can produce from any stored syntax.
pub fn can_produce(to: &str) -> bool {
    lookup(to).is_some_and(|ts| !ts.is_encapsulated_pixel_data())
}

fn int(obj: &DefaultDicomObject, tag: dicom_core::Tag, default: u64) -> u64 {
    obj.element_opt(tag).ok().flatten().and_then(|e| e.to_int::<u64>().ok()).unwrap_or(default)
}

/// Rows × Columns × frames × samples × bytes per sample, as declared.
pub fn declared_pixel_bytes(obj: &DefaultDicomObject) -> u64 {
    let rows = int(obj, tags::ROWS, 0);
    let cols = int(obj, tags::COLUMNS, 0);
    let frames = int(obj, tags::NUMBER_OF_FRAMES, 1).max(1);
    let samples = int(obj, tags::SAMPLES_PER_PIXEL, 1).max(1);
    let bytes = int(obj, tags::BITS_ALLOCATED, 8).div_ceil(8).max(1);
    rows.saturating_mul(cols).saturating_mul(frames).saturating_mul(samples).saturating_mul(bytes)
}

/// Parses Part-10 bytes (with or without the 128-byte preamble).
pub fn parse(bytes: &[u8]) -> Result<DefaultDicomObject, TranscodeError> {
    let body = if bytes.len() > 132 && &bytes[128..132] == b"DICM" { &bytes[128..] } else { bytes };
    OpenFileOptions::new().from_reader(body).map_err(|e| TranscodeError::Malformed(e.to_string()))
}

/// Converts `obj` in place to the transfer syntax `to`; `limit` bounds the decoded pixel data.
pub fn transcode(obj: &mut DefaultDicomObject, to: &str, limit: u64) -> Result<(), TranscodeError> {
    let target = lookup(to).ok_or(TranscodeError::UnknownSyntax)?;
    let from_uid = obj.meta().transfer_syntax().trim_end_matches(['\0', ' ']).to_owned();
    if from_uid == target.uid() {
        return Ok(());
    }
    let source = lookup(&from_uid).ok_or(TranscodeError::UnknownSyntax)?;
    if target.is_encapsulated_pixel_data() {
        return Err(TranscodeError::CompressedTarget);
    }
    if !source.is_encapsulated_pixel_data() {
        obj.meta_mut().set_transfer_syntax(target);
        return Ok(());
    }
    let size = declared_pixel_bytes(obj);
    if size == 0 || size > limit {
        return Err(TranscodeError::TooLarge(limit));
    }
    obj.transcode(target).map_err(|e| TranscodeError::Decode(e.to_string()))?;
    // Decoded colour pixels are interleaved RGB (the decoder has set the interpretation).
    if int(obj, tags::SAMPLES_PER_PIXEL, 1) == 3 {
        obj.put(DataElement::new(tags::PLANAR_CONFIGURATION, VR::US, PrimitiveValue::from(0u16)));
    }
    obj.remove_element(tags::ENCAPSULATED_PIXEL_DATA_VALUE_TOTAL_LENGTH);
    Ok(())
}

/// The Part-10 file of a converted object.
pub fn to_part10(obj: &DefaultDicomObject) -> Result<Vec<u8>, TranscodeError> {
    let mut out = Vec::new();
    obj.write_all(&mut out).map_err(|e| TranscodeError::Malformed(e.to_string()))?;
    Ok(out)
}

/// The data set alone (no file meta), in the object's transfer syntax, as a C-STORE carries it.
pub fn to_dataset(obj: &DefaultDicomObject) -> Result<Vec<u8>, TranscodeError> {
    let mut out = Vec::new();
    obj.write_dataset(&mut out).map_err(|e| TranscodeError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Converts Part-10 bytes to `to`, answering Part-10 bytes.
pub fn transcode_part10(bytes: &[u8], to: &str, limit: u64) -> Result<Vec<u8>, TranscodeError> {
    let mut obj = parse(bytes)?;
    transcode(&mut obj, to, limit)?;
    to_part10(&obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    const LIMIT: u64 = 64 << 20;

    fn sample() -> Vec<u8> {
        let spec = &synth::demo_studies(0.05)[0];
        synth::generate_study(spec).remove(0)
    }

    fn pixels(obj: &DefaultDicomObject) -> Vec<u8> {
        obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap().into_owned()
    }

    #[test]
    fn native_syntaxes_round_trip_losslessly() {
        let original = parse(&sample()).unwrap();
        let mut bytes = to_part10(&original).unwrap();
        for ts in ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.1"] {
            bytes = transcode_part10(&bytes, ts, LIMIT).unwrap();
            let obj = parse(&bytes).unwrap();
            assert_eq!(obj.meta().transfer_syntax().trim_end_matches('\0'), ts);
            assert_eq!(pixels(&obj), pixels(&original), "pixels after {ts}");
            assert_eq!(
                obj.element(tags::SOP_INSTANCE_UID).unwrap().to_str().unwrap(),
                original.element(tags::SOP_INSTANCE_UID).unwrap().to_str().unwrap()
            );
        }
        assert_eq!(bytes.len(), to_part10(&original).unwrap().len());
    }

    #[test]
    fn never_encodes_to_a_compressed_syntax() {
        let mut obj = parse(&sample()).unwrap();
        assert_eq!(transcode(&mut obj, "1.2.840.10008.1.2.4.50", LIMIT), Err(TranscodeError::CompressedTarget));
        assert!(!can_produce("1.2.840.10008.1.2.4.90"));
        assert!(can_produce("1.2.840.10008.1.2"));
        assert!(!can_produce("1.2.3.4"));
    }

    #[test]
    fn decodes_jpeg_ls_lossless_to_the_same_pixels() {
        let original = parse(&sample()).unwrap();
        let mut compressed = original.clone();
        let jls = dicom_transfer_syntax_registry::TransferSyntaxRegistry;
        use dicom_encoding::transfer_syntax::TransferSyntaxIndex as _;
        compressed.transcode(jls.get("1.2.840.10008.1.2.4.80").unwrap()).unwrap();
        let bytes = to_part10(&compressed).unwrap();
        let mut back = parse(&bytes).unwrap();
        transcode(&mut back, "1.2.840.10008.1.2", LIMIT).unwrap();
        assert_eq!(pixels(&back), pixels(&original));
        assert_eq!(back.meta().transfer_syntax().trim_end_matches('\0'), "1.2.840.10008.1.2");
    }

    #[test]
    fn refuses_beyond_the_limit_before_decoding() {
        let mut compressed = parse(&sample()).unwrap();
        use dicom_encoding::transfer_syntax::TransferSyntaxIndex as _;
        let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry.get("1.2.840.10008.1.2.4.80").unwrap();
        compressed.transcode(ts).unwrap();
        compressed.put(DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(65_000u16)));
        compressed.put(DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(65_000u16)));
        assert_eq!(transcode(&mut compressed, "1.2.840.10008.1.2.1", LIMIT), Err(TranscodeError::TooLarge(LIMIT)));
    }
}
