//! `steadfast serve --log-format json`: one JSON record per call on stderr, with the
//! join key (client address:port, server address:port, stream id) that the client
//! side can match: checked against curl's own local port, grpcurl's status, and a
//! client (Python's h2) that resets its stream.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require, run, text, Proc, STEADFAST};
use serde_json::Value;

/// Opens a stream (POST /echo, body not ended), waits for the response headers,
/// then sends RST_STREAM(CANCEL); prints its local port.
const RESETTING_CLIENT: &str = r#"
import socket, sys, time
import h2.connection, h2.config, h2.events
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
c.send_headers(1, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"),
                   (":authority", "x")])
s.sendall(c.data_to_send())
got = False
while not got:
    for e in c.receive_data(s.recv(65536)):
        if isinstance(e, h2.events.ResponseReceived):
            got = True
    s.sendall(c.data_to_send())
c.reset_stream(1, 8)
s.sendall(c.data_to_send())
time.sleep(0.3)
print(s.getsockname()[1])
"#;

fn records(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn call<'a>(records: &'a [Value], path: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["target"] == "steadfast::call" && r["path"] == path)
        .unwrap_or_else(|| panic!("no call record for {path} in {records:#?}"))
}

/// `steadfast serve` with these flags, its address and its stderr lines.
fn serve(
    flags: &[&str],
) -> (
    Proc,
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<String>,
) {
    let mut command = Command::new(STEADFAST);
    let child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env("RUST_LOG", "warn,steadfast::call=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start steadfast serve");
    let mut server = Proc {
        child,
        name: "steadfast serve".into(),
    };
    let mut stdout = BufReader::new(server.child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().rsplit("://").next().unwrap().parse().unwrap();
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (server, addr, rx)
}

/// Lines from `rx` until one contains `needle` (at most 20 s).
fn lines_until(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.iter().any(|l: &String| l.contains(needle)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("no line with {needle:?} in {lines:#?}"),
        }
    }
    lines
}

#[test]
fn serve_logs_one_json_record_per_call_with_the_join_key() {
    require("curl", "curl");
    require("grpcurl", "grpcurl");
    let (_server, addr, rx) = serve(&["--log-format", "json"]);
    let a = addr.to_string();
    let t = Duration::from_secs(20);

    // Plain HTTP: curl says which local port it used.
    let url = format!("http://{a}/");
    let out = run(
        "curl",
        &[
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{local_port}",
            &url,
        ],
        t,
    );
    assert!(out.status.success(), "{}", text(&out));
    let curl_port: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    // gRPC with a status from the handler.
    let out = run(
        "grpcurl",
        &[
            "-plaintext",
            "-d",
            r#"{"response_status":{"code":5,"message":"nope"}}"#,
            &a,
            "grpc.testing.TestService/UnaryCall",
        ],
        t,
    );
    assert!(!out.status.success(), "{}", text(&out));

    // A stream the client resets after the response headers.
    let out = run(
        "python3",
        &[
            "-c",
            RESETTING_CLIENT,
            "127.0.0.1",
            &addr.port().to_string(),
        ],
        t,
    );
    assert!(out.status.success(), "{}", text(&out));
    let reset_port: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    // Three calls (and grpcurl's reflection calls): wait for their records.
    let records = records(&lines_until(&rx, "/echo"));

    let get = call(&records, "/");
    assert_eq!(get["method"], "GET");
    assert_eq!(get["status"], 200);
    assert_eq!(get["end"], "end_stream");
    assert_eq!(get["ended_by"], "server");
    assert_eq!(get["fate"], "processed");
    assert_eq!(get["client"], format!("127.0.0.1:{curl_port}"), "{get}");
    assert_eq!(get["server"], a.as_str());
    assert_eq!(get["stream"], 1);
    assert_eq!(get["level"], "INFO");
    assert!(get["duration_ms"].as_f64().unwrap() >= 0.0);

    let unary = call(&records, "/grpc.testing.TestService/UnaryCall");
    assert_eq!(unary["method"], "POST");
    assert_eq!(unary["status"], 200);
    assert_eq!(unary["grpc_status"], "5");
    assert_eq!(unary["grpc_message"], "nope");
    assert_eq!(unary["end"], "end_stream");
    let client: std::net::SocketAddr = unary["client"].as_str().unwrap().parse().unwrap();
    assert!(client.ip().is_loopback() && client.port() != 0, "{unary}");
    assert!(unary["stream"].as_u64().unwrap() % 2 == 1, "{unary}");

    let reset = call(&records, "/echo");
    assert_eq!(reset["status"], 200);
    assert_eq!(reset["end"], "reset", "{reset}");
    assert_eq!(reset["reset_by"], "client", "{reset}");
    assert_eq!(reset["ended_by"], "client", "{reset}");
    assert_eq!(reset["fate"], "processed", "{reset}");
    assert_eq!(reset["code"], "CANCEL", "{reset}");
    assert_eq!(
        reset["client"],
        format!("127.0.0.1:{reset_port}"),
        "{reset}"
    );
    assert_eq!(reset["stream"], 1);
}

