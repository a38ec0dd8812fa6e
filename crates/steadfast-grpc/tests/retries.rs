//! gRFC A6 on our Channel, against a Python grpcio server (`retries_grpcio.py`) that
//! fails chosen attempts with chosen statuses, sends pushback, and is slow on
//! chosen attempts; it logs every attempt with the `grpc-previous-rpc-attempts` it
//! carried and when it arrived. Delays are checked with bounded tolerances (real
//! time: the peer is a real process).

mod common;

use std::time::Duration;

use common::bounded;
use common::python::Python;
use steadfast_grpc::{Channel, ServiceConfig, StatusExt};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::EchoRequest;
use tonic::Code;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/retries_grpcio.py");

struct Peer {
    _python: Python,
    url: String,
}

fn peer() -> Peer {
    let python = Python::start(SCRIPT, &["server"]);
    let port = python
        .line(Duration::from_secs(60))
        .expect("the grpcio server prints its port");
    Peer {
        _python: python,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn client(peer: &Peer, config: &str) -> (Channel, EchoClient<Channel>) {
    let channel = Channel::builder(&peer.url)
        .expect("target")
        .service_config(ServiceConfig::from_json(config).expect("a valid service config"))
        .build();
    (channel.clone(), EchoClient::new(channel))
}

fn retry_config(attempts: u32, backoff: &str, codes: &str, extra: &str) -> String {
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "steadfast.test.Echo", "method": "Unary"}}],
            "retryPolicy": {{"maxAttempts": {attempts}, "initialBackoff": "{backoff}",
              "maxBackoff": "{backoff}", "backoffMultiplier": 1, "retryableStatusCodes": [{codes}]}}}}]
            {extra}}}"#
    )
}

fn plan(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..EchoRequest::default()
    }
}

/// One attempt, as the server logged it.
#[derive(Debug)]
struct Attempt {
    prev: String,
    at_ms: u64,
    end: String,
}

async fn attempts(client: &mut EchoClient<Channel>, key: &str) -> Vec<Attempt> {
    // The log is read on a channel without a service config for it: ServerStream.
    let mut stream = bounded(client.server_stream(plan(key)))
        .await
        .expect("the log")
        .into_inner();
    let mut out = Vec::new();
    while let Some(reply) = bounded(stream.message()).await.expect("log entry") {
        let fields: std::collections::HashMap<&str, &str> = reply
            .message
            .split(' ')
            .filter_map(|f| f.split_once('='))
            .collect();
        out.push(Attempt {
            prev: fields["prev"].to_owned(),
            at_ms: fields["at_ms"].parse().unwrap(),
            end: fields["end"].to_owned(),
        });
    }
    out
}

