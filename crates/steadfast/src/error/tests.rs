use bytes::Bytes;
use steadfast_proto::{ErrorCode, Fate, GoAway, Initiator, StreamId};

use super::*;

fn goaway(last: u32, code: ErrorCode, debug: &'static str) -> GoAway {
    GoAway {
        code,
        last_stream_id: StreamId::new(last),
        debug_data: Bytes::from_static(debug.as_bytes()),
    }
}

#[test]
fn refused_by_goaway_reads_as_a_sentence_and_is_retry_safe() {
    let e = Error::proto(
        steadfast_proto::Error::GoAway {
            goaway: goaway(7, ErrorCode::NO_ERROR, "max_age"),
            initiator: Initiator::Remote,
            reason: None,
        },
        Some(Fate::Refused),
        Some(StreamId::new(9)),
    );
    assert_eq!(e.layer(), Layer::Connection);
    assert_eq!(e.initiator(), Initiator::Remote);
    assert_eq!(e.fate(), Some(Fate::Refused));
    assert!(e.is_retry_safe());
    assert_eq!(e.code(), Some(ErrorCode::NO_ERROR));
    assert_eq!(e.goaway().unwrap().last_stream_id, StreamId::new(7));
    assert_eq!(
        e.to_string(),
        "stream 9 refused by the peer's GOAWAY(last_stream_id=7, NO_ERROR, debug data \"max_age\") \
         (never processed by the server: safe to retry, on another connection)"
    );
}

#[test]
fn reset_stream_keeps_code_and_stream() {
    let e = Error::proto(
        steadfast_proto::Error::Reset {
            stream_id: StreamId::new(3),
            code: ErrorCode::INTERNAL_ERROR,
            initiator: Initiator::Remote,
            reason: None,
        },
        Some(Fate::MaybeProcessed),
        None,
    );
    assert_eq!(e.layer(), Layer::Stream);
    assert_eq!(e.stream_id(), Some(StreamId::new(3)));
    assert!(!e.is_retry_safe());
    assert_eq!(
        e.to_string(),
        "stream 3 reset by the peer with INTERNAL_ERROR \
         (the server may have processed it: retry only if the request is idempotent)"
    );
}

#[test]
fn transport_errors() {
    let e = Error::new(Kind::Connect(std::io::ErrorKind::ConnectionRefused.into()))
        .context("connecting to a:1");
    assert_eq!(e.layer(), Layer::Transport);
    assert_eq!(e.fate(), None);
    assert_eq!(
        e.io_error_kind(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(
        e.to_string()
            .starts_with("connecting to a:1: TCP connect failed"),
        "{e}"
    );

    let lost = Error::proto(
        steadfast_proto::Error::TransportClosed {
            after_goaway: Some(goaway(5, ErrorCode::NO_ERROR, "")),
        },
        Some(Fate::MaybeProcessed),
        Some(StreamId::new(5)),
    );
    assert_eq!(lost.layer(), Layer::Transport);
    assert_eq!(lost.goaway().unwrap().last_stream_id, StreamId::new(5));
}

#[test]
fn tls_and_alpn_errors_say_what_to_check() {
    let e = Error::new(Kind::AlpnMismatch(Some(b"http/1.1".to_vec())));
    assert_eq!(e.layer(), Layer::Tls);
    assert!(e.to_string().contains("ALPN chose \"http/1.1\""), "{e}");
    assert!(e.to_string().contains("h2"), "{e}");
}

#[test]
fn context_on_a_shared_error_keeps_everything() {
    let e = Error::with_fate(Kind::ConnectionGone, Some(Fate::NotSent), None);
    let shared = e.clone();
    let with = shared.context("pool");
    assert_eq!(with.fate(), Some(Fate::NotSent));
    assert!(
        with.to_string()
            .starts_with("pool: the HTTP/2 connection is closed"),
        "{with}"
    );
    assert_eq!(
        e.to_string(),
        "the HTTP/2 connection is closed (never sent: safe to retry)"
    );
}

#[test]
fn errors_compare_by_what_they_say() {
    let refused = |stream| {
        Error::proto(
            steadfast_proto::Error::GoAway {
                goaway: goaway(7, ErrorCode::NO_ERROR, "max_age"),
                initiator: Initiator::Remote,
                reason: None,
            },
            Some(Fate::Refused),
            Some(StreamId::new(stream)),
        )
    };
    assert_eq!(refused(9), refused(9));
    assert_eq!(refused(9), refused(9).clone());
    assert_ne!(refused(9), refused(11));
    // The fate is part of the answer: the same failure, another fate, is another error.
    let maybe = Error::with_fate(Kind::ConnectionGone, Some(Fate::MaybeProcessed), None);
    let never = Error::with_fate(Kind::ConnectionGone, Some(Fate::NotSent), None);
    assert_ne!(maybe, never);
    assert_eq!(
        maybe,
        maybe.clone().context("x").modify(|i| i.context = None)
    );
    // Sources that are not comparable compare by kind and text.
    let reset = |text: &str| {
        Error::new(Kind::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            text.to_owned(),
        )))
    };
    assert_eq!(reset("peer reset"), reset("peer reset"));
    assert_ne!(reset("peer reset"), reset("other"));
    assert_ne!(
        Error::new(Kind::ConnectTimeout),
        Error::new(Kind::DeadlineExceeded)
    );
}
