//! Commands from the application: open streams, answer them, send bodies and
//! trailers, reset, release flow-control credit, ping, and shut down.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};

use super::*;
use crate::error::{Error, ErrorCode, GoAway, Initiator, UserError};
use crate::frame::{GoAwayFrame, Ping, RstStream, StreamId};
use crate::message;
use crate::stream::{SendEnd, Stream};
use crate::window::Window;

impl Connection {
    /// (Client) Opens a stream with a request head. The request URI must carry a
    /// scheme and, except for CONNECT, a path. The stream is sent at once if the peer's
    /// concurrency limit allows, otherwise when a slot frees; until then its fate is
    /// `NotSent`.
    pub fn send_request(
        &mut self,
        request: &Request<()>,
        end_stream: bool,
    ) -> Result<StreamId, Error> {
        if self.role != Role::Client {
            return Err(UserError::NotClient.into());
        }
        self.check_open()?;
        if !self.accepts_new_streams() {
            return Err(if self.next_local_id > StreamId::MAX.get() {
                UserError::StreamIdsExhausted.into()
            } else {
                UserError::GoingAway.into()
            });
        }
        let fields = message::request_fields(request)?;
        let id = StreamId::new(self.next_local_id);
        self.next_local_id += 2;
        let mut stream = Stream::new(
            id,
            true,
            Window::new(self.peer.initial_window_size),
            Window::new(self.local_initial_window()),
        );
        stream.head_request = request.method() == http::Method::HEAD;
        if request.method() == http::Method::CONNECT {
            self.tunnels.insert(id);
        }
        stream.pending_open = Some((fields, end_stream));
        if end_stream {
            stream.send_end = SendEnd::EndStream;
        }
        self.streams.insert(id, stream);
        self.timers_on_stream_opened();
        self.pending_open.push_back(id);
        self.open_pending_streams();
        Ok(id)
    }

    /// (Server) Sends a response head on a peer-initiated stream: any number of 1xx
    /// interim responses, then one final response.
    pub fn send_response(
        &mut self,
        id: StreamId,
        response: &Response<()>,
        end_stream: bool,
    ) -> Result<(), Error> {
        if self.role != Role::Server {
            return Err(UserError::NotServer.into());
        }
        self.check_open()?;
        message::check_response(response)?;
        let informational = response.status().is_informational();
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(UserError::UnknownStream(id))?;
        if stream.response_sent {
            return Err(UserError::ResponseAlreadySent(id).into());
        }
        if stream.send_ended() {
            return Err(UserError::SendClosed(id).into());
        }
        if informational && end_stream {
            return Err(
                UserError::MalformedHeaders("a 1xx response cannot end the stream".into()).into(),
            );
        }
        stream.response_sent = !informational;
        if end_stream {
            stream.send_closed = true;
        } else if !informational && self.config.stream_send_timeout.is_some() {
            // A body follows: watch that the peer keeps taking it.
            self.timers.send_watch_wanted = true;
        }
        let status = message::status_digits(response.status());
        self.write_field_iter(
            id,
            message::response_field_iter(&status, response.headers()),
            end_stream,
        );
        if end_stream {
            self.maybe_close_stream(id, false);
        }
        Ok(())
    }

    /// Queues body data. It is written as the flow-control windows allow; see
    /// [`send_capacity`](Self::send_capacity) for backpressure.
    pub fn send_data(&mut self, id: StreamId, data: Bytes, end_stream: bool) -> Result<(), Error> {
        self.check_open()?;
        let role = self.role;
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(UserError::UnknownStream(id))?;
        if stream.send_ended() {
            return Err(UserError::SendClosed(id).into());
        }
        if role == Role::Server && !stream.response_sent {
            return Err(UserError::MalformedHeaders("DATA before the response head".into()).into());
        }
        if !data.is_empty() {
            stream.send_queued += data.len();
            stream.send_queued_total += data.len() as u64;
            stream.send_queue.push_back(data);
            if self.config.stream_send_timeout.is_some() {
                self.timers.send_watch_wanted = true;
            }
        }
        if end_stream {
            stream.send_end = SendEnd::EndStream;
        }
        self.schedule(id);
        Ok(())
    }

    /// Queues a trailer section, which ends the stream after the queued data.
    pub fn send_trailers(&mut self, id: StreamId, trailers: &HeaderMap) -> Result<(), Error> {
        self.check_open()?;
        let fields = message::trailer_fields(trailers)?;
        let role = self.role;
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(UserError::UnknownStream(id))?;
        if stream.send_ended() {
            return Err(UserError::SendClosed(id).into());
        }
        if role == Role::Server && !stream.response_sent {
            return Err(
                UserError::MalformedHeaders("trailers before the response head".into()).into(),
            );
        }
        stream.send_end = SendEnd::Trailers(fields);
        self.schedule(id);
        Ok(())
    }

    /// Ends the stream `id` at `at` unless it ended before: at the first
    /// [`handle_timeout`](Self::handle_timeout) at or after `at`, a stream whose
    /// HEADERS were sent is reset with CANCEL, one still waiting for a concurrency
    /// slot is dropped without a frame, and either is reported as
    /// [`Event::StreamError`] with [`Error::DeadlineExceeded`] and its fate: `NotSent`
    /// only for a stream whose HEADERS were never encoded (once encoded they will be
    /// written, so the fate is at least `MaybeProcessed`). A later call replaces the
    /// deadline. [`poll_timeout`](Self::poll_timeout) reports it.
    ///
    /// This is how a caller's deadline covers the whole exchange — the wait for a
    /// slot, the response head, and the body to its last byte — whether or not the
    /// application is reading the stream when the time comes.
    pub fn set_deadline(&mut self, id: StreamId, at: Instant) -> Result<(), Error> {
        self.check_open()?;
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(UserError::UnknownStream(id))?;
        stream.deadline = Some(at);
        self.timers_on_deadline_set(id, at);
        Ok(())
    }

