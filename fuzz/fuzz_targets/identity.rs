//! What patients type: phone numbers and resident ID numbers (GB 11643), parsed and masked.
#![no_main]

use cloudfilm_core::phone::PhoneNumber;
use cloudfilm_core::resident_id::ResidentId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).expect("a date");
    if let Ok(phone) = PhoneNumber::parse(text) {
        let _ = cloudfilm_core::masking::mask_phone(phone.as_str());
    }
    let _ = ResidentId::parse(text, today);
    let _ = cloudfilm_core::masking::mask_phone(text);
    let _ = cloudfilm_core::masking::mask_name(text);
    let _ = cloudfilm_core::masking::mask_id_number(text);
});
