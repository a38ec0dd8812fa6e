//! A sans-IO HTTP/2 engine (RFC 9113).
//!
//! `steadfast-proto` holds the whole protocol with no I/O and no clock, in the manner
//! of quinn-proto: a [`Connection`] is fed bytes and the current time, and returns
//! bytes to write, the deadline of its next timer, and [`Event`]s. A runtime (the
//! `steadfast` crate) drives it over a socket.
//!
//! What it adds to a plain HTTP/2 implementation is the *fate* of every locally
//! initiated request ([`Fate`]): whether the server provably never processed it
//! (never sent, or refused by GOAWAY's last-stream-id or RST_STREAM(REFUSED_STREAM)),
//! so a client can retry it safely whatever its method.
//!
//! Why this is written by hand rather than taken from `h2`: the fate of a request and
//! the exact classification of every error (layer, initiator, code, last-stream-id)
//! must be owned by the state machine itself, and `h2`'s connection-wide mutex shared by
//! stream handles and the socket loop is the design this crate avoids.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connection;
mod counters;
mod error;
pub mod frame;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod message;
mod stream;
mod window;

pub use connection::{
    Config, Connection, Event, FloodLimits, Keepalive, PingPolicy, Role, PREFACE,
};
pub use counters::{ByCode, FrameCounters, FrameCounts, CODE_NAMES, CODE_SLOTS};
pub use error::{ConfigError, Error, ErrorCode, Fate, GoAway, Initiator, UserError};
pub use frame::{Settings, StreamId, StreamIdMap};
pub use message::Protocol;
pub use stream::StreamState;
