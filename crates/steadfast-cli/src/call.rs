//! `steadfast call`: a gRPC client with grpcurl's habits that, when a call fails,
//! says which layer failed, who caused it, whether the server could have processed
//! it, and what to do.
//!
//! Messages are described by the server's reflection service (v1, falling back to
//! v1alpha) and converted from and to JSON as dynamic messages (`prost-reflect`).

use std::time::Duration;

use bytes::Buf;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use steadfast_grpc::{Channel, StatusExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

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
    /// Show the response's headers and trailers (on stderr).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// A gRPC service config (a file, or the JSON itself) for the call: timeouts,
    /// retryPolicy, hedgingPolicy. Each attempt shows with RUST_LOG=steadfast_grpc=debug.
    #[arg(long)]
    service_config: Option<String>,
    /// host:port of the server.
    address: String,
    /// `list [SERVICE]`, `describe SYMBOL`, or `SERVICE/METHOD` to call.
    #[arg(num_args = 1..=2, required = true)]
    what: Vec<String>,
}

/// Exit codes (documented in the binary's help and the README).
const EXIT_USAGE: u8 = 2;
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
    let channel = match channel(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let result = match args.what[0].as_str() {
        "list" => list(&channel, args.what.get(1).map(String::as_str), deadline).await,
        "describe" => match args.what.get(1) {
            Some(symbol) => describe(&channel, symbol, deadline).await,
            None => {
                eprintln!("error: describe needs a symbol (a service, method or message)");
                return EXIT_USAGE;
            }
        },
        method => invoke(&channel, &args, method, deadline).await,
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
        Err(Failure::Call(status)) => report(&status, args.json),
    }
}

enum Failure {
    Usage(String),
    Call(Status),
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self::Call(status)
    }
}

fn channel(args: &Args) -> Result<Channel, String> {
    let scheme = if args.plaintext { "http" } else { "https" };
    let mut builder = Channel::builder(&format!("{scheme}://{}", args.address))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
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
        builder = builder.tls_roots(roots).map_err(|e| e.to_string())?;
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

// ---- reflection ----

/// One reflection request and its answer, through v1, or v1alpha when the server
/// has only that.
macro_rules! reflect_with {
    ($module:ident, $channel:expr, $request:expr, $deadline:expr) => {{
        use tonic_reflection::pb::$module::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$module::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$module::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::$module::ServerReflectionRequest;
        let message_request = match $request {
            Ask::List => MessageRequest::ListServices(String::new()),
            Ask::Symbol(s) => MessageRequest::FileContainingSymbol(s.to_owned()),
            Ask::File(f) => MessageRequest::FileByFilename(f.to_owned()),
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message_request),
        };
        let mut call = tonic::Request::new(tokio_stream::iter([request]));
        call.set_timeout($deadline);
        let mut stream = ServerReflectionClient::new($channel.clone())
            .server_reflection_info(call)
            .await?
            .into_inner();
        match stream.message().await? {
            Some(response) => match response.message_response {
                Some(MessageResponse::ListServicesResponse(list)) => Ok(Answer::Services(
                    list.service.into_iter().map(|s| s.name).collect(),
                )),
                Some(MessageResponse::FileDescriptorResponse(files)) => {
                    Ok(Answer::Files(files.file_descriptor_proto))
                }
                Some(MessageResponse::ErrorResponse(e)) => Err(Status::new(
                    Code::from(e.error_code),
                    format!("reflection: {}", e.error_message),
                )),
                _ => Err(Status::internal("reflection: an unexpected answer")),
            },
            None => Err(Status::internal("reflection: no answer")),
        }
    }};
}

