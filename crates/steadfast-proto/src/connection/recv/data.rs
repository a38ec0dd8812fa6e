//! DATA (RFC 9113 §6.1): flow control, content-length, and the streams it may arrive on.

use std::time::Instant;

use super::super::{Connection, Event};
use super::Lookup;
use crate::error::ErrorCode;
use crate::frame::Data;

impl Connection {
    pub(super) fn recv_data(&mut self, f: Data, now: Instant) {
        let len = f.flow_controlled_len;
        if self.recv_window.exceeded_by(len) {
            self.connection_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA exceeds the connection window",
            );
            return;
        }
        self.recv_window.consume(len as usize);
        if f.data.is_empty() && !f.end_stream {
            self.count_empty_frame(now);
            if self.is_closed() {
                return;
            }
        }
        let id = f.stream_id;
        match self.stream_lookup(id) {
            Lookup::Active => {}
            Lookup::ResetByUs => {
                self.release_connection(len);
                self.flush_window_updates(None);
                return;
            }
            Lookup::ResetByPeer => {
                self.release_connection(len);
                self.stream_error(
                    id,
                    ErrorCode::STREAM_CLOSED,
                    "DATA after the peer's RST_STREAM",
                );
                self.flush_window_updates(None);
                self.count_reset(now);
                return;
            }
            Lookup::Closed => {
                // Counted toward the connection window and given back (§6.9): the
                // stream is gone, so nothing else would release it.
                self.release_connection(len);
                self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA on a closed stream");
                self.flush_window_updates(None);
                self.count_reset(now);
                return;
            }
            Lookup::Idle => {
                self.connection_error(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
                return;
            }
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.pending_open.is_some() {
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
            return;
        }
        let error = if stream.recv_closed {
            Some((ErrorCode::STREAM_CLOSED, "DATA after END_STREAM"))
        } else if !stream.head_received {
            Some((
                ErrorCode::PROTOCOL_ERROR,
                "DATA before the response HEADERS",
            ))
        } else if stream.recv_window.exceeded_by(len) {
            Some((
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA exceeds the stream window",
            ))
        } else {
            None
        };
        if let Some((code, why)) = error {
            self.release_connection(len);
            self.stream_error(id, code, why);
            self.count_reset(now);
            return;
        }
        stream.recv_window.consume(len as usize);
        stream.body_received += f.data.len() as u64;
        if stream.recv_activity.is_some() && (!f.data.is_empty() || f.end_stream) {
            // The body moved forward (empty DATA frames do not count: they would keep
            // a stream alive for free).
            stream.recv_activity = Some(now);
        }
        let malformed = match stream.content_length {
            Some(cl) if stream.body_received > cl => Some("more DATA than content-length"),
            Some(cl) if f.end_stream && stream.body_received != cl => {
                Some("less DATA than content-length")
            }
            _ => None,
        };
        if let Some(why) = malformed {
            self.release_connection(len);
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, why);
            self.count_reset(now);
            return;
        }
        // Padding is flow-controlled but never reaches the application: release it now.
        let padding = len - f.data.len() as u32;
        stream.recv_unreleased += f.data.len() as u32;
        if !f.end_stream {
            stream.recv_release_pending += padding;
        }
        if f.end_stream {
            stream.recv_closed = true;
        }
        self.release_connection(padding);
        if !f.data.is_empty() || f.end_stream {
            self.events.push_back(Event::Data {
                id,
                data: f.data,
                end_stream: f.end_stream,
            });
        }
        self.flush_window_updates(Some(id));
        if f.end_stream {
            self.maybe_close_stream(id, true);
        }
    }
}
