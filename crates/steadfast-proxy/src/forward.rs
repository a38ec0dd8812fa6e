//! The proxy's service as a stack of small layers, outermost first:
//!
//! 1. [`Routing`](crate::router::Routing): the route and cluster of the call (none:
//!    UNIMPLEMENTED, or 404 for plain HTTP, answered and recorded there);
//! 2. [`Recording`](crate::record::Recording): the call's record — the access log
//!    line and the metrics — written when its response ends;
//! 3. [`Deadlines`](crate::deadline::Deadlines): the call's deadline from its
//!    `grpc-timeout`, the route's `timeout` and the method's service config;
//! 4. [`Forward`]: the cluster's `steadfast::Client` (per-call balancing, retry by
//!    fate, the pool) or the route's A6 policy over it, and the answer by fate when
//!    no backend answered.
//!
//! Each layer hands the next what it found in the request's extensions (`Routed`,
//! `steadfast::Deadline`), and the inner ones tell the outer ones how it went in the
//! response's (`BackendStream`, `Unanswered`, the backend's `ConnectionInfo`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use http::{header, HeaderMap, Request, Response};
use steadfast::client::SendAuthority;
use steadfast::{BoxError, Deadline, RecvBody, StreamId, TimeoutHeader};
use steadfast_grpc::StatusExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::answer::{self, Unanswered};
use crate::body::ProxyBody;
use crate::deadline::DeadlineLayer;
use crate::metrics::ProxyMetrics;
use crate::record::RecordLayer;
use crate::router::{Route, Routed, Routing};

/// The routes and clusters in force; a reload swaps it whole.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) routes: Vec<Arc<Route>>,
}

/// A boxed future of the proxy's services.
pub(crate) type ProxyFuture =
    Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, BoxError>> + Send>>;

type Stack = Routing<crate::record::Recording<crate::deadline::Deadlines<Forward>>>;

/// The [`tower_service::Service`] a listener's [`steadfast::Server`] runs: every
/// request forwarded as the routes say (the layers above). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProxyService(Stack);

impl ProxyService {
    pub(crate) fn new(table: Arc<RwLock<Arc<Table>>>, metrics: Arc<ProxyMetrics>) -> Self {
        let inner = DeadlineLayer.layer(Forward);
        let inner = RecordLayer::new(metrics.clone()).layer(inner);
        Self(Routing::new(table, metrics, inner))
    }
}

impl Service<Request<RecvBody>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = ProxyFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RecvBody>) -> ProxyFuture {
        self.0.call(request)
    }
}

/// Whether a request or response is gRPC.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The backend stream a forwarded response came on (a response extension).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendStream(pub(crate) StreamId);

/// The innermost service: the call sent to its cluster, answered by fate when no
/// backend answered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Forward;

impl Service<Request<RecvBody>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = ProxyFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RecvBody>) -> ProxyFuture {
        Box::pin(forward(request))
    }
}

async fn forward(request: Request<RecvBody>) -> Result<Response<ProxyBody>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let Some(Routed(route)) = parts.extensions.remove::<Routed>() else {
        return Err("steadfast proxy: Forward runs under Routing".into());
    };
    let grpc = is_grpc(&parts.headers);
    let deadline = parts.extensions.remove::<Deadline>();
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = route.cluster.uri(parts.uri.path_and_query());
    if let Some(authority) = parts.uri.authority() {
        upstream
            .extensions_mut()
            .insert(SendAuthority(authority.clone()));
    }
    if let Some(d) = deadline {
        upstream.extensions_mut().insert(d);
        if let Some(header) = parts.extensions.remove::<TimeoutHeader>() {
            upstream.extensions_mut().insert(header);
        }
    }
    let policy = grpc
        .then(|| route.method_config(parts.uri.path()))
        .flatten()
        .and_then(|(m, runner)| Some((m.policy.as_ref()?, runner)));
    *upstream.headers_mut() = parts.headers;
    let cluster = &route.cluster;
    let result = match policy {
        None => cluster.client.send(upstream).await,
        Some((policy, runner)) => {
            match runner
                .call(&cluster.client, upstream, policy, deadline.map(|d| d.0))
                .await
            {
                Ok(response) => Ok(response),
                Err(status) => match status.steadfast_error() {
                    // Below gRPC: answered by fate, as without a policy.
                    Some(error) => Err(error.clone()),
                    // The policy's own answer (out of time, throttled…).
                    None => {
                        let mut response = answer::grpc_status(status.code(), status.message());
                        response.extensions_mut().insert(Unanswered {
                            fate: None,
                            error: status.message().to_owned(),
                            backend: None,
                        });
                        return Ok(response);
                    }
                },
            }
        }
    };
    match result {
        Ok(response) => {
            let (mut head, body) = response.into_parts();
            head.extensions.insert(BackendStream(body.stream_id()));
            let grpc_response = is_grpc(&head.headers);
            Ok(Response::from_parts(
                head,
                ProxyBody::forward(body, grpc_response, cluster.name.clone()),
            ))
        }
        Err(error) => {
            // Once per failed call, naming the backend when there was one: the
            // operator's lead when a backend speaks HTTP/1.1, or TLS where h2c was
            // configured, or is gone.
            tracing::warn!(
                cluster = %cluster.name,
                backend = error
                    .connection()
                    .and_then(steadfast::ConnectionInfo::remote_addr)
                    .map(tracing::field::display),
                fate = error.fate().map(tracing::field::display),
                %error,
                "no backend answered the call"
            );
            let unanswered = Unanswered {
                fate: error.fate(),
                error: error.to_string(),
                backend: error.connection().cloned(),
            };
            match answer::failed(&error, grpc, &cluster.name) {
                Ok(mut response) => {
                    response.extensions_mut().insert(unanswered);
                    Ok(response)
                }
                Err(reset) => Err(Box::new(answer::Refused { reset, unanswered }) as BoxError),
            }
        }
    }
}
