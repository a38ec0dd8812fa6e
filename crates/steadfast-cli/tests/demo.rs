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
