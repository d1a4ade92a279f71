//! The HTTP/1.1 listener: every connection admitted by the gate (per address and in all,
//! within the open-file budget), its headers read within `header_timeout_secs` (which also
//! ends idle keep-alive connections), its body kept to a pace and its response writes bounded.

use crate::app;
use crate::archive::Archive;
use crate::connections::{self, Gate, WriteDeadline};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
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

/// Serves until `shutdown` resolves, then lets the requests in progress finish (briefly).
pub async fn serve(
    archive: Arc<Archive>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let http = archive.config.http.clone();
    let budget = connections::budget(&archive.config);
    tracing::info!(http = budget.http, dimse = budget.dimse, "connections the open-file limit allows at once");
    // A trusted proxy carries many clients' connections: only the total applies to it.
    let proxies = http.trusted_proxy_networks().unwrap_or_default();
    let gate = Gate::new("http", http.max_connections_per_address, budget.http, proxies);
    let router = app::router(archive, port);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(http.header_timeout_secs.max(1)));
    let write_timeout = Duration::from_secs(http.write_timeout_secs.max(1));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
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
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let io = TokioIo::new(WriteDeadline::new(socket, write_timeout));
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
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
