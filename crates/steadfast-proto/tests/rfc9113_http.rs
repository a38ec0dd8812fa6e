//! RFC 9113 conformance, HTTP semantics (§8): message framing, malformed messages,
//! field validity, pseudo-header fields, server push and CONNECT, as seen by a server
//! (requests) and a client (responses) under test. Malformed messages are stream
//! errors of type PROTOCOL_ERROR (§8.1.1): the connection carries on, which every test
//! checks by getting another stream through afterwards (HPACK state included).

mod support;

use bytes::Bytes;
use steadfast_proto::frame::Frame;
use steadfast_proto::{Error, ErrorCode, Event, Fate, Initiator, StreamId, UserError};
use support::{client, flag, kind, library_reset, request, response, server, sid, Peer, GET};

/// The GET request fields plus `extra`.
fn get_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = GET.to_vec();
    fields.extend_from_slice(extra);
    fields
}

/// (Server under test) Opens stream `id` with these request fields and expects the
/// request to reach the application.
fn accepted_request(
    peer: &mut Peer,
    id: u32,
    fields: &[(&str, &str)],
    end_stream: bool,
) -> http::Request<()> {
    peer.send_headers(id, fields, end_stream);
    peer.expect_silence();
    let mut events = peer.take_stream_events();
    match events.pop() {
        Some(Event::Request {
            id: i,
            request,
            end_stream: e,
        }) if i == sid(id) && e == end_stream && events.is_empty() => request,
        other => panic!("expected the request on {id}, got {other:?} after {events:?}"),
    }
}

/// (Server under test) The request `fields` on stream `id` are malformed: the stream is
/// reset with PROTOCOL_ERROR and the application never sees it.
fn malformed_request(peer: &mut Peer, id: u32, fields: &[(&str, &str)], end_stream: bool) {
    peer.send_headers(id, fields, end_stream);
    let events = peer.expect_stream_error(id, ErrorCode::PROTOCOL_ERROR);
    assert!(
        events.is_empty(),
        "{fields:?} reached the application: {events:?}"
    );
}

/// Each field list is a malformed request on a new stream; then a valid one gets
/// through.
fn malformed_requests(cases: &[Vec<(&str, &str)>]) {
    let mut peer = server();
    let mut id = 1;
    for fields in cases {
        malformed_request(&mut peer, id, fields, true);
        id += 2;
    }
    peer.server_roundtrip(id);
}

/// (Client under test) The response `fields` to a GET are malformed: "Clients MUST NOT
/// accept a malformed response" (§8.1.1) — the stream is reset with PROTOCOL_ERROR and
/// fails with fate `Processed` (the server did answer), without any response event.
fn malformed_response(peer: &mut Peer, fields: &[(&str, &str)], end_stream: bool) {
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), fields, end_stream);
    let events = peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Response { .. } | Event::Informational { .. })),
        "{fields:?} was accepted: {events:?}"
    );
    assert_eq!(
        library_reset(&events, id.get(), ErrorCode::PROTOCOL_ERROR),
        Some(Fate::Processed)
    );
}

/// Each field list is a malformed response on a new stream; then a valid one gets
/// through.
fn malformed_responses(cases: &[Vec<(&str, &str)>]) {
    let mut peer = client();
    for fields in cases {
        malformed_response(&mut peer, fields, true);
    }
    peer.client_roundtrip();
}

/// (Client under test) Opens a GET and receives a 200 head without END_STREAM.
fn open_response(peer: &mut Peer, extra: &[(&str, &str)]) -> StreamId {
    let id = peer.client_open(&request("GET", "/"), true);
    let mut fields = vec![(":status", "200")];
    fields.extend_from_slice(extra);
    peer.send_headers(id.get(), &fields, false);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::Response {
                end_stream: false,
                ..
            }]
        ),
        "{events:?}"
    );
    id
}

// ---- §8.1 HTTP Message Framing ----

