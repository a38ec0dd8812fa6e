//! Every interop case through `steadfast-proxy`: the clients of peers this project
//! did not write (Python grpcio, Node @grpc/grpc-js) call through the proxy, over h2c
//! and over TLS (the proxy's listener; the backends are h2c), to our interop-server
//! and to a grpcio server. Statuses and messages, custom metadata and trailers,
//! `grpc-status-details-bin`, large messages, all four call kinds, cancellation and
//! deadlines must arrive as if there were no proxy: every case passes that passes
//! without it (the peers' own n/a and partial cases are reported as such).
//!
//! Prints the table (`cargo test -p steadfast-interop --test through_proxy --
//! --nocapture`). Everything listens on 127.0.0.1; child processes are killed on
//! drop; the proxies stop with the test.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{parse, Outcome, Process, Results, TempDir};
use steadfast_interop::cases::CASES;
use steadfast_interop::PROTO_DIR;
use steadfast_proxy::config::ListenerTls;
use steadfast_proxy::{Config, Proxy};

const OUR_SERVER: &str = env!("CARGO_BIN_EXE_interop-server");
const PYTHON_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop_grpcio.py");
const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
const SERVER_NAME: &str = "server.interop.test";
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// A proxy on its own runtime thread, in front of `backend`; stops when dropped.
struct RunningProxy {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningProxy {
    fn start(backend: SocketAddr, tls: Option<&TempDir>) -> Self {
        let mut config = Config::simple("127.0.0.1:0".parse().unwrap(), &[backend]);
        if let Some(dir) = tls {
            config.listeners[0].tls = Some(ListenerTls::new(
                dir.path().join("server.pem"),
                dir.path().join("server.key"),
            ));
        }
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let proxy = Arc::new(Proxy::new(config).expect("valid configuration"));
                let running = proxy.bind().await.expect("bind");
                let _ = addr_tx.send(running.local_addrs()[0]);
                let _ = stopped.await;
                let _ = tokio::time::timeout(Duration::from_secs(5), running.shutdown()).await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the proxy listens");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Peer {
    Grpcio,
    GrpcJs,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::Grpcio => "grpcio",
            Self::GrpcJs => "grpc-js",
        }
    }

    fn client(self, dir: &TempDir, port: u16, tls: Option<&TempDir>) -> Command {
        let mut command = match self {
            Self::Grpcio => {
                let mut c = Command::new("python3");
                c.arg(PYTHON_PEER).args(["client", PROTO_DIR, dir.str()]);
                c
            }
            Self::GrpcJs => {
                let mut c = Command::new("node");
                c.arg(format!("{NODE_DIR}/interop.js"))
                    .args(["client", PROTO_DIR]);
                c
            }
        };
        command.arg(port.to_string());
        if let Some(tls) = tls {
            command.args([
                format!("--tls_dir={}", tls.str()),
                format!("--server_host_override={SERVER_NAME}"),
            ]);
        }
        command
    }
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Ours,
    Grpcio,
}

/// The backend, its port, and the cases it says it cannot serve as described.
fn start_backend(backend: Backend, dir: &TempDir) -> (Process, u16, Vec<String>) {
    let process = match backend {
        Backend::Ours => Process::start(
            "interop-server",
            Command::new(OUR_SERVER).args(["--port=0", "--host=127.0.0.1"]),
        ),
        Backend::Grpcio => Process::start(
            "grpcio server",
            Command::new("python3")
                .arg(PYTHON_PEER)
                .args(["server", PROTO_DIR, dir.str()]),
        ),
    };
    let (port, preamble) = process.port(PEER_TIMEOUT);
    (process, port, preamble)
}

fn run(peer: Peer, backend: Backend, tls: Option<&TempDir>) -> Results {
    let dir = TempDir::new();
    let (_backend, port, preamble) = start_backend(backend, &dir);
    let proxy = RunningProxy::start(([127, 0, 0, 1], port).into(), tls);
    let client_dir = TempDir::new();
    let client = Process::start(
        &format!("{} client", peer.name()),
        &mut peer.client(&client_dir, proxy.addr.port(), tls),
    );
    let mut results = parse(&client.output(PEER_TIMEOUT));
    for (case, outcome) in parse(&preamble) {
        if let Outcome::Skip(why) = outcome {
            results.insert(case, Outcome::Skip(format!("{backend:?} server: {why}")));
        }
    }
    results
}

#[test]
fn every_interop_case_passes_through_the_proxy() {
    let tls = TempDir::new();
    let ca = steadfast_testkit::test_ca(&[SERVER_NAME]);
    for (name, pem) in [
        ("ca.pem", &ca.ca_pem),
        ("server.pem", &ca.server_cert_pem),
        ("server.key", &ca.server_key_pem),
    ] {
        std::fs::write(tls.path().join(name), pem).expect("write a PEM file");
    }
    let columns = [
        (Peer::Grpcio, Backend::Ours, false),
        (Peer::GrpcJs, Backend::Ours, false),
        (Peer::Grpcio, Backend::Grpcio, false),
        (Peer::GrpcJs, Backend::Grpcio, false),
        (Peer::Grpcio, Backend::Ours, true),
        (Peer::GrpcJs, Backend::Ours, true),
    ];
    // Two at a time: the machine may have two cores.
    let mut results = Vec::new();
    for pair in columns.chunks(2) {
        let tls = &tls;
        let runs: Vec<Results> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|&(peer, backend, use_tls)| {
                    scope.spawn(move || run(peer, backend, use_tls.then_some(tls)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a run panicked"))
                .collect()
        });
        results.extend(runs);
    }
    let mut table = String::from("| case |");
    for (peer, backend, use_tls) in &columns {
        let transport = if *use_tls { "TLS" } else { "h2c" };
        table += &format!(" {} → proxy ({transport}) → {backend:?} |", peer.name());
    }
    table += &format!("\n|---|{}\n", "---|".repeat(columns.len()));
    let mut failures = Vec::new();
    for case in CASES {
        table += &format!("| {case} |");
        for (column, results) in columns.iter().zip(&results) {
            let cell = match results.get(*case) {
                Some(Outcome::Pass) => "pass".to_owned(),
                Some(Outcome::Partial(_)) => "partial".to_owned(),
                Some(Outcome::Skip(_)) => "n/a".to_owned(),
                Some(Outcome::Fail(why)) => {
                    failures.push(format!("{case} / {column:?}: {why}"));
                    "FAIL".to_owned()
                }
                None => {
                    failures.push(format!("{case} / {column:?}: no result"));
                    "no result".to_owned()
                }
            };
            table += &format!(" {cell} |");
        }
        table += "\n";
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}
