//! What a DIMSE peer sends: PDUs (as the listener reads them, after its own length check),
//! command sets (decoded, then written back and read again to the same command), and C-FIND /
//! C-MOVE / C-GET identifiers turned into archive queries, in both little endian transfer
//! syntaxes.
#![no_main]

use cloudfilm_dicom::dimse::{Command, Model, find_request, qr_level, read_identifier, retrieval_query};
use libfuzzer_sys::fuzz_target;

const TRANSFER_SYNTAXES: [&str; 2] = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"];

fuzz_target!(init: {
    // The parsers' panics that the archive catches on purpose (as a malformed data set) are
    // not failures; libFuzzer's own hook would abort on them. One that escapes still fails.
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let _ = dicom_ul::pdu::read_pdu(data, dicom_ul::pdu::MAXIMUM_PDU_SIZE, false);
    if let Ok(command) = Command::decode(data) {
        let again = Command::decode(&command.encode()).expect("a command written reads back");
        assert_eq!(again, command, "a command set survives writing and reading");
        let _ = Command::response_to(&command, 0x8001, 0x0000).encode();
    }
    for ts in TRANSFER_SYNTAXES {
        let Ok(identifier) = read_identifier(data, ts) else { continue };
        for model in [Model::PatientRoot, Model::StudyRoot] {
            if let Ok(level) = qr_level(&identifier, model) {
                let _ = find_request(&identifier, level);
            }
            let _ = retrieval_query(&identifier, model);
        }
    }
});
