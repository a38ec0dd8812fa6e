//! Rolling deploys under load, with clients this project did not write (Python
//! grpcio) calling through the proxy: three backends restarted one at a time,
//! gracefully (two-phase GOAWAY, calls in flight finish) — no call may fail — and
//! then crashed (connections dropped mid-call) — only calls in flight on the crashed
//! backend may fail, and each must say it may have been processed.

#[path = "../../steadfast-grpc/tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::python::Python;
use common::EchoService;
use steadfast::client::ConnectivityState;
use steadfast_grpc::Server;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use steadfast_proxy::{Config, Proxy};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpcio_load.py");
const THREADS: usize = 4;

/// An Echo backend on a fixed address, which can stop gracefully or crash.
struct Backend {
    addr: SocketAddr,
    events: tokio::sync::mpsc::UnboundedReceiver<common::Event>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Backend {
    async fn start(addr: SocketAddr) -> Self {
        Self::start_with(addr, steadfast::ServerConfig::default()).await
    }

    async fn start_with(addr: SocketAddr, config: steadfast::ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the backend's port");
        let addr = listener.local_addr().unwrap();
        let (service, events) = EchoService::new();
        let server = Server::builder()
            .config(config)
            .add_service(EchoServer::new(service));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_listener(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            events,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until its handlers finished `n` calls (the load reaches it).
    async fn served(&mut self, n: usize) {
        let finished = async {
            let mut count = 0;
            while count < n {
                match self.events.recv().await {
                    Some(common::Event::Finished(_)) => count += 1,
                    Some(_) => {}
                    None => return,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), finished)
            .await
            .expect("the restarted backend gets calls within 20 s");
    }

    async fn stop_gracefully(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        assert!(stopped.is_ok(), "the backend drained within 10 s");
    }

    /// Drops the server and every connection at once, calls in flight included.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn all_ready(proxy: &Proxy) {
    let ready = proxy.wait_for_backends("default", |subs| {
        subs.len() == 3 && subs.iter().all(|s| s.state == ConnectivityState::Ready)
    });
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("every backend READY within 20 s")
        .expect("the cluster resolves");
}

struct Load(Python);

impl Load {
    fn start(proxy: SocketAddr) -> Self {
        Self::start_with(proxy, THREADS)
    }

    fn start_with(proxy: SocketAddr, threads: usize) -> Self {
        let python = Python::start(SCRIPT, &["load", &proxy.to_string(), &threads.to_string()]);
        let line = tokio::task::block_in_place(|| python.line(Duration::from_secs(60)));
        assert_eq!(line.as_deref(), Some("started"), "the grpcio load started");
        Self(python)
    }

    /// Stops the load: (calls that succeeded, failures as (code, details)).
    fn finish(mut self) -> (u64, Vec<(String, String)>) {
        let stdin = self.0.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"stop\n").expect("tell the load to stop");
        stdin.flush().unwrap();
        let line = tokio::task::block_in_place(|| self.0.line(Duration::from_secs(30)))
            .expect("the load's summary");
        let summary: serde_json::Value = serde_json::from_str(&line).expect("JSON summary");
        let failed = summary["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_owned(),
                    f["details"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (summary["ok"].as_u64().unwrap(), failed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_fail_no_call_and_crashes_fail_only_calls_in_flight() {
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(Backend::start("127.0.0.1:0".parse().unwrap()).await);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let proxy =
        Arc::new(Proxy::new(Config::simple("127.0.0.1:0".parse().unwrap(), &addrs)).unwrap());
    let running = proxy.bind().await.unwrap();
    let listen = running.local_addrs()[0];
    all_ready(&proxy).await;

    // Graceful: each backend drains and a new one starts on its port.
    let load = Load::start(listen);
    for i in 0..3 {
        let old = backends.remove(i);
        let addr = old.addr;
        old.stop_gracefully().await;
        backends.insert(i, Backend::start(addr).await);
        all_ready(&proxy).await;
        // Calls reach the new backend before the next one goes.
        backends[i].served(50).await;
    }
    let (ok, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "graceful restarts failed calls: {failed:?}"
    );
    assert!(ok > 0);
    println!("graceful rolling restart: {ok} calls, 0 failed");

    // Crashes: only calls in flight on the crashed backend may fail, and each says
    // the backend may have processed it.
    let load = Load::start(listen);
    for i in 0..3 {
        let old = backends.remove(i);
        let addr = old.addr;
        old.crash().await;
        backends.insert(i, Backend::start(addr).await);
        all_ready(&proxy).await;
        backends[i].served(50).await;
    }
    let (ok, failed) = load.finish();
    println!(
        "crash rolling restart: {ok} calls, {} failed: {failed:?}",
        failed.len()
    );
    assert!(
        failed.len() <= 3 * THREADS,
        "at most the calls in flight on each crashed backend: {failed:?}"
    );
    for (code, details) in &failed {
        assert_eq!(code, "UNAVAILABLE", "{details}");
        assert!(details.contains("may have processed"), "{details}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_shedding_with_refused_stream_cost_no_call_while_one_has_room() {
    // Three backends taking one call at a time each, and three clients calling
    // without pause: whenever a call starts, a backend has room (the one its
    // client's last call just left), but round robin often picks a busy one, which
    // refuses it.
    let mut config = steadfast::ServerConfig::default();
    config.max_in_flight = Some(1);
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(Backend::start_with("127.0.0.1:0".parse().unwrap(), config.clone()).await);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let mut proxy_config = Config::simple("127.0.0.1:0".parse().unwrap(), &addrs);
    // The backends answer the health Watch with UNIMPLEMENTED, which would take one
    // of their two places for a moment: no health check here.
    proxy_config.clusters[0].health_check = None;
    let proxy = Arc::new(Proxy::new(proxy_config).unwrap());
    let running = proxy.bind().await.unwrap();
    all_ready(&proxy).await;
    let load = Load::start_with(running.local_addrs()[0], 3);
    let refused = || {
        let text = proxy.metrics_exposition();
        text.lines()
            .find(|l| {
                l.starts_with(
                    "steadfast_proxy_transparent_retries_total{cluster=\"default\",cause=\"refused_stream\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .expect("the retries metric")
    };
    // Until each backend served its share and some calls were refused (collisions
    // are likely, not certain, in any one round).
    for _ in 0..10 {
        for b in &mut backends {
            b.served(100).await;
        }
        if refused() > 0.0 {
            break;
        }
    }
    let (ok, failed) = load.finish();
    let refused = refused();
    println!(
        "overload: {ok} calls, {} failed, {refused} refused and sent elsewhere",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(refused > 0.0, "the backends did shed");
    running.shutdown().await.unwrap();
}
