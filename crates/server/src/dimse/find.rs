//! C-FIND (PS3.4 C.4.1) with the Patient Root and Study Root models at every level.

use super::association::{Association, AssociationError};
use super::negotiation::Context;
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::instance::ResultRow;
use cloudfilm_dicom::dimse::{self, Command, FindRequest, Model, PatientCounts, QrLevel, field, status};
use std::collections::BTreeMap;

pub async fn run(
    assoc: &mut Association,
    context: u8,
    ctx: &Context,
    model: Model,
    command: &Command,
    identifier: &[u8],
) -> Result<(), AssociationError> {
    let respond = |status| Command::response_to(command, field::C_FIND_RSP, status);
    let request = dimse::read_identifier(identifier, &ctx.transfer_syntax)
        .and_then(|obj| dimse::qr_level(&obj, model).and_then(|level| dimse::find_request(&obj, level)));
    let request = match request {
        Ok(request) => request,
        Err(reason) => {
            let mut rsp = respond(status::IDENTIFIER_DOES_NOT_MATCH);
            rsp.error_comment = Some(reason.chars().take(64).collect());
            return assoc.send(context, &rsp, None).await;
        }
    };
    let rows = match assoc.archive.repo.query(assoc.negotiated.org.id, &request.query).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(request_id = %assoc.request_id, error = %e, "C-FIND failed");
            return assoc.send(context, &respond(status::UNABLE_TO_PROCESS), None).await;
        }
    };
    let responses = match request.level {
        QrLevel::Patient => by_patient(&rows, &request, &assoc.archive.config.dimse.ae_title),
        _ => {
            rows.iter().map(|r| dimse::find_response(r, &request, &assoc.archive.config.dimse.ae_title, None)).collect()
        }
    };
    let matched: Vec<&str> = request.query.filters.iter().map(|f| f.attr.keyword()).collect();
    let event = assoc.event(Action::Query, format!("org:{}", assoc.negotiated.org.code), Outcome::Success).with_detail(
        format!("c-find {:?} level: {} result(s); matched on [{}]", request.level, responses.len(), matched.join(", ")),
    );
    if assoc.archive.repo.audit(vec![event]).await.is_err() {
        return assoc.send(context, &respond(status::UNABLE_TO_PROCESS), None).await;
    }
    for response in responses {
        match dimse::write_dataset_utf8(&response, &ctx.transfer_syntax) {
            Ok(bytes) => assoc.send(context, &respond(status::PENDING), Some(&bytes)).await?,
            Err(e) => tracing::warn!(error = %e, "a C-FIND response could not be encoded"),
        }
    }
    assoc.send(context, &respond(status::SUCCESS), None).await
}

/// PATIENT level: one response per patient (by Patient ID), with counts over their studies.
fn by_patient(rows: &[ResultRow], request: &FindRequest, ae: &str) -> Vec<dicom_object::mem::InMemDicomObject> {
    let mut patients: BTreeMap<String, (usize, PatientCounts)> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let key = row.study.patient.id.clone().unwrap_or_default();
        let entry = patients.entry(key).or_insert((i, PatientCounts { studies: 0, series: 0, instances: 0 }));
        entry.1.studies += 1;
        entry.1.series += row.study.num_series;
        entry.1.instances += row.study.num_instances;
    }
    patients.values().map(|(i, counts)| dimse::find_response(&rows[*i], request, ae, Some(counts))).collect()
}
