//! The DIMSE listener (PS3.7, PS3.8): one port, associations from registered AE titles only
//! (and, for a node bound to its TLS client certificate, over DIMSE TLS with that certificate),
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
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use transport::{PduStream, TransportError};

/// Largest A-ASSOCIATE-RQ accepted (hundreds of presentation contexts fit easily).
const MAX_REQUEST_PDU: u32 = 1024 * 1024;

/// Serves associations until `shutdown` resolves, then waits (a few seconds at most) for the
/// associations in progress. With `tls` (PS3.15 B.1/B.9: the DIMSE TLS port) every connection
/// must complete a TLS handshake, within the ARTIM time, before it may request an association.
pub async fn listen(
    archive: Arc<Archive>,
    listener: TcpListener,
    tls: Option<Arc<crate::tls::ReloadableCertificate>>,
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> std::io::Result<()> {
    let acceptor = tls.map(|certificate| tokio_rustls::TlsAcceptor::from(certificate.server_config(&[], true)));
    let name = if acceptor.is_some() { "dimse-tls" } else { "dimse" };
    let limit = archive.config.dimse.max_associations.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    // Connections still negotiating count too (the budget has room for as many again as
    // associations). One address (a modality, a router) may hold all associations and half as
    // many again, so that beyond the limit it still gets its A-ASSOCIATE-RJ, while a quarter
    // of the connections stay for everyone else.
    let total = crate::connections::budget(&archive.config).dimse;
    let gate = crate::connections::Gate::new(name, (limit + limit.div_ceil(2)).min(total), total, Vec::new());
    let mut shutdown = shutdown;
    let artim = Duration::from_secs(archive.config.dimse.artim_timeout_secs);
    loop {
        let (socket, peer) = tokio::select! {
            pair = crate::connections::accept(&listener, name) => pair,
            _ = &mut shutdown => break,
        };
        // Beyond the caps the socket is closed at once: it held a descriptor for no time.
        let Ok(admission) = gate.admit(peer.ip()) else { continue };
        let _ = socket.set_nodelay(true);
        let (archive, permits, acceptor) = (archive.clone(), permits.clone(), acceptor.clone());
        tokio::spawn(async move {
            let (socket, client_certificate): (Box<dyn crate::connections::Socket>, _) = match acceptor {
                None => (Box::new(socket), None),
                Some(acceptor) => match tokio::time::timeout(artim, acceptor.accept(socket)).await {
                    Ok(Ok(stream)) => {
                        let certificate = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
                        let pin = certificate.map(|leaf| hex::encode(sha2::Sha256::digest(leaf.as_ref())));
                        (Box::new(stream), pin)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %peer.ip(), error = %e, "a DIMSE TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer.ip(), "a DIMSE TLS handshake did not finish in time");
                        return;
                    }
                },
            };
            handle(archive, socket, peer, client_certificate, permits).await;
            drop(admission);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(limit as u32)).await;
    Ok(())
}

async fn handle(
    archive: Arc<Archive>,
    socket: Box<dyn crate::connections::Socket>,
    peer: SocketAddr,
    client_certificate: Option<String>,
    permits: Arc<Semaphore>,
) {
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
    match negotiation::accept(&mut stream, &archive, request, peer.ip(), client_certificate.as_deref()).await {
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
