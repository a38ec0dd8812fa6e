//! `steadfast probe` against one fault at a time, each reproduced on loopback with a
//! peer this project did not write (Python `h2` servers, `openssl s_server`,
//! `python -m http.server`, raw sockets): the diagnosis is asserted field by field —
//! layer, initiator, fate, retry-safe, and a key phrase of the advice.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn probe(args: &[&str]) -> Output {
    run(
        STEADFAST,
        &["probe"].iter().chain(args).copied().collect::<Vec<_>>(),
        LIMIT,
    )
}

/// The value of a `  name:  value` line of probe's diagnosis.
fn field(out: &Output, name: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name}: line in\n{}", text(out)))
}

/// Asserts the four answers and a phrase of the first line, and the exit code.
fn assert_diagnosis(
    out: &Output,
    code: i32,
    error: &str,
    layer: &str,
    initiator: &str,
    fate: &str,
    retry_safe: &str,
) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert!(field(out, "error").contains(error), "{}", text(out));
    assert_eq!(field(out, "layer"), layer, "{}", text(out));
    assert_eq!(field(out, "initiator"), initiator, "{}", text(out));
    assert!(field(out, "fate").starts_with(fate), "{}", text(out));
    assert_eq!(field(out, "retry-safe"), retry_safe, "{}", text(out));
}

/// A TCP listener that accepts and then says nothing, holding its connections.
fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

#[test]
fn tls_server_offering_only_http1_is_told_apart_from_a_certificate_problem() {
    require("openssl", "openssl");
    let dir = TempDir::new("alpn-http1");
    let (cert, key) = write_cert(&dir);
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let _server = Proc {
        child: Command::new("openssl")
            .args([
                "s_server", "-accept", &accept, "-alpn", "http/1.1", "-quiet",
            ])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server"),
        name: "openssl s_server".into(),
    };
    wait_listening(accept.parse().unwrap());
    let out = probe(&["-k", &format!("https://{accept}/")]);
    assert_diagnosis(
        &out,
        3,
        "does not offer HTTP/2",
        "TLS",
        "the peer",
        "never sent",
        "yes",
    );
    assert!(
        field(&out, "advice").contains("ALPN \"h2\""),
        "{}",
        text(&out)
    );
}

