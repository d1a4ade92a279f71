//! Rendering one frame to JPEG or PNG (WADO-RS `rendered`, `thumbnail`, the patient viewer):
//! only the requested frame is decoded, windowed as asked (or as the object says), scaled to
//! fit a viewport.

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::FileDicomObject;
use dicom_object::mem::InMemDicomObject;
use dicom_pixeldata::image::{DynamicImage, ImageFormat as Format, imageops::FilterType};
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutFunction, VoiLutOption, WindowLevel};
use std::io::Cursor;
use turbojpeg::{PixelFormat, Subsamp};

pub type Header = FileDicomObject<InMemDicomObject>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFormat {
    #[default]
    Jpeg,
    Png,
}

impl ImageFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiLutFunction,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    pub format: ImageFormat,
    pub window: Option<Window>,
    /// Fit inside (width, height), keeping the aspect ratio.
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality 1..=100 (default 90).
    pub quality: Option<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("frames in {0} cannot be decoded here")]
    Unsupported(String),
    #[error("the frame could not be decoded: {0}")]
    Decode(String),
    #[error("the image could not be encoded: {0}")]
    Encode(String),
    #[error("invalid rendering parameter: {0}")]
    BadParameter(String),
}

/// The bytes of one frame, as the layout found them.
pub enum FrameSource {
    /// An uncompressed frame.
    Native(Vec<u8>),
    /// The fragments of a compressed frame.
    Fragments(Vec<Vec<u8>>),
    /// The whole object, for layouts where one frame cannot be read alone; 0-based index.
    Whole(Box<Header>, u32),
}

/// The window the object itself proposes (its first Window Center and Width), if any.
pub fn default_window(header: &Header) -> Option<(f64, f64)> {
    let first = |tag| header.get(tag).and_then(|e| e.to_multi_float64().ok()).and_then(|v| v.first().copied());
    first(tags::WINDOW_CENTER).zip(first(tags::WINDOW_WIDTH)).filter(|(_, w)| *w >= 1.0)
}

/// Parses `window=center,width[,function]` (PS3.18 §8.3.5.1.4).
pub fn parse_window(value: &str) -> Result<Window, RenderError> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    let (Some(center), Some(width)) = (parts.first().and_then(|s| number(s)), parts.get(1).and_then(|s| number(s)))
    else {
        return Err(RenderError::BadParameter("window takes center,width[,function]".into()));
    };
    if width < 1.0 || parts.len() > 3 {
        return Err(RenderError::BadParameter("the window width must be at least 1".into()));
    }
    let function = match parts.get(2).map(|f| f.to_ascii_lowercase()) {
        None => VoiLutFunction::Linear,
        Some(f) if f == "linear" => VoiLutFunction::Linear,
        Some(f) if f == "linear-exact" || f == "linear_exact" => VoiLutFunction::LinearExact,
        Some(f) if f == "sigmoid" => VoiLutFunction::Sigmoid,
        Some(other) => {
            return Err(RenderError::BadParameter(format!("unknown window function {other:?}")));
        }
    };
    Ok(Window { center, width, function })
}

/// Parses `viewport=width,height` (also `vw,vh,sx,sy,sw,sh`: the first two are used).
pub fn parse_viewport(value: &str) -> Result<(u32, u32), RenderError> {
    let parts: Vec<u32> = value
        .split(',')
        .map(|s| s.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| RenderError::BadParameter("viewport takes width,height in pixels".into()))?;
    match parts.as_slice() {
        [w, h, ..] if (1..=8192).contains(w) && (1..=8192).contains(h) => Ok((*w, *h)),
        _ => Err(RenderError::BadParameter("viewport takes width,height between 1 and 8192".into())),
    }
}

