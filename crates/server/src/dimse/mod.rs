//! The DIMSE listener (PS3.7, PS3.8): one port, associations from registered AE titles only,
//! C-ECHO, C-STORE (through the same ingest pipeline as STOW-RS), C-FIND, C-GET and C-MOVE.

mod association;
mod find;
mod negotiation;
mod retrieve;
mod scu;
mod transport;

use crate::archive::Archive;
use association::Association;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::refusals::Refusal;
use dicom_ul::pdu::Pdu;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use transport::{PduStream, TransportError};

/// Largest A-ASSOCIATE-RQ accepted (hundreds of presentation contexts fit easily).
const MAX_REQUEST_PDU: u32 = 1024 * 1024;

/// Serves associations until `shutdown` resolves, then waits (a few seconds at most) for the
/// associations in progress.
pub async fn listen(
    archive: Arc<Archive>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limit = archive.config.dimse.max_associations.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    // Connections still negotiating count too (the budget has room for as many again as
    // associations). One address (a modality, a router) may hold all associations and half as
    // many again, so that beyond the limit it still gets its A-ASSOCIATE-RJ, while a quarter
    // of the connections stay for everyone else.
    let total = crate::connections::budget(&archive.config).dimse;
    let gate = crate::connections::Gate::new("dimse", (limit + limit.div_ceil(2)).min(total), total, Vec::new());
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            pair = crate::connections::accept(&listener, "dimse") => pair,
            _ = &mut shutdown => break,
        };
        // Beyond the caps the socket is closed at once: it held a descriptor for no time.
        let Ok(admission) = gate.admit(peer.ip()) else { continue };
        let (archive, permits) = (archive.clone(), permits.clone());
        tokio::spawn(async move {
            handle(archive, socket, peer, permits).await;
            drop(admission);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(limit as u32)).await;
    Ok(())
}

async fn handle(archive: Arc<Archive>, socket: TcpStream, peer: SocketAddr, permits: Arc<Semaphore>) {
    let config = &archive.config.dimse;
    let mut stream = PduStream::new(socket, MAX_REQUEST_PDU, Duration::from_secs(config.network_timeout_secs));
    let request = match stream.recv_within(Duration::from_secs(config.artim_timeout_secs)).await {
        Ok(Pdu::AssociationRQ(request)) => request,
        Ok(_) => return stream.abort().await,
        Err(TransportError::Closed) => return,
        Err(e) => {
            tracing::warn!(peer = %peer.ip(), error = %e, "a connection did not request an association");
            return stream.abort().await;
        }
    };
    let Ok(permit) = permits.try_acquire_owned() else {
        tracing::warn!(peer = %peer.ip(), "association refused: the limit of concurrent associations is reached");
        crate::metrics::association("busy");
        let _ = stream.send(&negotiation::busy()).await;
        return stream.close().await;
    };
    let calling = cloudfilm_core::AeTitle::parse(&request.calling_ae_title)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "invalid".into());
    match negotiation::accept(&mut stream, &archive, request, peer.ip()).await {
        Ok(negotiated) => {
            crate::metrics::association("accepted");
            stream.set_max_incoming(config.max_pdu_length);
            Association::new(stream, archive.clone(), negotiated, peer.ip()).run().await;
        }
        Err(refused) => {
            tracing::warn!(peer = %peer.ip(), reason = %refused, "association rejected");
            crate::metrics::association("rejected");
            let event = AuditEvent::new(
                Action::SecurityAlert,
                format!("ae:{calling}"),
                "dimse",
                Outcome::Failure(refused.to_string()),
            )
            .from_client(Some(peer.ip().to_string()), None);
            let refusal = Refusal { object: "dimse", reason: "association rejected" };
            let _ = archive.audit_refusal(refusal, peer.ip(), event).await;
            stream.close().await;
        }
    }
    drop(permit);
}
