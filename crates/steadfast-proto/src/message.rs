//! HTTP semantics of RFC 9113 §8: turning decoded field blocks into `http` requests,
//! responses and trailers (rejecting malformed messages), and back.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use steadfast_hpack::DecodedField;

use crate::error::UserError;

/// Why a received message is malformed (§8.1.1). Always a stream error of type
/// PROTOCOL_ERROR.
pub(crate) type Malformed = &'static str;

/// Headers that are specific to a single HTTP/1 connection and must not appear in
/// HTTP/2 (§8.2.2).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The most fields a received field block may have. `http::HeaderMap` holds at most
/// 24,576 entries (2^15 slots at a load factor of 3/4) and its infallible methods panic
/// past that; a block that decodes to more fields is treated like one above
/// SETTINGS_MAX_HEADER_LIST_SIZE, which a large limit (16 MiB, as h2 and grpc-go
/// default to) no longer catches: 80 KiB of one-byte indexed fields is 80,000 fields.
pub(crate) const MAX_FIELDS: usize = 24_576;

/// Why a header map could not take another field: more fields than it can index
/// (possible below `MAX_FIELDS` when names collide and it would need to grow).
const TOO_MANY_FIELDS: Malformed = "more header fields than can be represented";

/// Fields ready for the HPACK encoder.
#[derive(Debug, Default)]
pub(crate) struct EncodedFields {
    pub(crate) fields: Vec<(Bytes, Bytes, bool)>,
}

impl EncodedFields {
    fn pseudo(&mut self, name: &'static str, value: impl Into<Bytes>) {
        self.fields
            .push((Bytes::from_static(name.as_bytes()), value.into(), false));
    }

    fn regular(&mut self, headers: &HeaderMap) -> Result<(), UserError> {
        check_regular(headers)?;
        for (name, value) in headers {
            self.fields.push((
                Bytes::copy_from_slice(name.as_str().as_bytes()),
                Bytes::copy_from_slice(value.as_bytes()),
                value.is_sensitive(),
            ));
        }
        Ok(())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = steadfast_hpack::Field<'_>> {
        self.fields
            .iter()
            .map(|(name, value, sensitive)| steadfast_hpack::Field {
                name,
                value,
                sensitive: *sensitive,
            })
    }
}

/// Rejects regular headers that HTTP/2 forbids (§8.2.2).
fn check_regular(headers: &HeaderMap) -> Result<(), UserError> {
    for (name, value) in headers {
        let n = name.as_str();
        if CONNECTION_SPECIFIC.contains(&n) {
            return Err(UserError::MalformedHeaders(
                format!("connection-specific header `{n}` is not allowed in HTTP/2").into(),
            ));
        }
        if n == "te" && value.as_bytes() != b"trailers" {
            return Err(UserError::MalformedHeaders(
                "`te` may only be \"trailers\" in HTTP/2".into(),
            ));
        }
    }
    Ok(())
}

/// Checks a response head before it is encoded with [`response_field_iter`].
pub(crate) fn check_response(res: &Response<()>) -> Result<(), UserError> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(UserError::MalformedHeaders(
            "101 Switching Protocols does not exist in HTTP/2".into(),
        ));
    }
    check_regular(res.headers())
}

/// The three digits of a status code.
pub(crate) fn status_digits(status: StatusCode) -> [u8; 3] {
    let n = status.as_u16();
    [
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]
}

/// The fields of a checked response head, borrowed: `:status`, then the headers.
pub(crate) fn response_field_iter<'a>(
    status: &'a [u8; 3],
    headers: &'a HeaderMap,
) -> impl Iterator<Item = steadfast_hpack::Field<'a>> {
    let status = steadfast_hpack::Field {
        name: b":status",
        value: status,
        sensitive: false,
    };
    std::iter::once(status).chain(headers.iter().map(|(name, value)| steadfast_hpack::Field {
        name: name.as_str().as_bytes(),
        value: value.as_bytes(),
        sensitive: value.is_sensitive(),
    }))
}