/// A one-frame object holding just this frame (or the whole object and the frame's index).
fn frame_object(header: &Header, source: FrameSource) -> Result<(Header, u32), RenderError> {
    let ts = header.meta().transfer_syntax().trim_end_matches('\0').to_owned();
    if !crate::transfer::can_decode_pixels(&ts) {
        return Err(RenderError::Unsupported(crate::transfer::name(&ts).to_owned()));
    }
    match source {
        FrameSource::Whole(obj, frame) => Ok((*obj, frame)),
        FrameSource::Native(bytes) => {
            let mut obj = single_frame(header);
            let bits = int(&obj, tags::BITS_ALLOCATED).unwrap_or(8);
            let big_endian = ts == "1.2.840.10008.1.2.2";
            let value = if bits == 16 {
                let words = bytes.chunks_exact(2).map(|c| {
                    let pair = [c[0], c[1]];
                    if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
                });
                PrimitiveValue::U16(words.collect())
            } else if bits == 32 {
                let words = bytes.chunks_exact(4).map(|c| {
                    let quad = [c[0], c[1], c[2], c[3]];
                    if big_endian { u32::from_be_bytes(quad) } else { u32::from_le_bytes(quad) }
                });
                PrimitiveValue::U32(words.collect())
            } else {
                PrimitiveValue::U8(bytes.into())
            };
            let vr = if bits > 8 { VR::OW } else { VR::OB };
            obj.put(DataElement::new(tags::PIXEL_DATA, vr, value));
            Ok((obj, 0))
        }
        FrameSource::Fragments(fragments) => {
            let geometry = crate::codestream::Geometry {
                rows: int(header, tags::ROWS).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                columns: int(header, tags::COLUMNS).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
                samples: int(header, tags::SAMPLES_PER_PIXEL).unwrap_or(1).clamp(0, u32::MAX as i64) as u32,
                bits_allocated: int(header, tags::BITS_ALLOCATED).unwrap_or(8).clamp(0, 64) as u32,
            };
            crate::codestream::check_frame(&ts, &fragments.concat(), geometry).map_err(RenderError::Decode)?;
            let mut obj = single_frame(header);
            let sequence = PixelFragmentSequence::new(Vec::<u32>::new(), fragments);
            obj.put(DataElement::new(tags::PIXEL_DATA, VR::OB, Value::PixelSequence(sequence)));
            Ok((obj, 0))
        }
    }
}

/// Decodes one frame to an image. Monochrome 8- and 16-bit frames, compressed or not, are
/// windowed by one lookup table, so a frame renders the same in every transfer syntax.
pub fn decode_frame(header: &Header, source: FrameSource, window: Option<Window>) -> Result<DynamicImage, RenderError> {
    if lut_applies(header, window) {
        let big_endian = header.meta().transfer_syntax().trim_end_matches('\0') == "1.2.840.10008.1.2.2";
        let (samples, big_endian) = match source {
            FrameSource::Native(bytes) => (bytes, big_endian),
            compressed => (decode_raw(header, compressed)?, false),
        };
        if let Some(image) = monochrome_lut(header, &samples, big_endian, window) {
            return image;
        }
        return Err(RenderError::Decode("the frame could not be windowed".into()));
    }
    if let FrameSource::Native(bytes) = &source
        && let Some(image) = native_by_hand(header, bytes, window)
    {
        return image;
    }
    decode_with_pixeldata(header, source, window)
}

/// Whether the lookup table renders this frame: one sample of 8 or 16 bits, no VOI or
/// modality LUT sequence, no sigmoid window.
fn lut_applies(header: &Header, window: Option<Window>) -> bool {
    int(header, tags::SAMPLES_PER_PIXEL).unwrap_or(1) == 1
        && matches!(int(header, tags::BITS_ALLOCATED), Some(8) | Some(16))
        && int(header, tags::ROWS).is_some()
        && int(header, tags::COLUMNS).is_some()
        && header.get(tags::VOILUT_SEQUENCE).is_none()
        && header.get(tags::MODALITY_LUT_SEQUENCE).is_none()
        && window.is_none_or(|w| w.function != VoiLutFunction::Sigmoid)
}

/// The general path: dicom-pixeldata decodes and windows.
fn decode_with_pixeldata(
    header: &Header,
    source: FrameSource,
    window: Option<Window>,
) -> Result<DynamicImage, RenderError> {
    let (obj, frame) = frame_object(header, source)?;
    let mut options = ConvertOptions::new().force_8bit();
    if let Some(w) = window {
        options = options.with_voi_lut(VoiLutOption::CustomWithFunction(
            WindowLevel { center: w.center, width: w.width },
            w.function,
        ));
    }
    let decoded = decode_guarded(&obj, frame)?;
    decoded.to_dynamic_image_with_options(0, &options).map_err(|e| RenderError::Decode(e.to_string()))
}

