//! gRFC A6 on a [`Channel`](crate::Channel): retries and hedging as the service config
//! sets them, retry throttling, server pushback, and the request replay they need.
//!
//! This sits above `steadfast::Client`, whose transparent retry of calls the server
//! provably never processed (never sent, refused by GOAWAY or REFUSED_STREAM) runs
//! inside each attempt: it never counts as an attempt and never spends a throttling
//! token (A6, "Transparent Retries").
//!
//! An attempt's outcome, as A6 sees it:
//! - response headers (not Trailers-Only), or grpc-status OK: the call is
//!   **committed** to this attempt and handed to the application;
//! - a Trailers-Only status, an HTTP status without grpc-status, or a failure below
//!   gRPC (as [`status`](crate::status) maps it): a failed attempt, retried while its
//!   code is retryable (non-fatal, for hedging), attempts remain, the request is still
//!   buffered, the throttle allows it, pushback does not forbid it, and the next
//!   attempt can start before the deadline;
//! - DEADLINE_EXCEEDED of the call itself: final.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use steadfast::client::{ByteBudget, SplitMix64};
use steadfast::RecvBody;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::metrics::Attempt;
use crate::service_config::{CallPolicy, Codes, HedgingPolicy, RetryPolicy, RetryThrottling};
use crate::status::status_for_http_answer;

/// The header that tells the server (and the application, on the final response)
/// how many attempts came before this one.
pub(crate) const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";
/// The server's pushback: milliseconds to wait before the next attempt, or (negative,
/// unparsable) none at all.
pub(crate) const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// A request body kept for replay at most this large per call (grpc-java's
/// `per_rpc_buffer_limit`)…
pub(crate) const CALL_BUFFER: usize = 1 << 20;
/// …and this much for all the calls of a channel (`retry_buffer_size`).
pub(crate) const CHANNEL_BUFFER: usize = 16 << 20;

/// Counters of a channel's A6 retries and hedges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryStats {
    /// Attempts after the first made by a retry policy.
    pub retries: u64,
    /// Copies after the first sent by a hedging policy.
    pub hedges: u64,
    /// Retries or hedges not made because the throttle was at or below half.
    pub throttled: u64,
    /// Retries or hedges not made because the server's pushback said not to.
    pub pushback_refusals: u64,
    /// Retries not made because the request had outgrown the replay buffer.
    pub buffer_commits: u64,
    /// Retries not made because the next attempt could not start before the deadline.
    pub out_of_time: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    retries: AtomicU64,
    hedges: AtomicU64,
    throttled: AtomicU64,
    pushback_refusals: AtomicU64,
    buffer_commits: AtomicU64,
    out_of_time: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RetryStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RetryStats {
            retries: get(&self.retries),
            hedges: get(&self.hedges),
            throttled: get(&self.throttled),
            pushback_refusals: get(&self.pushback_refusals),
            buffer_commits: get(&self.buffer_commits),
            out_of_time: get(&self.out_of_time),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `retryThrottling`: a token bucket for the channel's server, in thousandths.
#[derive(Debug)]
pub(crate) struct Throttle {
    max: u32,
    ratio: u32,
    tokens: Mutex<u32>,
}

impl Throttle {
    pub(crate) fn new(config: RetryThrottling) -> Self {
        Self {
            max: config.max_milli_tokens,
            ratio: config.milli_token_ratio,
            tokens: Mutex::new(config.max_milli_tokens),
        }
    }

    /// Retries and hedges are allowed while the tokens are above half.
    fn allows(&self) -> bool {
        self.tokens.lock().map_or(true, |t| *t > self.max / 2)
    }

    /// A failure that counts (a retryable or non-fatal status, or pushback refusing
    /// a retry) takes one token.
    fn failure(&self) {
        if let Ok(mut t) = self.tokens.lock() {
            *t = t.saturating_sub(1000);
        }
    }

    /// A success gives back `tokenRatio`.
    fn success(&self) {
        if let Ok(mut t) = self.tokens.lock() {
            *t = (*t + self.ratio).min(self.max);
        }
    }

    #[cfg(test)]
    fn tokens(&self) -> u32 {
        *self.tokens.lock().unwrap()
    }
}

/// What the retry machinery needs of the channel.
pub(crate) struct CallContext<'a> {
    pub(crate) client: &'a steadfast::Client,
    pub(crate) throttle: Option<&'a Arc<Throttle>>,
    pub(crate) counters: &'a Arc<Counters>,
    pub(crate) buffer: &'a Arc<ByteBudget>,
    pub(crate) deadline: Option<Instant>,
    /// Maps a failure below gRPC (deadline ones included) to the call's status.
    pub(crate) failure: &'a (dyn Fn(steadfast::Error) -> Status + Sync),
    /// Where attempts are counted, if the channel is measured.
    pub(crate) attempts: Option<&'a Arc<crate::metrics::AttemptRecorder>>,
}

