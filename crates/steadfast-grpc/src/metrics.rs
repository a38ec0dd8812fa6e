//! Prometheus metrics for [`Server`](crate::Server) and [`Channel`], registered into
//! the caller's [`prometheus_client::registry::Registry`].
//!
//! Names follow gRFC A66 (gRPC's OpenTelemetry metrics) mapped to Prometheus
//! conventions: dots become underscores, counters get `_total` in the exposition and
//! durations are seconds with a `_seconds` suffix (OpenTelemetry's own Prometheus
//! exporter does the same). So A66's `grpc.server.call.started` is
//! `grpc_server_call_started_total` and `grpc.server.call.duration` is the histogram
//! `grpc_server_call_duration_seconds`; the attributes `grpc.method`, `grpc.status`
//! and `grpc.target` are the labels `grpc_method`, `grpc_status` and `grpc_target`.
//!
//! On top of A66, the duration histograms carry `deadline_budget`: the call's deadline
//! at its start, bucketed as `none`, `<100ms`, `<1s`, `<10s` or `>=10s`, which makes
//! a deadline cascade visible at a glance.
//!
//! - [`ServerMetrics`] counts `grpc_server_call_started_total{grpc_method}`,
//!   `grpc_server_call_duration_seconds{grpc_method,grpc_status,deadline_budget}` and
//!   the message sizes `grpc_server_call_{sent,rcvd}_total_compressed_message_size_bytes{grpc_method,grpc_status}`,
//!   as a tower layer (or [`ServerMetrics::wrap`]) around a [`GrpcService`](crate::GrpcService).
//! - [`ChannelMetrics`] counts `grpc_client_call_started_total{grpc_method,grpc_target}`,
//!   `grpc_client_call_duration_seconds{grpc_method,grpc_target,grpc_status,deadline_budget}`
//!   and the attempts' metrics (below) around a [`Channel`].
//! - [`register_server_stats`] and [`register_channel_stats`]: steadfast's own
//!   counters (requests shed, transparent retries by cause, failures by fate, A6
//!   retries and hedges, RST_STREAM and GOAWAY frames sent and received by code,
//!   connections opened and closed by reason), read at scrape time.
//!
//! # Attempts
//!
//! [`ChannelMetrics`] also counts A66's `grpc_client_attempt_started_total` and
//! `grpc_client_attempt_duration_seconds{grpc_method,grpc_target,grpc_status}`. An
//! attempt is one request the [`Channel`] hands to its `steadfast::Client`: the only
//! one of a call without a retry or hedging policy, each try of a retry policy, each
//! copy of a hedging policy (gRFC A6). A transparent retry inside the client (a
//! request the server provably never processed, sent again) belongs to the attempt
//! it retries and is counted by `steadfast_client_transparent_retries_total` instead
//! (grpc-java and grpc-go open a new attempt for it). An attempt ends when it fails
//! (with its own status), when the call committed to it ends (with the call's
//! status), or when it is abandoned (`CANCELLED`: a hedged copy another copy beat, a
//! call the application dropped). A call refused before any attempt (a zero budget,
//! a malformed `grpc-timeout`) has none.
//!
//! # Message sizes
//!
//! A66's `*_total_compressed_message_size` histograms, in bytes with A66's buckets
//! (0, 1 KiB … 4 GiB): the bytes of a call's (server) or an attempt's (client)
//! messages in each direction, as they are on the wire (compressed if they were),
//! without gRPC's 5-byte framing or any metadata. What is counted is what passed
//! through: the request bytes the service read, the response bytes the server's
//! body yielded, the request bytes an attempt's body yielded, and the response bytes
//! the application read through the committed attempt (0 for an attempt that did
//! not commit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use steadfast::RecvBody;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::{timeout, Channel};

mod attempt;
pub(crate) use attempt::{Attempt, AttemptRecorder};

/// A66's recommended latency buckets, in seconds (the leading 0 left out).
const BUCKETS: [f64; 40] = [
    0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006,
    0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2,
    0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// A66's recommended message-size buckets, in bytes (0 to 4 GiB).
const SIZE_BUCKETS: [f64; 14] = [
    0.0,
    1024.0,
    2048.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
];

fn size_histogram() -> Histogram {
    Histogram::new(SIZE_BUCKETS)
}

/// The `deadline_budget` label of a call whose deadline, at its start, was `budget`
/// away (`None`: no deadline).
pub fn deadline_budget(budget: Option<Duration>) -> &'static str {
    match budget {
        None => "none",
        Some(b) if b < Duration::from_millis(100) => "<100ms",
        Some(b) if b < Duration::from_secs(1) => "<1s",
        Some(b) if b < Duration::from_secs(10) => "<10s",
        Some(_) => ">=10s",
    }
}

