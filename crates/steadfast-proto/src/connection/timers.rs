//! Time-based connection management: keepalive PINGs (gRFC A8), enforcement of the
//! peer's PING rate (A8, as grpc-go does it), the idle and age limits of gRFC A9, and
//! the bounds a server keeps on slow peers: the handshake timeout and the per-stream
//! receive and send timeouts.
//!
//! The stream timeouts are checked by a sweep rather than a deadline per stream: the
//! frames that restart a stream's clock only store the time (O(1) per frame), and
//! the sweep, armed at the earliest deadline it found, scans the streams when it
//! fires. A stream's clock only moves forward, so a sweep is never late, at worst
//! early (and then it re-arms).
//!
//! Every timer is a deadline computed from the times kept here; `poll_timeout` reports
//! the earliest one that is armed and `handle_timeout` acts on each that is due. A timer
//! that fired is disarmed (or the connection closed), so none stays due. A deadline too
//! far away for `Instant` (say `Duration::MAX` for "never") is never armed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Connection;
use super::Event;
use crate::error::Fate;
use crate::error::{Error, ErrorCode};
use crate::frame::{Frame, Ping, RstStream, StreamId};

/// Why a stream was reset by `stream_recv_timeout` (in its `Event::StreamError`).
const RECV_TIMEOUT_REASON: &str = "no DATA from the peer within stream_recv_timeout";
/// Why a stream was reset by `stream_send_timeout`.
const SEND_TIMEOUT_REASON: &str = "queued DATA not taken by the peer within stream_send_timeout";

/// How often streams waiting on the peer to take their DATA are looked at.
fn send_sweep_interval(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(1))
}

/// The opaque data of keepalive PINGs; their ACKs are not reported to the application.
pub(super) const KEEPALIVE_PING: [u8; 8] = *b"sf-alive";

/// While no stream is open and the policy does not permit PINGs without calls, a PING
/// less than this long after the previous one is a strike (grpc-go's
/// `defaultPingTimeout`, gRPC C++'s idle interval).
const IDLE_PING_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// The clocks behind the timers.
#[derive(Debug)]
pub(super) struct Timers {
    /// When the connection was created: the start of `max_connection_age`.
    created: Instant,
    /// When bytes were last read (or the connection created): keepalive counts from it.
    last_read: Instant,
    /// When the keepalive PING that is outstanding (nothing was read since) was sent.
    keepalive_sent: Option<Instant>,
    /// Since when no stream has been open. `None` while streams are open, and also
    /// from the moment a stream opens until the next call that knows the time notices
    /// the connection is idle again.
    idle_since: Option<Instant>,
    /// When the `max_age` shutdown started; the grace period counts from it.
    age_reached: Option<Instant>,
    /// When the last PING from the peer arrived; `None` before the first one and after
    /// this endpoint sent HEADERS or DATA (the next PING is then free).
    last_ping_received: Option<Instant>,
    /// PINGs received too soon after the previous one.
    ping_strikes: u32,
    /// When the next sweep of `stream_recv_timeout` and `stream_send_timeout` is due;
    /// `None` while no stream is watched.
    sweep_at: Option<Instant>,
    /// DATA was queued under `stream_send_timeout`: the next call that knows the time
    /// arms the sweep if it is not armed.
    pub(super) send_watch_wanted: bool,
    /// We reopened the connection window after the peer had exhausted it: every
    /// stream's receive clock restarts at the next sweep.
    pub(super) recv_connection_reopened: bool,
    /// Deadlines set by the application, earliest first. An entry is current only
    /// while its stream exists with that deadline; stale ones (the stream ended, or
    /// its deadline was replaced) are skipped when they come due and purged when they
    /// outnumber the streams, so the heap stays proportional to the open streams.
    pub(super) deadlines: BinaryHeap<Reverse<(Instant, StreamId)>>,
}

impl Timers {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            created: now,
            last_read: now,
            keepalive_sent: None,
            idle_since: Some(now),
            age_reached: None,
            last_ping_received: None,
            ping_strikes: 0,
            sweep_at: None,
            send_watch_wanted: false,
            recv_connection_reopened: false,
            deadlines: BinaryHeap::new(),
        }
    }
}

impl Connection {
    // ---- hooks called from the rest of the connection ----

    /// Bytes arrived: the peer is alive (A8 measures from the last byte read).
    pub(super) fn timers_on_read(&mut self, now: Instant) {
        self.timers.last_read = now;
        self.timers.keepalive_sent = None;
    }