/// How the server's pushback reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pushback {
    None,
    After(Duration),
    Stop,
}

fn pushback(headers: &HeaderMap) -> Pushback {
    match headers.get(PUSHBACK) {
        None => Pushback::None,
        Some(value) => match std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
        {
            Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
            _ => Pushback::Stop,
        },
    }
}

/// One attempt's outcome.
enum Outcome {
    /// Response headers (or grpc-status OK): the call is committed to it.
    Committed(Response<RecvBody>),
    /// A failed attempt: its status, the response that carried it (Trailers-Only, to
    /// hand over as is if it is the last), the server's pushback, and whether it may
    /// be retried at all (not the call's own deadline).
    Failed {
        status: Status,
        response: Option<Response<RecvBody>>,
        pushback: Pushback,
        final_: bool,
    },
}

async fn classify(
    result: Result<Response<RecvBody>, steadfast::Error>,
    failure: &(dyn Fn(steadfast::Error) -> Status + Sync),
) -> Outcome {
    match result {
        Err(error) => {
            let final_ = error.is_deadline_exceeded();
            Outcome::Failed {
                status: failure(error),
                response: None,
                pushback: Pushback::None,
                final_,
            }
        }
        Ok(mut response) => {
            crate::status::drop_malformed_details(response.headers_mut());
            let headers = response.headers();
            if let Some(status) = Status::from_header_map(headers) {
                if status.code() == Code::Ok {
                    return Outcome::Committed(response);
                }
                let pushback = pushback(headers);
                return Outcome::Failed {
                    status,
                    response: Some(response),
                    pushback,
                    final_: false,
                };
            }
            if response.status() != http::StatusCode::OK {
                // What the answer says of itself (a proxy's reason, its error page).
                let (parts, body) = response.into_parts();
                let shown = crate::channel::http_body_start(body).await;
                return Outcome::Failed {
                    status: status_for_http_answer(parts.status, &parts.headers, &shown),
                    response: None,
                    pushback: Pushback::None,
                    final_: false,
                };
            }
            Outcome::Committed(response)
        }
    }
}

/// The answer of a failed call: the response that carried the status (so tonic reads
/// its metadata and details as the server sent them), else the status.
fn give_up(
    status: Status,
    response: Option<Response<RecvBody>>,
    attempts: u32,
) -> Result<Response<RecvBody>, Status> {
    match response {
        Some(mut response) => {
            mark_attempts(response.headers_mut(), attempts);
            Ok(response)
        }
        None => Err(status),
    }
}

/// The call is committed to `response`, the answer of attempt number `attempts`.
fn commit(
    cx: &CallContext<'_>,
    mut response: Response<RecvBody>,
    attempts: u32,
) -> Result<Response<RecvBody>, Status> {
    if let Some(t) = cx.throttle {
        t.success();
    }
    mark_attempts(response.headers_mut(), attempts);
    Ok(response)
}

/// Tells the application how many attempts came before the one it gets.
fn mark_attempts(headers: &mut HeaderMap, attempts: u32) {
    if attempts > 1 {
        headers.insert(PREVIOUS_ATTEMPTS, HeaderValue::from(attempts - 1));
    }
}

fn attempt_request(parts: &http::request::Parts, body: ReplayBody, n: u32) -> Request<ReplayBody> {
    let mut request = Request::from_parts(parts.clone(), body);
    if n > 1 {
        request
            .headers_mut()
            .insert(PREVIOUS_ATTEMPTS, HeaderValue::from(n - 1));
    }
    request
}

/// Runs a call under `policy`.
pub(crate) async fn call(
    cx: CallContext<'_>,
    parts: http::request::Parts,
    body: tonic::body::Body,
    policy: &CallPolicy,
) -> Result<Response<RecvBody>, Status> {
    let tee = Tee::new(body, cx.buffer.clone());
    match policy {
        CallPolicy::Retry(p) => retry(&cx, &parts, &tee, p).await,
        CallPolicy::Hedging(p) => hedge(&cx, &parts, &tee, p).await,
    }
}

