//! The queue that carries one stream's received body from the driver to its
//! [`RecvBody`](super::RecvBody).
//!
//! A tokio `mpsc` channel would do, but it allocates a block of 32 slots and two
//! cache-padded halves up front, about 4 KiB per stream, whether or not the body ever
//! carries a byte. This queue is one small allocation; its buffer is allocated when
//! items wait and given back once drained, so an idle stream holds none. The lock is per stream, held for a push or
//! a pop: the driver never shares a connection-wide lock with handles.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::RecvItem;

#[derive(Debug)]
struct State {
    items: VecDeque<RecvItem>,
    /// The sending side (the driver's slot) still exists.
    sender: bool,
    /// The receiving side (the body) still exists.
    receiver: bool,
    waker: Option<Waker>,
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while the lock was held leaves the queue consistent (every update is a
    // single push, pop or flag), so a poisoned lock is still usable.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A new queue: the driver keeps the sender, the body the receiver.
pub(crate) fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Mutex::new(State {
        items: VecDeque::new(),
        sender: true,
        receiver: true,
        waker: None,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

/// The driver's end.
#[derive(Debug)]
pub(crate) struct Sender(Shared);

impl Sender {
    /// Queues `item` for the body; gives it back if the body is gone.
    pub(crate) fn send(&self, item: RecvItem) -> Result<(), RecvItem> {
        let mut state = lock(&self.0);
        if !state.receiver {
            return Err(item);
        }
        state.items.push_back(item);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.sender = false;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The body's end.
#[derive(Debug)]
pub(crate) struct Receiver(Shared);

impl Receiver {
    /// The next item; `None` once the sender is gone and everything was taken.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<RecvItem>> {
        let mut state = lock(&self.0);
        if let Some(item) = state.items.pop_front() {
            if state.items.is_empty() {
                // Idle streams (a body that waits for more) hold no buffer.
                state.items = VecDeque::new();
            }
            return Poll::Ready(Some(item));
        }
        if !state.sender {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.receiver = false;
        state.waker = None;
        let items = std::mem::take(&mut state.items);
        drop(state);
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::future::poll_fn;

    fn data(item: Option<RecvItem>) -> Option<Bytes> {
        match item {
            Some(RecvItem::Data(d)) => Some(d),
            None => None,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn delivers_in_order_then_ends_when_the_sender_goes() {
        let (tx, mut rx) = channel();
        tx.send(RecvItem::Data(Bytes::from_static(b"a"))).unwrap();
        tx.send(RecvItem::Data(Bytes::from_static(b"b"))).unwrap();
        assert_eq!(data(poll_fn(|cx| rx.poll_recv(cx)).await).unwrap(), "a");
        let waiter = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(d) = data(poll_fn(|cx| rx.poll_recv(cx)).await) {
                got.push(d);
            }
            got
        });
        tokio::task::yield_now().await;
        tx.send(RecvItem::Data(Bytes::from_static(b"c"))).unwrap();
        drop(tx);
        assert_eq!(waiter.await.unwrap(), ["b", "c"]);
    }

    #[test]
    fn send_fails_once_the_receiver_is_gone_and_memory_is_given_back() {
        let (tx, rx) = channel();
        for _ in 0..100 {
            tx.send(RecvItem::Data(Bytes::from_static(b"x"))).unwrap();
        }
        drop(rx);
        assert!(lock(&tx.0).items.capacity() == 0);
        assert!(tx.send(RecvItem::Data(Bytes::new())).is_err());
    }
}
