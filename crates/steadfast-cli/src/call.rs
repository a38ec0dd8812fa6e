//! `steadfast call`: a gRPC client with grpcurl's habits that, when a call fails,
//! says which layer failed, who caused it, whether the server could have processed
//! it, and what to do.
//!
//! Messages are described by the server's reflection service (v1, falling back to
//! v1alpha) or by `.proto` files compiled in-process (`protox`), and converted from
//! and to JSON as dynamic messages (`prost-reflect`).

mod descriptors;
mod details;
mod diagnosis;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Buf;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use steadfast_grpc::Channel;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use descriptors::Source;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// h2c (prior knowledge) instead of TLS.
    #[arg(long)]
    plaintext: bool,
    /// Trust this PEM certificate (a CA, or the server's own) for TLS.
    #[arg(long)]
    cacert: Option<std::path::PathBuf>,
    /// Accept any server certificate (diagnostics against test servers only).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Request metadata, `name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The call's deadline: a number and a unit (ms, s, m).
    #[arg(long, default_value = "10s")]
    deadline: String,
    /// The request message as JSON (`-d @FILE` reads a file, `-d -` stdin).
    /// Default: `{}`.
    #[arg(short = 'd', long)]
    data: Option<String>,
    /// Print the result, or the diagnosis, as one JSON object.
    #[arg(long)]
    json: bool,
    /// Show every HTTP/2 frame sent and received, with timestamps, and the
    /// response's headers and trailers (on stderr).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// A gRPC service config (a file, or the JSON itself) for the call: timeouts,
    /// retryPolicy, hedgingPolicy. With -v, each attempt shows with its status and
    /// the delay before the next.
    #[arg(long)]
    service_config: Option<String>,
    /// Describe messages with these `.proto` files (compiled here, with `protox`)
    /// instead of asking the server's reflection service (repeatable).
    #[arg(long = "proto", value_name = "FILE")]
    protos: Vec<PathBuf>,
    /// Where `--proto` files and their imports are found (repeatable). Default: the
    /// directory of each `--proto` file.
    #[arg(short = 'I', long = "import-path", value_name = "DIR")]
    import_paths: Vec<PathBuf>,
    /// Present this PEM certificate chain to the server (mutual TLS); needs --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Send a keepalive PING after this long without reading anything (e.g. `10s`);
    /// no answer within --keepalive-timeout and the connection is declared dead.
    #[arg(long)]
    keepalive_time: Option<String>,
    /// How long a keepalive PING may go unanswered.
    #[arg(long, default_value = "20s")]
    keepalive_timeout: String,
    /// host:port of the server.
    address: String,
    /// `list [SERVICE]`, `describe SYMBOL`, or `SERVICE/METHOD` to call.
    #[arg(num_args = 1..=2, required = true)]
    what: Vec<String>,
}

impl Args {
    /// `-v`: frames, headers and trailers, and each attempt of a retry policy.
    pub(crate) fn verbose(&self) -> bool {
        self.verbose
    }
}

/// Exit codes (documented in the binary's help and the README).
pub(super) const EXIT_USAGE: u8 = 2;
const EXIT_NOT_CONNECTED: u8 = 3;
const EXIT_TRANSPORT: u8 = 4;
/// A gRPC status from the server: 10 + its code.
const EXIT_STATUS_BASE: u8 = 10;

pub(crate) async fn run(args: Args) -> u8 {
    let deadline = match parse_duration(&args.deadline) {
        Some(d) => d,
        None => {
            eprintln!(
                "error: --deadline {:?}: a number and a unit (ms, s, m)",
                args.deadline
            );
            return EXIT_USAGE;
        }
    };
    let channel = match channel(&args, deadline) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let source = if args.protos.is_empty() {
        Source::Reflection
    } else {
        match descriptors::compile(&args.protos, &args.import_paths) {
            Ok(pool) => Source::Files(pool),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    };
    let result = match args.what[0].as_str() {
        "list" => {
            let service = args.what.get(1).map(String::as_str);
            descriptors::list(&channel, &source, service, deadline).await
        }
        "describe" => match args.what.get(1) {
            Some(symbol) => descriptors::describe(&channel, &source, symbol, deadline).await,
            None => {
                eprintln!("error: describe needs a symbol (a service, method or message)");
                return EXIT_USAGE;
            }
        },
        method => invoke(&channel, &source, &args, method, deadline).await,
    };
    match result {
        Ok(lines) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for line in lines {
                // A reader that went away (`| head`) is not our failure.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            0
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            EXIT_USAGE
        }
        Err(Failure::Call(status, elapsed)) => {
            let mut context = diagnosis::Context {
                budget: deadline,
                elapsed,
                from_files: source.is_files(),
                unimplemented: None,
                tls: !args.plaintext,
                client_cert: args.cert.is_some(),
            };
            if let Some(method) = args.what.first().filter(|_| args.what.len() == 1) {
                context.unimplemented = diagnosis::unimplemented(&channel, &status, method).await;
            }
            diagnosis::report(&status, &context, args.json)
        }
    }
}

enum Failure {
    Usage(String),
    /// The call failed; with how long it had run when it did (the method's own call,
    /// not the reflection before it).
    Call(Status, Option<Duration>),
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self::Call(status, None)
    }
}