#[test]
fn a_name_that_does_not_resolve_is_a_resolution_failure() {
    // A 64-byte label is invalid in DNS: the resolver refuses it without a query.
    let host = format!("{}.invalid", "a".repeat(64));
    let out = probe(&[&format!("http://{host}/")]);
    assert_diagnosis(
        &out,
        3,
        &format!("could not resolve the host name \"{host}\""),
        "name resolution",
        "the local application",
        "never sent",
        "yes",
    );
    assert!(
        field(&out, "advice").contains("host name"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_handshake_that_stalls_names_the_step_that_timed_out() {
    let addr = silent_listener();
    let out = probe(&["--connect-timeout", "1", &format!("https://{addr}/")]);
    assert_diagnosis(
        &out,
        3,
        "TLS handshake timed out (TCP had connected)",
        "TLS",
        "this endpoint",
        "never sent",
        "yes",
    );
    let out = probe(&["--connect-timeout", "1", &format!("http://{addr}/")]);
    assert_diagnosis(
        &out,
        3,
        "HTTP/2 handshake timed out",
        "HTTP/2 connection",
        "this endpoint",
        "never sent",
        "yes",
    );
    assert!(
        field(&out, "advice").contains("no HTTP/2 SETTINGS"),
        "{}",
        text(&out)
    );
}

#[test]
fn connect_timeout_zero_means_no_limit() {
    let (_server, addr) = steadfast_serve(&[]);
    let out = probe(&["--connect-timeout", "0", &format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(field(&out, "status"), "200 OK");
}

#[test]
fn a_server_that_never_answers_times_out_with_what_was_sent() {
    let (_server, addr, requests) = fault_server(&["silent"]);
    let out = probe(&[
        "--timeout",
        "1",
        "-d",
        "hello",
        &format!("http://{addr}/upload"),
    ]);
    assert_eq!(
        requests.recv_timeout(LIMIT).unwrap(),
        "request POST /upload"
    );
    assert_diagnosis(
        &out,
        5,
        "no complete response within 1 s",
        "application (the request was still in progress)",
        "the local application",
        "maybe processed",
        "no",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("send HEADERS stream=1"), "{}", text(&out));
    assert!(stdout.contains("recv SETTINGS"), "{}", text(&out));
}

#[test]
fn ctrl_c_prints_the_diagnosis_so_far() {
    let (_server, addr, requests) = fault_server(&["silent"]);
    let child = Command::new(STEADFAST)
        .args(["probe", "--timeout", "0", &format!("http://{addr}/wait")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start probe");
    let mut probe = Proc {
        child,
        name: "probe".into(),
    };
    // Once the server holds the request, interrupt the probe.
    assert_eq!(requests.recv_timeout(LIMIT).unwrap(), "request GET /wait");
    let status = Command::new("kill")
        .args(["-INT", &probe.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (tx, rx) = mpsc::channel();
    let child = std::mem::replace(
        &mut probe.child,
        Command::new("true").spawn().expect("a placeholder process"),
    );
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(LIMIT)
        .expect("probe exits on Ctrl-C")
        .unwrap();
    assert_diagnosis(
        &out,
        130,
        "interrupted (Ctrl-C)",
        "application (the request was still in progress)",
        "the local application",
        "maybe processed",
        "no",
    );
}

#[test]
fn a_reply_that_is_not_http2_is_shown() {
    let port = free_port();
    let _server = Proc {
        child: Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python -m http.server"),
        name: "python -m http.server".into(),
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr);
    let out = probe(&["-v", &format!("http://{addr}/")]);
    assert_diagnosis(
        &out,
        3,
        "the server's first bytes are not HTTP/2",
        "HTTP/2 connection",
        "this endpoint",
        "never sent",
        "yes",
    );
    assert!(
        field(&out, "error").contains("<!DOCTYPE HTML>"),
        "{}",
        text(&out)
    );
    // -v shows the bytes that are not frames.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bytes that are not HTTP/2 frames"),
        "{}",
        text(&out)
    );
    // And its lines come in the order they happened: our preface first.
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.ends_with("send connection preface"), "{}", text(&out));
}

#[test]
fn a_tcp_reset_mid_request_is_not_an_orderly_close() {
    let (_server, addr, _requests) = fault_server(&["reset"]);
    let out = probe(&["-d", "x", &format!("http://{addr}/")]);
    assert_diagnosis(
        &out,
        4,
        "reset by the peer (TCP RST)",
        "transport",
        "the peer",
        "sent; the server may have processed it",
        "no",
    );
}

#[test]
fn goaway_advice_follows_its_code_even_below_last_stream_id() {
    for (code, debug, name, hint) in [
        ("0xb", "too_many_pings", "ENHANCE_YOUR_CALM", "keepalive"),
        (
            "0x1",
            "bad frame",
            "PROTOCOL_ERROR",
            "a retry will likely fail the same way",
        ),
        ("0x0", "max_age", "NO_ERROR", "draining"),
    ] {
        let (_server, addr, _requests) = fault_server(&["goaway", code, debug]);
        let out = probe(&[&format!("http://{addr}/")]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        // Stream 1 was at the GOAWAY's last-stream-id: maybe processed, not refused.
        assert!(field(&out, "fate").starts_with("sent;"), "{}", text(&out));
        assert_eq!(field(&out, "retry-safe"), "no", "{}", text(&out));
        assert!(field(&out, "code").starts_with(name), "{}", text(&out));
        assert!(field(&out, "hint").contains(hint), "{code}: {}", text(&out));
    }
}

#[test]
fn an_intermediarys_html_error_page_gets_a_hint() {
    let (_server, addr, _requests) = fault_server(&["html", "502"]);
    let out = probe(&[&format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(field(&out, "status"), "502 Bad Gateway");
    let hint = field(&out, "hint");
    assert!(
        hint.contains("intermediary's error page (server: edge-proxy/1.0)"),
        "{}",
        text(&out)
    );
}

#[test]
fn usage_errors_exit_2_and_help_is_current() {
    let out = probe(&["ftp://127.0.0.1/"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported URL"));
    let out = probe(&["-d", "@/nonexistent/body", "http://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let help = run(STEADFAST, &["--help"], LIMIT);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("demo") && !help.contains("soon"), "{help}");
}

/// The README's one-line certificate recipe, run as written, gives a certificate that
/// `serve` and `probe --cacert` accept; OpenSSL's default self-signed certificate
/// (CA:TRUE) is refused, and the refusal is explained in words.
#[test]
fn the_readme_certificate_recipe_works_and_a_ca_certificate_is_explained() {
    require("openssl", "openssl");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let recipe = readme
        .lines()
        .find(|l| l.starts_with("openssl req -x509"))
        .expect("the README has an `openssl req -x509` recipe line");
    assert!(recipe.contains("CA:FALSE"), "{recipe}");
    for (ca, args) in [
        (false, recipe.to_owned()),
        (
            true,
            recipe.replace(" -addext basicConstraints=critical,CA:FALSE", ""),
        ),
    ] {
        let dir = TempDir::new(if ca { "recipe-ca" } else { "recipe" });
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{args} 2>/dev/null"))
            .current_dir(&dir.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args}: {}", text(&out));
        let cert = dir.path("cert.pem");
        let key = dir.path("key.pem");
        let (_server, addr) = steadfast_serve(&[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]);
        let url = format!("https://localhost:{}/", addr.port());
        let out = probe(&["--cacert", cert.to_str().unwrap(), &url]);
        if ca {
            assert_eq!(out.status.code(), Some(3), "{}", text(&out));
            assert!(
                field(&out, "error").contains("is a CA certificate"),
                "{}",
                text(&out)
            );
            assert!(
                field(&out, "advice").contains("leaf certificate"),
                "{}",
                text(&out)
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            assert_eq!(field(&out, "status"), "200 OK");
        }
    }
}

#[test]
fn the_two_proofs_of_no_processing_read_as_refused_and_retry_safe() {
    let (_server, addr, _requests) = fault_server(&["refuse"]);
    let out = probe(&["-d", "x", &format!("http://{addr}/")]);
    assert_diagnosis(
        &out,
        4,
        "REFUSED_STREAM",
        "HTTP/2 stream",
        "the peer",
        "refused by the server before any processing",
        "yes",
    );
    let (_server, addr, _requests) = fault_server(&["drain"]);
    let out = probe(&["-d", "x", &format!("http://{addr}/")]);
    assert_diagnosis(
        &out,
        4,
        "stream 1 refused by the peer's GOAWAY(last_stream_id=0, NO_ERROR, debug data \"max_age\")",
        "HTTP/2 connection",
        "the peer",
        "refused by the server before any processing",
        "yes",
    );
    assert!(field(&out, "hint").contains("draining"), "{}", text(&out));
}
