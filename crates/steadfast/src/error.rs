//! The public error: one type that says which layer failed, who caused it, what the
//! server may have done with the request, and what to do about it.

use std::fmt;
use std::io;
use std::sync::Arc;

use steadfast_proto::{ErrorCode, Fate, GoAway, Initiator, StreamId};

/// A boxed error from an application body or service.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The engine's error for a GOAWAY the peer sent.
pub(crate) fn remote_goaway(goaway: GoAway) -> steadfast_proto::Error {
    steadfast_proto::Error::GoAway {
        goaway,
        initiator: Initiator::Remote,
        reason: None,
    }
}

/// Where a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// Name resolution: the host name could not be turned into addresses.
    Resolve,
    /// TCP: connecting, reading, writing, or the socket closing.
    Transport,
    /// The TLS handshake or ALPN negotiation.
    Tls,
    /// The HTTP/2 connection as a whole (GOAWAY sent or received).
    Connection,
    /// One HTTP/2 stream (RST_STREAM sent or received).
    Stream,
    /// The local application: a body that failed, a cancelled request, misuse of the API.
    Application,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resolve => "name resolution",
            Self::Transport => "transport",
            Self::Tls => "TLS",
            Self::Connection => "HTTP/2 connection",
            Self::Stream => "HTTP/2 stream",
            Self::Application => "application",
        })
    }
}

/// The step of establishing a connection that a timeout interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectStep {
    /// Resolving the host name.
    Resolve,
    /// The TCP handshake: nothing answered.
    Tcp,
    /// The TLS handshake: TCP connected, TLS did not complete.
    Tls,
    /// The HTTP/2 handshake: the transport is up, the server's SETTINGS never came.
    Http2,
}

impl fmt::Display for ConnectStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resolve => "name resolution",
            Self::Tcp => "TCP connect",
            Self::Tls => "TLS handshake",
            Self::Http2 => "HTTP/2 handshake",
        })
    }
}