async fn retry(
    cx: &CallContext<'_>,
    parts: &http::request::Parts,
    tee: &Arc<Mutex<TeeState>>,
    policy: &RetryPolicy,
) -> Result<Response<RecvBody>, Status> {
    let mut rng = SplitMix64::from_clock();
    let mut backoff_n = 1;
    let mut n = 1;
    loop {
        let body = ReplayBody::new(tee.clone());
        let attempt = Attempt::of(cx.attempts);
        let request = attempt_request(parts, body, n).map(|b| attempt.count(b));
        let result = cx.client.send(request).await;
        let (status, response, pushback, final_) = match classify(result, cx.failure).await {
            Outcome::Committed(response) => {
                attempt.committed();
                return commit(cx, response, n);
            }
            Outcome::Failed {
                status,
                response,
                pushback,
                final_,
            } => {
                attempt.failed(status.code());
                (status, response, pushback, final_)
            }
        };
        let retryable = !final_ && is(policy.retryable_status_codes, status.code());
        if let Some(t) = cx.throttle {
            if retryable || pushback == Pushback::Stop {
                t.failure();
            }
        }
        tracing::debug!(attempt = n, code = ?status.code(), retryable, ?pushback, "gRPC attempt failed");
        if !retryable || n >= policy.max_attempts {
            return give_up(status, response, n);
        }
        let delay = match pushback {
            Pushback::Stop => {
                bump(&cx.counters.pushback_refusals);
                return give_up(status, response, n);
            }
            // A6: the wait is exactly the pushback, and backoff starts over after it.
            Pushback::After(d) => {
                backoff_n = 1;
                d
            }
            Pushback::None => {
                let bound = policy.backoff_bound(backoff_n);
                backoff_n += 1;
                bound.mul_f64(rng.next_f64())
            }
        };
        if tee_overflowed(tee) {
            bump(&cx.counters.buffer_commits);
            return give_up(status, response, n);
        }
        if cx.throttle.is_some_and(|t| !t.allows()) {
            bump(&cx.counters.throttled);
            return give_up(status, response, n);
        }
        if cx.deadline.is_some_and(|d| Instant::now() + delay >= d) {
            bump(&cx.counters.out_of_time);
            return give_up(status, response, n);
        }
        drop(response);
        tokio::time::sleep(delay).await;
        n += 1;
        bump(&cx.counters.retries);
        tracing::debug!(attempt = n, ?delay, "gRPC retry");
    }
}

async fn hedge(
    cx: &CallContext<'_>,
    parts: &http::request::Parts,
    tee: &Arc<Mutex<TeeState>>,
    policy: &HedgingPolicy,
) -> Result<Response<RecvBody>, Status> {
    // Each copy runs as a task; dropping the set cancels every copy still running
    // (their streams are reset with CANCEL).
    let mut copies = tokio::task::JoinSet::new();
    let mut sent = 0u32;
    let mut next_at = Some(Instant::now());
    let mut last: Option<(Status, Option<Response<RecvBody>>)> = None;
    loop {
        if next_at.is_some_and(|at| at <= Instant::now()) {
            let allowed = sent == 0 || cx.throttle.is_none_or(|t| t.allows());
            if sent < policy.max_attempts && allowed && !(sent > 0 && tee_overflowed(tee)) {
                sent += 1;
                if sent > 1 {
                    bump(&cx.counters.hedges);
                }
                let client = cx.client.clone();
                // Aborted (another copy won, or the call was dropped), the task drops
                // its attempt: CANCELLED.
                let attempt = Attempt::of(cx.attempts);
                let request = attempt_request(parts, ReplayBody::new(tee.clone()), sent)
                    .map(|b| attempt.count(b));
                copies.spawn(async move { (attempt, client.send(request).await) });
                tracing::debug!(copy = sent, "gRPC hedged copy");
                next_at =
                    (sent < policy.max_attempts).then(|| Instant::now() + policy.hedging_delay);
            } else {
                if !allowed {
                    bump(&cx.counters.throttled);
                }
                next_at = None;
            }
        }
        if copies.is_empty() {
            let (status, response) =
                last.unwrap_or_else(|| (Status::internal("no hedged copy was sent"), None));
            return give_up(status, response, sent);
        }
        let joined = match next_at {
            Some(at) => tokio::select! {
                joined = copies.join_next() => joined,
                () = tokio::time::sleep_until(at) => continue,
            },
            None => copies.join_next().await,
        };
        let Some(joined) = joined else { continue };
        let (attempt, outcome) = match joined {
            Ok((attempt, result)) => (Some(attempt), classify(result, cx.failure).await),
            // The copy's task panicked or was aborted: no status came, and no other
            // copy should be sent for it.
            Err(e) => (
                None,
                Outcome::Failed {
                    status: Status::internal(format!("a hedged copy's task ended: {e}")),
                    response: None,
                    pushback: Pushback::None,
                    final_: true,
                },
            ),
        };
        match outcome {
            Outcome::Committed(response) => {
                if let Some(attempt) = attempt {
                    attempt.committed();
                }
                return commit(cx, response, sent);
            }
            Outcome::Failed {
                status,
                response,
                pushback,
                final_,
            } => {
                if let Some(attempt) = attempt {
                    attempt.failed(status.code());
                }
                let non_fatal = !final_ && is(policy.non_fatal_status_codes, status.code());
                if let Some(t) = cx.throttle {
                    if non_fatal || pushback == Pushback::Stop {
                        t.failure();
                    }
                }
                tracing::debug!(code = ?status.code(), non_fatal, ?pushback, "gRPC hedged copy failed");
                if !non_fatal {
                    return give_up(status, response, sent);
                }
                match pushback {
                    Pushback::Stop => {
                        bump(&cx.counters.pushback_refusals);
                        next_at = None;
                    }
                    Pushback::After(d) => {
                        next_at = (sent < policy.max_attempts).then(|| Instant::now() + d)
                    }
                    // A non-fatal status sends the next copy at once.
                    Pushback::None => next_at = (sent < policy.max_attempts).then(Instant::now),
                }
                last = Some((status, response));
            }
        }
    }
}

