//! The deadline layer: a call's deadline, from its arrival, is the earliest of its
//! `grpc-timeout`, the route's `timeout`, and the method's `timeout` in the route's
//! service config (gRPC's rule: the deadline of calls that set none, and the longest
//! of those that do). It goes down as a `steadfast::Deadline`, which the client
//! enforces on the backend stream, with a `TimeoutHeader` so that every attempt
//! tells the backend the time *left*.

use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderName, Request, Response};
use steadfast::{BoxError, Deadline, RecvBody, TimeoutHeader};
use steadfast_grpc::timeout;
use tower_layer::Layer;
use tower_service::Service;

use crate::answer;
use crate::body::ProxyBody;
use crate::forward::{is_grpc, ProxyFuture};
use crate::router::Routed;

const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Makes [`Deadlines`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadlines<S>;

    fn layer(&self, inner: S) -> Deadlines<S> {
        Deadlines { inner }
    }
}

/// Sets the call's deadline; answers a malformed `grpc-timeout` with INTERNAL (as
/// grpc-go does).
#[derive(Clone, Debug)]
pub(crate) struct Deadlines<S> {
    inner: S,
}

impl<S> Service<Request<RecvBody>> for Deadlines<S>
where
    S: Service<
        Request<RecvBody>,
        Response = Response<ProxyBody>,
        Error = BoxError,
        Future = ProxyFuture,
    >,
{
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = ProxyFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<RecvBody>) -> ProxyFuture {
        let arrived = Instant::now();
        let grpc = is_grpc(request.headers());
        let Some(Routed(route)) = request.extensions().get::<Routed>().cloned() else {
            return self.inner.call(request);
        };
        let mut deadline = route.timeout.map(|t| arrived + t);
        let mut earlier = |at: Instant| deadline = Some(deadline.map_or(at, |d| d.min(at)));
        if grpc {
            if let Some(value) = request.headers().get(GRPC_TIMEOUT) {
                match timeout::parse(value.as_bytes()) {
                    Ok(t) => earlier(arrived + t),
                    Err(_) => {
                        let answer = answer::bad_timeout();
                        return Box::pin(async move { Ok(answer) });
                    }
                }
            }
            if let Some(t) = route
                .method_config(request.uri().path())
                .and_then(|(m, _)| m.timeout)
            {
                earlier(arrived + t);
            }
        }
        if let Some(d) = deadline {
            request.extensions_mut().insert(Deadline(d));
            if grpc {
                request.extensions_mut().insert(TimeoutHeader {
                    name: GRPC_TIMEOUT,
                    format: timeout::header_value,
                });
            }
        }
        self.inner.call(request)
    }
}
