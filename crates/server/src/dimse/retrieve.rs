//! C-GET and C-MOVE (PS3.4 C.4.2, C.4.3): the matching instances go out as C-STORE
//! sub-operations, on the same association (C-GET) or to a registered destination (C-MOVE),
//! exactly as stored; pending responses count the sub-operations.

use super::association::{Association, AssociationError, send_fragments};
use super::negotiation::Context;
use super::scu;
use super::transport::{PduStream, TransportError};
use crate::archive::Archive;
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::AeTitle;
use cloudfilm_core::instance::InstanceRow;
use cloudfilm_dicom::dimse::{self, Command, Model, field, status};
use cloudfilm_dicom::transfer::{EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_LE, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_LE};
use dicom_ul::pdu::{PDataValueType, Pdu};
use std::sync::Arc;
use std::time::Duration;

/// The instances an identifier names through its unique keys.
async fn resolve(
    assoc: &Association,
    ctx: &Context,
    model: Model,
    identifier: &[u8],
) -> Result<Vec<InstanceRow>, String> {
    let obj = dimse::read_identifier(identifier, &ctx.transfer_syntax)?;
    let query = dimse::retrieval_query(&obj, model)?;
    let rows = assoc.archive.repo.query(assoc.negotiated.org.id, &query).await.map_err(|e| e.to_string())?;
    Ok(rows.into_iter().filter_map(|r| r.instance).collect())
}

/// Sub-operation counts.
#[derive(Default)]
struct Counts {
    remaining: u16,
    completed: u16,
    failed: u16,
    warning: u16,
}

impl Counts {
    fn record(&mut self, status: u16) {
        self.remaining = self.remaining.saturating_sub(1);
        match status {
            status::SUCCESS => self.completed += 1,
            s if s & 0xF000 == 0xB000 => self.warning += 1,
            _ => self.failed += 1,
        }
    }

    fn response(&self, request: &Command, rsp_field: u16, status: u16, last: bool) -> Command {
        let mut rsp = Command::response_to(request, rsp_field, status);
        rsp.remaining = (!last).then_some(self.remaining);
        rsp.completed = Some(self.completed);
        rsp.failed = Some(self.failed);
        rsp.warning = Some(self.warning);
        rsp
    }

    fn final_status(&self) -> u16 {
        match (self.completed + self.warning, self.failed) {
            (_, 0) if self.warning == 0 => status::SUCCESS,
            (0, _) => status::SUBOPERATIONS_FAILED,
            _ => status::WARNING_SUBOPERATIONS,
        }
    }
}

async fn refuse(
    assoc: &mut Association,
    context: u8,
    command: &Command,
    rsp_field: u16,
    status: u16,
    why: &str,
) -> Result<(), AssociationError> {
    let mut rsp = Command::response_to(command, rsp_field, status);
    rsp.error_comment = Some(why.chars().take(64).collect());
    assoc.send(context, &rsp, None).await
}

/// Audits a retrieval before anything leaves, one entry per study.
async fn audit(assoc: &Association, action: Action, rows: &[InstanceRow], detail: &str) -> bool {
    let mut studies: Vec<&str> = rows.iter().map(|r| r.study_uid.as_str()).collect();
    studies.dedup();
    let events = studies
        .iter()
        .map(|s| assoc.event(action, format!("study:{s}"), Outcome::Success).with_detail(detail.to_owned()))
        .collect();
    assoc.archive.repo.audit(events).await.is_ok()
}