fn is(codes: Codes, code: Code) -> bool {
    codes.contains(code)
}

// ---- the request body, kept for replay ----

/// The request body shared by a call's attempts: the first to need a frame pulls it
/// from the application's body and records it; the others replay the record. Once
/// the record outgrows its buffer it is dropped, and the call is committed to the
/// attempt that pulled past it (the others fail, and no attempt starts after).
struct TeeState {
    source: Option<tonic::body::Body>,
    /// Recorded DATA frames, from frame number `base`.
    frames: Vec<Bytes>,
    base: usize,
    trailers: Option<HeaderMap>,
    ended: bool,
    error: Option<String>,
    recorded: usize,
    overflowed: bool,
    /// The channel-wide buffer this call holds a share of.
    pool: Arc<ByteBudget>,
    reserved: usize,
    waiting: Arc<WakeAll>,
}

impl Drop for TeeState {
    fn drop(&mut self) {
        self.pool.give_back(self.reserved);
    }
}

struct Tee;

impl Tee {
    #[allow(clippy::new_ret_no_self)]
    fn new(body: tonic::body::Body, pool: Arc<ByteBudget>) -> Arc<Mutex<TeeState>> {
        Arc::new(Mutex::new(TeeState {
            source: Some(body),
            frames: Vec::new(),
            base: 0,
            trailers: None,
            ended: false,
            error: None,
            recorded: 0,
            overflowed: false,
            pool,
            reserved: 0,
            waiting: Arc::new(WakeAll::default()),
        }))
    }
}

fn tee_overflowed(tee: &Arc<Mutex<TeeState>>) -> bool {
    tee.lock().map_or(true, |t| t.overflowed)
}

impl TeeState {
    /// Takes `len` more bytes from the channel's buffer; false when there is no room
    /// (for this call or the channel).
    fn reserve(&mut self, len: usize) -> bool {
        if self.recorded + len > CALL_BUFFER || !self.pool.try_take(len) {
            return false;
        }
        self.reserved += len;
        true
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.base += self.frames.len();
        self.frames = Vec::new();
        self.pool.give_back(self.reserved);
        self.reserved = 0;
    }
}

/// Wakes every attempt that waits for the application's body.
#[derive(Default)]
struct WakeAll(Mutex<Vec<Waker>>);

impl WakeAll {
    fn register(&self, waker: &Waker) {
        if let Ok(mut list) = self.0.lock() {
            if !list.iter().any(|w| w.will_wake(waker)) {
                list.push(waker.clone());
            }
        }
    }
}

impl Wake for WakeAll {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let list = self
            .0
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        for waker in list {
            waker.wake();
        }
    }
}

/// One attempt's view of the request body.
pub(crate) struct ReplayBody {
    tee: Arc<Mutex<TeeState>>,
    /// The next frame this attempt sends.
    next: usize,
    trailers_sent: bool,
}