/// 8- and 16-bit monochrome samples through one lookup table: rescale, window (asked, the
/// object's first, or the frame's range) and MONOCHROME1 inversion computed once per stored
/// value instead of once per pixel.
fn monochrome_lut(
    header: &Header,
    bytes: &[u8],
    big_endian: bool,
    window: Option<Window>,
) -> Option<Result<DynamicImage, RenderError>> {
    let (rows, cols) = (int(header, tags::ROWS)? as u32, int(header, tags::COLUMNS)? as u32);
    let bits = int(header, tags::BITS_ALLOCATED)?;
    let pixels = (rows * cols) as usize;
    let stride = (bits / 8) as usize;
    if bytes.len() < pixels * stride {
        return Some(Err(RenderError::Decode("the frame is shorter than its size".into())));
    }
    let number = |tag| header.get(tag).and_then(|e| e.to_float64().ok());
    let first = |tag| header.get(tag).and_then(|e| e.to_multi_float64().ok()).and_then(|v| v.first().copied());
    let signed = int(header, tags::PIXEL_REPRESENTATION) == Some(1);
    let stored_bits = int(header, tags::BITS_STORED).unwrap_or(bits).clamp(1, bits) as u32;
    let (slope, intercept) =
        (number(tags::RESCALE_SLOPE).unwrap_or(1.0), number(tags::RESCALE_INTERCEPT).unwrap_or(0.0));
    let inverted = header
        .get(tags::PHOTOMETRIC_INTERPRETATION)
        .and_then(|e| e.to_str().ok())
        .is_some_and(|p| p.trim() == "MONOCHROME1");
    // Stored value (masked to Bits Stored, sign-extended) for each raw sample.
    let value_of = |raw: u32| -> i64 {
        let masked = raw & ((1u64 << stored_bits) - 1) as u32;
        if signed && masked >> (stored_bits - 1) & 1 == 1 {
            i64::from(masked) - (1i64 << stored_bits)
        } else {
            i64::from(masked)
        }
    };
    let raw_at = |i: usize| -> u32 {
        if stride == 1 {
            u32::from(bytes[i])
        } else {
            let pair = [bytes[2 * i], bytes[2 * i + 1]];
            u32::from(if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) })
        }
    };
    let (center, width) =
        match window.map(|w| (w.center, w.width)).or_else(|| first(tags::WINDOW_CENTER).zip(first(tags::WINDOW_WIDTH)))
        {
            Some((c, w)) if w >= 1.0 => (c, w),
            _ => {
                let (lo, hi) = (0..pixels).fold((i64::MAX, i64::MIN), |(lo, hi), i| {
                    let v = value_of(raw_at(i));
                    (lo.min(v), hi.max(v))
                });
                let (lo, hi) = (lo as f64 * slope + intercept, hi as f64 * slope + intercept);
                ((lo + hi) / 2.0, (hi - lo).max(1.0))
            }
        };
    let exact = window.is_some_and(|w| w.function == VoiLutFunction::LinearExact);
    // PS3.3 C.11.2.1.2: linear (and linear exact) windowing to 0..=255.
    let lut: Vec<u8> = (0..(1u32 << bits))
        .map(|raw| {
            let x = value_of(raw) as f64 * slope + intercept;
            let y = if exact {
                ((x - (center - width / 2.0)) / width).clamp(0.0, 1.0)
            } else if x <= center - 0.5 - (width - 1.0) / 2.0 {
                0.0
            } else if x > center - 0.5 + (width - 1.0) / 2.0 {
                1.0
            } else {
                (x - (center - 0.5)) / (width - 1.0).max(1.0) + 0.5
            };
            let v = (y.clamp(0.0, 1.0) * 255.0).round() as u8;
            if inverted { 255 - v } else { v }
        })
        .collect();
    let gray = apply_lut(&lut, &bytes[..pixels * stride], stride, big_endian);
    let image = dicom_pixeldata::image::GrayImage::from_raw(cols, rows, gray).map(DynamicImage::ImageLuma8);
    Some(image.ok_or_else(|| RenderError::Decode("bad frame size".into())))
}

