//! `serve`'s record per call (`--log-format json`, or `--log-calls` in text): one
//! `tracing` event at info, target `steadfast::call`, when the call's stream ends (or
//! is dropped unfinished).

use std::fmt::Display;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use steadfast::body::{self, BoxBody};
use steadfast::{BoxError, ConnectionInfo, Initiator, RecvBody, StreamEnd, StreamId};

/// The target of the per-call records.
pub(crate) const TARGET: &str = "steadfast::call";

/// What is known of a call, logged once: when its response ends, fails, or is
/// dropped before its end (the stream was reset, or the connection lost).
pub(crate) struct CallRecord {
    start: Instant,
    method: http::Method,
    path: String,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    stream: Option<u32>,
    grpc_timeout: Option<String>,
    status: Option<u16>,
    grpc_status: Option<String>,
    grpc_message: Option<String>,
    /// Set by the driver if the stream fails.
    stream_end: Option<StreamEnd>,
    logged: bool,
}

impl CallRecord {
    pub(crate) fn new(req: &Request<RecvBody>) -> Self {
        let info = req.extensions().get::<ConnectionInfo>();
        Self {
            start: Instant::now(),
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            peer: info.and_then(ConnectionInfo::remote_addr),
            local: info.and_then(ConnectionInfo::local_addr),
            stream: req.extensions().get::<StreamId>().map(|id| id.get()),
            grpc_timeout: header(req.headers(), "grpc-timeout"),
            status: None,
            grpc_status: None,
            grpc_message: None,
            stream_end: req.extensions().get::<StreamEnd>().cloned(),
            logged: false,
        }
    }

    /// Notes the response head; the body's end logs the record.
    pub(crate) fn respond(mut self, response: Response<BoxBody>) -> Response<BoxBody> {
        self.status = Some(response.status().as_u16());
        // A trailers-only gRPC answer carries its status in the headers.
        self.grpc(response.headers());
        if response.body().is_end_stream() {
            self.finish("end_stream", None);
        }
        response.map(|inner| {
            body::boxed(Logged {
                inner,
                record: self,
            })
        })
    }

    fn grpc(&mut self, headers: &HeaderMap) {
        if let Some(status) = header(headers, "grpc-status") {
            self.grpc_status = Some(status);
            self.grpc_message = header(headers, "grpc-message");
        }
    }

    fn finish(&mut self, end: &str, error: Option<&dyn Display>) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        let duration_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        // What the driver saw, if the stream failed: who ended it, with which code,
        // and what the other side said (the error's sentence).
        let failure = self.stream_end.as_ref().and_then(StreamEnd::error);
        let reset_by = failure.map(|e| match e.initiator() {
            Initiator::Remote => "client",
            _ => "server",
        });
        let code = failure.and_then(steadfast::Error::code);
        let goaway = failure.and_then(steadfast::Error::goaway);
        // A stream failed by a GOAWAY (a drain whose grace ran out, a connection
        // error) ended with the connection, not with a RST_STREAM of its own.
        let end = if goaway.is_some() && end != "error" {
            "goaway"
        } else {
            end
        };
        // Who ended it: the server's END_STREAM completes a call; a failure is the
        // resetting side's (unknown when the driver did not say).
        let ended_by = match end {
            "end_stream" => Some("server"),
            _ => reset_by,
        };
        // The call's fate as the client's library classifies it: the service saw
        // the request; once the response head was sent the client can know it.
        let fate = if self.status.is_some() {
            "processed"
        } else {
            "maybe_processed"
        };
        let error = error
            .map(ToString::to_string)
            .or(failure.map(ToString::to_string));
        tracing::info!(
            target: TARGET,
            method = %self.method,
            path = %self.path,
            client = self.peer.map(tracing::field::display),
            server = self.local.map(tracing::field::display),
            stream = self.stream,
            status = self.status,
            grpc_status = self.grpc_status.as_deref(),
            grpc_message = self.grpc_message.as_deref(),
            grpc_timeout = self.grpc_timeout.as_deref(),
            duration_ms,
            end,
            ended_by,
            fate,
            reset_by,
            code = code.map(tracing::field::display),
            goaway = goaway.map(tracing::field::display),
            error = error.as_deref(),
            "call"
        );
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        // Dropped unfinished: the driver aborted the handler or dropped the response
        // body, for a RST_STREAM (sent or received) or a lost connection (its debug
        // record "stream failed" in the same connection span says which).
        let end = if self.status.is_none() {
            "reset_before_response"
        } else {
            "reset"
        };
        self.finish(end, None);
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The response body, watched for its trailers and its end.
struct Logged {
    inner: BoxBody,
    record: CallRecord,
}

impl Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.record.grpc(trailers);
                }
                if this.inner.is_end_stream() {
                    this.record.finish("end_stream", None);
                }
            }
            Poll::Ready(Some(Err(e))) => this.record.finish("error", Some(e)),
            Poll::Ready(None) => this.record.finish("end_stream", None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