/// An HTTP/2 failure, with the fate of the request it hit.
///
/// Every error answers four questions with accessors: [`layer`](Self::layer),
/// [`initiator`](Self::initiator), [`fate`](Self::fate) (client side), and the codes
/// involved ([`code`](Self::code), [`goaway`](Self::goaway),
/// [`stream_id`](Self::stream_id)). Its `Display` is a sentence a person can act on.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: Kind,
    fate: Option<Fate>,
    stream_id: Option<StreamId>,
    /// Extra words from the caller's side (e.g. the address being connected to).
    context: Option<String>,
    /// The connection the request was on, once it got one.
    connection: Option<crate::ConnectionInfo>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// The host name could not be resolved.
    Resolve { host: String, source: io::Error },
    /// Establishing the TCP connection failed.
    Connect(io::Error),
    /// A step of establishing the connection did not finish within the connect
    /// timeout.
    Timeout(ConnectStep),
    /// Reading or writing the socket failed mid-connection.
    Io(io::Error),
    /// The TLS handshake failed. `mismatch`: one side seems to speak plaintext.
    Tls { message: String, mismatch: bool },
    /// TLS succeeded but the server did not agree to HTTP/2.
    AlpnMismatch(Option<Vec<u8>>),
    /// The server ended the TLS handshake with a `no_application_protocol` alert: it
    /// offers none of the protocols asked for (h2), only others (e.g. http/1.1).
    AlpnRefused,
    /// The HTTP/2 engine reported an error.
    Proto(steadfast_proto::Error),
    /// The connection's driver is gone (the connection finished or its task ended).
    ConnectionGone,
    /// A request or response body returned an error.
    Body(BoxError),
    /// The request's deadline passed (its stream, if any, was cancelled).
    DeadlineExceeded,
    /// The HTTP/2 configuration has a value that could not work.
    Config(steadfast_proto::ConfigError),
    /// A load-balancing policy had no ready address for the request: every address,
    /// with its state and last error.
    NoReadyAddress(String),
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                fate: None,
                stream_id: None,
                context: None,
                connection: None,
            }),
        }
    }

    pub(crate) fn with_fate(kind: Kind, fate: Option<Fate>, stream_id: Option<StreamId>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                fate,
                stream_id,
                context: None,
                connection: None,
            }),
        }
    }

    /// An error from the HTTP/2 engine, for a stream with this fate.
    pub(crate) fn proto(
        error: steadfast_proto::Error,
        fate: Option<Fate>,
        stream_id: Option<StreamId>,
    ) -> Self {
        let stream_id = stream_id.or(match &error {
            steadfast_proto::Error::Reset { stream_id, .. }
            | steadfast_proto::Error::DeadlineExceeded { stream_id } => Some(*stream_id),
            _ => None,
        });
        if let steadfast_proto::Error::DeadlineExceeded { .. } = error {
            return Self::with_fate(Kind::DeadlineExceeded, fate, stream_id);
        }
        Self::with_fate(Kind::Proto(error), fate, stream_id)
    }

    /// The error of a request whose deadline passed, for layers above this crate that
    /// enforce a deadline themselves (e.g. over a response body): `fate` is what the
    /// server may have done with the request by then.
    pub fn deadline_exceeded(fate: Option<Fate>, stream_id: Option<StreamId>) -> Self {
        Self::with_fate(Kind::DeadlineExceeded, fate, stream_id)
    }

    /// The same error, with words from the caller's side before its sentence (what was
    /// being done, a budget that ran out).
    pub fn with_context(self, context: impl Into<String>) -> Self {
        self.context(context)
    }

    /// A load-balancing policy found no ready address: the request was not sent
    /// (fate `NotSent`), and the message lists every address and its last error.
    pub fn no_ready_address(summary: impl Into<String>) -> Self {
        Self::with_fate(
            Kind::NoReadyAddress(summary.into()),
            Some(Fate::NotSent),
            None,
        )
    }

    /// True for the error of [`no_ready_address`](Self::no_ready_address).
    pub fn is_no_ready_address(&self) -> bool {
        matches!(self.inner.kind, Kind::NoReadyAddress(_))
    }

    /// The same failure, about no request (its sentence then says no more than what
    /// failed: a subchannel's last error, which several requests may have met).
    pub(crate) fn without_fate(self) -> Self {
        self.modify(|inner| inner.fate = None)
    }

    /// The connection the request was on when it failed — its address pair — when
    /// it got that far (a proxy names the backend of a failed call so).
    pub fn connection(&self) -> Option<&crate::ConnectionInfo> {
        self.inner.connection.as_ref()
    }

    /// Notes the connection the request was on, unless one is noted already.
    pub(crate) fn on_connection(self, info: Option<&crate::ConnectionInfo>) -> Self {
        match info {
            Some(info) if self.inner.connection.is_none() => {
                let info = info.clone();
                self.modify(|inner| inner.connection = Some(info))
            }
            _ => self,
        }
    }

    pub(crate) fn context(self, context: impl Into<String>) -> Self {
        let context = context.into();
        self.modify(|inner| inner.context = Some(context))
    }

    /// Changes the error in place when it is not shared, on a copy otherwise.
    fn modify(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            change(inner);
            return self;
        }
        let mut inner = Inner {
            kind: self.inner.kind.shallow_clone(),
            fate: self.inner.fate,
            stream_id: self.inner.stream_id,
            context: self.inner.context.clone(),
            connection: self.inner.connection.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Which layer failed.
    pub fn layer(&self) -> Layer {
        match &self.inner.kind {
            Kind::Resolve { .. } | Kind::Timeout(ConnectStep::Resolve) => Layer::Resolve,
            Kind::Connect(_) | Kind::Timeout(ConnectStep::Tcp) | Kind::Io(_) => Layer::Transport,
            Kind::Tls { .. }
            | Kind::AlpnMismatch(_)
            | Kind::AlpnRefused
            | Kind::Timeout(ConnectStep::Tls) => Layer::Tls,
            Kind::Timeout(ConnectStep::Http2) => Layer::Connection,
            Kind::Proto(e) => match e {
                steadfast_proto::Error::GoAway { .. } => Layer::Connection,
                steadfast_proto::Error::Reset { .. } => Layer::Stream,
                // A close after the peer's GOAWAY is the end of its graceful shutdown
                // of the HTTP/2 connection; without one, the transport just went away.
                steadfast_proto::Error::TransportClosed {
                    after_goaway: Some(_),
                } => Layer::Connection,
                steadfast_proto::Error::TransportClosed { after_goaway: None } => Layer::Transport,
                steadfast_proto::Error::User(_) => Layer::Application,
                _ => Layer::Connection,
            },
            Kind::ConnectionGone => Layer::Connection,
            Kind::NoReadyAddress(_) => Layer::Transport,
            Kind::Body(_) | Kind::DeadlineExceeded | Kind::Config(_) => Layer::Application,
        }
    }

    /// Who caused the failure.
    pub fn initiator(&self) -> Initiator {
        match &self.inner.kind {
            Kind::Connect(_)
            | Kind::Io(_)
            | Kind::Tls { .. }
            | Kind::AlpnMismatch(_)
            | Kind::AlpnRefused => Initiator::Remote,
            // The name the application asked for, as the local resolver answered.
            Kind::Resolve { .. } => Initiator::Application,
            Kind::Timeout(_) => Initiator::Library,
            Kind::Proto(e) => e.initiator(),
            Kind::ConnectionGone => Initiator::Library,
            Kind::NoReadyAddress(_) => Initiator::Remote,
            Kind::Body(_) | Kind::DeadlineExceeded | Kind::Config(_) => Initiator::Application,
        }
    }

    /// What the server may have done with the request (client side). `None` for
    /// errors that are not about a request.
    pub fn fate(&self) -> Option<Fate> {
        self.inner.fate
    }

    /// True exactly when the request provably never reached processing on the server
    /// (`NotSent` or `Refused`): sending it again cannot duplicate its effects.
    pub fn is_retry_safe(&self) -> bool {
        self.inner.fate.is_some_and(Fate::is_retry_safe)
    }

    /// The HTTP/2 error code involved (RST_STREAM or GOAWAY), if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.inner.kind {
            Kind::Proto(e) => e.code(),
            _ => None,
        }
        // A stream at or below a GOAWAY's last-stream-id that then lost its
        // connection: the GOAWAY's code still explains the failure.
        .or_else(|| self.goaway().map(|g| g.code))
    }

    /// The GOAWAY involved, sent or received, if any: code, last-stream-id and debug
    /// data.
    pub fn goaway(&self) -> Option<&GoAway> {
        match &self.inner.kind {
            Kind::Proto(steadfast_proto::Error::GoAway { goaway, .. }) => Some(goaway),
            Kind::Proto(steadfast_proto::Error::TransportClosed { after_goaway }) => {
                after_goaway.as_ref()
            }
            _ => None,
        }
    }

    /// The stream the error is about, if any.
    pub fn stream_id(&self) -> Option<StreamId> {
        self.inner.stream_id
    }

    /// The underlying HTTP/2 engine error, if that is what this is.
    pub fn proto_error(&self) -> Option<&steadfast_proto::Error> {
        match &self.inner.kind {
            Kind::Proto(e) => Some(e),
            _ => None,
        }
    }

    /// The kind of I/O error, for transport failures.
    pub fn io_error_kind(&self) -> Option<io::ErrorKind> {
        match &self.inner.kind {
            Kind::Connect(e) | Kind::Io(e) | Kind::Resolve { source: e, .. } => Some(e.kind()),
            _ => None,
        }
    }

    /// True when connecting timed out or the request's deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(_) | Kind::DeadlineExceeded)
    }

    /// The step of connecting that timed out, for connect timeouts.
    pub fn timeout_step(&self) -> Option<ConnectStep> {
        match self.inner.kind {
            Kind::Timeout(step) => Some(step),
            _ => None,
        }
    }

    /// The same error, now about stream `id` with `fate` (a connection-wide failure
    /// as one request saw it).
    pub(crate) fn for_stream(self, fate: Option<Fate>, id: StreamId) -> Self {
        self.modify(|inner| {
            inner.fate = fate;
            inner.stream_id = Some(id);
        })
    }

    /// True when the request's own deadline passed.
    pub fn is_deadline_exceeded(&self) -> bool {
        matches!(self.inner.kind, Kind::DeadlineExceeded)
    }

    /// The same error, with `fate` when it had none (a connection that could not be
    /// established: the request never left).
    pub(crate) fn with_fate_if_none(self, fate: Fate) -> Self {
        if self.inner.fate.is_some() {
            return self;
        }
        self.modify(|inner| inner.fate = Some(fate))
    }

    /// What a person should do next, in a few words.
    pub fn advice(&self) -> &'static str {
        match (&self.inner.kind, self.inner.fate) {
            (Kind::Tls { mismatch: true, .. }, _) => {
                "check that client and server agree on TLS (https://) or plaintext h2c (http://)"
            }
            (Kind::Tls { message, .. }, _) if message.contains(CA_AS_LEAF) => {
                "give the server a leaf certificate (basicConstraints CA:FALSE), self-signed \
                 or signed by a CA the client trusts: see the README's certificate recipe"
            }
            (Kind::Tls { message, .. }, _) if message.contains(UNTRUSTED) => {
                "trust the authority that signed the server's certificate (--cacert with its \
                 CA, or the certificate itself when self-signed; -k only against test servers)"
            }
            (Kind::Tls { message, .. }, _) if message.contains(WRONG_NAME) => {
                "connect by a name the certificate holds (its subjectAltName), or give the \
                 server a certificate for the name used here"
            }
            (Kind::Tls { .. }, _) => {
                "check the server's certificate and the roots the client trusts"
            }
            (Kind::Resolve { .. } | Kind::Timeout(ConnectStep::Resolve), _) => {
                "check the host name (spelling, /etc/hosts, DNS) and that this machine's \
                 resolver works: nothing was sent"
            }
            (Kind::Timeout(ConnectStep::Tls), _) => {
                "TCP connected but the TLS handshake never finished: is this a TLS port? \
                 (an h2c or HTTP/1 server waits silently for its own protocol)"
            }
            (Kind::Timeout(ConnectStep::Http2), _) => {
                "the transport is up but the server sent no HTTP/2 SETTINGS: it may speak \
                 HTTP/1 (waiting for a request) or expect TLS; nothing was sent"
            }
            (
                Kind::Proto(steadfast_proto::Error::GoAway {
                    initiator: Initiator::Library,
                    ..
                }),
                None | Some(Fate::NotSent),
            ) => "the peer does not speak HTTP/2 as expected: see the reason above; never sent",
            (Kind::AlpnMismatch(_) | Kind::AlpnRefused, _) => {
                "the server does not offer HTTP/2 (ALPN \"h2\") on this port: enable HTTP/2 \
                 there, or use a port or server that speaks it"
            }
            (Kind::Proto(steadfast_proto::Error::User(_)), _) => {
                "fix the request: the library refused it"
            }
            (Kind::Config(_), _) => "fix the configuration: the field and the rule are named above",
            (Kind::Connect(e), Some(Fate::NotSent))
                if e.kind() == io::ErrorKind::ConnectionRefused =>
            {
                "nothing listens there: check the address and that the server is running; \
                 never sent, safe to retry"
            }
            (Kind::Timeout(ConnectStep::Tcp), Some(Fate::NotSent)) => {
                "nothing answered: check the address, that the server is running and that no \
                 firewall drops the packets; never sent, safe to retry"
            }
            (_, Some(Fate::NotSent)) => "never sent: safe to retry",
            (_, Some(Fate::Refused)) => {
                "never processed by the server: safe to retry, on another connection"
            }
            (_, Some(Fate::MaybeProcessed)) => {
                "the server may have processed it: retry only if the request is idempotent"
            }
            (_, Some(Fate::Processed)) => "the server processed it: do not retry blindly",
            (Kind::Connect(_) | Kind::Timeout(ConnectStep::Tcp), None) => {
                "check the address and that the server is running"
            }
            _ => "see the error for details",
        }
    }
}

