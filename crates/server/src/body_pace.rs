//! Request bodies must keep a pace ([`BodyPace`]): a body trickled a byte at a time ends
//! with 408 `body_timeout` and the connection closes, whatever handler was reading it.

use crate::app::AppState;
use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloudfilm_core::connections::BodyPace;
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

pub fn pace(state: &AppState) -> BodyPace {
    let http = &state.archive.config.http;
    BodyPace {
        grace: std::time::Duration::from_secs(http.body_grace_secs),
        min_bytes_per_sec: http.body_min_bytes_per_sec,
    }
}

/// Wraps the request body; when it ran out of time, the handler's answer (whatever it made of
/// a body that failed) becomes 408 and the connection is closed.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| Body::new(PacedBody::new(body, pace(&state), late.clone())));
    let response = next.run(request).await;
    if !late.load(Ordering::Relaxed) {
        return response;
    }
    tracing::warn!("a request body came too slowly; the connection is closed");
    let mut response =
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the request body came too slowly").into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

struct PacedBody {
    inner: Body,
    pace: BodyPace,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    late: Arc<AtomicBool>,
}

impl PacedBody {
    fn new(inner: Body, pace: BodyPace, late: Arc<AtomicBool>) -> PacedBody {
        let started = Instant::now();
        let deadline = Box::pin(tokio::time::sleep_until(started + pace.allowed(0)));
        PacedBody { inner, pace, started, received: 0, deadline, late }
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.started + this.pace.allowed(this.received);
                    this.deadline.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.late.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(axum::Error::new("the request body came too slowly"))))
                }
                Poll::Pending => Poll::Pending,
            },
            done => done,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
