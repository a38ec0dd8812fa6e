//! `steadfast probe`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use steadfast::{ClientConfig, Error, Layer};

use crate::tap::Tap;

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
    /// Seconds allowed for TCP, TLS and the HTTP/2 handshake.
    #[arg(long, default_value_t = 20)]
    connect_timeout: u64,
}

/// Exit codes (see main.rs).
const EXIT_CONNECT: u8 = 3;
const EXIT_HTTP2: u8 = 4;

pub(crate) async fn run(args: Args) -> u8 {
    let request = match build_request(&args).await {
        Ok(r) => r,
        Err(why) => {
            eprintln!("error: {why}");
            return 2;
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
                return 2;
            }
        }
    } else {
        None
    };
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        tls,
        ..ClientConfig::default()
    };
    let start = Instant::now();
    let io = match steadfast::client::connect_transport(&args.url, &config).await {
        Ok(io) => io,
        Err(e) => return report(&e, EXIT_CONNECT),
    };
    let client = if args.verbose {
        steadfast::client::handshake_for(Tap::new(io, start), &args.url, &config).await
    } else {
        steadfast::client::handshake_for(io, &args.url, &config).await
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => return report(&e, EXIT_CONNECT),
    };
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
    if args.body {
        use std::io::Write;
        let _ = std::io::stdout().write_all(&content);
    }
    if args.verbose {
        eprintln!("[{:9.6}] done", start.elapsed().as_secs_f64());
    }
    client.close();
    0
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
        None if code == EXIT_CONNECT || matches!(e.layer(), Layer::Transport | Layer::Tls) => {
            println!("  fate:       never sent (the connection was not established)")
        }
        None => println!("  fate:       unknown"),
    }
    let safe = e.is_retry_safe() || (e.fate().is_none() && code == EXIT_CONNECT);
    println!("  retry-safe: {}", if safe { "yes" } else { "no" });
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
    code
}