#[derive(Clone, Copy)]
enum Ask<'a> {
    List,
    Symbol(&'a str),
    File(&'a str),
}

enum Answer {
    Services(Vec<String>),
    Files(Vec<Vec<u8>>),
}

async fn reflect_v1(channel: &Channel, ask: Ask<'_>, deadline: Duration) -> Result<Answer, Status> {
    reflect_with!(v1, channel, ask, deadline)
}

async fn reflect_v1alpha(
    channel: &Channel,
    ask: Ask<'_>,
    deadline: Duration,
) -> Result<Answer, Status> {
    reflect_with!(v1alpha, channel, ask, deadline)
}

async fn reflect(channel: &Channel, ask: Ask<'_>, deadline: Duration) -> Result<Answer, Status> {
    match reflect_v1(channel, ask, deadline).await {
        Err(status) if status.code() == Code::Unimplemented && status.fate().is_none() => {
            reflect_v1alpha(channel, ask, deadline).await
        }
        other => other,
    }
}

/// The descriptors of `symbol` and everything its file imports.
async fn pool_for(
    channel: &Channel,
    symbol: &str,
    deadline: Duration,
) -> Result<DescriptorPool, Failure> {
    let Answer::Files(files) = reflect(channel, Ask::Symbol(symbol), deadline).await? else {
        return Err(Failure::Usage("reflection: an unexpected answer".into()));
    };
    let decode = |bytes: Vec<u8>| {
        prost_types::FileDescriptorProto::decode(bytes.as_slice())
            .map_err(|e| Failure::Usage(format!("reflection sent a bad descriptor: {e}")))
    };
    let mut protos = Vec::new();
    for bytes in files {
        protos.push(decode(bytes)?);
    }
    // Servers may send the file alone (tonic-reflection does): ask for each import
    // not sent yet, by file name, until every one is here.
    let mut i = 0;
    while i < protos.len() {
        let missing: Vec<String> = protos[i]
            .dependency
            .iter()
            .filter(|d| !protos.iter().any(|p| p.name() == d.as_str()))
            .cloned()
            .collect();
        for name in missing {
            if protos.len() > 256 {
                return Err(Failure::Usage("reflection: more than 256 files".into()));
            }
            if let Answer::Files(files) = reflect(channel, Ask::File(&name), deadline).await? {
                for bytes in files {
                    let file = decode(bytes)?;
                    if !protos.iter().any(|p| p.name() == file.name()) {
                        protos.push(file);
                    }
                }
            }
        }
        i += 1;
    }
    // Dependencies first: add what can be added until nothing is left.
    let mut pool = DescriptorPool::new();
    while !protos.is_empty() {
        let before = protos.len();
        let mut rest = Vec::new();
        for file in protos {
            let ready = file
                .dependency
                .iter()
                .all(|d| pool.get_file_by_name(d).is_some());
            if ready {
                pool.add_file_descriptor_proto(file)
                    .map_err(|e| Failure::Usage(format!("reflection: {e}")))?;
            } else {
                rest.push(file);
            }
        }
        if rest.len() == before {
            return Err(Failure::Usage(format!(
                "reflection: missing imports for {}",
                rest.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        protos = rest;
    }
    Ok(pool)
}

async fn list(
    channel: &Channel,
    service: Option<&str>,
    deadline: Duration,
) -> Result<Vec<String>, Failure> {
    match service {
        None => match reflect(channel, Ask::List, deadline).await? {
            Answer::Services(mut names) => {
                names.sort();
                Ok(names)
            }
            Answer::Files(_) => Err(Failure::Usage("reflection: an unexpected answer".into())),
        },
        Some(service) => {
            let pool = pool_for(channel, service, deadline).await?;
            let service = pool
                .get_service_by_name(service)
                .ok_or_else(|| Failure::Usage(format!("no service {service} on the server")))?;
            Ok(service
                .methods()
                .map(|m| m.full_name().to_owned())
                .collect())
        }
    }
}

async fn describe(
    channel: &Channel,
    symbol: &str,
    deadline: Duration,
) -> Result<Vec<String>, Failure> {
    let lookup = symbol.rsplit_once('.').map_or(symbol, |(s, _)| s);
    let pool = match pool_for(channel, symbol, deadline).await {
        Ok(pool) => pool,
        // A method: reflection knows it by its service.
        Err(_) => pool_for(channel, lookup, deadline).await?,
    };
    if let Some(service) = pool.get_service_by_name(symbol) {
        let mut lines = vec![format!("{} is a service:", service.full_name())];
        lines.push(format!("service {} {{", service.name()));
        for m in service.methods() {
            lines.push(format!("  {};", method_line(&m)));
        }
        lines.push("}".into());
        return Ok(lines);
    }
    if let Some(message) = pool.get_message_by_name(symbol) {
        let mut lines = vec![format!("{} is a message:", message.full_name())];
        lines.push(format!("message {} {{", message.name()));
        for f in message.fields() {
            lines.push(format!("  {:?} {} = {};", f.kind(), f.name(), f.number()));
        }
        lines.push("}".into());
        return Ok(lines);
    }
    if let Some(service) = pool.get_service_by_name(lookup) {
        let method = symbol.rsplit('.').next().unwrap_or_default();
        if let Some(m) = service.methods().find(|m| m.name() == method) {
            return Ok(vec![
                format!("{} is a method:", m.full_name()),
                method_line(&m),
            ]);
        }
    }
    Err(Failure::Usage(format!("no symbol {symbol} on the server")))
}

fn method_line(m: &MethodDescriptor) -> String {
    let stream = |s: bool| if s { "stream " } else { "" };
    format!(
        "rpc {} ( {}.{} ) returns ( {}.{} )",
        m.name(),
        stream(m.is_client_streaming()),
        m.input().full_name(),
        stream(m.is_server_streaming()),
        m.output().full_name()
    )
}

// ---- calling ----

async fn invoke(
    channel: &Channel,
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
    let pool = pool_for(channel, service, deadline).await?;
    let Some(svc) = pool.get_service_by_name(service) else {
        return Err(Failure::Usage(format!(
            "no service {service} on the server (reflection)"
        )));
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

// ---- the diagnosis ----

/// Prints what failed and returns the exit code.
fn report(status: &Status, json: bool) -> u8 {
    let error = status.steadfast_error();
    // A response without grpc-status: an HTTP answer, not the gRPC application's.
    let http_answer = error.is_none() && status.message().starts_with("the server answered HTTP");
    let (layer, who) = match error {
        None if http_answer => (
            "HTTP".to_owned(),
            "the server, or a proxy or load balancer in the path (not a gRPC answer)".to_owned(),
        ),
        Some(e) => (e.layer().to_string(), e.initiator().to_string()),
        None => (
            "gRPC status".to_owned(),
            "the server's application (a grpc-status it sent)".to_owned(),
        ),
    };
    let fate = match status.fate() {
        Some(f) => f.to_string(),
        None if http_answer => {
            "unknown: something in the path answered; the gRPC server may never have seen it"
                .to_owned()
        }
        None => "processed (the server answered with a status)".to_owned(),
    };
    let retry_safe = status.is_retry_safe();
    let advice = match error {
        Some(e) => e.hint().map(str::to_owned).unwrap_or_else(|| {
            if retry_safe {
                "the server never saw the call: fix the cause above, then send it again".into()
            } else {
                "the call may have been processed: send it again only if it is idempotent".into()
            }
        }),
        None if http_answer => "check the address and any proxy in between: it does not speak gRPC here (a 502/503/504 is usually the load balancer's own answer)".to_owned(),
        None => advice_for(status.code()).to_owned(),
    };
    let code = match error {
        None if http_answer => EXIT_TRANSPORT,
        None => EXIT_STATUS_BASE + status.code() as u8,
        Some(e) if e.fate() == Some(steadfast::Fate::NotSent) && e.goaway().is_none() => {
            EXIT_NOT_CONNECTED
        }
        Some(_) if status.code() == Code::DeadlineExceeded => {
            EXIT_STATUS_BASE + status.code() as u8
        }
        Some(_) => EXIT_TRANSPORT,
    };
    if json {
        let value = serde_json::json!({
            "ok": false,
            "code": format!("{:?}", status.code()),
            "message": status.message(),
            "layer": layer,
            "initiator": who,
            "fate": fate,
            "retry_safe": retry_safe,
            "goaway": status.goaway().map(|g| g.to_string()),
            "advice": advice,
            "exit": code,
        });
        println!("{value}");
    } else {
        eprintln!("error: {:?}: {}", status.code(), status.message());
        eprintln!("  layer:      {layer}");
        eprintln!("  initiator:  {who}");
        eprintln!("  fate:       {fate}");
        eprintln!("  retry-safe: {}", if retry_safe { "yes" } else { "no" });
        if let Some(goaway) = status.goaway() {
            eprintln!("  goaway:     {goaway}");
        }
        eprintln!("  advice:     {advice}");
    }
    code
}

fn advice_for(code: Code) -> &'static str {
    match code {
        Code::Unimplemented => "the server has no such method or service: check the name and the server's version (`list`)",
        Code::DeadlineExceeded => "the server gave up within the deadline: raise --deadline, or find what is slow behind it",
        Code::Unavailable => "the server says it cannot serve now: retry later, or elsewhere",
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            "the server refused the request as it is: fix the request"
        }
        Code::Unauthenticated | Code::PermissionDenied => "credentials: see -H for metadata such as authorization",
        _ => "an answer of the server's application: see its message",
    }
}
