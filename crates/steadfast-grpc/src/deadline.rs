//! The deadline of the call being handled, readable by the handler and inherited by
//! the calls it makes (the "deadline cascade").
//!
//! [`Server`](crate::Server) runs each handler — its future, and the polling of its
//! response body — with the request's deadline in a task-local. A
//! [`Channel`](crate::Channel) call started there inherits it, unless the caller set
//! an earlier one. Work moved to another task (`tokio::spawn`) does not see it: pass
//! [`current`] along and set it as a [`steadfast::Deadline`] request extension.

use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// The deadline of the call this task is handling, if it has one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// The time left until [`current`], if there is a deadline (zero once passed).
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

/// Runs `f` with `deadline` as the current one.
pub(crate) fn sync_scope<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    DEADLINE.sync_scope(deadline, f)
}

/// Runs `future` with `deadline` as the current one.
pub(crate) async fn scope<F: std::future::Future>(
    deadline: Option<Instant>,
    future: F,
) -> F::Output {
    DEADLINE.scope(deadline, future).await
}
