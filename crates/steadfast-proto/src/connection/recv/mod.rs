//! The receive path: preface, frame decoding, and every per-frame rule of RFC 9113
//! that depends on connection or stream state, split by frame family: `data`,
//! `headers` (with CONTINUATION), `control` (RST_STREAM, SETTINGS, PING, GOAWAY,
//! WINDOW_UPDATE). This file decodes and dispatches, and holds what they share:
//! stream lookup, stream errors and flood budgets.

mod control;
mod data;
mod headers;

use std::time::Instant;

use bytes::BytesMut;

use super::{Connection, Event, ResetBy, Role, PREFACE};
use crate::error::{Error, ErrorCode, Initiator};
use crate::frame::{self, Frame, FrameError, RstStream, SettingsFrame, StreamId};

/// Where a frame's stream id stands relative to this connection.
pub(super) enum Lookup {
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

    pub(super) fn max_recv_frame_size(&self) -> u32 {
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
        if let Some(counters) = &self.frame_counters {
            match &frame {
                Frame::RstStream(f) => counters.rst_stream_received(f.code),
                Frame::GoAway(f) => counters.goaway_received(f.0.code),
                _ => {}
            }
        }
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

    pub(super) fn stream_lookup(&self, id: StreamId) -> Lookup {
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

    pub(super) fn count_reset(&mut self, now: Instant) {
        self.count_flood(
            now,
            |c| &mut c.resets,
            |l| l.max_resets,
            "too many stream resets",
        );
    }

    pub(super) fn count_empty_frame(&mut self, now: Instant) {
        self.count_flood(
            now,
            |c| &mut c.empty_frames,
            |l| l.max_empty_frames,
            "too many empty frames",
        );
    }

    pub(super) fn count_flood(
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
    buf[3] == 0x4 && buf[4] & 0x1 == 0 && stream == 0 && len.is_multiple_of(6)
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
