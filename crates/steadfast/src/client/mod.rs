//! The HTTP/2 client: single connections ([`SendRequest`]) and the pooled [`Client`]
//! with transparent retry of requests the server provably never processed.

mod backoff;
mod connection;
mod replay;

pub use self::backoff::{Backoff, BackoffConfig, SplitMix64};
pub use self::connection::{
    connect, connect_transport, connect_transport_to, handshake, handshake_for, BoxIo,
    ClientConfig, Io, SendRequest,
};
mod pool;

pub use self::pool::{
    Client, ClientStats, Deadline, DnsResolver, FailFast, Idempotent, PoolConfig, Resolve,
    RetryPolicy, StaticResolver, TimeoutHeader,
};