/// Each step of connecting may take this long, and at most eight tenths of the call's
/// deadline: a connection that stalls is then named by the step that stalled, not
/// reported as a deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn channel(args: &Args, deadline: Duration) -> Result<Channel, String> {
    let port = args.address.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
    if !matches!(port, Some(Ok(_))) {
        return Err(format!("{:?}: the address is host:port", args.address));
    }
    let scheme = if args.plaintext { "http" } else { "https" };
    let connect_timeout = CONNECT_TIMEOUT.min(deadline * 8 / 10);
    // Halfway between the connect timeout and the deadline: a server that sends no
    // SETTINGS is a stalled handshake (the connect timeout, first); one that sends its
    // own but never acknowledges ours is this timeout; both come before the deadline.
    let settings_timeout = connect_timeout + deadline.saturating_sub(connect_timeout) / 2;
    let mut builder = Channel::builder(&format!("{scheme}://{}", args.address))
        .map_err(|e| e.to_string())?
        .connect_timeout(connect_timeout)
        .settings_timeout(settings_timeout)
        // One shot: a diagnosis tool reports the first failure, it does not wait.
        .wait_for_ready(false);
    if !args.plaintext {
        let roots = if args.insecure {
            steadfast::tls::Roots::InsecureAcceptAny
        } else if let Some(path) = &args.cacert {
            steadfast::tls::Roots::PemFile(path.clone())
        } else {
            steadfast::tls::Roots::WebPki
        };
        builder = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => {
                let (chain, key) = identity(cert, key)?;
                builder.tls_identity(roots, chain, key)
            }
            _ => builder.tls_roots(roots),
        }
        .map_err(|e| e.to_string())?;
    } else if args.cert.is_some() {
        return Err("--cert: a client certificate needs TLS (drop --plaintext)".into());
    }
    if let Some(time) = &args.keepalive_time {
        let time = parse_duration(time)
            .ok_or_else(|| format!("--keepalive-time {time:?}: a number and a unit (ms, s, m)"))?;
        let timeout = parse_duration(&args.keepalive_timeout).ok_or_else(|| {
            format!(
                "--keepalive-timeout {:?}: a number and a unit (ms, s, m)",
                args.keepalive_timeout
            )
        })?;
        builder = builder.keepalive(time, timeout, false);
    }
    if args.verbose {
        // Every frame of every connection, with the time since the command started
        // (probe's tap, on stderr).
        let start = Instant::now();
        builder = builder.wrap_transport(move |io| Box::new(crate::tap::Tap::new(io, start, true)));
    }
    if let Some(config) = &args.service_config {
        let json = if config.trim_start().starts_with('{') {
            config.clone()
        } else {
            std::fs::read_to_string(config)
                .map_err(|e| format!("--service-config {config}: {e}"))?
        };
        let config = steadfast_grpc::ServiceConfig::from_json(&json).map_err(|e| e.to_string())?;
        builder = builder.service_config(config);
    }
    Ok(builder.build())
}

/// The certificate chain and private key of `--cert` and `--key`.
fn identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<
    (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    String,
> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--cert {}: no certificate in it", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
    Ok((chain, key))
}

fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    })
}

// ---- calling ----