/// A status code as A66 names it in `grpc.status` (`OK`, `DEADLINE_EXCEEDED`, …).
pub fn status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `grpc-status` of a header block, if it has one.
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(Code::from_i32(code))
}

/// A66's `grpc.method`: the full method name without its leading slash.
fn method_of<B>(request: &Request<B>) -> String {
    let path = request.uri().path();
    path.strip_prefix('/').unwrap_or(path).to_owned()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerStarted {
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerDuration {
    grpc_method: String,
    grpc_status: &'static str,
    deadline_budget: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientStarted {
    grpc_method: String,
    grpc_target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientDuration {
    grpc_method: String,
    grpc_target: String,
    grpc_status: &'static str,
    deadline_budget: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerSize {
    grpc_method: String,
    grpc_status: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's A66 call metrics, registered once, shared by every clone.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    started: Family<ServerStarted, Counter>,
    duration: HistogramFamily<ServerDuration>,
    sent: HistogramFamily<ServerSize>,
    rcvd: HistogramFamily<ServerSize>,
    /// Services whose methods get their own `grpc_method`; any other is `other`.
    known: Option<Arc<[&'static str]>>,
}

impl ServerMetrics {
    /// Registers `grpc_server_call_started`, `grpc_server_call_duration_seconds` and
    /// the message sizes `grpc_server_call_{sent,rcvd}_total_compressed_message_size_bytes`
    /// into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let started = Family::default();
        let duration = HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        let sent = HistogramFamily::new_with_constructor(size_histogram as fn() -> Histogram);
        let rcvd = HistogramFamily::new_with_constructor(size_histogram as fn() -> Histogram);
        registry.register(
            "grpc_server_call_started",
            "Calls started on the server (A66 grpc.server.call.started)",
            started.clone(),
        );
        registry.register_with_unit(
            "grpc_server_call_duration",
            "From the call's headers to its status sent, per method, status and deadline budget (A66 grpc.server.call.duration)",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register_with_unit(
            "grpc_server_call_sent_total_compressed_message_size",
            "Bytes of the response messages of a call, as sent (compressed if they were), without gRPC framing, per method and status (A66 grpc.server.call.sent_total_compressed_message_size)",
            Unit::Bytes,
            sent.clone(),
        );
        registry.register_with_unit(
            "grpc_server_call_rcvd_total_compressed_message_size",
            "Bytes of the request messages of a call the service read, without gRPC framing, per method and status (A66 grpc.server.call.rcvd_total_compressed_message_size)",
            Unit::Bytes,
            rcvd.clone(),
        );
        Self {
            started,
            duration,
            sent,
            rcvd,
            known: None,
        }
    }

    /// Labels only the methods of these services by name and every other path
    /// `grpc_method="other"` (A66's rule for unregistered methods), so that a client
    /// sending made-up paths cannot grow the series without bound. Give it
    /// [`GrpcService::service_names`](crate::GrpcService::service_names). Without
    /// it, every path is a label value.
    pub fn known_services(mut self, names: &[&'static str]) -> Self {
        self.known = Some(Arc::from(names));
        self
    }

    fn method<B>(&self, request: &Request<B>) -> String {
        let method = method_of(request);
        match &self.known {
            None => method,
            Some(known) => {
                let service = method.split_once('/').map_or("", |(s, _)| s);
                if known.contains(&service) {
                    method
                } else {
                    "other".to_owned()
                }
            }
        }
    }

    /// `service` measured by these metrics.
    pub fn wrap<S>(&self, service: S) -> MetricsService<S> {
        MetricsService {
            inner: service,
            metrics: self.clone(),
        }
    }
}

impl<S> tower_layer::Layer<S> for ServerMetrics {
    type Service = MetricsService<S>;

    fn layer(&self, service: S) -> MetricsService<S> {
        self.wrap(service)
    }
}

/// A gRPC server service measured by [`ServerMetrics`].
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    metrics: ServerMetrics,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, RB> tower_service::Service<Request<RecvBody>> for MetricsService<S>
where
    S: tower_service::Service<Request<RecvBody>, Response = Response<RB>>,
    S::Future: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<MetricsBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<RecvBody>) -> Self::Future {
        let start = Instant::now();
        let grpc_method = self.metrics.method(&request);
        // The request's messages, sized as the service reads them.
        let received = Arc::new(AtomicU64::new(0));
        let mut scanner = crate::limits::MessageScanner::default();
        let counted = received.clone();
        request.body_mut().inspect_data(move |data| {
            scanner.count(data);
            counted.store(scanner.payload(), Ordering::Relaxed);
        });
        // A malformed grpc-timeout is answered INTERNAL by the server; its budget is none.
        let budget = request
            .headers()
            .get(timeout::GRPC_TIMEOUT)
            .and_then(|v| timeout::parse(v.as_bytes()).ok());
        self.metrics
            .started
            .get_or_create(&ServerStarted {
                grpc_method: grpc_method.clone(),
            })
            .inc();
        let (duration, sent, rcvd) = (
            self.metrics.duration.clone(),
            self.metrics.sent.clone(),
            self.metrics.rcvd.clone(),
        );
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let record = move |status: Code, sent_bytes: u64| {
                let size = ServerSize {
                    grpc_method: grpc_method.clone(),
                    grpc_status: status_name(status),
                };
                sent.get_or_create(&size).observe(sent_bytes as f64);
                rcvd.get_or_create(&size)
                    .observe(received.load(Ordering::Relaxed) as f64);
                duration
                    .get_or_create(&ServerDuration {
                        grpc_method,
                        grpc_status: size.grpc_status,
                        deadline_budget: deadline_budget(budget),
                    })
                    .observe(start.elapsed().as_secs_f64());
            };
            Ok(measured(response, Box::new(record)))
        })
    }
}

/// Records a call's end: its status and the bytes of the messages its response
/// body carried.
type Record = Box<dyn FnOnce(Code, u64) + Send>;

fn measured<RB>(response: Response<RB>, record: Record) -> Response<MetricsBody<RB>> {
    let status = grpc_status(response.headers());
    response.map(|body| MetricsBody {
        inner: Box::pin(body),
        status,
        sizes: crate::limits::MessageScanner::default(),
        record: Some(record),
    })
}

/// A response body that records the call's duration and status when its trailers
/// (or its end, or its drop) arrive.
pub struct MetricsBody<B> {
    inner: Pin<Box<B>>,
    /// `grpc-status` seen so far (trailers-only responses carry it in the headers).
    status: Option<Code>,
    /// The messages' sizes so far.
    sizes: crate::limits::MessageScanner,
    record: Option<Record>,
}

impl<B> fmt::Debug for MetricsBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsBody")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<B> MetricsBody<B> {
    fn finish(&mut self, otherwise: Code) {
        if let Some(record) = self.record.take() {
            record(self.status.unwrap_or(otherwise), self.sizes.payload());
        }
    }
}

impl<B> Drop for MetricsBody<B> {
    fn drop(&mut self) {
        // Dropped before its status: the call was given up (e.g. the peer reset it).
        self.finish(Code::Cancelled);
    }
}

impl<B: Body<Data = Bytes>> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sizes.count(data);
                }
                if let Some(trailers) = frame.trailers_ref() {
                    if let Some(code) = grpc_status(trailers) {
                        this.status = Some(code);
                    }
                    this.finish(Code::Unknown);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Code::Unknown),
            Poll::Ready(None) => this.finish(Code::Unknown),
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

/// The channel's A66 call and attempt metrics, registered once, shared by every clone.
#[derive(Clone, Debug)]
pub struct ChannelMetrics {
    started: Family<ClientStarted, Counter>,
    duration: HistogramFamily<ClientDuration>,
    attempt_started: Family<ClientStarted, Counter>,
    attempt_duration: HistogramFamily<attempt::AttemptDuration>,
    attempt_sent: HistogramFamily<attempt::AttemptDuration>,
    attempt_rcvd: HistogramFamily<attempt::AttemptDuration>,
}

impl ChannelMetrics {
    /// Registers `grpc_client_call_started`, `grpc_client_call_duration_seconds`,
    /// `grpc_client_attempt_started`, `grpc_client_attempt_duration_seconds` and
    /// the attempts' message sizes
    /// `grpc_client_attempt_{sent,rcvd}_total_compressed_message_size_bytes` into
    /// `registry`. What an attempt is: [Attempts](crate::metrics#attempts).
    pub fn register(registry: &mut Registry) -> Self {
        let started = Family::default();
        let duration = HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        let attempt_started = Family::default();
        let attempt_duration =
            HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        let attempt_sent =
            HistogramFamily::new_with_constructor(size_histogram as fn() -> Histogram);
        let attempt_rcvd =
            HistogramFamily::new_with_constructor(size_histogram as fn() -> Histogram);
        registry.register(
            "grpc_client_call_started",
            "Calls started by the client, before any attempt (steadfast's; A66 counts attempts only)",
            started.clone(),
        );
        registry.register_with_unit(
            "grpc_client_call_duration",
            "From the call's start to its status, across every attempt, per method, target, status and deadline budget (A66 grpc.client.call.duration)",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "grpc_client_attempt_started",
            "Attempts started: the one of a call without a retry policy, each retry, each hedged copy; not transparent retries (A66 grpc.client.attempt.started)",
            attempt_started.clone(),
        );
        registry.register_with_unit(
            "grpc_client_attempt_duration",
            "From an attempt's start to its status (its failure, or the end of the call committed to it; CANCELLED if abandoned), per method, target and status (A66 grpc.client.attempt.duration)",
            Unit::Seconds,
            attempt_duration.clone(),
        );
        registry.register_with_unit(
            "grpc_client_attempt_sent_total_compressed_message_size",
            "Bytes of the request messages an attempt sent (compressed if they were), without gRPC framing, per method, target and status (A66 grpc.client.attempt.sent_total_compressed_message_size)",
            Unit::Bytes,
            attempt_sent.clone(),
        );
        registry.register_with_unit(
            "grpc_client_attempt_rcvd_total_compressed_message_size",
            "Bytes of the response messages an attempt received and the application read, without gRPC framing, per method, target and status (A66 grpc.client.attempt.rcvd_total_compressed_message_size)",
            Unit::Bytes,
            attempt_rcvd.clone(),
        );
        Self {
            started,
            duration,
            attempt_started,
            attempt_duration,
            attempt_sent,
            attempt_rcvd,
        }
    }

    /// `channel` measured by these metrics, its calls labelled `grpc_target=target`
    /// (A66: the target the channel was created with, e.g. `dns:///svc:443`).
    pub fn wrap(&self, channel: Channel, target: impl Into<String>) -> MetricsChannel {
        MetricsChannel {
            inner: channel,
            target: target.into(),
            metrics: self.clone(),
        }
    }
}

/// A [`Channel`] measured by [`ChannelMetrics`]; give it to a generated client as
/// the channel itself.
#[derive(Clone, Debug)]
pub struct MetricsChannel {
    inner: Channel,
    target: String,
    metrics: ChannelMetrics,
}

impl MetricsChannel {
    /// The channel measured.
    pub fn channel(&self) -> &Channel {
        &self.inner
    }
}

impl tower_service::Service<Request<tonic::body::Body>> for MetricsChannel {
    type Response = Response<MetricsBody<crate::ResponseBody>>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        tower_service::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: Request<tonic::body::Body>) -> Self::Future {
        let start = Instant::now();
        let grpc_method = method_of(&request);
        // The budget as the channel computes it, less the service config's
        // per-method timeouts (not visible from here).
        let mut deadlines: Vec<Instant> = Vec::with_capacity(4);
        if let Some(t) = request
            .headers()
            .get(timeout::GRPC_TIMEOUT)
            .and_then(|v| timeout::parse(v.as_bytes()).ok())
        {
            deadlines.push(start + t);
        }
        if let Some(d) = request.extensions().get::<steadfast::Deadline>() {
            deadlines.push(Instant::from_std(d.0));
        }
        if let Some(t) = self.inner.default_timeout() {
            deadlines.push(start + t);
        }
        // Read here, synchronously, as the channel does: `call` runs inside the
        // handler's task.
        if let Some(d) = crate::deadline::current() {
            deadlines.push(d);
        }
        let budget = deadlines
            .into_iter()
            .min()
            .map(|d| d.saturating_duration_since(start));
        self.metrics
            .started
            .get_or_create(&ClientStarted {
                grpc_method: grpc_method.clone(),
                grpc_target: self.target.clone(),
            })
            .inc();
        let attempts = Arc::new(AttemptRecorder {
            started: self.metrics.attempt_started.clone(),
            duration: self.metrics.attempt_duration.clone(),
            sent: self.metrics.attempt_sent.clone(),
            rcvd: self.metrics.attempt_rcvd.clone(),
            labels: ClientStarted {
                grpc_method: grpc_method.clone(),
                grpc_target: self.target.clone(),
            },
            committed: std::sync::Mutex::new(None),
        });
        request.extensions_mut().insert(attempts.clone());
        let duration = self.metrics.duration.clone();
        let target = self.target.clone();
        let record = move |status: Code, received: u64| {
            attempts.call_ended(status, received);
            duration
                .get_or_create(&ClientDuration {
                    grpc_method,
                    grpc_target: target,
                    grpc_status: status_name(status),
                    deadline_budget: deadline_budget(budget),
                })
                .observe(start.elapsed().as_secs_f64());
        };
        let future = tower_service::Service::call(&mut self.inner, request);
        Box::pin(async move {
            match future.await {
                Ok(response) => Ok(measured(response, Box::new(record))),
                Err(status) => {
                    record(status.code(), 0);
                    Err(status)
                }
            }
        })
    }
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn labelled<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: &[(L, u64)],
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, value) in values {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// Registers a collector of a [`steadfast::Server`]'s counters, read at scrape time:
/// `steadfast_server_requests_accepted_total`, `steadfast_server_requests_shed_total`
/// (refused with REFUSED_STREAM by load shedding), the gauge
/// `steadfast_server_requests_in_flight`, `steadfast_server_connections_opened_total`,
/// `steadfast_server_connections_closed_total{reason}` and the RST_STREAM and
/// GOAWAY frames sent and received by code
/// (`steadfast_server_{rst_stream,goaway}_{sent,received}_total{code}`).
pub fn register_server_stats(registry: &mut Registry, stats: steadfast::server::StatsHandle) {
    registry.register_collector(Box::new(ServerStats(stats)));
}

#[derive(Debug)]
struct ServerStats(steadfast::server::StatsHandle);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetCodeLabel {
    grpc_target: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetReasonLabel {
    grpc_target: String,
    reason: &'static str,
}

/// The four frame families (`{prefix}_rst_stream_sent_total{code}`, …) and
/// `{prefix}_connections_closed_total{reason}`, each label set extended by `with`.
/// A code appears once one frame with it was counted; every reason always appears.
fn connection_families<C: EncodeLabelSet, R: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    prefix: &str,
    stats: &steadfast::ConnectionStats,
    code_label: impl Fn(&'static str) -> C,
    reason_label: impl Fn(&'static str) -> R,
) -> fmt::Result {
    let frames = &stats.frames;
    let families: [(&str, &str, &steadfast_proto::ByCode); 4] = [
        (
            "rst_stream_sent",
            "RST_STREAM frames sent, by error code",
            &frames.rst_stream_sent,
        ),
        (
            "rst_stream_received",
            "RST_STREAM frames received, by error code",
            &frames.rst_stream_received,
        ),
        (
            "goaway_sent",
            "GOAWAY frames sent, by error code (a two-phase drain sends two)",
            &frames.goaway_sent,
        ),
        (
            "goaway_received",
            "GOAWAY frames received, by error code",
            &frames.goaway_received,
        ),
    ];
    for (name, help, counts) in families {
        let values: Vec<(C, u64)> = steadfast_proto::FrameCounts::labelled(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(code, n)| (code_label(code), n))
            .collect();
        labelled(encoder, &format!("{prefix}_{name}"), help, &values)?;
    }
    let closed: Vec<(R, u64)> = stats
        .closed_by_reason()
        .map(|(reason, n)| (reason_label(reason.name()), n))
        .collect();
    labelled(
        encoder,
        &format!("{prefix}_connections_closed"),
        "Connections closed, by reason: graceful, max_age, max_idle, drain_timeout, peer_closed, io_error, protocol_error, peer_error, keepalive_timeout, aborted, tls_error",
        &closed,
    )
}

impl Collector for ServerStats {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let stats = self.0.get();
        counter(
            &mut encoder,
            "steadfast_server_connections_opened",
            "Connections accepted (before TLS)",
            stats.connections.opened,
        )?;
        connection_families(
            &mut encoder,
            "steadfast_server",
            &stats.connections,
            |code| CodeLabel { code },
            |reason| ReasonLabel { reason },
        )?;
        counter(
            &mut encoder,
            "steadfast_server_requests_accepted",
            "Requests handed to the service",
            stats.accepted,
        )?;
        counter(
            &mut encoder,
            "steadfast_server_requests_shed",
            "Requests refused with REFUSED_STREAM by load shedding (max in flight reached)",
            stats.refused,
        )?;
        let gauge = ConstGauge::new(i64::try_from(stats.in_flight).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor(
            "steadfast_server_requests_in_flight",
            "Requests in the service now",
            None,
            gauge.metric_type(),
        )?)
    }
}

/// Registers a collector of a [`Channel`]'s counters, read at scrape time, each
/// labelled `grpc_target=target`: transparent retries by cause, failures by fate,
/// connections opened and closed by reason, RST_STREAM and GOAWAY frames sent and
/// received by code (`steadfast_client_{rst_stream,goaway}_{sent,received}_total`),
/// and the service config's retries and hedges (gRFC A6).
pub fn register_channel_stats(
    registry: &mut Registry,
    channel: &Channel,
    target: impl Into<String>,
) {
    registry.register_collector(Box::new(ChannelStats {
        channel: channel.clone(),
        target: Arc::from(target.into()),
    }));
}

#[derive(Debug)]
struct ChannelStats {
    channel: Channel,
    target: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    grpc_target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    grpc_target: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FateLabel {
    grpc_target: String,
    fate: &'static str,
}

impl Collector for ChannelStats {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let s = self.channel.client().stats();
        let r = self.channel.retry_stats();
        let target = || self.target.to_string();
        connection_families(
            &mut encoder,
            "steadfast_client",
            &s.connections,
            |code| TargetCodeLabel {
                grpc_target: target(),
                code,
            },
            |reason| TargetReasonLabel {
                grpc_target: target(),
                reason,
            },
        )?;
        let cause = |cause, v| {
            (
                CauseLabel {
                    grpc_target: target(),
                    cause,
                },
                v,
            )
        };
        labelled(
            &mut encoder,
            "steadfast_client_transparent_retries",
            "Requests retried transparently, by cause: never sent, above a GOAWAY's last-stream-id, reset with REFUSED_STREAM, idempotent and maybe processed",
            &[
                cause("not_sent", s.retries_not_sent),
                cause("refused_goaway", s.retries_refused_goaway),
                cause("refused_stream", s.retries_refused_stream),
                cause("maybe_processed", s.retries_maybe_processed),
            ],
        )?;
        let fate = |fate, v| {
            (
                FateLabel {
                    grpc_target: target(),
                    fate,
                },
                v,
            )
        };
        labelled(
            &mut encoder,
            "steadfast_client_failures",
            "Requests that failed, by fate: not_sent, refused, maybe_processed, processed, none (local errors)",
            &[
                fate("not_sent", s.failed_not_sent),
                fate("refused", s.failed_refused),
                fate("maybe_processed", s.failed_maybe_processed),
                fate("processed", s.failed_processed),
                fate("none", s.failed_other),
            ],
        )?;
        let plain: [(&str, &str, u64); 7] = [
            (
                "steadfast_client_requests",
                "Requests handed to the HTTP/2 client",
                s.requests,
            ),
            (
                "steadfast_client_connections_opened",
                "Connections established",
                s.connects,
            ),
            (
                "steadfast_client_connect_failures",
                "Connection attempts that failed",
                s.connect_failures,
            ),
            (
                "steadfast_grpc_retries",
                "Attempts after the first made by a retry policy (gRFC A6)",
                r.retries,
            ),
            (
                "steadfast_grpc_hedges",
                "Copies after the first sent by a hedging policy (gRFC A6)",
                r.hedges,
            ),
            (
                "steadfast_grpc_retries_throttled",
                "Retries or hedges not made because of the retry throttle",
                r.throttled,
            ),
            (
                "steadfast_grpc_retries_out_of_time",
                "Retries not made because the next attempt could not start before the deadline",
                r.out_of_time,
            ),
        ];
        for (name, help, value) in plain {
            labelled(
                &mut encoder,
                name,
                help,
                &[(
                    TargetLabel {
                        grpc_target: target(),
                    },
                    value,
                )],
            )?;
        }
        Ok(())
    }
}