/// §8.1: "An endpoint that receives a HEADERS frame without the END_STREAM flag set
/// after receiving the HEADERS frame that opens a request or after receiving a final
/// (non-informational) status code MUST treat the corresponding request or response as
/// malformed."
#[test]
fn s8_1_trailers_without_end_stream_are_malformed() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, false);
    peer.send_data(1, b"body", false);
    peer.take_stream_events();
    peer.send_headers(1, &[("x-trailer", "t")], false);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.server_roundtrip(3);

    let mut peer = client();
    let id = open_response(&mut peer, &[]);
    peer.send_headers(id.get(), &[("x-trailer", "t")], false);
    let events = peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    assert_eq!(
        library_reset(&events, id.get(), ErrorCode::PROTOCOL_ERROR),
        Some(Fate::Processed)
    );
    peer.client_roundtrip();
}

/// §8.1: "Trailers MUST NOT include pseudo-header fields. An endpoint that receives
/// pseudo-header fields in trailers MUST treat the request or response as malformed" —
/// including a second final response head.
#[test]
fn s8_1_pseudo_header_in_trailers_is_malformed() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, false);
    peer.send_headers(1, &[(":path", "/again")], true);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.server_roundtrip(3);

    let mut peer = client();
    let id = open_response(&mut peer, &[]);
    peer.send_headers(id.get(), &[(":status", "200")], true);
    peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    peer.client_roundtrip();
}

/// §8.1: "A HEADERS frame with the END_STREAM flag set that carries an informational
/// status code is malformed." Without END_STREAM, any number of 1xx may precede the
/// final response. This endpoint also refuses to send such a frame.
#[test]
fn s8_1_informational_response_with_end_stream_is_malformed() {
    let mut peer = client();
    malformed_response(&mut peer, &[(":status", "103"), ("link", "</a>")], true);
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[(":status", "100")], false);
    peer.send_headers(id.get(), &[(":status", "103"), ("link", "</a>")], false);
    peer.send_headers(id.get(), &[(":status", "200")], true);
    let events = peer.take_stream_events();
    assert!(
        matches!(events.as_slice(), [Event::Informational { .. }, Event::Informational { response, .. }, Event::Response { end_stream: true, .. }] if response.status() == 103),
        "{events:?}"
    );
    peer.expect_silence();

    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, true);
    let err = peer
        .conn
        .send_response(sid(1), &response(103), true)
        .unwrap_err();
    assert!(matches!(err, Error::User(UserError::MalformedHeaders(_))));
    peer.expect_silence();
}

/// §8.1: a server "MAY request that the client abort transmission of a request without
/// error by sending a RST_STREAM with an error code of NO_ERROR after sending a
/// complete response ... Clients MUST NOT discard responses as a result of receiving
/// such a RST_STREAM": the response and its body were delivered, the stream ends with
/// fate `Processed`, and the client answers nothing.
#[test]
fn s8_1_rst_stream_no_error_after_a_complete_response_keeps_the_response() {
    let mut peer = client();
    let id = peer.client_open(&request("POST", "/upload"), false);
    peer.conn
        .send_data(id, Bytes::from_static(b"part of the body"), false)
        .unwrap();
    peer.frames();
    peer.send_headers(id.get(), &[(":status", "413")], false);
    peer.send_data(id.get(), b"too large", true);
    peer.send_raw(
        kind::RST_STREAM,
        0,
        id.get(),
        &ErrorCode::NO_ERROR.0.to_be_bytes(),
    );
    peer.expect_silence();
    let events = peer.take_stream_events();
    match events.as_slice() {
        [Event::Response {
            response,
            end_stream: false,
            ..
        }, Event::Data {
            data,
            end_stream: true,
            ..
        }, Event::StreamError {
            error:
                Error::Reset {
                    code: ErrorCode::NO_ERROR,
                    initiator: Initiator::Remote,
                    ..
                },
            fate: Some(Fate::Processed),
            ..
        }] => {
            assert_eq!(response.status(), 413);
            assert_eq!(data, "too large");
        }
        other => panic!("{other:?}"),
    }
    assert!(peer
        .conn
        .send_data(id, Bytes::from_static(b"rest"), true)
        .is_err());
    peer.expect_silence();
}

// ---- §8.1.1 Malformed Messages: content-length ----

/// §8.1.1: "A request or response is also malformed if the value of a content-length
/// header field does not equal the sum of the DATA frame payload lengths" — less data
/// than announced, detected at END_STREAM.
#[test]
fn s8_1_1_content_length_larger_than_data_is_malformed() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &get_with(&[("content-length", "10")]), false);
    peer.send_data(1, b"hello", true);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(
        events.len(),
        1,
        "the last DATA is not delivered: {events:?}"
    );
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.server_roundtrip(3);
}

