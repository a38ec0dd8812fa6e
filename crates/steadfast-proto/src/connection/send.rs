//! The send path: batching control frames, HEADERS and flow-controlled DATA into one
//! output buffer, `Connection::out`, in the order they are produced.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::Connection;
use crate::frame::{Continuation, Data, Headers, StreamId};
use crate::stream::SendEnd;

impl Connection {
    /// Appends everything ready to be written to `dst` and returns how many bytes were
    /// appended (0 when there is nothing to write).
    ///
    /// Frames go out in the order they were produced: control frames and HEADERS
    /// queued since the last call, then DATA from streams with queued data, one frame
    /// per stream in turn so that no stream starves the others, within both
    /// flow-control windows and at most `Config::max_transmit_data` bytes of DATA per
    /// call, each followed by what writing it caused (the HEADERS of a stream whose end
    /// freed a slot for a queued one, WINDOW_UPDATE). A locally opened stream's fate
    /// becomes `MaybeProcessed` here, when its HEADERS leave the connection.
    pub fn poll_transmit(&mut self, now: Instant, dst: &mut BytesMut) -> usize {
        let start = dst.len();
        // Every frame, DATA included, is written to `out` at the moment it is produced,
        // and `out` is handed over whole: the peer's HPACK decoder sees the field
        // blocks in exactly the order our encoder produced them (a trailer section
        // and the HEADERS of a stream that a freed slot opened cannot swap places).
        // Bytes the caller still holds in `dst` go first, so they become the start of
        // `out`; DATA is never copied either way.
        if !dst.is_empty() {
            dst.extend_from_slice(&self.out);
            self.out.clear();
            std::mem::swap(dst, &mut self.out);
        }
        if !self.is_closed() {
            self.write_data();
            self.timers_sync_idle(now);
        }
        // `dst` is empty here: hand over the whole buffer without copying.
        std::mem::swap(dst, &mut self.out);
        for id in self.unflushed_opens.drain(..) {
            if let Some(s) = self.streams.get_mut(&id) {
                s.mark_sent();
            }
        }
        dst.len() - start
    }

    /// Writes DATA, END_STREAM and trailers of the streams in `send_ready` to `out`.
    fn write_data(&mut self) {
        // Only DATA and trailers count as "sent HEADERS or DATA" for the PING policy,
        // not the WINDOW_UPDATE frames that closing streams also write to `out`.
        let mut sent = false;
        self.resume_conn_blocked();
        let mut budget = self.config.max_transmit_data;
        let mut rounds = self.send_ready.len();
        while rounds > 0 && budget > 0 {
            rounds -= 1;
            let Some(id) = self.send_ready.pop_front() else {
                break;
            };
            let max_frame = self.peer.max_frame_size as usize;
            let conn_window = self.send_window;
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.scheduled = false;
            if !stream.has_send_work() {
                continue;
            }
            let mut wrote = 0;
            if let Some(front) = stream.send_queue.front_mut() {
                let window = stream.send_window.min(conn_window).max(0) as usize;
                let n = front.len().min(window).min(max_frame).min(budget.max(1));
                if n > 0 {
                    let chunk: Bytes = front.split_to(n);
                    if front.is_empty() {
                        stream.send_queue.pop_front();
                    }
                    stream.send_queued -= n;
                    stream.send_window -= n as i64;
                    let last =
                        stream.send_queued == 0 && matches!(stream.send_end, SendEnd::EndStream);
                    if last {
                        stream.send_closed = true;
                    }
                    Data::encode_parts(id, &chunk, last, &mut self.out);
                    sent = true;
                    wrote = n;
                } else if conn_window <= 0 && stream.send_window > 0 && !stream.conn_blocked {
                    // Only the connection window holds it back: wait in line for it.
                    // (Blocked on its own window, a stream WINDOW_UPDATE resumes it.)
                    stream.conn_blocked = true;
                    self.conn_blocked.push_back(id);
                    self.conn_blocked_live += 1;
                }
            }
            self.send_window -= wrote as i64;
            budget = budget.saturating_sub(wrote);
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if stream.send_queued == 0 && !stream.send_closed {
                match std::mem::replace(&mut stream.send_end, SendEnd::Open) {
                    SendEnd::Open => {}
                    SendEnd::EndStream => {
                        stream.send_closed = true;
                        Data::encode_parts(id, &[], true, &mut self.out);
                        sent = true;
                    }
                    SendEnd::Trailers(fields) => {
                        stream.send_closed = true;
                        // Through the one path that HPACK-encodes into `out`.
                        self.write_headers(id, &fields, true);
                    }
                }
            }
            let Some(stream) = self.streams.get(&id) else {
                continue;
            };
            if stream.send_closed {
                self.maybe_close_stream(id);
            } else if wrote > 0 && stream.has_send_work() {
                // More to send: back of the queue, for fairness.
                self.schedule(id);
            }
            // A stream blocked on flow control is rescheduled by WINDOW_UPDATE.
        }
        if sent {
            self.timers_on_headers_or_data_sent();
        }
    }
}

impl Connection {
    /// Streams waiting for the connection window rejoin the send queue, oldest first,
    /// as long as the window could give each of them something: the work is bounded by
    /// what can be sent, not by how many streams wait.
    fn resume_conn_blocked(&mut self) {
        let max_frame = i64::from(self.peer.max_frame_size);
        let mut room = self.send_window;
        while room > 0 {
            let Some(id) = self.conn_blocked.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(&id) else {
                // Removed since (and already uncounted by `forget_blocked`).
                continue;
            };
            if !stream.conn_blocked {
                continue;
            }
            stream.conn_blocked = false;
            self.conn_blocked_live = self.conn_blocked_live.saturating_sub(1);
            // What it can send in one frame. A stream whose own window went to zero
            // or below since (SETTINGS_INITIAL_WINDOW_SIZE) costs nothing here: it
            // writes nothing and waits for its stream WINDOW_UPDATE. So every stream
            // counted writes something, and a call that leaves window unused has
            // written, and will be called again, until nothing waits.
            let share = (stream.send_queued as i64)
                .min(stream.send_window)
                .min(max_frame);
            room -= share.max(0);
            self.schedule(id);
        }
    }
}

/// Writes the 9-byte header of a HEADERS frame carrying a whole field block.
pub(super) fn write_headers_frame_header(
    dst: &mut BytesMut,
    id: StreamId,
    len: usize,
    end_stream: bool,
) {
    Headers {
        stream_id: id,
        priority: None,
        fragment: Bytes::new(),
        end_stream,
        end_headers: true,
    }
    .encode_header(len, dst);
}

/// Writes a field block as HEADERS followed by as many CONTINUATION frames as the
/// peer's maximum frame size requires.
pub(super) fn write_field_block(
    dst: &mut BytesMut,
    id: StreamId,
    mut block: Bytes,
    end_stream: bool,
    max_frame_size: u32,
) {
    let max = max_frame_size as usize;
    let first = block.split_to(block.len().min(max));
    Headers {
        stream_id: id,
        priority: None,
        fragment: first,
        end_stream,
        end_headers: block.is_empty(),
    }
    .encode(dst);
    while !block.is_empty() {
        let fragment = block.split_to(block.len().min(max));
        Continuation {
            stream_id: id,
            fragment,
            end_headers: block.is_empty(),
        }
        .encode(dst);
    }
}