pub async fn get(
    assoc: &mut Association,
    context: u8,
    ctx: &Context,
    model: Model,
    command: &Command,
    identifier: &[u8],
) -> Result<(), AssociationError> {
    let rows = match resolve(assoc, ctx, model, identifier).await {
        Ok(rows) => rows,
        Err(why) => {
            return refuse(assoc, context, command, field::C_GET_RSP, status::IDENTIFIER_DOES_NOT_MATCH, &why).await;
        }
    };
    if !audit(assoc, Action::InstancesAccessed, &rows, &format!("c-get: {} instance(s)", rows.len())).await {
        return refuse(assoc, context, command, field::C_GET_RSP, status::UNABLE_TO_PROCESS, "audit unavailable").await;
    }
    let mut counts = Counts { remaining: rows.len().min(u16::MAX as usize) as u16, ..Default::default() };
    let timeout = assoc.dimse_timeout();
    for row in rows {
        // A context for this class and syntax where the requestor took the SCP role.
        // The stored syntax where offered; otherwise one the archive can convert to.
        let scp = assoc.negotiated.scp_roles.contains(&row.sop_class_uid);
        let for_class = |c: &&Context| scp && c.abstract_syntax == row.sop_class_uid;
        let exact =
            assoc.negotiated.contexts.iter().find(|(_, c)| for_class(c) && c.transfer_syntax == row.transfer_syntax);
        let target = exact.map(|(id, _)| (*id, None)).or_else(|| {
            assoc
                .negotiated
                .contexts
                .iter()
                .filter(|(_, c)| for_class(c) && cloudfilm_dicom::transcode::can_produce(&c.transfer_syntax))
                .min_by_key(|(id, c)| (conversion_preference(&c.transfer_syntax), **id))
                .map(|(id, c)| (*id, Some(c.transfer_syntax.clone())))
        });
        let sub_status = match target {
            None => status::SOP_CLASS_NOT_SUPPORTED,
            Some((id, convert)) => {
                let message_id = assoc.message_id();
                let archive = assoc.archive.clone();
                match store_one(&mut assoc.stream, &archive, id, message_id, &row, None, convert, timeout).await {
                    Ok(s) => s,
                    Err(SubOpError::Cancelled) => {
                        let rsp = counts.response(command, field::C_GET_RSP, status::CANCEL, true);
                        return assoc.send(context, &rsp, None).await;
                    }
                    Err(SubOpError::Transport(e)) => return Err(e.into()),
                    Err(SubOpError::Source) => status::PROCESSING_FAILURE,
                }
            }
        };
        counts.record(sub_status);
        if counts.remaining > 0 {
            let rsp = counts.response(command, field::C_GET_RSP, status::PENDING, false);
            assoc.send(context, &rsp, None).await?;
        }
    }
    let rsp = counts.response(command, field::C_GET_RSP, counts.final_status(), true);
    assoc.send(context, &rsp, None).await
}

