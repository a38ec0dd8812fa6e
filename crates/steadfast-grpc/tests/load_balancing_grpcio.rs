//! round_robin with client-side health checks over three Python grpcio backends
//! (`lb_backend.py`: grpcio and grpcio-health-checking, pinned in
//! scripts/requirements.txt — servers this project did not write): one goes
//! NOT_SERVING, one is killed (SIGKILL), one drains with a graceful stop (GOAWAY)
//! while calls are in flight. No call fails, and the calls the backends counted add
//! up to the calls made. Every process is killed on drop; every wait is bounded.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use common::python::Python;
use common::{bounded, echo};
use steadfast::client::{ConnectivityState, Health, SubchannelInfo};
use steadfast_grpc::{Channel, ServiceConfig};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::EchoRequest;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lb_backend.py");

/// A grpcio backend process (`lb_backend.py`), killed on drop.
struct Backend {
    python: Python,
    addr: SocketAddr,
}

impl Backend {
    /// Starts `n` backends at once (each generates its stubs first) and waits for
    /// their ports.
    fn start(n: usize) -> Vec<Self> {
        let started: Vec<Python> = (0..n).map(|_| Python::start(SCRIPT, &["serve"])).collect();
        started
            .into_iter()
            .map(|python| {
                let port = python
                    .line(Duration::from_secs(60))
                    .expect("the backend prints its port");
                let addr = format!("127.0.0.1:{}", port.trim())
                    .parse()
                    .expect("a port");
                Self { python, addr }
            })
            .collect()
    }

    /// Sends a command and returns the answer (at most 30 s).
    fn ask(&mut self, command: &str) -> String {
        let stdin = self.python.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{command}").expect("write to the backend");
        stdin.flush().expect("flush");
        self.python
            .line(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("the backend ended before answering {command:?}"))
    }

    /// The Unary calls that reached its handler so far.
    fn count(&mut self) -> usize {
        let answer = self.ask("count");
        answer
            .strip_prefix("count ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a count: {answer:?}"))
    }

    fn kill(&mut self) {
        let _ = self.python.child.kill();
        let _ = self.python.child.wait();
    }
}

/// Runs blocking work (talking to a backend process) off the async worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn until(channel: &Channel, what: &str, done: impl Fn(&[SubchannelInfo]) -> bool) {
    let waited =
        tokio::time::timeout(Duration::from_secs(15), channel.wait_for_subchannels(done)).await;
    assert!(
        waited.is_ok(),
        "{what}: not within 15 s; subchannels: {:#?}",
        channel.subchannels()
    );
}

fn state_of(subchannels: &[SubchannelInfo], addr: SocketAddr) -> Option<ConnectivityState> {
    subchannels
        .iter()
        .find(|s| s.address == addr)
        .map(|s| s.state)
}

async fn calls(client: &mut EchoClient<Channel>, n: usize, tag: &str) {
    for i in 0..n {
        if let Err(status) = bounded(client.unary(echo(&format!("{tag} {i}")))).await {
            panic!("{tag} call {i} failed: {status:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_grpcio_backends_survives_not_serving_a_kill_and_a_drain() {
    let mut backends = blocking(|| Backend::start(3));
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let list: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    let config = ServiceConfig::from_json(
        r#"{"loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": "steadfast.test.Echo"}}"#,
    )
    .expect("service config");
    let channel = Channel::builder(&format!("ipv4:{}", list.join(",")))
        .expect("target")
        .service_config(config)
        .build();
    until(&channel, "every backend SERVING", |subs| {
        subs.len() == 3
            && subs
                .iter()
                .all(|s| s.state == ConnectivityState::Ready && s.health == Some(Health::Serving))
    })
    .await;
    let mut client = EchoClient::new(channel.clone());
    calls(&mut client, 30, "even").await;
    let counts: Vec<usize> = blocking(|| backends.iter_mut().map(Backend::count).collect());
    assert_eq!(counts, [10, 10, 10], "round_robin spreads evenly");
    let mut total = 30;

    // B goes NOT_SERVING: its Watch stream says so, and it leaves the picker.
    assert_eq!(blocking(|| backends[1].ask("not_serving")), "ok");
    until(&channel, "B NOT_SERVING", |subs| {
        state_of(subs, addrs[1]) == Some(ConnectivityState::TransientFailure)
    })
    .await;
    calls(&mut client, 20, "b-down").await;
    total += 20;
    let counts: Vec<usize> = blocking(|| backends.iter_mut().map(Backend::count).collect());
    assert_eq!(counts, [20, 10, 20]);

    // A is killed between calls: once the client has seen its connection end, no
    // call goes there.
    let a_final = counts[0];
    blocking(|| backends[0].kill());
    until(&channel, "A gone", |subs| {
        state_of(subs, addrs[0]) != Some(ConnectivityState::Ready)
    })
    .await;
    calls(&mut client, 10, "a-killed").await;
    total += 10;
    assert_eq!(
        blocking(|| [backends[1].count(), backends[2].count()]),
        [10, 30]
    );

    // B serves again; then C drains with calls in flight.
    assert_eq!(blocking(|| backends[1].ask("serving")), "ok");
    until(&channel, "B back", |subs| {
        state_of(subs, addrs[1]) == Some(ConnectivityState::Ready)
    })
    .await;
    // Each worker returns the calls grpcio failed: see below.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut client = client.clone();
        let done = done_tx.clone();
        workers.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in 0..10 {
                let request = EchoRequest {
                    sleep_ms: 30,
                    ..echo(&format!("drain {w} {i}"))
                };
                if let Err(status) = bounded(client.unary(request)).await {
                    failed.push(status);
                }
                let _ = done.send(());
            }
            failed
        }));
    }
    for _ in 0..6 {
        bounded(done_rx.recv()).await.expect("a call finished");
    }
    let drained = blocking(|| backends[2].ask("drain"));
    let mut failed = Vec::new();
    for worker in workers {
        failed.extend(bounded(worker).await.expect("worker"));
    }
    let c_final: usize = drained
        .strip_prefix("drained ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{drained:?}"));
    until(&channel, "C out of the picker", |subs| {
        state_of(subs, addrs[2]) != Some(ConnectivityState::Ready)
    })
    .await;
    calls(&mut client, 10, "after-drain").await;
    let succeeded = total + 40 - failed.len() + 10;
    let b_final = blocking(|| backends[1].count());
    // Every call that succeeded reached a handler exactly once, and no call that
    // failed reached one. The calls that can fail are those grpcio's stop() found
    // queued for a handler when it began: it answers them CANCELLED (a response, so
    // fate Processed to any client) instead of refusing them — grpcio's behaviour,
    // which no client can retry safely by fate (the README says more).
    assert_eq!(
        a_final + b_final + c_final,
        succeeded,
        "A {a_final}, B {b_final}, C {c_final}; failed: {failed:?}"
    );
    for status in &failed {
        assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
    }
    let stats = channel.client().stats();
    assert_eq!(
        stats.requests, stats.succeeded,
        "no HTTP/2-level failure: {stats:?}"
    );
}
