//! Outgoing associations (C-MOVE destinations): the archive as association requestor and
//! storage SCU, with one presentation context per stored SOP class and transfer syntax.

use super::negotiation::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION};
use super::transport::PduStream;
use dicom_ul::pdu::*;
use std::collections::HashMap;
use std::time::Duration;

pub struct Outgoing {
    pub stream: PduStream,
    /// (SOP class, transfer syntax) → accepted presentation context id.
    pub contexts: HashMap<(String, String), u8>,
}

/// Opens an association to `host:port` calling `called` as `calling`.
pub async fn open(
    host: &str,
    port: u16,
    calling: &str,
    called: &str,
    wanted: &[(String, String)],
    max_pdu: u32,
    timeout: Duration,
) -> Result<Outgoing, String> {
    if wanted.len() > 128 {
        return Err("more than 128 SOP class and transfer syntax pairs".into());
    }
    let socket = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("no connection to {host}:{port} within {timeout:?}"))?
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = socket.set_nodelay(true);
    let mut stream = PduStream::new(Box::new(socket), 1024 * 1024, timeout);
    let proposed: Vec<PresentationContextProposed> = wanted
        .iter()
        .enumerate()
        .map(|(i, (class, ts))| PresentationContextProposed {
            id: (2 * i + 1) as u8,
            abstract_syntax: class.clone(),
            transfer_syntaxes: vec![ts.clone()],
        })
        .collect();
    let request = AssociationRQ {
        protocol_version: 1,
        calling_ae_title: calling.into(),
        called_ae_title: called.into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: proposed.clone(),
        user_variables: vec![
            UserVariableItem::MaxLength(max_pdu),
            UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.into()),
            UserVariableItem::ImplementationVersionName(IMPLEMENTATION_VERSION.into()),
        ],
    };
    stream.send(&Pdu::AssociationRQ(request)).await.map_err(|e| e.to_string())?;
    match stream.recv_within(timeout).await.map_err(|e| e.to_string())? {
        Pdu::AssociationAC(ac) => {
            for item in &ac.user_variables {
                if let UserVariableItem::MaxLength(max) = item {
                    stream.peer_max = *max;
                }
            }
            stream.set_max_incoming(max_pdu);
            let mut contexts = HashMap::new();
            for result in ac.presentation_contexts {
                if result.reason == PresentationContextResultReason::Acceptance
                    && let Some(p) = proposed.iter().find(|p| p.id == result.id)
                {
                    contexts.insert((p.abstract_syntax.clone(), p.transfer_syntaxes[0].clone()), p.id);
                }
            }
            Ok(Outgoing { stream, contexts })
        }
        Pdu::AssociationRJ(rj) => Err(format!("the destination rejected the association: {:?}", rj.source)),
        _ => Err("the destination answered with an unexpected PDU".into()),
    }
}

impl Outgoing {
    pub async fn release(mut self, timeout: Duration) {
        if self.stream.send(&Pdu::ReleaseRQ).await.is_ok() {
            let _ = self.stream.recv_within(timeout).await;
        }
        self.stream.close().await;
    }
}
