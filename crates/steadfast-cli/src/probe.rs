//! `steadfast probe`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use std::sync::Mutex;

use steadfast::{ClientConfig, Error};

use crate::tap::{Tap, Transcript};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The URL: http:// for h2c with prior knowledge, https:// for TLS with ALPN h2.
    url: Uri,
    /// Request body; `@FILE` reads it from a file. Implies POST unless -X says otherwise.
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// Extra request header, as 'name: value' (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request")]
    method: Option<Method>,
    /// Print every frame sent and received, with timestamps, on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Print the response body on stdout.
    #[arg(long)]
    body: bool,
    /// Trust the certificates in this PEM file (for https://).
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Accept any server certificate (for https:// test servers only).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Seconds allowed for each step of connecting: name resolution, TCP, TLS and
    /// the HTTP/2 handshake (0: no limit).
    #[arg(long, default_value_t = 20)]
    connect_timeout: u64,
    /// Seconds allowed for the request once connected: the response head and body
    /// (0: no limit). On expiry, or Ctrl-C, probe says what was sent and what arrived.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Exit codes (see main.rs).
const EXIT_USAGE: u8 = 2;
const EXIT_CONNECT: u8 = 3;
const EXIT_HTTP2: u8 = 4;
const EXIT_TIMEOUT: u8 = 5;
const EXIT_INTERRUPTED: u8 = 130;

pub(crate) async fn run(args: Args) -> u8 {
    if !matches!(args.url.scheme_str(), Some("http" | "https")) {
        eprintln!(
            "error: unsupported URL {:?}: probe speaks http:// (h2c) and https:// (TLS)",
            args.url.to_string()
        );
        return EXIT_USAGE;
    }
    let request = match build_request(&args).await {
        Ok(r) => r,
        Err(why) => {
            eprintln!("error: {why}");
            return EXIT_USAGE;
        }
    };
    let tls = if args.url.scheme_str() == Some("https") {
        let roots = match (&args.cacert, args.insecure) {
            (_, true) => steadfast::tls::Roots::InsecureAcceptAny,
            (Some(path), false) => steadfast::tls::Roots::PemFile(path.clone()),
            (None, false) => steadfast::tls::Roots::WebPki,
        };
        match steadfast::tls::client_config(roots) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("error: TLS configuration: {e}");
                return EXIT_USAGE;
            }
        }
    } else {
        None
    };
    let mut config = ClientConfig::default();
    config.connect_timeout = Duration::from_secs(args.connect_timeout);
    config.tls = tls;
    let start = Instant::now();
    let io = match steadfast::client::connect_transport(&args.url, &config).await {
        Ok(io) => io,
        Err(e) => return report(&e, EXIT_CONNECT),
    };
    let tap = Tap::new(io, start, args.verbose);
    let transcript = tap.transcript();
    let client = match steadfast::client::handshake_for(tap, &args.url, &config).await {
        Ok(c) => c,
        Err(e) => return report(&e, EXIT_CONNECT),
    };
    let exchange = exchange(&args, &client, request);
    let limit = async {
        match args.timeout {
            0 => std::future::pending::<()>().await,
            secs => tokio::time::sleep(Duration::from_secs(secs)).await,
        }
    };
    let code = tokio::select! {
        code = exchange => code,
        () = limit => {
            let why = format!("no complete response within {} s (--timeout)", args.timeout);
            stalled(&why, &transcript, EXIT_TIMEOUT)
        }
        _ = tokio::signal::ctrl_c() => stalled("interrupted (Ctrl-C)", &transcript, EXIT_INTERRUPTED),
    };
    if args.verbose {
        eprintln!("[{:9.6}] done", start.elapsed().as_secs_f64());
    }
    client.close();
    code
}

