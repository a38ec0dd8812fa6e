//! The runtime's client against its server over real loopback sockets.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use steadfast::body::{self, BoxBody};
use steadfast::{
    service_fn, ClientConfig, Fate, Layer, RecvBody, Server, ServerConfig, ShutdownHandle,
};
use tokio::net::TcpListener;

async fn echo(req: Request<RecvBody>) -> Result<Response<BoxBody>, Infallible> {
    match req.uri().path() {
        "/echo" => {
            let collected = req.into_body().collect().await;
            let Ok(collected) = collected else {
                return Ok(Response::builder().status(500).body(body::empty()).unwrap());
            };
            let data = collected.to_bytes();
            let len = data.len();
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-echo-length", len.to_string().parse().unwrap());
            let body =
                Full::new(data).with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
            Ok(Response::new(body::boxed(body)))
        }
        _ => Ok(Response::new(body::full("hello from steadfast\n"))),
    }
}

async fn start(config: ServerConfig) -> (SocketAddr, ShutdownHandle, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config);
    let handle = server.shutdown_handle();
    let task = tokio::spawn(async move {
        server.serve(listener, service_fn(echo)).await.unwrap();
    });
    (addr, handle, task)
}

fn uri(addr: SocketAddr, path: &str) -> http::Uri {
    format!("http://{addr}{path}").parse().unwrap()
}

