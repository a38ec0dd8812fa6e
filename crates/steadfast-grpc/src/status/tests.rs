use super::*;

/// Every row of PROTOCOL-HTTP2.md's RST_STREAM table, and the codes it does not list.
#[test]
fn reset_codes_follow_protocol_http2_errors() {
    let rows = [
        (ErrorCode::NO_ERROR, Code::Internal),
        (ErrorCode::PROTOCOL_ERROR, Code::Internal),
        (ErrorCode::INTERNAL_ERROR, Code::Internal),
        (ErrorCode::FLOW_CONTROL_ERROR, Code::Internal),
        (ErrorCode::SETTINGS_TIMEOUT, Code::Internal),
        (ErrorCode::STREAM_CLOSED, Code::Internal),
        (ErrorCode::FRAME_SIZE_ERROR, Code::Internal),
        (ErrorCode::REFUSED_STREAM, Code::Unavailable),
        (ErrorCode::CANCEL, Code::Cancelled),
        (ErrorCode::COMPRESSION_ERROR, Code::Internal),
        (ErrorCode::CONNECT_ERROR, Code::Internal),
        (ErrorCode::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
        (ErrorCode::INADEQUATE_SECURITY, Code::PermissionDenied),
        (ErrorCode::HTTP_1_1_REQUIRED, Code::Internal),
        (ErrorCode(0xdead), Code::Internal),
    ];
    for (reset, code) in rows {
        assert_eq!(code_for_reset(reset), code, "{reset:?}");
    }
}

/// Every row of http-grpc-status-mapping.md, plus 431 and 200.
#[test]
fn http_statuses_follow_the_mapping_doc() {
    let rows = [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (431, Code::Internal),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (200, Code::Unknown),
        (415, Code::Unknown),
        (500, Code::Unknown),
        (302, Code::Unknown),
    ];
    for (http, code) in rows {
        let status = StatusCode::from_u16(http).expect("valid status");
        assert_eq!(code_for_http_status(status), code, "HTTP {http}");
        assert_eq!(status_for_http(status).code(), code, "HTTP {http}");
    }
}

#[test]
fn a_deadline_is_deadline_exceeded_on_both_sides_never_cancelled() {
    let error = steadfast::Error::deadline_exceeded(Some(steadfast::Fate::Processed), None);
    assert_eq!(code_for_error(&error, Side::Client), Code::DeadlineExceeded);
    assert_eq!(code_for_error(&error, Side::Server), Code::DeadlineExceeded);
}

#[test]
fn the_status_carries_the_error_and_its_sentence() {
    let error = steadfast::Error::deadline_exceeded(Some(steadfast::Fate::MaybeProcessed), None)
        .with_context("grpc-timeout 5ms");
    let status = status_for_error(error.clone(), Side::Client);
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(status.message(), error.to_string());
    assert!(
        status
            .message()
            .starts_with("grpc-timeout 5ms: deadline exceeded ("),
        "{}",
        status.message()
    );
    let source = std::error::Error::source(&status).expect("a source");
    assert_eq!(source.downcast_ref::<steadfast::Error>(), Some(&error));
}

#[test]
fn tonic_size_limit_errors_become_resource_exhausted() {
    let mut headers = http::HeaderMap::new();
    Status::out_of_range(
        "Error, decoded message length too large: found 100 bytes, the limit is: 64 bytes",
    )
    .add_header(&mut headers)
    .expect("valid headers");
    fix_size_limit_code(&mut headers);
    assert_eq!(headers["grpc-status"], "8");

    // An application's own OUT_OF_RANGE is left alone.
    let mut headers = http::HeaderMap::new();
    Status::out_of_range("page 9 of 3")
        .add_header(&mut headers)
        .expect("valid headers");
    fix_size_limit_code(&mut headers);
    assert_eq!(headers["grpc-status"], "11");
}

#[test]
fn binary_metadata_is_emitted_unpadded_and_nothing_else_changes() {
    let mut headers = http::HeaderMap::new();
    headers.append("x-trace-bin", "AP8H".parse().unwrap());
    headers.append("x-two-bin", "AA==".parse().unwrap());
    headers.append("x-two-bin", "AAE=".parse().unwrap());
    headers.append("x-text", "a==".parse().unwrap());
    unpad_binary_metadata(&mut headers);
    assert_eq!(headers["x-trace-bin"], "AP8H");
    let two: Vec<_> = headers.get_all("x-two-bin").iter().collect();
    assert_eq!(two, ["AA", "AAE"]);
    // Not binary metadata: '=' is just a character.
    assert_eq!(headers["x-text"], "a==");
}

#[test]
fn a_non_grpc_answer_shows_who_answered_and_the_start_of_its_body() {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::SERVER, "edge-proxy/1.0".parse().unwrap());
    headers.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
    let body = "no healthy upstream\n".repeat(20);
    let status = status_for_http_answer(StatusCode::SERVICE_UNAVAILABLE, &headers, body.as_bytes());
    assert_eq!(status.code(), Code::Unavailable);
    let message = status.message();
    assert!(
        message.starts_with("the server answered HTTP 503"),
        "{message}"
    );
    assert!(
        message.contains("; server: edge-proxy/1.0; content-type: text/plain"),
        "{message}"
    );
    assert!(
        message.contains("; body: \"no healthy upstream"),
        "{message}"
    );
    // At most HTTP_BODY_SHOWN bytes of it, marked as cut.
    assert!(message.ends_with('…'), "{message}");
    assert!(message.len() < HTTP_BODY_SHOWN + 250, "{message}");
}
