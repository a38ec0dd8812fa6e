use bytes::Bytes;
use steadfast_hpack::DecodedField;

use super::*;

fn fields(list: &[(&str, &str)]) -> Vec<DecodedField> {
    list.iter()
        .map(|(n, v)| DecodedField {
            name: Bytes::copy_from_slice(n.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
            never_indexed: false,
        })
        .collect()
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.test"),
    (":path", "/a?b=c"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = GET.to_vec();
    v.extend_from_slice(extra);
    v
}

#[test]
fn valid_request_decodes() {
    let head = decode_request(
        fields(&with(&[("content-length", "3"), ("te", "trailers")])),
        false,
    )
    .unwrap();
    assert_eq!(head.head.method(), Method::GET);
    assert_eq!(head.head.uri().to_string(), "https://example.test/a?b=c");
    assert_eq!(head.content_length, Some(3));
}

#[test]
fn malformed_requests_are_rejected() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (GET[1..].to_vec(), "request without :method"),
        (vec![GET[0], GET[2], GET[3]], "request without :scheme"),
        (GET[..3].to_vec(), "request without :path"),
        (with(&[(":path", "/dup")]), "duplicate pseudo-header"),
        (
            vec![GET[0], ("x", "y"), GET[1], GET[2], GET[3]],
            "pseudo-header after a regular header",
        ),
        (
            with(&[(":status", "200")]),
            "response pseudo-header in a request",
        ),
        (with(&[(":foo", "x")]), "unknown pseudo-header"),
        (with(&[("Upper", "x")]), "uppercase field name"),
        (
            with(&[("connection", "close")]),
            "connection-specific header field",
        ),
        (
            with(&[("transfer-encoding", "chunked")]),
            "connection-specific header field",
        ),
        (with(&[("te", "gzip")]), "te header other than \"trailers\""),
        (with(&[("x", "a\0b")]), "field value contains NUL, CR or LF"),
        (
            with(&[("x", " lead")]),
            "field value with leading or trailing whitespace",
        ),
        (
            with(&[("content-length", "1"), ("content-length", "2")]),
            "conflicting content-length values",
        ),
        (with(&[("content-length", "-1")]), "invalid content-length"),
        (vec![GET[0], GET[1], GET[2], (":path", "")], "empty :path"),
        (
            vec![
                (":method", "CONNECT"),
                (":authority", "a:443"),
                (":path", "/"),
            ],
            "CONNECT request with :scheme or :path",
        ),
        (with(&[(":protocol", "websocket")]), "unknown pseudo-header"),
    ];
    for (list, why) in cases {
        let err = decode_request(fields(&list), false).unwrap_err();
        assert_eq!(err, why, "for {list:?}");
    }
}

#[test]
fn connect_and_extended_connect() {
    let plain = decode_request(
        fields(&[(":method", "CONNECT"), (":authority", "proxy.test:443")]),
        false,
    )
    .unwrap();
    assert_eq!(
        plain.head.uri().authority().unwrap().as_str(),
        "proxy.test:443"
    );
    let ext = decode_request(
        fields(&[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "a.test"),
            (":path", "/chat"),
        ]),
        true,
    )
    .unwrap();
    assert_eq!(
        ext.head.extensions().get::<Protocol>().unwrap().0,
        "websocket"
    );
}

#[test]
fn responses_and_trailers() {
    let ok = decode_response(fields(&[(":status", "200"), ("content-length", "5")])).unwrap();
    assert_eq!(ok.head.status(), 200);
    assert_eq!(ok.content_length, Some(5));
    assert_eq!(
        decode_response(fields(&[("x", "y")])).unwrap_err(),
        "response without :status"
    );
    assert_eq!(
        decode_response(fields(&[(":status", "101")])).unwrap_err(),
        "101 Switching Protocols in HTTP/2"
    );
    assert_eq!(
        decode_response(fields(&[(":status", "2000")])).unwrap_err(),
        ":status is not three digits"
    );
    assert_eq!(
        decode_response(fields(&[(":status", "200"), (":path", "/")])).unwrap_err(),
        "request or unknown pseudo-header in a response"
    );
    assert_eq!(
        decode_trailers(fields(&[(":status", "200")])).unwrap_err(),
        "pseudo-header in trailers"
    );
    let t = decode_trailers(fields(&[("grpc-status", "0"), ("grpc-message", "")])).unwrap();
    assert_eq!(t["grpc-status"], "0");
}

#[test]
fn never_indexed_fields_stay_sensitive() {
    let mut f = fields(&with(&[("authorization", "secret")]));
    f.last_mut().unwrap().never_indexed = true;
    let head = decode_request(f, false).unwrap();
    assert!(head.head.headers()["authorization"].is_sensitive());
}

#[test]
fn outgoing_headers_are_checked() {
    let mut req = Request::new(());
    *req.uri_mut() = "https://a.test/x".parse().unwrap();
    req.headers_mut()
        .insert("connection", "close".parse().unwrap());
    assert!(matches!(
        request_fields(&req),
        Err(UserError::MalformedHeaders(_))
    ));

    let mut req = Request::new(());
    *req.uri_mut() = "/no-scheme".parse().unwrap();
    assert!(matches!(
        request_fields(&req),
        Err(UserError::MalformedHeaders(_))
    ));

    let mut req = Request::new(());
    *req.uri_mut() = "https://a.test".parse().unwrap();
    let f = request_fields(&req).unwrap();
    let names: Vec<&[u8]> = f.fields.iter().map(|(n, _, _)| &n[..]).collect();
    assert_eq!(
        names,
        [&b":method"[..], b":scheme", b":authority", b":path"]
    );
    assert_eq!(&f.fields[3].1[..], b"/");

    let res = Response::builder().status(101).body(()).unwrap();
    assert!(response_fields(&res).is_err());
}

/// More fields than `http::HeaderMap` can hold are malformed, never a panic, whatever
/// the caller checked before (the connection rejects such blocks earlier, as too large).
#[test]
fn more_fields_than_a_header_map_holds_are_rejected_without_panicking() {
    let names: Vec<String> = (0..MAX_FIELDS + 10).map(|i| format!("x{i}")).collect();
    let many = |first: &[(&str, &str)]| {
        let mut list: Vec<(&str, &str)> = first.to_vec();
        list.extend(names.iter().map(|n| (n.as_str(), "")));
        fields(&list)
    };
    assert_eq!(
        decode_request(many(&GET), false).unwrap_err(),
        TOO_MANY_FIELDS
    );
    assert_eq!(
        decode_response(many(&[(":status", "200")])).unwrap_err(),
        TOO_MANY_FIELDS
    );
    assert_eq!(decode_trailers(many(&[])).unwrap_err(), TOO_MANY_FIELDS);
    // Exactly as many as the connection lets through still decode.
    let at_limit: Vec<(&str, &str)> = names[..MAX_FIELDS]
        .iter()
        .map(|n| (n.as_str(), ""))
        .collect();
    assert_eq!(
        decode_trailers(fields(&at_limit)).unwrap().len(),
        MAX_FIELDS
    );
}
