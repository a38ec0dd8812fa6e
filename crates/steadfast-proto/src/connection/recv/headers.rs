//! HEADERS and CONTINUATION (RFC 9113 §6.2, §6.10): field blocks, new streams,
//! responses, trailers, and the limits on their size.

use std::time::Instant;

use bytes::BytesMut;

use super::super::{Connection, Event, PartialBlock, Role};
use super::Lookup;
use crate::error::{ErrorCode, Fate};
use crate::frame::{Continuation, Frame, Headers, RstStream, StreamId};
use crate::message;
use crate::stream::Stream;
use crate::window::Window;

/// A field block whose header list decodes to more than this many times
/// `max_header_list_size` closes the connection at once. A legitimate block is limited
/// by `max_header_block_size` on the wire and Huffman coding expands at most 8/5, so
/// with the defaults only repeated references to large table entries get this far.
const HPACK_BOMB_FACTOR: usize = 4;

impl Connection {
    pub(super) fn recv_headers(&mut self, f: Headers, now: Instant) {
        let self_dependent = f.priority.is_some_and(|p| p.dependency == f.stream_id);
        if f.end_headers {
            self.recv_field_block(f.stream_id, &f.fragment, f.end_stream, self_dependent, now);
            return;
        }
        if f.fragment.len() > self.config.max_header_block_size {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "field block too large");
            return;
        }
        self.partial = Some(PartialBlock {
            stream_id: f.stream_id,
            block: BytesMut::from(&f.fragment[..]),
            end_stream: f.end_stream,
            self_dependent,
            frames: 1,
        });
    }

    pub(super) fn recv_continuation(&mut self, f: Continuation, now: Instant) {
        let Some(mut partial) = self.partial.take() else {
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                "CONTINUATION without a preceding HEADERS",
            );
            return;
        };
        partial.frames += 1;
        if partial.frames > self.config.max_continuation_frames + 1 {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
            return;
        }
        if partial.block.len() + f.fragment.len() > self.config.max_header_block_size {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "field block too large");
            return;
        }
        if f.fragment.is_empty() && !f.end_headers {
            self.count_empty_frame(now);
            if self.is_closed() {
                return;
            }
        }
        partial.block.extend_from_slice(&f.fragment);
        if f.end_headers {
            let block = partial.block.freeze();
            self.recv_field_block(
                partial.stream_id,
                &block,
                partial.end_stream,
                partial.self_dependent,
                now,
            );
        } else {
            self.partial = Some(partial);
        }
    }

    /// A complete field block. It is always decoded first, whatever happens to the
    /// stream, to keep the HPACK state in step with the peer (§4.3).
    pub(super) fn recv_field_block(
        &mut self,
        id: StreamId,
        block: &[u8],
        end_stream: bool,
        self_dependent: bool,
        now: Instant,
    ) {
        let max_list = self.config.max_header_list_size as usize;
        let mut decoded = match self.decoder.decode(block, max_list) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "HPACK decoding failed");
                self.connection_error(ErrorCode::COMPRESSION_ERROR, "HPACK decoding failed");
                return;
            }
        };
        if decoded.over_limit && self.too_many_oversized_blocks(&decoded, block.len()) {
            return;
        }
        if decoded.fields.len() > message::MAX_FIELDS {
            // More fields than a message can hold: rejected as too large (431 for a
            // request, a stream error otherwise), like a list above our limit.
            decoded.over_limit = true;
            decoded.fields = Vec::new();
        }
        let lookup = self.stream_lookup(id);
        match (self.role, lookup) {
            (_, Lookup::ResetByUs) => {
                // A stream reset while idle (a broken PRIORITY) is used now (§5.1.1):
                // a lower id opened after this is out of order.
                if self.role == Role::Server && id.is_client_initiated() && id > self.last_remote_id
                {
                    self.last_remote_id = id;
                }
            }
            (_, Lookup::ResetByPeer) => {
                self.stream_error(
                    id,
                    ErrorCode::STREAM_CLOSED,
                    "HEADERS after the peer's RST_STREAM",
                );
                self.count_reset(now);
            }
            (Role::Server, Lookup::Closed) => {
                // §5.1.1: a client opens streams with ever higher ids. A field block on
                // an id at or below the last one it used, for a stream neither open nor
                // recently reset, reuses an id or opens one out of order: an unexpected
                // stream identifier (and a frame on a closed stream, which §5.1 lets
                // us treat as a connection error too).
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "HEADERS on a stream id the client already used or skipped",
                );
            }
            (_, Lookup::Closed) => {
                self.stream_error(id, ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream");
                self.count_reset(now);
            }
            (Role::Client, Lookup::Idle) => {
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "HEADERS on a stream the client never opened",
                );
            }
            (Role::Server, Lookup::Idle) => {
                if !id.is_client_initiated() {
                    self.connection_error(
                        ErrorCode::PROTOCOL_ERROR,
                        "client opened an even-numbered stream",
                    );
                    return;
                }
                self.accept_stream(id, decoded, end_stream, self_dependent, now);
            }
            (_, Lookup::Active) => {
                if self_dependent {
                    self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "stream depends on itself");
                    self.count_reset(now);
                    return;
                }
                self.recv_headers_on_stream(id, decoded, end_stream, now);
            }
        }
    }

    /// (Server) A new stream from the client.
    pub(super) fn accept_stream(
        &mut self,
        id: StreamId,
        decoded: steadfast_hpack::DecodedBlock,
        end_stream: bool,
        self_dependent: bool,
        now: Instant,
    ) {
        self.last_remote_id = id;
        if let Some(g) = &self.goaway_sent {
            if id > g.last_stream_id {
                // §6.8: streams above our GOAWAY's last-stream-id are not processed;
                // the client knows they were refused.
                self.remember_reset(id);
                return;
            }
        }
        if self_dependent {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "stream depends on itself");
            self.count_reset(now);
            return;
        }
        let limit = self.effective_max_concurrent_streams();
        if self.active_remote >= limit as usize {
            // §5.1.2: refused before any processing, so the client may retry it.
            self.stream_error(
                id,
                ErrorCode::REFUSED_STREAM,
                "SETTINGS_MAX_CONCURRENT_STREAMS exceeded",
            );
            self.count_reset(now);
            return;
        }
        if decoded.over_limit {
            self.reject_oversized_request(id, end_stream);
            self.count_reset(now);
            return;
        }
        let connect = self.config.enable_connect_protocol;
        let head = match message::decode_request(decoded.fields, connect) {
            Ok(h) => h,
            Err(why) => {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, why);
                self.count_reset(now);
                return;
            }
        };
        if end_stream && head.content_length.is_some_and(|cl| cl > 0) {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "content-length without DATA");
            self.count_reset(now);
            return;
        }
        let mut stream = Stream::new(
            id,
            false,
            Window::new(self.peer.initial_window_size),
            Window::new(self.local_initial_window()),
        );
        stream.head_received = true;
        stream.recv_closed = end_stream;
        stream.content_length = head.content_length;
        if head.head.method() == http::Method::CONNECT
            && head.head.extensions().get::<message::Protocol>().is_none()
        {
            self.tunnels.insert(id);
        }
        self.streams.insert(id, stream);
        self.timers_on_stream_opened();
        if !end_stream {
            self.timers_on_body_expected(id, now);
        }
        self.active_remote += 1;
        self.last_processed_remote_id = id;
        self.events.push_back(Event::Request {
            id,
            request: head.head,
            end_stream,
        });
    }

    /// §10.5.1: a server may answer a field block larger than it accepts with 431.
    pub(super) fn reject_oversized_request(&mut self, id: StreamId, end_stream: bool) {
        let mut res = http::Response::new(());
        *res.status_mut() = http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        if let Ok(fields) = message::response_fields(&res) {
            self.write_headers(id, &fields, true);
        }
        if !end_stream {
            // The response is complete; ask the client to stop sending (§8.1).
            self.write_frame(&Frame::RstStream(RstStream::new(id, ErrorCode::NO_ERROR)));
        }
        self.remember_reset(id);
    }

    pub(super) fn effective_max_concurrent_streams(&self) -> u32 {
        // Enforce the lowest value we advertised, acknowledged or not: refusing is
        // always safe for the client.
        self.pending_settings
            .iter()
            .filter_map(|(s, _)| s.max_concurrent_streams)
            .chain(self.local.max_concurrent_streams)
            .chain(std::iter::once(self.config.max_concurrent_streams))
            .min()
            .unwrap_or(u32::MAX)
    }

    /// HEADERS on a stream we know: a response (client), or trailers.
    pub(super) fn recv_headers_on_stream(
        &mut self,
        id: StreamId,
        decoded: steadfast_hpack::DecodedBlock,
        end_stream: bool,
        now: Instant,
    ) {
        let role = self.role;
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.pending_open.is_some() {
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on a stream the client has not opened yet",
            );
            return;
        }
        if stream.recv_closed {
            self.stream_error(id, ErrorCode::STREAM_CLOSED, "HEADERS after END_STREAM");
            self.count_reset(now);
            return;
        }
        if decoded.over_limit {
            self.stream_error(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "field block larger than our SETTINGS_MAX_HEADER_LIST_SIZE",
            );
            self.count_reset(now);
            return;
        }
        if role == Role::Client && !stream.head_received {
            let head = match message::decode_response(decoded.fields) {
                Ok(h) => h,
                Err(why) => {
                    // The server did answer: the request was processed.
                    stream.fate = Fate::Processed;
                    self.stream_error(id, ErrorCode::PROTOCOL_ERROR, why);
                    self.count_reset(now);
                    return;
                }
            };
            stream.fate = Fate::Processed;
            let status = head.head.status();
            if status.is_informational() {
                if end_stream {
                    self.stream_error(
                        id,
                        ErrorCode::PROTOCOL_ERROR,
                        "1xx response with END_STREAM",
                    );
                    self.count_reset(now);
                    return;
                }
                self.events.push_back(Event::Informational {
                    id,
                    response: head.head,
                });
                return;
            }
            stream.head_received = true;
            let no_body = stream.head_request
                || status == http::StatusCode::NO_CONTENT
                || status == http::StatusCode::NOT_MODIFIED;
            stream.content_length = if no_body {
                Some(0)
            } else {
                head.content_length
            };
            if self.tunnels.contains(&id) {
                if status.is_success() {
                    // §8.5: a tunnel, which has no content (RFC 9110 §6.4.1): any
                    // content-length is ignored (RFC 9110 §9.3.6).
                    stream.content_length = None;
                } else {
                    self.tunnels.remove(&id);
                }
            }
            if end_stream && stream.content_length.is_some_and(|cl| cl > 0) {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "content-length without DATA");
                self.count_reset(now);
                return;
            }
            stream.recv_closed = end_stream;
            self.events.push_back(Event::Response {
                id,
                response: head.head,
                end_stream,
            });
            if end_stream {
                self.maybe_close_stream(id, true);
            } else {
                self.timers_on_body_expected(id, now);
            }
            return;
        }
        // §8.5: only DATA and stream management frames on an established CONNECT stream.
        if self.tunnels.contains(&id) {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "HEADERS on a CONNECT tunnel");
            self.count_reset(now);
            return;
        }
        // Trailers: they must end the stream (§8.1).
        if !end_stream {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "trailers without END_STREAM");
            self.count_reset(now);
            return;
        }
        if stream
            .content_length
            .is_some_and(|cl| cl != stream.body_received)
        {
            self.stream_error(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "less DATA than content-length",
            );
            self.count_reset(now);
            return;
        }
        let trailers = match message::decode_trailers(decoded.fields) {
            Ok(t) => t,
            Err(why) => {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, why);
                self.count_reset(now);
                return;
            }
        };
        stream.recv_closed = true;
        self.events.push_back(Event::Trailers { id, trailers });
        self.maybe_close_stream(id, true);
    }

    /// A field block over `max_header_list_size` arrived: true when that closed the
    /// connection (an HPACK bomb, or one oversized block too many).
    pub(super) fn too_many_oversized_blocks(
        &mut self,
        decoded: &steadfast_hpack::DecodedBlock,
        encoded_len: usize,
    ) -> bool {
        self.oversized_blocks = self.oversized_blocks.saturating_add(1);
        let limit = self.config.max_header_list_size as usize;
        let reason = if decoded.list_size > limit.saturating_mul(HPACK_BOMB_FACTOR) {
            "HPACK bomb: a field block decodes to over 4x SETTINGS_MAX_HEADER_LIST_SIZE"
        } else if self.oversized_blocks > self.config.max_oversized_header_blocks {
            "too many field blocks over SETTINGS_MAX_HEADER_LIST_SIZE"
        } else {
            return false;
        };
        tracing::debug!(
            list_size = decoded.list_size,
            encoded_len,
            blocks = self.oversized_blocks,
            "oversized field blocks"
        );
        self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, reason);
        true
    }
}