    /// Resets a stream on the application's behalf (e.g. CANCEL). A locally opened
    /// stream that was never sent is simply dropped. No event is reported for it.
    pub fn reset(&mut self, id: StreamId, code: ErrorCode) -> Result<(), Error> {
        self.check_open()?;
        let stream = self.streams.get(&id).ok_or(UserError::UnknownStream(id))?;
        if stream.pending_open.is_some() {
            self.pending_open.retain(|p| *p != id);
            self.remove_stream(id);
            return Ok(());
        }
        self.write_frame(&crate::frame::Frame::RstStream(RstStream::new(id, code)));
        self.remove_stream(id);
        self.remember_reset(id);
        Ok(())
    }

    /// The application consumed `len` bytes of received DATA on `id`; they may be
    /// announced to the peer with WINDOW_UPDATE. Unknown streams only release the
    /// connection window.
    pub fn release_capacity(&mut self, id: StreamId, len: usize) {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let mut released = 0;
        if let Some(s) = self.streams.get_mut(&id) {
            released = len.min(s.recv_unreleased);
            s.recv_unreleased -= released;
            if !s.recv_closed {
                s.recv_release_pending += released;
            }
        }
        self.release_connection(released);
        self.flush_window_updates(Some(id));
    }

    /// Sends a PING; its acknowledgement arrives as [`Event::PingAck`]. The payloads
    /// `sf-drain` and `sf-alive` are reserved for graceful shutdown and keepalive.
    pub fn ping(&mut self, payload: [u8; 8]) -> Result<(), Error> {
        self.check_open()?;
        if payload == SHUTDOWN_PING
            || payload == timers::KEEPALIVE_PING
            || self.pings_in_flight.contains(&payload)
        {
            return Err(UserError::PingInFlight.into());
        }
        self.pings_in_flight.push(payload);
        self.write_frame(&crate::frame::Frame::Ping(Ping {
            payload,
            ack: false,
        }));
        Ok(())
    }

    /// Starts a graceful shutdown.
    ///
    /// A server sends GOAWAY(2^31-1, NO_ERROR) and a PING; when the PING is
    /// acknowledged (or after `shutdown_ping_timeout`), it sends GOAWAY with the real
    /// last stream id, so that requests in flight when the first GOAWAY was sent are
    /// not refused. A client sends GOAWAY(0, NO_ERROR). Either way, streams in progress
    /// finish and the connection then closes with [`Event::Closed(None)`](Event::Closed).
    pub fn graceful_shutdown(&mut self, now: Instant) {
        self.graceful_shutdown_with(now, Bytes::new());
    }

    /// Like [`graceful_shutdown`](Self::graceful_shutdown), with debug data in the
    /// GOAWAY frames (e.g. `max_age`, `max_idle`).
    pub fn graceful_shutdown_with(&mut self, now: Instant, debug_data: Bytes) {
        if self.is_closed() || self.shutdown.is_some() {
            return;
        }
        match self.role {
            Role::Server => {
                self.send_goaway(ErrorCode::NO_ERROR, StreamId::MAX, debug_data);
                self.write_frame(&crate::frame::Frame::Ping(Ping {
                    payload: SHUTDOWN_PING,
                    ack: false,
                }));
                self.shutdown = Some(Shutdown::AwaitingPing {
                    deadline: now + self.config.shutdown_ping_timeout,
                });
            }
            Role::Client => {
                self.send_goaway(ErrorCode::NO_ERROR, StreamId::ZERO, debug_data);
                self.shutdown = Some(Shutdown::Final);
                self.fail_pending_opens(&Error::User(UserError::GoingAway));
                self.maybe_finish();
            }
        }
    }

    /// A single-phase graceful shutdown, as many servers do it: one GOAWAY(NO_ERROR)
    /// with the real last-stream-id at once, no PING round trip. Streams the client
    /// sent that cross the GOAWAY on the wire are refused (and safe for it to retry);
    /// streams at or below it finish. A client behaves as in
    /// [`graceful_shutdown_with`](Self::graceful_shutdown_with).
    pub fn shutdown_now_with(&mut self, now: Instant, debug_data: Bytes) {
        if self.is_closed() || matches!(self.shutdown, Some(Shutdown::Final)) {
            return;
        }
        if self.role == Role::Client {
            self.graceful_shutdown_with(now, debug_data);
            return;
        }
        self.send_goaway(
            ErrorCode::NO_ERROR,
            self.last_processed_remote_id,
            debug_data,
        );
        self.shutdown = Some(Shutdown::Final);
        self.maybe_finish();
    }

    /// Closes the connection at once with GOAWAY(code) on the application's behalf;
    /// every open stream fails.
    pub fn close(&mut self, code: ErrorCode, debug_data: Bytes) {
        if self.is_closed() {
            return;
        }
        self.discard_unsent_requests();
        let goaway = GoAway {
            code,
            last_stream_id: self.last_processed_remote_id,
            debug_data,
        };
        self.write_frame(&crate::frame::Frame::GoAway(GoAwayFrame(goaway.clone())));
        self.goaway_sent = Some(goaway.clone());
        let error = Error::GoAway {
            goaway,
            initiator: Initiator::Application,
            reason: None,
        };
        self.fail_connection(error);
    }
}