/// How `tls` words a certificate signed by no trusted authority.
pub(crate) const UNTRUSTED: &str = "is not signed by an authority the client trusts";
/// How `tls` words a certificate for other names than the one connected to.
pub(crate) const WRONG_NAME: &str = "does not name this host";

/// How rustls (webpki) names a CA certificate presented as a server's own.
pub(crate) const CA_AS_LEAF: &str = "CaUsedAsEndEntity";

impl Error {
    /// What the HTTP/2 codes involved suggest, beyond [`advice`](Self::advice): the
    /// lead a person should follow. `None` when the codes say nothing more.
    pub fn hint(&self) -> Option<&'static str> {
        if let Kind::Proto(steadfast_proto::Error::Reset {
            code,
            initiator: Initiator::Remote,
            ..
        }) = &self.inner.kind
        {
            return match *code {
                ErrorCode::CANCEL => Some(
                    "the server (or a proxy in the path) cancelled the stream: its handler gave \
                     up, hit a deadline of its own, or its client went away; the server's logs \
                     for this stream say why",
                ),
                // RFC 9113 §8.1: NO_ERROR only after a complete response, to stop the
                // request's upload; gRPC's response is complete with its trailers.
                ErrorCode::NO_ERROR => Some(
                    "the server ended the stream with RST_STREAM(NO_ERROR) before its trailers \
                     (grpc-status): the response is incomplete; a server may do that only \
                     after a complete response (RFC 9113 §8.1), so its gRPC library or a \
                     proxy ended it too early",
                ),
                _ => None,
            };
        }
        if let Kind::Proto(steadfast_proto::Error::KeepaliveTimeout { .. }) = &self.inner.kind {
            return Some(
                "the server stopped answering, even PINGs: it is stuck or gone, or a proxy or \
                 NAT in the path dropped the connection silently; the call may have been \
                 processed",
            );
        }
        let goaway = self.goaway()?;
        if goaway.code == ErrorCode::SETTINGS_TIMEOUT
            && matches!(
                &self.inner.kind,
                Kind::Proto(steadfast_proto::Error::GoAway {
                    initiator: Initiator::Library,
                    ..
                })
            )
        {
            return Some(
                "the server sent its SETTINGS but never acknowledged this client's (RFC 9113 \
                 §6.5.3): it is stuck, or not a conforming HTTP/2 server",
            );
        }
        if goaway.code == ErrorCode::ENHANCE_YOUR_CALM
            && &goaway.debug_data[..] == b"too_many_pings"
        {
            return Some(
                "the server limits PINGs (too_many_pings): raise the client's keepalive time, \
                 or the server's keepalive permit time (gRFC A8/A9)",
            );
        }
        let remote = matches!(
            &self.inner.kind,
            Kind::Proto(steadfast_proto::Error::GoAway {
                initiator: Initiator::Remote,
                ..
            }) | Kind::Proto(steadfast_proto::Error::TransportClosed { .. })
        );
        if !remote {
            return None;
        }
        let in_flight = matches!(
            self.inner.fate,
            Some(Fate::MaybeProcessed | Fate::Processed)
        );
        Some(match goaway.code {
            ErrorCode::NO_ERROR if in_flight && &goaway.debug_data[..] == b"max_age" => {
                "the server is draining the connection at its maximum age (max_age) and closed \
                 it before this call finished: its grace period (grpc's \
                 MAX_CONNECTION_AGE_GRACE) is shorter than the call; raise it, or retry if \
                 the call is idempotent"
            }
            ErrorCode::NO_ERROR => {
                "the server is draining the connection (a restart, a maximum connection age): \
                 normal; new requests belong on a new connection"
            }
            ErrorCode::PROTOCOL_ERROR
            | ErrorCode::COMPRESSION_ERROR
            | ErrorCode::FRAME_SIZE_ERROR => {
                "the server saw a protocol violation: a retry will likely fail the same way; \
                 its debug data is the lead"
            }
            ErrorCode::ENHANCE_YOUR_CALM => {
                "the server thinks this client sends too much (frames, resets, pings): slow down"
            }
            _ => return None,
        })
    }
}

