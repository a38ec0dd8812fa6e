//! The counters of a server's and a client's connections: RST_STREAM and GOAWAY
//! frames by code, connections opened and closed by reason.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use steadfast::body::{self, BoxBody};
use steadfast::{
    service_fn, CloseReason, ConnectionStats, PoolConfig, RecvBody, Server, ServerConfig,
    StatsHandle,
};
use steadfast_proto::{ByCode, CODE_NAMES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn of(counts: &ByCode, code: &str) -> u64 {
    counts[CODE_NAMES.iter().position(|n| *n == code).unwrap()]
}

/// Sent (once, when dropped) by a handler that is still waiting.
struct Dropped(mpsc::UnboundedSender<&'static str>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

/// `/hang` tells `events` it started, waits forever, and tells it when it is dropped;
/// anything else is answered at once.
async fn start(
    config: ServerConfig,
) -> (
    SocketAddr,
    steadfast::ShutdownHandle,
    StatsHandle,
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<&'static str>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config);
    let (shutdown, stats) = (server.shutdown_handle(), server.stats_handle());
    let (tx, events) = mpsc::unbounded_channel();
    let service = service_fn(move |req: Request<RecvBody>| {
        let tx = tx.clone();
        async move {
            if req.uri().path() == "/hang" {
                let _guard = Dropped(tx.clone());
                let _ = tx.send("started");
                std::future::pending::<()>().await;
            }
            Ok::<Response<BoxBody>, Infallible>(Response::new(body::full("ok")))
        }
    });
    let task = tokio::spawn(async move { server.serve(listener, service).await.unwrap() });
    (addr, shutdown, stats, task, events)
}

/// Waits (at most 5 s) until `done` holds for what `read` returns, and returns it.
async fn until(
    read: impl Fn() -> ConnectionStats,
    done: impl Fn(&ConnectionStats) -> bool,
) -> ConnectionStats {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = read();
        if done(&stats) || tokio::time::Instant::now() > give_up {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_cancel_and_a_graceful_drain_are_counted_on_both_ends() {
    let (addr, shutdown, server_stats, task, mut events) = start(ServerConfig::default()).await;
    let client = steadfast::Client::new(PoolConfig::default());
    let uri = |path: &str| format!("http://{addr}{path}");

    let res = client
        .send(Request::get(uri("/")).body(body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The client gives up on a request the handler is working on: RST_STREAM(CANCEL).
    let hang = {
        let (client, request) = (client.clone(), Request::get(uri("/hang")));
        tokio::spawn(async move { client.send(request.body(body::empty()).unwrap()).await })
    };
    assert_eq!(events.recv().await, Some("started"));
    hang.abort();
    // The driver counts the RST_STREAM before it drops the handler.
    assert_eq!(events.recv().await, Some("dropped"));
    let server = server_stats.get().connections;
    assert_eq!(of(&server.frames.rst_stream_received, "CANCEL"), 1);

    shutdown.graceful();
    task.await.unwrap();
    let server = server_stats.get().connections;
    let client_stats = until(
        || client.stats().connections,
        |s| s.closed_by_reason().map(|(_, n)| n).sum::<u64>() == 1,
    )
    .await;

    assert_eq!(server.opened, 1);
    assert_eq!(server.closed(CloseReason::Graceful), 1, "{server:?}");
    assert_eq!(server.closed_by_reason().map(|(_, n)| n).sum::<u64>(), 1);
    // The drain's first GOAWAY(2^31-1): the client, with no stream open, closes
    // on it, so the second one (after the PING) is never sent.
    assert_eq!(of(&server.frames.goaway_sent, "NO_ERROR"), 1);
    assert_eq!(of(&server.frames.rst_stream_sent, "CANCEL"), 0);

    assert_eq!(client_stats.opened, 1);
    assert_eq!(
        client_stats.closed(CloseReason::Graceful),
        1,
        "{client_stats:?}"
    );
    assert_eq!(of(&client_stats.frames.rst_stream_sent, "CANCEL"), 1);
    assert_eq!(of(&client_stats.frames.goaway_received, "NO_ERROR"), 1);
    assert_eq!(of(&client_stats.frames.goaway_sent, "NO_ERROR"), 0);
}

#[tokio::test]
async fn shedding_is_a_refused_stream_sent() {
    let mut config = ServerConfig::default();
    config.max_in_flight = Some(1);
    let (addr, shutdown, server_stats, task, mut events) = start(config).await;
    let conn = steadfast::connect(
        &format!("http://{addr}/").parse().unwrap(),
        &steadfast::ClientConfig::default(),
    )
    .await
    .unwrap();
    let hang = tokio::spawn(conn.send(Request::get("/hang").body(body::empty()).unwrap()));
    assert_eq!(events.recv().await, Some("started"));
    let refused = conn
        .send(Request::get("/").body(body::empty()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(steadfast::ErrorCode::REFUSED_STREAM));
    let server = server_stats.get().connections;
    assert_eq!(of(&server.frames.rst_stream_sent, "REFUSED_STREAM"), 1);
    hang.abort();
    shutdown.abort();
    task.await.unwrap();
    assert_eq!(
        server_stats.get().connections.closed(CloseReason::Aborted),
        1
    );
}

#[tokio::test]
async fn a_bad_preface_and_a_silent_peer_close_for_different_reasons() {
    let (addr, shutdown, server_stats, task, _events) = start(ServerConfig::default()).await;
    // Not HTTP/2: the server answers GOAWAY(PROTOCOL_ERROR) and closes.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
    // Connects, then goes away without a byte.
    drop(TcpStream::connect(addr).await.unwrap());
    let server = until(
        || server_stats.get().connections,
        |s| s.closed_by_reason().map(|(_, n)| n).sum::<u64>() == 2,
    )
    .await;
    assert_eq!(server.opened, 2);
    assert_eq!(server.closed(CloseReason::ProtocolError), 1, "{server:?}");
    assert_eq!(server.closed(CloseReason::PeerClosed), 1, "{server:?}");
    assert_eq!(of(&server.frames.goaway_sent, "PROTOCOL_ERROR"), 1);
    shutdown.graceful();
    task.await.unwrap();
}

#[tokio::test]
async fn a_failed_tls_handshake_is_a_tls_error_and_a_good_one_opens_a_connection() {
    let cert = steadfast_testkit::self_signed(&["localhost"]);
    let certs = vec![rustls::pki_types::CertificateDer::from(cert.cert_der)];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.into());
    let mut config = ServerConfig::default();
    config.tls = Some(steadfast::tls::server_config(certs.clone(), key).unwrap());
    let (addr, shutdown, server_stats, task, _events) = start(config).await;
    // Plaintext HTTP/2 against the TLS port: the server's handshake fails.
    let plaintext = steadfast::connect(
        &format!("http://{addr}/").parse().unwrap(),
        &steadfast::ClientConfig::default(),
    )
    .await;
    assert!(plaintext.is_err());
    let mut client_config = steadfast::ClientConfig::default();
    client_config.tls =
        Some(steadfast::tls::client_config(steadfast::tls::Roots::Certificates(certs)).unwrap());
    let conn = steadfast::connect(
        &format!("https://localhost:{}/", addr.port())
            .parse()
            .unwrap(),
        &client_config,
    )
    .await
    .unwrap();
    let res = conn
        .send(Request::get("/").body(body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop((res, conn));
    let server = until(
        || server_stats.get().connections,
        |s| s.closed_by_reason().map(|(_, n)| n).sum::<u64>() == 2,
    )
    .await;
    assert_eq!(server.opened, 2);
    assert_eq!(server.closed(CloseReason::TlsError), 1, "{server:?}");
    // The TLS client dropped its last handle: its GOAWAY(NO_ERROR) ends the connection.
    assert_eq!(server.closed(CloseReason::Graceful), 1, "{server:?}");
    assert_eq!(of(&server.frames.goaway_received, "NO_ERROR"), 1);
    shutdown.graceful();
    task.await.unwrap();
}