pub async fn move_to(
    assoc: &mut Association,
    context: u8,
    ctx: &Context,
    model: Model,
    command: &Command,
    identifier: &[u8],
) -> Result<(), AssociationError> {
    let destination = match command.move_destination.as_deref().map(AeTitle::parse) {
        Some(Ok(title)) => assoc.archive.repo.application_entity(&title).await.ok().flatten(),
        _ => None,
    };
    // Only a node of the same organization, with an address, is a destination.
    let destination =
        destination.filter(|d| d.org.id == assoc.negotiated.org.id && d.host.is_some() && d.port.is_some());
    let Some(destination) = destination else {
        return refuse(
            assoc,
            context,
            command,
            field::C_MOVE_RSP,
            status::MOVE_DESTINATION_UNKNOWN,
            "unknown move destination",
        )
        .await;
    };
    let rows = match resolve(assoc, ctx, model, identifier).await {
        Ok(rows) => rows,
        Err(why) => {
            return refuse(assoc, context, command, field::C_MOVE_RSP, status::IDENTIFIER_DOES_NOT_MATCH, &why).await;
        }
    };
    let detail = format!("c-move: {} instance(s) to {}", rows.len(), destination.title);
    if !audit(assoc, Action::Export, &rows, &detail).await {
        return refuse(assoc, context, command, field::C_MOVE_RSP, status::UNABLE_TO_PROCESS, "audit unavailable")
            .await;
    }
    let mut counts = Counts { remaining: rows.len().min(u16::MAX as usize) as u16, ..Default::default() };
    if rows.is_empty() {
        let rsp = counts.response(command, field::C_MOVE_RSP, status::SUCCESS, true);
        return assoc.send(context, &rsp, None).await;
    }
    // Each class in its stored syntaxes, and in the two uncompressed ones to convert to
    // where the destination takes no stored syntax.
    let mut wanted: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| {
            [r.transfer_syntax.as_str(), EXPLICIT_LE, IMPLICIT_LE].map(|ts| (r.sop_class_uid.clone(), ts.to_owned()))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    let config = &assoc.archive.config.dimse;
    let timeout = Duration::from_secs(config.network_timeout_secs);
    let host = destination.host.clone().expect("checked");
    let port = destination.port.expect("checked");
    let opened =
        scu::open(&host, port, &config.ae_title, destination.title.as_str(), &wanted, config.max_pdu_length, timeout)
            .await;
    let mut outgoing = match opened {
        Ok(outgoing) => outgoing,
        Err(why) => {
            tracing::warn!(request_id = %assoc.request_id, error = %why, "C-MOVE destination unreachable");
            return refuse(
                assoc,
                context,
                command,
                field::C_MOVE_RSP,
                status::SUBOPERATIONS_FAILED,
                "destination unreachable",
            )
            .await;
        }
    };
    let originator = Some((assoc.negotiated.calling_ae.as_str().to_owned(), command.message_id.unwrap_or(0)));
    let dimse_timeout = assoc.dimse_timeout();
    for row in rows {
        let accepted = |ts: &str| outgoing.contexts.get(&(row.sop_class_uid.clone(), ts.to_owned())).copied();
        let target = accepted(&row.transfer_syntax).map(|id| (id, None)).or_else(|| {
            [EXPLICIT_LE, IMPLICIT_LE].into_iter().find_map(|ts| accepted(ts).map(|id| (id, Some(ts.to_owned()))))
        });
        let sub_status = match target {
            None => status::SOP_CLASS_NOT_SUPPORTED,
            Some((id, convert)) => {
                let message_id = assoc.message_id();
                let archive = assoc.archive.clone();
                match store_one(
                    &mut outgoing.stream,
                    &archive,
                    id,
                    message_id,
                    &row,
                    originator.clone(),
                    convert,
                    dimse_timeout,
                )
                .await
                {
                    Ok(s) => s,
                    Err(SubOpError::Source) => status::PROCESSING_FAILURE,
                    Err(_) => {
                        // The destination went away: the rest fail.
                        counts.failed += counts.remaining;
                        counts.remaining = 0;
                        break;
                    }
                }
            }
        };
        counts.record(sub_status);
        if counts.remaining > 0 {
            let rsp = counts.response(command, field::C_MOVE_RSP, status::PENDING, false);
            assoc.send(context, &rsp, None).await?;
        }
    }
    outgoing.release(timeout).await;
    let rsp = counts.response(command, field::C_MOVE_RSP, counts.final_status(), true);
    assoc.send(context, &rsp, None).await
}

#[derive(Debug)]
enum SubOpError {
    Transport(TransportError),
    /// The stored instance could not be read (integrity, I/O).
    Source,
    Cancelled,
}

impl From<TransportError> for SubOpError {
    fn from(e: TransportError) -> Self {
        SubOpError::Transport(e)
    }
}

/// Sends one stored instance as a C-STORE request and waits for its response.
#[allow(clippy::too_many_arguments)] // one sub-operation: where, which instance, for whom, how
async fn store_one(
    stream: &mut PduStream,
    archive: &Arc<Archive>,
    context: u8,
    message_id: u16,
    row: &InstanceRow,
    originator: Option<(String, u16)>,
    convert: Option<String>,
    timeout: Duration,
) -> Result<u16, SubOpError> {
    let command = Command {
        field: field::C_STORE_RQ,
        message_id: Some(message_id),
        sop_class: Some(row.sop_class_uid.clone()),
        sop_instance: Some(row.sop_uid.clone()),
        priority: Some(0),
        has_dataset: true,
        move_originator_ae: originator.as_ref().map(|o| o.0.clone()),
        move_originator_id: originator.map(|o| o.1),
        ..Default::default()
    };
    let mut chunks = match convert {
        None => crate::retrieve::dataset_chunks(archive.clone(), row.clone()),
        Some(ts) => converted_dataset(archive.clone(), row.clone(), ts),
    };
    // The first chunk is read before the command goes out, so an unreadable instance fails
    // its sub-operation without a half-sent message.
    let mut next = match chunks.recv().await {
        Some(Ok(chunk)) => Some(chunk),
        _ => return Err(SubOpError::Source),
    };
    send_fragments(stream, context, PDataValueType::Command, &command.encode(), true).await?;
    while let Some(chunk) = next.take() {
        next = match chunks.recv().await {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(_)) => {
                // Nothing of a half-sent instance may be kept: abort the association.
                return Err(SubOpError::Transport(TransportError::Malformed(
                    "a stored instance failed its check".into(),
                )));
            }
            None => None,
        };
        send_fragments(stream, context, PDataValueType::Data, &chunk, next.is_none()).await?;
    }
    // Wait for the response; a C-CANCEL on the way stops after this one.
    let mut cancelled = false;
    loop {
        let response = recv_command(stream, timeout).await?;
        match response.field {
            field::C_STORE_RSP if response.responded_to == Some(message_id) => {
                return if cancelled {
                    Err(SubOpError::Cancelled)
                } else {
                    Ok(response.status.unwrap_or(status::PROCESSING_FAILURE))
                };
            }
            field::C_CANCEL_RQ => cancelled = true,
            _ => {}
        }
    }
}

