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

    /// The record of `request`, on `route` of `cluster` (`None`: no route).
    pub(crate) fn for_request(
        metrics: Arc<ProxyMetrics>,
        route: Arc<str>,
        cluster: Option<&Arc<Cluster>>,
        request: &http::Request<steadfast::RecvBody>,
    ) -> Self {
        // gRPC methods are a bounded set (and bounded again in the metrics);
        // arbitrary URL paths are not.
        let method = if crate::forward::is_grpc(request.headers()) {
            request.uri().path().to_owned()
        } else {
            "other".to_owned()
        };
        let cluster_name = cluster.map_or_else(|| Arc::from("none"), |c| c.name.clone());
        let mut record = Self::new(metrics, route, cluster_name, method);
        record.cluster_ref = cluster.cloned();
        let extensions = request.extensions();
        record.client = extensions
            .get::<steadfast::ConnectionInfo>()
            .and_then(steadfast::ConnectionInfo::remote_addr);
        record.client_stream = extensions.get::<StreamId>().copied();
        record
    }

    /// Notes how a call no backend answered failed, and on which backend.
    pub(crate) fn failed_on(&mut self, unanswered: &crate::answer::Unanswered) {
        self.fate = unanswered.fate;
        self.error = Some(unanswered.error.clone());
        if let Some(backend) = &unanswered.backend {
            self.backend = backend.remote_addr();
            self.backend_local = backend.local_addr();
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
                // A refusal (a drain, a backend shedding load) or a call never sent
                // is the backend protecting itself, not the backend failing.
                let unprocessed = matches!(self.fate, Some(Fate::Refused | Fate::NotSent));
                let failed = !unprocessed
                    && crate::outlier::is_failure(
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

/// Makes [`Recording`].
#[derive(Clone, Debug)]
pub(crate) struct RecordLayer {
    metrics: Arc<ProxyMetrics>,
}

impl RecordLayer {
    pub(crate) fn new(metrics: Arc<ProxyMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower_layer::Layer<S> for RecordLayer {
    type Service = Recording<S>;

    fn layer(&self, inner: S) -> Recording<S> {
        Recording {
            metrics: self.metrics.clone(),
            inner,
        }
    }
}

/// The record layer: a [`Record`] per routed call, filled from the response the
/// layers below give (the backend's `ConnectionInfo` and stream, or what the proxy
/// answered for it) and written when the response ends — by the body at its last
/// frame, or at once for a response that has no body to wait for.
#[derive(Clone, Debug)]
pub(crate) struct Recording<S> {
    metrics: Arc<ProxyMetrics>,
    inner: S,
}

impl<S> tower_service::Service<http::Request<steadfast::RecvBody>> for Recording<S>
where
    S: tower_service::Service<
        http::Request<steadfast::RecvBody>,
        Response = http::Response<crate::body::ProxyBody>,
        Error = steadfast::BoxError,
        Future = crate::forward::ProxyFuture,
    >,
{
    type Response = http::Response<crate::body::ProxyBody>;
    type Error = steadfast::BoxError;
    type Future = crate::forward::ProxyFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), steadfast::BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<steadfast::RecvBody>) -> Self::Future {
        let Some(crate::router::Routed(route)) = request.extensions().get().cloned() else {
            return self.inner.call(request);
        };
        // Dropped with this future if the client goes away first: `cancelled`.
        let mut record = Record::for_request(
            self.metrics.clone(),
            route.name.clone(),
            Some(&route.cluster),
            &request,
        );
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(mut response) => {
                    record.http_status = response.status().as_u16();
                    record.status_from(response.headers());
                    let extensions = response.extensions();
                    if let Some(backend) = extensions.get::<steadfast::ConnectionInfo>() {
                        record.backend = backend.remote_addr();
                        record.backend_local = backend.local_addr();
                    }
                    record.backend_stream = extensions
                        .get::<crate::forward::BackendStream>()
                        .map(|s| s.0);
                    let outcome = match extensions.get::<crate::answer::Unanswered>() {
                        Some(u) => {
                            record.failed_on(u);
                            Outcome::Failed
                        }
                        None => Outcome::Answered,
                    };
                    if http_body::Body::is_end_stream(response.body()) {
                        // Trailers-Only, or the proxy's own answer: done already.
                        record.finish(outcome);
                    } else if let Err(record) = response.body_mut().attach(Box::new(record)) {
                        record.finish(outcome);
                    }
                    Ok(response)
                }
                Err(error) => match error.downcast::<crate::answer::Refused>() {
                    Ok(refused) => {
                        record.failed_on(&refused.unanswered);
                        record.finish(Outcome::Failed);
                        Err(Box::new(refused.reset) as steadfast::BoxError)
                    }
                    Err(other) => {
                        record.error = Some(other.to_string());
                        record.finish(Outcome::Failed);
                        Err(other)
                    }
                },
            }
        })
    }
}
