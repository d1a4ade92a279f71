//! A stored or uploaded Part-10 file: the bounded inspection every STOW-RS part and C-STORE
//! goes through, then, for what passed it (as only what passed it is ever stored), the whole
//! parse the renderer and the metadata use.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// What a deflated data set may inflate to here (the archive's default is 1 GiB).
const MAX_INFLATED: u64 = 16 << 20;

fuzz_target!(init: {
    // The parsers' panics that the archive catches on purpose (as a malformed data set) are
    // not failures; libFuzzer's own hook would abort on them. One that escapes still fails.
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    if cloudfilm_dicom::inspect::inspect_bounded(&mut std::io::Cursor::new(data), true, MAX_INFLATED).is_err() {
        return;
    }
    if let Ok(object) = cloudfilm_dicom::inspect::read_whole(data, MAX_INFLATED) {
        let _ = cloudfilm_dicom::inspect::describe(&object);
    }
});
