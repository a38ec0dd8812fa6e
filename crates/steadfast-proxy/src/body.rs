//! The body the proxy answers with: a backend's response passed through frame by
//! frame (trailers included), or one the proxy wrote itself.
//!
//! A backend body is pulled only as fast as the client's stream takes it: the
//! server's driver polls a body only while flow control lets its data leave, and the
//! backend's [`RecvBody`] opens the backend's window only as chunks are handed on. So
//! a slow client slows its backend stream, and what the proxy holds per stream is
//! bounded by the two windows.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use steadfast::{BoxError, RecvBody};

use crate::answer;
use crate::record::{Outcome, Record};

/// A response body of the proxy.
#[derive(Debug)]
pub struct ProxyBody(Inner);

#[derive(Debug)]
enum Inner {
    Forward {
        body: RecvBody,
        /// The response is gRPC: a failure becomes trailers with a status.
        grpc: bool,
        cluster: Arc<str>,
        /// Written when the body ends; dropped unwritten: the client went away.
        record: Option<Box<Record>>,
    },
    Full(Option<Bytes>),
    Done,
}

impl ProxyBody {
    /// A backend's body, passed through (gRPC: a failure becomes trailers).
    pub(crate) fn forward(body: RecvBody, grpc: bool, cluster: Arc<str>) -> Self {
        Self(Inner::Forward {
            body,
            grpc,
            cluster,
            record: None,
        })
    }

    /// Hands the call's record to the body, which writes it at its end; `Err` gives
    /// it back when the body has no end to wait for (the proxy's own answers).
    pub(crate) fn attach(&mut self, record: Box<Record>) -> Result<(), Box<Record>> {
        match &mut self.0 {
            Inner::Forward { record: slot, .. } => {
                *slot = Some(record);
                Ok(())
            }
            _ => Err(record),
        }
    }

    pub(crate) fn empty() -> Self {
        Self(Inner::Done)
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self(Inner::Full(Some(data)))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Inner::Done => Poll::Ready(None),
            Inner::Full(data) => {
                let data = data.take();
                self.0 = Inner::Done;
                Poll::Ready(data.map(|d| Ok(Frame::data(d))))
            }
            Inner::Forward {
                body,
                grpc,
                cluster,
                record,
            } => match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    // The last frame: trailers, or data that ends the body (the
                    // server's driver drops a body at its end without polling it
                    // again).
                    let last = frame.is_trailers() || body.is_end_stream();
                    if let Some(mut r) = last.then(|| record.take()).flatten() {
                        if let Some(trailers) = frame.trailers_ref() {
                            r.status_from(trailers);
                        }
                        r.finish(Outcome::Answered);
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(None) => {
                    if let Some(r) = record.take() {
                        r.finish(Outcome::Answered);
                    }
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::debug!(cluster = %cluster, %error, "backend response failed");
                    let mut r = record.take();
                    if let Some(r) = r.as_mut() {
                        r.fate = error.fate();
                        r.error = Some(error.to_string());
                    }
                    let end = if *grpc {
                        let trailers = answer::grpc_trailers(&error, cluster);
                        if let Some(r) = r.as_mut() {
                            r.status_from(&trailers);
                        }
                        Ok(Frame::trailers(trailers))
                    } else {
                        Err(Box::new(answer::reset_for(&error)) as BoxError)
                    };
                    if let Some(r) = r {
                        r.finish(Outcome::Failed);
                    }
                    self.0 = Inner::Done;
                    Poll::Ready(Some(end))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Forward { body, .. } => body.is_end_stream(),
            Inner::Full(data) => data.is_none(),
            Inner::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Forward { body, .. } => body.size_hint(),
            Inner::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            _ => SizeHint::with_exact(0),
        }
    }
}
