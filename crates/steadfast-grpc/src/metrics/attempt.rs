//! A66's per-attempt client metrics: `grpc_client_attempt_started_total` and
//! `grpc_client_attempt_duration_seconds`.
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

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;
use tonic::Code;

use super::{status_name, ClientStarted, HistogramFamily};

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
    pub(super) labels: ClientStarted,
    /// When the attempt the call is committed to started; it ends with the call.
    pub(super) committed: Mutex<Option<Instant>>,
}

impl AttemptRecorder {
    /// An attempt starts now.
    pub(crate) fn start(self: &Arc<Self>) -> Attempt {
        self.started.get_or_create(&self.labels).inc();
        Attempt {
            recorder: Some(self.clone()),
            start: Instant::now(),
        }
    }

    fn observe(&self, start: Instant, code: Code) {
        self.duration
            .get_or_create(&AttemptDuration {
                grpc_method: self.labels.grpc_method.clone(),
                grpc_target: self.labels.grpc_target.clone(),
                grpc_status: status_name(code),
            })
            .observe(start.elapsed().as_secs_f64());
    }

    /// The call ended with `code`: so did the attempt it was committed to.
    pub(super) fn call_ended(&self, code: Code) {
        let start = self.committed.lock().ok().and_then(|mut c| c.take());
        if let Some(start) = start {
            self.observe(start, code);
        }
    }
}

/// One attempt in progress; recorded `CANCELLED` if dropped unresolved.
#[derive(Debug)]
pub(crate) struct Attempt {
    recorder: Option<Arc<AttemptRecorder>>,
    start: Instant,
}

impl Attempt {
    /// An attempt starting now, counted by `recorder` if the channel is measured.
    pub(crate) fn of(recorder: Option<&Arc<AttemptRecorder>>) -> Self {
        match recorder {
            Some(r) => r.start(),
            None => Self {
                recorder: None,
                start: Instant::now(),
            },
        }
    }

    /// The attempt failed with `code`.
    pub(crate) fn failed(mut self, code: Code) {
        if let Some(r) = self.recorder.take() {
            r.observe(self.start, code);
        }
    }

    /// The call is committed to this attempt: it ends with the call's status.
    pub(crate) fn committed(mut self) {
        if let Some(r) = self.recorder.take() {
            if let Ok(mut c) = r.committed.lock() {
                *c = Some(self.start);
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(r) = self.recorder.take() {
            r.observe(self.start, Code::Cancelled);
        }
    }
}
