//! Where `call` learns the server's messages: its reflection service (v1, falling
//! back to v1alpha), or `.proto` files compiled in-process with `protox`.

use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use prost_reflect::{DescriptorPool, MethodDescriptor};
use steadfast_grpc::{Channel, StatusExt};
use tonic::{Code, Status};

use super::Failure;

/// The descriptors of the call: asked of the server, or compiled from `--proto`.
pub(super) enum Source {
    Reflection,
    Files(DescriptorPool),
}

impl Source {
    pub(super) fn is_files(&self) -> bool {
        matches!(self, Self::Files(_))
    }
}

/// Compiles `files` (and what they import, found in `includes`; without any, in
/// each file's own directory) into one pool, as protoc would.
pub(super) fn compile(files: &[PathBuf], includes: &[PathBuf]) -> Result<DescriptorPool, String> {
    let mut includes = includes.to_vec();
    if includes.is_empty() {
        for file in files {
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !includes.contains(&dir) {
                includes.push(dir);
            }
        }
    }
    let said = |e: protox::Error| match e.file() {
        Some(file) => format!("--proto {file}: {e}"),
        None => format!("--proto: {e}"),
    };
    let mut compiler = protox::Compiler::new(&includes).map_err(said)?;
    compiler.include_imports(true);
    compiler.open_files(files).map_err(said)?;
    Ok(compiler.descriptor_pool())
}

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
pub(super) enum Ask<'a> {
    List,
    Symbol(&'a str),
    File(&'a str),
}

pub(super) enum Answer {
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

pub(super) async fn reflect(
    channel: &Channel,
    ask: Ask<'_>,
    deadline: Duration,
) -> Result<Answer, Status> {
    match reflect_v1(channel, ask, deadline).await {
        Err(status) if status.code() == Code::Unimplemented && status.fate().is_none() => {
            reflect_v1alpha(channel, ask, deadline).await
        }
        other => other,
    }
}

/// The descriptors of `symbol` and everything its file imports.
pub(super) async fn pool_for(
    channel: &Channel,
    source: &Source,
    symbol: &str,
    deadline: Duration,
) -> Result<DescriptorPool, Failure> {
    if let Source::Files(pool) = source {
        return Ok(pool.clone());
    }
    let answer = match reflect(channel, Ask::Symbol(symbol), deadline).await {
        // The reflection service's own answer: the server has no such symbol. Nothing
        // was called, so this is the caller's name to fix, with the names there are.
        Err(status) if status.code() == Code::NotFound && status.steadfast_error().is_none() => {
            let offered = match reflect(channel, Ask::List, deadline).await {
                Ok(Answer::Services(mut names)) => {
                    names.sort();
                    format!("; it offers: {}", names.join(", "))
                }
                _ => String::new(),
            };
            return Err(Failure::Usage(format!(
                "the server has no {symbol} (its reflection says: {}){offered}",
                status.message()
            )));
        }
        other => other?,
    };
    let Answer::Files(files) = answer else {
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

pub(super) async fn list(
    channel: &Channel,
    source: &Source,
    service: Option<&str>,
    deadline: Duration,
) -> Result<Vec<String>, Failure> {
    match service {
        None if source.is_files() => {
            let pool = pool_for(channel, source, "", deadline).await?;
            let mut names: Vec<String> =
                pool.services().map(|s| s.full_name().to_owned()).collect();
            names.sort();
            Ok(names)
        }
        None => match reflect(channel, Ask::List, deadline).await? {
            Answer::Services(mut names) => {
                names.sort();
                Ok(names)
            }
            Answer::Files(_) => Err(Failure::Usage("reflection: an unexpected answer".into())),
        },
        Some(service) => {
            let pool = pool_for(channel, source, service, deadline).await?;
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

pub(super) async fn describe(
    channel: &Channel,
    source: &Source,
    symbol: &str,
    deadline: Duration,
) -> Result<Vec<String>, Failure> {
    let lookup = symbol.rsplit_once('.').map_or(symbol, |(s, _)| s);
    let pool = match pool_for(channel, source, symbol, deadline).await {
        Ok(pool) => pool,
        // A method: reflection knows it by its service.
        Err(_) => pool_for(channel, source, lookup, deadline).await?,
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
