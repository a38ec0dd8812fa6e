//! The receive path: preface, frame decoding, and every per-frame rule of RFC 9113
//! that depends on connection or stream state.

use std::time::Instant;

use bytes::BytesMut;

use super::timers::KEEPALIVE_PING;
use super::{Connection, Event, PartialBlock, ResetBy, Role, Shutdown, PREFACE, SHUTDOWN_PING};
use crate::error::{Error, ErrorCode, Fate, Initiator};
use crate::frame::{
    self, Continuation, Data, Frame, FrameError, GoAwayFrame, Headers, Ping, RstStream,
    SettingsFrame, StreamId, WindowUpdate, MAX_WINDOW_SIZE,
};
use crate::message;
use crate::stream::Stream;

/// A field block whose header list decodes to more than this many times
/// `max_header_list_size` closes the connection at once. A legitimate block is limited
/// by `max_header_block_size` on the wire and Huffman coding expands at most 8/5, so
/// with the defaults only repeated references to large table entries get this far.
const HPACK_BOMB_FACTOR: usize = 4;

/// Where a frame's stream id stands relative to this connection.
enum Lookup {
    /// The stream is known (open or half-closed, or waiting to be opened locally).
    Active,
    /// Reset recently by us: late frames are expected and ignored (§5.1 "closed").
    ResetByUs,
    /// Reset recently by the peer: any frame but PRIORITY (and RST_STREAM, which is
    /// never answered) is a stream error STREAM_CLOSED (§5.1 "closed").
    ResetByPeer,
    /// Closed earlier (or implicitly closed by a higher id).
    Closed,
    /// Never opened.
    Idle,
}

impl Connection {
    pub(super) fn process_input(&mut self, now: Instant) {
        if self.preface_remaining > 0 && !self.match_preface() {
            return;
        }
        if self.role == Role::Client && !self.handshake_done && self.diagnose_server_preface() {
            return;
        }
        loop {
            if self.is_closed() {
                return;
            }
            let max = self.max_recv_frame_size();
            match frame::decode(&mut self.recv_buf, max) {
                Ok(None) => break,
                Ok(Some(frame)) => self.handle_frame(frame, now),
                Err(FrameError::Connection(code, why)) => {
                    self.connection_error(code, why);
                    return;
                }
                Err(FrameError::Stream(id, code, why)) => {
                    if self.partial.is_some() {
                        self.connection_error(
                            ErrorCode::PROTOCOL_ERROR,
                            "frame interleaved with a field block",
                        );
                        return;
                    }
                    // Only PRIORITY produces stream errors at decode time (wrong
                    // length, §6.3; depending on itself, §5.3.1), and it may name an
                    // idle stream. §6.4 forbids RST_STREAM on an idle stream, but the
                    // error must be signalled, and RST_STREAM is what h2spec expects
                    // and Go's and h2's servers send; closing the whole connection
                    // (as nghttpd does) would punish every other stream. The id is
                    // then remembered as reset by us, without being used (see
                    // `recv_field_block`).
                    self.stream_error(id, code, why);
                    self.count_reset(now);
                }
            }
        }
        // Hold no buffer memory while nothing is pending and no stream is open. (How
        // large a buffer is kept otherwise is up to whoever fills it: see
        // `handle_read` and `recv_buffer`.)
        if self.recv_buf.is_empty() && self.streams.is_empty() {
            self.recv_buf = BytesMut::new();
        }
    }

    /// Matches the client preface byte by byte as it arrives (server only).
    fn match_preface(&mut self) -> bool {
        let offset = PREFACE.len() - self.preface_remaining;
        let n = self.recv_buf.len().min(self.preface_remaining);
        if self.recv_buf[..n] != PREFACE[offset..offset + n] {
            let reason = if self.recv_buf.first() == Some(&0x16) && offset == 0 {
                "TLS handshake received on a cleartext HTTP/2 connection"
            } else if offset == 0 && looks_like_http1(&self.recv_buf) {
                "HTTP/1.x request received on an HTTP/2 connection"
            } else {
                "invalid HTTP/2 connection preface"
            };
            self.connection_error(ErrorCode::PROTOCOL_ERROR, reason);
            return false;
        }
        let _ = self.recv_buf.split_to(n);
        self.preface_remaining -= n;
        self.preface_remaining == 0
    }

