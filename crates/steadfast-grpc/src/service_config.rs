//! The gRPC service config (`grpc.service_config.ServiceConfig` in JSON, as grpc-go,
//! grpc-java and grpc-core read it): per-method timeouts, wait-for-ready, message
//! size limits, retry and hedging policies (gRFC A6), retry throttling, the
//! load-balancing policy and client health checking (gRFC A17).
//!
//! Parsed by hand from `serde_json::Value` rather than derived, so that every error
//! names the field by its path and the rule it breaks
//! (`methodConfig[0].retryPolicy.maxAttempts: must be at least 2, got 1`), and
//! validated exactly as gRFC A6 states:
//! - `maxAttempts` is an integer of at least 2; values above the client's cap (5 by
//!   default) are treated as the cap, not an error;
//! - `initialBackoff` and `maxBackoff` are durations greater than zero;
//!   `backoffMultiplier` is greater than zero;
//! - `retryableStatusCodes` and `nonFatalStatusCodes` are non-empty; a code is an
//!   integer (0–16) or a name, in any case (`"UNAVAILABLE"`, `"unavailable"`);
//! - `retryThrottling.maxTokens` is in (0, 1000]; `tokenRatio` is greater than zero,
//!   and only three decimals count;
//! - a method config has a `retryPolicy` or a `hedgingPolicy`, not both.
//!
//! Durations are proto3 JSON (`"1.5s"`, `".1s"`, `"0s"`). Unknown fields are ignored,
//! as other implementations do, so that configs written for them still parse.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};
use tonic::Code;

/// The most attempts a retry or hedging policy gets, whatever it asks (gRFC A6,
/// "Limits on Retries and Hedges").
pub const DEFAULT_MAX_ATTEMPTS_CAP: u32 = 5;

/// A parsed and validated service config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    methods: Vec<MethodConfig>,
    /// (service, method) → index in `methods`; "" for "any".
    index: HashMap<(String, String), usize>,
    retry_throttling: Option<RetryThrottling>,
    load_balancing: Option<LoadBalancing>,
    health_check_service: Option<String>,
}

/// What a service config says about the calls of one method (or service).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MethodConfig {
    /// The deadline of calls that set none, and the longest one they may set.
    pub timeout: Option<Duration>,
    /// Wait for a ready connection (until the deadline) instead of failing fast with
    /// UNAVAILABLE when none can be had.
    pub wait_for_ready: Option<bool>,
    /// The largest request message, encoded, in bytes.
    pub max_request_message_bytes: Option<usize>,
    /// The largest response message, encoded, in bytes.
    pub max_response_message_bytes: Option<usize>,
    /// How failed calls are retried or hedged.
    pub policy: Option<CallPolicy>,
}

/// The retry or hedging policy of a method.
#[derive(Clone, Debug, PartialEq)]
pub enum CallPolicy {
    /// `retryPolicy`.
    Retry(RetryPolicy),
    /// `hedgingPolicy`.
    Hedging(HedgingPolicy),
}

/// A set of status codes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Codes(u32);

impl Codes {
    /// True if `code` is in the set.
    pub fn contains(self, code: Code) -> bool {
        self.0 & (1 << (code as u32)) != 0
    }

    fn insert(&mut self, code: Code) {
        self.0 |= 1 << (code as u32);
    }
}

impl fmt::Debug for Codes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((0..=16).map(Code::from).filter(|c| self.contains(*c)))
            .finish()
    }
}

/// `retryPolicy` (gRFC A6).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts, the first included (capped).
    pub max_attempts: u32,
    /// The first retry waits `random(0, initial_backoff)`.
    pub initial_backoff: Duration,
    /// The cap of the backoff.
    pub max_backoff: Duration,
    /// The backoff grows by this factor per attempt.
    pub backoff_multiplier: f64,
    /// Statuses that are retried.
    pub retryable_status_codes: Codes,
}

