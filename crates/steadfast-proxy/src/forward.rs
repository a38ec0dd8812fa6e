//! The proxy's service: route, deadline, forward, answer — one call through.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{header, HeaderMap, HeaderName, Request, Response};
use steadfast::client::SendAuthority;
use steadfast::{BoxError, ConnectionInfo, Deadline, RecvBody, StreamId, TimeoutHeader};
use steadfast_grpc::timeout;

use crate::answer;
use crate::body::ProxyBody;
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
        Box::pin(forward(table, request))
    }
}

async fn forward(
    table: Arc<Table>,
    request: Request<RecvBody>,
) -> Result<Response<ProxyBody>, BoxError> {
    let started = Instant::now();
    let grpc = is_grpc(request.headers());
    let authority = request.uri().authority().cloned();
    let Some(route) = router::find(
        &table.routes,
        authority.as_ref().map(|a| a.as_str()),
        request.uri().path(),
    ) else {
        return Ok(answer::no_route(
            grpc,
            authority.as_ref().map(|a| a.as_str()),
            request.uri().path(),
        ));
    };
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
                Err(_) => return Ok(answer::bad_timeout()),
            }
        }
    }
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
    let client_addr = parts
        .extensions
        .get::<ConnectionInfo>()
        .and_then(ConnectionInfo::remote_addr);
    let client_stream = parts.extensions.get::<StreamId>().copied();
    let cluster = route.cluster.name.clone();
    let route_name = route.name.clone();
    match route.cluster.client.send(upstream).await {
        Ok(response) => {
            let (head, body) = response.into_parts();
            tracing::debug!(
                client = ?client_addr,
                client_stream = ?client_stream,
                route = %route_name,
                cluster = %cluster,
                backend_stream = %body.stream_id(),
                status = %head.status,
                "forwarded"
            );
            let grpc_response = is_grpc(&head.headers);
            Ok(Response::from_parts(
                head,
                ProxyBody::forward(body, grpc_response, cluster),
            ))
        }
        Err(error) => {
            tracing::info!(
                client = ?client_addr,
                client_stream = ?client_stream,
                route = %route_name,
                cluster = %cluster,
                fate = ?error.fate(),
                %error,
                "call failed before a backend answered"
            );
            answer::failed(&error, grpc, &cluster).map_err(|reset| Box::new(reset) as BoxError)
        }
    }
}
