//! The server's side of the driver: admission (load shedding with REFUSED_STREAM
//! before the service sees a request), dispatch to the service, and its answer.

use std::sync::atomic::Ordering;

use http::{Request, Response};
use http_body::Body;
use steadfast_proto::{ErrorCode, StreamId};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use super::*;
use crate::body::{recv_channel, BoxBody, RecvBody};
use crate::error::BoxError;

impl<IO> Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) fn dispatch_request(
        &mut self,
        id: StreamId,
        request: Request<()>,
        end_stream: bool,
    ) {
        if self.conn.stream_state(id).is_none() {
            // Reset (by the peer, or for its frames) before the service could see it,
            // as in a rapid-reset flood: its StreamError follows. Spawning a handler
            // only to abort it would cost a task per reset.
            return;
        }
        if let Some(shed) = &self.shed {
            let over_connection = shed
                .per_connection
                .is_some_and(|max| self.slots.len() >= max);
            let over_server = shed
                .per_server
                .is_some_and(|max| shed.in_flight.load(Ordering::Acquire) >= max);
            if over_connection || over_server {
                // Before any processing: the client may safely send it again.
                shed.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(stream = %id, over_connection, over_server, "load shed: REFUSED_STREAM");
                let _ = self.conn.reset(id, ErrorCode::REFUSED_STREAM);
                return;
            }
            shed.in_flight.fetch_add(1, Ordering::AcqRel);
            shed.accepted.fetch_add(1, Ordering::Relaxed);
        }
        let Some(dispatch) = self.dispatch.as_mut() else {
            return;
        };
        let content_length = content_length(request.headers());
        let (recv_tx, rx) = if end_stream {
            (None, None)
        } else {
            let (tx, rx) = recv_channel();
            (Some(tx), Some(rx))
        };
        let body = RecvBody::new(id, rx, self.commands_tx.clone(), content_length);
        let (mut parts, ()) = request.into_parts();
        if let Some(info) = &self.connection_info {
            parts.extensions.insert(info.clone());
        }
        parts.extensions.insert(id);
        let end = self.stream_end.then(crate::server::StreamEnd::default);
        if let Some(end) = &end {
            parts.extensions.insert(end.clone());
        }
        // The call's span, inside the connection's: debug, so it costs a check when
        // disabled. The deadline budget is the client's `grpc-timeout`, as sent.
        let span = tracing::debug_span!(
            "stream",
            stream = %id,
            method = %parts.method,
            path = parts.uri.path(),
            grpc_timeout = parts
                .headers
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok()),
        );
        tracing::trace!(parent: &span, uri = %parts.uri, "request");
        let future = dispatch(Request::from_parts(parts, body));
        let commands = self.commands_tx.clone();
        let handler = tokio::spawn(
            async move {
                let result = future.await;
                let _ = commands.send(Command::Response { id, result });
            }
            .instrument(span),
        );
        self.slots.insert(
            id,
            Slot {
                recv_tx,
                handler: Some(handler.abort_handle()),
                end,
                ..Slot::default()
            },
        );
    }

    pub(super) fn start_response(
        &mut self,
        id: StreamId,
        result: Result<Response<BoxBody>, BoxError>,
    ) {
        if !self.slots.contains_key(&id) {
            return; // reset while the service ran
        }
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(stream = %id, error = %e, "service failed");
                let code = crate::server::reset_code(&e, ErrorCode::INTERNAL_ERROR);
                let _ = self.conn.reset(id, code);
                self.remove_slot(id);
                return;
            }
        };
        let (parts, body) = response.into_parts();
        let head = Response::from_parts(parts, ());
        let end_stream = body.is_end_stream();
        if let Err(e) = self.conn.send_response(id, &head, end_stream) {
            tracing::debug!(stream = %id, error = %e, "response rejected");
            let _ = self.conn.reset(id, ErrorCode::INTERNAL_ERROR);
            self.remove_slot(id);
            return;
        }
        let discard = if let Some(slot) = self.slots.get_mut(&id) {
            slot.handler = None;
            slot.send_done = end_stream;
            if !end_stream {
                slot.send_body = Some(body);
                self.sending.push(id);
            }
            slot.discard && end_stream
        } else {
            false
        };
        if discard {
            let _ = self.conn.reset(id, ErrorCode::NO_ERROR);
            self.remove_slot(id);
        } else {
            self.maybe_finish_slot(id);
        }
    }
}