impl Kind {
    /// Kinds holding non-`Clone` sources are copied as text.
    fn shallow_clone(&self) -> Kind {
        match self {
            Kind::Resolve { host, source } => Kind::Resolve {
                host: host.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Kind::Connect(e) => Kind::Connect(io::Error::new(e.kind(), e.to_string())),
            Kind::Timeout(step) => Kind::Timeout(*step),
            Kind::Io(e) => Kind::Io(io::Error::new(e.kind(), e.to_string())),
            Kind::Tls { message, mismatch } => Kind::Tls {
                message: message.clone(),
                mismatch: *mismatch,
            },
            Kind::AlpnMismatch(p) => Kind::AlpnMismatch(p.clone()),
            Kind::AlpnRefused => Kind::AlpnRefused,
            Kind::Proto(e) => Kind::Proto(e.clone()),
            Kind::ConnectionGone => Kind::ConnectionGone,
            Kind::NoReadyAddress(s) => Kind::NoReadyAddress(s.clone()),
            Kind::Body(e) => Kind::Body(e.to_string().into()),
            Kind::DeadlineExceeded => Kind::DeadlineExceeded,
            Kind::Config(e) => Kind::Config(e.clone()),
        }
    }
}

/// Two errors are equal when they answer the four questions alike and say the same:
/// same kind (sources that are not comparable, I/O and body errors, compare by their
/// kind and text), fate, stream and context. So tests can `assert_eq!` on errors.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.inner, &*other.inner);
        a.fate == b.fate && a.stream_id == b.stream_id && a.context == b.context && a.kind == b.kind
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        fn same_io(a: &io::Error, b: &io::Error) -> bool {
            a.kind() == b.kind() && a.to_string() == b.to_string()
        }
        match (self, other) {
            (Kind::Connect(a), Kind::Connect(b)) | (Kind::Io(a), Kind::Io(b)) => same_io(a, b),
            (Kind::Resolve { host, source }, Kind::Resolve { host: h, source: s }) => {
                host == h && same_io(source, s)
            }
            (Kind::Timeout(a), Kind::Timeout(b)) => a == b,
            (Kind::AlpnRefused, Kind::AlpnRefused)
            | (Kind::ConnectionGone, Kind::ConnectionGone)
            | (Kind::DeadlineExceeded, Kind::DeadlineExceeded) => true,
            (
                Kind::Tls { message, mismatch },
                Kind::Tls {
                    message: m,
                    mismatch: mm,
                },
            ) => message == m && mismatch == mm,
            (Kind::AlpnMismatch(a), Kind::AlpnMismatch(b)) => a == b,
            (Kind::NoReadyAddress(a), Kind::NoReadyAddress(b)) => a == b,
            (Kind::Proto(a), Kind::Proto(b)) => a == b,
            (Kind::Body(a), Kind::Body(b)) => a.to_string() == b.to_string(),
            (Kind::Config(a), Kind::Config(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("layer", &self.layer())
            .field("initiator", &self.initiator())
            .field("fate", &self.inner.fate)
            .field("stream_id", &self.inner.stream_id)
            .field("kind", &self.inner.kind)
            .field("context", &self.inner.context)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(context) = &self.inner.context {
            write!(f, "{context}: ")?;
        }
        match &self.inner.kind {
            Kind::Resolve { host, source } => {
                write!(f, "could not resolve the host name {host:?}: {source}")?
            }
            Kind::Connect(e) => write!(f, "TCP connect failed: {e}")?,
            Kind::Timeout(ConnectStep::Resolve) => f.write_str("name resolution timed out")?,
            Kind::Timeout(ConnectStep::Tcp) => {
                f.write_str("TCP connect timed out: nothing answered")?
            }
            Kind::Timeout(ConnectStep::Tls) => {
                f.write_str("TLS handshake timed out (TCP had connected)")?
            }
            Kind::Timeout(ConnectStep::Http2) => f.write_str(
                "HTTP/2 handshake timed out: the transport connected, but the server sent no \
                 SETTINGS",
            )?,
            Kind::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => write!(
                f,
                "the connection was reset by the peer (TCP RST), not closed in order: {e}"
            )?,
            Kind::Io(e) => write!(f, "socket error: {e}")?,
            Kind::Tls { message, .. } => write!(f, "TLS handshake failed: {message}")?,
            Kind::AlpnMismatch(None) => {
                f.write_str("the TLS server did not negotiate HTTP/2 (no ALPN protocol)")?
            }
            Kind::AlpnMismatch(Some(p)) => write!(
                f,
                "the TLS server did not negotiate HTTP/2 (ALPN chose {:?})",
                String::from_utf8_lossy(p)
            )?,
            Kind::AlpnRefused => f.write_str(
                "the TLS server does not offer HTTP/2: it refused ALPN \"h2\" with a \
                 no_application_protocol alert (it offers only other protocols, such as \
                 http/1.1)",
            )?,
            Kind::Proto(e) => match (e, self.inner.stream_id) {
                (
                    steadfast_proto::Error::GoAway {
                        goaway,
                        initiator: Initiator::Remote,
                        ..
                    },
                    Some(id),
                ) if self.inner.fate == Some(Fate::Refused) => {
                    write!(f, "stream {id} refused by the peer's {goaway}")?
                }
                (steadfast_proto::Error::Reset { .. }, _) => write!(f, "{e}")?,
                (_, Some(id)) => write!(f, "stream {id}: {e}")?,
                (_, None) => write!(f, "{e}")?,
            },
            Kind::ConnectionGone => f.write_str("the HTTP/2 connection is closed")?,
            Kind::NoReadyAddress(summary) => f.write_str(summary)?,
            Kind::Body(e) => write!(f, "body error: {e}")?,
            Kind::DeadlineExceeded => f.write_str("deadline exceeded")?,
            Kind::Config(e) => write!(f, "{e}")?,
        }
        if self.inner.fate.is_some() || matches!(self.layer(), Layer::Tls) {
            write!(f, " ({})", self.advice())?;
        }

        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            Kind::Connect(e) | Kind::Io(e) | Kind::Resolve { source: e, .. } => Some(e),
            Kind::Proto(e) => Some(e),
            Kind::Body(e) => Some(e.as_ref()),
            Kind::Config(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
