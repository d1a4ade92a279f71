//! The HTTP listener: every connection admitted by the gate (per address and in all, within
//! the open-file budget), its headers read within `header_timeout_secs` (which also ends idle
//! keep-alive connections), its body kept to a pace and its response writes bounded. Plain
//! HTTP/1.1, or with a certificate HTTPS only (TLS 1.2+, HTTP/2 and HTTP/1.1 by ALPN; the TLS
//! handshake bounded by the same header timeout).

use crate::app;
use crate::archive::Archive;
use crate::connections::{self, Gate, WriteDeadline};
use crate::tls::ReloadableCertificate;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// How long a stopping server waits for the requests in progress.
const DRAIN: Duration = Duration::from_secs(10);

/// What a connection beyond the caps is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 5\r\nconnection: close\r\ncontent-length: 81\r\n\r\n\
{\"error\":{\"code\":\"busy\",\"message\":\"too many connections; try again in a moment\"}}";

/// Whether a request came over this server's own TLS (set on every request, beside the peer).
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub tls: bool,
}

/// Serves until `shutdown` resolves, then lets the requests in progress finish (briefly). With
/// `tls`, every connection must speak TLS first.
pub async fn serve(
    archive: Arc<Archive>,
    listener: TcpListener,
    tls: Option<Arc<ReloadableCertificate>>,
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let http = archive.config.http.clone();
    let budget = connections::budget(&archive.config);
    tracing::info!(http = budget.http, dimse = budget.dimse, "connections the open-file limit allows at once");
    // A trusted proxy carries many clients' connections: only the total applies to it.
    let proxies = http.trusted_proxy_networks().unwrap_or_default();
    let gate = Gate::new("http", http.max_connections_per_address, budget.http, proxies);
    let router = app::router(archive, port);
    let header_timeout = Duration::from_secs(http.header_timeout_secs.max(1));
    // The protocol is known before the first byte is read: HTTP/1.1 in plain text, what ALPN
    // chose under TLS (so a silent connection is still bounded by the header timeout).
    let mut http1 = Builder::new(TokioExecutor::new()).http1_only();
    http1.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut http2 = Builder::new(TokioExecutor::new()).http2_only();
    http2.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));
    let (http1, http2) = (Arc::new(http1), Arc::new(http2));
    let acceptor = tls.map(|certificate| {
        tokio_rustls::TlsAcceptor::from(certificate.server_config(&[b"h2".as_slice(), b"http/1.1".as_slice()], false))
    });
    let transport = Transport { tls: acceptor.is_some() };
    let write_timeout = Duration::from_secs(http.write_timeout_secs.max(1));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = shutdown;
    loop {
        let (socket, peer) = tokio::select! {
            pair = connections::accept(&listener, "http") => pair,
            _ = &mut shutdown => break,
        };
        let Ok(admission) = gate.admit(peer.ip()) else {
            tokio::spawn(refuse(socket));
            continue;
        };
        let _ = socket.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(transport);
            // HTTP/2 names the host in the `:authority` of the URI, not in a Host header.
            if !request.headers().contains_key(hyper::header::HOST)
                && let Some(host) = request.uri().authority().and_then(|a| a.as_str().parse().ok())
            {
                request.headers_mut().insert(hyper::header::HOST, host);
            }
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let socket = WriteDeadline::new(socket, write_timeout);
        let (http1, http2, watcher, acceptor) = (http1.clone(), http2.clone(), graceful.watcher(), acceptor.clone());
        tokio::spawn(async move {
            let (io, builder): (Box<dyn connections::Socket>, _) = match acceptor {
                None => (Box::new(socket), http1),
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(socket)).await {
                    Ok(Ok(stream)) => {
                        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                        (Box::new(stream), if h2 { http2 } else { http1 })
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer.ip(), error = %e, "a TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
            };
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "an HTTP connection ended with an error");
            }
            drop(admission);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in progress after {DRAIN:?} were cut off");
    }
    Ok(())
}

/// Tells a connection beyond the caps to come back later, without reading from it.
async fn refuse(mut socket: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = socket.write_all(BUSY).await;
        let _ = socket.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(super::BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "busy");
    }
}