/// Maps every stored sample through the lookup table; large frames are split over two
/// threads (a 5-megapixel radiograph is mapped in half the time while the other core would idle).
fn apply_lut(lut: &[u8], samples: &[u8], stride: usize, big_endian: bool) -> Vec<u8> {
    let map = |part: &[u8], out: &mut [u8]| match (stride, big_endian) {
        (1, _) => part.iter().zip(out).for_each(|(&b, o)| *o = lut[usize::from(b)]),
        (_, false) => {
            part.chunks_exact(2).zip(out).for_each(|(p, o)| *o = lut[usize::from(u16::from_le_bytes([p[0], p[1]]))])
        }
        (_, true) => {
            part.chunks_exact(2).zip(out).for_each(|(p, o)| *o = lut[usize::from(u16::from_be_bytes([p[0], p[1]]))])
        }
    };
    let pixels = samples.len() / stride;
    let mut gray = vec![0u8; pixels];
    if pixels < 1 << 20 {
        map(samples, &mut gray);
        return gray;
    }
    let half = pixels / 2;
    let (first_out, second_out) = gray.split_at_mut(half);
    let (first_in, second_in) = samples.split_at(half * stride);
    std::thread::scope(|scope| {
        scope.spawn(|| map(second_in, second_out));
        map(first_in, first_out);
    });
    gray
}

