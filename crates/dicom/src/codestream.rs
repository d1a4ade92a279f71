//! What a compressed frame says about itself, read from its codestream header before any
//! decoder allocates (S6): a JPEG, JPEG-LS or JPEG 2000 frame must declare the rows, columns
//! and samples of the data set that holds it (or fewer), and an RLE frame's header must describe segments
//! that lie inside it. A frame that claims more is refused, never decoded.

/// The geometry the data set declares for every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub rows: u32,
    pub columns: u32,
    pub samples: u32,
    pub bits_allocated: u32,
}

/// Checks one compressed frame (its fragments joined) of transfer syntax `ts` against `geometry`.
pub fn check_frame(ts: &str, frame: &[u8], geometry: Geometry) -> Result<(), String> {
    let declared = match family(ts) {
        Family::Jpeg => jpeg_size(frame, |m| matches!(m, 0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC))?,
        Family::JpegLs => jpeg_size(frame, |m| m == 0xF7)?,
        Family::Jpeg2000 => j2k_size(frame)?,
        Family::Rle => return rle_header(frame, geometry),
        Family::Other => return Ok(()),
    };
    let (rows, columns, samples) = declared;
    if rows > geometry.rows || columns > geometry.columns {
        return Err(format!(
            "the frame declares {columns}×{rows} pixels in an image of {}×{}",
            geometry.columns, geometry.rows
        ));
    }
    if samples > geometry.samples {
        return Err(format!("the frame declares {samples} samples per pixel, the image {}", geometry.samples));
    }
    Ok(())
}

enum Family {
    Jpeg,
    JpegLs,
    Jpeg2000,
    Rle,
    Other,
}

