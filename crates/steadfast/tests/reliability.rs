//! The request reliability mechanism over loopback, against steadfast's own server:
//! connection age (gRFC A9), keepalive back-off (gRFC A8), load shedding, and a
//! graceful restart on the same port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use steadfast::body::{self, BoxBody};
use steadfast::client::StaticResolver;
use steadfast::{
    service_fn, Client, Fate, PoolConfig, RecvBody, RetryPolicy, Server, ServerConfig,
    ShutdownHandle,
};
use steadfast_proto::{Keepalive, PingPolicy};

const T: Duration = Duration::from_secs(30);

async fn slow_echo(req: Request<RecvBody>) -> Result<Response<BoxBody>, Infallible> {
    let data = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(Response::new(body::full(data)))
}

fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
) -> (
    ShutdownHandle,
    steadfast::StatsHandle,
    tokio::task::JoinHandle<()>,
) {
    let server = Server::new(config);
    let handle = server.shutdown_handle();
    let stats = server.stats_handle();
    let task = tokio::spawn(async move {
        server.serve(listener, service_fn(slow_echo)).await.unwrap();
    });
    (handle, stats, task)
}

async fn start(
    config: ServerConfig,
) -> (
    SocketAddr,
    ShutdownHandle,
    steadfast::StatsHandle,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (h, s, t) = serve(listener, config);
    (addr, h, s, t)
}

/// Sends `n` POSTs from `c` concurrent workers; returns how many failed, with errors.
async fn load(client: &Client, n: usize, c: usize) -> Vec<steadfast::Error> {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..c {
        let client = client.clone();
        set.spawn(async move {
            let mut errors = Vec::new();
            for i in 0..n / c {
                let body = format!("worker {w} request {i}");
                let result = async {
                    let res = client
                        .send(
                            Request::post("http://svc.test/")
                                .body(Full::new(Bytes::from(body.clone())))
                                .unwrap(),
                        )
                        .await?;
                    let got = res.into_body().collect().await?.to_bytes();
                    assert_eq!(got, body);
                    Ok::<_, steadfast::Error>(())
                }
                .await;
                if let Err(e) = result {
                    errors.push(e);
                }
            }
            errors
        });
    }
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        errors.extend(r.unwrap());
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connection_age_rotates_connections_without_failing_a_request() {
    let mut config = ServerConfig::default();
    config.proto = {
        let mut c = steadfast_proto::Config::default();
        c.max_connection_age = Some(Duration::from_millis(150));
        c.max_connection_age_grace = Some(Duration::from_secs(5));
        c
    };
    let (addr, shutdown, _, task) = start(config).await;
    let client = Client::with_resolver(PoolConfig::default(), StaticResolver::new(vec![addr]));
    let errors = tokio::time::timeout(T, load(&client, 3200, 16))
        .await
        .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let stats = client.stats();
    assert!(
        stats.connects >= 3,
        "connections were rotated by max_age: {stats:?}"
    );
    assert_eq!(stats.succeeded, 3200);
    shutdown.graceful();
    tokio::time::timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_pings_doubles_the_client_keepalive_time() {
    let mut config = ServerConfig::default();
    config.proto = {
        let mut c = steadfast_proto::Config::default();
        c.ping_policy = Some(PingPolicy {
            min_time: Duration::from_secs(10),
            permit_without_calls: true,
            max_strikes: 2,
        });
        c
    };
    let (addr, shutdown, _, task) = start(config).await;
    let mut pool = PoolConfig::default();
    let mut keepalive = Keepalive::new(Duration::from_millis(20));
    keepalive.without_calls = true;
    pool.connection.proto.keepalive = Some(keepalive);
    let client = Client::with_resolver(pool, StaticResolver::new(vec![addr]));
    let uri: http::Uri = "http://svc.test/".parse().unwrap();
    // Each round: one request, then 150 ms of silence in which the client pings every
    // 20 ms and the server counts strikes. After GOAWAY too_many_pings, the next
    // request opens a new connection with twice the keepalive time.
    for _ in 0..20 {
        let res = client
            .send(Request::get(uri.clone()).body(body::empty()).unwrap())
            .await;
        assert!(res.is_ok(), "{res:?}");
        if client.keepalive_time(&uri) == Some(Duration::from_millis(40)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(client.keepalive_time(&uri), Some(Duration::from_millis(40)));
    assert_eq!(
        client.stats().connects,
        2,
        "a new connection replaced the one told off"
    );
    assert_eq!(
        client.stats().failed_other + client.stats().failed_maybe_processed,
        0
    );
    shutdown.graceful();
    tokio::time::timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shedding_is_retried_transparently_and_reported_without_retry() {
    let mut config = ServerConfig::default();
    config.max_in_flight_per_connection = Some(4);
    let (addr, shutdown, stats, task) = start(config).await;

    // Mechanism on: every shed request is retried until it gets through.
    let client = Client::with_resolver(
        {
            let mut c = PoolConfig::default();
            c.retry = {
                let mut c = RetryPolicy::default();
                c.refused_retries = 50;
                c
            };
            c
        },
        StaticResolver::new(vec![addr]),
    );
    let errors = tokio::time::timeout(T, load(&client, 800, 32))
        .await
        .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let shed = stats.get().refused;
    assert!(
        shed > 0,
        "32 concurrent requests over a limit of 4 must be shed"
    );
    assert_eq!(client.stats().retries_refused_stream, shed);

    // Mechanism off: shed requests fail, and say they are safe to retry.
    let plain = Client::with_resolver(
        {
            let mut c = PoolConfig::default();
            c.retry = RetryPolicy::disabled();
            c
        },
        StaticResolver::new(vec![addr]),
    );
    let errors = tokio::time::timeout(T, load(&plain, 800, 32))
        .await
        .unwrap();
    assert!(!errors.is_empty());
    for e in &errors {
        assert_eq!(e.fate(), Some(Fate::Refused), "{e}");
        assert!(e.is_retry_safe());
        assert_eq!(e.code(), Some(steadfast::ErrorCode::REFUSED_STREAM));
    }
    shutdown.graceful();
    tokio::time::timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_on_the_same_port_loses_nothing() {
    let addr: SocketAddr = {
        let l = steadfast::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        a
    };
    let (old, _, old_task) = serve(
        steadfast::bind_reuseport(addr).unwrap(),
        ServerConfig::default(),
    );
    let client = Client::with_resolver(PoolConfig::default(), StaticResolver::new(vec![addr]));
    let running = {
        let client = client.clone();
        tokio::spawn(async move { load(&client, 4000, 16).await })
    };
    // Restart mid-load: once 500 requests went through (bounded, like every wait).
    tokio::time::timeout(T, async {
        while client.stats().succeeded < 500 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("500 requests succeed before the restart");
    // The new server takes the port, then the old one drains.
    let (new, _, new_task) = serve(
        steadfast::bind_reuseport(addr).unwrap(),
        ServerConfig::default(),
    );
    old.graceful_now(Bytes::from_static(b"restart"));
    tokio::time::timeout(T, old_task).await.unwrap().unwrap();
    let errors = tokio::time::timeout(T, running).await.unwrap().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(client.stats().succeeded, 4000);
    assert!(client.stats().connects >= 2);
    new.graceful();
    tokio::time::timeout(T, new_task).await.unwrap().unwrap();
}