fn gaps(attempts: &[Attempt]) -> Vec<u64> {
    attempts
        .windows(2)
        .map(|w| w[1].at_ms - w[0].at_ms)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_statuses_are_retried_with_backoff_and_the_attempt_count() {
    let peer = peer();
    let (channel, mut client) = client(&peer, &retry_config(4, "0.2s", r#""UNAVAILABLE""#, ""));
    let response = bounded(client.unary(plan("three;fail=3;code=14")))
        .await
        .expect("the fourth attempt succeeds");
    assert_eq!(
        response
            .metadata()
            .get("grpc-previous-rpc-attempts")
            .map(|v| v.to_str().unwrap()),
        Some("3")
    );
    assert_eq!(response.into_inner().message, "ok after 4");
    let log = attempts(&mut client, "three").await;
    let prev: Vec<&str> = log.iter().map(|a| a.prev.as_str()).collect();
    assert_eq!(prev, ["-", "1", "2", "3"], "{log:?}");
    // random(0, 0.2 s) each, plus the time to send: bounded, not exact.
    for gap in gaps(&log) {
        assert!(gap <= 200 + 150, "{log:?}");
    }
    assert_eq!(channel.retry_stats().retries, 3);

    // maxAttempts bounds them: the last status comes back as the server sent it.
    let status = bounded(client.unary(plan("always;fail=9;code=14")))
        .await
        .expect_err("every attempt fails");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "attempt 4 of always fails");
    assert_eq!(attempts(&mut client, "always").await.len(), 4);

    // A status the policy does not list is not retried.
    let status = bounded(client.unary(plan("invalid;fail=9;code=3")))
        .await
        .expect_err("fails");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(attempts(&mut client, "invalid").await.len(), 1);
    // Answers of the server's application are not failures below gRPC.
    assert_eq!(status.fate(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushback_sets_the_delay_or_forbids_the_retry() {
    let peer = peer();
    let (channel, mut client) = client(&peer, &retry_config(3, "0.001s", r#""UNAVAILABLE""#, ""));
    bounded(client.unary(plan("wait;fail=1;pushback=400")))
        .await
        .expect("the retry after the pushback succeeds");
    let log = attempts(&mut client, "wait").await;
    assert_eq!(log.len(), 2, "{log:?}");
    let gap = gaps(&log)[0];
    assert!(
        (350..400 + 300).contains(&gap),
        "pushback 400 ms, gap {gap} ms: {log:?}"
    );

    for refusal in ["-1", "soon"] {
        let key = format!("stop{}", refusal.len());
        let status = bounded(client.unary(plan(&format!("{key};fail=9;pushback={refusal}"))))
            .await
            .expect_err("not retried");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            attempts(&mut client, &key).await.len(),
            1,
            "pushback {refusal}"
        );
    }
    assert_eq!(channel.retry_stats().pushback_refusals, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_stops_retries_when_too_many_fail() {
    let peer = peer();
    // 3 tokens; retries only while more than 1.5 are left.
    let config = retry_config(
        5,
        "0.001s",
        r#""UNAVAILABLE""#,
        r#", "retryThrottling": {"maxTokens": 3, "tokenRatio": 0.5}"#,
    );
    let (channel, mut client) = client(&peer, &config);
    bounded(client.unary(plan("t1;fail=9")))
        .await
        .expect_err("fails");
    // 3 → 2 (retry allowed) → 1 (not above 1.5: no more).
    assert_eq!(attempts(&mut client, "t1").await.len(), 2);
    bounded(client.unary(plan("t2;fail=9")))
        .await
        .expect_err("fails");
    assert_eq!(attempts(&mut client, "t2").await.len(), 1);
    assert_eq!(channel.retry_stats().throttled, 2);
    // Successes give tokens back (0.5 each): 0 → 3 after six; then a failure leaves
    // 2, above half, and retries resume.
    for i in 0..6 {
        bounded(client.unary(plan(&format!("ok{i}"))))
            .await
            .expect("succeeds");
    }
    bounded(client.unary(plan("t3;fail=1")))
        .await
        .expect("retried again");
    assert_eq!(attempts(&mut client, "t3").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_covers_every_attempt() {
    let peer = peer();
    let (channel, mut client) = client(&peer, &retry_config(5, "2s", r#""UNAVAILABLE""#, ""));
    let mut request = tonic::Request::new(plan("late;fail=9"));
    request.set_timeout(Duration::from_millis(300));
    // With backoff bounds of 2 s, most draws land beyond the deadline: the call
    // ends when the next attempt could not start in time, or at the deadline.
    let started = std::time::Instant::now();
    let status = bounded(client.unary(request)).await.expect_err("fails");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status:?}"
    );
    let stats = channel.retry_stats();
    let log = attempts(&mut client, "late").await;
    assert_eq!(log.len() as u64, 1 + stats.retries, "{log:?} {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedging_sends_copies_and_cancels_the_losers() {
    let peer = peer();
    let config = r#"{"methodConfig": [{"name": [{"service": "steadfast.test.Echo", "method": "Unary"}],
        "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.2s",
          "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let (channel, mut client) = client(&peer, config);
    // The first copy is slow (2 s); the second, 0.2 s later, answers at once.
    let started = std::time::Instant::now();
    let reply = bounded(client.unary(plan("race;slow=1")))
        .await
        .expect("the second copy wins");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(reply.get_ref().message, "ok after 2");
    // The slow copy is cancelled (RST_STREAM CANCEL reaches grpcio's handler).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = attempts(&mut client, "race").await;
        if log[0].end != "running" || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].end, "cancelled", "{log:?}");
    assert_eq!(log[1].prev, "1");
    let gap = gaps(&log)[0];
    assert!(
        // Arrival times on the server: each copy's own trip adds jitter either way.
        (150..200 + 300).contains(&gap),
        "hedging delay 200 ms, gap {gap}: {log:?}"
    );
    assert_eq!(channel.retry_stats().hedges, 1);

    // A non-fatal status sends the next copy at once; a fatal one ends the call.
    let started = std::time::Instant::now();
    bounded(client.unary(plan("quick;fail=2;code=14")))
        .await
        .expect("the third copy succeeds");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(attempts(&mut client, "quick").await.len(), 3);
    let status = bounded(client.unary(plan("fatal;fail=9;code=9")))
        .await
        .expect_err("fatal");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(attempts(&mut client, "fatal").await.len(), 1);
}

#[tokio::test]
async fn transparent_retries_run_inside_an_attempt_and_never_count_as_one() {
    // One call slot on the server, taken by a call whose handler is stuck forwarding
    // to a peer that never answers (we hold its listener and await its accept).
    let mut config = steadfast::ServerConfig::default();
    config.max_in_flight_per_connection = Some(1);
    let server = common::serve_echo_with(config).await;
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forward_to = format!("http://{}", blackhole.local_addr().unwrap());
    let service_config = retry_config(2, "0.001s", r#""UNAVAILABLE""#, "");
    let channel = Channel::builder(&server.url())
        .expect("target")
        .service_config(ServiceConfig::from_json(&service_config).unwrap())
        .build();
    let mut stuck = EchoClient::new(channel.clone());
    let held = tokio::spawn(async move {
        stuck
            .unary(EchoRequest {
                forward_to,
                ..plan("stuck")
            })
            .await
    });
    let (_conn, _) = bounded(blackhole.accept())
        .await
        .expect("the handler forwards");

    let status = bounded(EchoClient::new(channel.clone()).unary(plan("shed")))
        .await
        .expect_err("the slot never frees");
    assert_eq!(status.code(), Code::Unavailable);
    // Refused: never processed, whatever the attempts.
    assert_eq!(status.fate(), Some(steadfast::Fate::Refused));
    // Two attempts (maxAttempts 2) — each refused, then resent once transparently
    // (RetryPolicy::refused_retries 1): four requests, two attempts, one A6 retry.
    assert_eq!(channel.retry_stats().retries, 1);
    assert_eq!(channel.client().stats().retries_refused_stream, 2);
    held.abort();
}

#[tokio::test]
async fn calls_fail_fast_unless_they_wait_for_ready() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut request = tonic::Request::new(plan("x"));
    request.set_timeout(Duration::from_secs(20));
    let started = std::time::Instant::now();
    let status = bounded(EchoClient::new(Channel::from_target(&url).unwrap()).unary(request))
        .await
        .expect_err("nothing listens");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.fate(), Some(steadfast::Fate::NotSent));
    assert!(started.elapsed() < Duration::from_secs(2), "failed fast");

    // waitForReady: the call waits for the server to come up, within its deadline.
    // The resolver tells when it is asked again (the first connection failed) and
    // holds that answer until the server is up.
    let resolver = Gated::new(port);
    let config = r#"{"methodConfig": [{"name": [{"service": "steadfast.test.Echo"}], "waitForReady": true}]}"#;
    let channel = Channel::builder(&url)
        .unwrap()
        .resolver(resolver.clone())
        .service_config(ServiceConfig::from_json(config).unwrap())
        .build();
    let mut request = tonic::Request::new(plan("x"));
    request.set_timeout(Duration::from_secs(20));
    let call = tokio::spawn(async move { EchoClient::new(channel).unary(request).await });
    bounded(resolver.asked_again.notified()).await;
    let (service, _events) = common::EchoService::new();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = steadfast_grpc::Server::builder().add_service(
        steadfast_grpc_example::echo::echo_server::EchoServer::new(service),
    );
    tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
    resolver.gate.add_permits(1000);
    let reply = bounded(call)
        .await
        .expect("joined")
        .expect("served once it is up");
    assert_eq!(reply.into_inner().message, "x");
}

/// Resolves to 127.0.0.1:port; from its second answer on, first says it was asked
/// (`asked_again`) and waits for `gate`.
#[derive(Clone)]
struct Gated {
    port: u16,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    asked_again: std::sync::Arc<tokio::sync::Notify>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Gated {
    fn new(port: u16) -> Self {
        Self {
            port,
            calls: Default::default(),
            asked_again: Default::default(),
            gate: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl steadfast::client::Resolve for Gated {
    fn resolve(
        &self,
        _: &str,
        _: u16,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>> + Send>,
    > {
        let this = self.clone();
        Box::pin(async move {
            if this.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1 {
                this.asked_again.notify_one();
                let _ = this.gate.acquire().await.map(|p| p.forget());
            }
            Ok(vec![([127, 0, 0, 1], this.port).into()])
        })
    }
}