fn family(ts: &str) -> Family {
    match ts {
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => Family::JpegLs,
        "1.2.840.10008.1.2.5" => Family::Rle,
        t if t.starts_with("1.2.840.10008.1.2.4.9") => Family::Jpeg2000,
        t if t.starts_with("1.2.840.10008.1.2.4.") && t.len() == "1.2.840.10008.1.2.4.50".len() => match &t[20..] {
            "50" | "51" | "57" | "70" => Family::Jpeg,
            _ => Family::Other,
        },
        _ => Family::Other,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// (rows, columns, components) of the first start-of-frame marker `is_sof` accepts.
fn jpeg_size(b: &[u8], is_sof: impl Fn(u8) -> bool) -> Result<(u32, u32, u32), String> {
    let broken = || "the frame's JPEG header is truncated or malformed".to_owned();
    if b.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err("the frame does not begin with a JPEG start-of-image marker".into());
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if b.get(at) != Some(&0xFF) {
            return Err(broken());
        }
        let marker = *b.get(at + 1).ok_or_else(broken)?;
        if is_sof(marker) {
            let rows = be16(b, at + 5).ok_or_else(broken)?;
            let columns = be16(b, at + 7).ok_or_else(broken)?;
            let components = u32::from(*b.get(at + 9).ok_or_else(broken)?);
            return Ok((rows, columns, components));
        }
        if matches!(marker, 0xD9 | 0xDA) {
            return Err("the frame has no start-of-frame header before its data".into());
        }
        let len = be16(b, at + 2).ok_or_else(broken)? as usize;
        if len < 2 {
            return Err(broken());
        }
        at += 2 + len;
    }
}

/// (rows, columns, components) of a JPEG 2000 codestream's SIZ segment (inside a JP2 file too).
fn j2k_size(b: &[u8]) -> Result<(u32, u32, u32), String> {
    let start = b
        .windows(4)
        .take(4096)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .ok_or("the frame has no JPEG 2000 SIZ header")?;
    let siz = start + 2;
    let broken = || "the frame's JPEG 2000 header is truncated".to_owned();
    let (xsiz, ysiz) = (be32(b, siz + 6).ok_or_else(broken)?, be32(b, siz + 10).ok_or_else(broken)?);
    let (x0, y0) = (be32(b, siz + 14).ok_or_else(broken)?, be32(b, siz + 18).ok_or_else(broken)?);
    let components = be16(b, siz + 38).ok_or_else(broken)?;
    Ok((ysiz.saturating_sub(y0), xsiz.saturating_sub(x0), components))
}

/// An RLE frame begins with a 64-byte header: the segment count (one per sample and byte of
/// sample) and up to 15 ascending offsets inside the frame.
fn rle_header(b: &[u8], geometry: Geometry) -> Result<(), String> {
    let le32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    if b.len() < 64 {
        return Err("the RLE frame is shorter than its 64-byte header".into());
    }
    let segments = le32(0);
    let expected = (geometry.samples * geometry.bits_allocated.div_ceil(8)) as usize;
    if segments == 0 || segments > 15 || segments != expected {
        return Err(format!("the RLE frame declares {segments} segments, the image needs {expected}"));
    }
    let mut previous = 63;
    for k in 0..segments {
        let offset = le32(4 + 4 * k);
        if offset <= previous || offset >= b.len() {
            return Err(format!("RLE segment {} begins at {offset}, outside the frame or out of order", k + 1));
        }
        previous = offset;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAY8: Geometry = Geometry { rows: 8, columns: 8, samples: 1, bits_allocated: 8 };

    fn jpeg_with_sof(rows: u16, columns: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        b.extend_from_slice(&rows.to_be_bytes());
        b.extend_from_slice(&columns.to_be_bytes());
        b.extend_from_slice(&[0x01, 0x01, 0x11, 0x00, 0xFF, 0xDA]);
        b
    }

    #[test]
    fn a_jpeg_frame_must_declare_the_images_size() {
        assert_eq!(check_frame("1.2.840.10008.1.2.4.50", &jpeg_with_sof(8, 8), GRAY8), Ok(()));
        let err = check_frame("1.2.840.10008.1.2.4.50", &jpeg_with_sof(65500, 65500), GRAY8).unwrap_err();
        assert!(err.contains("65500×65500"), "{err}");
        assert!(check_frame("1.2.840.10008.1.2.4.70", &[0xFF, 0xD8, 0xFF], GRAY8).is_err());
        assert!(check_frame("1.2.840.10008.1.2.4.50", b"not a jpeg", GRAY8).is_err());
    }

    #[test]
    fn a_jpeg_2000_frame_must_declare_the_images_size() {
        let mut b = vec![0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0x00, 0x00];
        for v in [8u32, 8, 0, 0, 8, 8, 0, 0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&1u16.to_be_bytes());
        assert_eq!(check_frame("1.2.840.10008.1.2.4.90", &b, GRAY8), Ok(()));
        b[8..12].copy_from_slice(&60000u32.to_be_bytes());
        assert!(check_frame("1.2.840.10008.1.2.4.91", &b, GRAY8).is_err());
        assert!(check_frame("1.2.840.10008.1.2.4.90", &b[..20], GRAY8).is_err());
    }

    #[test]
    fn an_rle_header_must_describe_segments_inside_the_frame() {
        let mut b = vec![0u8; 100];
        b[0] = 1;
        b[4] = 64;
        assert_eq!(check_frame("1.2.840.10008.1.2.5", &b, GRAY8), Ok(()));
        b[4] = 200;
        assert!(check_frame("1.2.840.10008.1.2.5", &b, GRAY8).is_err(), "offset beyond the frame");
        b[4] = 64;
        b[0] = 2;
        assert!(check_frame("1.2.840.10008.1.2.5", &b, GRAY8).is_err(), "segment count of another geometry");
        assert!(check_frame("1.2.840.10008.1.2.5", &b[..10], GRAY8).is_err());
    }

    #[test]
    fn random_headers_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..5000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (state >> 56) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 57)) as u8).collect();
            for ts in
                ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"]
            {
                let _ = check_frame(ts, &bytes, GRAY8);
            }
        }
    }
}
