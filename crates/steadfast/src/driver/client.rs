//! The client's side of the driver: a request becomes a stream.

use std::sync::atomic::Ordering;

use http::Request;
use http_body::Body;
use steadfast_proto::Fate;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use super::*;
use crate::body::BoxBody;
use crate::error::Error;

impl<IO> Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) fn start_request(
        &mut self,
        request: Request<()>,
        body: BoxBody,
        token: u64,
        tx: oneshot::Sender<ResponseResult>,
    ) {
        let end_stream = body.is_end_stream();
        match self.conn.send_request(&request, end_stream) {
            Ok(id) => {
                tracing::trace!(stream = %id, method = %request.method(), uri = %request.uri(), "request");
                self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                if let Some(deadline) = request.extensions().get::<crate::Deadline>() {
                    // The engine resets the stream at the deadline, body included.
                    let _ = self.conn.set_deadline(id, deadline.0);
                }
                self.tokens.insert(token, id);
                if !end_stream {
                    self.sending.push(id);
                }
                self.slots.insert(
                    id,
                    Slot {
                        response_tx: Some(tx),
                        send_body: (!end_stream).then_some(body),
                        send_done: end_stream,
                        token,
                        ..Slot::default()
                    },
                );
            }
            Err(e) => {
                // Nothing of this request reached the connection. When the server's
                // GOAWAY is the reason, say so rather than "going away".
                let e = match (e, self.conn.goaway_received()) {
                    (
                        steadfast_proto::Error::User(steadfast_proto::UserError::GoingAway),
                        Some(goaway),
                    ) => crate::error::remote_goaway(goaway.clone()),
                    (e, _) => e,
                };
                let _ = tx.send(Err(Error::proto(e, Some(Fate::NotSent), None)));
            }
        }
    }
}