/// §8.1.1: more data than content-length is malformed as soon as it arrives.
#[test]
fn s8_1_1_content_length_smaller_than_data_is_malformed() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &get_with(&[("content-length", "3")]), false);
    peer.send_data(1, b"hel", false);
    assert_eq!(peer.take_stream_events().len(), 1);
    peer.send_data(1, b"lo", false);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.server_roundtrip(3);

    let mut peer = client();
    let id = open_response(&mut peer, &[("content-length", "2")]);
    peer.send_data(id.get(), b"abc", true);
    let events = peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    assert_eq!(
        library_reset(&events, id.get(), ErrorCode::PROTOCOL_ERROR),
        Some(Fate::Processed)
    );
    peer.client_roundtrip();
}

/// §8.1.1: a non-zero content-length with END_STREAM on the HEADERS frame (no DATA at
/// all) is malformed.
#[test]
fn s8_1_1_content_length_with_end_stream_on_headers_is_malformed() {
    malformed_requests(&[get_with(&[("content-length", "5")])]);
    malformed_responses(&[vec![(":status", "200"), ("content-length", "5")]]);
}

/// §8.1.1: trailers end the content; the sum is checked then too.
#[test]
fn s8_1_1_content_length_mismatch_before_trailers_is_malformed() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &get_with(&[("content-length", "10")]), false);
    peer.send_data(1, b"hello", false);
    peer.take_stream_events();
    peer.send_headers(1, &[("x-trailer", "t")], true);
    peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    peer.server_roundtrip(3);
}

/// §8.1.1: content-length values that disagree or are not numbers are malformed.
#[test]
fn s8_1_1_conflicting_or_invalid_content_length_is_malformed() {
    malformed_requests(&[
        get_with(&[("content-length", "1"), ("content-length", "2")]),
        get_with(&[("content-length", "1, 2")]),
        get_with(&[("content-length", "abc")]),
        get_with(&[("content-length", "-1")]),
        get_with(&[("content-length", "")]),
    ]);
}

/// §8.1.1 (positive): content-length matching the DATA, across frames and with
/// trailers, and repeated identical values, are accepted.
#[test]
fn s8_1_1_content_length_matching_the_data_is_accepted() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &get_with(&[("content-length", "5")]), false);
    peer.send_data(1, b"he", false);
    peer.send_data(1, b"llo", false);
    peer.send_headers(1, &[("x-trailer", "t")], true);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Data { .. },
                Event::Data { .. },
                Event::Trailers { .. }
            ]
        ),
        "{events:?}"
    );
    accepted_request(&mut peer, 3, &get_with(&[("content-length", "0")]), true);
    accepted_request(
        &mut peer,
        5,
        &get_with(&[("content-length", "2"), ("content-length", "2")]),
        false,
    );
    peer.send_data(5, b"ok", true);
    assert_eq!(peer.take_stream_events().len(), 1);
    peer.expect_silence();
}

/// §8.1.1: "A response that is defined to have no content ... MAY have a non-zero
/// content-length header field, even though no content is included in DATA frames" —
/// the response to HEAD, 204 and 304. DATA on them is malformed (they have no content).
#[test]
fn s8_1_1_responses_without_content_may_carry_content_length() {
    let mut peer = client();
    let head = peer.client_open(&request("HEAD", "/"), true);
    peer.send_headers(
        head.get(),
        &[(":status", "200"), ("content-length", "100")],
        true,
    );
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [Event::Response {
                end_stream: true,
                ..
            }]
        ),
        "{events:?}"
    );
    for status in ["204", "304"] {
        let id = peer.client_open(&request("GET", "/"), true);
        peer.send_headers(
            id.get(),
            &[(":status", status), ("content-length", "10")],
            true,
        );
        let events = peer.take_stream_events();
        assert!(
            matches!(events.as_slice(), [Event::Response { .. }]),
            "{status}: {events:?}"
        );
    }
    let head = peer.client_open(&request("HEAD", "/"), true);
    peer.send_headers(
        head.get(),
        &[(":status", "200"), ("content-length", "3")],
        false,
    );
    peer.take_stream_events();
    peer.send_data(head.get(), b"abc", true);
    peer.expect_stream_error(head.get(), ErrorCode::PROTOCOL_ERROR);
    peer.client_roundtrip();
}

