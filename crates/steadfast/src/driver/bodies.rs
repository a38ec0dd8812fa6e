//! Request and response bodies being sent: pulled only while flow control lets
//! their data leave, fairly across streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Body;
use steadfast_proto::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite};

use super::*;
use crate::error::{Error, Kind};

impl<IO> Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Pulls data from the bodies being sent while their streams have room.
    pub(super) fn poll_bodies(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        ids.extend_from_slice(&self.sending);
        // The connection window is shared: what other streams already queued will take
        // it first. Without this, every stream would see the whole window as its own
        // room, and a hundred stalled streams would each pull a window's worth.
        let queued: usize = ids.iter().map(|&id| self.conn.buffered_send(id)).sum();
        let mut connection_room = self.conn.connection_send_window().saturating_sub(queued);
        // Start where the last call stopped, so that no stream is always served last
        // when the shared window is what limits them.
        if !ids.is_empty() {
            let start = self.next_body % ids.len();
            ids.rotate_left(start);
            self.next_body = self.next_body.wrapping_add(1);
        }
        for &id in &ids {
            loop {
                let buffered = self.conn.buffered_send(id);
                let limit = if self.write_buf.is_empty() {
                    SEND_BUFFER_FLOWING
                } else {
                    SEND_BUFFER
                };
                if buffered >= limit {
                    break;
                }
                let Some(slot) = self.slots.get_mut(&id) else {
                    break;
                };
                let Some(body) = slot.send_body.as_mut() else {
                    break;
                };
                // Pull data only while flow control lets it leave: a peer that stops
                // reading stops the body too, so a stalled stream holds nothing beyond
                // what its window allows. A body that may be at its end is still
                // polled once its queue is empty, so END_STREAM or trailers are not
                // held back by a closed window.
                let room = self.conn.send_capacity(id).min(connection_room);
                if room == 0 && (buffered > 0 || body.size_hint().lower() > 0) {
                    break;
                }
                let frame = match Pin::new(body).poll_frame(cx) {
                    Poll::Pending => break,
                    Poll::Ready(frame) => frame,
                };
                progress = true;
                let result = match frame {
                    None => {
                        slot.send_body = None;
                        slot.send_done = true;
                        self.conn.send_data(id, bytes::Bytes::new(), true)
                    }
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            connection_room = connection_room.saturating_sub(data.len());
                            let end = slot.send_body.as_ref().is_some_and(|b| b.is_end_stream());
                            if end {
                                slot.send_body = None;
                                slot.send_done = true;
                            }
                            self.conn.send_data(id, data, end)
                        }
                        Err(frame) => {
                            slot.send_body = None;
                            slot.send_done = true;
                            match frame.into_trailers() {
                                Ok(trailers) => self.conn.send_trailers(id, &trailers),
                                Err(_) => self.conn.send_data(id, bytes::Bytes::new(), true),
                            }
                        }
                    },
                    Some(Err(e)) => {
                        tracing::debug!(stream = %id, error = %e, "body failed; resetting the stream");
                        slot.send_body = None;
                        let code = crate::server::reset_code(&e, ErrorCode::CANCEL);
                        let error = Error::with_fate(Kind::Body(e), self.conn.fate(id), Some(id));
                        if let Some(tx) = slot.response_tx.take() {
                            let _ = tx.send(Err(error));
                        }
                        let _ = self.conn.reset(id, code);
                        self.remove_slot(id);
                        break;
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(stream = %id, error = %e, "could not send body");
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.send_body = None;
                    }
                    break;
                }
                if self.slots.get(&id).is_some_and(|s| s.send_done) {
                    self.maybe_finish_slot(id);
                    break;
                }
            }
        }
        let slots = &self.slots;
        self.sending
            .retain(|id| slots.get(id).is_some_and(|s| s.send_body.is_some()));
        self.scratch = ids;
        progress
    }
}
