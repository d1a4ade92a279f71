//! What a download package is made of, from hostile stored headers: the WADO-RS metadata
//! (DICOM JSON) of each instance, and the DICOMDIR of the file-set, which must read back as
//! DICOM; the package's zip (stored entries, as the server writes them) must read back whole.
//! Inputs are split into instances at the marker `#NEXT#`.
#![no_main]

use cloudfilm_dicom::dicomdir::{DirectoryEntry, build};
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};

const MARKER: &[u8] = b"#NEXT#";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(MARKER.len()).position(|w| w == MARKER) {
        parts.push(&rest[..at]);
        rest = &rest[at + MARKER.len()..];
    }
    parts.push(rest);
    parts
}

fuzz_target!(init: {
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let mut headers = Vec::new();
    for instance in split(data).into_iter().take(8) {
        let cursor = &mut std::io::Cursor::new(instance);
        if cloudfilm_dicom::inspect::inspect_bounded(cursor, true, 16 << 20).is_err() {
            continue;
        }
        let Ok(header) = cloudfilm_dicom::inspect::read_header(&mut std::io::Cursor::new(instance)) else { continue };
        let json = cloudfilm_dicom::json::metadata_json(&header, true, "https://archive/studies/1/series/2/instances/3");
        let text = serde_json::to_string(&json).expect("a JSON value serializes");
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "the metadata is valid JSON");
        headers.push((instance, header));
    }
    if headers.is_empty() {
        return;
    }
    let entries: Vec<DirectoryEntry> = headers
        .iter()
        .enumerate()
        .map(|(i, (_, header))| DirectoryEntry { file_id: vec!["DICOM".into(), format!("I{i:05}")], header })
        .collect();
    let Ok(directory) = build(&entries, "CLOUDFILM") else { return };
    dicom_object::from_reader(&mut &directory[128..]).expect("a DICOMDIR built reads back as DICOM");

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (i, (bytes, _)) in headers.iter().enumerate() {
        zip.start_file(format!("DICOM/I{i:05}"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file("DICOMDIR", options).unwrap();
    zip.write_all(&directory).unwrap();
    let written = zip.finish().unwrap().into_inner();
    let mut read = zip::ZipArchive::new(std::io::Cursor::new(written)).expect("the package reads back");
    let mut back = Vec::new();
    read.by_name("DICOMDIR").unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, directory, "the DICOMDIR comes back from the zip unchanged");
});
