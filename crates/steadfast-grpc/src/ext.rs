//! [`StatusExt`]: the four questions of steadfast's error model, asked of a
//! [`tonic::Status`].

use steadfast::{Fate, GoAway, Initiator, Layer};
use tonic::Status;

/// Reads the [`steadfast::Error`] behind a [`Status`] that this crate made.
///
/// Every Status a [`Channel`](crate::Channel) produces for a failure below gRPC
/// carries the error as its `source()`; a Status that came from the peer's
/// `grpc-status` (an answer of the server's application: the call was processed) or
/// that application code made has none, and these methods return `None` / `false`.
pub trait StatusExt {
    /// The steadfast error behind the status, if any.
    fn steadfast_error(&self) -> Option<&steadfast::Error>;

    /// What the server may have done with the request.
    fn fate(&self) -> Option<Fate> {
        self.steadfast_error()?.fate()
    }

    /// Which layer failed.
    fn layer(&self) -> Option<Layer> {
        Some(self.steadfast_error()?.layer())
    }

    /// Who caused the failure.
    fn initiator(&self) -> Option<Initiator> {
        Some(self.steadfast_error()?.initiator())
    }

    /// True exactly when the server provably never processed the request: sending it
    /// again cannot duplicate its effects, whatever the method.
    fn is_retry_safe(&self) -> bool {
        self.steadfast_error()
            .is_some_and(steadfast::Error::is_retry_safe)
    }

    /// The GOAWAY involved, if any: code, last-stream-id and debug data.
    fn goaway(&self) -> Option<&GoAway> {
        self.steadfast_error()?.goaway()
    }
}

impl StatusExt for Status {
    fn steadfast_error(&self) -> Option<&steadfast::Error> {
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            if let Some(error) = e.downcast_ref::<steadfast::Error>() {
                return Some(error);
            }
            source = e.source();
        }
        None
    }
}

/// The connection a call arrived on, for handlers on a [`Server`](crate::Server):
/// remote and local address, and the client's TLS certificates.
///
/// tonic's own `Request::remote_addr()` and `peer_certs()` read extensions of
/// tonic's transport, which this crate replaces; read [`steadfast::ConnectionInfo`]
/// instead: `request.peer().and_then(|p| p.remote_addr())`.
pub trait PeerExt {
    /// The connection's information; `None` outside a steadfast server.
    fn peer(&self) -> Option<&steadfast::ConnectionInfo>;
}

impl<T> PeerExt for tonic::Request<T> {
    fn peer(&self) -> Option<&steadfast::ConnectionInfo> {
        self.extensions().get()
    }
}
