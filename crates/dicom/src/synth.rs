//! Synthetic studies with realistic attributes, made by code (the demo, tests, benchmarks):
//! CT and MR series of 16-bit slices with smooth phantoms and mild noise, and a CR image.
//! The same seed always gives the same bytes.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::mem::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

/// Who the synthetic patient is. All values are fictitious.
#[derive(Debug, Clone)]
pub struct SynthPatient {
    /// DICOM person name, e.g. `ZHANG^SAN=张^三`.
    pub name: String,
    /// The hospital's patient id (medical record number).
    pub patient_id: String,
    /// An 18-digit resident ID number (stored in Other Patient IDs).
    pub resident_id: String,
    pub birth_date: String,
    pub sex: String,
    pub phone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    Ct,
    Mr,
    Cr,
}

/// One series to generate.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub modality: Modality,
    pub slices: u32,
    pub description: String,
}

/// One study to generate.
#[derive(Debug, Clone)]
pub struct StudySpec {
    pub seed: u64,
    pub patient: SynthPatient,
    pub accession_number: String,
    pub study_date: String,
    pub study_time: String,
    pub institution: String,
    pub description: String,
    pub series: Vec<SeriesSpec>,
}

/// SplitMix64: small, fast, deterministic (phantom noise, UIDs, test schedules).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A UID under the 2.25 (UUID-derived) root.
    fn uid(&mut self) -> String {
        let value = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        format!("2.25.{}", value >> 2)
    }
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

/// Generates every instance of the study as Part-10 bytes (Explicit VR Little Endian).
pub fn generate_study(spec: &StudySpec) -> Vec<Vec<u8>> {
    let mut rng = SplitMix64(spec.seed);
    let study_uid = rng.uid();
    let mut out = Vec::new();
    for (series_index, series) in spec.series.iter().enumerate() {
        let series_uid = rng.uid();
        let frame_of_reference = rng.uid();
        for slice in 0..series.slices {
            let sop_uid = rng.uid();
            let number = series_index as i32 + 1;
            let (obj, sop_class) = instance_object(
                spec,
                series,
                number,
                slice,
                &study_uid,
                &series_uid,
                &frame_of_reference,
                &sop_uid,
                &mut rng,
            );
            out.push(part10(obj, sop_class, &sop_uid));
        }
    }
    out
}

/// One generated image as a data set, and its SOP class.
#[allow(clippy::too_many_arguments)]
fn instance_object(
    spec: &StudySpec,
    series: &SeriesSpec,
    series_number: i32,
    slice: u32,
    study_uid: &str,
    series_uid: &str,
    frame_of_reference: &str,
    sop_uid: &str,
    rng: &mut SplitMix64,
) -> (InMemDicomObject, &'static str) {
    let (sop_class, modality, rows, cols, spacing, thickness, center, width, body_part) = match series.modality {
        Modality::Ct => (uids::CT_IMAGE_STORAGE, "CT", 512u16, 512u16, 0.7, 5.0, 40.0, 400.0, "CHEST"),
        Modality::Mr => (uids::MR_IMAGE_STORAGE, "MR", 256, 256, 0.9, 4.0, 600.0, 1200.0, "HEAD"),
        Modality::Cr => {
            (uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE, "CR", 2500, 2000, 0.15, 0.0, 2048.0, 4096.0, "CHEST")
        }
    };
    let mut obj = InMemDicomObject::new_empty();
    put(
        &mut obj,
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(["ORIGINAL", "PRIMARY", "AXIAL"].map(String::from).into_iter().collect()),
    );
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
    put_patient_and_study(&mut obj, spec, study_uid, modality);
    put(&mut obj, tags::SERIES_DATE, VR::DA, spec.study_date.as_str());
    put(&mut obj, tags::SERIES_DESCRIPTION, VR::LO, series.description.as_str());
    put(&mut obj, tags::BODY_PART_EXAMINED, VR::CS, body_part);
    if thickness > 0.0 {
        put(&mut obj, tags::SLICE_THICKNESS, VR::DS, format!("{thickness}"));
    }
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, format!("{series_number}"));
    put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, format!("{}", slice + 1));
    if series.modality != Modality::Cr {
        let z = f64::from(slice) * thickness;
        put(&mut obj, tags::IMAGE_POSITION_PATIENT, VR::DS, format!("-180\\-180\\{z:.1}"));
        put(&mut obj, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0");
        put(&mut obj, tags::FRAME_OF_REFERENCE_UID, VR::UI, frame_of_reference);
        put(&mut obj, tags::SLICE_LOCATION, VR::DS, format!("{z:.1}"));
    }
    put(&mut obj, tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put(&mut obj, tags::ROWS, VR::US, PrimitiveValue::from(rows));
    put(&mut obj, tags::COLUMNS, VR::US, PrimitiveValue::from(cols));
    put(&mut obj, tags::PIXEL_SPACING, VR::DS, format!("{spacing}\\{spacing}"));
    put(&mut obj, tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(&mut obj, tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16));
    put(&mut obj, tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16));
    put(&mut obj, tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16));
    put(&mut obj, tags::WINDOW_CENTER, VR::DS, format!("{center}"));
    put(&mut obj, tags::WINDOW_WIDTH, VR::DS, format!("{width}"));
    if series.modality == Modality::Ct {
        put(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "-1024");
        put(&mut obj, tags::RESCALE_SLOPE, VR::DS, "1");
    }
    let pixels = phantom(series.modality, rows, cols, slice, series.slices, rng);
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())));
    (obj, sop_class)
}