impl ReplayBody {
    fn new(tee: Arc<Mutex<TeeState>>) -> Self {
        Self {
            tee,
            next: 0,
            trailers_sent: false,
        }
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let Ok(mut tee) = this.tee.lock() else {
            return Poll::Ready(Some(Err(Status::internal("request body lock poisoned"))));
        };
        loop {
            if this.next < tee.base {
                return Poll::Ready(Some(Err(Status::internal(
                    "the request outgrew the retry buffer and another attempt carries it",
                ))));
            }
            if let Some(frame) = tee.frames.get(this.next - tee.base) {
                this.next += 1;
                return Poll::Ready(Some(Ok(Frame::data(frame.clone()))));
            }
            if let Some(error) = &tee.error {
                return Poll::Ready(Some(Err(Status::internal(error.clone()))));
            }
            if tee.ended {
                if !this.trailers_sent {
                    this.trailers_sent = true;
                    if let Some(trailers) = tee.trailers.clone() {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                }
                return Poll::Ready(None);
            }
            // This attempt is at the front: pull from the application's body.
            tee.waiting.register(cx.waker());
            let waker = Waker::from(tee.waiting.clone());
            let mut source_cx = Context::from_waker(&waker);
            let Some(source) = tee.source.as_mut() else {
                tee.ended = true;
                continue;
            };
            match Pin::new(source).poll_frame(&mut source_cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    tee.ended = true;
                    tee.source = None;
                }
                Poll::Ready(Some(Err(e))) => {
                    tee.error = Some(format!("the request body failed: {e}"));
                    tee.source = None;
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if !tee.overflowed && tee.reserve(data.len()) {
                            tee.recorded += data.len();
                            tee.frames.push(data.clone());
                        } else {
                            if !tee.overflowed {
                                tee.overflow();
                            }
                            tee.base += 1;
                        }
                        this.next += 1;
                        // Other attempts waiting for this frame may take it now.
                        tee.waiting.wake_by_ref();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            tee.trailers = Some(trailers);
                        }
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.tee.lock().is_ok_and(|t| {
            t.ended
                && t.error.is_none()
                && self.next == t.base + t.frames.len()
                && (self.trailers_sent || t.trailers.is_none())
        })
    }
}

#[cfg(test)]
mod tests;

/// gRFC A6 retries and hedging for a caller that holds its own
/// [`steadfast::Client`] rather than a [`Channel`](crate::Channel): a proxy applying
/// a service config's `retryPolicy` or `hedgingPolicy` to the calls it forwards. The
/// same machinery as the channel's: the request body kept for replay (1 MiB per
/// call, 16 MiB in all), the service config's retry throttling, server pushback,
/// `grpc-previous-rpc-attempts`, and the transparent retry by fate underneath each
/// attempt.
#[derive(Debug)]
pub struct PolicyRunner {
    throttle: Option<Arc<Throttle>>,
    counters: Arc<Counters>,
    buffer: Arc<ByteBudget>,
}

impl PolicyRunner {
    /// A runner with `throttling` (a service config's `retryThrottling`), if any.
    pub fn new(throttling: Option<RetryThrottling>) -> Self {
        Self {
            throttle: throttling.map(|t| Arc::new(Throttle::new(t))),
            counters: Arc::default(),
            buffer: Arc::new(ByteBudget::new(CHANNEL_BUFFER)),
        }
    }

    /// Runs the call `request` under `policy` on `client`, until `deadline` (the
    /// request's `steadfast::Deadline`, if it carries one, must be the same). The
    /// answer is the response the call committed to, or that carried the final
    /// status; `Err` when no attempt got a response (the status carries the
    /// `steadfast::Error`, see [`StatusExt`](crate::StatusExt)).
    pub async fn call<B>(
        &self,
        client: &steadfast::Client,
        request: Request<B>,
        policy: &CallPolicy,
        deadline: Option<std::time::Instant>,
    ) -> Result<Response<RecvBody>, Status>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let failure = |error: steadfast::Error| {
            crate::status::status_for_error(error, crate::status::Side::Client)
        };
        let cx = CallContext {
            client,
            throttle: self.throttle.as_ref(),
            counters: &self.counters,
            buffer: &self.buffer,
            deadline: deadline.map(Instant::from_std),
            failure: &failure,
            attempts: None,
        };
        call(cx, parts, tonic::body::Body::new(body), policy).await
    }

    /// Its retries and hedges so far.
    pub fn stats(&self) -> RetryStats {
        self.counters.snapshot()
    }
}