/// Reads PDUs until a whole command set (without data set) has arrived.
async fn recv_command(stream: &mut PduStream, timeout: Duration) -> Result<Command, TransportError> {
    let mut bytes = Vec::new();
    loop {
        match stream.recv_within(timeout).await? {
            Pdu::PData { data } => {
                for value in data {
                    if value.value_type != PDataValueType::Command {
                        continue;
                    }
                    bytes.extend_from_slice(&value.data);
                    if bytes.len() > 64 * 1024 {
                        return Err(TransportError::Malformed("command set too large".into()));
                    }
                    if value.is_last {
                        return Command::decode(&bytes).map_err(|e| TransportError::Malformed(e.to_string()));
                    }
                }
            }
            Pdu::AbortRQ { .. } => return Err(TransportError::Closed),
            _ => return Err(TransportError::Malformed("unexpected PDU while waiting for a response".into())),
        }
    }
}

/// The whole instance converted to `ts` (bounded by the instance limit), as one chunk; an
/// instance that cannot be converted fails its sub-operation only.
fn converted_dataset(
    archive: Arc<Archive>,
    row: InstanceRow,
    ts: String,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, cloudfilm_store::StoreError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::task::spawn_blocking(move || {
        let limit = archive.config.limits.max_instance_bytes;
        let _permit = archive.blocking_decode_permit();
        let result = crate::retrieve::whole(&archive, &row)
            .map_err(|_| cloudfilm_store::StoreError::Integrity)
            .and_then(|bytes| {
                convert_bytes(&bytes, &ts, limit).map_err(|e| {
                    tracing::warn!(error = %e, "c-get: an instance could not be converted");
                    cloudfilm_store::StoreError::Integrity
                })
            });
        let _ = tx.blocking_send(result);
    });
    rx
}

/// Which syntax a converted instance goes out in when several are open: explicit VR little
/// endian keeps every VR, implicit loses them, the rest (big endian, deflate) come after.
fn conversion_preference(ts: &str) -> u8 {
    match ts {
        "1.2.840.10008.1.2.1" => 0,
        "1.2.840.10008.1.2" => 1,
        _ => 2,
    }
}

fn convert_bytes(bytes: &[u8], ts: &str, limit: u64) -> Result<Vec<u8>, cloudfilm_dicom::transcode::TranscodeError> {
    use cloudfilm_dicom::transcode as t;
    let mut obj = t::parse(bytes)?;
    t::transcode(&mut obj, ts, limit)?;
    t::to_dataset(&obj)
}
