//! The rich error model's details (`grpc-status-details-bin`: a `google.rpc.Status`
//! whose `details` are `Any`s of `google/rpc/error_details.proto`), decoded into JSON
//! for the diagnosis. Types this module does not know keep their type URL and bytes.

use base64::Engine as _;
use prost::Message;
use serde_json::{json, Value};

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[derive(Clone, PartialEq, Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
    #[prost(btree_map = "string, string", tag = "3")]
    metadata: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<prost_types::Duration>,
}

#[derive(Clone, PartialEq, Message)]
struct DebugInfo {
    #[prost(string, repeated, tag = "1")]
    stack_entries: Vec<String>,
    #[prost(string, tag = "2")]
    detail: String,
}

/// A (subject or field, description) pair: QuotaFailure's and BadRequest's
/// violations have this shape.
#[derive(Clone, PartialEq, Message)]
struct Violation {
    #[prost(string, tag = "1")]
    subject: String,
    #[prost(string, tag = "2")]
    description: String,
}

#[derive(Clone, PartialEq, Message)]
struct Violations {
    #[prost(message, repeated, tag = "1")]
    violations: Vec<Violation>,
}

#[derive(Clone, PartialEq, Message)]
struct PreconditionViolation {
    #[prost(string, tag = "1")]
    r#type: String,
    #[prost(string, tag = "2")]
    subject: String,
    #[prost(string, tag = "3")]
    description: String,
}

#[derive(Clone, PartialEq, Message)]
struct PreconditionFailure {
    #[prost(message, repeated, tag = "1")]
    violations: Vec<PreconditionViolation>,
}

#[derive(Clone, PartialEq, Message)]
struct RequestInfo {
    #[prost(string, tag = "1")]
    request_id: String,
    #[prost(string, tag = "2")]
    serving_data: String,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceInfo {
    #[prost(string, tag = "1")]
    resource_type: String,
    #[prost(string, tag = "2")]
    resource_name: String,
    #[prost(string, tag = "3")]
    owner: String,
    #[prost(string, tag = "4")]
    description: String,
}

#[derive(Clone, PartialEq, Message)]
struct Link {
    #[prost(string, tag = "1")]
    description: String,
    #[prost(string, tag = "2")]
    url: String,
}

#[derive(Clone, PartialEq, Message)]
struct Help {
    #[prost(message, repeated, tag = "1")]
    links: Vec<Link>,
}

#[derive(Clone, PartialEq, Message)]
struct LocalizedMessage {
    #[prost(string, tag = "1")]
    locale: String,
    #[prost(string, tag = "2")]
    message: String,
}

/// The details of a status, one JSON object each (`@type` first), or `None` when
/// there are none or they are not a `google.rpc.Status`.
pub(super) fn decode(bytes: &[u8]) -> Option<Vec<Value>> {
    if bytes.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(bytes).ok()?;
    Some(status.details.iter().map(any).collect())
}

fn any(any: &prost_types::Any) -> Value {
    let url = any.type_url.as_str();
    let name = url.rsplit('/').next().unwrap_or(url);
    let bytes = any.value.as_slice();
    let decoded = match name {
        "google.rpc.ErrorInfo" => ErrorInfo::decode(bytes)
            .map(|d| json!({"reason": d.reason, "domain": d.domain, "metadata": d.metadata})),
        "google.rpc.RetryInfo" => RetryInfo::decode(bytes).map(|d| {
            let delay = d
                .retry_delay
                .map(|t| format!("{}s", t.seconds as f64 + f64::from(t.nanos) / 1e9));
            json!({"retryDelay": delay})
        }),
        "google.rpc.DebugInfo" => DebugInfo::decode(bytes)
            .map(|d| json!({"stackEntries": d.stack_entries, "detail": d.detail})),
        "google.rpc.QuotaFailure" => Violations::decode(bytes).map(|d| {
            let v: Vec<Value> = d
                .violations
                .iter()
                .map(|v| json!({"subject": v.subject, "description": v.description}))
                .collect();
            json!({"violations": v})
        }),
        "google.rpc.BadRequest" => Violations::decode(bytes).map(|d| {
            let v: Vec<Value> = d
                .violations
                .iter()
                .map(|v| json!({"field": v.subject, "description": v.description}))
                .collect();
            json!({"fieldViolations": v})
        }),
        "google.rpc.PreconditionFailure" => PreconditionFailure::decode(bytes).map(|d| {
            let v: Vec<Value> = d
                .violations
                .iter()
                .map(|v| json!({"type": v.r#type, "subject": v.subject, "description": v.description}))
                .collect();
            json!({"violations": v})
        }),
        "google.rpc.RequestInfo" => RequestInfo::decode(bytes)
            .map(|d| json!({"requestId": d.request_id, "servingData": d.serving_data})),
        "google.rpc.ResourceInfo" => ResourceInfo::decode(bytes).map(|d| {
            json!({"resourceType": d.resource_type, "resourceName": d.resource_name,
                   "owner": d.owner, "description": d.description})
        }),
        "google.rpc.Help" => Help::decode(bytes).map(|d| {
            let v: Vec<Value> = d
                .links
                .iter()
                .map(|l| json!({"description": l.description, "url": l.url}))
                .collect();
            json!({"links": v})
        }),
        "google.rpc.LocalizedMessage" => LocalizedMessage::decode(bytes)
            .map(|d| json!({"locale": d.locale, "message": d.message})),
        _ => return unknown(url, bytes),
    };
    match decoded {
        Ok(Value::Object(fields)) => {
            let mut out = serde_json::Map::new();
            out.insert("@type".into(), Value::String(url.to_owned()));
            out.extend(fields);
            Value::Object(out)
        }
        _ => unknown(url, bytes),
    }
}

/// A detail of a type not decoded here (or that did not decode): its type and bytes.
fn unknown(url: &str, bytes: &[u8]) -> Value {
    json!({
        "@type": url,
        "value": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_details_decode_and_unknown_ones_keep_their_bytes() {
        let pack = |name: &str, value: Vec<u8>| prost_types::Any {
            type_url: format!("type.googleapis.com/{name}"),
            value,
        };
        let status = RpcStatus {
            code: 8,
            message: "quota".into(),
            details: vec![
                pack(
                    "google.rpc.ErrorInfo",
                    ErrorInfo {
                        reason: "RATE_LIMITED".into(),
                        domain: "example.com".into(),
                        metadata: [("limit".to_owned(), "10".to_owned())].into(),
                    }
                    .encode_to_vec(),
                ),
                pack(
                    "google.rpc.RetryInfo",
                    RetryInfo {
                        retry_delay: Some(prost_types::Duration {
                            seconds: 1,
                            nanos: 500_000_000,
                        }),
                    }
                    .encode_to_vec(),
                ),
                pack("example.Custom", vec![1, 2, 3]),
            ],
        };
        let details = decode(&status.encode_to_vec()).expect("a google.rpc.Status");
        assert_eq!(
            details[0],
            json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMITED",
                   "domain": "example.com", "metadata": {"limit": "10"}})
        );
        assert_eq!(details[1]["retryDelay"], "1.5s");
        assert_eq!(
            details[2],
            json!({"@type": "type.googleapis.com/example.Custom", "value": "AQID"})
        );
        // Bytes that are not a Status, and none at all: nothing to show.
        assert_eq!(decode(&[0xff, 0xff]), None);
        assert_eq!(decode(&[]), None);
    }
}