// ---- §8.2 HTTP Fields ----

/// §8.2: "A request or response containing uppercase characters in field names MUST
/// be treated as malformed" (§8.2.1: names MUST NOT contain 0x41-0x5a).
#[test]
fn s8_2_uppercase_field_name_is_malformed() {
    malformed_requests(&[get_with(&[("X-Upper", "1")]), get_with(&[("x-upPer", "1")])]);
    malformed_responses(&[vec![(":status", "200"), ("Content-Type", "text/plain")]]);
}

/// §8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a,
/// or 0x7f-0xff" and, pseudo-header fields aside, "MUST NOT include a colon"; a request
/// that does "MUST be treated as malformed". An empty name is not a valid token either.
#[test]
fn s8_2_1_field_name_with_forbidden_characters_is_malformed() {
    malformed_requests(&[
        get_with(&[("x y", "1")]),
        get_with(&[("x:y", "1")]),
        get_with(&[("x\u{7f}", "1")]),
        get_with(&[("x\u{e9}", "1")]),
        get_with(&[("x\ty", "1")]),
        get_with(&[("\u{1}x", "1")]),
        get_with(&[("x\u{0}", "1")]),
        get_with(&[("", "1")]),
    ]);
    malformed_responses(&[vec![(":status", "200"), ("x y", "1")]]);
}

/// §8.2.1: "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed
/// (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position."
#[test]
fn s8_2_1_field_value_with_nul_cr_or_lf_is_malformed() {
    malformed_requests(&[
        get_with(&[("x", "a\0b")]),
        get_with(&[("x", "a\rb")]),
        get_with(&[("x", "a\nb")]),
        get_with(&[("x", "a\r\nx-injected: 1")]),
    ]);
    malformed_responses(&[vec![(":status", "200"), ("x", "a\nb")]]);
    // In trailers too.
    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, false);
    peer.send_headers(1, &[("x-trailer", "a\0b")], true);
    peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    peer.server_roundtrip(3);
}

/// §8.2.1: "A field value MUST NOT start or end with an ASCII whitespace character
/// (ASCII SP or HTAB, 0x20 or 0x09)." Inner whitespace is fine.
#[test]
fn s8_2_1_field_value_with_leading_or_trailing_whitespace_is_malformed() {
    malformed_requests(&[
        get_with(&[("x", " a")]),
        get_with(&[("x", "a ")]),
        get_with(&[("x", "\ta")]),
        get_with(&[("x", "a\t")]),
    ]);
    malformed_responses(&[vec![(":status", "200"), ("x", "a ")]]);
    let mut peer = server();
    let req = accepted_request(
        &mut peer,
        1,
        &get_with(&[("x", "a b\tc"), ("empty", "")]),
        true,
    );
    assert_eq!(req.headers()["x"], "a b\tc");
    assert_eq!(req.headers()["empty"], "");
}

/// §8.2.2: "Any message containing connection-specific header fields MUST be treated
/// as malformed" — Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding and
/// Upgrade.
#[test]
fn s8_2_2_connection_specific_header_fields_are_malformed() {
    malformed_requests(&[
        get_with(&[("connection", "close")]),
        get_with(&[("proxy-connection", "keep-alive")]),
        get_with(&[("keep-alive", "timeout=5")]),
        get_with(&[("transfer-encoding", "chunked")]),
        get_with(&[("upgrade", "h2c")]),
    ]);
    malformed_responses(&[
        vec![(":status", "200"), ("transfer-encoding", "chunked")],
        vec![(":status", "200"), ("connection", "keep-alive")],
    ]);
}

/// §8.2.2: "The only exception to this is the TE header field, which MAY be present in
/// an HTTP/2 request; when it is, it MUST NOT contain any value other than
/// \"trailers\"."
#[test]
fn s8_2_2_te_other_than_trailers_is_malformed() {
    malformed_requests(&[
        get_with(&[("te", "gzip")]),
        get_with(&[("te", "trailers, deflate")]),
    ]);
    let mut peer = server();
    let req = accepted_request(&mut peer, 1, &get_with(&[("te", "trailers")]), true);
    assert_eq!(req.headers()["te"], "trailers");
}