#[tokio::test]
async fn get_and_echo_with_trailers() {
    let (addr, shutdown, task) = start(ServerConfig::default()).await;
    let client = steadfast::connect(&uri(addr, "/"), &ClientConfig::default())
        .await
        .unwrap();

    let res = client
        .send(Request::get("/").body(body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello from steadfast\n");

    // Several megabytes each way, crossing many flow-control windows.
    let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7) as u8).collect();
    let res = client
        .send(
            Request::post("/echo")
                .body(Full::new(Bytes::from(payload.clone())))
                .unwrap(),
        )
        .await
        .unwrap();
    let collected = res.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["x-echo-length"], "5000000");
    assert!(collected.to_bytes() == payload);

    drop(client);
    shutdown.graceful();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn many_concurrent_streams_wait_for_max_concurrent_streams() {
    let mut config = ServerConfig::default();
    config.proto = {
        let mut c = steadfast_proto::Config::default();
        c.max_concurrent_streams = 8;
        c
    };
    let (addr, shutdown, task) = start(config).await;
    let client = steadfast::connect(&uri(addr, "/"), &ClientConfig::default())
        .await
        .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200 {
        let client = client.clone();
        set.spawn(async move {
            let body = format!("request {i}");
            let res = client
                .send(
                    Request::post("/echo")
                        .body(Full::new(Bytes::from(body.clone())))
                        .unwrap(),
                )
                .await?;
            let got = res.into_body().collect().await?.to_bytes();
            assert_eq!(got, body);
            Ok::<_, steadfast::Error>(())
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(
        ok, 200,
        "every request beyond the limit waited instead of failing"
    );
    assert_eq!(client.peer_max_concurrent_streams(), 8);
    drop(client);
    shutdown.graceful();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    // The handler says when the request reached it, and answers only when released:
    // the shutdown provably starts while the request is in the application.
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let service = {
        let (arrived, release) = (arrived.clone(), release.clone());
        service_fn(move |_req: Request<RecvBody>| {
            let (arrived, release) = (arrived.clone(), release.clone());
            async move {
                arrived.notify_one();
                release.notified().await;
                Ok::<_, Infallible>(Response::new(body::full("slow")))
            }
        })
    };
    let task = tokio::spawn(async move { server.serve(listener, service).await.unwrap() });
    let client = steadfast::connect(&uri(addr, "/"), &ClientConfig::default())
        .await
        .unwrap();
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .send(Request::get("/slow").body(body::empty()).unwrap())
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .expect("the request reaches the handler");
    shutdown.graceful();
    release.notify_one();
    let res = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"slow");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    // The connection drained: a new request is refused locally, never sent.
    let err = client
        .send(Request::get("/").body(body::empty()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.fate(), Some(Fate::NotSent));
    assert!(err.is_retry_safe());
    assert!(client.is_draining());
    let goaway = client.goaway().expect("GOAWAY received");
    assert_eq!(goaway.code, steadfast::ErrorCode::NO_ERROR);
}

#[tokio::test]
async fn connection_refused_is_transport_not_sent() {
    // Bind then drop, so the port is closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = steadfast::connect(&uri(addr, "/"), &ClientConfig::default())
        .await
        .unwrap_err();
    assert_eq!(err.layer(), Layer::Transport);
    assert_eq!(
        err.io_error_kind(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(err.to_string().contains("connecting to 127.0.0.1"), "{err}");
}

fn self_signed() -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let cert = steadfast_testkit::self_signed(&["localhost"]);
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.into());
    (vec![cert.cert_der.into()], key)
}

#[tokio::test]
async fn tls_with_alpn_h2() {
    let (certs, key) = self_signed();
    let mut config = ServerConfig::default();
    config.tls = Some(steadfast::tls::server_config(certs.clone(), key).unwrap());
    let (addr, shutdown, task) = start(config).await;
    let mut client_config = ClientConfig::default();
    client_config.tls =
        Some(steadfast::tls::client_config(steadfast::tls::Roots::Certificates(certs)).unwrap());
    let target: http::Uri = format!("https://localhost:{}/", addr.port())
        .parse()
        .unwrap();
    let client = steadfast::connect(&target, &client_config).await.unwrap();
    let res = client
        .send(Request::get("/").body(body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // TLS mismatch, one way: a plaintext client against the TLS port fails at connect,
    // naming the likely cause.
    let err = steadfast::connect(&uri(addr, "/"), &ClientConfig::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("TLS"),
        "the error names the cause: {err}"
    );
    // No request was sent: connect errors say so themselves, in their fate.
    assert_eq!(err.fate(), Some(Fate::NotSent));
    assert!(err.is_retry_safe());

    drop(client);
    shutdown.graceful();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn tls_client_against_plaintext_server_says_so() {
    let (addr, shutdown, task) = start(ServerConfig::default()).await;
    let mut client_config = ClientConfig::default();
    client_config.tls =
        Some(steadfast::tls::client_config(steadfast::tls::Roots::InsecureAcceptAny).unwrap());
    let target: http::Uri = format!("https://localhost:{}/", addr.port())
        .parse()
        .unwrap();
    let err = steadfast::connect(&target, &client_config)
        .await
        .unwrap_err();
    assert_eq!(err.layer(), Layer::Tls);
    assert!(
        err.to_string().contains("plaintext") || err.to_string().contains("not speak TLS"),
        "{err}"
    );
    shutdown.graceful();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// `Client` and `SendRequest` are `tower::Service`s: generic code (a tower stack, a
/// gRPC channel) drives them through `poll_ready` and `call`.
#[tokio::test]
async fn client_and_send_request_are_tower_services() {
    use tower_service::Service;

    async fn get<S>(service: &mut S, uri: http::Uri) -> Response<RecvBody>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<RecvBody>, Error = steadfast::Error>,
    {
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .expect("ready");
        let request = Request::get(uri).body(Full::new(Bytes::new())).unwrap();
        tokio::time::timeout(Duration::from_secs(10), service.call(request))
            .await
            .expect("answered in time")
            .expect("a response")
    }

    let (addr, shutdown, task) = start(ServerConfig::default()).await;
    let mut conn = steadfast::connect(&uri(addr, "/"), &ClientConfig::default())
        .await
        .unwrap();
    let mut pooled = steadfast::Client::new(steadfast::PoolConfig::default());
    for response in [
        get(&mut conn, uri(addr, "/")).await,
        get(&mut pooled, uri(addr, "/")).await,
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello from steadfast\n");
    }
    shutdown.graceful();
    task.await.unwrap();
}

/// A configuration a peer would reject fails where it is used, naming the field and
/// the rule, instead of surfacing later as the peer's GOAWAY.
#[tokio::test]
async fn invalid_configurations_are_refused_with_the_field() {
    let (addr, shutdown, task) = start(ServerConfig::default()).await;
    let mut config = ClientConfig::default();
    config.proto.max_frame_size = 1000;
    let err = steadfast::connect(&uri(addr, "/"), &config)
        .await
        .expect_err("refused");
    assert_eq!(err.layer(), Layer::Application, "{err}");
    assert_eq!(err.fate(), Some(Fate::NotSent));
    assert!(
        err.to_string()
            .contains("invalid configuration: max_frame_size = 1000"),
        "{err}"
    );
    shutdown.graceful();
    task.await.unwrap();

    let mut config = ServerConfig::default();
    config.proto.initial_stream_window = 1 << 31;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = Server::new(config)
        .serve(listener, service_fn(echo))
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("initial_stream_window"), "{err}");
}

/// A transport that counts the bytes written through it.
struct Counting {
    inner: steadfast::client::BoxIo,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for Counting {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counting {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = self.written.clone();
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            written.fetch_add(*n, std::sync::atomic::Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn wrap_transport_sees_every_byte_of_each_new_connection() {
    let (addr, shutdown, task) = start(ServerConfig::default()).await;
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut config = steadfast::PoolConfig::default();
    let counter = written.clone();
    config.connection.wrap_transport = Some(steadfast::client::WrapTransport(std::sync::Arc::new(
        move |inner| {
            Box::new(Counting {
                inner,
                written: counter.clone(),
            })
        },
    )));
    let client = steadfast::Client::new(config);
    let res = client
        .send(
            Request::post(uri(addr, "/echo"))
                .body(body::full("through the wrapper"))
                .unwrap(),
        )
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"through the wrapper");
    // The preface, SETTINGS, the request's HEADERS and its 19 bytes of DATA at least.
    let n = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n > steadfast_proto::PREFACE.len() + 9 + 9 + 19, "{n} bytes");
    drop(client);
    shutdown.graceful();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
