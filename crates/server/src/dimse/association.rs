//! One association: PDUs in, DIMSE messages assembled, services dispatched, responses out.
//! A peer that stalls, aborts or sends garbage loses only its own association; a partly
//! received instance leaves nothing behind.

use super::negotiation::{Context, Negotiated};
use super::transport::{PduStream, TransportError};
use super::{find, retrieve};
use crate::archive::Archive;
use crate::ingest::{self, Disposition, Spool};
use cloudfilm_dicom::dimse::{Command, SopClassRole, field, status};
use cloudfilm_store::ImportContext;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest command set, and largest identifier (C-FIND/GET/MOVE), accepted.
const MAX_COMMAND: usize = 64 * 1024;
const MAX_IDENTIFIER: usize = 1024 * 1024;

pub struct Association {
    pub stream: PduStream,
    pub archive: Arc<Archive>,
    pub negotiated: Negotiated,
    pub peer: IpAddr,
    pub request_id: String,
    next_message_id: u16,
}

/// What is being received.
enum Receiving {
    Idle,
    Command { context: u8, bytes: Vec<u8> },
    Data { context: u8, command: Command, sink: Sink },
}

enum Sink {
    Instance(Box<Spool>),
    Identifier(Vec<u8>),
    /// A data set that will be refused (unsupported SOP class): read and dropped.
    Discard,
    /// An instance that could not be spooled (out of space, too large): read, dropped,
    /// answered out of resources and audited.
    Refused(&'static str),
}

/// Why a spool refused an instance, for the audit entry.
fn refusal(e: &ingest::SpoolError) -> &'static str {
    match e {
        ingest::SpoolError::TooLarge(_) => "the instance is larger than the configured limit",
        ingest::SpoolError::Store(s) => s.write_refusal().unwrap_or("the archive could not write the instance"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AssociationError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl Association {
    pub fn new(stream: PduStream, archive: Arc<Archive>, negotiated: Negotiated, peer: IpAddr) -> Association {
        Association {
            stream,
            archive,
            negotiated,
            peer,
            request_id: cloudfilm_crypto::random::hex_id()[..16].to_owned(),
            next_message_id: 1,
        }
    }

    pub fn actor(&self) -> String {
        format!("org:{}/ae:{}", self.negotiated.org.code, self.negotiated.calling_ae)
    }

    pub fn event(
        &self,
        action: cloudfilm_audit::Action,
        object: impl Into<String>,
        outcome: cloudfilm_audit::Outcome,
    ) -> cloudfilm_audit::AuditEvent {
        cloudfilm_audit::AuditEvent::new(action, self.actor(), object, outcome)
            .from_client(Some(self.peer.to_string()), Some(self.request_id.clone()))
    }

    pub fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    pub fn dimse_timeout(&self) -> Duration {
        Duration::from_secs(self.archive.config.dimse.dimse_timeout_secs)
    }

    /// Serves messages until release, abort, timeout or a protocol error.
    pub async fn run(mut self) {
        let mut receiving = Receiving::Idle;
        loop {
            let pdu = match self.stream.recv_within(self.dimse_timeout()).await {
                Ok(pdu) => pdu,
                Err(TransportError::Closed) => {
                    tracing::debug!(request_id = %self.request_id, "the peer closed the connection");
                    return;
                }
                Err(e) => {
                    tracing::warn!(request_id = %self.request_id, error = %e, "association aborted");
                    self.stream.abort().await;
                    return;
                }
            };
            match pdu {
                Pdu::PData { data } => {
                    for value in data {
                        match self.on_value(value, receiving).await {
                            Ok(next) => receiving = next,
                            Err(e) => {
                                tracing::warn!(request_id = %self.request_id, error = %e, "association aborted");
                                self.stream.abort().await;
                                return;
                            }
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    let _ = self.stream.send(&Pdu::ReleaseRP).await;
                    self.stream.close().await;
                    return;
                }
                Pdu::AbortRQ { .. } => {
                    tracing::debug!(request_id = %self.request_id, "the peer aborted the association");
                    return;
                }
                other => {
                    tracing::warn!(request_id = %self.request_id, pdu = ?std::mem::discriminant(&other), "unexpected PDU");
                    self.stream.abort().await;
                    return;
                }
            }
        }
    }

    fn context(&self, id: u8) -> Result<Context, AssociationError> {
        self.negotiated
            .contexts
            .get(&id)
            .cloned()
            .ok_or_else(|| AssociationError::Protocol(format!("presentation context {id} was not accepted")))
    }

    async fn on_value(&mut self, value: PDataValue, state: Receiving) -> Result<Receiving, AssociationError> {
        let id = value.presentation_context_id;
        match (value.value_type.clone(), state) {
            (PDataValueType::Command, Receiving::Idle) => self.on_command_fragment(id, Vec::new(), value).await,
            (PDataValueType::Command, Receiving::Command { context, bytes }) if context == id => {
                self.on_command_fragment(id, bytes, value).await
            }
            (PDataValueType::Data, Receiving::Data { context, command, mut sink }) if context == id => {
                match &mut sink {
                    Sink::Instance(spool) => {
                        // Too large or out of space: keep reading, then answer out of resources.
                        if let Err(e) = spool.write(&value.data) {
                            sink = Sink::Refused(refusal(&e));
                        }
                    }
                    Sink::Identifier(bytes) => {
                        if bytes.len() + value.data.len() > MAX_IDENTIFIER {
                            return Err(AssociationError::Protocol("identifier too large".into()));
                        }
                        bytes.extend_from_slice(&value.data);
                    }
                    Sink::Discard | Sink::Refused(_) => {}
                }
                if value.is_last {
                    self.dispatch(id, command, Some(sink)).await?;
                    Ok(Receiving::Idle)
                } else {
                    Ok(Receiving::Data { context, command, sink })
                }
            }
            _ => Err(AssociationError::Protocol("a fragment out of order".into())),
        }
    }

    async fn on_command_fragment(
        &mut self,
        id: u8,
        mut bytes: Vec<u8>,
        value: PDataValue,
    ) -> Result<Receiving, AssociationError> {
        let context = self.context(id)?;
        if bytes.len() + value.data.len() > MAX_COMMAND {
            return Err(AssociationError::Protocol("command set too large".into()));
        }
        bytes.extend_from_slice(&value.data);
        if !value.is_last {
            return Ok(Receiving::Command { context: id, bytes });
        }
        let command = Command::decode(&bytes).map_err(|e| AssociationError::Protocol(e.to_string()))?;
        if !command.has_dataset {
            self.dispatch(id, command, None).await?;
            return Ok(Receiving::Idle);
        }
        let sink = match (command.field, context.role) {
            (field::C_STORE_RQ, SopClassRole::Storage) => self.open_spool(&command, &context)?,
            (field::C_STORE_RQ, _) => Sink::Discard,
            _ => Sink::Identifier(Vec::new()),
        };
        Ok(Receiving::Data { context: id, command, sink })
    }

    /// A spool that starts with the file meta, so the stored file is Part-10.
    fn open_spool(&self, command: &Command, context: &Context) -> Result<Sink, AssociationError> {
        let (Some(class), Some(instance)) = (&command.sop_class, &command.sop_instance) else {
            return Ok(Sink::Discard);
        };
        let Ok(prefix) = cloudfilm_dicom::dimse::part10_prefix(class, instance, &context.transfer_syntax) else {
            return Ok(Sink::Discard);
        };
        let mut spool = match Spool::new(&self.archive) {
            Ok(spool) => spool,
            Err(e) => {
                return Ok(Sink::Refused(e.write_refusal().unwrap_or("the archive could not write the instance")));
            }
        };
        if let Err(e) = spool.write(&prefix) {
            return Ok(Sink::Refused(refusal(&e)));
        }
        Ok(Sink::Instance(Box::new(spool)))
    }

    async fn dispatch(&mut self, context: u8, command: Command, data: Option<Sink>) -> Result<(), AssociationError> {
        let ctx = self.context(context)?;
        match command.field {
            field::C_ECHO_RQ => {
                let rsp = Command::response_to(&command, field::C_ECHO_RSP, status::SUCCESS);
                let sent = self.send(context, &rsp, None).await;
                crate::metrics::dimse_operation("C-ECHO", sent.is_ok());
                sent
            }
            field::C_STORE_RQ => {
                // The command's SOP class must be the context's (PS3.7 §9.3.1.1).
                let class_matches = command.sop_class.as_deref() == Some(ctx.abstract_syntax.as_str());
                let status = match (ctx.role, data) {
                    _ if !class_matches => status::SOP_CLASS_NOT_SUPPORTED,
                    (SopClassRole::Storage, Some(Sink::Instance(spool))) => self.store(*spool, &command).await,
                    (SopClassRole::Storage, Some(Sink::Refused(why))) => {
                        self.audit_refusal(why).await;
                        status::OUT_OF_RESOURCES
                    }
                    (SopClassRole::Storage, _) => status::OUT_OF_RESOURCES,
                    _ => status::SOP_CLASS_NOT_SUPPORTED,
                };
                let rsp = Command::response_to(&command, field::C_STORE_RSP, status);
                let sent = self.send(context, &rsp, None).await;
                // Success, or a warning (0xB000..): the instance is stored.
                let stored = status == status::SUCCESS || status & 0xF000 == 0xB000;
                crate::metrics::dimse_operation("C-STORE", stored && sent.is_ok());
                tracing::debug!(request_id = %self.request_id, status, answered = sent.is_ok(), "C-STORE");
                sent
            }
            field::C_FIND_RQ | field::C_GET_RQ | field::C_MOVE_RQ => {
                let identifier = match data {
                    Some(Sink::Identifier(bytes)) => bytes,
                    _ => Vec::new(),
                };
                let operation = match command.field {
                    field::C_FIND_RQ => "C-FIND",
                    field::C_GET_RQ => "C-GET",
                    _ => "C-MOVE",
                };
                let done = match (command.field, ctx.role) {
                    (field::C_FIND_RQ, SopClassRole::Find(model)) => {
                        find::run(self, context, &ctx, model, &command, &identifier).await
                    }
                    (field::C_GET_RQ, SopClassRole::Get(model)) => {
                        retrieve::get(self, context, &ctx, model, &command, &identifier).await
                    }
                    (field::C_MOVE_RQ, SopClassRole::Move(model)) => {
                        retrieve::move_to(self, context, &ctx, model, &command, &identifier).await
                    }
                    _ => {
                        let rsp_field = command.field | 0x8000;
                        let rsp = Command::response_to(&command, rsp_field, status::SOP_CLASS_NOT_SUPPORTED);
                        self.send(context, &rsp, None).await
                    }
                };
                let supported = matches!(
                    (command.field, ctx.role),
                    (field::C_FIND_RQ, SopClassRole::Find(_))
                        | (field::C_GET_RQ, SopClassRole::Get(_))
                        | (field::C_MOVE_RQ, SopClassRole::Move(_))
                );
                crate::metrics::dimse_operation(operation, supported && done.is_ok());
                done
            }
            // A cancel that arrives when nothing is pending has nothing to stop.
            field::C_CANCEL_RQ => Ok(()),
            other => Err(AssociationError::Protocol(format!("unsupported command field {other:#06x}"))),
        }
    }

    /// Ingests one received instance; answers only after it is durable (S1).
    async fn store(&mut self, spool: Spool, command: &Command) -> u16 {
        // The file meta is the archive's own: the data set must name its instance itself.
        let received = ingest::inspect_strict(&self.archive, spool).await;
        let received = match received {
            Ok(candidate) if Some(candidate.sop_instance_uid()) != command.sop_instance.as_deref() => {
                Err(ingest::IngestResult::failed(
                    status::IDENTIFIER_DOES_NOT_MATCH,
                    "the data set names another SOP instance than the command",
                ))
            }
            other => other,
        };
        let context = ImportContext {
            actor: self.actor(),
            client_ip: Some(self.peer.to_string()),
            request_id: Some(self.request_id.clone()),
            interface: "c-store".into(),
            rejected: Vec::new(),
        };
        match ingest::commit(&self.archive, self.negotiated.org.id, vec![received], None, context).await {
            Ok(results) => match &results[0].disposition {
                Disposition::Stored | Disposition::Duplicate => status::SUCCESS,
                Disposition::Failed { reason, .. } => *reason,
            },
            Err(e) if e.is_out_of_resources() => {
                tracing::error!(request_id = %self.request_id, error = %e, "C-STORE refused: the storage failed");
                self.audit_refusal(e.write_refusal().unwrap_or_default()).await;
                status::OUT_OF_RESOURCES
            }
            // Nothing was acknowledged: the sender keeps the instance and retries.
            Err(cloudfilm_store::StoreError::Unavailable(why)) => {
                tracing::warn!(request_id = %self.request_id, error = %why, "C-STORE refused: storage unreachable");
                status::OUT_OF_RESOURCES
            }
            Err(e) => {
                tracing::error!(request_id = %self.request_id, error = %e, "C-STORE failed");
                status::PROCESSING_FAILURE
            }
        }
    }

    /// An import entry for an instance refused before it reached the index, in the shape of
    /// the index's own import entries. When even the audit cannot be written (the index's
    /// disk is full as well) the refusal still stands and the log says so.
    async fn audit_refusal(&self, why: &str) {
        use cloudfilm_audit::{Action, Outcome};
        let event = self
            .event(Action::Import, "study:unknown", Outcome::Failure(why.to_owned()))
            .with_detail("c-store: stored 0, duplicate 0, conflict 0, rejected 1");
        if let Err(e) = self.archive.repo.audit(vec![event]).await {
            tracing::error!(request_id = %self.request_id, error = %e, "a C-STORE refusal could not be audited");
        }
    }

    /// Sends a command and its data set, in P-DATA PDUs within the peer's maximum length.
    pub async fn send(
        &mut self,
        context: u8,
        command: &Command,
        dataset: Option<&[u8]>,
    ) -> Result<(), AssociationError> {
        let mut command = command.clone();
        command.has_dataset = dataset.is_some();
        send_fragments(&mut self.stream, context, PDataValueType::Command, &command.encode(), true).await?;
        if let Some(data) = dataset {
            send_fragments(&mut self.stream, context, PDataValueType::Data, data, true).await?;
        }
        Ok(())
    }
}

/// Sends `bytes` as PDV fragments; the last one is flagged when `last`.
pub async fn send_fragments(
    stream: &mut PduStream,
    context: u8,
    kind: PDataValueType,
    bytes: &[u8],
    last: bool,
) -> Result<(), TransportError> {
    let max = match stream.peer_max {
        0 => 64 * 1024,
        n => (n as usize).saturating_sub(6).max(1),
    };
    let mut chunks = bytes.chunks(max).peekable();
    if chunks.peek().is_none() {
        let value = PDataValue { presentation_context_id: context, value_type: kind, is_last: last, data: Vec::new() };
        return stream.send(&Pdu::PData { data: vec![value] }).await;
    }
    while let Some(chunk) = chunks.next() {
        let is_last = last && chunks.peek().is_none();
        let value =
            PDataValue { presentation_context_id: context, value_type: kind.clone(), is_last, data: chunk.to_vec() };
        stream.send(&Pdu::PData { data: vec![value] }).await?;
    }
    Ok(())
}