/// §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
/// connection-specific header fields" (nor `te` other than "trailers"): the
/// application's attempt fails and nothing is written.
#[test]
fn s8_2_2_endpoint_refuses_to_generate_connection_specific_headers() {
    let mut peer = client();
    for (name, value) in [
        ("connection", "close"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
    ] {
        let mut req = request("GET", "/");
        req.headers_mut().insert(name, value.parse().unwrap());
        let err = peer.conn.send_request(&req, true).unwrap_err();
        assert!(
            matches!(err, Error::User(UserError::MalformedHeaders(_))),
            "{name}"
        );
    }
    peer.expect_silence();
    assert_eq!(peer.client_roundtrip(), sid(1), "no stream id was used");

    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, false);
    let res = http::Response::builder()
        .status(200)
        .header("transfer-encoding", "chunked")
        .body(())
        .unwrap();
    assert!(peer.conn.send_response(sid(1), &res, false).is_err());
    peer.conn
        .send_response(sid(1), &response(200), false)
        .unwrap();
    peer.frames();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("keep-alive", "5".parse().unwrap());
    assert!(peer.conn.send_trailers(sid(1), &trailers).is_err());
    peer.expect_silence();
}

// ---- §8.3 HTTP Control Data ----

/// §8.3: "Any request or response that contains a pseudo-header field that appears in
/// a field block after a regular field line MUST be treated as malformed."
#[test]
fn s8_3_pseudo_header_after_regular_field_is_malformed() {
    malformed_requests(&[vec![
        (":method", "GET"),
        (":scheme", "http"),
        ("x", "1"),
        (":authority", "example.test"),
        (":path", "/"),
    ]]);
    malformed_responses(&[vec![("x", "1"), (":status", "200")]]);
}

/// §8.3: "A field block for an HTTP request or response that contains a repeated
/// pseudo-header field name MUST be treated as malformed" — even with equal values.
#[test]
fn s8_3_repeated_pseudo_header_is_malformed() {
    malformed_requests(&[
        vec![
            (":method", "GET"),
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":scheme", "https"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":path", "/"),
        ],
        get_with(&[(":authority", "example.test")]),
    ]);
    malformed_responses(&[vec![(":status", "200"), (":status", "200")]]);
}

/// §8.3: "Endpoints MUST treat a request or response that contains undefined or
/// invalid pseudo-header fields as malformed" — `:protocol` is undefined unless
/// SETTINGS_ENABLE_CONNECT_PROTOCOL was sent (RFC 8441).
#[test]
fn s8_3_undefined_pseudo_header_is_malformed() {
    malformed_requests(&[
        get_with(&[(":foo", "bar")]),
        get_with(&[(":protocol", "websocket")]),
    ]);
    malformed_responses(&[vec![(":status", "200"), (":foo", "bar")]]);
}

/// §8.3: "Pseudo-header fields defined for responses MUST NOT appear in requests".
#[test]
fn s8_3_response_pseudo_header_in_request_is_malformed() {
    malformed_requests(&[get_with(&[(":status", "200")])]);
}

/// §8.3: "pseudo-header fields defined for requests MUST NOT appear in responses".
#[test]
fn s8_3_request_pseudo_header_in_response_is_malformed() {
    malformed_responses(&[
        vec![(":status", "200"), (":path", "/")],
        vec![(":method", "GET"), (":status", "200")],
    ]);
}

/// §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the
/// :method, :scheme, and :path pseudo-header fields, unless they are CONNECT
/// requests. An HTTP request that omits mandatory pseudo-header fields is malformed."
#[test]
fn s8_3_1_missing_mandatory_pseudo_header_is_malformed() {
    malformed_requests(&[
        vec![
            (":scheme", "http"),
            (":authority", "example.test"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":authority", "example.test"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "example.test"),
        ],
        vec![],
    ]);
}

