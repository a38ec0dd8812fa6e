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
    // The close that ends the peer's graceful shutdown: the HTTP/2 connection's layer.
    assert_eq!(lost.layer(), Layer::Connection);
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
        Error::new(Kind::Timeout(ConnectStep::Tcp)),
        Error::new(Kind::DeadlineExceeded)
    );
}

#[test]
fn resolution_failures_are_their_own_layer() {
    let e = Error::new(Kind::Resolve {
        host: "nowhere.invalid".into(),
        source: std::io::Error::other("Name or service not known"),
    })
    .with_fate_if_none(Fate::NotSent);
    assert_eq!(e.layer(), Layer::Resolve);
    assert_eq!(e.initiator(), Initiator::Application);
    assert!(e.is_retry_safe());
    assert!(
        e.to_string()
            .starts_with("could not resolve the host name \"nowhere.invalid\""),
        "{e}"
    );
    assert!(e.advice().contains("host name"), "{}", e.advice());
}

#[test]
fn timeouts_say_which_step_stalled() {
    for (step, layer, words) in [
        (ConnectStep::Tcp, Layer::Transport, "TCP connect timed out"),
        (
            ConnectStep::Tls,
            Layer::Tls,
            "TLS handshake timed out (TCP had connected)",
        ),
        (
            ConnectStep::Http2,
            Layer::Connection,
            "HTTP/2 handshake timed out",
        ),
        (
            ConnectStep::Resolve,
            Layer::Resolve,
            "name resolution timed out",
        ),
    ] {
        let e = Error::new(Kind::Timeout(step)).with_fate_if_none(Fate::NotSent);
        assert_eq!(e.timeout_step(), Some(step));
        assert!(e.is_timeout());
        assert_eq!(e.layer(), layer, "{step}");
        assert_eq!(e.initiator(), Initiator::Library);
        assert!(e.to_string().starts_with(words), "{e}");
    }
}

#[test]
fn alpn_refusal_is_not_a_certificate_problem() {
    let e = Error::new(Kind::AlpnRefused);
    assert_eq!(e.layer(), Layer::Tls);
    assert!(e.to_string().contains("does not offer HTTP/2"), "{e}");
    assert!(!e.advice().contains("certificate"), "{}", e.advice());
    let ca = Error::new(Kind::Tls {
        message: format!("the server's certificate is a CA certificate ({CA_AS_LEAF})"),
        mismatch: false,
    });
    assert!(ca.advice().contains("leaf certificate"), "{}", ca.advice());
}

#[test]
fn a_reset_connection_reads_unlike_an_orderly_close() {
    let reset = Error::new(Kind::Io(std::io::ErrorKind::ConnectionReset.into()))
        .for_stream(Some(Fate::MaybeProcessed), StreamId::new(1));
    assert!(
        reset.to_string().contains("reset by the peer (TCP RST)"),
        "{reset}"
    );
    assert_eq!(reset.layer(), Layer::Transport);
    assert_eq!(reset.stream_id(), Some(StreamId::new(1)));
    let closed = Error::proto(
        steadfast_proto::Error::TransportClosed { after_goaway: None },
        Some(Fate::MaybeProcessed),
        Some(StreamId::new(1)),
    );
    assert!(!closed.to_string().contains("reset"), "{closed}");
}

#[test]
fn goaway_hints_follow_the_code_and_the_code_survives_the_close() {
    let after = |code, debug| {
        Error::proto(
            steadfast_proto::Error::TransportClosed {
                after_goaway: Some(goaway(1, code, debug)),
            },
            Some(Fate::MaybeProcessed),
            Some(StreamId::new(1)),
        )
    };
    let pings = after(ErrorCode::ENHANCE_YOUR_CALM, "too_many_pings");
    assert_eq!(pings.code(), Some(ErrorCode::ENHANCE_YOUR_CALM));
    assert!(pings.hint().unwrap().contains("keepalive"));
    let protocol = after(ErrorCode::PROTOCOL_ERROR, "bad");
    assert!(protocol.hint().unwrap().contains("retry will likely fail"));
    let drain = after(ErrorCode::NO_ERROR, "max_age");
    assert!(drain.hint().unwrap().contains("draining"));
    // In flight when the connection reached its maximum age: the grace was too short.
    assert!(drain.hint().unwrap().contains("grace period"));
    let refused = Error::proto(
        steadfast_proto::Error::GoAway {
            goaway: goaway(0, ErrorCode::NO_ERROR, "max_age"),
            initiator: Initiator::Remote,
            reason: None,
        },
        Some(Fate::Refused),
        Some(StreamId::new(1)),
    );
    assert!(refused.hint().unwrap().contains("new connection"));
    assert!(!refused.hint().unwrap().contains("grace period"));
    // A GOAWAY this side sent on its own says nothing about the server's intent.
    let ours = Error::proto(
        steadfast_proto::Error::GoAway {
            goaway: goaway(0, ErrorCode::NO_ERROR, ""),
            initiator: Initiator::Application,
            reason: None,
        },
        None,
        None,
    );
    assert_eq!(ours.hint(), None);
}

#[test]
fn resets_from_the_peer_hint_at_who_ended_the_stream() {
    let reset = |code| {
        Error::proto(
            steadfast_proto::Error::Reset {
                stream_id: StreamId::new(1),
                code,
                initiator: Initiator::Remote,
                reason: None,
            },
            Some(Fate::MaybeProcessed),
            None,
        )
    };
    assert!(reset(ErrorCode::CANCEL)
        .hint()
        .unwrap()
        .contains("cancelled the stream"));
    assert!(reset(ErrorCode::NO_ERROR)
        .hint()
        .unwrap()
        .contains("before its trailers"));
    assert_eq!(reset(ErrorCode::INTERNAL_ERROR).hint(), None);
}

#[test]
fn a_settings_ack_that_never_came_and_a_silent_keepalive_have_their_own_hints() {
    let unacked = Error::proto(
        steadfast_proto::Error::GoAway {
            goaway: goaway(
                0,
                ErrorCode::SETTINGS_TIMEOUT,
                "SETTINGS not acknowledged in time",
            ),
            initiator: Initiator::Library,
            reason: Some("SETTINGS not acknowledged in time".into()),
        },
        Some(Fate::MaybeProcessed),
        Some(StreamId::new(1)),
    );
    assert!(unacked.hint().unwrap().contains("never acknowledged"));
    let keepalive = Error::proto(
        steadfast_proto::Error::KeepaliveTimeout {
            timeout: std::time::Duration::from_millis(300),
        },
        Some(Fate::MaybeProcessed),
        Some(StreamId::new(1)),
    );
    assert!(keepalive.hint().unwrap().contains("even PINGs"));
}