impl RetryPolicy {
    /// The upper bound of the random wait before retry number `n` (1 for the first):
    /// `min(initialBackoff * backoffMultiplier^(n-1), maxBackoff)`.
    pub fn backoff_bound(&self, n: u32) -> Duration {
        let factor = self
            .backoff_multiplier
            .powi(i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX));
        let bound = self.initial_backoff.as_secs_f64() * factor;
        if !bound.is_finite() || bound >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(bound)
        }
    }
}

/// `hedgingPolicy` (gRFC A6).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HedgingPolicy {
    /// Copies sent at most, the first included (capped).
    pub max_attempts: u32,
    /// Between two copies.
    pub hedging_delay: Duration,
    /// Statuses after which the other copies may still succeed.
    pub non_fatal_status_codes: Codes,
}

/// `retryThrottling` (gRFC A6): token bucket per server name, in thousandths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryThrottling {
    /// `maxTokens` × 1000.
    pub max_milli_tokens: u32,
    /// `tokenRatio` × 1000 (three decimals count).
    pub milli_token_ratio: u32,
}

/// The load-balancing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancing {
    /// `pick_first`: one connection, to the first address that answers.
    PickFirst {
        /// Shuffle the addresses before trying them (gRFC A62).
        shuffle_address_list: bool,
    },
    /// `round_robin`: a connection to every address, calls spread in turn.
    RoundRobin,
}

/// Why a service config was refused: the field, by its path, and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfigError {
    path: String,
    rule: String,
}

impl ServiceConfigError {
    fn new(path: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            rule: rule.into(),
        }
    }

    /// The field, e.g. `methodConfig[0].retryPolicy.maxAttempts`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid service config: {}", self.rule)
        } else {
            write!(f, "invalid service config: {}: {}", self.path, self.rule)
        }
    }
}

impl std::error::Error for ServiceConfigError {}

type Result<T> = std::result::Result<T, ServiceConfigError>;

impl ServiceConfig {
    /// Parses and validates a service config in JSON, capping `maxAttempts` at 5.
    pub fn from_json(json: &str) -> Result<Self> {
        Self::from_json_with_cap(json, DEFAULT_MAX_ATTEMPTS_CAP)
    }