/// §8.3.1: `:path` "MUST NOT be empty for http or https URIs"; it holds an absolute
/// path, or '*' for an OPTIONS request only.
#[test]
fn s8_3_1_empty_or_invalid_path_is_malformed() {
    let with_path = |path| {
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "example.test"),
            (":path", path),
        ]
    };
    malformed_requests(&[with_path(""), with_path("relative"), with_path("*")]);
    let mut peer = server();
    let options = [
        (":method", "OPTIONS"),
        (":scheme", "https"),
        (":authority", "example.test"),
        (":path", "*"),
    ];
    let req = accepted_request(&mut peer, 1, &options, true);
    assert_eq!(req.uri().path(), "*");
    let req = accepted_request(&mut peer, 3, &with_path("/a?b=c"), true);
    assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/a?b=c");
}

/// §8.3.1: ":authority MUST NOT include the deprecated userinfo subcomponent for http
/// or https schemed URIs" — such a value is invalid, so the request is malformed
/// (§8.3).
#[test]
fn s8_3_1_authority_with_userinfo_is_malformed() {
    malformed_requests(&[
        vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "user@example.test"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "user:secret@example.test:8080"),
            (":path", "/"),
        ],
    ]);
}

/// §8.3.2: ":status ... MUST be included in all responses, including interim
/// responses; otherwise, the response is malformed" — and must be a valid status.
#[test]
fn s8_3_2_response_without_valid_status_is_malformed() {
    malformed_responses(&[
        vec![("content-type", "text/plain")],
        vec![],
        vec![(":status", "2000")],
        vec![(":status", "20")],
        vec![(":status", "abc")],
    ]);
    let mut peer = client();
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(id.get(), &[("x-no-status", "1")], false);
    peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
}

// ---- §8.4 Server Push ----

/// §8.4: "A client cannot push. Thus, servers MUST treat the receipt of a PUSH_PROMISE
/// frame as a connection error of type PROTOCOL_ERROR."
#[test]
fn s8_4_push_promise_received_by_server_is_connection_protocol_error() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, false);
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&peer.block(&GET));
    peer.send_raw(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &payload);
    peer.expect_conn_error(ErrorCode::PROTOCOL_ERROR, 1);
}

// ---- §8.5 The CONNECT Method ----

const CONNECT: [(&str, &str); 2] = [(":method", "CONNECT"), (":authority", "proxy.test:443")];

