//! The proxy in process, between steadfast-grpc clients and backends on 127.0.0.1:
//! statuses and streams pass through, Trailers-Only stays Trailers-Only, calls are
//! balanced per call, refused calls go to another backend, deadlines are forwarded
//! with the time spent taken off and enforced, cancellation reaches the backend, and
//! calls that no backend could take say so.

#[path = "../../steadfast-grpc/tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, echo, echo_client, serve_echo, serve_echo_with, Event, TestServer};
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use steadfast::{ErrorCode, Fate, ServerConfig};
use steadfast_grpc::StatusExt;
use steadfast_grpc_example::echo::EchoRequest;
use steadfast_proxy::{Config, Proxy, Running};
use tonic::Code;

/// A proxy on 127.0.0.1 in front of `backends`, with `edit` applied to the
/// configuration the flags would give.
async fn proxy_with(
    backends: &[SocketAddr],
    edit: impl FnOnce(&mut Config),
) -> (Arc<Proxy>, Running) {
    let mut config = Config::simple("127.0.0.1:0".parse().unwrap(), backends);
    edit(&mut config);
    let proxy = Arc::new(Proxy::new(config).expect("valid configuration"));
    let running = proxy.bind().await.expect("bind");
    (proxy, running)
}

async fn proxy(backends: &[SocketAddr]) -> (Arc<Proxy>, Running) {
    proxy_with(backends, |_| {}).await
}

fn url(running: &Running) -> String {
    format!("http://{}", running.local_addrs()[0])
}

#[tokio::test]
async fn unary_streaming_and_statuses_pass_through_unchanged() {
    let backend = serve_echo().await;
    let (_proxy, running) = proxy(&[backend.addr]).await;
    let mut client = echo_client(&url(&running));

    let reply = bounded(client.unary(echo("hello"))).await.expect("unary");
    assert_eq!(reply.get_ref().message, "hello");

    let stream = EchoRequest {
        count: 3,
        ..echo("s")
    };
    let mut replies = bounded(client.server_stream(stream))
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = bounded(replies.message()).await.expect("message") {
        got.push(r.message);
    }
    assert_eq!(got, ["s 0", "s 1", "s 2"]);

    // The backend's status and message, as it sent them (percent-encoding and all).
    let failing = EchoRequest {
        fail_code: Code::NotFound as i32,
        ..echo("no such user: ünïcode ✓")
    };
    let status = bounded(client.unary(failing)).await.expect_err("NOT_FOUND");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no such user: ünïcode ✓");
}

#[tokio::test]
async fn trailers_only_stays_trailers_only_and_trailers_arrive() {
    let backend = serve_echo().await;
    let (_proxy, running) = proxy(&[backend.addr]).await;
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let grpc = |path: &str, message: Bytes| {
        Request::post(format!("{}{path}", url(&running)))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(message))
            .unwrap()
    };
    // EchoRequest { message: "x", fail_code: 5 } framed by hand: the backend answers
    // NOT_FOUND as Trailers-Only, which must reach us as a response head carrying
    // grpc-status and ending the stream.
    let message = [0x0a, 0x01, b'x', 0x20, 0x05];
    let mut framed = vec![0, 0, 0, 0, message.len() as u8];
    framed.extend_from_slice(&message);
    let response = bounded(client.send(grpc("/steadfast.test.Echo/Unary", Bytes::from(framed))))
        .await
        .expect("response");
    assert_eq!(response.headers()["grpc-status"], "5");
    assert_eq!(response.headers()["grpc-message"], "x");
    assert!(
        response.body().is_end_stream(),
        "Trailers-Only: HEADERS with END_STREAM"
    );

    // A successful call: data, then trailers with grpc-status 0.
    let message = [0x0a, 0x02, b'o', b'k'];
    let mut framed = vec![0, 0, 0, 0, message.len() as u8];
    framed.extend_from_slice(&message);
    let response = bounded(client.send(grpc("/steadfast.test.Echo/Unary", Bytes::from(framed))))
        .await
        .expect("response");
    assert!(response.headers().get("grpc-status").is_none());
    let collected = bounded(response.into_body().collect()).await.expect("body");
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert!(collected.to_bytes().windows(2).any(|w| w == b"ok"));

    // No route: UNIMPLEMENTED from the proxy itself, also Trailers-Only.
    let mut config = Config::simple("127.0.0.1:0".parse().unwrap(), &[backend.addr]);
    config.routes[0].prefix = Some("/steadfast.test.Echo/".into());
    let narrow = Arc::new(Proxy::new(config).unwrap());
    let narrow = narrow.bind().await.unwrap();
    let request = Request::post(format!("{}/other.Service/Call", url(&narrow)))
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = bounded(client.send(request)).await.expect("response");
    assert_eq!(response.headers()["grpc-status"], "12");
    assert!(response.body().is_end_stream());
}

