//! Accepting an association (PS3.8 §7.1): the calling AE title must be registered to an
//! organization (and call from its registered host, when one is set), the called AE title must
//! be the archive's; each proposed presentation context is accepted for Verification,
//! Query/Retrieve and every storage SOP class, in a transfer syntax the archive stores as
//! received. Requestors may take the SCP role for storage classes (C-GET).

use super::transport::{PduStream, TransportError};
use crate::archive::Archive;
use cloudfilm_core::AeTitle;
use cloudfilm_dicom::dimse::{SopClassRole, classify};
use cloudfilm_store::Org;
use dicom_ul::pdu::*;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

pub use cloudfilm_dicom::dimse::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME as IMPLEMENTATION_VERSION};

const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// Transfer syntaxes instances are received (and stored) in.
const STORAGE_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
];

/// Transfer syntaxes of commands' data sets (identifiers, C-FIND responses).
const QUERY_SYNTAXES: &[&str] = &["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"];

#[derive(Debug, Clone)]
pub struct Context {
    pub abstract_syntax: String,
    pub transfer_syntax: String,
    pub role: SopClassRole,
}

/// An accepted association.
#[derive(Debug)]
pub struct Negotiated {
    pub calling_ae: AeTitle,
    pub org: Org,
    pub contexts: HashMap<u8, Context>,
    /// Storage SOP classes for which the requestor accepted the SCP role (C-GET).
    pub scp_roles: HashSet<String>,
}

/// Why an association was refused (for the audit chain and the log).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("calling AE title not registered")]
    UnknownCaller,
    #[error("calling AE title registered for another host")]
    WrongHost,
    #[error("calling AE title bound to a TLS client certificate the caller did not present")]
    WrongCertificate,
    #[error("called AE title is not the archive's")]
    WrongCalled,
    #[error("unsupported application context")]
    ApplicationContext,
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("store: {0}")]
    Store(#[from] cloudfilm_store::StoreError),
}

fn trim(uid: &str) -> String {
    uid.trim_end_matches(['\0', ' ']).to_owned()
}

fn reject(reason: AssociationRJServiceUserReason) -> Pdu {
    Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Permanent,
        source: AssociationRJSource::ServiceUser(reason),
    })
}

/// Too many associations: a transient rejection the peer may retry.
pub fn busy() -> Pdu {
    transient(AssociationRJServiceProviderPresentationReason::LocalLimitExceeded)
}

fn transient(reason: AssociationRJServiceProviderPresentationReason) -> Pdu {
    Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(reason),
    })
}

/// Whether the peer address is the registered host (an address, or a name that resolves to it).
async fn host_matches(registered: &str, peer: IpAddr) -> bool {
    if let Ok(ip) = registered.parse::<IpAddr>() {
        return ip == peer || (ip.is_loopback() && peer.is_loopback());
    }
    match tokio::net::lookup_host((registered, 0)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).any(|ip| ip == peer),
        Err(_) => false,
    }
}

/// Reads the A-ASSOCIATE-RQ and answers it. `client_certificate`: the SHA-256 of the TLS client
/// certificate the caller presented (DIMSE TLS), if any.
pub async fn accept(
    stream: &mut PduStream,
    archive: &Archive,
    request: AssociationRQ,
    peer: IpAddr,
    client_certificate: Option<&str>,
) -> Result<Negotiated, Refused> {
    let config = &archive.config.dimse;
    if trim(&request.application_context_name) != APPLICATION_CONTEXT {
        stream.send(&reject(AssociationRJServiceUserReason::ApplicationContextNameNotSupported)).await?;
        return Err(Refused::ApplicationContext);
    }
    if request.called_ae_title.trim() != config.ae_title {
        stream.send(&reject(AssociationRJServiceUserReason::CalledAETitleNotRecognized)).await?;
        return Err(Refused::WrongCalled);
    }
    let registered = match AeTitle::parse(&request.calling_ae_title) {
        Ok(title) => match archive.repo.application_entity(&title).await {
            Ok(registered) => registered,
            // The index does not answer: the caller cannot be checked now; it may retry.
            Err(e) => {
                stream.send(&transient(AssociationRJServiceProviderPresentationReason::TemporaryCongestion)).await?;
                return Err(e.into());
            }
        },
        Err(_) => None,
    };
    let Some(registered) = registered else {
        stream.send(&reject(AssociationRJServiceUserReason::CallingAETitleNotRecognized)).await?;
        return Err(Refused::UnknownCaller);
    };
    if let Some(host) = &registered.host
        && !host_matches(host, peer).await
    {
        stream.send(&reject(AssociationRJServiceUserReason::CallingAETitleNotRecognized)).await?;
        return Err(Refused::WrongHost);
    }
    if let Some(pin) = &registered.certificate
        && client_certificate != Some(pin.as_str())
    {
        stream.send(&reject(AssociationRJServiceUserReason::CallingAETitleNotRecognized)).await?;
        return Err(Refused::WrongCertificate);
    }

    let mut contexts = HashMap::new();
    let mut results = Vec::new();
    for proposed in &request.presentation_contexts {
        let abstract_syntax = trim(&proposed.abstract_syntax);
        let role = classify(&abstract_syntax);
        let acceptable = match role {
            SopClassRole::Unsupported => None,
            SopClassRole::Storage => Some(STORAGE_SYNTAXES),
            _ => Some(QUERY_SYNTAXES),
        };
        let (reason, transfer_syntax) = match acceptable {
            None => (PresentationContextResultReason::AbstractSyntaxNotSupported, "1.2.840.10008.1.2".to_owned()),
            Some(list) => match proposed
                .transfer_syntaxes
                .iter()
                .map(|t| trim(t))
                .find(|t| list.contains(&t.as_str()) && cloudfilm_dicom::transfer::lookup(t).is_some())
            {
                Some(ts) => (PresentationContextResultReason::Acceptance, ts),
                None => (PresentationContextResultReason::TransferSyntaxesNotSupported, "1.2.840.10008.1.2".to_owned()),
            },
        };
        if reason == PresentationContextResultReason::Acceptance {
            contexts.insert(
                proposed.id,
                Context { abstract_syntax: abstract_syntax.clone(), transfer_syntax: transfer_syntax.clone(), role },
            );
        }
        results.push(PresentationContextResult { id: proposed.id, reason, transfer_syntax });
    }

    let mut scp_roles = HashSet::new();
    let mut variables = vec![
        UserVariableItem::MaxLength(config.max_pdu_length),
        UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.into()),
        UserVariableItem::ImplementationVersionName(IMPLEMENTATION_VERSION.into()),
    ];
    for item in &request.user_variables {
        match item {
            UserVariableItem::MaxLength(max) => stream.peer_max = *max,
            UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles) => {
                let uid = trim(uid);
                let scp = roles.scp && classify(&uid) == SopClassRole::Storage;
                if scp {
                    scp_roles.insert(uid.clone());
                }
                variables
                    .push(UserVariableItem::ScuScpRoleSelectionSubItem(uid, RequestorRoles { scu: roles.scu, scp }));
            }
            _ => {}
        }
    }
    let ac = AssociationAC {
        protocol_version: 1,
        calling_ae_title: request.calling_ae_title.clone(),
        called_ae_title: request.called_ae_title.clone(),
        application_context_name: APPLICATION_CONTEXT.into(),
        presentation_contexts: results,
        user_variables: variables,
    };
    stream.send(&Pdu::AssociationAC(ac)).await?;
    Ok(Negotiated { calling_ae: registered.title, org: registered.org, contexts, scp_roles })
}
