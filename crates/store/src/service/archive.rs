//! The rules of the archive's writes, whatever the database: organizations, keys and DICOM
//! nodes, and the indexing of instances (first one kept on a conflict, S4) with one import
//! entry per study.

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::sealed::Sealer;
use crate::tx::Tx;
use cloudfilm_audit::AuditEvent;
use cloudfilm_core::OrgId;
use cloudfilm_core::{AeTitle, OrgCode, OrgSwitches};

pub async fn create_org(tx: &mut dyn Tx, code: &OrgCode, name: &str, switches: OrgSwitches, at: &str) -> Result<Org> {
    if !tx.insert_org(code, name, switches, at).await? {
        return Err(StoreError::AlreadyExists(format!("organization {code}")));
    }
    tx.org_by_code(code).await?.ok_or(StoreError::NotFound)
}

pub async fn set_org_switches(
    tx: &mut dyn Tx,
    code: &OrgCode,
    cloud_film: Option<bool>,
    download: Option<bool>,
    at: &str,
) -> Result<Org> {
    if !tx.set_org_switches(code, cloud_film, download, at).await? {
        return Err(StoreError::NotFound);
    }
    tx.org_by_code(code).await?.ok_or(StoreError::NotFound)
}

pub async fn revoke_api_key(tx: &mut dyn Tx, key_id: &str, at: &str) -> Result<()> {
    if tx.revoke_api_key(key_id, at).await? { Ok(()) } else { Err(StoreError::NotFound) }
}

pub async fn add_ae(
    tx: &mut dyn Tx,
    org_id: OrgId,
    title: &AeTitle,
    host: Option<&str>,
    port: Option<u16>,
    certificate: Option<&str>,
    at: &str,
) -> Result<()> {
    if tx.insert_ae(org_id, title, host, port, certificate, at).await? {
        Ok(())
    } else {
        Err(StoreError::AlreadyExists(format!("AE title {title}")))
    }
}

pub async fn remove_ae(tx: &mut dyn Tx, title: &AeTitle) -> Result<()> {
    if tx.delete_ae(title).await? { Ok(()) } else { Err(StoreError::NotFound) }
}

/// Indexes instances whose blobs are durable, with one import entry per study touched.
pub async fn store_instances(
    tx: &mut dyn Tx,
    sealer: &Sealer,
    instances: &[NewInstance],
    context: &ImportContext,
    at: &str,
) -> Result<(Vec<StoreOutcome>, Vec<AuditEvent>)> {
    let mut keys: Vec<Vec<u8>> = instances
        .iter()
        .flat_map(|i| {
            let org = i.org_id.0.to_be_bytes();
            [
                [&b"study\0"[..], &org, i.info.study_uid.as_bytes()].concat(),
                [&b"sop\0"[..], &org, i.info.sop_instance_uid.as_bytes()].concat(),
            ]
        })
        .collect();
    keys.sort();
    keys.dedup();
    tx.lock(&mut keys).await?;
    let mut outcomes = Vec::with_capacity(instances.len());
    for instance in instances {
        outcomes.push(store_instance(tx, sealer, instance, at).await?);
    }
    let events = import_events(instances, &outcomes, context);
    Ok((outcomes, events))
}

async fn store_instance(tx: &mut dyn Tx, sealer: &Sealer, new: &NewInstance, at: &str) -> Result<StoreOutcome> {
    let info = &new.info;
    if let Some(sha) = tx.instance_digest(new.org_id, &info.sop_instance_uid).await? {
        return Ok(if sha == new.sha256 { StoreOutcome::Duplicate } else { StoreOutcome::Conflict });
    }
    let study_pk = match tx.study_pk(new.org_id, &info.study_uid).await? {
        Some(pk) => pk,
        None => {
            let sealed = sealer.seal_patient(&info.patient, &info.study.referring_physician_name);
            let pk = tx.insert_study(new, &sealed, &cloudfilm_crypto::random::hex_id(), at).await?;
            for (kind, token) in sealer.patient_tokens(&info.patient) {
                tx.insert_study_token(kind as i64, &token, new, pk).await?;
            }
            pk
        }
    };
    let (series_pk, new_series) = match tx.series_pk(study_pk, &info.series_uid).await? {
        Some(pk) => (pk, false),
        None => (tx.insert_series(study_pk, new).await?, true),
    };
    tx.insert_instance(new, study_pk, series_pk, at).await?;
    tx.count_instance(study_pk, series_pk, new_series).await?;
    if let (true, Some(modality)) = (new_series, &info.series.modality) {
        let current = tx.study_modalities(study_pk).await?;
        if !current.split('\\').any(|m| m == modality) {
            let updated = if current.is_empty() { modality.clone() } else { format!("{current}\\{modality}") };
            tx.set_study_modalities(study_pk, &updated).await?;
        }
    }
    Ok(StoreOutcome::Stored)
}

/// One import entry per study: how many instances were stored, already there, in conflict
/// (kept the first, S4) or refused.
fn import_events(instances: &[NewInstance], outcomes: &[StoreOutcome], context: &ImportContext) -> Vec<AuditEvent> {
    use cloudfilm_audit::{Action, Outcome};
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Tally {
        stored: usize,
        duplicate: usize,
        conflict: usize,
        rejected: Vec<String>,
    }
    let mut by_study: BTreeMap<String, Tally> = BTreeMap::new();
    for (instance, outcome) in instances.iter().zip(outcomes) {
        let tally = by_study.entry(instance.info.study_uid.clone()).or_default();
        match outcome {
            StoreOutcome::Stored => tally.stored += 1,
            StoreOutcome::Duplicate => tally.duplicate += 1,
            StoreOutcome::Conflict => tally.conflict += 1,
        }
    }
    for (study, reason) in &context.rejected {
        by_study.entry(study.clone().unwrap_or_else(|| "unknown".into())).or_default().rejected.push(reason.clone());
    }
    by_study
        .into_iter()
        .map(|(study, t)| {
            let failed = t.conflict + t.rejected.len();
            let detail = format!(
                "{}: stored {}, duplicate {}, conflict {}, rejected {}",
                context.interface,
                t.stored,
                t.duplicate,
                t.conflict,
                t.rejected.len()
            );
            let mut reasons: Vec<String> = t.rejected.clone();
            if t.conflict > 0 {
                reasons.push("same SOP Instance UID with different content: the first was kept".into());
            }
            reasons.dedup();
            let outcome = match (t.stored + t.duplicate, failed) {
                (_, 0) => Outcome::Success,
                (0, _) => Outcome::Failure(reasons.join("; ")),
                _ => Outcome::Partial(reasons.join("; ")),
            };
            AuditEvent::new(Action::Import, context.actor.clone(), format!("study:{study}"), outcome)
                .from_client(context.client_ip.clone(), context.request_id.clone())
                .with_detail(detail)
        })
        .collect()
}
