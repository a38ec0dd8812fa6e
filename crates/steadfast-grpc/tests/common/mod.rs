//! What the integration tests share: the Echo service, a server that stops on drop,
//! and bounded waits.
#![allow(dead_code, unreachable_pub)]

pub mod python;

use std::net::SocketAddr;
use std::pin::Pin;

use std::time::Duration;

use steadfast_grpc::{Channel, Server};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::echo_server::{Echo, EchoServer};
use steadfast_grpc_example::echo::{EchoReply, EchoRequest};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status};

/// What a handler reports to the test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handler was dropped before it finished (cancelled).
    Cancelled(String),
    /// The handler finished.
    Finished(String),
}

/// The Echo service (see `proto/echo.proto`).
#[derive(Clone)]
pub struct EchoService {
    events: mpsc::UnboundedSender<Event>,
}

/// Reports `Cancelled` when dropped before `finish`.
struct Guard {
    events: mpsc::UnboundedSender<Event>,
    name: String,
    done: bool,
}

impl Guard {
    fn finish(mut self) {
        self.done = true;
        let _ = self.events.send(Event::Finished(self.name.clone()));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.events.send(Event::Cancelled(self.name.clone()));
        }
    }
}

impl EchoService {
    /// The service, and the receiver of its handlers' events.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        (Self { events }, rx)
    }

    fn reply(request: &Request<EchoRequest>) -> EchoReply {
        EchoReply {
            message: request.get_ref().message.clone(),
            deadline_ms: steadfast_grpc::deadline::remaining().map_or(-1, |d| d.as_millis() as i64),
            hops: 1,
            grpc_timeout: request
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let mut reply = Self::reply(&request);
        let r = request.into_inner();
        let guard = Guard {
            events: self.events.clone(),
            name: r.message.clone(),
            done: false,
        };
        // A forwarded request sleeps at the last hop.
        if r.sleep_ms > 0 && r.forward_to.is_empty() {
            tokio::time::sleep(Duration::from_millis(r.sleep_ms.into())).await;
        }
        if r.fail_code != 0 && r.forward_to.is_empty() {
            guard.finish();
            return Err(Status::new(Code::from(r.fail_code), r.message));
        }
        if !r.forward_to.is_empty() {
            let channel = Channel::from_target(&r.forward_to)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let next = EchoRequest {
                forward_to: String::new(),
                ..r
            };
            let inner = EchoClient::new(channel).unary(next).await?.into_inner();
            reply = EchoReply {
                hops: inner.hops + 1,
                ..inner
            };
        }
        guard.finish();
        Ok(Response::new(reply))
    }

    type ServerStreamStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let template = Self::reply(&request);
        let r = request.into_inner();
        if r.fail_code != 0 {
            return Err(Status::new(Code::from(r.fail_code), r.message));
        }
        let guard = Guard {
            events: self.events.clone(),
            name: r.message.clone(),
            done: false,
        };
        let sleep = Duration::from_millis(r.sleep_ms.into());
        let count = r.count;
        let mut guard = Some(guard);
        let replies = tokio_stream::iter(0..count).then(move |i| {
            let mut reply = template.clone();
            reply.message = format!("{} {i}", reply.message);
            let last = i + 1 == count;
            let guard = if last { guard.take() } else { None };
            async move {
                if !sleep.is_zero() {
                    tokio::time::sleep(sleep).await;
                }
                if let Some(guard) = guard {
                    guard.finish();
                }
                Ok(reply)
            }
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

/// A server on 127.0.0.1 that shuts down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<Event>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next event of a handler, waiting at most 5 s.
    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("a handler event within 5 s")
            .expect("the service is alive")
    }
}

impl TestServer {
    /// Shuts the server down gracefully (GOAWAY, in-flight calls finish) and waits
    /// until it has stopped (at most 10 s).
    pub async fn shutdown_gracefully(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        assert!(stopped.is_ok(), "the server stopped within 10 s");
    }

    /// The calls its handlers finished since the last time this was asked.
    pub fn take_finished(&mut self) -> usize {
        let mut finished = 0;
        while let Ok(event) = self.events.try_recv() {
            finished += usize::from(matches!(event, Event::Finished(_)));
        }
        finished
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Serves the Echo service with `config`.
pub async fn serve_echo_with(config: steadfast::ServerConfig) -> TestServer {
    let (service, events) = EchoService::new();
    let server = Server::builder()
        .config(config)
        .add_service(EchoServer::new(service));
    serve(server, events).await
}

/// Serves `server` on 127.0.0.1; `events` are its handlers' (see [`EchoService::new`]).
pub async fn serve(server: Server, events: mpsc::UnboundedReceiver<Event>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with_listener(listener, async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        events,
        stop: Some(stop),
        task,
    }
}

/// Serves the Echo service with the default configuration.
pub async fn serve_echo() -> TestServer {
    serve_echo_with(steadfast::ServerConfig::default()).await
}

/// An Echo client on a fresh channel to `url`.
pub fn echo_client(url: &str) -> EchoClient<Channel> {
    EchoClient::new(
        Channel::builder(url)
            .expect("a valid target")
            .connect_timeout(Duration::from_secs(5))
            .build(),
    )
}

/// A request with this message.
pub fn echo(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..EchoRequest::default()
    }
}

/// Bounds a test step to 10 s.
pub async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("the step finished within 10 s")
}

/// What the raw HTTP/2 peer (`tests/raw_h2_peer.py`, Python `h2`) printed for `case`
/// against `addr`: one line per header, trailer, reset; "end" last. The peer is
/// killed if it has not finished in 15 s.
pub async fn raw_h2_peer(addr: SocketAddr, case: &str) -> Vec<String> {
    let child = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/raw_h2_peer.py"))
        .arg(addr.to_string())
        .arg(case)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("python3 runs (h2: scripts/requirements.txt)");
    let output = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("the raw peer finished within 15 s")
        .expect("the raw peer's output");
    assert!(output.status.success(), "raw peer failed for {case}");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.last().map(String::as_str), Some("end"), "{lines:?}");
    lines
}