    /// A stream was opened (either direction): the connection is not idle.
    pub(super) fn timers_on_stream_opened(&mut self) {
        self.timers.idle_since = None;
    }

    /// Notes the time the connection became idle, if it is; called by every method
    /// that knows the time, so that streams closed by commands without `now` start
    /// the idle clock at the next `poll_transmit` at the latest.
    pub(super) fn timers_sync_idle(&mut self, now: Instant) {
        if std::mem::take(&mut self.timers.send_watch_wanted) {
            if let Some(timeout) = self.config.stream_send_timeout {
                self.arm_sweep(now.checked_add(send_sweep_interval(timeout)));
            }
        }
        if !self.streams.is_empty() {
            self.timers.idle_since = None;
        } else if self.timers.idle_since.is_none() {
            self.timers.idle_since = Some(now);
        }
    }

    /// The head of a message with a body arrived on `id` (a request on a server, a
    /// response on a client): under `stream_recv_timeout`, its body must keep coming.
    pub(super) fn timers_on_body_expected(&mut self, id: StreamId, now: Instant) {
        let Some(timeout) = self.config.stream_recv_timeout else {
            return;
        };
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.recv_activity = Some(now);
        self.arm_sweep(now.checked_add(timeout));
    }

    /// The application set a deadline on a stream.
    pub(super) fn timers_on_deadline_set(&mut self, id: StreamId, at: Instant) {
        let deadlines = &mut self.timers.deadlines;
        if deadlines.len() >= 2 * self.streams.len() + 32 {
            let streams = &self.streams;
            deadlines.retain(|Reverse((at, id))| {
                streams.get(id).is_some_and(|s| s.deadline == Some(*at))
            });
        }
        deadlines.push(Reverse((at, id)));
    }

    /// Makes the stream sweep due at `at` at the latest. (A sweep that finds nothing
    /// due re-arms for what it found, so arming early is harmless.)
    fn arm_sweep(&mut self, at: Option<Instant>) {
        let Some(at) = at else { return };
        self.timers.sweep_at = Some(self.timers.sweep_at.map_or(at, |t| t.min(at)));
    }

    /// This endpoint wrote HEADERS or DATA: the peer's PING strikes are forgiven and
    /// its next PING is free (grpc-go's `resetPingStrikes`, gRPC C++'s
    /// `ResetPingStrikes`).
    pub(super) fn timers_on_headers_or_data_sent(&mut self) {
        self.timers.ping_strikes = 0;
        self.timers.last_ping_received = None;
    }

