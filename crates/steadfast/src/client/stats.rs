//! The counters of a client.

use std::sync::atomic::AtomicU64;

/// Counters of a [`Client`](super::Client), readable at any time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests handed to `send`.
    pub requests: u64,
    /// Requests that got a response.
    pub succeeded: u64,
    /// Requests that failed, by fate.
    pub failed_not_sent: u64,
    /// Requests that failed although refused (only when retries are off or spent).
    pub failed_refused: u64,
    /// Requests that failed after being sent, without proof either way.
    pub failed_maybe_processed: u64,
    /// Requests that failed after response headers arrived.
    pub failed_processed: u64,
    /// Requests that failed with no fate (local errors).
    pub failed_other: u64,
    /// Transparent retries of requests that were never sent.
    pub retries_not_sent: u64,
    /// Transparent retries of requests above a GOAWAY's last-stream-id.
    pub retries_refused_goaway: u64,
    /// Transparent retries of requests reset with REFUSED_STREAM.
    pub retries_refused_stream: u64,
    /// Retries of idempotent requests that may have been processed.
    pub retries_maybe_processed: u64,
    /// Connections established.
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections that closed or drained before the server answered any request on
    /// them (e.g. a GOAWAY right after SETTINGS). Each counts as a failed attempt for
    /// the reconnect backoff.
    pub connections_unused: u64,
    /// Name resolutions a `pick_first` or `round_robin` balancer completed.
    pub resolutions: u64,
    /// Connections opened (HTTP/2 handshake done) and closed by reason, RST_STREAM
    /// and GOAWAY frames sent and received by code, over all the client's
    /// connections.
    pub connections: crate::ConnectionStats,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    /// By fate: NotSent, Refused, MaybeProcessed, Processed, none.
    pub(crate) failed: [AtomicU64; 5],
    /// By cause (`RetryCause`).
    pub(crate) retries: [AtomicU64; 4],
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) connections_unused: AtomicU64,
    pub(crate) resolutions: AtomicU64,
    pub(crate) connections: std::sync::Arc<crate::conn_stats::ConnCounters>,
}