/// Native frames dicom-pixeldata does not convert: 32-bit monochrome samples (RT dose) and
/// YBR_FULL_422 (two samples a pixel on the wire). `None` for everything else.
fn native_by_hand(header: &Header, bytes: &[u8], window: Option<Window>) -> Option<Result<DynamicImage, RenderError>> {
    let text = |tag| header.get(tag).and_then(|e| e.to_str().ok()).map(|v| v.trim().to_owned());
    let number = |tag| header.get(tag).and_then(|e| e.to_float64().ok());
    let (rows, cols) = (int(header, tags::ROWS)? as u32, int(header, tags::COLUMNS)? as u32);
    let bits = int(header, tags::BITS_ALLOCATED)?;
    let samples = int(header, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let big_endian = header.meta().transfer_syntax().trim_end_matches('\0') == "1.2.840.10008.1.2.2";
    let pixels = (rows * cols) as usize;
    if samples == 1 && bits == 32 {
        if bytes.len() < pixels * 4 {
            return Some(Err(RenderError::Decode("the frame is shorter than its size".into())));
        }
        let signed = int(header, tags::PIXEL_REPRESENTATION) == Some(1);
        let (slope, intercept) =
            (number(tags::RESCALE_SLOPE).unwrap_or(1.0), number(tags::RESCALE_INTERCEPT).unwrap_or(0.0));
        let values: Vec<f64> = bytes[..pixels * 4]
            .chunks_exact(4)
            .map(|c| {
                let raw = [c[0], c[1], c[2], c[3]];
                let v = if big_endian { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) };
                let v = if signed { f64::from(v as i32) } else { f64::from(v) };
                v * slope + intercept
            })
            .collect();
        let window = window.map(|w| (w.center, w.width)).or_else(|| {
            let center = header
                .get(tags::WINDOW_CENTER)
                .and_then(|e| e.to_multi_float64().ok())
                .and_then(|v| v.first().copied())?;
            let width = header
                .get(tags::WINDOW_WIDTH)
                .and_then(|e| e.to_multi_float64().ok())
                .and_then(|v| v.first().copied())?;
            Some((center, width))
        });
        let (center, width) = window.unwrap_or_else(|| {
            let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            ((min + max) / 2.0, (max - min).max(1.0))
        });
        let low = center - width / 2.0;
        let gray: Vec<u8> =
            values.iter().map(|v| (((v - low) / width).clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        let image = dicom_pixeldata::image::GrayImage::from_raw(cols, rows, gray).map(DynamicImage::ImageLuma8);
        return Some(image.ok_or_else(|| RenderError::Decode("bad frame size".into())));
    }
    if samples == 3 && bits == 8 && text(tags::PHOTOMETRIC_INTERPRETATION).as_deref() == Some("YBR_FULL_422") {
        if bytes.len() < pixels * 2 || cols % 2 != 0 {
            return Some(Err(RenderError::Decode("the frame is shorter than its size".into())));
        }
        let mut rgb = Vec::with_capacity(pixels * 3);
        for group in bytes[..pixels * 2].chunks_exact(4) {
            let (cb, cr) = (f64::from(group[2]) - 128.0, f64::from(group[3]) - 128.0);
            for y in [f64::from(group[0]), f64::from(group[1])] {
                rgb.push((y + 1.402 * cr).round().clamp(0.0, 255.0) as u8);
                rgb.push((y - 0.344136 * cb - 0.714136 * cr).round().clamp(0.0, 255.0) as u8);
                rgb.push((y + 1.772 * cb).round().clamp(0.0, 255.0) as u8);
            }
        }
        let image = dicom_pixeldata::image::RgbImage::from_raw(cols, rows, rgb).map(DynamicImage::ImageRgb8);
        return Some(image.ok_or_else(|| RenderError::Decode("bad frame size".into())));
    }
    None
}

/// Decodes one frame to uncompressed little-endian samples (WADO-RS frames as
/// `application/octet-stream`).
pub fn decode_raw(header: &Header, source: FrameSource) -> Result<Vec<u8>, RenderError> {
    let (obj, frame) = frame_object(header, source)?;
    let decoded = decode_guarded(&obj, frame)?;
    Ok(decoded.data().to_vec())
}

/// dicom-pixeldata's decoders on one frame; a decoder that panics on a hostile frame is a
/// frame that could not be decoded, not a failed request (the frame was checked first).
fn decode_guarded(obj: &Header, frame: u32) -> Result<dicom_pixeldata::DecodedPixelData<'_>, RenderError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.decode_pixel_data_frame(frame)))
        .map_err(|_| RenderError::Decode("the decoder failed on this frame".into()))?
        .map_err(|e| RenderError::Decode(e.to_string()))
}

fn int(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

fn single_frame(header: &Header) -> Header {
    let mut obj = header.clone();
    if obj.get(tags::NUMBER_OF_FRAMES).is_some() {
        obj.put(DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, PrimitiveValue::from("1")));
    }
    obj
}

/// Scales to the viewport and encodes.
pub fn encode(image: DynamicImage, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let image = match options.viewport {
        Some((w, h)) => image.resize(w, h, FilterType::Triangle),
        None => image,
    };
    match options.format {
        ImageFormat::Png => {
            let mut out = Cursor::new(Vec::new());
            image.write_to(&mut out, Format::Png).map_err(|e| RenderError::Encode(e.to_string()))?;
            Ok(out.into_inner())
        }
        ImageFormat::Jpeg => jpeg(image, options.quality.unwrap_or(90).clamp(1, 100)),
    }
}

/// Baseline JPEG through libjpeg-turbo: grayscale for monochrome images, full chroma
/// resolution from quality 90 up and 4:2:0 below for colour.
fn jpeg(image: DynamicImage, quality: u8) -> Result<Vec<u8>, RenderError> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    if width > usize::from(u16::MAX) || height > usize::from(u16::MAX) {
        return Err(RenderError::Encode("the image is too large for JPEG".into()));
    }
    let (pixels, format, subsampling) = match image {
        DynamicImage::ImageLuma8(gray) => (gray.into_raw(), PixelFormat::GRAY, Subsamp::Gray),
        other if !other.color().has_color() => (other.to_luma8().into_raw(), PixelFormat::GRAY, Subsamp::Gray),
        other if quality >= 90 => (other.to_rgb8().into_raw(), PixelFormat::RGB, Subsamp::None),
        other => (other.to_rgb8().into_raw(), PixelFormat::RGB, Subsamp::Sub2x2),
    };
    let encode = || -> Result<Vec<u8>, turbojpeg::Error> {
        let mut compressor = turbojpeg::Compressor::new()?;
        compressor.set_quality(i32::from(quality))?;
        compressor.set_subsamp(subsampling)?;
        let pitch = width * format.size();
        compressor.compress_to_vec(turbojpeg::Image { pixels: &pixels[..], width, pitch, height, format })
    };
    encode().map_err(|e| RenderError::Encode(e.to_string()))
}

