//! RST_STREAM, SETTINGS, PING, GOAWAY and WINDOW_UPDATE (RFC 9113 §6.4–§6.9).

use std::time::Instant;

use super::super::timers::KEEPALIVE_PING;
use super::super::{Connection, Event, ResetBy, Role, Shutdown, SHUTDOWN_PING};
use super::Lookup;
use crate::error::{Error, ErrorCode, Fate, Initiator};
use crate::frame::{Frame, GoAwayFrame, Ping, RstStream, SettingsFrame, StreamId, WindowUpdate};

impl Connection {
    pub(super) fn recv_rst_stream(&mut self, f: RstStream, now: Instant) {
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

    pub(super) fn recv_settings(&mut self, f: SettingsFrame, now: Instant) {
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
                .any(|s| s.send_window.would_overflow(delta));
            if overflow {
                self.connection_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                );
                return;
            }
            for s in self.streams.values_mut() {
                // Checked above: no window overflows.
                let _ = s.send_window.adjust(delta);
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

    pub(super) fn apply_local_settings(&mut self, acked: crate::frame::Settings) {
        if let Some(size) = acked.initial_window_size {
            let delta = i64::from(size) - i64::from(self.local_initial_window());
            for s in self.streams.values_mut() {
                // Our own setting, within 2^31-1 (`Config::validate`): a window it
                // raises stays below what it allows.
                let _ = s.recv_window.adjust(delta);
            }
        }
        if let Some(size) = acked.header_table_size {
            self.decoder.set_max_table_size(size as usize);
        }
        self.local.merge(&acked);
    }

    pub(super) fn recv_ping(&mut self, f: Ping, now: Instant) {
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

    pub(super) fn recv_goaway(&mut self, f: GoAwayFrame) {
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

    pub(super) fn recv_window_update(&mut self, f: WindowUpdate, now: Instant) {
        let id = f.stream_id;
        if id.is_zero() {
            if f.increment == 0 {
                self.connection_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "WINDOW_UPDATE with zero increment",
                );
                return;
            }
            if self.send_window.grant(f.increment).is_err() {
                self.connection_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection window above 2^31-1",
                );
                return;
            }
            let window = self.send_window;
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
                if stream.send_window.grant(f.increment).is_err() {
                    self.stream_error(
                        id,
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "stream window above 2^31-1",
                    );
                    return;
                }
                self.schedule(id);
            }
        }
    }
}
