//! The process's TLS: rustls with *ring*'s cryptography, installed as the process default
//! before any HTTPS client (the S3 client, text message webhooks) is built. Installing it
//! again is harmless.

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
