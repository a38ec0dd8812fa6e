//! Counters of a set of connections (a server's, or a client's): RST_STREAM and
//! GOAWAY frames by code, and connections opened and closed by reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use steadfast_proto::{FrameCounters, FrameCounts};

/// Why a connection closed: a small fixed set the connection driver can tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// A GOAWAY(NO_ERROR) was sent or received and every stream finished.
    Graceful,
    /// Like `Graceful`, started by this end's (or the server's) `max_age` limit
    /// (gRFC A9: the GOAWAY's debug data is `max_age`).
    MaxAge,
    /// Like `Graceful`, started by the `max_idle` limit (debug data `max_idle`).
    MaxIdle,
    /// A graceful shutdown whose streams did not finish in time: closed with
    /// GOAWAY(NO_ERROR) over streams still open.
    DrainTimeout,
    /// The peer closed the transport (EOF) before the connection ended cleanly.
    PeerClosed,
    /// A read or write failed (e.g. a TCP reset), or the peer took none of the last
    /// bytes within the grace period.
    IoError,
    /// This end detected a protocol violation or a limit and sent GOAWAY with an
    /// error code (PROTOCOL_ERROR, ENHANCE_YOUR_CALM, SETTINGS_TIMEOUT, …).
    ProtocolError,
    /// The peer sent GOAWAY with an error code.
    PeerError,
    /// A keepalive PING went unanswered (gRFC A8).
    KeepaliveTimeout,
    /// Dropped at once by the application, without GOAWAY (a server's `abort`).
    Aborted,
    /// (Server) The TLS handshake failed or timed out.
    TlsError,
}

impl CloseReason {
    /// Every reason, in the order of [`ConnectionStats::closed`].
    pub const ALL: [Self; 11] = [
        Self::Graceful,
        Self::MaxAge,
        Self::MaxIdle,
        Self::DrainTimeout,
        Self::PeerClosed,
        Self::IoError,
        Self::ProtocolError,
        Self::PeerError,
        Self::KeepaliveTimeout,
        Self::Aborted,
        Self::TlsError,
    ];

    /// The label of this reason in metrics (`graceful`, `peer_closed`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Graceful => "graceful",
            Self::MaxAge => "max_age",
            Self::MaxIdle => "max_idle",
            Self::DrainTimeout => "drain_timeout",
            Self::PeerClosed => "peer_closed",
            Self::IoError => "io_error",
            Self::ProtocolError => "protocol_error",
            Self::PeerError => "peer_error",
            Self::KeepaliveTimeout => "keepalive_timeout",
            Self::Aborted => "aborted",
            Self::TlsError => "tls_error",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a set of connections counted, when read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// RST_STREAM and GOAWAY frames sent and received, by code.
    pub frames: FrameCounts,
    /// Connections opened (a server: accepted; a client: HTTP/2 handshake done).
    pub opened: u64,
    /// Connections closed, by reason, indexed like [`CloseReason::ALL`]. Every
    /// connection counted in `opened` is counted here once when it ends.
    pub closed: [u64; CloseReason::ALL.len()],
}

impl ConnectionStats {
    /// The connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }

    /// `closed` with each reason.
    pub fn closed_by_reason(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL
            .iter()
            .copied()
            .zip(self.closed.iter().copied())
    }
}

/// The live counters, shared by the drivers of a server's or a client's connections.
#[derive(Debug, Default)]
pub(crate) struct ConnCounters {
    pub(crate) frames: Arc<FrameCounters>,
    opened: AtomicU64,
    closed: [AtomicU64; CloseReason::ALL.len()],
}

impl ConnCounters {
    pub(crate) fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> ConnectionStats {
        ConnectionStats {
            frames: self.frames.get(),
            opened: self.opened.load(Ordering::Relaxed),
            closed: self.closed.each_ref().map(|c| c.load(Ordering::Relaxed)),
        }
    }
}