    /// Applies the PING policy to a PING (not an ACK) received at `now`. Returns true
    /// when the peer exceeded it and the connection was closed.
    pub(super) fn enforce_ping_policy(&mut self, now: Instant) -> bool {
        let Some(policy) = &self.config.ping_policy else {
            return false;
        };
        if let Some(last) = self.timers.last_ping_received.replace(now) {
            let min = if self.streams.is_empty() && !policy.permit_without_calls {
                IDLE_PING_INTERVAL
            } else {
                policy.min_time
            };
            if now.saturating_duration_since(last) < min {
                self.timers.ping_strikes = self.timers.ping_strikes.saturating_add(1);
            }
        }
        if self.timers.ping_strikes > policy.max_strikes {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "too_many_pings");
            return true;
        }
        false
    }

    // ---- deadlines ----

    /// When the next keepalive PING is due, if one should be sent at all.
    fn keepalive_ping_due(&self) -> Option<Instant> {
        let keepalive = self.config.keepalive.as_ref()?;
        if self.timers.keepalive_sent.is_some()
            || (self.streams.is_empty() && !keepalive.without_calls)
        {
            return None;
        }
        self.timers.last_read.checked_add(keepalive.time)
    }

    /// When the outstanding keepalive PING times out.
    fn keepalive_deadline(&self) -> Option<Instant> {
        let keepalive = self.config.keepalive.as_ref()?;
        self.timers.keepalive_sent?.checked_add(keepalive.timeout)
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let max_idle = self.config.max_connection_idle?;
        if self.shutdown.is_some() || self.goaway_sent.is_some() || !self.streams.is_empty() {
            return None;
        }
        self.timers.idle_since?.checked_add(max_idle)
    }

    fn handshake_deadline(&self) -> Option<Instant> {
        let timeout = self.config.handshake_timeout?;
        if self.handshake_done {
            return None;
        }
        self.timers.created.checked_add(timeout)
    }

    fn age_deadline(&self) -> Option<Instant> {
        let max_age = self.config.max_connection_age?;
        if self.timers.age_reached.is_some() {
            return None;
        }
        self.timers.created.checked_add(max_age)
    }

    fn grace_deadline(&self) -> Option<Instant> {
        let grace = self.config.max_connection_age_grace?;
        self.timers.age_reached?.checked_add(grace)
    }

    /// The earliest deadline of the timers kept here.
    pub(super) fn timers_poll_timeout(&self) -> Option<Instant> {
        [
            self.keepalive_ping_due(),
            self.keepalive_deadline(),
            self.idle_deadline(),
            self.handshake_deadline(),
            self.timers.sweep_at,
            self.timers.deadlines.peek().map(|Reverse((at, _))| *at),
            self.age_deadline(),
            self.grace_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The peer's preface or SETTINGS did not arrive within `handshake_timeout`: closes
    /// the connection with GOAWAY(SETTINGS_TIMEOUT, `handshake_timeout`) and returns
    /// true. Checked before the SETTINGS acknowledgement timeout, which a peer that
    /// sent nothing also misses, so the GOAWAY names the earlier failure.
    pub(super) fn handshake_timed_out(&mut self, now: Instant) -> bool {
        if self.handshake_deadline().is_some_and(|d| now >= d) {
            self.connection_error(ErrorCode::SETTINGS_TIMEOUT, "handshake_timeout");
            return true;
        }
        false
    }

    /// Acts on every timer kept here that is due at `now`.
    pub(super) fn timers_handle_timeout(&mut self, now: Instant) {
        self.timers_sync_idle(now);
        if self.keepalive_deadline().is_some_and(|d| now >= d) {
            self.keepalive_timed_out();
            return;
        }
        if self.grace_deadline().is_some_and(|d| now >= d) {
            self.connection_error(ErrorCode::NO_ERROR, "max_age_grace");
            return;
        }
        self.expire_deadlines(now);
        if self.is_closed() {
            return;
        }
        if self.timers.sweep_at.is_some_and(|d| now >= d) {
            self.sweep_streams(now);
            if self.is_closed() {
                return;
            }
        }
        if self.age_deadline().is_some_and(|d| now >= d) {
            // The grace period runs even if a shutdown was already under way: age is a
            // bound on the connection's whole life.
            self.timers.age_reached = Some(now);
            self.graceful_shutdown_with(now, Bytes::from_static(b"max_age"));
        }
        if self.idle_deadline().is_some_and(|d| now >= d) {
            self.graceful_shutdown_with(now, Bytes::from_static(b"max_idle"));
        }
        if self.is_closed() {
            return;
        }
        if self.keepalive_ping_due().is_some_and(|d| now >= d) {
            self.timers.keepalive_sent = Some(now);
            self.write_frame(&Frame::Ping(Ping {
                payload: KEEPALIVE_PING,
                ack: false,
            }));
        }
        // Streams the sweep reset may have left the connection idle: its clock starts
        // now, not at the next read or transmit (there may be none for a peer that
        // stopped reading).
        self.timers_sync_idle(now);
    }

    /// Resets every stream whose body has not moved for `stream_recv_timeout` while
    /// the peer was free to send, or whose queued DATA has not moved for
    /// `stream_send_timeout`, and arms the next sweep at the earliest deadline left.
    fn sweep_streams(&mut self, now: Instant) {
        self.timers.sweep_at = None;
        // A zero timeout would leave the sweep due forever.
        let at_least = |t: Duration| t.max(Duration::from_millis(1));
        let recv_timeout = self.config.stream_recv_timeout.map(at_least);
        let send_timeout = self.config.stream_send_timeout.map(at_least);
        let connection_blocked = self.recv_window.is_closed();
        let connection_send_window = self.send_window;
        let reopened = std::mem::take(&mut self.timers.recv_connection_reopened);
        let mut expired: Vec<(StreamId, &'static str)> = Vec::new();
        let mut next: Option<Instant> = None;
        let mut arm = |deadline: Instant| next = Some(next.map_or(deadline, |n| n.min(deadline)));
        for stream in self.streams.values_mut() {
            if let (Some(timeout), Some(last)) = (recv_timeout, stream.recv_activity) {
                if stream.recv_closed {
                    stream.recv_activity = None;
                } else {
                    let paused = connection_blocked || stream.recv_window.is_closed();
                    let last =
                        if paused || reopened || std::mem::take(&mut stream.recv_window_reopened) {
                            // Flow control stops (or stopped until just now) the peer: it
                            // is not late, so its clock starts again. Restarting here
                            // rather than when the window reopened only gives it more time.
                            stream.recv_activity = Some(now);
                            now
                        } else {
                            last
                        };
                    match last.checked_add(timeout) {
                        Some(deadline) if deadline <= now => {
                            expired.push((stream.id, RECV_TIMEOUT_REASON));
                            continue;
                        }
                        Some(deadline) => arm(deadline),
                        None => stream.recv_activity = None,
                    }
                }
            }
            if let Some(timeout) = send_timeout {
                // Waiting on the peer: DATA is queued, or the body is under way (a
                // server's response head went out) and no window is left for it — a
                // runtime that pulls bodies only while the window allows has nothing
                // queued then, yet the stream cannot move.
                let under_way = stream.pending_open.is_none()
                    && !stream.send_closed
                    && (stream.local || stream.response_sent);
                let no_window = stream.send_window.min(connection_send_window).is_closed();
                if stream.send_queued == 0 && !(under_way && no_window) {
                    stream.send_stalled = None;
                    continue;
                }
                let written = stream
                    .send_queued_total
                    .saturating_sub(stream.send_queued as u64);
                // Progress is only seen at sweeps, so they come every quarter of the
                // timeout while a stream waits: a stall is then reset between one and
                // 1.25 timeouts after the last byte moved.
                let next_look = now.checked_add(send_sweep_interval(timeout));
                match stream.send_stalled {
                    Some((since, mark)) if mark == written => match since.checked_add(timeout) {
                        Some(deadline) if deadline <= now => {
                            expired.push((stream.id, SEND_TIMEOUT_REASON));
                        }
                        Some(deadline) => arm(next_look.map_or(deadline, |n| n.min(deadline))),
                        None => {}
                    },
                    // First seen waiting, or it moved since: the clock starts now.
                    _ => {
                        stream.send_stalled = Some((now, written));
                        if let Some(next_look) = next_look {
                            arm(next_look);
                        }
                    }
                }
            }
        }
        self.timers.sweep_at = next;
        expired.sort_unstable();
        for (id, reason) in expired {
            tracing::debug!(stream = %id, reason, "stream timed out");
            // CANCEL: this endpoint no longer wants the stream. The peer broke no rule
            // (not PROTOCOL_ERROR), and nothing failed here (not INTERNAL_ERROR, which
            // nghttpd sends); a server may have begun processing, so not REFUSED_STREAM.
            self.stream_error(id, ErrorCode::CANCEL, reason);
            if self.is_closed() {
                return;
            }
        }
    }

    /// Ends every stream whose deadline ([`Connection::set_deadline`]) is due.
    fn expire_deadlines(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.timers.deadlines.peek() {
            if at > now {
                break;
            }
            self.timers.deadlines.pop();
            let Some(stream) = self.streams.get(&id) else {
                continue;
            };
            if stream.deadline != Some(at) {
                continue;
            }
            let fate = if stream.pending_open.is_some() {
                // Never encoded: nothing of it will ever be written.
                self.pending_open.retain(|p| *p != id);
                self.remove_stream(id);
                Fate::NotSent
            } else {
                // Encoded HEADERS are written even if not handed over yet (the HPACK
                // state depends on them), so from here on the server may see them.
                let fate = match stream.fate {
                    Fate::NotSent => Fate::MaybeProcessed,
                    fate => fate,
                };
                tracing::debug!(stream = %id, "stream deadline passed");
                self.write_frame(&Frame::RstStream(RstStream::new(id, ErrorCode::CANCEL)));
                self.remove_stream(id);
                self.remember_reset(id);
                fate
            };
            self.events.push_back(Event::StreamError {
                id,
                error: Error::DeadlineExceeded { stream_id: id },
                fate: Some(fate),
            });
            self.maybe_finish();
            if self.is_closed() {
                return;
            }
        }
    }

    /// No byte arrived within the keepalive timeout: the peer is presumed dead, so
    /// nothing more is written (no GOAWAY, and what was queued is dropped: a stream
    /// whose HEADERS never left keeps its `NotSent` fate).
    fn keepalive_timed_out(&mut self) {
        let timeout = self
            .config
            .keepalive
            .as_ref()
            .map_or(Duration::ZERO, |k| k.timeout);
        tracing::debug!(
            ?timeout,
            "keepalive PING unanswered; the peer is presumed dead"
        );
        self.clear_output();
        self.unflushed_opens.clear();
        self.fail_connection(Error::KeepaliveTimeout { timeout });
    }
}