/// §8.5: a CONNECT request carries only :method and :authority (host and port); the
/// tunnel then carries DATA both ways.
#[test]
fn s8_5_connect_request_opens_a_tunnel() {
    let mut peer = server();
    let req = accepted_request(&mut peer, 1, &CONNECT, false);
    assert_eq!(req.method(), http::Method::CONNECT);
    assert_eq!(req.uri().authority().unwrap().as_str(), "proxy.test:443");
    peer.conn
        .send_response(sid(1), &response(200), false)
        .unwrap();
    peer.conn
        .send_data(sid(1), Bytes::from_static(b"server hello"), false)
        .unwrap();
    let frames = peer.frames();
    assert!(
        matches!(frames.as_slice(), [Frame::Headers(_), Frame::Data(d)] if d.data == "server hello")
    );
    peer.send_data(1, b"client hello", false);
    peer.send_data(1, b"", true);
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Data { .. },
                Event::Data {
                    end_stream: true,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

/// §8.5: "The :scheme and :path pseudo-header fields MUST be omitted. ... A CONNECT
/// request that does not conform to these restrictions is malformed."
#[test]
fn s8_5_connect_with_scheme_or_path_is_malformed() {
    malformed_requests(&[
        vec![CONNECT[0], (":scheme", "https"), CONNECT[1]],
        vec![CONNECT[0], CONNECT[1], (":path", "/")],
    ]);
}

/// §8.5: ":authority ... contains the host and port to connect to": without it, or
/// without a port (authority-form is `host:port`), the CONNECT request is malformed.
#[test]
fn s8_5_connect_without_host_and_port_is_malformed() {
    malformed_requests(&[
        vec![CONNECT[0]],
        vec![CONNECT[0], (":authority", "proxy.test")],
        vec![CONNECT[0], (":authority", "proxy.test:")],
        vec![CONNECT[0], (":authority", ":443")],
        vec![CONNECT[0], (":authority", "user@proxy.test:443")],
    ]);
}

/// §8.5: "Frame types other than DATA or stream management frames (RST_STREAM,
/// WINDOW_UPDATE, and PRIORITY) MUST NOT be sent on a connected stream and MUST be
/// treated as a stream error if received" — a HEADERS frame (trailers) on the tunnel,
/// on either side; this engine uses PROTOCOL_ERROR. The management frames are fine.
#[test]
fn s8_5_headers_on_a_connected_stream_is_stream_error() {
    let mut peer = server();
    accepted_request(&mut peer, 1, &CONNECT, false);
    peer.conn
        .send_response(sid(1), &response(200), false)
        .unwrap();
    peer.frames();
    peer.send_data(1, b"tunnel", false);
    peer.send_raw(kind::WINDOW_UPDATE, 0, 1, &100u32.to_be_bytes());
    peer.send_raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 7]);
    peer.expect_silence();
    assert_eq!(peer.take_stream_events().len(), 1);
    peer.send_headers(1, &[("x-trailer", "t")], true);
    let events = peer.expect_stream_error(1, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(library_reset(&events, 1, ErrorCode::PROTOCOL_ERROR), None);
    peer.server_roundtrip(3);

    let mut peer = client();
    let connect = http::Request::builder()
        .method("CONNECT")
        .uri("proxy.test:443")
        .body(())
        .unwrap();
    let id = peer.client_open(&connect, false);
    assert_eq!(
        peer.blocks.pop().unwrap().1,
        [
            (":method".to_string(), "CONNECT".to_string()),
            (":authority".to_string(), "proxy.test:443".to_string())
        ]
    );
    peer.send_headers(id.get(), &[(":status", "200")], false);
    peer.send_data(id.get(), b"tunnel", false);
    assert_eq!(peer.take_stream_events().len(), 2);
    peer.send_headers(id.get(), &[("x-trailer", "t")], true);
    let events = peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    assert_eq!(
        library_reset(&events, id.get(), ErrorCode::PROTOCOL_ERROR),
        Some(Fate::Processed)
    );
    peer.client_roundtrip();
}

/// §8.5 with §8.1.1: a 2xx response to CONNECT switches to tunnel mode "instead of
/// having content" (RFC 9110 §6.4.1), so a content-length on it does not constrain
/// the tunnel's DATA (RFC 9110 §9.3.6: the client "MUST ignore" it). A non-2xx response
/// is an ordinary one, trailers and content-length included.
#[test]
fn s8_5_content_length_on_a_2xx_connect_response_is_ignored() {
    let mut peer = client();
    let connect = http::Request::builder()
        .method("CONNECT")
        .uri("proxy.test:443")
        .body(())
        .unwrap();
    let id = peer.client_open(&connect, false);
    peer.send_headers(
        id.get(),
        &[(":status", "200"), ("content-length", "0")],
        false,
    );
    peer.send_data(id.get(), b"tunnel bytes", true);
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Response { .. },
                Event::Data {
                    end_stream: true,
                    ..
                }
            ]
        ),
        "{events:?}"
    );

    let id = peer.client_open(&connect, false);
    peer.send_headers(
        id.get(),
        &[(":status", "407"), ("content-length", "4")],
        false,
    );
    peer.send_data(id.get(), b"deny", false);
    peer.send_headers(id.get(), &[("x-trailer", "t")], true);
    peer.expect_silence();
    let events = peer.take_stream_events();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Response { .. },
                Event::Data { .. },
                Event::Trailers { .. }
            ]
        ),
        "{events:?}"
    );
}

// ---- §8.6 The Upgrade Header Field ----

/// §8.6: "HTTP/2 does not support the 101 (Switching Protocols) informational status
/// code." This engine treats a received 101 as malformed and refuses to send one.
#[test]
fn s8_6_101_switching_protocols_is_malformed() {
    let mut peer = client();
    let id = peer.client_open(&request("GET", "/"), true);
    peer.send_headers(
        id.get(),
        &[(":status", "101"), ("upgrade", "websocket")],
        false,
    );
    peer.expect_stream_error(id.get(), ErrorCode::PROTOCOL_ERROR);
    malformed_response(&mut peer, &[(":status", "101")], false);
    peer.client_roundtrip();

    let mut peer = server();
    accepted_request(&mut peer, 1, &GET, true);
    let err = peer
        .conn
        .send_response(sid(1), &response(101), false)
        .unwrap_err();
    assert!(matches!(err, Error::User(UserError::MalformedHeaders(_))));
    peer.expect_silence();
}
