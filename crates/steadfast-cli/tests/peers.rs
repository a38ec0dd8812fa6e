//! `steadfast serve` and `steadfast probe` against HTTP/2 implementations this project
//! did not write: curl, nghttp2's nghttp, nghttpd and h2load, and a misbehaving
//! client built on Python's h2 stack.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

fn curl_h2c(url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "-sS",
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version} %{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    run("curl", &args, T)
}

#[test]
fn curl_get_and_large_post_over_h2c() {
    require("curl", "curl");
    let (_server, addr) = steadfast_serve(&[]);
    let out = curl_h2c(&format!("http://{addr}/"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.ends_with("\n2 200"),
        "HTTP/2 and 200: {}",
        text(&out)
    );
    assert!(stdout.starts_with("hello from steadfast"), "{}", text(&out));

    // 6 MB each way: many flow-control windows in both directions.
    let dir = TempDir::new("curl-post");
    let payload = write_payload(&dir.path("in.bin"), 6_000_000);
    let body_out = dir.path("out.bin");
    let out = run(
        "curl",
        &[
            "-sS",
            "--http2-prior-knowledge",
            "--data-binary",
            &format!("@{}", dir.path("in.bin").display()),
            "-o",
            body_out.to_str().unwrap(),
            "-w",
            "%{http_version} %{http_code}",
            &format!("http://{addr}/echo"),
        ],
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
    assert!(
        std::fs::read(&body_out).unwrap() == payload,
        "echoed body differs"
    );
}

/// The bulk benchmark's upload target: the body is read to its end and only its
/// length comes back, also with small windows that make curl wait for WINDOW_UPDATE.
#[test]
fn curl_post_to_discard_gets_the_body_length() {
    require("curl", "curl");
    let (_server, addr) =
        steadfast_serve(&["--stream-window", "65535", "--connection-window", "65535"]);
    let dir = TempDir::new("curl-discard");
    write_payload(&dir.path("in.bin"), 3_000_000);
    let out = curl_h2c(
        &format!("http://{addr}/discard"),
        &[
            "--data-binary",
            &format!("@{}", dir.path("in.bin").display()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3000000\n\n2 200");
}

#[test]
fn curl_over_tls_negotiates_h2() {
    require("curl", "curl");
    let dir = TempDir::new("curl-tls");
    let (cert, key) = write_cert(&dir);
    let (_server, addr) = steadfast_serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let out = run(
        "curl",
        &[
            "-sS",
            "--http2",
            "--cacert",
            cert.to_str().unwrap(),
            "-w",
            "\n%{http_version} %{http_code}",
            &format!("https://localhost:{}/", addr.port()),
        ],
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("\n2 200"),
        "{}",
        text(&out)
    );
}

/// Parses nghttp's `-s` statistics table: the status code of every request.
fn nghttp_codes(out: &std::process::Output) -> Vec<u16> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // id responseEnd requestStart process code size path
            (cols.len() == 7 && cols[0].parse::<u32>().is_ok())
                .then(|| cols[4].parse().ok())
                .flatten()
        })
        .collect()
}

#[test]
fn nghttp_concurrent_streams_and_large_posts() {
    require("nghttp", "nghttp2-client");
    let (_server, addr) = steadfast_serve(&[]);
    // 100 concurrent GETs on one connection.
    let out = run(
        "nghttp",
        &["-n", "-s", "-m", "100", &format!("http://{addr}/")],
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    let codes = nghttp_codes(&out);
    assert_eq!(codes.len(), 100, "{}", text(&out));
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");

    // Large bodies on concurrent streams.
    let dir = TempDir::new("nghttp-post");
    write_payload(&dir.path("in.bin"), 4_000_000);
    let data = dir.path("in.bin");
    let out = run(
        "nghttp",
        &[
            "-n",
            "-s",
            "-m",
            "4",
            "-d",
            data.to_str().unwrap(),
            &format!("http://{addr}/echo"),
        ],
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    let codes = nghttp_codes(&out);
    assert_eq!(codes, vec![200; 4], "{}", text(&out));
}

#[test]
fn nghttp_over_tls() {
    require("nghttp", "nghttp2-client");
    let dir = TempDir::new("nghttp-tls");
    let (cert, key) = write_cert(&dir);
    let (_server, addr) = steadfast_serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let out = run(
        "nghttp",
        &[
            "-n",
            "-s",
            "-m",
            "10",
            &format!("https://localhost:{}/", addr.port()),
        ],
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(nghttp_codes(&out), vec![200; 10], "{}", text(&out));
}

#[test]
fn h2load_every_request_succeeds() {
    require("h2load", "nghttp2-client");
    let (_server, addr) = steadfast_serve(&[]);
    let out = run(
        "h2load",
        &[
            "-n",
            "20000",
            "-c",
            "8",
            "-m",
            "32",
            &format!("http://{addr}/"),
        ],
        T,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains("requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("status codes: 20000 2xx"), "{}", text(&out));
}

/// Starts nghttpd serving `docroot`: h2c, or TLS with `tls = Some((key, cert))`.
fn nghttpd(
    docroot: &std::path::Path,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> (Proc, u16) {
    require("nghttpd", "nghttp2-server");
    let port = free_port();
    let mut cmd = std::process::Command::new("nghttpd");
    cmd.arg("-d").arg(docroot);
    match tls {
        None => {
            cmd.arg("--no-tls").arg(port.to_string());
        }
        Some((key, cert)) => {
            cmd.arg(port.to_string()).arg(key).arg(cert);
        }
    }
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nghttpd");
    let proc = Proc {
        child,
        name: "nghttpd".into(),
    };
    wait_listening(([127, 0, 0, 1], port).into());
    (proc, port)
}

fn probe(args: &[&str]) -> std::process::Output {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    run(STEADFAST, &all, T)
}

#[test]
fn probe_against_nghttpd_h2c() {
    let dir = TempDir::new("nghttpd-h2c");
    std::fs::write(dir.path("index.html"), "nghttpd here\n").unwrap();
    let (_nghttpd, port) = nghttpd(&dir.0, None);
    let out = probe(&["-v", &format!("http://127.0.0.1:{port}/index.html")]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("status: 200 OK"), "{}", text(&out));
    assert!(stdout.contains("body: 13 bytes"), "{}", text(&out));
    // -v shows the frames of both directions.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("send HEADERS stream=1"), "{}", text(&out));
    assert!(stderr.contains("recv SETTINGS"), "{}", text(&out));
    assert!(stderr.contains(":status: 200"), "{}", text(&out));

    let out = probe(&[&format!("http://127.0.0.1:{port}/missing")]);
    assert!(out.status.success(), "a 404 is a response: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("status: 404"),
        "{}",
        text(&out)
    );
}

#[test]
fn probe_against_nghttpd_tls() {
    let dir = TempDir::new("nghttpd-tls");
    let (cert, key) = write_cert(&dir);
    std::fs::write(dir.path("index.html"), "secure\n").unwrap();
    let (_nghttpd, port) = nghttpd(&dir.0, Some((&key, &cert)));
    let out = probe(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://localhost:{port}/index.html"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("status: 200 OK"), "{}", text(&out));
    assert!(stdout.contains("body: 7 bytes"), "{}", text(&out));

    // Without trusting the certificate, the failure is a TLS one, nothing sent.
    let out = probe(&[&format!("https://localhost:{port}/index.html")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("certificate"),
        "{}",
        text(&out)
    );
}

#[test]
fn probe_diagnoses_tls_mismatch_both_ways() {
    let dir = TempDir::new("mismatch");
    let (cert, key) = write_cert(&dir);
    let (_tls_server, tls_addr) = steadfast_serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let (_plain_server, plain_addr) = steadfast_serve(&[]);

    // h2c client, TLS server.
    let out = probe(&[&format!("http://{tls_addr}/")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("TLS"), "{}", text(&out));
    assert!(stdout.contains("retry-safe: yes"), "{}", text(&out));

    // TLS client, h2c server.
    let out = probe(&["-k", &format!("https://{plain_addr}/")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("layer:      TLS"), "{}", text(&out));
    assert!(stdout.contains("plaintext"), "{}", text(&out));
}

#[test]
fn probe_connection_refused_is_transport_never_sent() {
    let port = free_port();
    let out = probe(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("layer:      transport"), "{}", text(&out));
    assert!(stdout.contains("never sent"), "{}", text(&out));
    assert!(stdout.contains("retry-safe: yes"), "{}", text(&out));
}

#[test]
fn misbehaving_peer_gets_the_right_errors_and_server_stays_up() {
    let (_server, addr) = steadfast_serve(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/bad_client.py");
    let out = run(
        "python3",
        &[script, "127.0.0.1", &addr.port().to_string()],
        T,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok server_still_serves"), "{}", text(&out));
    assert!(!stdout.contains("FAIL"), "{}", text(&out));
}

#[test]
fn serve_shuts_down_gracefully_on_sigterm() {
    let (mut server, addr) = steadfast_serve(&[]);
    // The server answers, then exits 0 on SIGTERM once it has drained.
    let out = probe(&[&format!("http://{addr}/")]);
    assert!(out.status.success(), "{}", text(&out));
    let pid = server.child.id().to_string();
    let kill = run("kill", &["-TERM", &pid], T);
    assert!(kill.status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "steadfast serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