/// Fields of a request head to send.
pub(crate) fn request_fields(req: &Request<()>) -> Result<EncodedFields, UserError> {
    let mut f = EncodedFields::default();
    let uri = req.uri();
    f.pseudo(
        ":method",
        Bytes::copy_from_slice(req.method().as_str().as_bytes()),
    );
    if req.method() == Method::CONNECT {
        let authority = uri.authority().ok_or(UserError::MalformedHeaders(
            "CONNECT request without an authority".into(),
        ))?;
        f.pseudo(
            ":authority",
            Bytes::copy_from_slice(authority.as_str().as_bytes()),
        );
    } else {
        let scheme = uri.scheme_str().ok_or(UserError::MalformedHeaders(
            "request URI has no scheme".into(),
        ))?;
        f.pseudo(":scheme", Bytes::copy_from_slice(scheme.as_bytes()));
        if let Some(authority) = uri.authority() {
            f.pseudo(
                ":authority",
                Bytes::copy_from_slice(authority.as_str().as_bytes()),
            );
        }
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let path = if path.is_empty() { "/" } else { path };
        f.pseudo(":path", Bytes::copy_from_slice(path.as_bytes()));
    }
    f.regular(req.headers())?;
    Ok(f)
}

/// Fields of a response head to send.
pub(crate) fn response_fields(res: &Response<()>) -> Result<EncodedFields, UserError> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(UserError::MalformedHeaders(
            "101 Switching Protocols does not exist in HTTP/2".into(),
        ));
    }
    let mut f = EncodedFields::default();
    f.pseudo(
        ":status",
        Bytes::copy_from_slice(res.status().as_str().as_bytes()),
    );
    f.regular(res.headers())?;
    Ok(f)
}

/// Fields of a trailer section to send.
pub(crate) fn trailer_fields(trailers: &HeaderMap) -> Result<EncodedFields, UserError> {
    let mut f = EncodedFields::default();
    f.regular(trailers)?;
    Ok(f)
}

/// A received message head after validation.
#[derive(Debug)]
pub(crate) struct ReceivedHead<T> {
    pub(crate) head: T,
    pub(crate) content_length: Option<u64>,
}

/// Validates a received request field block (§8.3.1).
pub(crate) fn decode_request(
    fields: Vec<DecodedField>,
    connect_protocol_enabled: bool,
) -> Result<ReceivedHead<Request<()>>, Malformed> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut protocol = None;
    let mut headers = HeaderMap::try_with_capacity(fields.len()).map_err(|_| TOO_MANY_FIELDS)?;
    let mut regular_seen = false;
    for field in fields {
        if let Some(pseudo) = field.name.strip_prefix(b":") {
            if regular_seen {
                return Err("pseudo-header after a regular header");
            }
            let slot = match pseudo {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"authority" => &mut authority,
                b"path" => &mut path,
                b"protocol" if connect_protocol_enabled => &mut protocol,
                b"status" => return Err("response pseudo-header in a request"),
                _ => return Err("unknown pseudo-header"),
            };
            if slot.replace(field.value).is_some() {
                return Err("duplicate pseudo-header");
            }
            continue;
        }
        regular_seen = true;
        insert_regular(&mut headers, field)?;
    }
    let method = method.ok_or("request without :method")?;
    let method = Method::from_bytes(&method).map_err(|_| "invalid :method")?;
    let is_connect = method == Method::CONNECT;
    let uri = if is_connect && protocol.is_none() {
        // §8.5: CONNECT carries only :method and :authority.
        if scheme.is_some() || path.is_some() {
            return Err("CONNECT request with :scheme or :path");
        }
        let authority = authority.ok_or("CONNECT request without :authority")?;
        let uri = Uri::builder()
            .authority(authority.as_ref())
            .build()
            .map_err(|_| "invalid :authority")?;
        // §8.5: "the host and port to connect to", the authority-form `host:port`
        // (RFC 9112 §3.2.3): no userinfo, a host, a port.
        if authority.contains(&b'@')
            || uri.host().unwrap_or("").is_empty()
            || uri.port_u16().is_none()
        {
            return Err("CONNECT :authority is not host:port");
        }
        uri
    } else {
        if protocol.is_some() && !is_connect {
            return Err(":protocol on a request that is not CONNECT");
        }
        let scheme = scheme.ok_or("request without :scheme")?;
        let path = path.ok_or("request without :path")?;
        if path.is_empty() {
            return Err("empty :path");
        }
        // §8.3.1: ":authority MUST NOT include the deprecated userinfo subcomponent for
        // http or https schemed URIs".
        let web = matches!(scheme.as_ref(), b"http" | b"https");
        if web && authority.as_ref().is_some_and(|a| a.contains(&b'@')) {
            return Err(":authority with userinfo");
        }
        let asterisk = path.as_ref() == b"*" && method == Method::OPTIONS;
        if !asterisk && path[0] != b'/' && web {
            return Err(":path does not start with '/'");
        }
        // Zero-copy: the URI's parts share the decoded field bytes.
        let path = PathAndQuery::from_maybe_shared(path).map_err(|_| "invalid :path")?;
        let mut parts = http::uri::Parts::default();
        parts.path_and_query = Some(path);
        // Without an authority, `http::Uri` cannot hold a scheme: keep the path and let
        // `Host` (if any) name the target.
        if let Some(authority) = authority {
            parts.authority =
                Some(Authority::from_maybe_shared(authority).map_err(|_| "invalid :authority")?);
            parts.scheme = Some(match scheme.as_ref() {
                b"http" => Scheme::HTTP,
                b"https" => Scheme::HTTPS,
                other => Scheme::try_from(other).map_err(|_| "invalid :scheme")?,
            });
        }
        Uri::from_parts(parts).map_err(|_| "invalid request URI")?
    };
    let content_length = content_length(&headers)?;
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_2;
    *req.headers_mut() = headers;
    if let Some(protocol) = protocol {
        req.extensions_mut().insert(Protocol(protocol));
    }
    Ok(ReceivedHead {
        head: req,
        content_length,
    })
}

