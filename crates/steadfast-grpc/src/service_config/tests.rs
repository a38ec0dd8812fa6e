use super::*;

fn err(json: &str) -> String {
    ServiceConfig::from_json(json)
        .expect_err("an invalid config")
        .to_string()
}

/// gRFC A6's examples, in one config.
const A6: &str = r#"{
  "loadBalancingPolicy": "round_robin",
  "methodConfig": [
    {
      "name": [{"service": "grpc.testing.TestService", "method": "UnaryCall"}],
      "retryPolicy": {
        "maxAttempts": 4,
        "initialBackoff": ".1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"]
      }
    },
    {
      "name": [{"service": "grpc.testing.TestService"}],
      "hedgingPolicy": {
        "maxAttempts": 4,
        "hedgingDelay": ".5s",
        "nonFatalStatusCodes": ["UNAVAILABLE", "INTERNAL", "ABORTED"]
      },
      "waitForReady": true,
      "timeout": "1.5s",
      "maxRequestMessageBytes": 1024,
      "maxResponseMessageBytes": "2048"
    },
    {
      "name": [{}],
      "timeout": "10s"
    }
  ],
  "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
  "healthCheckConfig": {"serviceName": "grpc.testing.TestService"}
}"#;

#[test]
fn a6_examples_parse_and_the_most_specific_name_wins() {
    let config = ServiceConfig::from_json(A6).expect("A6's examples are valid");
    let unary = config
        .method("grpc.testing.TestService", "UnaryCall")
        .expect("exact");
    let Some(CallPolicy::Retry(retry)) = &unary.policy else {
        panic!("{unary:?}");
    };
    assert_eq!(retry.max_attempts, 4);
    assert_eq!(retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(retry.max_backoff, Duration::from_secs(1));
    assert!(retry.retryable_status_codes.contains(Code::Unavailable));
    assert!(!retry.retryable_status_codes.contains(Code::Internal));
    // Bounds: 0.1, 0.2, 0.4, 0.8, then capped at 1 s.
    let bounds: Vec<u128> = (1..=6)
        .map(|n| retry.backoff_bound(n).as_millis())
        .collect();
    assert_eq!(bounds, [100, 200, 400, 800, 1000, 1000]);

    let other = config
        .method("grpc.testing.TestService", "EmptyCall")
        .expect("service-wide");
    let Some(CallPolicy::Hedging(hedging)) = &other.policy else {
        panic!("{other:?}");
    };
    assert_eq!(hedging.hedging_delay, Duration::from_millis(500));
    assert!(hedging.non_fatal_status_codes.contains(Code::Aborted));
    assert_eq!(other.wait_for_ready, Some(true));
    assert_eq!(other.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(other.max_request_message_bytes, Some(1024));
    assert_eq!(other.max_response_message_bytes, Some(2048));

    let default = config.method("other.Service", "Call").expect("default");
    assert_eq!(default.timeout, Some(Duration::from_secs(10)));
    assert_eq!(default.policy, None);

    assert_eq!(
        config.retry_throttling(),
        Some(RetryThrottling {
            max_milli_tokens: 10_000,
            milli_token_ratio: 100
        })
    );
    assert_eq!(config.load_balancing(), Some(LoadBalancing::RoundRobin));
    assert_eq!(
        config.health_check_service(),
        Some("grpc.testing.TestService")
    );
}

#[test]
fn max_attempts_above_the_cap_is_the_cap_and_codes_take_any_case_or_number() {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {
            "maxAttempts": 9, "initialBackoff": "1s", "maxBackoff": "2s",
            "backoffMultiplier": 1.5, "retryableStatusCodes": ["unavailable", 10, "Internal"]}}]}"#,
    )
    .unwrap();
    let Some(CallPolicy::Retry(retry)) = &config.method("s", "m").unwrap().policy else {
        panic!();
    };
    assert_eq!(retry.max_attempts, 5);
    let codes = retry.retryable_status_codes;
    assert!(codes.contains(Code::Unavailable) && codes.contains(Code::Aborted));
    assert!(codes.contains(Code::Internal) && !codes.contains(Code::Ok));
    assert_eq!(config.method("t", "m"), None);
}

