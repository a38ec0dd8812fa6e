use std::sync::atomic::AtomicUsize;

use super::*;

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll(body: &mut ReplayBody, waker: &Arc<Count>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
    let waker = Waker::from(waker.clone());
    Pin::new(body).poll_frame(&mut Context::from_waker(&waker))
}

fn data(p: Poll<Option<Result<Frame<Bytes>, Status>>>) -> Bytes {
    match p {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().expect("a DATA frame"),
        other => panic!("expected data, got {other:?}"),
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Status>>;

/// A tee over an application body fed through a channel.
fn new_tee(pool: usize) -> (Arc<Mutex<TeeState>>, Sender, Arc<ByteBudget>) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let pool = Arc::new(ByteBudget::new(pool));
    (
        Tee::new(tonic::body::Body::new(body), pool.clone()),
        tx,
        pool,
    )
}

#[test]
fn a_later_attempt_replays_what_the_first_sent_and_both_wait_for_more() {
    let (tee, tx, pool) = new_tee(CHANNEL_BUFFER);
    let (wa, wb) = (Arc::new(Count::default()), Arc::new(Count::default()));
    let mut first = ReplayBody::new(tee.clone());
    tx.try_send(Ok(Frame::data(Bytes::from_static(b"one"))))
        .unwrap();
    assert_eq!(data(poll(&mut first, &wa)), "one");
    assert!(poll(&mut first, &wa).is_pending());
    // A second attempt (a retry, or a hedged copy) gets the same bytes, then waits.
    let mut second = ReplayBody::new(tee.clone());
    assert_eq!(data(poll(&mut second, &wb)), "one");
    assert!(poll(&mut second, &wb).is_pending());
    // The next frame wakes both, whichever pulls it.
    tx.try_send(Ok(Frame::data(Bytes::from_static(b"two"))))
        .unwrap();
    assert!(wa.0.load(Ordering::SeqCst) + wb.0.load(Ordering::SeqCst) >= 1);
    assert_eq!(data(poll(&mut second, &wb)), "two");
    assert!(
        wa.0.load(Ordering::SeqCst) >= 1,
        "the first attempt is told"
    );
    assert_eq!(data(poll(&mut first, &wa)), "two");
    drop(tx);
    assert!(matches!(poll(&mut first, &wa), Poll::Ready(None)));
    assert!(matches!(poll(&mut second, &wb), Poll::Ready(None)));
    assert!(first.is_end_stream() && second.is_end_stream());
    assert_eq!(pool.available(), CHANNEL_BUFFER - 6);
    drop((first, second, tee));
    // The call's share of the channel's buffer comes back with it.
    assert_eq!(pool.available(), CHANNEL_BUFFER);
}

#[test]
fn outgrowing_the_buffer_commits_the_call_to_the_attempt_at_the_front() {
    // Room for 4 bytes in the whole channel: the second frame does not fit.
    let (tee, tx, pool) = new_tee(4);
    let w = Arc::new(Count::default());
    let mut front = ReplayBody::new(tee.clone());
    let mut behind = ReplayBody::new(tee.clone());
    tx.try_send(Ok(Frame::data(Bytes::from_static(b"abc"))))
        .unwrap();
    tx.try_send(Ok(Frame::data(Bytes::from_static(b"defg"))))
        .unwrap();
    assert_eq!(data(poll(&mut front, &w)), "abc");
    assert!(!tee_overflowed(&tee));
    assert_eq!(data(poll(&mut front, &w)), "defg");
    assert!(tee_overflowed(&tee), "no more attempts may start");
    assert_eq!(pool.available(), 4, "the record is dropped");
    // The attempt behind cannot replay what is gone.
    assert!(matches!(poll(&mut behind, &w), Poll::Ready(Some(Err(_)))));
    // The front one carries on unbuffered.
    tx.try_send(Ok(Frame::data(Bytes::from_static(b"h"))))
        .unwrap();
    assert_eq!(data(poll(&mut front, &w)), "h");
}

#[test]
fn trailers_and_errors_of_the_application_body_reach_every_attempt() {
    let (tee, tx, _) = new_tee(CHANNEL_BUFFER);
    let w = Arc::new(Count::default());
    let mut first = ReplayBody::new(tee.clone());
    let mut trailers = HeaderMap::new();
    trailers.insert("x-end", HeaderValue::from_static("1"));
    tx.try_send(Ok(Frame::trailers(trailers))).unwrap();
    drop(tx);
    for body in [&mut first, &mut ReplayBody::new(tee.clone())] {
        match poll(body, &w) {
            Poll::Ready(Some(Ok(frame))) => {
                assert_eq!(frame.into_trailers().unwrap()["x-end"], "1")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(poll(body, &w), Poll::Ready(None)));
    }

    let (tee, tx, _) = new_tee(CHANNEL_BUFFER);
    tx.try_send(Err(Status::cancelled("the caller gave up")))
        .unwrap();
    let mut body = ReplayBody::new(tee);
    match poll(&mut body, &w) {
        Poll::Ready(Some(Err(status))) => {
            assert!(
                status.message().contains("the caller gave up"),
                "{status:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_throttle_follows_a6_arithmetic() {
    let throttle = Throttle::new(RetryThrottling {
        max_milli_tokens: 10_000,
        milli_token_ratio: 100,
    });
    assert!(throttle.allows());
    for _ in 0..5 {
        throttle.failure();
    }
    // 5 tokens left: not above half of 10.
    assert_eq!(throttle.tokens(), 5_000);
    assert!(!throttle.allows());
    throttle.success();
    assert_eq!(throttle.tokens(), 5_100);
    assert!(throttle.allows());
    for _ in 0..100 {
        throttle.success();
    }
    assert_eq!(throttle.tokens(), 10_000, "never above maxTokens");
    for _ in 0..20 {
        throttle.failure();
    }
    assert_eq!(throttle.tokens(), 0, "never below zero");
}

#[test]
fn pushback_reads_as_a6_says() {
    let mut headers = HeaderMap::new();
    assert_eq!(pushback(&headers), Pushback::None);
    for (value, want) in [
        ("250", Pushback::After(Duration::from_millis(250))),
        ("0", Pushback::After(Duration::ZERO)),
        ("-1", Pushback::Stop),
        ("soon", Pushback::Stop),
        ("99999999999", Pushback::Stop),
    ] {
        headers.insert(PUSHBACK, HeaderValue::from_static(value));
        assert_eq!(pushback(&headers), want, "{value}");
    }
}
