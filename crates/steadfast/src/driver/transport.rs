//! The socket and the clock: reading into the engine, writing what it produced,
//! and its timers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use steadfast_proto::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::*;
use crate::error::{Error, Kind};

impl<IO> Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        if self.read_closed || self.conn.is_closed() || self.write_buf.len() >= WRITE_HIGH_WATER {
            return false;
        }
        if self.read_budget == 0 {
            // Read on after other tasks ran.
            cx.waker().wake_by_ref();
            return false;
        }
        // Straight into the engine's buffer, after the start of a frame it may hold:
        // DATA payloads are slices of what the socket wrote, never copied.
        let buf = self.conn.recv_buffer();
        self.recv_bufs.reserve(buf);
        let read = std::pin::pin!(self.io.read_buf(buf)).poll(cx);
        match read {
            Poll::Pending => {
                let buf = self.conn.recv_buffer();
                if self.slots.is_empty() && buf.is_empty() {
                    // Idle: give the buffers back until the peer sends something.
                    *buf = BytesMut::new();
                    self.recv_bufs.clear();
                } else {
                    self.recv_bufs.quiet();
                }
                false
            }
            Poll::Ready(Ok(n)) => {
                self.read_budget = self.read_budget.saturating_sub(n);
                if n == 0 {
                    self.read_closed = true;
                    self.conn.handle_eof(now());
                } else {
                    self.conn.handle_received(now());
                }
                true
            }
            Poll::Ready(Err(e)) => {
                self.transport_failed(e);
                true
            }
        }
    }

    pub(super) fn transport_failed(&mut self, e: io::Error) {
        tracing::debug!(error = %e, "transport failed");
        self.read_closed = true;
        self.io_failed = true;
        self.write_buf.clear();
        if !self.conn.is_closed() {
            if let Ok(mut slot) = self.shared.error.lock() {
                slot.get_or_insert_with(|| Error::new(Kind::Io(e)));
            }
        }
        self.conn.handle_eof(now());
    }

    pub(super) fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.write_buf.is_empty() && !self.io_failed {
            match self.write_buf.poll_write(&mut self.io, cx) {
                Poll::Pending => return progress,
                Poll::Ready(Ok(0)) => {
                    self.transport_failed(io::ErrorKind::WriteZero.into());
                    return true;
                }
                Poll::Ready(Ok(_)) => progress = true,
                Poll::Ready(Err(e)) => {
                    self.transport_failed(e);
                    return true;
                }
            }
        }
        if !self.io_failed {
            if let Poll::Ready(Err(e)) = Pin::new(&mut self.io).poll_flush(cx) {
                self.transport_failed(e);
                return true;
            }
        }
        progress
    }

    pub(super) fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self
            .conn
            .poll_timeout()
            .into_iter()
            .chain(self.drain_deadline)
            .chain(self.linger_until)
            .min();
        let Some(deadline) = deadline else {
            self.sleep_at = None;
            return false;
        };
        if self.sleep_at != Some(deadline) {
            self.sleep.as_mut().reset(deadline.into());
            self.sleep_at = Some(deadline);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.sleep_at = None;
        let now = now();
        if self.drain_deadline.is_some_and(|d| now >= d) {
            self.drain_deadline = None;
            tracing::debug!("graceful shutdown grace period expired; closing");
            self.conn.close(
                ErrorCode::NO_ERROR,
                bytes::Bytes::from_static(b"shutdown grace period expired"),
            );
        }
        self.conn.handle_timeout(now);
        true
    }
}
