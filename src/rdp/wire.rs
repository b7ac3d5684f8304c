//! Reading whole PDUs off a byte stream: TPKT/X.224 and fast-path frames
//! (their headers give their size), CredSSP's DER-framed TsRequests, or
//! whatever a [`ironrdp_pdu::PduHint`] measures. Nothing here trusts a
//! length beyond [`MAX_PDU`].

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest frame accepted: a TPKT length is 16 bits, a fast-path one
/// 15; CredSSP messages are far smaller.
pub const MAX_PDU: usize = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// A stream and the bytes read from it past the last whole frame.
pub struct Reader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// A reader over `inner` that starts with bytes already read from it.
    pub fn with_buffer(inner: R, buf: BytesMut) -> Reader<R> {
        Reader { inner, buf }
    }

    /// Takes back the stream; bytes read ahead are returned too.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.inner, self.buf)
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The next frame measured by `size` (`Ok(None)`: more bytes needed).
    pub async fn frame(
        &mut self,
        size: impl Fn(&[u8]) -> Result<Option<usize>, String>,
    ) -> Result<Bytes, WireError> {
        loop {
            if let Some(n) = size(&self.buf).map_err(WireError::Malformed)? {
                if n == 0 || n > MAX_PDU {
                    return Err(WireError::Malformed(format!("a frame of {n} bytes")));
                }
                if self.buf.len() >= n {
                    return Ok(self.buf.split_to(n).freeze());
                }
            }
            self.fill().await?;
        }
    }

    /// The next RDP frame (TPKT or fast-path).
    pub async fn pdu(&mut self) -> Result<Bytes, WireError> {
        self.frame(pdu_size).await
    }

    /// Every whole RDP frame buffered once at least one is: what one read
    /// brought, relayed and recorded as one batch.
    pub async fn pdus(&mut self, out: &mut Vec<Bytes>) -> Result<(), WireError> {
        out.push(self.pdu().await?);
        while let Some(n) = pdu_size(&self.buf).map_err(WireError::Malformed)? {
            if n == 0 || n > MAX_PDU {
                return Err(WireError::Malformed(format!("a frame of {n} bytes")));
            }
            if self.buf.len() < n {
                break;
            }
            out.push(self.buf.split_to(n).freeze());
        }
        Ok(())
    }

    /// The next CredSSP TsRequest (a DER SEQUENCE).
    pub async fn ts_request(&mut self) -> Result<Bytes, WireError> {
        self.frame(
            |b| match ironrdp_connector::sspi::credssp::TsRequest::read_length(b) {
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                Err(e) => Err(e.to_string()),
            },
        )
        .await
    }

    async fn fill(&mut self) -> Result<(), WireError> {
        if self.buf.len() >= MAX_PDU {
            return Err(WireError::Malformed("a frame too long".into()));
        }
        self.buf.reserve(16 * 1024);
        match self.inner.read_buf(&mut self.buf).await? {
            0 => Err(WireError::Closed),
            _ => Ok(()),
        }
    }
}

/// The size of the RDP frame at the start of `bytes`, if its header is
/// all there.
pub fn pdu_size(bytes: &[u8]) -> Result<Option<usize>, String> {
    match ironrdp_pdu::find_size(bytes) {
        Ok(info) => Ok(info.map(|i| i.length)),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether a frame is TPKT (slow path) rather than fast-path.
pub fn is_x224(frame: &[u8]) -> bool {
    frame.first() == Some(&0x03)
}
