//! `steadfast serve`.

mod calllog;
mod file;
pub(crate) mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use steadfast::body::{self, BoxBody};
use steadfast::{service_fn, RecvBody, Server, ServerConfig};
use steadfast_grpc::metrics::{MetricsService, ServerMetrics};
use steadfast_grpc::GrpcService;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// PEM certificate chain: serve TLS with ALPN h2 instead of h2c.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve files from this directory for GET requests other than `/`.
    #[arg(long)]
    root: Option<PathBuf>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS per connection; excess streams are refused
    /// with REFUSED_STREAM.
    #[arg(long, default_value_t = 256)]
    max_concurrent_streams: u32,
    /// Seconds that in-flight requests get to finish on shutdown.
    #[arg(long, default_value_t = 30)]
    grace: u64,
    /// A client must send its preface and SETTINGS within this time, or gets
    /// GOAWAY(SETTINGS_TIMEOUT, handshake_timeout). A duration (`10s`, `500ms`,
    /// `2m`) or `off`.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    handshake_timeout: Timeout,
    /// A request body that gets no DATA for this long (while the client may send) is
    /// reset with RST_STREAM(CANCEL). A duration or `off`.
    #[arg(long, default_value = "60s", value_parser = parse_timeout)]
    stream_recv_timeout: Timeout,
    /// A response whose queued data the client takes none of for this long (no
    /// WINDOW_UPDATE, or it does not read) is reset with RST_STREAM(CANCEL). A
    /// duration or `off`.
    #[arg(long, default_value = "60s", value_parser = parse_timeout)]
    stream_send_timeout: Timeout,
    /// A connection with no open stream for this long is closed gracefully with
    /// GOAWAY(NO_ERROR, max_idle). A duration or `off`.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    idle_timeout: Timeout,
    /// Receive window of each stream in bytes (SETTINGS_INITIAL_WINDOW_SIZE); default
    /// 1 MiB. Larger windows carry uploads with fewer stops, and let a client make
    /// the server buffer more per stream.
    #[arg(long, value_parser = clap::value_parser!(u32).range(65_535..=0x7fff_ffff))]
    stream_window: Option<u32>,
    /// Receive window of each connection in bytes, shared by its streams; default
    /// 2 MiB. It bounds what one client can make the server buffer.
    #[arg(long, value_parser = clap::value_parser!(u32).range(65_535..=0x7fff_ffff))]
    connection_window: Option<u32>,
    /// Serve Prometheus metrics (OpenMetrics text) at `GET /metrics` on this address,
    /// over HTTP/1.1, on a listener of its own (port 0 picks a free port; printed).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// `json`: every log record as one JSON object per line on stderr, and one record
    /// per call (target `steadfast::call`: method, path, status, grpc-status,
    /// duration, how the stream ended, and the join key: client and server
    /// address:port and stream id). `text` (the default): human-readable lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// With `--log-format text`: the record per call too, one line each (the same
    /// fields as the JSON record). Always on with `--log-format json`.
    #[arg(long)]
    log_calls: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl Args {
    /// Whether `main` initialises the JSON subscriber (and `run` logs each call).
    pub(crate) fn json_logs(&self) -> bool {
        self.log_format == LogFormat::Json
    }
}

/// A timeout given on the command line: a duration, or `None` for `off`.
#[derive(Clone, Copy, Debug)]
struct Timeout(Option<Duration>);

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if s == "off" {
        return Ok(Timeout(None));
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: give a unit (ms, s, m) or `off`"))?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a number then a unit, e.g. 10s"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Ok(Timeout(Some(duration)))
}

const HELLO: &[u8] = b"hello from steadfast\n";

