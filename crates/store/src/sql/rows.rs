//! Mapping rows to records.

use super::DbRow;
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::sealed::Sealer;
use cloudfilm_core::instance::{InstanceAttrs, PatientAttrs, SeriesAttrs, StudyAttrs};
use cloudfilm_core::{OrgCode, OrgSwitches};
use sqlx::Row;

pub const ORG_SELECT_BY_CODE: &str =
    "SELECT id, code, name, cloud_film_enabled, download_enabled FROM organizations WHERE code = $1";

pub fn org(r: &DbRow) -> Result<Org> {
    let code: String = r.try_get("code")?;
    Ok(Org {
        id: r.try_get("id")?,
        code: OrgCode::parse(&code).map_err(|e| StoreError::Database(e.to_string()))?,
        name: r.try_get("name")?,
        switches: OrgSwitches {
            cloud_film_enabled: r.try_get("cloud_film_enabled")?,
            download_enabled: r.try_get("download_enabled")?,
        },
    })
}

pub fn application_entity(r: &DbRow) -> Result<AeRecord> {
    let title: String = r.try_get("ae_title")?;
    Ok(AeRecord {
        title: cloudfilm_core::AeTitle::parse(&title).map_err(|e| StoreError::Database(e.to_string()))?,
        org: org(r)?,
        host: r.try_get("host")?,
        port: r.try_get::<Option<i64>, _>("port")?.map(|p| p as u16),
        certificate: r.try_get("certificate_sha256")?,
    })
}

/// The study columns every query selects, prefixed `s.`.
pub const STUDY_COLUMNS: &str = "s.pk AS s_pk, s.study_uid, s.study_date, s.study_time, s.accession_number, \
    s.study_description, s.study_id, s.institution_name, s.patient_sex, s.patient_name, s.patient_id, \
    s.patient_birth_date, s.other_patient_ids, s.patient_phones, s.referring_physician, s.modalities, \
    s.num_series, s.num_instances";

pub const SERIES_COLUMNS: &str = "se.series_uid, se.modality, se.series_number, se.series_description, \
    se.body_part, se.series_date, se.series_time, se.num_instances AS se_num_instances";

pub const INSTANCE_COLUMNS: &str = "i.sop_uid, i.sop_class_uid, i.instance_number, i.number_of_frames, \
    i.rows, i.columns, i.bits_allocated, i.samples_per_pixel, i.transfer_syntax, i.size, i.sha256, \
    i.blob_id, i.pixel_layout";

fn split(v: Option<String>) -> Vec<String> {
    v.map(|s| s.split('\\').filter(|x| !x.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

pub fn study(r: &DbRow, sealer: &Sealer) -> Result<StudyRow> {
    let sealed = |col: &str| -> Result<Option<Vec<u8>>> { Ok(r.try_get(col)?) };
    let modalities: String = r.try_get("modalities")?;
    Ok(StudyRow {
        study_uid: r.try_get("study_uid")?,
        attrs: StudyAttrs {
            date: r.try_get("study_date")?,
            time: r.try_get("study_time")?,
            accession_number: r.try_get("accession_number")?,
            description: r.try_get("study_description")?,
            study_id: r.try_get("study_id")?,
            institution_name: r.try_get("institution_name")?,
            referring_physician_name: sealer.open("referring_physician", sealed("referring_physician")?)?,
        },
        patient: PatientAttrs {
            id: sealer.open("patient_id", sealed("patient_id")?)?,
            name: sealer.open("patient_name", sealed("patient_name")?)?,
            birth_date: sealer.open("patient_birth_date", sealed("patient_birth_date")?)?,
            sex: r.try_get("patient_sex")?,
            other_ids: split(sealer.open("other_patient_ids", sealed("other_patient_ids")?)?),
            telephone_numbers: split(sealer.open("patient_phones", sealed("patient_phones")?)?),
        },
        modalities: modalities.split('\\').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
        num_series: r.try_get("num_series")?,
        num_instances: r.try_get("num_instances")?,
    })
}

pub fn series(r: &DbRow) -> Result<SeriesRow> {
    Ok(SeriesRow {
        series_uid: r.try_get("series_uid")?,
        attrs: SeriesAttrs {
            modality: r.try_get("modality")?,
            number: r.try_get("series_number")?,
            description: r.try_get("series_description")?,
            body_part: r.try_get("body_part")?,
            date: r.try_get("series_date")?,
            time: r.try_get("series_time")?,
        },
        num_instances: r.try_get("se_num_instances")?,
    })
}

pub fn instance(r: &DbRow) -> Result<InstanceRow> {
    let layout: String = r.try_get("pixel_layout")?;
    let small = |col: &str| -> Result<Option<u16>> { Ok(r.try_get::<Option<i64>, _>(col)?.map(|v| v as u16)) };
    Ok(InstanceRow {
        study_uid: r.try_get("study_uid")?,
        series_uid: r.try_get("series_uid")?,
        sop_uid: r.try_get("sop_uid")?,
        sop_class_uid: r.try_get("sop_class_uid")?,
        attrs: InstanceAttrs {
            number: r.try_get("instance_number")?,
            frames: r.try_get::<i64, _>("number_of_frames")? as u32,
            rows: small("rows")?,
            columns: small("columns")?,
            bits_allocated: small("bits_allocated")?,
            samples_per_pixel: small("samples_per_pixel")?,
        },
        transfer_syntax: r.try_get("transfer_syntax")?,
        size: r.try_get::<i64, _>("size")? as u64,
        sha256: r.try_get("sha256")?,
        blob_id: r.try_get("blob_id")?,
        layout: serde_json::from_str(&layout).map_err(|e| StoreError::Database(e.to_string()))?,
    })
}