/// Opens a stream (POST /echo, body not ended), waits for the response headers,
/// prints its local port, then reads until the server closes the connection.
const WAITING_CLIENT: &str = r#"
import socket, sys
import h2.connection, h2.config, h2.events
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
c.send_headers(1, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"),
                   (":authority", "x")])
s.sendall(c.data_to_send())
got = False
while not got:
    for e in c.receive_data(s.recv(65536)):
        if isinstance(e, h2.events.ResponseReceived):
            got = True
    s.sendall(c.data_to_send())
print(s.getsockname()[1], flush=True)
while True:
    data = s.recv(65536)
    if not data:
        break
    try:
        c.receive_data(data)
        s.sendall(c.data_to_send())
    except Exception:
        pass
"#;

#[test]
fn a_call_the_drain_cut_short_is_logged_with_the_goaway() {
    let (server, addr, rx) = serve(&["--log-format", "json", "--grace", "1"]);
    let mut client = Command::new("python3")
        .args(["-c", WAITING_CLIENT, "127.0.0.1", &addr.port().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut port = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port.trim().parse().expect("the client's port");
    // The drain: GOAWAY, then after the 1 s grace the connection is closed over the
    // call still open.
    let pid = server.child.id().to_string();
    let out = run("kill", &["-TERM", &pid], Duration::from_secs(5));
    assert!(out.status.success(), "{}", text(&out));
    let records = records(
        &lines_until(&rx, "/echo")
            .into_iter()
            .filter(|l| l.starts_with('{'))
            .collect::<Vec<_>>(),
    );
    let _ = client.wait();
    let cut = call(&records, "/echo");
    assert_eq!(cut["end"], "goaway", "{cut}");
    assert_eq!(cut["ended_by"], "server", "{cut}");
    assert_eq!(cut["code"], "NO_ERROR", "{cut}");
    let goaway = cut["goaway"].as_str().expect("the GOAWAY");
    assert!(goaway.contains("NO_ERROR"), "{cut}");
    assert!(goaway.contains("shutdown grace period expired"), "{cut}");
    assert_eq!(cut["client"], format!("127.0.0.1:{port}"), "{cut}");
    assert_eq!(cut["stream"], 1);
    assert_eq!(cut["status"], 200);
}

#[test]
fn log_calls_writes_one_text_line_per_call() {
    require("curl", "curl");
    let (_server, addr, rx) = serve(&["--log-calls"]);
    let url = format!("http://{addr}/");
    let out = run(
        "curl",
        &[
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{local_port}",
            &url,
        ],
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", text(&out));
    let curl_port = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let lines = lines_until(&rx, "steadfast::call");
    let line = lines.last().unwrap();
    assert!(!line.starts_with('{'), "{line}");
    for field in [
        "INFO".to_owned(),
        "method=GET".to_owned(),
        "status=200".to_owned(),
        format!("client=127.0.0.1:{curl_port}"),
        format!("server={addr}"),
        "stream=1".to_owned(),
        "end=\"end_stream\"".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
}
