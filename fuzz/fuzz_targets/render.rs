//! Pixel decoding and rendering of a parsed instance's first frame, within the same geometry
//! limit the server checks before it decodes (`limits.max_render_pixels`, smaller here). A
//! decoder that panics is caught by the renderer (`decode_guarded`) and answered as a frame
//! that cannot be decoded, so panics caught there are not failures here; one that escapes is.
#![no_main]

use cloudfilm_dicom::render::{FrameSource, ImageFormat, RenderOptions, render};
use libfuzzer_sys::fuzz_target;

const MAX_PIXELS: u64 = 1 << 22;

fuzz_target!(init: {
    // libFuzzer's hook aborts on every panic, caught or not: the renderer catches decoder
    // panics on purpose. A panic that escapes still fails (libfuzzer-sys aborts on it).
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let Ok(info) = cloudfilm_dicom::inspect::inspect_bounded(&mut std::io::Cursor::new(data), true, 16 << 20) else {
        return;
    };
    let geometry = &info.instance;
    let pixels = u64::from(geometry.rows.unwrap_or(0))
        * u64::from(geometry.columns.unwrap_or(0))
        * u64::from(geometry.samples_per_pixel.unwrap_or(1));
    let bytes = pixels * u64::from(geometry.bits_allocated.unwrap_or(8)).div_ceil(8).max(1);
    if pixels > MAX_PIXELS || bytes > 2 * MAX_PIXELS {
        return;
    }
    let Ok(header) = cloudfilm_dicom::inspect::read_whole(data, 16 << 20) else { return };
    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let options = RenderOptions { format, viewport: Some((64, 64)), ..Default::default() };
        let _ = render(&header, FrameSource::Whole(Box::new(header.clone()), 0), &options);
    }
});