/// Sends the request and prints the response; returns the exit code.
async fn exchange(
    args: &Args,
    client: &steadfast::SendRequest,
    request: Request<Full<Bytes>>,
) -> u8 {
    let response = match client.send(request).await {
        Ok(r) => r,
        Err(e) => return report(&e, EXIT_HTTP2),
    };
    let (parts, mut body) = response.into_parts();
    println!("status: {}", parts.status);
    for (name, value) in &parts.headers {
        println!(
            "header: {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    let mut size = 0usize;
    let mut trailers = None;
    let mut content = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => {
                    size += data.len();
                    if args.body {
                        content.extend_from_slice(&data);
                    }
                }
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
            Err(e) => {
                println!("body: {size} bytes before the failure");
                return report(&e, EXIT_HTTP2);
            }
        }
    }
    println!("body: {size} bytes");
    for (name, value) in trailers.iter().flatten() {
        println!(
            "trailer: {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    if let Some(hint) = intermediary_hint(&parts, &content) {
        println!("hint: {hint}");
    }
    if args.body {
        use std::io::Write;
        let _ = std::io::stdout().write_all(&content);
    }
    0
}

/// A 429 or 5xx gateway status whose body is an HTML page, not what the application
/// serves: most likely written by a proxy or load balancer in front of it.
fn intermediary_hint(parts: &http::response::Parts, body: &[u8]) -> Option<String> {
    let status = parts.status.as_u16();
    if !matches!(status, 429 | 502 | 503 | 504) {
        return None;
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let html = content_type.starts_with("text/html") || body[start..].starts_with(b"<");
    if !html {
        return None;
    }
    let server = parts
        .headers
        .get(http::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(|s| format!(" (server: {s})"))
        .unwrap_or_default();
    Some(format!(
        "an HTML {status} page looks like an HTTP intermediary's error page{server}: a proxy \
         or load balancer answered, and the application behind it may never have seen the \
         request ({})",
        match status {
            429 => "it is rate-limiting",
            502 => "it could not reach or understand the backend",
            503 => "it has no healthy backend, or is overloaded",
            _ => "the backend did not answer it in time",
        }
    ))
}

/// What probe knows when the request neither failed nor finished: the request may be
/// anywhere between the socket and the server's application.
fn stalled(why: &str, transcript: &Mutex<Transcript>, code: u8) -> u8 {
    let (sent, head, lines) = match transcript.lock() {
        Ok(t) => (t.request_sent, t.response_head, t.lines.clone()),
        Err(_) => (false, false, Vec::new()),
    };
    println!("error: {why}");
    println!("  layer:      application (the request was still in progress)");
    println!("  initiator:  the local application");
    let (fate, safe, advice) = match (sent, head) {
        (false, _) => (
            "never sent (its HEADERS never left)",
            "yes",
            "the request never left: the connection stalled before it (see above)",
        ),
        (true, false) => (
            "maybe processed (sent; no response head arrived)",
            "no",
            "the server took the request but never answered: it may be stuck, or slow; \
             retry only if the request is idempotent",
        ),
        (true, true) => (
            "processed (the response head arrived; the body did not finish)",
            "no",
            "the server answered but the body stalled: a slow or stuck stream",
        ),
    };
    println!("  fate:       {fate}");
    println!("  retry-safe: {safe}");
    println!("  advice:     {advice}");
    println!("  transcript: (the last frames, in order)");
    for line in lines {
        println!("    {line}");
    }
    code
}

async fn build_request(args: &Args) -> Result<Request<Full<Bytes>>, String> {
    let body = match &args.data {
        None => Bytes::new(),
        Some(d) => match d.strip_prefix('@') {
            Some(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("{path}: {e}"))?
                .into(),
            None => Bytes::from(d.clone()),
        },
    };
    let method = args.method.clone().unwrap_or(if args.data.is_some() {
        Method::POST
    } else {
        Method::GET
    });
    let mut request = Request::builder().method(method).uri(args.url.clone());
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not 'name: value'"))?;
        let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|e| format!("header value {value:?}: {e}"))?;
        request = request.header(name, value);
    }
    request.body(Full::new(body)).map_err(|e| e.to_string())
}

/// Prints the four-question diagnosis of a failure.
fn report(e: &Error, code: u8) -> u8 {
    println!("error: {e}");
    println!("  layer:      {}", e.layer());
    println!("  initiator:  {}", e.initiator());
    match e.fate() {
        Some(fate) => println!("  fate:       {fate}"),
        None => println!("  fate:       unknown"),
    }
    println!(
        "  retry-safe: {}",
        if e.is_retry_safe() { "yes" } else { "no" }
    );
    if let Some(c) = e.code() {
        println!("  code:       {c} ({:#x}): {}", c.0, c.description());
    }
    if let Some(g) = e.goaway() {
        println!(
            "  goaway:     last_stream_id={} code={} debug_data={:?}",
            g.last_stream_id,
            g.code,
            String::from_utf8_lossy(&g.debug_data)
        );
    }
    if let Some(id) = e.stream_id() {
        println!("  stream:     {id}");
    }
    println!("  advice:     {}", e.advice());
    if let Some(hint) = e.hint() {
        println!("  hint:       {hint}");
    }
    code
}
