//! What the driver has taken from the engine and not yet written to the transport.
//!
//! On a transport that gathers buffers (`writev`: TCP, and TLS, whose records are
//! built from all the buffers at once), the output stays as the engine handed it:
//! frame headers and control frames in small buffers, DATA payloads as the
//! application's own `Bytes`, so body bytes are never copied on their way to the
//! kernel. Elsewhere it is one contiguous buffer that DATA is copied into.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use steadfast_proto::Connection;
use tokio::io::AsyncWrite;

/// Buffers passed to one vectored write, at most: 32 DATA frames (header and
/// payload), 512 KiB at the default frame size.
const MAX_IOV: usize = 64;
/// An emptied contiguous buffer larger than this is freed rather than kept.
const KEEP_FLAT: usize = 64 << 10;

#[derive(Debug)]
pub(crate) struct WriteBuf {
    vectored: bool,
    /// The output in wire order (vectored transports).
    chunks: VecDeque<Bytes>,
    /// The output in one piece (other transports).
    flat: BytesMut,
    /// Bytes in `chunks`.
    chunks_len: usize,
}

impl WriteBuf {
    /// An empty buffer for a transport that does (`vectored`) or does not gather.
    pub(crate) fn new(vectored: bool) -> Self {
        Self {
            vectored,
            chunks: VecDeque::new(),
            flat: BytesMut::new(),
            chunks_len: 0,
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.chunks_len + self.flat.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything waiting (the transport failed).
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.chunks_len = 0;
        self.flat = BytesMut::new();
    }

    /// Takes what the engine has to write ([`Connection::poll_transmit`]); returns
    /// how many bytes.
    pub(crate) fn fill(&mut self, conn: &mut Connection, now: Instant) -> usize {
        if self.vectored {
            let n = conn.poll_transmit_vectored(now, &mut self.chunks);
            self.chunks_len += n;
            n
        } else {
            conn.poll_transmit(now, &mut self.flat)
        }
    }

    /// One write to `io`: as many buffers as one vectored write takes, or the
    /// contiguous buffer. Returns how many bytes it took (0: the transport takes no
    /// more).
    pub(crate) fn poll_write<IO>(
        &mut self,
        io: &mut IO,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>>
    where
        IO: AsyncWrite + Unpin,
    {
        if !self.vectored {
            let n = ready!(Pin::new(io).poll_write(cx, &self.flat))?;
            self.flat.advance(n);
            if self.flat.is_empty() && self.flat.capacity() > KEEP_FLAT {
                // A burst (many responses at once) grew it: give it back rather than
                // hold it for the connection's lifetime.
                self.flat = BytesMut::new();
            }
            return Poll::Ready(Ok(n));
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (slice, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slice = IoSlice::new(chunk);
            count += 1;
        }
        let n = ready!(Pin::new(io).poll_write_vectored(cx, &slices[..count]))?;
        self.advance(n);
        Poll::Ready(Ok(n))
    }

    /// Drops the first `n` bytes of `chunks`, which were written.
    fn advance(&mut self, mut n: usize) {
        self.chunks_len -= n.min(self.chunks_len);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() && self.chunks.capacity() > 4 * MAX_IOV {
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_whole_chunks_then_part_of_one() {
        let mut buf = WriteBuf::new(true);
        for c in [&b"abc"[..], b"defgh", b"ij"] {
            buf.chunks.push_back(Bytes::copy_from_slice(c));
            buf.chunks_len += c.len();
        }
        buf.advance(5);
        assert_eq!(buf.len(), 5);
        assert_eq!(&buf.chunks[0][..], b"fgh");
        buf.advance(3);
        assert_eq!(buf.chunks.len(), 1);
        buf.advance(2);
        assert!(buf.is_empty() && buf.chunks.is_empty());
    }
}