    /// A client's first bytes from the server should be a SETTINGS frame; a TLS
    /// record or an HTTP/1 status line means the two sides disagree on the protocol,
    /// which deserves a clearer word than FRAME_SIZE_ERROR.
    fn diagnose_server_preface(&mut self) -> bool {
        let buf = &self.recv_buf[..];
        let reason = if buf.len() >= 2 && matches!(buf[0], 0x15 | 0x16) && buf[1] == 0x03 {
            "the server answered with TLS: connect with https:// instead of h2c"
        } else if buf.starts_with(b"HTTP/1.")
            || (!buf.is_empty() && buf.len() < 7 && b"HTTP/1.".starts_with(buf))
        {
            "the server answered with HTTP/1.x: it does not accept HTTP/2 with prior knowledge"
        } else if buf.len() >= frame::HEADER_LEN && !is_settings_header(buf) {
            // §3.4: the server's preface is a SETTINGS frame. Bytes that are not one
            // (an HTML page, a banner, another protocol) would otherwise be misread as
            // a frame of some absurd size: show them instead.
            let shown: Vec<u8> = buf.iter().take(48).copied().collect();
            let reason = format!(
                "the server's first bytes are not HTTP/2 (expected a SETTINGS frame): \"{}\"{}",
                shown.escape_ascii(),
                if buf.len() > shown.len() { "..." } else { "" }
            );
            self.connection_error(ErrorCode::PROTOCOL_ERROR, reason);
            return true;
        } else {
            return false;
        };
        self.connection_error(ErrorCode::PROTOCOL_ERROR, reason);
        true
    }

