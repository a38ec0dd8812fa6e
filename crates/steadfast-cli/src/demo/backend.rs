//! The demo's backends: steadfast servers that do a little work per request, shed load
//! over a limit, and can be restarted (gracefully or not) on the same port; and the
//! "network" in front of them, a relay that delays bytes like a real link would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use steadfast::body::{self, BoxBody};
use steadfast::{service_fn, RecvBody, Server, ServerConfig, ShutdownHandle, StatsHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Requests a backend connection handles at once before shedding with REFUSED_STREAM.
pub(crate) const IN_FLIGHT_LIMIT: usize = 16;

/// One running server process (in this process).
pub(crate) struct Instance {
    pub(crate) shutdown: ShutdownHandle,
    pub(crate) stats: StatsHandle,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// Starts a backend server on `addr` (SO_REUSEPORT, so a replacement can bind the same
/// port while the old one drains).
pub(crate) fn start(addr: SocketAddr, generation: u32) -> std::io::Result<Instance> {
    let listener = steadfast::bind_reuseport(addr)?;
    let mut config = ServerConfig::default();
    // Beyond this, the client queues requests (they are `NotSent` until sent).
    config.proto.max_concurrent_streams = 32;
    config.shutdown_grace = Duration::from_secs(2);
    config.max_in_flight_per_connection = Some(IN_FLIGHT_LIMIT);
    let server = Server::new(config);
    let shutdown = server.shutdown_handle();
    let stats = server.stats_handle();
    let port = addr.port();
    let task = tokio::spawn(async move {
        let service = service_fn(move |req| work(req, port, generation));
        let _ = server.serve(listener, service).await;
    });
    Ok(Instance {
        shutdown,
        stats,
        task,
    })
}

/// Reads the body, "works" for a moment, answers with the body's length.
async fn work(
    req: Request<RecvBody>,
    port: u16,
    generation: u32,
) -> Result<Response<BoxBody>, Infallible> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let mut res = Response::new(body::empty());
            *res.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(res);
        }
    };
    tokio::time::sleep(Duration::from_micros(500 + (body.len() as u64 % 1500))).await;
    Ok(Response::builder()
        .header("x-backend", format!("{port}/{generation}"))
        .body(body::full(Bytes::from(body.len().to_string())))
        .unwrap_or_default())
}

/// A TCP relay that delays every byte by `delay` in each direction: a stand-in for a
/// network, so that frames really are in flight when a server sends GOAWAY.
pub(crate) async fn relay(listener: TcpListener, backend: SocketAddr, delay: Duration) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(backend).await else {
                // The backend is down: the client sees its connection closed.
                return;
            };
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let a = tokio::spawn(pipe(cr, sw, delay));
            let b = tokio::spawn(pipe(sr, cw, delay));
            let _ = tokio::join!(a, b);
        });
    }
}

/// Copies `from` to `to`, each chunk delivered `delay` after it was read; EOF is
/// delayed too, and an error on either side ends both.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Option<Bytes>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send((tokio::time::Instant::now() + delay, None));
                break;
            }
            Ok(n) => {
                if tx
                    .send((
                        tokio::time::Instant::now() + delay,
                        Some(Bytes::copy_from_slice(&buf[..n])),
                    ))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// A backend slot: its fixed address, the relay in front of it, and the instance
/// currently serving.
pub(crate) struct Slot {
    pub(crate) addr: SocketAddr,
    pub(crate) public: SocketAddr,
    pub(crate) current: Option<Instance>,
    pub(crate) generation: u32,
    pub(crate) retired: Vec<Arc<StatsHandle>>,
}
