//! One record per call, written when the call ends (its last frame to the client,
//! its failure, or the client going away): the access log line and the metrics.
//!
//! The log line (`tracing` target `steadfast_proxy::access`, level INFO) carries both
//! sides: the client's address and stream id, the route and cluster, the backend's
//! address, the proxy's address on that connection and the stream id (the
//! backend's own join key for the call), the HTTP status and grpc-status, the outcome and, for a
//! failure, its fate, and the duration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use steadfast::{Fate, StreamId};

use crate::cluster::Cluster;
use crate::metrics::ProxyMetrics;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The response went out to its end (whatever its status).
    Answered,
    /// The proxy answered for a backend that failed (the fate says how far it got).
    Failed,
    /// The client reset the stream or went away first.
    Cancelled,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A call on its way; [`Record::finish`] (or dropping it: cancelled) writes it.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) started: Instant,
    pub(crate) metrics: Arc<ProxyMetrics>,
    pub(crate) route: Arc<str>,
    pub(crate) cluster: Arc<str>,
    pub(crate) method: String,
    pub(crate) client: Option<SocketAddr>,
    pub(crate) client_stream: Option<StreamId>,
    pub(crate) backend: Option<SocketAddr>,
    /// The proxy's own address on the backend connection: with `backend` and
    /// `backend_stream`, the join key of the backend's record of the call.
    pub(crate) backend_local: Option<SocketAddr>,
    pub(crate) backend_stream: Option<StreamId>,
    pub(crate) http_status: u16,
    /// From the response head (Trailers-Only) or the trailers.
    pub(crate) grpc_status: Option<String>,
    pub(crate) fate: Option<Fate>,
    pub(crate) error: Option<String>,
    /// The cluster whose outlier detector hears of the call's end.
    pub(crate) cluster_ref: Option<Arc<Cluster>>,
    done: bool,
}

impl Record {
    pub(crate) fn new(
        metrics: Arc<ProxyMetrics>,
        route: Arc<str>,
        cluster: Arc<str>,
        method: String,
    ) -> Self {
        Self {
            started: Instant::now(),
            metrics,
            route,
            cluster,
            method,
            client: None,
            client_stream: None,
            backend: None,
            backend_local: None,
            backend_stream: None,
            http_status: 0,
            grpc_status: None,
            fate: None,
            error: None,
            cluster_ref: None,
            done: false,
        }
    }

    /// Notes the grpc-status in `headers`, if any.
    pub(crate) fn status_from(&mut self, headers: &HeaderMap) {
        if let Some(status) = headers.get("grpc-status").and_then(|v| v.to_str().ok()) {
            self.grpc_status = Some(status.to_owned());
        }
    }

    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.write(outcome);
    }

    fn write(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        self.metrics.observe(self, outcome, elapsed);
        if let (Some(cluster), Some(backend)) = (&self.cluster_ref, self.backend) {
            if outcome != Outcome::Cancelled {
                let failed = crate::outlier::is_failure(
                    outcome == Outcome::Failed,
                    self.http_status,
                    self.grpc_status.as_deref(),
                );
                cluster.observe(backend, failed);
            }
        }
        tracing::info!(
            target: "steadfast_proxy::access",
            route = %self.route,
            cluster = %self.cluster,
            method = %self.method,
            client = self.client.map(tracing::field::display),
            client_stream = self.client_stream.map(StreamId::get),
            backend = self.backend.map(tracing::field::display),
            backend_local = self.backend_local.map(tracing::field::display),
            backend_stream = self.backend_stream.map(StreamId::get),
            http_status = self.http_status,
            grpc_status = self.grpc_status.as_deref(),
            outcome = outcome.name(),
            fate = self.fate.map(tracing::field::display),
            error = self.error.as_deref(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "call"
        );
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (the server dropped the
        // response body, or the handler before it answered).
        self.write(Outcome::Cancelled);
    }
}
