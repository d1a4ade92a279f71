//! What both listeners share to stay reachable: the open-file budget, the gate that caps
//! connections per address and in all, and what to do when `accept` itself fails.

use crate::config::Config;
use cloudfilm_core::connections::{ConnectionBudget, ConnectionGate, GateRefusal};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Raises the soft open-file limit to the hard one (once; later calls see it raised) and
/// splits it between HTTP and DIMSE connections.
pub fn budget(config: &Config) -> ConnectionBudget {
    let open_files = raise_open_files_limit();
    let dimse_wanted = if config.dimse.enabled { config.dimse.max_associations.max(1) * 2 } else { 0 };
    ConnectionBudget::plan(open_files, config.http.max_connections, dimse_wanted)
}

/// The soft RLIMIT_NOFILE after raising it as far as the hard limit allows.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

/// A gate shared by one listener's connections.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Mutex<ConnectionGate>>,
    /// Which listener, for the log.
    name: &'static str,
    last_logged: Arc<AtomicU64>,
}

/// A connection the gate took; it counts until dropped.
pub struct Admission {
    gate: Arc<Mutex<ConnectionGate>>,
    peer: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.lock().expect("the connection gate").release(self.peer);
    }
}

impl Gate {
    /// A gate; connections from `uncapped` networks (trusted proxies) count only in all.
    pub fn new(name: &'static str, per_address: usize, total: usize, uncapped: Vec<ipnet::IpNet>) -> Gate {
        Gate {
            inner: Arc::new(Mutex::new(ConnectionGate::new(per_address, total).without_address_cap_for(uncapped))),
            name,
            last_logged: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Admits a connection from `peer`, or logs (at most every ten seconds) why not.
    pub fn admit(&self, peer: IpAddr) -> Result<Admission, GateRefusal> {
        let verdict = self.inner.lock().expect("the connection gate").admit(peer);
        match verdict {
            Ok(()) => Ok(Admission { gate: self.inner.clone(), peer }),
            Err(refusal) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let last = self.last_logged.load(Ordering::Relaxed);
                if now >= last + 10
                    && self.last_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    let why = match refusal {
                        GateRefusal::PerAddress => "one address holds its share of connections",
                        GateRefusal::Total => "the listener holds as many connections as it may",
                    };
                    tracing::warn!(listener = self.name, peer = %peer, reason = why, "connections refused");
                }
                Err(refusal)
            }
        }
    }
}

/// The next connection of `listener` (for the `listener` log field). A failed `accept` is
/// logged and retried; out of file descriptors it first waits a moment, since the error would
/// otherwise repeat at once and spin a core.
pub async fn accept(listener: &tokio::net::TcpListener, name: &'static str) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(pair) => return pair,
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accepting a connection failed");
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS)) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// A connection's byte stream, plain or TLS, as the HTTP and DIMSE servers read and write it.
pub trait Socket: AsyncRead + AsyncWrite + Send + Sync + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Socket for T {}

/// A socket whose writes fail with `TimedOut` once one has waited `limit` without progress:
/// a client that stops reading its response does not hold the connection for ever.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline { inner, limit, stalled: None }
    }

    /// What a write's poll gives, failing it if it has been pending too long.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read none of the response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
