//! The diagnosis of a failed call: which layer, who, the fate, whether a retry is
//! safe, what the peer said, and what to do.

use std::time::Duration;

use steadfast_grpc::{Channel, StatusExt};
use tonic::{Code, Status};

use super::descriptors::{reflect, Answer, Ask};
use super::{EXIT_NOT_CONNECTED, EXIT_STATUS_BASE, EXIT_TRANSPORT};

/// What the call knew besides its status.
pub(super) struct Context {
    /// The call's deadline.
    pub(super) budget: Duration,
    /// How long the method's call had run when it failed (`None`: it failed in
    /// reflection, before).
    pub(super) elapsed: Option<Duration>,
    /// The messages came from `--proto` files, not from the server.
    pub(super) from_files: bool,
    /// For UNIMPLEMENTED from the server: what its reflection says of the method.
    pub(super) unimplemented: Option<Unimplemented>,
    /// The call went over TLS; `client_cert`: presenting `--cert`.
    pub(super) tls: bool,
    pub(super) client_cert: bool,
}

/// Why the server answered UNIMPLEMENTED, as its reflection service tells it.
#[derive(Debug)]
pub(super) enum Unimplemented {
    /// The server has no reflection either: which is missing cannot be told.
    NoReflection,
    /// No service of that name; `same_name` is one of another package with the same
    /// short name (the `.proto` files' package differs from the server's).
    UnknownService {
        service: String,
        offered: Vec<String>,
        same_name: Option<String>,
    },
    /// The service exists, without that method.
    UnknownMethod {
        service: String,
        method: String,
        methods: Vec<String>,
    },
    /// The server lists the method: its handler answered UNIMPLEMENTED.
    Listed,
}

/// A deadline status counts as the server enforcing the one this call sent when it
/// arrived after this share of the budget.
const INHERITED_SHARE: f64 = 0.75;

/// After an UNIMPLEMENTED from the server (not from this library), asks the server's
/// reflection which part of `target` (`SERVICE/METHOD`) it does not know.
pub(super) async fn unimplemented(
    channel: &Channel,
    status: &Status,
    target: &str,
) -> Option<Unimplemented> {
    if status.code() != Code::Unimplemented || status.steadfast_error().is_some() {
        return None;
    }
    let (service, method) = target
        .rsplit_once('/')
        .or_else(|| target.rsplit_once('.'))?;
    let deadline = Duration::from_secs(5);
    let offered = match reflect(channel, Ask::List, deadline).await {
        Ok(Answer::Services(names)) => names,
        _ => return Some(Unimplemented::NoReflection),
    };
    if !offered.iter().any(|s| s == service) {
        let short = |s: &str| s.rsplit('.').next().unwrap_or(s).to_owned();
        let same_name = offered.iter().find(|s| short(s) == short(service)).cloned();
        return Some(Unimplemented::UnknownService {
            service: service.to_owned(),
            offered,
            same_name,
        });
    }
    let methods =
        match super::descriptors::pool_for(channel, &super::Source::Reflection, service, deadline)
            .await
        {
            Ok(pool) => pool
                .get_service_by_name(service)
                .map(|s| s.methods().map(|m| m.name().to_owned()).collect::<Vec<_>>()),
            Err(_) => None,
        };
    match methods {
        Some(methods) if !methods.iter().any(|m| m == method) => {
            Some(Unimplemented::UnknownMethod {
                service: service.to_owned(),
                method: method.to_owned(),
                methods,
            })
        }
        Some(_) => Some(Unimplemented::Listed),
        None => Some(Unimplemented::NoReflection),
    }
}

/// A TLS connection the server closed (or ended with an alert) before its HTTP/2
/// SETTINGS: with TLS 1.3, how a server that wants a client certificate it did not
/// get, or did not like, answers.
fn closed_after_tls_handshake(e: &steadfast::Error) -> bool {
    let text = e.to_string();
    e.fate() == Some(steadfast::Fate::NotSent)
        && e.layer() == steadfast::Layer::Transport
        && text.contains("HTTP/2 handshake")
        && (e.io_error_kind() == Some(std::io::ErrorKind::UnexpectedEof)
            || text.contains("close_notify")
            || text.contains("alert"))
}

/// h2c was sent to an HTTP/1 server: it answered the preface with a status line or a
/// page (the library quotes the first bytes in its GOAWAY's debug data).
fn speaks_http1(status: &Status) -> bool {
    status.goaway().is_some_and(|g| {
        let debug = String::from_utf8_lossy(&g.debug_data);
        debug.starts_with("the server's first bytes are not HTTP/2")
            && ["HTTP/1.", "HTTP/0.9", "<!DOCTYPE", "<html", "<HTML"]
                .iter()
                .any(|w| debug.contains(w))
    })
}

/// h2c was sent to a TLS server: the library saw a TLS record where the server's
/// SETTINGS belonged, and closed the connection saying so.
fn speaks_tls(status: &Status) -> bool {
    status
        .goaway()
        .is_some_and(|g| g.debug_data.starts_with(b"the server answered with TLS"))
}