pub(crate) async fn run(args: Args) -> u8 {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match steadfast::tls::server_config_from_pem(cert, key) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("error: TLS configuration: {e}");
                return 1;
            }
        },
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut config = ServerConfig::default();
    // ServerConfig::default() uses Config::server(): its timeouts, with ours on top.
    config.proto.max_concurrent_streams = args.max_concurrent_streams;
    config.proto.handshake_timeout = args.handshake_timeout.0;
    config.proto.stream_recv_timeout = args.stream_recv_timeout.0;
    config.proto.stream_send_timeout = args.stream_send_timeout.0;
    config.proto.max_connection_idle = args.idle_timeout.0;
    if let Some(window) = args.stream_window {
        config.proto.initial_stream_window = window;
    }
    if let Some(window) = args.connection_window {
        config.proto.initial_connection_window = window;
    }
    config.shutdown_grace = Duration::from_secs(args.grace);
    config.tls = tls;
    let log_calls = args.log_calls || args.log_format == LogFormat::Json;
    // The per-call record says how a failed stream ended.
    config.stream_end = log_calls;
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return 1;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let metrics_listener = match args.metrics {
        None => None,
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: cannot listen on {at} for --metrics: {e}");
                return 1;
            }
        },
    };
    println!("steadfast serve: listening on {scheme}://{addr}");
    let server = Server::new(config);
    let mut registry = prometheus_client::registry::Registry::default();
    let layer = ServerMetrics::register(&mut registry);
    steadfast_grpc::metrics::register_server_stats(&mut registry, server.stats_handle());
    if let Some(listener) = metrics_listener {
        let at = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        println!("steadfast serve: metrics on http://{at}/metrics");
        tokio::spawn(metrics::serve(listener, Arc::new(registry)));
    }
    let shutdown = server.shutdown_handle();
    let (signalled, shutting_down) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down gracefully");
        let _ = signalled.send(());
        shutdown.graceful();
    });
    let root: Option<Arc<Path>> = args.root.map(Into::into);
    let (health, grpc) = grpc_services().await;
    tokio::spawn(async move {
        if shutting_down.await.is_err() {
            return;
        }
        // Health checkers see the drain coming before the GOAWAY does.
        for name in ["", TEST_SERVICE] {
            health
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
    });
    // Measured whether or not --metrics serves them: one code path.
    let grpc = match grpc.service_names() {
        Some(names) => layer.known_services(names),
        None => layer,
    }
    .wrap(grpc);
    let service = service_fn(move |req| {
        let (root, grpc) = (root.clone(), grpc.clone());
        async move {
            if !log_calls {
                return handle(req, root, grpc).await;
            }
            // Dropped with the handler if the stream is reset first: logged then.
            let record = calllog::CallRecord::new(&req);
            let Ok(response) = handle(req, root, grpc).await;
            Ok(record.respond(response))
        }
    });
    match server.serve(listener, service).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Request body bytes a route that does not use the body reads (and drops) before
/// answering. Answering first would end the stream with RST_STREAM(NO_ERROR), after
/// which the rest of the request is ignored: a malformed frame later in it would go
/// unreported, or be reported, depending on timing. Reading it to its end makes the
/// protocol errors in it deterministic; beyond this much, answering wins.
const DRAIN_LIMIT: usize = 1 << 20;

/// The gRPC service `serve` hosts beside its HTTP routes.
const TEST_SERVICE: &str = "grpc.testing.TestService";

/// gRPC's interop `grpc.testing.TestService`, `grpc.health.v1.Health` (SERVING for
/// the server and TestService), and server reflection v1 and v1alpha describing
/// both: what `grpcurl list`, `describe` and calls need.
async fn grpc_services() -> (tonic_health::server::HealthReporter, GrpcService) {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(TEST_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(steadfast_interop::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let mut server = steadfast_grpc::Server::builder()
        .add_service(steadfast_interop::server::service())
        .add_service(health_service);
    // The descriptors are compiled in: building reflection from them cannot fail
    // unless the build is broken, and then serving without it says so.
    match reflection().build_v1() {
        Ok(v1) => server = server.add_service(v1),
        Err(e) => tracing::warn!(error = %e, "gRPC reflection v1 unavailable"),
    }
    match reflection().build_v1alpha() {
        Ok(v1alpha) => server = server.add_service(v1alpha),
        Err(e) => tracing::warn!(error = %e, "gRPC reflection v1alpha unavailable"),
    }
    (health, server.into_service())
}

fn is_grpc(req: &Request<RecvBody>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

async fn handle(
    req: Request<RecvBody>,
    root: Option<Arc<Path>>,
    mut grpc: MetricsService<GrpcService>,
) -> Result<Response<BoxBody>, Infallible> {
    if is_grpc(&req) {
        let Ok(response) = tower_service::Service::call(&mut grpc, req).await;
        return Ok(response.map(body::boxed));
    }
    let routed_with_body =
        req.method() == Method::POST && matches!(req.uri().path(), "/echo" | "/discard");
    let (parts, body) = req.into_parts();
    let body = if routed_with_body {
        body
    } else {
        match drain(body).await {
            Ok(body) => body,
            // The request failed (reset, malformed): nobody is left to answer.
            Err(()) => return Ok(status(StatusCode::BAD_REQUEST)),
        }
    };
    let req = Request::from_parts(parts, body);
    let path = req.uri().path();
    let response = match (req.method(), path) {
        (&Method::POST, "/echo") => {
            let echo = Echo {
                inner: req.into_body(),
                len: 0,
                done: false,
            };
            Response::new(body::boxed(echo))
        }
        (&Method::POST, "/discard") => discard(req.into_body()).await,
        (&Method::GET | &Method::HEAD, "/") => {
            let mut res = Response::new(body::full(Bytes::from_static(HELLO)));
            let headers = res.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(HELLO.len()));
            res
        }
        (&Method::GET | &Method::HEAD, _) => match root {
            Some(root) => serve_file(&root, path).await,
            None => status(StatusCode::NOT_FOUND),
        },
        _ => status(StatusCode::METHOD_NOT_ALLOWED),
    };
    Ok(response)
}

/// Reads and drops a request body up to [`DRAIN_LIMIT`]; `Err` when it failed.
async fn drain(mut body: RecvBody) -> Result<RecvBody, ()> {
    use http_body_util::BodyExt;
    let mut read = 0;
    while read < DRAIN_LIMIT {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => return Err(()),
        }
    }
    Ok(body)
}

fn status(code: StatusCode) -> Response<BoxBody> {
    let mut res = Response::new(body::empty());
    *res.status_mut() = code;
    res
}

async fn serve_file(root: &Path, path: &str) -> Response<BoxBody> {
    // Only plain relative components: no `..`, no absolute paths.
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return status(StatusCode::NOT_FOUND);
    }
    // Streamed, never read whole: a client that stops reading costs one chunk.
    match file::FileBody::open(&root.join(relative)).await {
        Some(file) => {
            let mut res = Response::new(());
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(file.len()));
            res.map(|()| body::boxed(file))
        }
        None => status(StatusCode::NOT_FOUND),
    }
}

