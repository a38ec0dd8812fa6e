//! steadfast-grpc: tonic's generated gRPC clients and servers over steadfast, with
//! gRPC's error model exact and the fate of every call.
//!
//! - [`Channel`]: `GreeterClient::new(channel)` works unchanged; every failure is a
//!   [`tonic::Status`] mapped by the table in [`status`], carrying the
//!   [`steadfast::Error`] ([`StatusExt`]: fate, layer, initiator, retry safety,
//!   GOAWAY); never-processed calls are retried transparently; deadlines cover the
//!   whole call and propagate.
//! - [`Server`]: hosts tonic generated services on [`steadfast::Server`], enforcing
//!   `grpc-timeout` and handing the deadline to the handler and its outgoing calls.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod balancing;
mod channel;
pub mod deadline;
mod ext;
mod health;
mod limits;
pub mod metrics;
mod retry;
mod server;
pub mod service_config;
pub mod status;
mod target;
pub mod timeout;

pub use channel::{Channel, ChannelBuilder, InvalidTarget, ResponseBody};
pub use ext::{PeerExt, StatusExt};
pub use health::GrpcHealthCheck;
pub use retry::{PolicyRunner, RetryStats};
pub use server::{GrpcService, Server, ServerBody};
pub use service_config::{ServiceConfig, ServiceConfigError};