/// The HTTP status of an answer without grpc-status, from the channel's message.
fn http_status(status: &Status) -> Option<u16> {
    let rest = status.message().strip_prefix("the server answered HTTP ")?;
    rest.get(..3)?.parse().ok()
}

/// Prints what failed and returns the exit code.
pub(super) fn report(status: &Status, context: &Context, json: bool) -> u8 {
    let error = status.steadfast_error();
    // A response without grpc-status: an HTTP answer, not the gRPC application's.
    let http = http_status(status);
    let http_answer = error.is_none() && http.is_some();
    let missing_status = error.is_none() && status.message().starts_with(MISSING_STATUS);
    let deadline = Deadline::of(status, context);
    // Reflection itself (v1, then v1alpha) is what the server does not implement.
    let no_reflection = error.is_none()
        && status.code() == Code::Unimplemented
        && context.elapsed.is_none()
        && !context.from_files;
    let no_handler = no_reflection
        || error.is_none()
            && matches!(
                context.unimplemented,
                Some(Unimplemented::UnknownService { .. } | Unimplemented::UnknownMethod { .. })
            );
    let refused_client = context.tls && error.is_some_and(closed_after_tls_handshake);
    let (layer, who) = match error {
        Some(_) if refused_client => (
            "TLS".to_owned(),
            "the peer (it ended the connection right after the TLS handshake)".to_owned(),
        ),
        None if http_answer => (
            "HTTP".to_owned(),
            "the server, or a proxy or load balancer in the path (not a gRPC answer)".to_owned(),
        ),
        Some(e) => (e.layer().to_string(), e.initiator().to_string()),
        None if missing_status => (
            "HTTP".to_owned(),
            "a proxy in the path, or the server's gRPC library (the response ended without grpc-status)"
                .to_owned(),
        ),
        None => match (&deadline, &context.unimplemented) {
            (Some(Deadline::Inherited), _) => (
                "gRPC status".to_owned(),
                "the server's gRPC library or handler, enforcing the deadline this call sent".to_owned(),
            ),
            _ if no_reflection => (
                "gRPC status".to_owned(),
                "the server's gRPC library (no reflection service is registered)".to_owned(),
            ),
            (_, Some(Unimplemented::NoReflection)) => (
                "gRPC status".to_owned(),
                "the server: its gRPC library (no such path) or its handler; without reflection, which cannot be told".to_owned(),
            ),
            (_, Some(Unimplemented::UnknownService { .. } | Unimplemented::UnknownMethod { .. })) => (
                "gRPC status".to_owned(),
                "the server's gRPC library (no handler is registered for this path)".to_owned(),
            ),
            _ => (
                "gRPC status".to_owned(),
                "the server's application (a grpc-status it sent)".to_owned(),
            ),
        },
    };
    let fate = match status.fate() {
        Some(f) => f.to_string(),
        None if http_answer => {
            "unknown: something in the path answered; the gRPC server may never have seen it"
                .to_owned()
        }
        None if missing_status => "unknown: a response began (HTTP 200, application/grpc) but ended without grpc-status; the server may have processed it".to_owned(),
        None if no_handler => "not processed: the server's gRPC library has no handler for this path".to_owned(),
        None => "processed (the server answered with a status)".to_owned(),
    };
    // No handler exists for the path: nothing could have run, so sending it again is
    // safe (if useless until the name is fixed).
    let retry_safe = status.is_retry_safe() || no_handler;
    let advice = match error {
        Some(_) if refused_client && context.client_cert => "the server closed the connection right after the TLS handshake: it most likely rejected this client's certificate (TLS 1.3 reports that only after the handshake); check that --cert is signed by a CA the server trusts for clients".to_owned(),
        Some(_) if refused_client => "the server closed the connection right after the TLS handshake: it most likely requires a client certificate (TLS 1.3 reports that only after the handshake): give one with --cert and --key".to_owned(),
        Some(_) if speaks_http1(status) => "this port speaks HTTP/1.x, not HTTP/2: use the server's gRPC port, or enable h2c (prior knowledge) there".to_owned(),
        Some(_) if speaks_tls(status) => "the server speaks TLS on this port: drop --plaintext (and trust its certificate with --cacert, or -k against a test server)".to_owned(),
        Some(e) if e.is_deadline_exceeded() => format!(
            "this client's deadline ({}) passed before the server answered: raise --deadline \
             if the call needs longer, or find what is slow; {}",
            humantime(context.budget),
            e.advice()
        ),
        Some(e) if e.io_error_kind() == Some(std::io::ErrorKind::ConnectionReset) => format!(
            "the server's side reset the connection (a process that crashed or was killed, or \
             a proxy or firewall dropping it): {}",
            e.advice()
        ),
        Some(e) => e.hint().unwrap_or_else(|| e.advice()).to_owned(),
        None if missing_status => "something in the path drops HTTP/2 trailers (an HTTP/1.1 hop, or a proxy without trailer support), or the server's gRPC library ended the stream early: let gRPC through end to end over HTTP/2".to_owned(),
        None if http_answer => http_advice(http.unwrap_or_default()).to_owned(),
        None if no_reflection => {
            "the server has no reflection service (neither v1 nor v1alpha): describe its messages with --proto FILE (and -I DIR)".to_owned()
        }
        None => match (&deadline, &context.unimplemented) {
            (Some(d), _) => d.advice(context),
            (_, Some(u)) => u.advice(context.from_files),
            _ => advice_for(status.code()).to_owned(),
        },
    };
    let code = match error {
        None if http_answer || missing_status => EXIT_TRANSPORT,
        None => EXIT_STATUS_BASE + status.code() as u8,
        // Nothing sent and no GOAWAY from the server: the connection never came up
        // (this side may have closed it, with a GOAWAY of its own, at the preface).
        Some(e)
            if e.fate() == Some(steadfast::Fate::NotSent)
                && (e.goaway().is_none() || e.initiator() != steadfast::Initiator::Remote) =>
        {
            EXIT_NOT_CONNECTED
        }
        Some(_) if status.code() == Code::DeadlineExceeded => {
            EXIT_STATUS_BASE + status.code() as u8
        }
        Some(_) => EXIT_TRANSPORT,
    };
    // The rich error model's details the server sent (grpc-status-details-bin).
    let details = super::details::decode(status.details());
    let retry_delay = details
        .iter()
        .flatten()
        .find_map(|d| d["retryDelay"].as_str().map(str::to_owned));
    let advice = match retry_delay {
        Some(delay) => {
            format!("{advice}; the server asks to wait {delay} before a retry (RetryInfo)")
        }
        None => advice,
    };
    if json {
        let value = serde_json::json!({
            "details": details,
            "ok": false,
            "code": format!("{:?}", status.code()),
            "message": status.message(),
            "layer": layer,
            "initiator": who,
            "fate": fate,
            "retry_safe": retry_safe,
            "goaway": status.goaway().map(|g| g.to_string()),
            "goaway_debug": status.goaway().map(|g| String::from_utf8_lossy(&g.debug_data).into_owned()),
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
        for detail in details.iter().flatten() {
            eprintln!("  details:    {detail}");
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
        Code::ResourceExhausted => "the server (or a quota) is out of resources for this call: back off, and see its details",
        Code::Unauthenticated | Code::PermissionDenied => "credentials: see -H for metadata such as authorization",
        _ => "an answer of the server's application: see its message",
    }
}

/// The beginning of tonic's message for a response that ended without grpc-status.
const MISSING_STATUS: &str = "protocol error: missing grpc-status trailer";

fn http_advice(status: u16) -> &'static str {
    match status {
        429 => "a proxy or load balancer (or the server's HTTP layer) is rate limiting: back off and retry later (see its Retry-After)",
        503 => "a proxy or load balancer has no healthy backend to send the call to: check the backends behind it, then retry",
        502 | 504 => "a proxy or load balancer could not get an answer from the backend: check the backend it routes to",
        _ => "check the address and any proxy in between: it does not speak gRPC here",
    }
}

/// Which deadline a DEADLINE_EXCEEDED is about.
enum Deadline {
    /// The server (or what is behind it) answered 4 well before this call's budget.
    Returned(Duration),
    /// The server answered 4 at about the deadline this call sent (grpc-timeout).
    Inherited,
}

impl Deadline {
    fn of(status: &Status, context: &Context) -> Option<Self> {
        if status.code() != Code::DeadlineExceeded || status.steadfast_error().is_some() {
            return None;
        }
        let elapsed = context.elapsed?;
        if elapsed.as_secs_f64() >= context.budget.as_secs_f64() * INHERITED_SHARE {
            Some(Self::Inherited)
        } else {
            Some(Self::Returned(elapsed))
        }
    }

    fn advice(&self, context: &Context) -> String {
        let budget = humantime(context.budget);
        match self {
            Self::Returned(elapsed) => format!(
                "the server or something behind it ran out of time: it answered DEADLINE_EXCEEDED after {}, well within this call's {budget}; look at the server's own timeouts and what it calls",
                humantime(*elapsed)
            ),
            Self::Inherited => format!(
                "the server enforced the deadline this call sent (grpc-timeout {budget}): raise --deadline, or find what is slow behind it"
            ),
        }
    }
}

impl Unimplemented {
    fn advice(&self, from_files: bool) -> String {
        match self {
            Self::NoReflection => "the server has no such method or service, and no reflection service to tell which: check the name and the server's version".into(),
            Self::UnknownService { service, same_name: Some(theirs), .. } if from_files => format!(
                "proto mismatch: the --proto files name the service {service}, the server has {theirs}: the .proto files' package differs from the server's"
            ),
            Self::UnknownService { service, offered, .. } => format!(
                "unknown service: the server has no service {service}; it offers: {}",
                offered.join(", ")
            ),
            Self::UnknownMethod { service, method, methods } => format!(
                "unknown method: the server's {service} has no method {method}; it has: {}{}",
                methods.join(", "),
                if from_files {
                    " (the --proto files have it: they are newer than the server, or not its own)"
                } else {
                    ""
                }
            ),
            Self::Listed => "the server lists this method, but its handler answered UNIMPLEMENTED: the server's application does not implement it (yet)".into(),
        }
    }
}

/// `1.5s`, `300ms`.
fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
