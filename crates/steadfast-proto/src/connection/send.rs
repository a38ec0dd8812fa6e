//! The send path: batching control frames, HEADERS and flow-controlled DATA into one
//! output, `Connection::out` (and `out_chunks` before it), in the order they are
//! produced.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::Connection;
use crate::frame::{Continuation, Data, Headers, StreamId};
use crate::stream::SendEnd;

/// DATA payloads at least this long are handed over as the application's own `Bytes`
/// (a chunk of their own in `out_chunks`); shorter ones are copied into `out`, where a
/// copy costs less than one more buffer for the transport to gather.
const ZERO_COPY_MIN: usize = 1024;

impl Connection {
    /// Appends everything ready to be written to `dst` and returns how many bytes were
    /// appended (0 when there is nothing to write).
    ///
    /// Frames go out in the order they were produced: control frames and HEADERS
    /// queued since the last call, then DATA from streams with queued data, one frame
    /// per stream in turn, round after round, so that no stream starves the others,
    /// until both flow-control windows or `Config::max_transmit_data` bytes of DATA
    /// per call are used up. Each frame is followed by what writing it caused (the
    /// HEADERS of a stream whose end freed a slot for a queued one, WINDOW_UPDATE). A
    /// locally opened stream's fate becomes `MaybeProcessed` here, when its HEADERS
    /// leave the connection.
    ///
    /// DATA payloads are copied into `dst`;
    /// [`poll_transmit_vectored`](Self::poll_transmit_vectored) avoids that copy.
    pub fn poll_transmit(&mut self, now: Instant, dst: &mut BytesMut) -> usize {
        self.produce_output(now);
        let n = self.out_chunks_len + self.out.len();
        if self.out_chunks.is_empty() && dst.is_empty() {
            // Hand over the whole buffer without copying.
            std::mem::swap(dst, &mut self.out);
        } else {
            dst.reserve(n);
            for chunk in self.out_chunks.drain(..) {
                dst.extend_from_slice(&chunk);
            }
            dst.extend_from_slice(&self.out);
            self.out.clear();
        }
        self.out_chunks_len = 0;
        self.output_handed_over();
        n
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but appends the output to `dst`
    /// as a list of buffers, in wire order, for a vectored write (`writev`): frame
    /// headers and control frames in small buffers, and DATA payloads of 1 KiB or
    /// more as the very `Bytes` given to [`send_data`](Self::send_data) (or slices of
    /// them), never copied. Returns how many bytes were appended.
    pub fn poll_transmit_vectored(&mut self, now: Instant, dst: &mut VecDeque<Bytes>) -> usize {
        self.produce_output(now);
        let n = self.out_chunks_len + self.out.len();
        dst.extend(self.out_chunks.drain(..));
        if !self.out.is_empty() {
            dst.push_back(self.out.split().freeze());
        }
        self.out_chunks_len = 0;
        self.output_handed_over();
        n
    }

    /// Writes the DATA, END_STREAM and trailers that are ready.
    fn produce_output(&mut self, now: Instant) {
        if !self.is_closed() {
            self.write_data();
            self.timers_sync_idle(now);
        }
    }

    /// All output so far was handed to the transport: the HEADERS of locally opened
    /// streams in it have left.
    fn output_handed_over(&mut self) {
        for id in self.unflushed_opens.drain(..) {
            if let Some(s) = self.streams.get_mut(&id) {
                s.mark_sent();
            }
        }
    }

    /// Writes a DATA frame: the header into `out`, and the payload either after it or,
    /// when it is large, as a chunk of its own behind what `out` held so far.
    fn write_data_frame(&mut self, id: StreamId, payload: Bytes, end_stream: bool) {
        Data::encode_header(id, payload.len(), end_stream, &mut self.out);
        if payload.len() < ZERO_COPY_MIN {
            self.out.extend_from_slice(&payload);
            return;
        }
        let head = self.out.split().freeze();
        self.out_chunks_len += head.len() + payload.len();
        self.out_chunks.push_back(head);
        self.out_chunks.push_back(payload);
    }

    /// Writes DATA, END_STREAM and trailers of the streams in `send_ready`.
    ///
    /// Round robin by frame: each turn writes at most one frame for the stream at the
    /// front of `send_ready` and, if it has more to send, puts it at the back. A turn
    /// either spends budget or takes a stream out of the queue (until a WINDOW_UPDATE
    /// or more data schedules it again), so the loop ends.
    fn write_data(&mut self) {
        // Only DATA and trailers count as "sent HEADERS or DATA" for the PING policy,
        // not the WINDOW_UPDATE frames that closing streams also write to `out`.
        let mut sent = false;
        self.resume_conn_blocked();
        let mut budget = self.config.max_transmit_data;
        while budget > 0 {
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
            let mut frame = None;
            if let Some(front) = stream.send_queue.front_mut() {
                let window = stream.send_window.min(conn_window).available();
                let n = front.len().min(window).min(max_frame).min(budget);
                if n > 0 {
                    let chunk: Bytes = front.split_to(n);
                    if front.is_empty() {
                        stream.send_queue.pop_front();
                    }
                    stream.send_queued -= n;
                    stream.send_window.consume(n);
                    let last =
                        stream.send_queued == 0 && matches!(stream.send_end, SendEnd::EndStream);
                    if last {
                        stream.send_closed = true;
                    }
                    frame = Some((chunk, last));
                    wrote = n;
                } else if conn_window.is_closed()
                    && !stream.send_window.is_closed()
                    && !stream.conn_blocked
                {
                    // Only the connection window holds it back: wait in line for it.
                    // (Blocked on its own window, a stream WINDOW_UPDATE resumes it.)
                    stream.conn_blocked = true;
                    self.conn_blocked.push_back(id);
                    self.conn_blocked_live += 1;
                }
            }
            if let Some((chunk, last)) = frame {
                self.write_data_frame(id, chunk, last);
                sent = true;
            }
            self.send_window.consume(wrote);
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
                self.maybe_close_stream(id, false);
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
        let max_frame = self.peer.max_frame_size as usize;
        let mut room = self.send_window.available();
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
            let share = stream
                .send_queued
                .min(stream.send_window.available())
                .min(max_frame);
            room -= share.min(room);
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
