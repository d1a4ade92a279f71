//! The Content-Type a STOW-RS request must carry (PS3.18 §10.5): `multipart/related` whose
//! parts are `application/dicom` (no metadata + bulk data), and a boundary a parser can trust.

/// Why a Content-Type is not one STOW-RS takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StowContentType {
    #[error("STOW-RS takes multipart/related; type=\"application/dicom\"")]
    NotMultipartRelated,
    #[error("only application/dicom parts are accepted (not metadata + bulk data)")]
    NotDicomParts,
    #[error("the Content-Type header does not parse")]
    Unparsable,
    #[error("the multipart Content-Type has no valid boundary")]
    NoBoundary,
}

/// Longest boundary accepted. RFC 2046 §5.1.1 says 70 characters, but peers send more (a
/// widely used archive sends two UUIDs, 73): accepted up to this bound.
pub const MAX_BOUNDARY: usize = 256;

/// The boundary of a STOW-RS body with this Content-Type.
pub fn stow_boundary(content_type: &str) -> Result<String, StowContentType> {
    let mime: mime::Mime = content_type.parse().map_err(|_| StowContentType::Unparsable)?;
    if mime.essence_str() != "multipart/related" {
        return Err(StowContentType::NotMultipartRelated);
    }
    if let Some(part_type) = mime.get_param("type")
        && !part_type.as_str().eq_ignore_ascii_case("application/dicom")
    {
        return Err(StowContentType::NotDicomParts);
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_owned())
        .filter(|b| valid_boundary(b))
        .ok_or(StowContentType::NoBoundary)
}

/// A boundary of RFC 2046 `bchars` (letters, digits, `'()+_,-./:=?` and inner spaces), at most
/// [`MAX_BOUNDARY`] long and not ending in a space.
pub fn valid_boundary(b: &str) -> bool {
    let bchar = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    (1..=MAX_BOUNDARY).contains(&b.len()) && b.bytes().all(bchar) && !b.ends_with(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_of_real_peers_are_accepted_and_garbage_is_not() {
        let two_uuids = "0f8c4b0e-5a4e-4c1b-9f1e-2f7d8c9b0a11-6b1d7e3a-2c4f-4e8a-b5d9-1a2b3c4d5e6f";
        assert_eq!(two_uuids.len(), 73);
        assert!(valid_boundary(two_uuids));
        assert!(valid_boundary("a"));
        assert!(valid_boundary("simple boundary"));
        assert!(valid_boundary("=_Part_0_1234.5678:'(x)+,/?"));
        assert!(valid_boundary(&"b".repeat(256)));
        assert!(!valid_boundary(&"b".repeat(257)));
        assert!(!valid_boundary(""));
        assert!(!valid_boundary("ends in a space "));
        for garbage in ["semi;colon", "quote\"d", "tab\there", "line\r\nbreak", "ni\u{e9}", "a<b>", "star*"] {
            assert!(!valid_boundary(garbage), "{garbage:?}");
        }
    }

    #[test]
    fn stow_takes_dicom_parts_only() {
        let ok = "multipart/related; type=\"application/dicom\"; boundary=abc";
        assert_eq!(stow_boundary(ok), Ok("abc".into()));
        assert_eq!(stow_boundary("multipart/related; boundary=\"a b\""), Ok("a b".into()));
        assert_eq!(stow_boundary("application/dicom"), Err(StowContentType::NotMultipartRelated));
        let json = "multipart/related; type=\"application/dicom+json\"; boundary=abc";
        assert_eq!(stow_boundary(json), Err(StowContentType::NotDicomParts));
        assert_eq!(stow_boundary("multipart/related; type=\"application/dicom\""), Err(StowContentType::NoBoundary));
        assert_eq!(stow_boundary("not a type"), Err(StowContentType::Unparsable));
    }
}