#[test]
fn every_invalid_field_is_named_with_its_rule() {
    let retry = |policy: &str| {
        err(&format!(
            r#"{{"methodConfig": [{{"name": [{{"service": "s"}}], "retryPolicy": {policy}}}]}}"#
        ))
    };
    let base = r#""initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]"#;
    assert_eq!(
        retry(&format!(r#"{{"maxAttempts": 1, {base}}}"#)),
        "invalid service config: methodConfig[0].retryPolicy.maxAttempts: must be at least 2, got 1"
    );
    assert_eq!(
        retry(&format!(r#"{{"maxAttempts": 2.5, {base}}}"#)),
        "invalid service config: methodConfig[0].retryPolicy.maxAttempts: must be an integer, got 2.5"
    );
    assert_eq!(
        retry(r#"{"maxAttempts": 2, "initialBackoff": "0s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#),
        "invalid service config: methodConfig[0].retryPolicy.initialBackoff: must be greater than zero"
    );
    assert_eq!(
        retry(r#"{"maxAttempts": 2, "initialBackoff": "1", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#),
        "invalid service config: methodConfig[0].retryPolicy.initialBackoff: \"1\" is not a duration: decimal seconds ending in \"s\", e.g. \"0.5s\""
    );
    assert_eq!(
        retry(r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 0, "retryableStatusCodes": ["UNAVAILABLE"]}"#),
        "invalid service config: methodConfig[0].retryPolicy.backoffMultiplier: must be greater than zero, got 0"
    );
    assert_eq!(
        retry(r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": []}"#),
        "invalid service config: methodConfig[0].retryPolicy.retryableStatusCodes: must not be empty"
    );
    assert_eq!(
        retry(r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["NOPE"]}"#),
        "invalid service config: methodConfig[0].retryPolicy.retryableStatusCodes[0]: \"NOPE\" is not a status code (a name such as \"UNAVAILABLE\", or 0-16)"
    );
    assert_eq!(
        retry(
            r#"{"maxAttempts": 2, "initialBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#
        ),
        "invalid service config: methodConfig[0].retryPolicy.maxBackoff: is required"
    );
    assert_eq!(
        err(r#"{"methodConfig": [{"retryPolicy": {}, "hedgingPolicy": {}}]}"#),
        "invalid service config: methodConfig[0]: retryPolicy and hedgingPolicy are both set: a method takes one of them"
    );
    assert_eq!(
        err(r#"{"methodConfig": [{"hedgingPolicy": {"maxAttempts": 3, "nonFatalStatusCodes": []}}]}"#),
        "invalid service config: methodConfig[0].hedgingPolicy.nonFatalStatusCodes: must not be empty"
    );
    assert_eq!(
        err(r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 0.1}}"#),
        "invalid service config: retryThrottling.maxTokens: must be greater than 0 and at most 1000, got 0"
    );
    assert_eq!(
        err(r#"{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 0.1}}"#),
        "invalid service config: retryThrottling.maxTokens: must be greater than 0 and at most 1000, got 1001"
    );
    assert_eq!(
        err(r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.0004}}"#),
        "invalid service config: retryThrottling.tokenRatio: must be greater than zero in its first three decimals, got 0.0004"
    );
    assert_eq!(
        err(r#"{"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "s"}]}]}"#),
        "invalid service config: methodConfig[1].name[0]: duplicate name (service \"s\", method \"\"): each may appear once"
    );
    assert_eq!(
        err(r#"{"methodConfig": [{"name": [{"method": "m"}]}]}"#),
        "invalid service config: methodConfig[0].name[0].method: a method needs its service"
    );
    assert_eq!(
        err(r#"{"loadBalancingConfig": [{"grpclb": {}}]}"#),
        "invalid service config: loadBalancingConfig: no supported policy (this client has pick_first and round_robin)"
    );
    assert_eq!(
        err(r#"{"loadBalancingPolicy": "wrr"}"#),
        "invalid service config: loadBalancingPolicy: unknown policy \"wrr\" (this client has pick_first and round_robin)"
    );
    assert!(err("{").starts_with("invalid service config: not JSON: "));
}

#[test]
fn the_first_supported_balancer_wins_over_the_deprecated_field() {
    let config = ServiceConfig::from_json(
        r#"{"loadBalancingPolicy": "round_robin",
            "loadBalancingConfig": [{"xds_wrr": {}}, {"pick_first": {"shuffleAddressList": true}}, {"round_robin": {}}]}"#,
    )
    .unwrap();
    assert_eq!(
        config.load_balancing(),
        Some(LoadBalancing::PickFirst {
            shuffle_address_list: true
        })
    );
    assert_eq!(
        ServiceConfig::from_json(r#"{"loadBalancingPolicy": "ROUND_ROBIN"}"#)
            .unwrap()
            .load_balancing(),
        Some(LoadBalancing::RoundRobin)
    );
    assert_eq!(
        ServiceConfig::from_json("{}").unwrap().load_balancing(),
        None
    );
}

#[test]
fn durations_follow_proto3_json() {
    for (text, want) in [
        ("1s", Duration::from_secs(1)),
        (".1s", Duration::from_millis(100)),
        ("0.000000001s", Duration::from_nanos(1)),
        ("0s", Duration::ZERO),
        ("120s", Duration::from_secs(120)),
        ("1.5s", Duration::from_millis(1500)),
    ] {
        assert_eq!(parse_duration(text), Some(want), "{text}");
    }
    for bad in ["", "s", "1", "1ms", "-1s", "1.0000000001s", "1e3s", "1.s.s"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}