/// A multi-frame instance of a study: an MR cine of `frames` frames in one object
/// (Multi-frame Grayscale Word Secondary Capture), as the study's next series.
pub fn cine_instance(spec: &StudySpec, frames: u32) -> Vec<u8> {
    let study_uid = SplitMix64(spec.seed).uid();
    let mut rng = SplitMix64(spec.seed ^ 0xC1AE);
    let (series_uid, frame_of_reference, sop_uid) = (rng.uid(), rng.uid(), rng.uid());
    let series = SeriesSpec { modality: Modality::Mr, slices: frames, description: "CINE".into() };
    let number = spec.series.len() as i32 + 1;
    let (mut obj, _) =
        instance_object(spec, &series, number, 0, &study_uid, &series_uid, &frame_of_reference, &sop_uid, &mut rng);
    let (rows, cols) = (256, 256);
    let pixels: Vec<u16> = (0..frames).flat_map(|f| phantom(Modality::Mr, rows, cols, f, frames, &mut rng)).collect();
    let sop_class = uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE;
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, format!("{frames}"));
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())));
    part10(obj, sop_class, &sop_uid)
}

/// The patient and study attributes every instance of a study shares.
fn put_patient_and_study(obj: &mut InMemDicomObject, spec: &StudySpec, study_uid: &str, modality: &str) {
    let p = &spec.patient;
    put(obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(obj, tags::STUDY_DATE, VR::DA, spec.study_date.as_str());
    put(obj, tags::STUDY_TIME, VR::TM, spec.study_time.as_str());
    put(obj, tags::ACCESSION_NUMBER, VR::SH, spec.accession_number.as_str());
    put(obj, tags::MODALITY, VR::CS, modality);
    put(obj, tags::MANUFACTURER, VR::LO, "cloudfilm synthetic");
    put(obj, tags::INSTITUTION_NAME, VR::LO, spec.institution.as_str());
    put(obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "LI^MING=李^明");
    put(obj, tags::STUDY_DESCRIPTION, VR::LO, spec.description.as_str());
    put(obj, tags::PATIENT_NAME, VR::PN, p.name.as_str());
    put(obj, tags::PATIENT_ID, VR::LO, p.patient_id.as_str());
    put(obj, tags::PATIENT_BIRTH_DATE, VR::DA, p.birth_date.as_str());
    put(obj, tags::PATIENT_SEX, VR::CS, p.sex.as_str());
    // Other Patient IDs (retired, still common) and its sequence both carry the resident ID.
    put(obj, Tag(0x0010, 0x1000), VR::LO, p.resident_id.as_str());
    let mut id_item = InMemDicomObject::new_empty();
    put(&mut id_item, tags::PATIENT_ID, VR::LO, p.resident_id.as_str());
    put(&mut id_item, tags::TYPE_OF_PATIENT_ID, VR::CS, "TEXT");
    put(&mut id_item, tags::ISSUER_OF_PATIENT_ID, VR::LO, "CN-RESIDENT-ID");
    obj.put(DataElement::new(tags::OTHER_PATIENT_I_DS_SEQUENCE, VR::SQ, DataSetSequence::from(vec![id_item])));
    put(obj, tags::PATIENT_TELEPHONE_NUMBERS, VR::SH, p.phone.as_str());
    put(obj, tags::STUDY_INSTANCE_UID, VR::UI, study_uid);
    put(obj, tags::STUDY_ID, VR::SH, "1");
}

fn part10(obj: InMemDicomObject, sop_class: &str, sop_uid: &str) -> Vec<u8> {
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(sop_class)
                .media_storage_sop_instance_uid(sop_uid)
                .transfer_syntax(crate::transfer::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(crate::dimse::IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(crate::dimse::IMPLEMENTATION_VERSION_NAME),
        )
        .expect("a complete file meta");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// The hospital's report of a study generated by [`generate_study`] (same seed): a Basic Text
/// SR with findings and impression, and the same report as an Encapsulated PDF.
pub fn report_instances(spec: &StudySpec, findings: &str, impression: &str) -> Vec<Vec<u8>> {
    let study_uid = SplitMix64(spec.seed).uid();
    let mut rng = SplitMix64(spec.seed ^ 0x5245_504F_5254);
    let code = |meaning: &str| {
        let mut c = InMemDicomObject::new_empty();
        put(&mut c, tags::CODE_VALUE, VR::SH, "121071");
        put(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, "DCM");
        put(&mut c, tags::CODE_MEANING, VR::LO, meaning);
        DataSetSequence::from(vec![c])
    };
    let text_item = |name: &str, value: &str| {
        let mut item = InMemDicomObject::new_empty();
        put(&mut item, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
        put(&mut item, tags::VALUE_TYPE, VR::CS, "TEXT");
        item.put(DataElement::new(tags::CONCEPT_NAME_CODE_SEQUENCE, VR::SQ, code(name)));
        put(&mut item, tags::TEXT_VALUE, VR::UT, value);
        item
    };
    let mut sr = InMemDicomObject::new_empty();
    put_patient_and_study(&mut sr, spec, &study_uid, "SR");
    let sr_uid = rng.uid();
    put(&mut sr, tags::SOP_CLASS_UID, VR::UI, uids::BASIC_TEXT_SR_STORAGE);
    put(&mut sr, tags::SOP_INSTANCE_UID, VR::UI, sr_uid.as_str());
    put(&mut sr, tags::SERIES_INSTANCE_UID, VR::UI, rng.uid().as_str());
    put(&mut sr, tags::SERIES_NUMBER, VR::IS, "900");
    put(&mut sr, tags::SERIES_DESCRIPTION, VR::LO, "Report");
    put(&mut sr, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut sr, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put(&mut sr, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    put(&mut sr, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put(&mut sr, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    sr.put(DataElement::new(tags::CONCEPT_NAME_CODE_SEQUENCE, VR::SQ, code("影像报告 Imaging Report")));
    let content = vec![text_item("影像所见 Findings", findings), text_item("印象 Impression", impression)];
    sr.put(DataElement::new(tags::CONTENT_SEQUENCE, VR::SQ, DataSetSequence::from(content)));

    let mut pdf = InMemDicomObject::new_empty();
    put_patient_and_study(&mut pdf, spec, &study_uid, "DOC");
    let pdf_uid = rng.uid();
    put(&mut pdf, tags::SOP_CLASS_UID, VR::UI, uids::ENCAPSULATED_PDF_STORAGE);
    put(&mut pdf, tags::SOP_INSTANCE_UID, VR::UI, pdf_uid.as_str());
    put(&mut pdf, tags::SERIES_INSTANCE_UID, VR::UI, rng.uid().as_str());
    put(&mut pdf, tags::SERIES_NUMBER, VR::IS, "901");
    put(&mut pdf, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut pdf, tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT, VR::LO, "application/pdf");
    put(&mut pdf, tags::DOCUMENT_TITLE, VR::ST, "Imaging Report");
    let mut document = minimal_pdf(&format!("Findings: {}  Impression: {}", ascii(findings), ascii(impression)));
    if document.len() % 2 == 1 {
        document.push(0);
    }
    pdf.put(DataElement::new(tags::ENCAPSULATED_DOCUMENT, VR::OB, PrimitiveValue::from(document)));
    vec![part10(sr, uids::BASIC_TEXT_SR_STORAGE, &sr_uid), part10(pdf, uids::ENCAPSULATED_PDF_STORAGE, &pdf_uid)]
}

fn ascii(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii() && !matches!(c, '(' | ')' | '\\')).collect()
}

/// A one-page PDF showing one line of text (Helvetica), with a correct cross-reference table.
fn minimal_pdf(line: &str) -> Vec<u8> {
    let stream = format!("BT /F1 11 Tf 40 780 Td ({line}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    out
}

/// A smooth phantom: a body ellipse with organs of different densities, changing along the
/// series, plus mild noise. 12-bit values.
fn phantom(modality: Modality, rows: u16, cols: u16, slice: u32, slices: u32, rng: &mut SplitMix64) -> Vec<u16> {
    let (rows, cols) = (f64::from(rows), f64::from(cols));
    let t = if slices > 1 { f64::from(slice) / f64::from(slices - 1) } else { 0.5 };
    let (air, body, organ, bone) = match modality {
        Modality::Ct => (24.0, 1064.0, 1200.0, 2200.0),
        Modality::Mr => (10.0, 500.0, 900.0, 200.0),
        Modality::Cr => (3800.0, 1800.0, 2400.0, 600.0),
    };
    let mut out = Vec::with_capacity((rows * cols) as usize);
    for y in 0..rows as usize {
        for x in 0..cols as usize {
            let nx = (x as f64 / cols - 0.5) * 2.0;
            let ny = (y as f64 / rows - 0.5) * 2.0;
            let r_body = (nx / 0.85).powi(2) + (ny / (0.7 - 0.1 * t)).powi(2);
            let mut v = if r_body <= 1.0 { body - 60.0 * r_body } else { air };
            let lung_l = ((nx + 0.38) / 0.25).powi(2) + (ny / (0.4 + 0.1 * t)).powi(2);
            let lung_r = ((nx - 0.38) / 0.25).powi(2) + (ny / (0.4 + 0.1 * t)).powi(2);
            if lung_l <= 1.0 || lung_r <= 1.0 {
                v = organ * 0.3 + 200.0 * t;
            }
            let heart = ((nx - 0.05) / (0.18 + 0.05 * t)).powi(2) + ((ny - 0.05) / 0.2).powi(2);
            if heart <= 1.0 {
                v = organ;
            }
            let spine = (nx / 0.08).powi(2) + ((ny - 0.5) / 0.08).powi(2);
            if spine <= 1.0 {
                v = bone;
            }
            let noise = (rng.next_u64() % 21) as f64 - 10.0;
            out.push((v + noise).clamp(0.0, 4095.0) as u16);
        }
    }
    out
}

/// The demo patient: fictitious, with a valid resident ID number and a mobile phone number.
pub fn demo_patient() -> SynthPatient {
    SynthPatient {
        name: "ZHANG^SAN=张^三".into(),
        patient_id: "MRN0001234".into(),
        resident_id: "11010519491231002X".into(),
        birth_date: "19491231".into(),
        sex: "F".into(),
        phone: "13800138000".into(),
    }
}

/// The files of a demo study: its images, for the chest CT the hospital's report (SR + PDF),
/// for the brain MR a multi-frame cine.
pub fn demo_files(spec: &StudySpec) -> Vec<Vec<u8>> {
    let mut files = generate_study(spec);
    if spec.accession_number == "MR20261015002" {
        files.push(cine_instance(spec, 8));
    }
    if spec.accession_number == "CT20261101001" {
        files.extend(report_instances(
            spec,
            "双肺纹理清晰，未见明确结节及实变影。纵隔居中，心影大小正常。 Both lungs are clear without nodules or consolidation; mediastinum central, normal heart size.",
            "胸部 CT 增强扫描未见明显异常。 No abnormality on contrast-enhanced chest CT.",
        ));
    }
    files
}

/// The demo studies: a CT, an MR and a CR of the demo patient.
pub fn demo_studies(scale: f64) -> Vec<StudySpec> {
    let slices = |n: f64| ((n * scale).round() as u32).max(1);
    let patient = demo_patient();
    let base = |seed: u64, acc: &str, date: &str, desc: &str, series: Vec<SeriesSpec>| StudySpec {
        seed,
        patient: patient.clone(),
        accession_number: acc.into(),
        study_date: date.into(),
        study_time: "093015".into(),
        institution: "Cloudfilm Demo Hospital".into(),
        description: desc.into(),
        series,
    };
    vec![
        base(
            1,
            "CT20261101001",
            "20261101",
            "CT CHEST WITH CONTRAST",
            vec![SeriesSpec { modality: Modality::Ct, slices: slices(60.0), description: "AXIAL 5mm".into() }],
        ),
        base(
            2,
            "MR20261015002",
            "20261015",
            "MR BRAIN",
            vec![
                SeriesSpec { modality: Modality::Mr, slices: slices(24.0), description: "T1 AXIAL".into() },
                SeriesSpec { modality: Modality::Mr, slices: slices(24.0), description: "T2 AXIAL".into() },
            ],
        ),
        base(
            3,
            "CR20260920003",
            "20260920",
            "CHEST PA",
            vec![SeriesSpec { modality: Modality::Cr, slices: 1, description: "PA".into() }],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_instances_inspect_cleanly_and_deterministically() {
        let spec = &demo_studies(0.05)[1];
        let a = generate_study(spec);
        assert_eq!(a, generate_study(spec));
        assert_eq!(a.len(), 2);
        let info = crate::inspect(&mut std::io::Cursor::new(&a[0])).unwrap();
        assert_eq!(info.patient.name.as_deref(), Some("ZHANG^SAN=张^三"));
        assert_eq!(info.patient.other_ids, vec!["11010519491231002X"]);
        assert_eq!(info.patient.telephone_numbers, vec!["13800138000"]);
        assert_eq!(info.series.modality.as_deref(), Some("MR"));
        assert!(matches!(info.layout, Some(crate::PixelLayout::Native { frame_len: 131072, frames: 1, .. })));
        assert!(
            cloudfilm_core::ResidentId::parse(
                &demo_patient().resident_id,
                chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
            )
            .is_ok()
        );
    }
}