    fn max_recv_frame_size(&self) -> u32 {
        // The peer may use a larger size as soon as it processed our SETTINGS, before we
        // see its ACK: accept the largest value acknowledged or in flight.
        self.pending_settings
            .iter()
            .filter_map(|(s, _)| s.max_frame_size)
            .chain(self.local.max_frame_size)
            .max()
            .unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE)
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) {
        if !self.handshake_done && !matches!(frame, Frame::Settings(SettingsFrame::Values(_))) {
            // §3.4: the preface's SETTINGS must be the first frame.
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "first frame is not SETTINGS");
            return;
        }
        if let Some(partial) = &self.partial {
            // §6.10: nothing may interleave with a field block.
            let ok = matches!(&frame, Frame::Continuation(c) if c.stream_id == partial.stream_id);
            if !ok {
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "expected CONTINUATION for the field block in progress",
                );
                return;
            }
        }
        tracing::trace!(?frame, "recv");
        match frame {
            Frame::Data(f) => self.recv_data(f, now),
            Frame::Headers(f) => self.recv_headers(f, now),
            Frame::Priority(_) => {}
            Frame::RstStream(f) => self.recv_rst_stream(f, now),
            Frame::Settings(f) => self.recv_settings(f, now),
            Frame::PushPromise(_) => {
                // Clients advertise SETTINGS_ENABLE_PUSH=0 and servers never accept
                // pushes (§6.6, §8.4).
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "PUSH_PROMISE received but push is disabled",
                );
            }
            Frame::Ping(f) => self.recv_ping(f, now),
            Frame::GoAway(f) => self.recv_goaway(f),
            Frame::WindowUpdate(f) => self.recv_window_update(f, now),
            Frame::Continuation(f) => self.recv_continuation(f, now),
            Frame::Unknown(_) => {}
        }
    }

    fn stream_lookup(&self, id: StreamId) -> Lookup {
        if self.streams.contains_key(&id) {
            return Lookup::Active;
        }
        match self.reset_streams.get(&id) {
            Some(ResetBy::Us) => return Lookup::ResetByUs,
            Some(ResetBy::Peer) => return Lookup::ResetByPeer,
            None => {}
        }
        let local = match self.role {
            Role::Client => id.is_client_initiated(),
            Role::Server => !id.is_client_initiated(),
        };
        let opened = if local {
            id.get() < self.next_local_id
        } else {
            id <= self.last_remote_id
        };
        if opened {
            Lookup::Closed
        } else {
            Lookup::Idle
        }
    }

    // ---- DATA ----

    fn recv_data(&mut self, f: Data, now: Instant) {
        let len = f.flow_controlled_len;
        if i64::from(len) > self.recv_window {
            self.connection_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA exceeds the connection window",
            );
            return;
        }
        self.recv_window -= i64::from(len);
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
        } else if i64::from(len) > stream.recv_window {
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
        stream.recv_window -= i64::from(len);
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
            self.maybe_close_stream(id);
        }
    }

    // ---- HEADERS / CONTINUATION ----

    fn recv_headers(&mut self, f: Headers, now: Instant) {
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

    fn recv_continuation(&mut self, f: Continuation, now: Instant) {
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
    fn recv_field_block(
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
    fn accept_stream(
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
            i64::from(self.peer.initial_window_size),
            i64::from(self.local_initial_window()),
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
    fn reject_oversized_request(&mut self, id: StreamId, end_stream: bool) {
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

    fn effective_max_concurrent_streams(&self) -> u32 {
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
    fn recv_headers_on_stream(
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
                self.maybe_close_stream(id);
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
        self.maybe_close_stream(id);
    }

    /// A field block over `max_header_list_size` arrived: true when that closed the
    /// connection (an HPACK bomb, or one oversized block too many).
    fn too_many_oversized_blocks(
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

    // ---- RST_STREAM ----

    fn recv_rst_stream(&mut self, f: RstStream, now: Instant) {
        let id = f.stream_id;
        match self.stream_lookup(id) {
            Lookup::Idle => {
                self.connection_error(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on an idle stream");
            }
            // Never answer RST_STREAM with RST_STREAM (§5.4.2).
            Lookup::ResetByUs | Lookup::ResetByPeer | Lookup::Closed => {}
            Lookup::Active => {
                if self
                    .streams
                    .get(&id)
                    .is_some_and(|s| s.pending_open.is_some())
                {
                    self.connection_error(
                        ErrorCode::PROTOCOL_ERROR,
                        "RST_STREAM on an idle stream",
                    );
                    return;
                }
                // Rapid reset (CVE-2023-44487) is a peer cancelling streams it opened
                // itself; a server refusing or cancelling our streams (load shedding)
                // costs us nothing and must not count against it.
                if self.streams.get(&id).is_some_and(|s| !s.local) {
                    self.count_reset(now);
                }
                if let Some(mut stream) = self.remove_stream(id) {
                    if stream.local
                        && f.code == ErrorCode::REFUSED_STREAM
                        && stream.fate != Fate::Processed
                    {
                        stream.fate = Fate::Refused;
                    }
                    let fate = stream.local.then_some(stream.fate);
                    self.events.push_back(Event::StreamError {
                        id,
                        error: Error::Reset {
                            stream_id: id,
                            code: f.code,
                            initiator: Initiator::Remote,
                            reason: None,
                        },
                        fate,
                    });
                }
                self.remember_reset_by(id, ResetBy::Peer);
                self.maybe_finish();
            }
        }
    }

    // ---- SETTINGS ----

    fn recv_settings(&mut self, f: SettingsFrame, now: Instant) {
        self.count_flood(
            now,
            |c| &mut c.settings,
            |l| l.max_settings,
            "SETTINGS flood",
        );
        if self.is_closed() {
            return;
        }
        let settings = match f {
            SettingsFrame::Ack => {
                if let Some((acked, _)) = self.pending_settings.pop_front() {
                    self.apply_local_settings(acked);
                    self.events.push_back(Event::SettingsAcked);
                }
                return;
            }
            SettingsFrame::Values(s) => s,
        };
        if self.role == Role::Client && settings.enable_push == Some(true) {
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                "server sent SETTINGS_ENABLE_PUSH=1",
            );
            return;
        }
        if settings.enable_connect_protocol == Some(false) && self.peer.enable_connect_protocol {
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                "SETTINGS_ENABLE_CONNECT_PROTOCOL turned off",
            );
            return;
        }
        if let Some(size) = settings.initial_window_size {
            let delta = i64::from(size) - i64::from(self.peer.initial_window_size);
            // §6.9.2: the change applies to every open stream; windows may go
            // negative, but not above 2^31-1.
            let overflow = self
                .streams
                .values()
                .any(|s| s.send_window + delta > i64::from(MAX_WINDOW_SIZE));
            if overflow {
                self.connection_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                );
                return;
            }
            for s in self.streams.values_mut() {
                s.send_window += delta;
            }
            self.peer.initial_window_size = size;
            if delta > 0 {
                let ids: Vec<StreamId> = self.streams.keys().copied().collect();
                for id in ids {
                    self.schedule(id);
                }
            }
        }
        if let Some(size) = settings.header_table_size {
            self.encoder.set_max_table_size(size as usize);
        }
        if let Some(size) = settings.max_frame_size {
            self.peer.max_frame_size = size;
        }
        if let Some(enabled) = settings.enable_connect_protocol {
            self.peer.enable_connect_protocol = enabled;
        }
        if let Some(max) = settings.max_concurrent_streams {
            self.peer.max_concurrent_streams = max;
        }
        self.write_frame(&Frame::Settings(SettingsFrame::Ack));
        if self.out.len() > self.config.max_pending_control_bytes {
            self.connection_error(
                ErrorCode::ENHANCE_YOUR_CALM,
                "peer does not read our SETTINGS acknowledgements",
            );
            return;
        }
        self.handshake_done = true;
        self.events.push_back(Event::PeerSettings(settings));
        self.open_pending_streams();
    }

    fn apply_local_settings(&mut self, acked: crate::frame::Settings) {
        if let Some(size) = acked.initial_window_size {
            let delta = i64::from(size) - i64::from(self.local_initial_window());
            for s in self.streams.values_mut() {
                s.recv_window += delta;
            }
        }
        if let Some(size) = acked.header_table_size {
            self.decoder.set_max_table_size(size as usize);
        }
        self.local.merge(&acked);
    }

    // ---- PING ----

    fn recv_ping(&mut self, f: Ping, now: Instant) {
        if f.ack {
            if f.payload == SHUTDOWN_PING {
                if matches!(self.shutdown, Some(Shutdown::AwaitingPing { .. })) {
                    self.send_final_goaway();
                }
            } else if f.payload == KEEPALIVE_PING {
                // Any bytes read already counted as a sign of life.
            } else if let Some(pos) = self.pings_in_flight.iter().position(|p| *p == f.payload) {
                self.pings_in_flight.swap_remove(pos);
                self.events.push_back(Event::PingAck(f.payload));
            }
            return;
        }
        self.count_flood(now, |c| &mut c.pings, |l| l.max_pings, "PING flood");
        if self.is_closed() || self.enforce_ping_policy(now) {
            return;
        }
        self.write_frame(&Frame::Ping(Ping {
            payload: f.payload,
            ack: true,
        }));
        if self.out.len() > self.config.max_pending_control_bytes {
            self.connection_error(
                ErrorCode::ENHANCE_YOUR_CALM,
                "peer does not read our PING acknowledgements",
            );
        }
    }

    // ---- GOAWAY ----

    fn recv_goaway(&mut self, f: GoAwayFrame) {
        let mut goaway = f.0;
        if let Some(prev) = &self.goaway_received {
            // A peer must not raise last-stream-id (§6.8); keep the lower bound,
            // which only ever refuses more, never fewer, streams.
            goaway.last_stream_id = goaway.last_stream_id.min(prev.last_stream_id);
        }
        tracing::debug!(%goaway, "GOAWAY received");
        self.goaway_received = Some(goaway.clone());
        let error = Error::GoAway {
            goaway: goaway.clone(),
            initiator: Initiator::Remote,
            reason: None,
        };
        // No new streams on this connection (§6.8): what waits was never sent.
        self.fail_pending_opens(&error);
        let mut refused: Vec<StreamId> = self
            .streams
            .values()
            .filter(|s| s.local && s.id > goaway.last_stream_id)
            .map(|s| s.id)
            .collect();
        refused.sort_unstable();
        for id in refused {
            if let Some(stream) = self.streams.remove(&id) {
                self.forget_blocked(&stream);
                self.active_local -= 1;
                self.release_connection(stream.recv_unreleased);
                // Above last-stream-id the server declares it did not process the
                // stream. That is proof only while nothing contradicts it: a stream
                // whose response head already arrived was processed, whatever a later
                // (lower) GOAWAY says, and never becomes retry-safe. A stream whose
                // HEADERS are encoded but not yet handed to the transport will still
                // be written, so it is refused, not "never sent" (streams that were
                // never encoded failed as NotSent above).
                let fate = match stream.fate {
                    Fate::NotSent | Fate::MaybeProcessed | Fate::Refused => Fate::Refused,
                    Fate::Processed => Fate::Processed,
                };
                self.events.push_back(Event::StreamError {
                    id,
                    error: error.clone(),
                    fate: Some(fate),
                });
            }
        }
        self.events.push_back(Event::GoAwayReceived(goaway));
        self.maybe_finish();
    }

    // ---- WINDOW_UPDATE ----

    fn recv_window_update(&mut self, f: WindowUpdate, now: Instant) {
        let id = f.stream_id;
        if id.is_zero() {
            if f.increment == 0 {
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "WINDOW_UPDATE with zero increment",
                );
                return;
            }
            let window = self.send_window + i64::from(f.increment);
            if window > i64::from(MAX_WINDOW_SIZE) {
                self.connection_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection window above 2^31-1",
                );
                return;
            }
            self.send_window = window;
            // Streams waiting for this window resume in `poll_transmit`; nothing here
            // depends on how many streams there are.
            if window > self.send_window_high {
                self.send_window_high = window;
                // Credit for DATA we sent only brings the window back to where it
                // was; this raises it above anything it has been, while no stream
                // waits for it: it answers nothing we did. Peers do enlarge the window
                // now and then (at the start, or as their bandwidth estimate grows),
                // so these count in the empty-frame budget rather than being errors.
                if self.conn_blocked_live == 0 {
                    self.count_empty_frame(now);
                }
            }
            return;
        }
        match self.stream_lookup(id) {
            Lookup::Idle => {
                self.connection_error(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
            }
            // After END_STREAM or our RST_STREAM, WINDOW_UPDATE may still arrive.
            Lookup::ResetByUs | Lookup::Closed => {}
            Lookup::ResetByPeer => {
                self.stream_error(
                    id,
                    ErrorCode::STREAM_CLOSED,
                    "WINDOW_UPDATE after the peer's RST_STREAM",
                );
                self.count_reset(now);
            }
            Lookup::Active => {
                let Some(stream) = self.streams.get_mut(&id) else {
                    return;
                };
                if stream.pending_open.is_some() {
                    self.connection_error(
                        ErrorCode::PROTOCOL_ERROR,
                        "WINDOW_UPDATE on an idle stream",
                    );
                    return;
                }
                if f.increment == 0 {
                    self.stream_error(
                        id,
                        ErrorCode::PROTOCOL_ERROR,
                        "WINDOW_UPDATE with zero increment",
                    );
                    return;
                }
                let window = stream.send_window + i64::from(f.increment);
                if window > i64::from(MAX_WINDOW_SIZE) {
                    self.stream_error(
                        id,
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "stream window above 2^31-1",
                    );
                    return;
                }
                stream.send_window = window;
                self.schedule(id);
            }
        }
    }

    // ---- errors and budgets ----

    /// A stream error detected here: RST_STREAM(code) and forget the stream (§5.4.2).
    pub(super) fn stream_error(&mut self, id: StreamId, code: ErrorCode, reason: &'static str) {
        tracing::debug!(stream = %id, %code, reason, "HTTP/2 stream error");
        self.write_frame(&Frame::RstStream(RstStream::new(id, code)));
        if let Some(stream) = self.remove_stream(id) {
            let fate = stream.local.then_some(stream.fate);
            self.events.push_back(Event::StreamError {
                id,
                error: Error::Reset {
                    stream_id: id,
                    code,
                    initiator: Initiator::Library,
                    reason: Some(reason.into()),
                },
                fate,
            });
        }
        self.remember_reset(id);
        if self.out.len() > self.config.max_pending_control_bytes {
            self.connection_error(
                ErrorCode::ENHANCE_YOUR_CALM,
                "peer does not read our RST_STREAM frames",
            );
            return;
        }
        self.maybe_finish();
    }

    fn count_reset(&mut self, now: Instant) {
        self.count_flood(
            now,
            |c| &mut c.resets,
            |l| l.max_resets,
            "too many stream resets",
        );
    }

    fn count_empty_frame(&mut self, now: Instant) {
        self.count_flood(
            now,
            |c| &mut c.empty_frames,
            |l| l.max_empty_frames,
            "too many empty frames",
        );
    }

    fn count_flood(
        &mut self,
        now: Instant,
        counter: impl FnOnce(&mut super::FloodCounters) -> &mut u32,
        limit: impl FnOnce(&super::FloodLimits) -> u32,
        reason: &'static str,
    ) {
        if now.saturating_duration_since(self.flood.window_start) >= self.config.flood.window {
            self.flood = super::FloodCounters {
                window_start: now,
                resets: 0,
                pings: 0,
                settings: 0,
                empty_frames: 0,
            };
        }
        let limit = limit(&self.config.flood);
        let c = counter(&mut self.flood);
        *c += 1;
        if *c > limit {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, reason);
        }
    }
}

/// Whether a frame header (9 bytes at least) is that of a server preface: SETTINGS,
/// not an ACK, on stream 0, with a whole number of settings.
fn is_settings_header(buf: &[u8]) -> bool {
    let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
    let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
    buf[3] == 0x4 && buf[4] & 0x1 == 0 && stream == 0 && len % 6 == 0
}

fn looks_like_http1(buf: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    !buf.is_empty()
        && METHODS
            .iter()
            .any(|m| buf.starts_with(m) || (buf.len() < m.len() && m.starts_with(buf)))
}
// x