    /// Like [`from_json`](Self::from_json), with another cap on `maxAttempts`.
    pub fn from_json_with_cap(json: &str, max_attempts_cap: u32) -> Result<Self> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ServiceConfigError::new("", format!("not JSON: {e}")))?;
        let root = object(&value, "")?;
        let mut config = Self::default();
        if let Some(list) = root.get("methodConfig") {
            let list = array(list, "methodConfig")?;
            for (i, entry) in list.iter().enumerate() {
                let path = format!("methodConfig[{i}]");
                let (names, method) = method_config(entry, &path, max_attempts_cap)?;
                let at = config.methods.len();
                config.methods.push(method);
                for (j, name) in names.into_iter().enumerate() {
                    if config.index.insert(name.clone(), at).is_some() {
                        return Err(ServiceConfigError::new(
                            format!("{path}.name[{j}]"),
                            format!(
                                "duplicate name (service {:?}, method {:?}): each may appear once",
                                name.0, name.1
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(t) = root.get("retryThrottling") {
            config.retry_throttling = Some(retry_throttling(t, "retryThrottling")?);
        }
        config.load_balancing = load_balancing(root)?;
        if let Some(h) = root.get("healthCheckConfig") {
            let h = object(h, "healthCheckConfig")?;
            if let Some(name) = h.get("serviceName") {
                config.health_check_service =
                    Some(string(name, "healthCheckConfig.serviceName")?.to_owned());
            }
        }
        Ok(config)
    }

    /// The config of calls to `service`/`method`: the entry naming both, else the
    /// one naming the service, else the default entry (an empty name).
    pub fn method(&self, service: &str, method: &str) -> Option<&MethodConfig> {
        let key = |s: &str, m: &str| (s.to_owned(), m.to_owned());
        self.index
            .get(&key(service, method))
            .or_else(|| self.index.get(&key(service, "")))
            .or_else(|| self.index.get(&key("", "")))
            .map(|&i| &self.methods[i])
    }

    /// `retryThrottling`, if set.
    pub fn retry_throttling(&self) -> Option<RetryThrottling> {
        self.retry_throttling
    }

    /// The load-balancing policy: `loadBalancingConfig`'s first supported entry,
    /// else `loadBalancingPolicy`; `None` when neither is set.
    pub fn load_balancing(&self) -> Option<LoadBalancing> {
        self.load_balancing
    }

    /// `healthCheckConfig.serviceName`: the service whose health each connection
    /// watches (gRFC A17); `Some("")` is the server's overall health.
    pub fn health_check_service(&self) -> Option<&str> {
        self.health_check_service.as_deref()
    }
}

fn method_config(
    value: &Value,
    path: &str,
    cap: u32,
) -> Result<(Vec<(String, String)>, MethodConfig)> {
    let entry = object(value, path)?;
    let mut names = Vec::new();
    if let Some(list) = entry.get("name") {
        let list = array(list, &format!("{path}.name"))?;
        for (j, name) in list.iter().enumerate() {
            let name_path = format!("{path}.name[{j}]");
            let name = object(name, &name_path)?;
            let service = match name.get("service") {
                Some(s) => string(s, &format!("{name_path}.service"))?,
                None => "",
            };
            let method = match name.get("method") {
                Some(m) => string(m, &format!("{name_path}.method"))?,
                None => "",
            };
            if service.is_empty() && !method.is_empty() {
                return Err(ServiceConfigError::new(
                    format!("{name_path}.method"),
                    "a method needs its service",
                ));
            }
            names.push((service.to_owned(), method.to_owned()));
        }
    }
    let mut config = MethodConfig::default();
    if let Some(t) = entry.get("timeout") {
        config.timeout = Some(duration(t, &format!("{path}.timeout"))?);
    }
    if let Some(w) = entry.get("waitForReady") {
        config.wait_for_ready = Some(w.as_bool().ok_or_else(|| {
            ServiceConfigError::new(format!("{path}.waitForReady"), "must be true or false")
        })?);
    }
    for (field, slot) in [
        (
            "maxRequestMessageBytes",
            &mut config.max_request_message_bytes,
        ),
        (
            "maxResponseMessageBytes",
            &mut config.max_response_message_bytes,
        ),
    ] {
        if let Some(v) = entry.get(field) {
            *slot = Some(byte_count(v, &format!("{path}.{field}"))?);
        }
    }
    match (entry.get("retryPolicy"), entry.get("hedgingPolicy")) {
        (Some(_), Some(_)) => {
            return Err(ServiceConfigError::new(
                path,
                "retryPolicy and hedgingPolicy are both set: a method takes one of them",
            ))
        }
        (Some(r), None) => {
            config.policy = Some(CallPolicy::Retry(retry_policy(
                r,
                &format!("{path}.retryPolicy"),
                cap,
            )?))
        }
        (None, Some(h)) => {
            config.policy = Some(CallPolicy::Hedging(hedging_policy(
                h,
                &format!("{path}.hedgingPolicy"),
                cap,
            )?))
        }
        (None, None) => {}
    }
    Ok((names, config))
}

fn retry_policy(value: &Value, path: &str, cap: u32) -> Result<RetryPolicy> {
    let p = object(value, path)?;
    let max_attempts = max_attempts(p, path, cap)?;
    let initial_backoff = positive_duration(
        required(p, path, "initialBackoff")?,
        &format!("{path}.initialBackoff"),
    )?;
    let max_backoff = positive_duration(
        required(p, path, "maxBackoff")?,
        &format!("{path}.maxBackoff"),
    )?;
    let multiplier_path = format!("{path}.backoffMultiplier");
    let backoff_multiplier = required(p, path, "backoffMultiplier")?
        .as_f64()
        .ok_or_else(|| ServiceConfigError::new(&multiplier_path, "must be a number"))?;
    if !(backoff_multiplier > 0.0 && backoff_multiplier.is_finite()) {
        return Err(ServiceConfigError::new(
            multiplier_path,
            format!("must be greater than zero, got {backoff_multiplier}"),
        ));
    }
    let retryable_status_codes = codes(
        required(p, path, "retryableStatusCodes")?,
        &format!("{path}.retryableStatusCodes"),
    )?;
    Ok(RetryPolicy {
        max_attempts,
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_status_codes,
    })
}

fn hedging_policy(value: &Value, path: &str, cap: u32) -> Result<HedgingPolicy> {
    let p = object(value, path)?;
    let max_attempts = max_attempts(p, path, cap)?;
    let hedging_delay = match p.get("hedgingDelay") {
        Some(d) => duration(d, &format!("{path}.hedgingDelay"))?,
        None => Duration::ZERO,
    };
    let non_fatal_status_codes = codes(
        required(p, path, "nonFatalStatusCodes")?,
        &format!("{path}.nonFatalStatusCodes"),
    )?;
    Ok(HedgingPolicy {
        max_attempts,
        hedging_delay,
        non_fatal_status_codes,
    })
}

fn max_attempts(p: &Map<String, Value>, path: &str, cap: u32) -> Result<u32> {
    let field = format!("{path}.maxAttempts");
    let value = required(p, path, "maxAttempts")?;
    let n = value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| {
            ServiceConfigError::new(&field, format!("must be an integer, got {value}"))
        })?;
    if n < 2 {
        return Err(ServiceConfigError::new(
            field,
            format!("must be at least 2, got {n}"),
        ));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX).min(cap.max(2)))
}

fn retry_throttling(value: &Value, path: &str) -> Result<RetryThrottling> {
    let t = object(value, path)?;
    let tokens_path = format!("{path}.maxTokens");
    let max_tokens = required(t, path, "maxTokens")?
        .as_f64()
        .ok_or_else(|| ServiceConfigError::new(&tokens_path, "must be a number"))?;
    if !(max_tokens > 0.0 && max_tokens <= 1000.0) {
        return Err(ServiceConfigError::new(
            tokens_path,
            format!("must be greater than 0 and at most 1000, got {max_tokens}"),
        ));
    }
    let ratio_path = format!("{path}.tokenRatio");
    let ratio = required(t, path, "tokenRatio")?
        .as_f64()
        .ok_or_else(|| ServiceConfigError::new(&ratio_path, "must be a number"))?;
    // Three decimals count (A6): 0.0009 is zero, which is not allowed.
    let milli_ratio = (ratio * 1000.0).trunc();
    if !(milli_ratio >= 1.0 && milli_ratio.is_finite()) {
        return Err(ServiceConfigError::new(
            ratio_path,
            format!("must be greater than zero in its first three decimals, got {ratio}"),
        ));
    }
    Ok(RetryThrottling {
        max_milli_tokens: (max_tokens * 1000.0).round() as u32,
        milli_token_ratio: milli_ratio.min(f64::from(u32::MAX)) as u32,
    })
}

fn load_balancing(root: &Map<String, Value>) -> Result<Option<LoadBalancing>> {
    if let Some(list) = root.get("loadBalancingConfig") {
        let list = array(list, "loadBalancingConfig")?;
        for (i, entry) in list.iter().enumerate() {
            let path = format!("loadBalancingConfig[{i}]");
            let entry = object(entry, &path)?;
            if entry.len() != 1 {
                return Err(ServiceConfigError::new(
                    path,
                    format!("must name exactly one policy, got {}", entry.len()),
                ));
            }
            let (name, settings) = entry.iter().next().expect("one entry");
            match name.as_str() {
                "round_robin" => return Ok(Some(LoadBalancing::RoundRobin)),
                "pick_first" => {
                    let settings = object(settings, &format!("{path}.pick_first"))?;
                    let shuffle = match settings.get("shuffleAddressList") {
                        Some(v) => v.as_bool().ok_or_else(|| {
                            ServiceConfigError::new(
                                format!("{path}.pick_first.shuffleAddressList"),
                                "must be true or false",
                            )
                        })?,
                        None => false,
                    };
                    return Ok(Some(LoadBalancing::PickFirst {
                        shuffle_address_list: shuffle,
                    }));
                }
                // Policies this client does not have: the next entry may be one it has.
                _ => continue,
            }
        }
        return Err(ServiceConfigError::new(
            "loadBalancingConfig",
            "no supported policy (this client has pick_first and round_robin)",
        ));
    }
    match root.get("loadBalancingPolicy") {
        None => Ok(None),
        Some(v) => match string(v, "loadBalancingPolicy")?
            .to_ascii_lowercase()
            .as_str()
        {
            "round_robin" => Ok(Some(LoadBalancing::RoundRobin)),
            "pick_first" => Ok(Some(LoadBalancing::PickFirst {
                shuffle_address_list: false,
            })),
            other => Err(ServiceConfigError::new(
                "loadBalancingPolicy",
                format!("unknown policy {other:?} (this client has pick_first and round_robin)"),
            )),
        },
    }
}

// ---- JSON helpers: each names the field it failed on ----

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| ServiceConfigError::new(path, format!("must be an object, got {value}")))
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| ServiceConfigError::new(path, format!("must be an array, got {value}")))
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| ServiceConfigError::new(path, format!("must be a string, got {value}")))
}

