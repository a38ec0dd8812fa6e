//! How a connection ends: GOAWAY sent, the final GOAWAY of a graceful shutdown,
//! connection errors, and failing what is left with each stream's fate.

use std::borrow::Cow;

use bytes::Bytes;

use super::*;
use crate::error::{Error, ErrorCode, Fate, GoAway, Initiator};
use crate::frame::{GoAwayFrame, StreamId};

impl Connection {
    pub(super) fn send_goaway(
        &mut self,
        code: ErrorCode,
        last_stream_id: StreamId,
        debug_data: Bytes,
    ) {
        let goaway = GoAway {
            code,
            last_stream_id,
            debug_data,
        };
        self.write_frame(&crate::frame::Frame::GoAway(GoAwayFrame(goaway.clone())));
        self.goaway_sent = Some(goaway);
    }

    pub(super) fn send_final_goaway(&mut self) {
        let debug = self
            .goaway_sent
            .as_ref()
            .map(|g| g.debug_data.clone())
            .unwrap_or_default();
        self.send_goaway(ErrorCode::NO_ERROR, self.last_processed_remote_id, debug);
        self.shutdown = Some(Shutdown::Final);
        // Streams the peer opened after the last processed one were never handed to
        // the application; they are covered by the GOAWAY and simply forgotten.
        let ignored: Vec<StreamId> = self
            .streams
            .keys()
            .copied()
            .filter(|id| !self.streams[id].local && *id > self.last_processed_remote_id)
            .collect();
        for id in ignored {
            self.remove_stream(id);
            self.remember_reset(id);
        }
        self.maybe_finish();
    }

    /// Closes the connection once a GOAWAY was exchanged and no stream remains.
    pub(super) fn maybe_finish(&mut self) {
        if self.is_closed() || !self.streams.is_empty() {
            return;
        }
        let final_goaway_sent = matches!(self.shutdown, Some(Shutdown::Final));
        if let Some(g) = &self.goaway_received {
            let error = (g.code != ErrorCode::NO_ERROR).then(|| Error::GoAway {
                goaway: g.clone(),
                initiator: Initiator::Remote,
                reason: None,
            });
            self.set_closed(error);
        } else if final_goaway_sent {
            self.set_closed(None);
        }
    }

    pub(super) fn set_closed(&mut self, error: Option<Error>) {
        self.state = State::Closed(error.clone());
        self.recv_buf = BytesMut::new();
        self.partial = None;
        for s in self.streams.values_mut() {
            s.send_queue.clear();
        }
        self.send_ready.clear();
        self.conn_blocked.clear();
        self.conn_blocked_live = 0;
        self.events.push_back(Event::Closed(error));
    }

    /// A connection error detected here: GOAWAY(code) and close (§5.4.1).
    pub(super) fn connection_error(
        &mut self,
        code: ErrorCode,
        reason: impl Into<Cow<'static, str>>,
    ) {
        if self.is_closed() {
            return;
        }
        let reason = reason.into();
        tracing::debug!(%code, reason = %reason, "HTTP/2 connection error");
        self.discard_unsent_requests();
        let error = Error::library_goaway(code, self.last_processed_remote_id, reason);
        if let Error::GoAway { goaway, .. } = &error {
            self.write_frame(&crate::frame::Frame::GoAway(GoAwayFrame(goaway.clone())));
            self.goaway_sent = Some(goaway.clone());
        }
        self.fail_connection(error);
    }

    /// (Client) The connection is about to fail: output not yet handed to the
    /// transport is dropped, so that requests whose HEADERS sit in it are never
    /// written. They fail as `NotSent`, which is then the truth; written after the
    /// failure, they could reach a server that processes them. (A server keeps its
    /// output: responses already completed may still reach the client.)
    pub(super) fn discard_unsent_requests(&mut self) {
        if self.role == Role::Client && !self.unflushed_opens.is_empty() {
            self.clear_output();
            self.unflushed_opens.clear();
        }
    }

    /// Fails every stream with `error` and closes.
    pub(super) fn fail_connection(&mut self, error: Error) {
        let mut ids: Vec<StreamId> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(s) = self.streams.remove(&id) {
                let fate = s.local.then_some(s.fate);
                self.events.push_back(Event::StreamError {
                    id,
                    error: error.clone(),
                    fate,
                });
            }
        }
        self.pending_open.clear();
        self.active_local = 0;
        self.active_remote = 0;
        self.set_closed(Some(error));
    }

    pub(super) fn fail_pending_opens(&mut self, error: &Error) {
        while let Some(id) = self.pending_open.pop_front() {
            if self.streams.remove(&id).is_some() {
                self.events.push_back(Event::StreamError {
                    id,
                    error: error.clone(),
                    fate: Some(Fate::NotSent),
                });
            }
        }
    }
}
