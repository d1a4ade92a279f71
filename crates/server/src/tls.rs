//! TLS for the listeners (rustls with *ring*): a certificate chain and key read from PEM files,
//! TLS 1.2 and 1.3 only, and reloaded in place (`SIGHUP`) so that a renewed certificate takes
//! effect without a restart; connections already open keep the one they started with. A reload
//! that fails (missing file, key not matching) keeps the certificate in use and says why.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read the private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the private key {key} does not match the certificate {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The certificate a listener presents, read again from its files on [`reload`](Self::reload).
#[derive(Debug)]
pub struct ReloadableCertificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCertificate {
    /// Reads the chain (leaf first) and the key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ReloadableCertificate>, TlsError> {
        let current = RwLock::new(read(cert, key)?);
        Ok(Arc::new(ReloadableCertificate { cert: cert.to_owned(), key: key.to_owned(), current }))
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = read(&self.cert, &self.key)?;
        *self.current.write().expect("the certificate lock") = fresh;
        Ok(())
    }

    /// SHA-256 of the leaf certificate, as browsers and `openssl x509 -fingerprint -sha256` show it.
    pub fn fingerprint(&self) -> String {
        let current = self.current.read().expect("the certificate lock").clone();
        current.cert.first().map(|leaf| fingerprint(leaf.as_ref())).unwrap_or_default()
    }

    /// A server configuration presenting this certificate, offering `alpn` protocols in order;
    /// with `client_certificates`, clients are asked for a certificate (optional; see
    /// [`ClientCertificateOffered`]).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]], client_certificates: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3");
        let builder = if client_certificates {
            builder.with_client_cert_verifier(Arc::new(ClientCertificateOffered { algorithms }))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Client certificates on the DIMSE TLS port: asked for, optional, and not judged by any
/// authority here. rustls still checks that the client holds the certificate's private key
/// (the handshake signature); what a certificate is worth is decided afterwards, against the
/// certificate a DICOM node is bound to (its SHA-256, registered with the node), as SSH pins
/// host keys. Hospitals' modalities mostly carry self-signed certificates, which a pin serves
/// and a certificate authority would not.
#[derive(Debug)]
struct ClientCertificateOffered {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientCertificateOffered {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("the certificate lock").clone())
    }
}

fn read(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| TlsError::Certificate { path: cert.to_owned(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate { path: cert.to_owned(), reason: "no certificate in the file".into() });
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key { path: key.to_owned(), reason: e.to_string() })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| TlsError::Key { path: key.to_owned(), reason: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        // A key whose public half cannot be derived (some formats) is checked by the handshake.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(certified)),
        Err(_) => Err(TlsError::Mismatch { cert: cert.to_owned(), key: key.to_owned() }),
    }
}

/// The SHA-256 (lowercase hex) of the first certificate of a PEM file: what binds a DICOM
/// node to its TLS client certificate.
pub fn certificate_sha256(path: &Path) -> Result<String, TlsError> {
    let unreadable = |reason: String| TlsError::Certificate { path: path.to_owned(), reason };
    let first = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .next()
        .ok_or_else(|| unreadable("no certificate in the file".into()))?
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(hex::encode(Sha256::digest(first.as_ref())))
}

/// A listener whose connections complete a TLS handshake (within 10 s) before they are served,
/// for a small internal listener (the metrics'): handshakes are made one at a time.
pub struct TlsListener {
    inner: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsListener {
    pub fn new(inner: tokio::net::TcpListener, certificate: &Arc<ReloadableCertificate>) -> TlsListener {
        TlsListener {
            inner,
            acceptor: tokio_rustls::TlsAcceptor::from(certificate.server_config(&[b"http/1.1"], false)),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (socket, peer) = match self.inner.accept().await {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handshake = self.acceptor.accept(socket);
            if let Ok(Ok(stream)) = tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await {
                return (stream, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// `AB:CD:…` of SHA-256 over DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    let mut text = String::with_capacity(95);
    for (i, byte) in Sha256::digest(der).iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02X}");
    }
    text
}

/// Reloads `certificates` on every `SIGHUP` for the life of the process, logging the outcome.
pub fn reload_on_hangup(certificates: Vec<Arc<ReloadableCertificate>>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            for certificate in &certificates {
                match certificate.reload() {
                    Ok(()) => tracing::info!(fingerprint = %certificate.fingerprint(), "TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays"),
                }
            }
        }
    });
    Ok(())
}