/// A plain HTTP/2 backend that answers its own name.
async fn named_backend(
    name: &'static str,
    config: ServerConfig,
) -> (SocketAddr, steadfast::ShutdownHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = steadfast::Server::new(config);
    let handle = server.shutdown_handle();
    let service = steadfast::service_fn(move |request: Request<steadfast::RecvBody>| async move {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(name)));
        response
            .headers_mut()
            .insert("x-authority", authority.parse().unwrap());
        Ok::<_, std::convert::Infallible>(response)
    });
    tokio::spawn(server.serve(listener, service));
    (addr, handle)
}

async fn get(client: &steadfast::Client, base: &str) -> Result<(String, String), steadfast::Error> {
    let request = Request::get(format!("{base}/who"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = bounded(client.send(request)).await?;
    let authority = response.headers()["x-authority"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = bounded(response.into_body().collect()).await?.to_bytes();
    Ok((String::from_utf8_lossy(&body).into_owned(), authority))
}

#[tokio::test]
async fn one_client_connection_is_balanced_per_call_over_every_backend() {
    let (a, _ha) = named_backend("a", ServerConfig::default()).await;
    let (b, _hb) = named_backend("b", ServerConfig::default()).await;
    let (c, _hc) = named_backend("c", ServerConfig::default()).await;
    for balance in ["round_robin", "least_request"] {
        let (proxy, running) = proxy_with(&[a, b, c], |config| {
            config.clusters[0].balance = Some(balance.into());
            // Plain HTTP/2 backends have no health service.
            config.clusters[0].health_check = None;
        })
        .await;
        // One connection from the client: PoolConfig's default would open one anyway.
        let mut pool = steadfast::PoolConfig::default();
        pool.max_connections = 1;
        let client = steadfast::Client::new(pool);
        let base = url(&running);
        // The backends become READY one by one: warm up until all three answered.
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..60 {
            let (who, authority) = get(&client, &base).await.expect("forwarded");
            // The client's :authority reaches the backend, not the cluster's name.
            assert_eq!(authority, running.local_addrs()[0].to_string());
            *seen.entry(who).or_default() += 1;
        }
        assert_eq!(
            client.stats().connects,
            1,
            "{balance}: one client connection"
        );
        assert_eq!(
            seen.len(),
            3,
            "{balance}: every backend got calls: {seen:?}"
        );
        if balance == "round_robin" {
            // After warm-up, strictly in turn: every backend got a share.
            assert!(seen.values().all(|&n| n >= 15), "{seen:?}");
        }
        assert_eq!(proxy.backends("default").len(), 3);
        running.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_refusing_backend_costs_nothing_and_all_refusing_is_refused_in_turn() {
    // `a` sheds every call with REFUSED_STREAM before its service sees it.
    let mut shedding = ServerConfig::default();
    shedding.max_in_flight = Some(0);
    let (a, _ha) = named_backend("a", shedding.clone()).await;
    let (b, _hb) = named_backend("b", ServerConfig::default()).await;
    let (proxy, running) = proxy_with(&[a, b], |config| {
        config.clusters[0].health_check = None;
    })
    .await;
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let base = url(&running);
    for _ in 0..40 {
        let (who, _) = get(&client, &base)
            .await
            .expect("never fails while b has room");
        assert_eq!(who, "b");
    }
    running.shutdown().await.unwrap();
    drop(proxy);

    // Every backend refuses: the proxy refuses too, with REFUSED_STREAM, so the call
    // is known unprocessed at the client.
    let (c, _hc) = named_backend("c", shedding).await;
    let (_proxy, running) = proxy_with(&[a, c], |config| {
        config.clusters[0].health_check = None;
        config.limits.refused_retries = 2;
    })
    .await;
    let mut no_retry = steadfast::PoolConfig::default();
    no_retry.retry = steadfast::RetryPolicy::disabled();
    let client = steadfast::Client::new(no_retry);
    let error = get(&client, &url(&running)).await.expect_err("refused");
    assert_eq!(error.fate(), Some(Fate::Refused), "{error}");
    assert_eq!(error.code(), Some(ErrorCode::REFUSED_STREAM), "{error}");
    assert!(error.is_retry_safe());
}

/// A call through `running` fails UNAVAILABLE, saying it was never sent and why
/// (`reasons`, each a part of the message).
async fn unavailable_never_sent(running: &Running, reasons: &[&str]) {
    let mut client = echo_client(&url(running));
    let status = bounded(client.unary(echo("x")))
        .await
        .expect_err("unavailable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    for words in ["never sent"].iter().chain(reasons) {
        assert!(
            status.message().contains(words),
            "{words:?}: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn no_reachable_backend_is_unavailable_and_never_sent() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_proxy, running) = proxy_with(&[closed], |config| {
        config.clusters[0].connect_timeout = Some("1s".into());
        // Nothing will become ready: fail after a short wait.
        config.limits.wait_for_backend = "200ms".into();
    })
    .await;
    // Names the backend.
    unavailable_never_sent(&running, &["127.0.0.1"]).await;
}

#[tokio::test]
async fn an_http1_backend_is_unavailable_with_that_reason() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        // Answers whatever arrives as HTTP/1.1 would.
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let (_proxy, running) = proxy_with(&[addr], |config| {
        config.clusters[0].health_check = None;
        // Nothing will become ready: fail after a short wait.
        config.limits.wait_for_backend = "200ms".into();
    })
    .await;
    unavailable_never_sent(&running, &["HTTP/1"]).await;
}

#[tokio::test]
async fn deadlines_are_forwarded_less_the_time_spent_and_enforced() {
    let mut backend = serve_echo().await;
    let (_proxy, running) = proxy(&[backend.addr]).await;
    let mut client = echo_client(&url(&running));
    let mut request = tonic::Request::new(echo("in time"));
    request.set_timeout(Duration::from_secs(5));
    let reply = bounded(client.unary(request))
        .await
        .expect("unary")
        .into_inner();
    // The backend saw a deadline no later than the client's, never none.
    assert!((1..=5_000).contains(&reply.deadline_ms), "{reply:?}");
    assert!(!reply.grpc_timeout.is_empty());
    let _ = backend.take_finished();

    // A call that outlives its deadline: DEADLINE_EXCEEDED, the backend's handler
    // cancelled (the proxy reset its stream).
    let slow = EchoRequest {
        sleep_ms: 5_000,
        ..echo("slow")
    };
    let mut request = tonic::Request::new(slow);
    request.set_timeout(Duration::from_millis(300));
    let status = bounded(client.unary(request)).await.expect_err("deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(backend.next_event().await, Event::Cancelled("slow".into()));

    // The route's own limit, without a grpc-timeout from the client.
    let (_proxy, running) = proxy_with(&[backend.addr], |config| {
        config.routes[0].timeout = Some("300ms".into());
    })
    .await;
    let mut client = echo_client(&url(&running));
    let slow = EchoRequest {
        sleep_ms: 5_000,
        ..echo("slow route")
    };
    let status = bounded(client.unary(slow))
        .await
        .expect_err("route timeout");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        backend.next_event().await,
        Event::Cancelled("slow route".into())
    );
}

#[tokio::test]
async fn a_client_cancelling_cancels_the_backend_stream() {
    let mut backend = serve_echo().await;
    let (_proxy, running) = proxy(&[backend.addr]).await;
    let mut client = echo_client(&url(&running));
    let slow = EchoRequest {
        sleep_ms: 10_000,
        ..echo("cancelled")
    };
    // Dropped after a moment: RST_STREAM(CANCEL) to the proxy, which resets the
    // backend's stream in turn.
    let call = client.unary(slow);
    let _ = tokio::time::timeout(Duration::from_millis(300), call).await;
    assert_eq!(
        backend.next_event().await,
        Event::Cancelled("cancelled".into())
    );
}

#[tokio::test]
async fn a_graceful_backend_restart_fails_no_call() {
    let mut old = serve_echo().await;
    let new: TestServer = serve_echo_with(ServerConfig::default()).await;
    let (_proxy, running) = proxy(&[old.addr, new.addr]).await;
    let base = url(&running);
    let calls = (0..4).map(|i| {
        let base = base.clone();
        tokio::spawn(async move {
            let mut client = echo_client(&base);
            let mut failures = Vec::new();
            for n in 0..50 {
                let request = EchoRequest {
                    sleep_ms: 5,
                    ..echo(&format!("{i}/{n}"))
                };
                if let Err(status) = client.unary(request).await {
                    failures.push(format!(
                        "{:?} {} {:?}",
                        status.code(),
                        status.message(),
                        status.fate()
                    ));
                }
            }
            failures
        })
    });
    let calls: Vec<_> = calls.collect();
    // Mid-way, the old backend drains (two-phase GOAWAY) and stops.
    tokio::time::sleep(Duration::from_millis(100)).await;
    old.shutdown_gracefully().await;
    for call in calls {
        let failures = bounded(call).await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }
}

/// A backend whose gRPC responses start, send one message, then reset the stream
/// with `code`.
async fn resetting_backend(code: ErrorCode) -> SocketAddr {
    use http_body_util::StreamBody;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = steadfast::service_fn(move |_request: Request<steadfast::RecvBody>| async move {
        let frames = futures_stream(code);
        let mut response = Response::new(StreamBody::new(frames));
        response
            .headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        Ok::<_, std::convert::Infallible>(response)
    });
    tokio::spawn(steadfast::Server::new(ServerConfig::default()).serve(listener, service));
    addr
}

fn futures_stream(
    code: ErrorCode,
) -> impl tokio_stream::Stream<Item = Result<http_body::Frame<Bytes>, steadfast::BoxError>> + Send {
    use tokio_stream::StreamExt;
    // An EchoReply { message: "one" }, then the reset. A reset discards what the
    // stream still has queued, so it comes a moment later, once the message left.
    let message = [0x0a, 0x03, b'o', b'n', b'e'];
    let mut framed = vec![0, 0, 0, 0, message.len() as u8];
    framed.extend_from_slice(&message);
    let frames = vec![
        Ok(http_body::Frame::data(Bytes::from(framed))),
        Err(Box::new(steadfast::ResetStream(code)) as steadfast::BoxError),
    ];
    tokio_stream::iter(frames.into_iter().enumerate()).then(|(i, frame)| async move {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        frame
    })
}

#[tokio::test]
async fn a_backend_reset_reaches_the_client_as_the_mapped_status() {
    for (code, expected) in [
        (ErrorCode::CANCEL, Code::Cancelled),
        (ErrorCode::REFUSED_STREAM, Code::Unavailable),
        (ErrorCode::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
        (ErrorCode::INTERNAL_ERROR, Code::Internal),
    ] {
        let backend = resetting_backend(code).await;
        let (_proxy, running) = proxy_with(&[backend], |config| {
            config.clusters[0].health_check = None;
        })
        .await;
        let mut client = echo_client(&url(&running));
        let request = EchoRequest {
            count: 2,
            ..echo("s")
        };
        let mut stream = bounded(client.server_stream(request))
            .await
            .expect("the head")
            .into_inner();
        let first = bounded(stream.message()).await.expect("one message");
        assert_eq!(first.map(|r| r.message).as_deref(), Some("one"));
        let status = bounded(stream.message()).await.expect_err("the reset");
        assert_eq!(status.code(), expected, "{code}: {status:?}");
        assert!(
            status.message().contains("it processed the call"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn a_tls_backend_behind_an_h2c_cluster_is_unavailable_with_that_reason() {
    let cert = steadfast_testkit::self_signed(&["localhost"]);
    let dir = std::env::temp_dir().join(format!("steadfast-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    let tls = steadfast::tls::server_config_from_pem(&dir.join("cert.pem"), &dir.join("key.pem"));
    let _ = std::fs::remove_dir_all(&dir);
    let tls = tls.unwrap();
    let mut config = ServerConfig::default();
    config.tls = Some(tls);
    let (addr, _handle) = named_backend("tls", config).await;
    let (_proxy, running) = proxy_with(&[addr], |config| {
        config.clusters[0].health_check = None;
        config.clusters[0].connect_timeout = Some("2s".into());
        // Nothing will become ready: fail after a short wait.
        config.limits.wait_for_backend = "200ms".into();
    })
    .await;
    unavailable_never_sent(&running, &["TLS"]).await;
}

/// A backend that answers every gRPC call UNAVAILABLE (Trailers-Only).
async fn broken_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = steadfast::service_fn(|_request: Request<steadfast::RecvBody>| async move {
        let mut response = Response::new(http_body_util::Empty::<Bytes>::new());
        let headers = response.headers_mut();
        headers.insert("content-type", "application/grpc".parse().unwrap());
        headers.insert("grpc-status", "14".parse().unwrap());
        headers.insert("grpc-message", "broken".parse().unwrap());
        Ok::<_, std::convert::Infallible>(response)
    });
    tokio::spawn(steadfast::Server::new(ServerConfig::default()).serve(listener, service));
    addr
}

#[tokio::test]
async fn a_backend_failing_every_call_is_ejected() {
    let broken = broken_backend().await;
    let a = serve_echo().await;
    let b = serve_echo().await;
    let (proxy, running) = proxy_with(&[broken, a.addr, b.addr], |config| {
        config.clusters[0].health_check = None;
        let mut outlier = steadfast_proxy::config::OutlierConfig::default();
        outlier.consecutive_failures = 3;
        config.clusters[0].outlier = Some(outlier);
    })
    .await;
    let ready = proxy.wait_for_backends("default", |subs| {
        subs.len() == 3
            && subs
                .iter()
                .all(|s| s.state == steadfast::client::ConnectivityState::Ready)
    });
    bounded(ready).await.unwrap();
    let mut client = echo_client(&url(&running));
    let mut failures = 0;
    for i in 0..60 {
        if let Err(status) = bounded(client.unary(echo(&format!("{i}")))).await {
            assert_eq!(status.message(), "broken");
            failures += 1;
        }
    }
    // Round robin sends every third call to it until its third failure in a row.
    assert_eq!(failures, 3, "ejected after 3 failures in a row");
    let broken_info = proxy
        .backends("default")
        .into_iter()
        .find(|s| s.address == broken)
        .unwrap();
    assert!(broken_info.ejected, "{broken_info:?}");
    let text = proxy.metrics_exposition();
    let line =
        format!("steadfast_proxy_ejections_total{{cluster=\"default\",backend=\"{broken}\"}} 1");
    assert!(text.lines().any(|l| l == line), "{text}");
}

#[tokio::test]
async fn a_backend_whose_health_check_says_not_serving_gets_no_calls() {
    use steadfast_grpc_example::echo::echo_server::EchoServer;
    let mut backends = Vec::new();
    let mut reporters = Vec::new();
    for _ in 0..2 {
        let (service, events) = common::EchoService::new();
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let server = steadfast_grpc::Server::builder()
            .add_service(EchoServer::new(service))
            .add_service(health_service);
        backends.push(common::serve(server, events).await);
        reporters.push(health);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let (proxy, running) = proxy(&addrs).await;
    let ready = |n: usize| {
        let proxy = proxy.clone();
        async move {
            proxy
                .wait_for_backends("default", |subs| {
                    subs.iter()
                        .filter(|s| s.state == steadfast::client::ConnectivityState::Ready)
                        .count()
                        == n
                })
                .await
        }
    };
    bounded(ready(2)).await.unwrap();
    // The second backend says NOT_SERVING: the proxy's Watch stream hears it.
    reporters[1]
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    bounded(ready(1)).await.unwrap();
    let _ = backends[0].take_finished();
    let _ = backends[1].take_finished();
    let mut client = echo_client(&url(&running));
    for i in 0..20 {
        bounded(client.unary(echo(&format!("{i}"))))
            .await
            .expect("served");
    }
    assert_eq!(backends[0].take_finished(), 20);
    assert_eq!(backends[1].take_finished(), 0);
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_its_backend_stream_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The backend streams 32 MiB in 16 KiB chunks, counting what its body handed to
    // the connection.
    let produced = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = produced.clone();
    let service = steadfast::service_fn(move |_request: Request<steadfast::RecvBody>| {
        let counter = counter.clone();
        async move {
            use tokio_stream::StreamExt;
            let chunks = tokio_stream::iter(0..2048).map(move |_| {
                counter.fetch_add(16 << 10, Ordering::Relaxed);
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(vec![
                    7u8;
                    16 << 10
                ])))
            });
            Ok::<_, std::convert::Infallible>(Response::new(http_body_util::StreamBody::new(
                chunks,
            )))
        }
    });
    tokio::spawn(steadfast::Server::new(ServerConfig::default()).serve(listener, service));
    let (_proxy, running) = proxy_with(&[addr], |config| {
        config.clusters[0].health_check = None;
    })
    .await;
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let request = Request::get(format!("{}/big", url(&running)))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = bounded(client.send(request)).await.expect("head");
    // Nothing is read: the backend must stall once the windows and the proxy's
    // per-stream buffer are full. Wait until it stops producing.
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = produced.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    println!("the backend pushed {} KiB while nobody read", last >> 10);
    // Two hops of windows (1 MiB stream, 2 MiB connection each) and the send
    // buffers in between: far below the 32 MiB the backend would push.
    assert!(
        last <= 8 << 20,
        "the backend pushed {} KiB with nobody reading",
        last >> 10
    );
    // Reading lets all of it through, intact.
    let body = bounded(response.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body.len(), 32 << 20);
    assert!(body.iter().all(|&b| b == 7));
}

#[tokio::test]
async fn a_dns_cluster_resolves_its_name() {
    let backend = serve_echo().await;
    let (_proxy, running) = proxy_with(&[backend.addr], |config| {
        // `localhost` resolves to 127.0.0.1 (and perhaps ::1, where nothing
        // listens: that subchannel fails and round robin uses the other).
        config.clusters[0].backends.clear();
        config.clusters[0].dns = Some(format!("localhost:{}", backend.addr.port()));
    })
    .await;
    let mut client = echo_client(&url(&running));
    for i in 0..5 {
        let reply = bounded(client.unary(echo(&format!("dns {i}"))))
            .await
            .expect("served");
        assert_eq!(reply.get_ref().message, format!("dns {i}"));
    }
}

#[tokio::test]
async fn a_routes_a6_retry_policy_retries_retryable_statuses_elsewhere() {
    let broken = broken_backend().await;
    let good = serve_echo().await;
    let policy = r#"{"methodConfig": [{"name": [{"service": "steadfast.test.Echo"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    for with_policy in [false, true] {
        let (proxy, running) = proxy_with(&[broken, good.addr], |config| {
            config.clusters[0].health_check = None;
            let mut outlier = steadfast_proxy::config::OutlierConfig::default();
            outlier.consecutive_failures = 0;
            config.clusters[0].outlier = Some(outlier);
            if with_policy {
                config.routes[0].service_config = Some(policy.to_owned());
            }
        })
        .await;
        let ready = proxy.wait_for_backends("default", |subs| {
            subs.len() == 2
                && subs
                    .iter()
                    .all(|s| s.state == steadfast::client::ConnectivityState::Ready)
        });
        bounded(ready).await.unwrap();
        let mut client = echo_client(&url(&running));
        let mut failed = 0;
        for i in 0..20 {
            match bounded(client.unary(echo(&format!("{i}")))).await {
                Ok(reply) => assert_eq!(reply.get_ref().message, format!("{i}")),
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable);
                    assert_eq!(status.message(), "broken");
                    failed += 1;
                }
            }
        }
        if with_policy {
            assert_eq!(failed, 0, "every UNAVAILABLE retried on the other backend");
        } else {
            // Round robin: every other call lands on the broken backend.
            assert!(
                (8..=12).contains(&failed),
                "{failed} failed without a policy"
            );
        }
        running.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_dns_cluster_follows_its_name_to_new_addresses() {
    // A name that resolves to `old`, then to `new` once `old` is gone (a Kubernetes
    // headless Service across a rollout).
    let mut old = serve_echo().await;
    let mut new = serve_echo().await;
    let resolver = steadfast::client::StaticResolver::new(vec![old.addr]);
    let addresses = resolver.0.clone();
    let mut config = Config::simple("127.0.0.1:0".parse().unwrap(), &[]);
    config.clusters[0].backends.clear();
    config.clusters[0].dns = Some("echo.default.svc:50051".into());
    config.clusters[0].health_check = None;
    let proxy = Arc::new(Proxy::with_resolver(config, resolver).expect("valid"));
    let running = proxy.bind().await.unwrap();
    let mut client = echo_client(&url(&running));
    for i in 0..5 {
        bounded(client.unary(echo(&format!("{i}"))))
            .await
            .expect("served by old");
    }
    assert_eq!(old.take_finished(), 5);
    // The name moves; the old backend drains and goes. Its GOAWAY makes the
    // cluster resolve again, and calls follow the name without failing.
    *addresses.lock().unwrap() = vec![new.addr];
    old.shutdown_gracefully().await;
    for i in 0..20 {
        bounded(client.unary(echo(&format!("after {i}"))))
            .await
            .expect("never fails");
    }
    assert_eq!(new.take_finished(), 20);
    let backends: Vec<SocketAddr> = proxy
        .backends("default")
        .iter()
        .map(|b| b.address)
        .collect();
    assert_eq!(backends, [new.addr]);
}

#[tokio::test]
async fn a_call_a_backend_dropped_before_answering_names_that_backend() {
    let backend = serve_echo().await;
    let addr = backend.addr;
    let (proxy, running) = proxy(&[addr]).await;
    let mut client = echo_client(&url(&running));
    bounded(client.unary(echo("warm"))).await.expect("served");
    let slow = EchoRequest {
        sleep_ms: 10_000,
        ..echo("in flight")
    };
    let call = tokio::spawn(async move { client.unary(slow).await });
    // The call reaches the backend's handler, then the backend dies with it.
    let mut backend = backend;
    assert_eq!(
        backend.next_event().await,
        Event::Finished("warm".into()),
        "the warm-up finished first"
    );
    // No event says the request was written to the backend: a margin for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(backend);
    let status = bounded(call)
        .await
        .unwrap()
        .expect_err("the backend went away");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("may have processed"),
        "{}",
        status.message()
    );
    // Its record names the backend, though no response head ever came.
    let text = proxy.metrics_exposition();
    let failed = text.lines().find(|l| {
        l.starts_with("steadfast_proxy_calls_total{")
            && l.contains(&format!("backend=\"{addr}\""))
            && l.contains("outcome=\"failed\"")
    });
    assert!(failed.is_some_and(|l| l.ends_with(" 1")), "{text}");
}

#[tokio::test]
async fn an_h2c_backend_behind_a_tls_cluster_is_unavailable_with_that_reason() {
    let backend = serve_echo().await;
    let (_proxy, running) = proxy_with(&[backend.addr], |config| {
        config.clusters[0].health_check = None;
        config.clusters[0].tls = Some(steadfast_proxy::config::ClusterTls::default());
        config.limits.wait_for_backend = "200ms".into();
    })
    .await;
    unavailable_never_sent(&running, &["not TLS"]).await;
}

#[tokio::test]
async fn rich_error_details_and_binary_trailers_pass_through_byte_for_byte() {
    use base64::Engine as _;
    // A google.rpc.Status with an ErrorInfo, as a backend's Trailers-Only answer,
    // and a custom binary trailer after data on a second path.
    let details = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(b"\x08\x05\x12\x04gone\x1a\x2a\x0a\x28type.googleapis.com/google.rpc.ErrorInfo");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = details.clone();
    let service = steadfast::service_fn(move |_request: Request<steadfast::RecvBody>| {
        let details = sent.clone();
        async move {
            let mut response = Response::new(http_body_util::Empty::<Bytes>::new());
            let headers = response.headers_mut();
            headers.insert("content-type", "application/grpc".parse().unwrap());
            headers.insert("grpc-status", "5".parse().unwrap());
            headers.insert("grpc-message", "gone%20for%20good".parse().unwrap());
            headers.insert("grpc-status-details-bin", details.parse().unwrap());
            headers.insert("x-trace-bin", "AAEC/w".parse().unwrap());
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    tokio::spawn(steadfast::Server::new(ServerConfig::default()).serve(listener, service));
    let (_proxy, running) = proxy_with(&[addr], |config| {
        config.clusters[0].health_check = None;
    })
    .await;
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let request = Request::post(format!("{}/steadfast.test.Echo/Unary", url(&running)))
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let response = bounded(client.send(request)).await.expect("response");
    let headers = response.headers();
    assert_eq!(headers["grpc-status"], "5");
    assert_eq!(headers["grpc-message"], "gone%20for%20good");
    assert_eq!(headers["grpc-status-details-bin"], details.as_str());
    assert_eq!(headers["x-trace-bin"], "AAEC/w");
    assert!(response.body().is_end_stream(), "still Trailers-Only");
}
