//! steadfast: an HTTP/2 client and server on tokio that know, for every request that
//! failed, whether the server could have processed it.
//!
//! Built on the sans-IO engine [`steadfast_proto`]: one driver task per connection
//! owns the state machine; request and response handles talk to it over channels, never
//! through a lock shared with the socket loop. Every [`Error`] says which [`Layer`]
//! failed, who caused it, and the request's [`Fate`] — [`Error::is_retry_safe`] is true
//! exactly when the server provably never processed the request.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod client;
mod conn_stats;
mod driver;
mod error;
pub mod server;
pub mod tls;

pub use body::RecvBody;
pub use client::{
    connect, Client, ClientConfig, Deadline, FailFast, Idempotent, PoolConfig, RetryPolicy,
    SendRequest, TimeoutHeader,
};
pub use conn_stats::{CloseReason, ConnectionStats};
pub use error::{BoxError, ConnectStep, Error, Layer};
pub use server::{
    bind_reuseport, service_fn, ConnectionInfo, Listener, ResetStream, Server, ServerConfig,
    ServerStats, ShutdownHandle, StatsHandle, StreamEnd,
};
pub use steadfast_proto::{ErrorCode, Fate, GoAway, Initiator, StreamId};

/// The README's Rust examples, compiled (and, where they need no server, run) as doc
/// tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