/// Decodes, windows, scales and encodes one frame.
pub fn render(header: &Header, source: FrameSource, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    encode(decode_frame(header, source, options.window)?, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_map_the_same_on_two_threads() {
        let lut: Vec<u8> = (0..65536u32).map(|v| (v.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let pixels = (1 << 20) + 3;
        let samples: Vec<u8> = (0..pixels * 2).map(|i| (i * 7 % 251) as u8).collect();
        for big_endian in [false, true] {
            let expected: Vec<u8> = samples
                .chunks_exact(2)
                .map(|p| {
                    let v =
                        if big_endian { u16::from_be_bytes([p[0], p[1]]) } else { u16::from_le_bytes([p[0], p[1]]) };
                    lut[usize::from(v)]
                })
                .collect();
            assert_eq!(apply_lut(&lut, &samples, 2, big_endian), expected);
        }
        let small: Vec<u8> = samples[..pixels].to_vec();
        let expected: Vec<u8> = small.iter().map(|&b| lut[usize::from(b)]).collect();
        assert_eq!(apply_lut(&lut, &small, 1, false), expected);
    }

    #[test]
    fn parameters() {
        let w = parse_window("40,400").unwrap();
        assert_eq!((w.center, w.width, w.function), (40.0, 400.0, VoiLutFunction::Linear));
        assert_eq!(parse_window("40,400,SIGMOID").unwrap().function, VoiLutFunction::Sigmoid);
        assert!(parse_window("40").is_err());
        assert!(parse_window("40,0").is_err());
        assert!(parse_window("a,b").is_err());
        assert!(parse_window("40,400,cubic").is_err());
        assert_eq!(parse_viewport("256,256").unwrap(), (256, 256));
        assert!(parse_viewport("0,10").is_err());
        assert!(parse_viewport("99999,10").is_err());
    }

    /// The header and native frame of the first slice of the demo CT.
    fn demo_ct_frame() -> (Header, Vec<u8>) {
        let spec = &crate::synth::demo_studies(0.02)[0];
        let bytes = &crate::synth::generate_study(spec)[0];
        let mut cursor = Cursor::new(bytes);
        let info = crate::inspect(&mut cursor).unwrap();
        let header = crate::inspect::read_header(&mut cursor).unwrap();
        let Some(crate::PixelLayout::Native { offset, frame_len, .. }) = info.layout else { panic!() };
        let frame = bytes[offset as usize..(offset + frame_len) as usize].to_vec();
        (header, frame)
    }

    #[test]
    fn the_lookup_table_agrees_with_dicom_pixeldata() {
        let (header, frame) = demo_ct_frame();
        for window in [None, Some(parse_window("-600,1500").unwrap()), Some(parse_window("40,400").unwrap())] {
            let fast = decode_frame(&header, FrameSource::Native(frame.clone()), window).unwrap().to_luma8();
            let reference =
                decode_with_pixeldata(&header, FrameSource::Native(frame.clone()), window).unwrap().to_luma8();
            let worst = fast.as_raw().iter().zip(reference.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "window {window:?}: differs by {worst}");
        }
    }

    #[test]
    fn renders_a_synthetic_ct_slice_with_and_without_window() {
        let (header, frame) = demo_ct_frame();
        let default = decode_frame(&header, FrameSource::Native(frame.clone()), None).unwrap();
        let lung = decode_frame(&header, FrameSource::Native(frame.clone()), Some(parse_window("-600,1500").unwrap()))
            .unwrap();
        assert_eq!((default.width(), default.height()), (512, 512));
        assert_ne!(default.to_luma8().into_raw(), lung.to_luma8().into_raw(), "the window changes the pixels");
        let options = RenderOptions { viewport: Some((128, 128)), ..Default::default() };
        let jpeg = render(&header, FrameSource::Native(frame.clone()), &options).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let decoded = dicom_pixeldata::image::load_from_memory(&jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (128, 128));
        let png = render(
            &header,
            FrameSource::Native(frame),
            &RenderOptions { format: ImageFormat::Png, ..Default::default() },
        )
        .unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
