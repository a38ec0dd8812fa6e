//! A66's per-attempt client metrics: `grpc_client_attempt_started_total`,
//! `grpc_client_attempt_duration_seconds` and the attempts' message sizes.
//!
//! An attempt is one request the [`Channel`](crate::Channel) hands to its
//! `steadfast::Client`: the only one of a call without a retry or hedging policy,
//! each try of a retry policy, each copy of a hedging policy (gRFC A6). A transparent
//! retry inside the client (a request the server provably never processed, sent
//! again) belongs to the attempt it retries: it is not an attempt of its own, and
//! is counted by `steadfast_client_transparent_retries_total` instead. This differs
//! from grpc-java and grpc-go, which open a new attempt for each transparent retry.
//!
//! An attempt ends when it fails (its status: a Trailers-Only status, an HTTP
//! status, a failure below gRPC), when the call it was committed to ends (the call's
//! status, at its trailers), or when it is abandoned (`CANCELLED`: a hedged copy
//! another copy beat, or a call the application dropped).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;
use tonic::Code;

use super::{status_name, ClientStarted, HistogramFamily};
use crate::limits::MessageScanner;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AttemptDuration {
    pub(super) grpc_method: String,
    pub(super) grpc_target: String,
    pub(super) grpc_status: &'static str,
}

/// Where a call's attempts are counted: put in the request's extensions by
/// [`MetricsChannel`](super::MetricsChannel), taken out by the channel.
#[derive(Debug)]
pub(crate) struct AttemptRecorder {
    pub(super) started: Family<ClientStarted, Counter>,
    pub(super) duration: HistogramFamily<AttemptDuration>,
    pub(super) sent: HistogramFamily<AttemptDuration>,
    pub(super) rcvd: HistogramFamily<AttemptDuration>,
    pub(super) labels: ClientStarted,
    /// When the attempt the call is committed to started, and what it sent so far;
    /// it ends with the call.
    pub(super) committed: Mutex<Option<(Instant, Arc<AtomicU64>)>>,
}

impl AttemptRecorder {
    /// An attempt starts now.
    pub(crate) fn start(self: &Arc<Self>) -> Attempt {
        self.started.get_or_create(&self.labels).inc();
        Attempt {
            recorder: Some(self.clone()),
            start: Instant::now(),
            sent: Arc::default(),
        }
    }

    fn observe(&self, start: Instant, code: Code, sent: u64, received: u64) {
        let labels = AttemptDuration {
            grpc_method: self.labels.grpc_method.clone(),
            grpc_target: self.labels.grpc_target.clone(),
            grpc_status: status_name(code),
        };
        self.sent.get_or_create(&labels).observe(sent as f64);
        self.rcvd.get_or_create(&labels).observe(received as f64);
        self.duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
    }

    /// The call ended with `code`, its response body having carried `received`
    /// bytes of messages: so did the attempt it was committed to.
    pub(super) fn call_ended(&self, code: Code, received: u64) {
        let committed = self.committed.lock().ok().and_then(|mut c| c.take());
        if let Some((start, sent)) = committed {
            self.observe(start, code, sent.load(Ordering::Relaxed), received);
        }
    }
}

/// One attempt in progress; recorded `CANCELLED` if dropped unresolved. An attempt
/// that did not commit received no message its application read: 0 bytes.
#[derive(Debug)]
pub(crate) struct Attempt {
    recorder: Option<Arc<AttemptRecorder>>,
    start: Instant,
    /// Bytes of request messages its body yielded.
    sent: Arc<AtomicU64>,
}

impl Attempt {
    /// An attempt starting now, counted by `recorder` if the channel is measured.
    pub(crate) fn of(recorder: Option<&Arc<AttemptRecorder>>) -> Self {
        match recorder {
            Some(r) => r.start(),
            None => Self {
                recorder: None,
                start: Instant::now(),
                sent: Arc::default(),
            },
        }
    }

    /// `body` as this attempt sends it, its messages sized (if measured).
    pub(crate) fn count<B>(&self, body: B) -> CountedBody<B> {
        CountedBody {
            inner: body,
            counter: self
                .recorder
                .is_some()
                .then(|| (MessageScanner::default(), self.sent.clone())),
        }
    }

    /// The attempt failed with `code`.
    pub(crate) fn failed(mut self, code: Code) {
        if let Some(r) = self.recorder.take() {
            r.observe(self.start, code, self.sent.load(Ordering::Relaxed), 0);
        }
    }

    /// The call is committed to this attempt: it ends with the call's status.
    pub(crate) fn committed(mut self) {
        if let Some(r) = self.recorder.take() {
            if let Ok(mut c) = r.committed.lock() {
                *c = Some((self.start, self.sent.clone()));
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(r) = self.recorder.take() {
            r.observe(
                self.start,
                Code::Cancelled,
                self.sent.load(Ordering::Relaxed),
                0,
            );
        }
    }
}

/// A request body whose messages' bytes an attempt counts as they are sent.
pub(crate) struct CountedBody<B> {
    inner: B,
    counter: Option<(MessageScanner, Arc<AtomicU64>)>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for CountedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some((scanner, sent))) = (&polled, &mut this.counter)
        {
            if let Some(data) = frame.data_ref() {
                scanner.count(data);
                sent.store(scanner.payload(), Ordering::Relaxed);
            }
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