/// Reads the request body to its end, keeping nothing, and answers its length: an
/// upload target that costs the server no more than receiving (the bulk benchmark).
async fn discard(mut body: RecvBody) -> Response<BoxBody> {
    use http_body_util::BodyExt;
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => len += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => return status(StatusCode::BAD_REQUEST),
        }
    }
    let text = format!("{len}\n");
    let mut res = Response::new(body::full(text.clone()));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    res
}

/// Streams the request body back and ends with a trailer carrying its length, so a
/// client can check that nothing was lost without the server buffering the body.
struct Echo {
    inner: RecvBody,
    len: u64,
    done: bool,
}

impl Body for Echo {
    type Data = Bytes;
    type Error = steadfast::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.len += data.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // The request's own trailers are not echoed.
                    Err(_) => continue,
                },
                Poll::Ready(None) => {
                    self.done = true;
                    let mut trailers = HeaderMap::new();
                    trailers.insert("x-echo-length", self.len.into());
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_a_unit_or_off() {
        let ok = |s| parse_timeout(s).unwrap().0;
        assert_eq!(ok("10s"), Some(Duration::from_secs(10)));
        assert_eq!(ok("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(ok("5m"), Some(Duration::from_secs(300)));
        assert_eq!(ok("off"), None);
        for bad in ["10", "s", "1h", "-1s", ""] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }
}
