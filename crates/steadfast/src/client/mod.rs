//! The HTTP/2 client: single connections ([`SendRequest`]) and the pooled [`Client`]
//! with transparent retry of requests the server provably never processed.

mod backoff;
mod balance;
mod connection;
mod picker;
mod replay;
mod resolve;
mod stats;
mod subchannel;

pub use self::backoff::{Backoff, BackoffConfig, SplitMix64};
pub use self::connection::{
    connect, connect_transport, connect_transport_to, handshake, handshake_for, BoxIo,
    ClientConfig, Io, SendRequest, WrapTransport,
};
mod pool;

pub use self::balance::{
    BalanceConfig, BalancePolicy, ConnectivityState, Health, HealthCheck, HealthReport,
    SubchannelInfo,
};
pub use self::pool::{
    Client, ClientStats, Deadline, FailFast, Idempotent, PoolConfig, RetryPolicy, SendAuthority,
    TimeoutHeader,
};
pub use self::replay::ByteBudget;
pub use self::resolve::{DnsResolver, Resolve, StaticResolver};
