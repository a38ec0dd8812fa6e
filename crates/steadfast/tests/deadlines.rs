//! A request's `Deadline` holds for the whole exchange and is enforced by the
//! connection's driver: the stream is reset at the deadline whether or not anyone is
//! reading it, and the error carries the fate the stream had at that moment.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use steadfast::body::{self, BoxBody};
use steadfast::{
    service_fn, Client, Deadline, Fate, PoolConfig, RecvBody, Server, ServerConfig, ShutdownHandle,
};
use tokio::sync::{mpsc, Notify};

const LIMIT: Duration = Duration::from_secs(10);

/// A response body that yields one chunk, then never ends; it reports being dropped
/// (the server drops it when the client resets the stream).
struct Stalled {
    first: Option<Bytes>,
    dropped: mpsc::UnboundedSender<&'static str>,
}

impl Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.first.take() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None => Poll::Pending,
        }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        let _ = self.dropped.send("body");
    }
}

/// Reports the handler's future being dropped (cancelled) before it finished.
struct Cancelled(mpsc::UnboundedSender<&'static str>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        let _ = self.0.send("handler");
    }
}

struct Stalling {
    url: String,
    /// Requests that reached the application.
    arrived: Arc<AtomicUsize>,
    /// Notified as each request reaches the application.
    arrival: Arc<Notify>,
    /// "body" or "handler" each time the server side of a stream is torn down.
    dropped: mpsc::UnboundedReceiver<&'static str>,
    shutdown: ShutdownHandle,
}

/// A server whose `/body` answers a head and one chunk and then stalls, and whose
/// other paths never answer at all.
async fn stalling_server(config: ServerConfig) -> Stalling {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let arrived = Arc::new(AtomicUsize::new(0));
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let server = Server::new(config);
    let shutdown = server.shutdown_handle();
    let count = arrived.clone();
    let arrival = Arc::new(Notify::new());
    let notify = arrival.clone();
    tokio::spawn(server.serve(
        listener,
        service_fn(move |request: Request<RecvBody>| {
            count.fetch_add(1, Ordering::SeqCst);
            notify.notify_one();
            let dropped = dropped_tx.clone();
            async move {
                if request.uri().path() == "/body" {
                    let body = Stalled {
                        first: Some(Bytes::from_static(b"first")),
                        dropped,
                    };
                    return Ok::<_, Infallible>(Response::new(body::boxed(body)));
                }
                let _guard = Cancelled(dropped);
                std::future::pending::<()>().await;
                Ok(Response::new(body::empty()))
            }
        }),
    ));
    Stalling {
        url,
        arrived,
        arrival,
        dropped,
        shutdown,
    }
}

fn retries(client: &Client) -> u64 {
    let stats = client.stats();
    stats.retries_not_sent
        + stats.retries_refused_goaway
        + stats.retries_refused_stream
        + stats.retries_maybe_processed
}

fn get(url: &str, path: &str, deadline: Option<Duration>) -> Request<BoxBody> {
    let mut request = Request::get(format!("{url}{path}"))
        .body(body::empty())
        .unwrap();
    if let Some(d) = deadline {
        request
            .extensions_mut()
            .insert(Deadline(std::time::Instant::now() + d));
    }
    request
}

#[tokio::test]
async fn the_stream_is_reset_at_the_deadline_even_while_nobody_reads_the_body() {
    let mut server = stalling_server(ServerConfig::default()).await;
    let client = Client::new(PoolConfig::default());
    let response = tokio::time::timeout(
        LIMIT,
        client.send(get(&server.url, "/body", Some(Duration::from_millis(300)))),
    )
    .await
    .unwrap()
    .expect("the head arrives before the deadline");
    let started = std::time::Instant::now();
    // Nobody polls the body; the server still sees the stream reset.
    let what = tokio::time::timeout(LIMIT, server.dropped.recv())
        .await
        .expect("the client resets the stream at its deadline")
        .unwrap();
    assert_eq!(what, "body");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Reading now gets what arrived, then the deadline error with the stream's fate.
    let mut body = response.into_body();
    let id = body.stream_id();
    let mut data = Vec::new();
    let error = loop {
        match tokio::time::timeout(LIMIT, body.frame()).await.unwrap() {
            Some(Ok(frame)) => data.extend_from_slice(&frame.into_data().unwrap_or_default()),
            Some(Err(error)) => break error,
            None => panic!("the body cannot end normally"),
        }
    };
    assert!(error.is_deadline_exceeded(), "{error}");
    assert_eq!(error.fate(), Some(Fate::Processed), "{error}");
    assert_eq!(error.stream_id(), Some(id));
    assert!(data.is_empty() || data == b"first", "{data:?}");
    server.shutdown.abort();
}

#[tokio::test]
async fn a_deadline_before_the_response_head_resets_the_stream_and_may_have_been_processed() {
    let mut server = stalling_server(ServerConfig::default()).await;
    let client = Client::new(PoolConfig::default());
    let error = tokio::time::timeout(
        LIMIT,
        client.send(get(&server.url, "/never", Some(Duration::from_millis(200)))),
    )
    .await
    .unwrap()
    .expect_err("no head ever comes");
    assert!(error.is_deadline_exceeded(), "{error}");
    assert_eq!(error.fate(), Some(Fate::MaybeProcessed), "{error}");
    assert!(error.stream_id().is_some(), "{error}");
    assert!(!error.is_retry_safe());
    // The reset reached the server: the handler was cancelled.
    let what = tokio::time::timeout(LIMIT, server.dropped.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(what, "handler");
    assert_eq!(server.arrived.load(Ordering::SeqCst), 1);
    assert_eq!(retries(&client), 0);
    server.shutdown.abort();
}

#[tokio::test]
async fn a_request_that_waited_for_a_stream_slot_until_its_deadline_was_never_sent() {
    let mut config = ServerConfig::default();
    config.proto.max_concurrent_streams = 1;
    let server = stalling_server(config).await;
    let mut pool = PoolConfig::default();
    pool.max_connections = 1;
    let client = Client::new(pool);
    // The one slot is taken by a request that never ends.
    let first = {
        let client = client.clone();
        let request = get(&server.url, "/never", None);
        tokio::spawn(async move { client.send(request).await })
    };
    tokio::time::timeout(LIMIT, server.arrival.notified())
        .await
        .expect("the first request reaches the application");
    let error = tokio::time::timeout(
        LIMIT,
        client.send(get(
            &server.url,
            "/queued",
            Some(Duration::from_millis(200)),
        )),
    )
    .await
    .unwrap()
    .expect_err("no slot frees in time");
    assert!(error.is_deadline_exceeded(), "{error}");
    assert_eq!(error.fate(), Some(Fate::NotSent), "{error}");
    // Proven, and true: the server never saw it.
    assert_eq!(server.arrived.load(Ordering::SeqCst), 1);
    // The time is up: a deadline error is not retried, whatever its fate.
    assert_eq!(retries(&client), 0);
    first.abort();
    server.shutdown.abort();
}
