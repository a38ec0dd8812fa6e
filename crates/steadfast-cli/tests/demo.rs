//! The chaos test: `steadfast demo`'s engine, a few seconds long, with the request
//! reliability mechanism on and off. It proves the mechanism does the work: with it, no
//! request the servers provably did not process fails; without it, such requests fail.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn demo(extra: &[&str]) -> Value {
    let mut args = vec!["demo", "--duration", "4", "--chaos-every", "500", "--json"];
    args.extend_from_slice(extra);
    let out = run(STEADFAST, &args, Duration::from_secs(90));
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

fn n(v: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

#[test]
fn with_retry_no_provably_unprocessed_request_fails() {
    let v = demo(&["--seed", "7"]);
    assert!(n(&v, "requests") > 500, "the workload ran: {v}");
    assert_eq!(n(&v, "failed.not_sent"), 0, "{v}");
    assert_eq!(n(&v, "failed.refused"), 0, "{v}");
    assert_eq!(n(&v, "wrong_answers"), 0, "{v}");
    assert_eq!(v["guarantee_held"], Value::Bool(true), "{v}");
    // Every cause of transparent retry occurred, so each path was exercised: the
    // demo repeats an incident until it has seen its effect.
    assert!(n(&v, "retries.not_sent") > 0, "{v}");
    assert!(n(&v, "retries.refused_goaway") > 0, "{v}");
    assert!(n(&v, "retries.refused_stream") > 0, "{v}");
    // Requests that may have been processed (crashes) are reported, never retried;
    // and every failure knows its fate: nothing is reported without one.
    assert_eq!(n(&v, "retries.maybe_processed"), 0, "{v}");
    assert_eq!(n(&v, "failed.other"), 0, "{v}");
    assert_eq!(n(&v, "failed.processed"), 0, "{v}");
    // Every request is accounted for.
    let failed: u64 = [
        "not_sent",
        "refused",
        "maybe_processed",
        "processed",
        "other",
    ]
    .iter()
    .map(|k| n(&v, &format!("failed.{k}")))
    .sum();
    assert_eq!(n(&v, "succeeded") + failed, n(&v, "requests"), "{v}");
}

#[test]
fn without_retry_the_same_chaos_fails_requests_that_were_never_processed() {
    let v = demo(&["--seed", "7", "--no-retry"]);
    let lost = n(&v, "failed.not_sent") + n(&v, "failed.refused");
    assert!(
        lost > 0,
        "the chaos must hurt when the mechanism is off: {v}"
    );
    assert_eq!(v["guarantee_held"], Value::Bool(false), "{v}");
    assert_eq!(
        n(&v, "retries.refused_stream")
            + n(&v, "retries.refused_goaway")
            + n(&v, "retries.not_sent"),
        0
    );
}

fn grpc_demo(extra: &[&str]) -> Value {
    demo(&[&["--grpc"], extra].concat())
}

#[test]
fn grpc_demo_with_retry_loses_no_call_the_servers_never_processed() {
    let v = grpc_demo(&["--seed", "2"]);
    assert!(n(&v, "calls") > 500, "the workload ran: {v}");
    assert_eq!(v["guarantee_held"], Value::Bool(true), "{v}");
    assert_eq!(n(&v, "wrong_answers"), 0, "{v}");
    let by_fate = v["failed_by_fate"].as_object().expect("by fate");
    assert!(
        !by_fate.contains_key("NotSent") && !by_fate.contains_key("Refused"),
        "{v}"
    );
    // UNAVAILABLE spells were retried by the service config's policy, and the
    // transparent retries ran underneath.
    assert!(n(&v, "a6_retries") > 0, "{v}");
    assert!(
        n(&v, "transparent_refused_goaway") + n(&v, "transparent_refused_stream") > 0,
        "{v}"
    );
    let failed: u64 = v["failed_by_status"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(n(&v, "succeeded") + failed, n(&v, "calls"), "{v}");
}

#[test]
fn grpc_demo_without_retry_fails_calls_that_were_never_processed() {
    let v = grpc_demo(&["--seed", "2", "--no-retry"]);
    assert_eq!(v["guarantee_held"], Value::Bool(false), "{v}");
    assert_eq!(n(&v, "a6_retries"), 0, "{v}");
    let by_status = v["failed_by_status"].as_object().expect("by status");
    assert!(by_status.contains_key("Unavailable"), "{v}");
}