fn required<'a>(map: &'a Map<String, Value>, path: &str, field: &str) -> Result<&'a Value> {
    map.get(field)
        .ok_or_else(|| ServiceConfigError::new(format!("{path}.{field}"), "is required"))
}

fn byte_count(value: &Value, path: &str) -> Result<usize> {
    // proto3 JSON writes 64-bit integers as strings too.
    let n = match value {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    };
    n.and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
        ServiceConfigError::new(path, format!("must be a non-negative integer, got {value}"))
    })
}

/// A proto3 JSON duration: decimal seconds with an `s` suffix, up to nine decimals.
fn duration(value: &Value, path: &str) -> Result<Duration> {
    let s = string(value, path)?;
    parse_duration(s).ok_or_else(|| {
        ServiceConfigError::new(
            path,
            format!("{s:?} is not a duration: decimal seconds ending in \"s\", e.g. \"0.5s\""),
        )
    })
}

fn positive_duration(value: &Value, path: &str) -> Result<Duration> {
    let d = duration(value, path)?;
    if d.is_zero() {
        return Err(ServiceConfigError::new(path, "must be greater than zero"));
    }
    Ok(d)
}

fn parse_duration(s: &str) -> Option<Duration> {
    let number = s.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if (whole.is_empty() && fraction.is_empty())
        || fraction.len() > 9
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

fn codes(value: &Value, path: &str) -> Result<Codes> {
    let list = array(value, path)?;
    if list.is_empty() {
        return Err(ServiceConfigError::new(path, "must not be empty"));
    }
    let mut set = Codes::default();
    for (i, code) in list.iter().enumerate() {
        set.insert(status_code(code).ok_or_else(|| {
            ServiceConfigError::new(
                format!("{path}[{i}]"),
                format!("{code} is not a status code (a name such as \"UNAVAILABLE\", or 0-16)"),
            )
        })?);
    }
    Ok(set)
}

const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn status_code(value: &Value) -> Option<Code> {
    let n = match value {
        Value::String(name) => CODE_NAMES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))? as i32,
        other => i32::try_from(other.as_u64()?).ok().filter(|n| *n <= 16)?,
    };
    Some(Code::from(n))
}

#[cfg(test)]
mod tests;
