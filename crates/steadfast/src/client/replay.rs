//! Request bodies that can be sent again: the retry buffer.
//!
//! The first attempt streams the caller's body and keeps each chunk it sends (up to a
//! limit); a retry replays the kept chunks, then continues with the rest of the
//! caller's body. A body longer than the limit is streamed without keeping it, and the
//! request stops being retryable — its error says so.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::body::BoxBody;
use crate::error::BoxError;

/// A budget of bytes shared by many holders (the retry buffer of a client, say):
/// each takes what it keeps, lock-free, and gives it back when done.
#[derive(Debug)]
pub struct ByteBudget(AtomicUsize);

impl ByteBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Self {
        Self(AtomicUsize::new(total))
    }

    /// Takes `len` bytes if that much is left; false (and nothing taken) otherwise.
    pub fn try_take(&self, len: usize) -> bool {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            if current < len {
                return false;
            }
            match self.0.compare_exchange_weak(
                current,
                current - len,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Gives back `len` bytes taken earlier.
    pub fn give_back(&self, len: usize) {
        self.0.fetch_add(len, Ordering::AcqRel);
    }

    /// Bytes left.
    pub fn available(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct State {
    /// The caller's body; `None` once it ended.
    source: Option<BoxBody>,
    /// Everything sent so far, while it fits the limit.
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    kept: usize,
    limit: usize,
    /// The client's buffer for all requests, shared: `kept` bytes of it are this
    /// request's, taken as they are kept and given back when the body is done with.
    pool: Arc<ByteBudget>,
    /// Bytes were streamed without being kept: no further attempt is possible.
    overflowed: bool,
    /// An attempt has begun.
    started: u32,
}

impl State {
    /// Takes `len` bytes of the shared buffer for this request, if there is room.
    fn reserve(&mut self, len: usize) -> bool {
        if self.kept + len > self.limit || !self.pool.try_take(len) {
            return false;
        }
        self.kept += len;
        true
    }

    fn release(&mut self) {
        self.pool.give_back(self.kept);
        self.kept = 0;
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.release();
    }
}

/// Shared between the attempts of one request.
#[derive(Clone, Debug)]
pub(crate) struct Replay {
    state: Arc<Mutex<State>>,
    size_hint: SizeHint,
    end_stream: bool,
}

impl Replay {
    /// Keeps at most `limit` bytes of `body`, taken from `pool` as they are kept.
    pub(crate) fn new(body: BoxBody, limit: usize, pool: Arc<ByteBudget>) -> Self {
        let size_hint = body.size_hint();
        let end_stream = body.is_end_stream();
        Self {
            state: Arc::new(Mutex::new(State {
                source: (!end_stream).then_some(body),
                chunks: Vec::new(),
                trailers: None,
                kept: 0,
                limit,
                pool,
                overflowed: false,
                started: 0,
            })),
            size_hint,
            end_stream,
        }
    }

    /// The body for the next attempt, or `None` if the body can no longer be
    /// replayed.
    pub(crate) fn attempt(&self) -> Option<ReplayBody> {
        let mut state = self.state.lock().ok()?;
        if state.overflowed {
            return None;
        }
        state.started += 1;
        Some(ReplayBody {
            state: self.state.clone(),
            next: 0,
            end_stream: self.end_stream,
            size_hint: self.size_hint,
            done: self.end_stream,
        })
    }

    /// True once part of the body was sent without being kept.
    pub(crate) fn overflowed(&self) -> bool {
        self.state.lock().map(|s| s.overflowed).unwrap_or(true)
    }

    /// Bytes currently held for replay.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.state.lock().map(|s| s.kept).unwrap_or(0)
    }
}

/// One attempt's view of a [`Replay`].
#[derive(Debug)]
pub(crate) struct ReplayBody {
    state: Arc<Mutex<State>>,
    /// The next kept chunk to replay.
    next: usize,
    end_stream: bool,
    size_hint: SizeHint,
    done: bool,
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let state = self.state.clone();
        let Ok(mut state) = state.lock() else {
            return Poll::Ready(Some(Err("retry buffer poisoned".into())));
        };
        if let Some(chunk) = state.chunks.get(self.next) {
            let chunk = chunk.clone();
            self.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        let Some(source) = state.source.as_mut() else {
            self.done = true;
            return Poll::Ready(state.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        };
        match Pin::new(source).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                state.source = None;
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                state.source = None;
                state.overflowed = true;
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    if !state.overflowed && state.reserve(data.len()) {
                        state.chunks.push(data.clone());
                        self.next += 1;
                    } else {
                        // Too big to keep (for this request, or for the client's
                        // buffer now): this attempt is the last one possible.
                        state.overflowed = true;
                        state.chunks.clear();
                        state.release();
                    }
                    if state.source.as_ref().is_some_and(|s| s.is_end_stream()) {
                        state.source = None;
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => {
                    state.source = None;
                    self.done = true;
                    match frame.into_trailers() {
                        Ok(trailers) => {
                            state.trailers = Some(trailers.clone());
                            Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                        }
                        Err(_) => Poll::Ready(None),
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done || self.end_stream {
            return true;
        }
        match self.state.lock() {
            Ok(state) => {
                self.next >= state.chunks.len()
                    && state.source.is_none()
                    && state.trailers.is_none()
            }
            Err(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.size_hint
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::BodyExt;

    use super::*;
    use crate::body;

    fn pool() -> Arc<ByteBudget> {
        Arc::new(ByteBudget::new(1 << 20))
    }

    /// A body delivered in several chunks, then trailers.
    struct Chunks(VecDeque<Frame<Bytes>>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    fn chunks(parts: &[&'static str], trailer: bool) -> BoxBody {
        let mut frames: VecDeque<Frame<Bytes>> = parts
            .iter()
            .map(|p| Frame::data(Bytes::from_static(p.as_bytes())))
            .collect();
        if trailer {
            let mut t = HeaderMap::new();
            t.insert("x-t", "1".parse().unwrap());
            frames.push_back(Frame::trailers(t));
        }
        body::boxed(Chunks(frames))
    }

    #[tokio::test]
    async fn replays_exactly_what_was_sent_with_trailers() {
        let replay = Replay::new(chunks(&["hello", " ", "world"], true), 1024, pool());
        let first = replay.attempt().unwrap().collect().await.unwrap();
        assert_eq!(first.trailers().unwrap()["x-t"], "1");
        let first = first.to_bytes();
        assert_eq!(&first[..], b"hello world");
        let second = replay.attempt().unwrap().collect().await.unwrap();
        assert_eq!(second.trailers().unwrap()["x-t"], "1");
        assert_eq!(second.to_bytes(), first);
        assert_eq!(replay.kept(), 11);
    }

    #[tokio::test]
    async fn a_partly_sent_body_resumes_after_the_kept_part() {
        let replay = Replay::new(chunks(&["ab", "cd", "ef"], false), 1024, pool());
        let mut first = replay.attempt().unwrap();
        // The first attempt sends one chunk, then its stream is refused.
        let chunk = first.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&chunk[..], b"ab");
        drop(first);
        let second = replay
            .attempt()
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&second[..], b"abcdef");
    }

    #[tokio::test]
    async fn overflow_makes_the_request_unretryable() {
        let replay = Replay::new(chunks(&["0123456789", "0123456789"], false), 15, pool());
        let sent = replay
            .attempt()
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(sent.len(), 20, "the first attempt still sends everything");
        assert!(replay.overflowed());
        assert!(replay.attempt().is_none());
    }

    #[tokio::test]
    async fn empty_bodies_replay_as_empty() {
        let replay = Replay::new(body::empty(), 0, pool());
        assert!(replay.attempt().unwrap().is_end_stream());
        assert!(replay.attempt().unwrap().is_end_stream());
    }

    #[tokio::test]
    async fn requests_take_from_the_shared_buffer_what_they_keep_and_give_it_back() {
        // Room for 12 bytes across requests, 1 MiB each: what a body really is
        // counts, not the per-request maximum (reserving that up front let 16
        // requests of 1 MiB starve every other one).
        let shared = Arc::new(ByteBudget::new(12));
        let first = Replay::new(chunks(&["0123456789"], false), 1 << 20, shared.clone());
        let second = Replay::new(chunks(&["abcd"], false), 1 << 20, shared.clone());
        let _ = first.attempt().unwrap().collect().await.unwrap();
        assert_eq!(shared.available(), 2);
        assert!(!first.overflowed());
        // The second does not fit in what is left: sent, but not replayable.
        let _ = second.attempt().unwrap().collect().await.unwrap();
        assert!(second.overflowed());
        assert_eq!(shared.available(), 2);
        // Done with the first request: its 10 bytes come back.
        drop(first);
        assert_eq!(shared.available(), 12);
        let third = Replay::new(chunks(&["abcd"], false), 1 << 20, shared.clone());
        let _ = third.attempt().unwrap().collect().await.unwrap();
        assert!(!third.overflowed());
        assert_eq!(third.kept(), 4);
    }
}