/// The `:protocol` pseudo-header of an extended CONNECT request (RFC 8441), stored in
/// the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol(pub Bytes);

/// Validates a received response field block (§8.3.2).
pub(crate) fn decode_response(
    fields: Vec<DecodedField>,
) -> Result<ReceivedHead<Response<()>>, Malformed> {
    let mut status = None;
    let mut headers = HeaderMap::try_with_capacity(fields.len()).map_err(|_| TOO_MANY_FIELDS)?;
    let mut regular_seen = false;
    for field in fields {
        if let Some(pseudo) = field.name.strip_prefix(b":") {
            if regular_seen {
                return Err("pseudo-header after a regular header");
            }
            if pseudo != b"status" {
                return Err("request or unknown pseudo-header in a response");
            }
            if status.replace(field.value).is_some() {
                return Err("duplicate :status");
            }
            continue;
        }
        regular_seen = true;
        insert_regular(&mut headers, field)?;
    }
    let status = status.ok_or("response without :status")?;
    if status.len() != 3 {
        return Err(":status is not three digits");
    }
    let status = StatusCode::from_bytes(&status).map_err(|_| "invalid :status")?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err("101 Switching Protocols in HTTP/2");
    }
    let content_length = content_length(&headers)?;
    let mut res = Response::new(());
    *res.status_mut() = status;
    *res.version_mut() = Version::HTTP_2;
    *res.headers_mut() = headers;
    Ok(ReceivedHead {
        head: res,
        content_length,
    })
}

/// Validates a received trailer section (§8.1).
pub(crate) fn decode_trailers(fields: Vec<DecodedField>) -> Result<HeaderMap, Malformed> {
    let mut headers = HeaderMap::try_with_capacity(fields.len()).map_err(|_| TOO_MANY_FIELDS)?;
    for field in fields {
        if field.name.starts_with(b":") {
            return Err("pseudo-header in trailers");
        }
        insert_regular(&mut headers, field)?;
    }
    Ok(headers)
}

fn insert_regular(headers: &mut HeaderMap, field: DecodedField) -> Result<(), Malformed> {
    // §8.2.1: names are lowercase visible ASCII without separators; `HeaderName`
    // would silently lowercase, so uppercase is checked first.
    if field.name.is_empty() {
        return Err("empty field name");
    }
    if field.name.iter().any(|b| b.is_ascii_uppercase()) {
        return Err("uppercase field name");
    }
    let name = HeaderName::from_bytes(&field.name).map_err(|_| "invalid field name")?;
    if CONNECTION_SPECIFIC.contains(&name.as_str()) {
        return Err("connection-specific header field");
    }
    // §8.2.1: no NUL, CR or LF anywhere, no leading or trailing whitespace.
    let v = &field.value;
    if v.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err("field value contains NUL, CR or LF");
    }
    if matches!(v.first(), Some(b' ' | b'\t')) || matches!(v.last(), Some(b' ' | b'\t')) {
        return Err("field value with leading or trailing whitespace");
    }
    if name == http::header::TE && v.as_ref() != b"trailers" {
        return Err("te header other than \"trailers\"");
    }
    let mut value =
        HeaderValue::from_maybe_shared(field.value).map_err(|_| "invalid field value")?;
    if field.never_indexed {
        value.set_sensitive(true);
    }
    headers
        .try_append(name, value)
        .map_err(|_| TOO_MANY_FIELDS)?;
    Ok(())
}

/// §8.1.1: every content-length value must agree, and parse as a number.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Malformed> {
    let mut result = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err("invalid content-length");
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("invalid content-length")?;
            if result.is_some_and(|r| r != n) {
                return Err("conflicting content-length values");
            }
            result = Some(n);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests;
