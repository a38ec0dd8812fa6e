//! The Prometheus metrics of a Server and a Channel after a known workload, read back
//! through the official Python client's OpenMetrics parser (steadfast-testkit/peers/parse_metrics.py).

mod common;

use std::time::Duration;

use common::{bounded, echo, EchoService};
use prometheus_client::registry::Registry;
use serde_json::Value;
use steadfast_grpc::metrics::{self, ChannelMetrics, ServerMetrics};
use steadfast_grpc::{Channel, Server};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use steadfast_grpc_example::echo::EchoRequest;
use steadfast_testkit::metrics::{parse_exposition as parse, sample_value as value};
use tonic::Code;

const UNARY: &str = "steadfast.test.Echo/Unary";

/// Every sample of `registry`'s exposition, as parsed by Python's prometheus_client.
fn scrape(registry: &Registry) -> Vec<Value> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    parse(&text)
}

/// The type the parser gave the family `family`.
fn family_type(samples: &[Value], family: &str) -> String {
    samples
        .iter()
        .find(|s| s["family"] == family)
        .unwrap_or_else(|| panic!("a family {family}"))["type"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Scrapes until `done` holds for the samples (the server records a call when its
/// body ends, which may be just after the client saw the status), at most 5 s.
async fn scrape_until(registry: &Registry, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let samples = scrape(registry);
        if done(&samples) || tokio::time::Instant::now() > until {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn failing(message: &str, code: Code) -> EchoRequest {
    EchoRequest {
        fail_code: code as i32,
        ..echo(message)
    }
}

fn with_timeout(request: EchoRequest, timeout: Duration) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    request
}

fn channel(url: &str) -> Channel {
    Channel::builder(url)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .build()
}

#[tokio::test]
async fn the_server_layer_counts_calls_by_method_status_and_deadline_budget() {
    let mut registry = Registry::default();
    let (service, _events) = EchoService::new();
    let grpc = Server::builder()
        .add_service(EchoServer::new(service))
        .into_service();
    assert_eq!(grpc.service_names(), Some(&["steadfast.test.Echo"][..]));
    let layer = ServerMetrics::register(&mut registry).known_services(&["steadfast.test.Echo"]);
    let measured = tower::ServiceBuilder::new().layer(layer).service(grpc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    metrics::register_server_stats(&mut registry, server.stats_handle());
    let shutdown = server.shutdown_handle();
    tokio::spawn(server.serve(listener, measured));

    let mut client = EchoClient::new(channel(&url));
    for i in 0..3 {
        bounded(client.unary(echo(&format!("ok {i}"))))
            .await
            .unwrap();
    }
    for i in 0..2 {
        let status = bounded(client.unary(failing(&format!("nf {i}"), Code::NotFound)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    // 500 ms: the "<1s" budget; 30 s: ">=10s"; 50 ms failing: "<100ms".
    bounded(client.unary(with_timeout(
        echo("half a second"),
        Duration::from_millis(500),
    )))
    .await
    .unwrap();
    bounded(client.unary(with_timeout(echo("thirty"), Duration::from_secs(30))))
        .await
        .unwrap();
    let status = bounded(client.unary(with_timeout(
        failing("short", Code::PermissionDenied),
        Duration::from_millis(50),
    )))
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Two made-up methods: both counted as `other`, not as series of their own.
    for path in ["/no.Such/Method", "/steadfast.test.Echo2/Unary"] {
        let mut grpc = tonic::client::Grpc::new(channel(&url));
        bounded(grpc.ready()).await.unwrap();
        let codec = tonic_prost::ProstCodec::<EchoRequest, EchoRequest>::default();
        let path = http::uri::PathAndQuery::from_static(path);
        let status = bounded(grpc.unary(tonic::Request::new(echo("?")), path, codec))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    }

    let count = "grpc_server_call_duration_seconds_count";
    let samples = scrape_until(&registry, |s| {
        s.iter()
            .filter(|s| s["name"] == count)
            .map(|s| s["value"].as_f64().unwrap())
            .sum::<f64>()
            == 10.0
    })
    .await;
    assert_eq!(family_type(&samples, "grpc_server_call_started"), "counter");
    assert_eq!(
        family_type(&samples, "grpc_server_call_duration_seconds"),
        "histogram"
    );
    let method = ("grpc_method", UNARY);
    assert_eq!(
        value(&samples, "grpc_server_call_started_total", &[method]),
        8.0
    );
    let duration = |status, budget| {
        value(
            &samples,
            count,
            &[method, ("grpc_status", status), ("deadline_budget", budget)],
        )
    };
    assert_eq!(duration("OK", "none"), 3.0);
    assert_eq!(duration("NOT_FOUND", "none"), 2.0);
    assert_eq!(duration("OK", "<1s"), 1.0);
    assert_eq!(duration("OK", ">=10s"), 1.0);
    assert_eq!(duration("PERMISSION_DENIED", "<100ms"), 1.0);
    let other = [
        ("grpc_method", "other"),
        ("grpc_status", "UNIMPLEMENTED"),
        ("deadline_budget", "none"),
    ];
    assert_eq!(value(&samples, count, &other), 2.0);
    assert_eq!(
        value(
            &samples,
            "grpc_server_call_started_total",
            &[("grpc_method", "other")]
        ),
        2.0
    );
    // No other series: exactly those six.
    assert_eq!(samples.iter().filter(|s| s["name"] == count).count(), 6);
    // The +Inf bucket holds every call of its series, and the sum is a duration.
    assert_eq!(
        value(
            &samples,
            "grpc_server_call_duration_seconds_bucket",
            &[
                method,
                ("grpc_status", "OK"),
                ("deadline_budget", "none"),
                ("le", "+Inf")
            ]
        ),
        3.0
    );
    let sum = value(
        &samples,
        "grpc_server_call_duration_seconds_sum",
        &[method, ("grpc_status", "OK"), ("deadline_budget", "none")],
    );
    assert!(sum > 0.0 && sum < 10.0, "{sum}");
    // steadfast's own, read from the server's StatsHandle at scrape time.
    assert_eq!(
        value(&samples, "steadfast_server_requests_accepted_total", &[]),
        10.0
    );
    assert_eq!(
        value(&samples, "steadfast_server_requests_shed_total", &[]),
        0.0
    );
    assert_eq!(
        family_type(&samples, "steadfast_server_requests_in_flight"),
        "gauge"
    );
    shutdown.abort();
}

#[tokio::test]
async fn the_channel_wrapper_counts_calls_by_method_target_status_and_deadline_budget() {
    let server = common::serve_echo().await;
    let url = server.url();
    let mut registry = Registry::default();
    let metrics = ChannelMetrics::register(&mut registry);
    let channel = channel(&url);
    metrics::register_channel_stats(&mut registry, &channel, &url);
    let mut client = EchoClient::new(metrics.wrap(channel.clone(), &url));

    for i in 0..4 {
        bounded(client.unary(echo(&format!("ok {i}"))))
            .await
            .unwrap();
    }
    for i in 0..3 {
        let status = bounded(client.unary(failing(&format!("ua {i}"), Code::Unavailable)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
    bounded(client.unary(with_timeout(echo("five"), Duration::from_secs(5))))
        .await
        .unwrap();
    // Sleeps past its 50 ms deadline.
    let slow = EchoRequest {
        sleep_ms: 2_000,
        ..echo("slow")
    };
    let status = bounded(client.unary(with_timeout(slow, Duration::from_millis(50))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    // A server-streaming call: measured to its trailers.
    let stream = EchoRequest {
        count: 3,
        ..echo("stream")
    };
    let mut replies = bounded(client.server_stream(stream))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(reply) = bounded(replies.message()).await.unwrap() {
        assert!(reply.message.starts_with("stream"));
        n += 1;
    }
    assert_eq!(n, 3);

    let samples = scrape(&registry);
    let method = ("grpc_method", UNARY);
    let target = ("grpc_target", url.as_str());
    assert_eq!(family_type(&samples, "grpc_client_call_started"), "counter");
    assert_eq!(
        value(
            &samples,
            "grpc_client_call_started_total",
            &[method, target]
        ),
        9.0
    );
    assert_eq!(
        value(
            &samples,
            "grpc_client_call_started_total",
            &[("grpc_method", "steadfast.test.Echo/ServerStream"), target]
        ),
        1.0
    );
    let count = "grpc_client_call_duration_seconds_count";
    let duration = |m: &str, status, budget| {
        value(
            &samples,
            count,
            &[
                ("grpc_method", m),
                target,
                ("grpc_status", status),
                ("deadline_budget", budget),
            ],
        )
    };
    assert_eq!(duration(UNARY, "OK", "none"), 4.0);
    assert_eq!(duration(UNARY, "UNAVAILABLE", "none"), 3.0);
    assert_eq!(duration(UNARY, "OK", "<10s"), 1.0);
    assert_eq!(duration(UNARY, "DEADLINE_EXCEEDED", "<100ms"), 1.0);
    assert_eq!(
        duration("steadfast.test.Echo/ServerStream", "OK", "none"),
        1.0
    );
    assert_eq!(samples.iter().filter(|s| s["name"] == count).count(), 5);
    // The deadline-exceeded call took about its budget, not the server's 2 s sleep.
    let sum = value(
        &samples,
        "grpc_client_call_duration_seconds_sum",
        &[
            method,
            target,
            ("grpc_status", "DEADLINE_EXCEEDED"),
            ("deadline_budget", "<100ms"),
        ],
    );
    assert!((0.04..1.0).contains(&sum), "{sum}");

    // steadfast's own, equal to the channel's counters.
    let stats = channel.client().stats();
    assert_eq!(
        family_type(&samples, "steadfast_client_transparent_retries"),
        "counter"
    );
    for (cause, v) in [
        ("not_sent", stats.retries_not_sent),
        ("refused_goaway", stats.retries_refused_goaway),
        ("refused_stream", stats.retries_refused_stream),
        ("maybe_processed", stats.retries_maybe_processed),
    ] {
        assert_eq!(
            value(
                &samples,
                "steadfast_client_transparent_retries_total",
                &[target, ("cause", cause)]
            ),
            v as f64
        );
    }
    for (fate, v) in [
        ("not_sent", stats.failed_not_sent),
        ("refused", stats.failed_refused),
        ("maybe_processed", stats.failed_maybe_processed),
        ("processed", stats.failed_processed),
        ("none", stats.failed_other),
    ] {
        assert_eq!(
            value(
                &samples,
                "steadfast_client_failures_total",
                &[target, ("fate", fate)]
            ),
            v as f64
        );
    }
    assert_eq!(
        value(&samples, "steadfast_client_requests_total", &[target]),
        10.0
    );
    assert_eq!(
        value(
            &samples,
            "steadfast_client_connections_opened_total",
            &[target]
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "steadfast_grpc_retries_total", &[target]),
        0.0
    );
    drop(server);
}

#[tokio::test]
async fn goaway_and_rst_stream_by_code_and_connections_by_reason_on_both_ends() {
    let mut server_registry = Registry::default();
    let (service, _events) = EchoService::new();
    let grpc = Server::builder()
        .add_service(EchoServer::new(service))
        .into_service();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    metrics::register_server_stats(&mut server_registry, server.stats_handle());
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve(listener, grpc));
    let mut client_registry = Registry::default();
    let channel = channel(&url);
    metrics::register_channel_stats(&mut client_registry, &channel, &url);
    let mut client = EchoClient::new(channel.clone());

    for i in 0..2 {
        bounded(client.unary(echo(&format!("ok {i}"))))
            .await
            .unwrap();
    }
    // Past its 50 ms deadline the client resets the stream: RST_STREAM(CANCEL).
    let slow = EchoRequest {
        sleep_ms: 2_000,
        ..echo("slow")
    };
    let status = bounded(client.unary(with_timeout(slow, Duration::from_millis(50))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    // A drain: GOAWAY(NO_ERROR); the idle client closes on it.
    shutdown.graceful();
    bounded(serving).await.unwrap().unwrap();

    let client_samples = scrape_until(&client_registry, |s| {
        s.iter().any(|s| {
            s["name"] == "steadfast_client_connections_closed_total"
                && s["labels"]["reason"] == "graceful"
                && s["value"] == 1.0
        })
    })
    .await;
    let server_samples = scrape(&server_registry);

    let s = |name: &str, labels: &[(&str, &str)]| value(&server_samples, name, labels);
    assert_eq!(
        family_type(&server_samples, "steadfast_server_goaway_sent"),
        "counter"
    );
    assert_eq!(
        s(
            "steadfast_server_goaway_sent_total",
            &[("code", "NO_ERROR")]
        ),
        1.0
    );
    assert_eq!(
        s(
            "steadfast_server_rst_stream_received_total",
            &[("code", "CANCEL")]
        ),
        1.0
    );
    assert_eq!(s("steadfast_server_connections_opened_total", &[]), 1.0);
    assert_eq!(
        s(
            "steadfast_server_connections_closed_total",
            &[("reason", "graceful")]
        ),
        1.0
    );
    for reason in ["peer_closed", "io_error", "protocol_error", "tls_error"] {
        assert_eq!(
            s(
                "steadfast_server_connections_closed_total",
                &[("reason", reason)]
            ),
            0.0
        );
    }
    // Only codes that were counted have a series.
    let series =
        |samples: &[Value], name: &str| samples.iter().filter(|s| s["name"] == name).count();
    assert_eq!(
        series(&server_samples, "steadfast_server_rst_stream_sent_total"),
        0
    );
    assert_eq!(
        series(&server_samples, "steadfast_server_goaway_received_total"),
        0
    );

    let target = ("grpc_target", url.as_str());
    let c = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![target];
        all.extend_from_slice(labels);
        value(&client_samples, name, &all)
    };
    assert_eq!(
        c(
            "steadfast_client_rst_stream_sent_total",
            &[("code", "CANCEL")]
        ),
        1.0
    );
    assert_eq!(
        c(
            "steadfast_client_goaway_received_total",
            &[("code", "NO_ERROR")]
        ),
        1.0
    );
    assert_eq!(c("steadfast_client_connections_opened_total", &[]), 1.0);
    assert_eq!(
        c(
            "steadfast_client_connections_closed_total",
            &[("reason", "graceful")]
        ),
        1.0
    );
    assert_eq!(
        series(
            &client_samples,
            "steadfast_client_rst_stream_received_total"
        ),
        0
    );
}

/// A channel to `url` under this service config for `steadfast.test.Echo/Unary`.
fn configured(url: &str, policy: &str) -> Channel {
    let config = format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "steadfast.test.Echo", "method": "Unary"}}], {policy}}}]}}"#
    );
    Channel::builder(url)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .service_config(steadfast_grpc::ServiceConfig::from_json(&config).unwrap())
        .build()
}

/// Waits (at most 5 s) until the exposition contains `needle`, without the parser:
/// it runs synchronously, and the runtime's other tasks would wait for it.
async fn exposition_until(registry: &Registry, needle: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        if text.contains(needle) || tokio::time::Instant::now() > until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_each_retry_and_each_hedged_copy_with_their_own_status() {
    let server = common::serve_echo().await;
    let url = server.url();
    let mut registry = Registry::default();
    let metrics = ChannelMetrics::register(&mut registry);
    let plain = EchoClient::new(metrics.wrap(channel(&url), "plain"));
    let retry = configured(
        &url,
        r#""retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
            "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}"#,
    );
    let retrying = EchoClient::new(metrics.wrap(retry, "retry"));
    let hedge = configured(
        &url,
        r#""hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0.1s", "nonFatalStatusCodes": ["UNAVAILABLE"]}"#,
    );
    let hedging = EchoClient::new(metrics.wrap(hedge, "hedge"));

    // No policy: one attempt each, ending with the call's status.
    let mut client = plain.clone();
    bounded(client.unary(echo("ok"))).await.unwrap();
    let status = bounded(client.unary(failing("nf", Code::NotFound)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // A retry policy: three attempts that fail, then a call whose first succeeds.
    let mut client = retrying.clone();
    let status = bounded(client.unary(failing("ua", Code::Unavailable)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    bounded(client.unary(echo("ok"))).await.unwrap();
    // Hedging: the first copy answers after 300 ms, the second, sent at 100 ms, is
    // cancelled when the first wins.
    let mut client = hedging.clone();
    let slow = EchoRequest {
        sleep_ms: 300,
        ..echo("slow")
    };
    bounded(client.unary(slow)).await.unwrap();

    // The losing copy's task is aborted, and its attempt recorded, just after.
    exposition_until(&registry, r#"grpc_target="hedge",grpc_status="CANCELLED""#).await;
    let samples = scrape(&registry);
    let count = "grpc_client_attempt_duration_seconds_count";
    assert_eq!(
        family_type(&samples, "grpc_client_attempt_started"),
        "counter"
    );
    assert_eq!(
        family_type(&samples, "grpc_client_attempt_duration_seconds"),
        "histogram"
    );
    let method = ("grpc_method", UNARY);
    let started = |target| {
        value(
            &samples,
            "grpc_client_attempt_started_total",
            &[method, ("grpc_target", target)],
        )
    };
    let ended = |target, status| {
        value(
            &samples,
            count,
            &[method, ("grpc_target", target), ("grpc_status", status)],
        )
    };
    assert_eq!(started("plain"), 2.0);
    assert_eq!(ended("plain", "OK"), 1.0);
    assert_eq!(ended("plain", "NOT_FOUND"), 1.0);
    assert_eq!(started("retry"), 4.0);
    assert_eq!(ended("retry", "UNAVAILABLE"), 3.0);
    assert_eq!(ended("retry", "OK"), 1.0);
    assert_eq!(started("hedge"), 2.0);
    assert_eq!(ended("hedge", "OK"), 1.0);
    assert_eq!(ended("hedge", "CANCELLED"), 1.0);
    assert_eq!(samples.iter().filter(|s| s["name"] == count).count(), 6);
    // Calls, not attempts: two per channel but one for hedging.
    let calls = |target| {
        value(
            &samples,
            "grpc_client_call_started_total",
            &[method, ("grpc_target", target)],
        )
    };
    assert_eq!(
        (calls("plain"), calls("retry"), calls("hedge")),
        (2.0, 2.0, 1.0)
    );
    // The winning copy took its 300 ms; the cancelled one lived about 200 ms.
    let sum = |status| {
        value(
            &samples,
            "grpc_client_attempt_duration_seconds_sum",
            &[method, ("grpc_target", "hedge"), ("grpc_status", status)],
        )
    };
    assert!((0.29..2.0).contains(&sum("OK")), "{}", sum("OK"));
    assert!(sum("CANCELLED") < sum("OK"), "{}", sum("CANCELLED"));
}

#[tokio::test]
async fn message_sizes_are_the_messages_bytes_without_framing_on_both_ends() {
    use prost::Message;
    let mut registry = Registry::default();
    let (service, _events) = EchoService::new();
    let grpc = Server::builder()
        .add_service(EchoServer::new(service))
        .into_service();
    let layer = ServerMetrics::register(&mut registry).known_services(&["steadfast.test.Echo"]);
    let measured = tower::ServiceBuilder::new().layer(layer).service(grpc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    let shutdown = server.shutdown_handle();
    tokio::spawn(server.serve(listener, measured));
    let calls = ChannelMetrics::register(&mut registry);
    let mut client = EchoClient::new(calls.wrap(channel(&url), "t"));

    let ok = echo(&"x".repeat(100));
    let reply = bounded(client.unary(ok.clone()))
        .await
        .unwrap()
        .into_inner();
    let refused = failing(&"y".repeat(50), Code::NotFound);
    bounded(client.unary(refused.clone())).await.unwrap_err();
    let stream = EchoRequest {
        count: 3,
        ..echo("three")
    };
    let mut replies = bounded(client.server_stream(stream.clone()))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = 0;
    while let Some(reply) = bounded(replies.message()).await.unwrap() {
        streamed += reply.encoded_len();
    }
    assert!(streamed > 0);

    let samples = scrape_until(&registry, |s| {
        s.iter()
            .filter(|s| {
                s["name"] == "grpc_server_call_sent_total_compressed_message_size_bytes_count"
            })
            .count()
            == 3
    })
    .await;
    let len = |m: &EchoRequest| m.encoded_len() as f64;
    let size = |name: &str, labels: &[(&str, &str)]| {
        let count = value(&samples, &format!("{name}_count"), labels);
        assert_eq!(count, 1.0, "{name} {labels:?}");
        value(&samples, &format!("{name}_sum"), labels)
    };
    let server_sent = "grpc_server_call_sent_total_compressed_message_size_bytes";
    let server_rcvd = "grpc_server_call_rcvd_total_compressed_message_size_bytes";
    let on_server = |method, status| [("grpc_method", method), ("grpc_status", status)];
    assert_eq!(
        family_type(&samples, server_sent),
        "histogram",
        "{samples:#?}"
    );
    assert_eq!(size(server_rcvd, &on_server(UNARY, "OK")), len(&ok));
    assert_eq!(
        size(server_sent, &on_server(UNARY, "OK")),
        reply.encoded_len() as f64
    );
    assert_eq!(
        size(server_rcvd, &on_server(UNARY, "NOT_FOUND")),
        len(&refused)
    );
    assert_eq!(size(server_sent, &on_server(UNARY, "NOT_FOUND")), 0.0);
    let streaming = "steadfast.test.Echo/ServerStream";
    assert_eq!(size(server_rcvd, &on_server(streaming, "OK")), len(&stream));
    assert_eq!(
        size(server_sent, &on_server(streaming, "OK")),
        streamed as f64
    );

    let client_sent = "grpc_client_attempt_sent_total_compressed_message_size_bytes";
    let client_rcvd = "grpc_client_attempt_rcvd_total_compressed_message_size_bytes";
    let on_client = |method, status| {
        [
            ("grpc_method", method),
            ("grpc_target", "t"),
            ("grpc_status", status),
        ]
    };
    assert_eq!(size(client_sent, &on_client(UNARY, "OK")), len(&ok));
    assert_eq!(
        size(client_rcvd, &on_client(UNARY, "OK")),
        reply.encoded_len() as f64
    );
    assert_eq!(
        size(client_sent, &on_client(UNARY, "NOT_FOUND")),
        len(&refused)
    );
    assert_eq!(size(client_rcvd, &on_client(UNARY, "NOT_FOUND")), 0.0);
    assert_eq!(size(client_sent, &on_client(streaming, "OK")), len(&stream));
    assert_eq!(
        size(client_rcvd, &on_client(streaming, "OK")),
        streamed as f64
    );
    // A66's size buckets: 0, 1 KiB, 2 KiB, … 4 GiB.
    assert_eq!(
        value(
            &samples,
            &format!("{client_sent}_bucket"),
            &[
                ("grpc_method", UNARY),
                ("grpc_target", "t"),
                ("grpc_status", "OK"),
                ("le", "1024.0")
            ]
        ),
        1.0
    );
    shutdown.abort();
}