async fn invoke(
    channel: &Channel,
    source: &Source,
    args: &Args,
    target: &str,
    deadline: Duration,
) -> Result<Vec<String>, Failure> {
    let (service, method) = target
        .rsplit_once('/')
        .or_else(|| target.rsplit_once('.'))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{target:?}: expected list, describe or SERVICE/METHOD"
            ))
        })?;
    let pool = descriptors::pool_for(channel, source, service, deadline).await?;
    let Some(svc) = pool.get_service_by_name(service) else {
        let whose = if source.is_files() {
            "in the --proto files"
        } else {
            "on the server (reflection)"
        };
        return Err(Failure::Usage(format!("no service {service} {whose}")));
    };
    let Some(m) = svc.methods().find(|m| m.name() == method) else {
        return Err(Failure::Usage(format!(
            "the server's {service} has no method {method}; it has: {}",
            svc.methods()
                .map(|m| m.name().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let json = match args.data.as_deref() {
        None => "{}".to_owned(),
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| Failure::Usage(format!("-d -: {e}")))?;
            s
        }
        Some(d) if d.starts_with('@') => {
            std::fs::read_to_string(&d[1..]).map_err(|e| Failure::Usage(format!("-d {d}: {e}")))?
        }
        Some(d) => d.to_owned(),
    };
    // One JSON object per request message (several for client streaming).
    let mut messages = Vec::new();
    let mut de = serde_json::Deserializer::from_str(&json);
    loop {
        let message = DynamicMessage::deserialize(m.input(), &mut de)
            .map_err(|e| Failure::Usage(format!("-d: not a {}: {e}", m.input().full_name())))?;
        messages.push(message);
        if de.end().is_ok() {
            break;
        }
    }
    if messages.len() > 1 && !m.is_client_streaming() {
        return Err(Failure::Usage(format!(
            "-d holds {} messages, but {} takes one",
            messages.len(),
            m.full_name()
        )));
    }
    let mut request = tonic::Request::new(());
    request.set_timeout(deadline);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::Usage(format!("-H {header:?}: expected `name: value`")))?;
        let name = name.trim().to_ascii_lowercase();
        let bad = |e: &dyn std::fmt::Display| Failure::Usage(format!("-H {header:?}: {e}"));
        if name.ends_with("-bin") {
            // Binary metadata: the value is given in base64, as on the wire.
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(value.trim().trim_end_matches('='))
                .map_err(|e| bad(&e))?;
            let key = tonic::metadata::BinaryMetadataKey::from_bytes(name.as_bytes())
                .map_err(|e| bad(&e))?;
            request.metadata_mut().insert_bin(
                key,
                tonic::metadata::BinaryMetadataValue::from_bytes(&bytes),
            );
        } else {
            let key =
                tonic::metadata::MetadataKey::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
            let value = value.trim().parse().map_err(|e| bad(&e))?;
            request.metadata_mut().insert(key, value);
        }
    }
    let path: http::uri::PathAndQuery = format!("/{service}/{method}")
        .parse()
        .map_err(|e| Failure::Usage(format!("{target}: {e}")))?;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let codec = DynamicCodec(m.output());
    let to_json = |msg: &DynamicMessage| serde_json::to_string(msg).unwrap_or_default();
    let (metadata, extensions, ()) = request.into_parts();
    let started = Instant::now();
    let result = async {
        if m.is_client_streaming() {
            let request =
                tonic::Request::from_parts(metadata, extensions, tokio_stream::iter(messages));
            let response = grpc.streaming(request, path, codec).await?;
            show("header", args.verbose, response.metadata());
            let mut stream = response.into_inner();
            let mut lines = Vec::new();
            while let Some(reply) = stream.message().await? {
                lines.push(to_json(&reply));
            }
            if let Some(trailers) = stream.trailers().await? {
                show("trailer", args.verbose, &trailers);
            }
            return Ok(lines);
        }
        let message = messages
            .pop()
            .unwrap_or_else(|| DynamicMessage::new(m.input()));
        let request = tonic::Request::from_parts(metadata, extensions, message);
        if m.is_server_streaming() {
            let response = grpc.server_streaming(request, path, codec).await?;
            show("header", args.verbose, response.metadata());
            let mut stream = response.into_inner();
            let mut lines = Vec::new();
            while let Some(reply) = stream.message().await? {
                lines.push(to_json(&reply));
            }
            if let Some(trailers) = stream.trailers().await? {
                show("trailer", args.verbose, &trailers);
            }
            Ok(lines)
        } else {
            let reply = grpc.unary(request, path, codec).await?;
            // tonic merges a unary call's trailers into its metadata.
            show("header/trailer", args.verbose, reply.metadata());
            Ok(vec![to_json(reply.get_ref())])
        }
    }
    .await;
    result.map_err(|status: Status| Failure::Call(status, Some(started.elapsed())))
}

/// With `-v`, prints metadata as `< kind name: value` lines on stderr.
fn show(kind: &str, verbose: bool, metadata: &tonic::metadata::MetadataMap) {
    if !verbose {
        return;
    }
    for (name, value) in metadata.clone().into_headers().iter() {
        eprintln!(
            "< {kind} {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
}

/// Encodes and decodes dynamic messages of a method found by reflection.
#[derive(Clone)]
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicCodec;
    type Decoder = DynamicCodec;

    fn encoder(&mut self) -> Self::Encoder {
        self.clone()
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.clone()
    }
}

impl Encoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

impl Decoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.0.clone(), bytes)
            .map(Some)
            .map_err(|e| {
                Status::internal(format!("the response is not a {}: {e}", self.0.full_name()))
            })
    }
}
