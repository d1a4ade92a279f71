//! PDUs over TCP: dicom-ul encodes and decodes them; this layer bounds every declared length
//! before reading (a lying PDU length never makes the archive wait for or allocate gigabytes)
//! and puts a timeout on every read and write.

use dicom_ul::pdu::{Pdu, read_pdu, write_pdu};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("no data from the peer within {0:?}")]
    Timeout(Duration),
    #[error("a PDU of {len} bytes is over the limit of {max}")]
    TooLarge { len: u32, max: u32 },
    #[error("malformed PDU: {0}")]
    Malformed(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

pub struct PduStream {
    /// Plain TCP or TLS.
    socket: Box<dyn crate::connections::Socket>,
    /// Largest PDU body accepted from the peer.
    max_incoming: u32,
    timeout: Duration,
    /// The peer's announced maximum (0 = unlimited), for P-DATA we send.
    pub peer_max: u32,
}

impl PduStream {
    pub fn new(socket: Box<dyn crate::connections::Socket>, max_incoming: u32, timeout: Duration) -> PduStream {
        PduStream { socket, max_incoming, timeout, peer_max: 0 }
    }

    pub fn set_max_incoming(&mut self, max: u32) {
        self.max_incoming = max;
    }

    /// The next PDU, waiting at most `wait` for it to begin.
    pub async fn recv_within(&mut self, wait: Duration) -> Result<Pdu, TransportError> {
        let mut header = [0u8; 6];
        match tokio::time::timeout(wait, self.socket.read_exact(&mut header)).await {
            Err(_) => return Err(TransportError::Timeout(wait)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(TransportError::Closed),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) => {}
        }
        let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        if len > self.max_incoming {
            return Err(TransportError::TooLarge { len, max: self.max_incoming });
        }
        let mut pdu = Vec::with_capacity(6 + len as usize);
        pdu.extend_from_slice(&header);
        pdu.resize(6 + len as usize, 0);
        match tokio::time::timeout(self.timeout, self.socket.read_exact(&mut pdu[6..])).await {
            Err(_) => return Err(TransportError::Timeout(self.timeout)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(TransportError::Closed),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) => {}
        }
        // dicom-ul checks its own limit on the whole buffer; ours was checked above.
        match read_pdu(&pdu[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false) {
            Ok(Some(pdu)) => Ok(pdu),
            Ok(None) => Err(TransportError::Malformed("a PDU shorter than its header says".into())),
            Err(e) => Err(TransportError::Malformed(e.to_string())),
        }
    }

    pub async fn send(&mut self, pdu: &Pdu) -> Result<(), TransportError> {
        let mut bytes = Vec::new();
        write_pdu(&mut bytes, pdu).map_err(|e| TransportError::Malformed(e.to_string()))?;
        match tokio::time::timeout(self.timeout, self.socket.write_all(&bytes)).await {
            Err(_) => Err(TransportError::Timeout(self.timeout)),
            Ok(r) => Ok(r?),
        }
    }

    /// Sends A-ABORT (service provider) and closes.
    pub async fn abort(mut self) {
        let abort = Pdu::AbortRQ {
            source: dicom_ul::pdu::AbortRQSource::ServiceProvider(
                dicom_ul::pdu::AbortRQServiceProviderReason::ReasonNotSpecified,
            ),
        };
        let _ = self.send(&abort).await;
        let _ = self.socket.shutdown().await;
    }

    pub async fn close(mut self) {
        let _ = self.socket.shutdown().await;
    }
}
