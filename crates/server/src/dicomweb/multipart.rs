//! `multipart/related` response bodies, streamed from blocking readers through a bounded
//! channel so that memory stays small whatever the study's size.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;

pub struct PartWriter {
    boundary: String,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl PartWriter {
    /// Sends a chunk; false when the client went away.
    pub fn send(&self, chunk: Vec<u8>) -> bool {
        self.tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
    }

    pub fn part_header(&self, content_type: &str, location: Option<&str>) -> bool {
        let mut head = format!("--{}\r\nContent-Type: {content_type}\r\n", self.boundary);
        if let Some(location) = location {
            head.push_str(&format!("Content-Location: {location}\r\n"));
        }
        head.push_str("\r\n");
        self.send(head.into_bytes())
    }

    pub fn part_end(&self) -> bool {
        self.send(b"\r\n".to_vec())
    }

    /// Ends the body; an error breaks the stream so the client sees a failed transfer.
    pub fn finish(self, result: Result<(), std::io::Error>) {
        match result {
            Ok(()) => {
                let _ = self.tx.blocking_send(Ok(Bytes::from(format!("--{}--\r\n", self.boundary))));
            }
            Err(e) => {
                let _ = self.tx.blocking_send(Err(e));
            }
        }
    }
}

/// A streamed multipart response whose parts `produce` writes from a blocking thread.
pub fn stream(
    part_type: &str,
    transfer_syntax: Option<&str>,
    produce: impl FnOnce(&PartWriter) -> Result<(), std::io::Error> + Send + 'static,
) -> Response {
    let boundary = format!("cloudfilm-{}", cloudfilm_crypto::random::hex_id());
    let (tx, rx) = mpsc::channel(8);
    let writer = PartWriter { boundary: boundary.clone(), tx };
    tokio::task::spawn_blocking(move || {
        let result = produce(&writer);
        writer.finish(result);
    });
    let body =
        Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }));
    let mut content_type = format!("multipart/related; type=\"{part_type}\"; boundary={boundary}");
    if let Some(ts) = transfer_syntax {
        content_type.push_str(&format!("; transfer-syntax={ts}"));
    }
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_str(&content_type).expect("ASCII content type"));
    response
}
