//! A STOW-RS request as the server reads it: the Content-Type (the input's first line) must
//! give a boundary, then the body (the rest, in chunks whose size the input's first byte sets)
//! is split by multer with the server's kind of limits, and every `application/dicom` part goes
//! through the bounded inspection every uploaded instance gets.
#![no_main]

use bytes::Bytes;
use cloudfilm_core::stow_content_type::stow_boundary;
use libfuzzer_sys::fuzz_target;

const MAX_INFLATED: u64 = 16 << 20;

fuzz_target!(init: {
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let Some(newline) = data.iter().position(|b| *b == b'\n') else { return };
    let (head, body) = (&data[..newline], &data[newline + 1..]);
    let Ok(content_type) = std::str::from_utf8(head) else { return };
    let Ok(boundary) = stow_boundary(content_type.trim_end_matches('\r')) else { return };
    let chunk = usize::from(body.first().copied().unwrap_or(1)).max(1);
    let chunks: Vec<Result<Bytes, std::io::Error>> = body.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(4 << 20).per_field(2 << 20));
    let mut multipart = multer::Multipart::with_constraints(futures::stream::iter(chunks), boundary, constraints);
    futures::executor::block_on(async {
        let mut parts = 0;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            parts += 1;
            if parts > 64 {
                return;
            }
            let dicom = field.content_type().is_none_or(|m| m.essence_str().eq_ignore_ascii_case("application/dicom"));
            let mut instance = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(bytes)) => instance.extend_from_slice(&bytes),
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            if dicom {
                let cursor = &mut std::io::Cursor::new(&instance);
                let _ = cloudfilm_dicom::inspect::inspect_bounded(cursor, true, MAX_INFLATED);
            }
        }
    });
});
