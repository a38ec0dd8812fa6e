//! §3.4: what a client says when the server's first bytes are not a server preface.
//! Each is a PROTOCOL_ERROR connection error whose reason names the mismatch, so a
//! person sees "the server answered with HTML", not "frame too large".

mod support;

use steadfast_proto::{Config, Error, ErrorCode, Event, Role};
use support::Peer;

/// The reason of the connection error a client reports after reading `bytes` first.
fn reason_after(bytes: &[u8]) -> String {
    let mut peer = Peer::client_unestablished(Config::default());
    peer.send_bytes(bytes);
    let events = peer.take_events();
    let error = events
        .iter()
        .find_map(|e| match e {
            Event::Closed(Some(error)) => Some(error.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the client fails: {events:?}"));
    match error {
        Error::GoAway {
            goaway,
            reason: Some(reason),
            ..
        } => {
            assert_eq!(goaway.code, ErrorCode::PROTOCOL_ERROR, "{reason}");
            reason.into_owned()
        }
        other => panic!("a library GOAWAY with a reason, not {other:?}"),
    }
}

/// A bare HTML page (what `python -m http.server` sends to the preface) is shown,
/// escaped and cut short, instead of being read as a frame of 3.9 MB.
#[test]
fn s3_4_an_html_reply_is_shown_not_misread_as_a_frame() {
    let page = b"<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">";
    let reason = reason_after(page);
    assert!(
        reason.starts_with("the server's first bytes are not HTTP/2"),
        "{reason}"
    );
    assert!(
        reason.contains(r#"<!DOCTYPE HTML>\n<html lang=\"en\">"#),
        "{reason}"
    );
    assert!(reason.ends_with("..."), "cut after 48 bytes: {reason}");
}

/// A first frame that is a frame, but not SETTINGS, is named the same way.
#[test]
fn s3_4_a_first_frame_other_than_settings_is_not_a_server_preface() {
    // A PING on stream 0: a valid frame, but not the preface.
    let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let reason = reason_after(&ping);
    assert!(
        reason.starts_with("the server's first bytes are not HTTP/2"),
        "{reason}"
    );
}

/// The diagnoses that existed before keep their words: HTTP/1 and TLS replies.
#[test]
fn s3_4_http1_and_tls_replies_keep_their_diagnosis() {
    let reason = reason_after(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    assert!(reason.contains("answered with HTTP/1.x"), "{reason}");
    let reason = reason_after(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]);
    assert!(reason.contains("answered with TLS"), "{reason}");
}

/// A server preface split across reads is waited for, not misjudged early.
#[test]
fn s3_4_a_preface_arriving_byte_by_byte_is_accepted() {
    let mut peer = Peer::raw(Role::Client, Config::default());
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    for b in settings {
        peer.send_bytes(&[b]);
    }
    assert!(peer.conn.is_established());
    assert!(!peer.conn.is_closed());
}
