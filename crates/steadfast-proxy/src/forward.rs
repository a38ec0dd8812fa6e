//! The proxy's service: route, deadline, forward, answer — one call through.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{header, HeaderMap, HeaderName, Request, Response};
use http_body::Body as _;
use steadfast::client::SendAuthority;
use steadfast::{BoxError, ConnectionInfo, Deadline, RecvBody, StreamId, TimeoutHeader};
use steadfast_grpc::{timeout, StatusExt};

use crate::answer;
use crate::body::ProxyBody;
use crate::metrics::ProxyMetrics;
use crate::record::{Outcome, Record};
use crate::router::{self, Route};

/// The routes and clusters in force; a reload swaps it whole.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) routes: Vec<Route>,
}

/// The [`tower_service::Service`] a listener's [`steadfast::Server`] runs: every
/// request forwarded as the routes say. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProxyService {
    pub(crate) table: Arc<RwLock<Arc<Table>>>,
    pub(crate) metrics: Arc<ProxyMetrics>,
}

const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl tower_service::Service<Request<RecvBody>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RecvBody>) -> Self::Future {
        let table = match self.table.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Box::pin(forward(table, self.metrics.clone(), request))
    }
}

async fn forward(
    table: Arc<Table>,
    metrics: Arc<ProxyMetrics>,
    request: Request<RecvBody>,
) -> Result<Response<ProxyBody>, BoxError> {
    let started = Instant::now();
    let grpc = is_grpc(request.headers());
    let authority = request.uri().authority().cloned();
    // gRPC methods are a bounded set; arbitrary URL paths are not.
    let method = if grpc {
        request.uri().path().to_owned()
    } else {
        "other".to_owned()
    };
    let route = router::find(
        &table.routes,
        authority.as_ref().map(|a| a.as_str()),
        request.uri().path(),
    );
    let (route_name, cluster_name) = match route {
        Some(r) => (r.name.clone(), r.cluster.name.clone()),
        None => (Arc::from("none"), Arc::from("none")),
    };
    let mut record = Record::new(metrics, route_name, cluster_name, method);
    record.client = request
        .extensions()
        .get::<ConnectionInfo>()
        .and_then(ConnectionInfo::remote_addr);
    record.client_stream = request.extensions().get::<StreamId>().copied();
    let Some(route) = route else {
        let response = answer::no_route(
            grpc,
            authority.as_ref().map(|a| a.as_str()),
            request.uri().path(),
        );
        return Ok(answered(record, response, Outcome::Answered));
    };
    record.cluster_ref = Some(route.cluster.clone());
    let (parts, body) = request.into_parts();
    // The call's deadline: the route's limit, or the client's grpc-timeout counted
    // from when the proxy received the call, whichever comes first. The client's
    // steadfast::Client writes the time *left* into grpc-timeout on every attempt.
    let mut deadline = route.timeout.map(|t| started + t);
    if grpc {
        if let Some(value) = parts.headers.get(GRPC_TIMEOUT) {
            match timeout::parse(value.as_bytes()) {
                Ok(t) => {
                    let at = started + t;
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
                Err(_) => return Ok(answered(record, answer::bad_timeout(), Outcome::Answered)),
            }
        }
    }
    // The route's service config: the method's timeout bounds the deadline (gRPC's
    // rule: the deadline of calls that set none, the longest of those that do), and
    // its retry or hedging policy runs the call.
    let method_config = if grpc {
        route.method_config(parts.uri.path())
    } else {
        None
    };
    if let Some(t) = method_config.and_then(|(m, _)| m.timeout) {
        let at = started + t;
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    let policy = method_config.and_then(|(m, runner)| Some((m.policy.as_ref()?, runner)));
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = route.cluster.uri(parts.uri.path_and_query());
    *upstream.headers_mut() = parts.headers;
    if let Some(authority) = authority {
        upstream.extensions_mut().insert(SendAuthority(authority));
    }
    if let Some(d) = deadline {
        upstream.extensions_mut().insert(Deadline(d));
        if grpc {
            upstream.extensions_mut().insert(TimeoutHeader {
                name: GRPC_TIMEOUT,
                format: timeout::header_value,
            });
        }
    }
    let cluster = route.cluster.name.clone();
    let result = match policy {
        None => route.cluster.client.send(upstream).await,
        Some((policy, runner)) => {
            match runner
                .call(&route.cluster.client, upstream, policy, deadline)
                .await
            {
                Ok(response) => Ok(response),
                Err(status) => match status.steadfast_error() {
                    // Below gRPC: answered by fate, as without a policy.
                    Some(error) => Err(error.clone()),
                    // The policy's own answer (out of time, throttled…).
                    None => {
                        record.error = Some(status.message().to_owned());
                        let response = answer::grpc_status(status.code(), status.message());
                        return Ok(answered(record, response, Outcome::Failed));
                    }
                },
            }
        }
    };
    match result {
        Ok(response) => {
            let (head, body) = response.into_parts();
            let backend = head.extensions.get::<ConnectionInfo>();
            record.backend = backend.and_then(ConnectionInfo::remote_addr);
            record.backend_local = backend.and_then(ConnectionInfo::local_addr);
            record.backend_stream = Some(body.stream_id());
            record.http_status = head.status.as_u16();
            record.status_from(&head.headers);
            let grpc_response = is_grpc(&head.headers);
            if body.is_end_stream() {
                // Trailers-Only, or an empty response: done already.
                record.finish(Outcome::Answered);
                return Ok(Response::from_parts(head, ProxyBody::forward_done(body)));
            }
            Ok(Response::from_parts(
                head,
                ProxyBody::forward(body, grpc_response, cluster, record),
            ))
        }
        Err(error) => {
            record.fate = error.fate();
            record.error = Some(error.to_string());
            match answer::failed(&error, grpc, &cluster) {
                Ok(response) => Ok(answered(record, response, Outcome::Failed)),
                Err(reset) => {
                    record.finish(Outcome::Failed);
                    Err(Box::new(reset) as BoxError)
                }
            }
        }
    }
}

/// Writes the record of a call the proxy answered itself.
fn answered(
    mut record: Record,
    response: Response<ProxyBody>,
    outcome: Outcome,
) -> Response<ProxyBody> {
    record.http_status = response.status().as_u16();
    record.status_from(response.headers());
    record.finish(outcome);
    response
}
