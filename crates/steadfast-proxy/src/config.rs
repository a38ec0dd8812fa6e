//! The proxy's configuration: a TOML file, or flags for the simple case, checked in
//! full before anything is bound, every error naming its key.
//!
//! ```toml
//! [[listener]]
//! address = "127.0.0.1:8443"
//! tls = { cert = "proxy.pem", key = "proxy.key" }   # omit for h2c
//!
//! [[cluster]]
//! name = "users"
//! backends = ["127.0.0.1:50051", "127.0.0.1:50052"]  # or: dns = "users.default.svc:50051"
//! balance = "least_request"                          # or "round_robin" (the default)
//! health_check = { service = "" }                    # grpc.health.v1, per backend
//!
//! [[route]]
//! service = "example.Users"                          # or: prefix = "/example.Users/"
//! cluster = "users"
//!
//! [[route]]
//! prefix = "/"
//! cluster = "users"
//! timeout = "30s"                                    # no stream time limit unless set
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where clients connect (`[[listener]]`).
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Which requests go to which cluster, first match wins (`[[route]]`).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// Groups of backends (`[[cluster]]`).
    #[serde(default, rename = "cluster")]
    pub clusters: Vec<ClusterConfig>,
    /// Limits and retry budgets (`[limits]`).
    #[serde(default)]
    pub limits: Limits,
}

/// A listening address.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// `ip:port`.
    pub address: String,
    /// TLS with ALPN `h2`; without it, h2c with prior knowledge.
    pub tls: Option<ListenerTls>,
}

/// A listener's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenerTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl ListenerTls {
    /// A certificate chain and its key, PEM files.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

/// A route: requests whose `:authority` and path match go to `cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The `:authority` (host, or host:port) to match, case-insensitively; any when
    /// absent.
    pub authority: Option<String>,
    /// A gRPC service (`package.Service`): matches `/package.Service/…`.
    pub service: Option<String>,
    /// A path prefix; `/` matches everything. Neither `service` nor `prefix`: `/`.
    pub prefix: Option<String>,
    /// The cluster's name.
    pub cluster: String,
    /// The longest a call may take, from its first byte to its last (`"30s"`,
    /// `"250ms"`); a gRPC call's own `grpc-timeout` still applies when shorter. No
    /// limit when absent.
    pub timeout: Option<String>,
    /// A gRPC service config (JSON, as gRPC clients take it) for this route's calls:
    /// each method's `retryPolicy` or `hedgingPolicy` (gRFC A6), `timeout`, and the
    /// config's `retryThrottling`. The proxy retries a call whose attempt failed with
    /// a retryable status before any response header — so only for methods safe to
    /// run twice, which is what listing them says.
    pub service_config: Option<String>,
}

/// A cluster of backends, all serving the same thing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// How routes name it.
    pub name: String,
    /// A static list of `ip:port`.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Or a DNS name with port (`host:port`), resolved again when a backend fails or
    /// goes away (a Kubernetes headless Service works).
    pub dns: Option<String>,
    /// `round_robin` (default) or `least_request` (power of two choices), per
    /// request.
    pub balance: Option<String>,
    /// Active health checks of each backend with `grpc.health.v1.Health/Watch`.
    pub health_check: Option<HealthCheckConfig>,
    /// TLS to the backends; absent: h2c with prior knowledge.
    pub tls: Option<ClusterTls>,
    /// Time allowed for each step of connecting to a backend (default `"5s"`).
    pub connect_timeout: Option<String>,
    /// Passive outlier ejection (on by default: 5 failures in a row eject a backend
    /// for 30 s, growing with each ejection up to 300 s).
    pub outlier: Option<OutlierConfig>,
}

/// Passive outlier ejection of a cluster's backends.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct OutlierConfig {
    /// Failures in a row that eject a backend; 0 turns ejection off.
    pub consecutive_failures: u32,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base_ejection: String,
    /// The longest an ejection lasts.
    pub max_ejection: String,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: "30s".to_owned(),
            max_ejection: "300s".to_owned(),
        }
    }
}

/// The health-checked service.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthCheckConfig {
    /// The service name asked for (`""`: the server as a whole).
    #[serde(default)]
    pub service: String,
}

/// TLS towards a cluster's backends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterTls {
    /// PEM roots to trust (default: the Web PKI roots).
    pub ca: Option<PathBuf>,
    /// The name the backends' certificates must carry (default: the DNS name, or
    /// for static backends the cluster's name).
    pub server_name: Option<String>,
}

/// Limits and retry budgets.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Limits {
    /// Client connections served at once.
    pub max_connections: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS offered to clients.
    pub max_concurrent_streams: u32,
    /// Calls in flight through the proxy at once; more are refused with
    /// REFUSED_STREAM before anything is sent to a backend.
    pub max_in_flight: Option<usize>,
    /// Request bytes kept per call to replay it on another backend.
    pub retry_buffer_per_call: usize,
    /// Request bytes kept for replay across all calls.
    pub retry_buffer_total: usize,
    /// How many times a call a backend refused (GOAWAY, REFUSED_STREAM) is sent to
    /// another one, the first at once, then with a growing backoff.
    pub refused_retries: u32,
    /// How long calls in flight may take to finish once a graceful shutdown starts.
    pub shutdown_grace: String,
    /// How long a call waits for a backend when none of its cluster is ready (all
    /// restarting, or the name not re-resolved yet) before it fails UNAVAILABLE,
    /// never sent. A call's own deadline bounds the wait too.
    pub wait_for_backend: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_concurrent_streams: 1000,
            max_in_flight: None,
            retry_buffer_per_call: 1 << 20,
            retry_buffer_total: 64 << 20,
            refused_retries: 4,
            shutdown_grace: "30s".to_owned(),
            wait_for_backend: "5s".to_owned(),
        }
    }
}

/// A configuration that cannot be used: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, as in the file (`cluster[1].backends[0]`); empty for the file as a
    /// whole.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// How a cluster finds its backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Backends {
    Static(Vec<SocketAddr>),
    Dns { host: String, port: u16 },
}

/// A cluster's balancing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Balance {
    RoundRobin,
    LeastRequest,
}

impl Config {
    /// Parses and checks a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            // toml's message names the key and the line; keep it on one line.
            error("", e.to_string().trim().replace('\n', " "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The simple case: one h2c listener, every request to one cluster `default`
    /// of `backends`, round robin, with health checks.
    pub fn simple(listen: SocketAddr, backends: &[SocketAddr]) -> Self {
        Self {
            listeners: vec![ListenerConfig {
                address: listen.to_string(),
                tls: None,
            }],
            routes: vec![RouteConfig {
                authority: None,
                service: None,
                prefix: Some("/".to_owned()),
                cluster: "default".to_owned(),
                timeout: None,
                service_config: None,
            }],
            clusters: vec![ClusterConfig {
                name: "default".to_owned(),
                backends: backends.iter().map(ToString::to_string).collect(),
                dns: None,
                balance: None,
                health_check: Some(HealthCheckConfig {
                    service: String::new(),
                }),
                tls: None,
                connect_timeout: None,
                outlier: None,
            }],
            limits: Limits::default(),
        }
    }

    /// Checks everything a value can get wrong, naming the key of the first error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(error("listener", "at least one [[listener]] is needed"));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            l.address.parse::<SocketAddr>().map_err(|_| {
                error(
                    format!("listener[{i}].address"),
                    format!("{:?} is not ip:port", l.address),
                )
            })?;
        }
        if self.clusters.is_empty() {
            return Err(error("cluster", "at least one [[cluster]] is needed"));
        }
        for (i, c) in self.clusters.iter().enumerate() {
            let key = |k: &str| format!("cluster[{i}].{k}");
            if c.name.is_empty()
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(error(
                    key("name"),
                    format!("{:?}: letters, digits, '-' and '.' only", c.name),
                ));
            }
            if self.clusters[..i].iter().any(|o| o.name == c.name) {
                return Err(error(key("name"), format!("{:?} is defined twice", c.name)));
            }
            c.backends_spec().map_err(|(k, m)| error(key(&k), m))?;
            c.balance().map_err(|m| error(key("balance"), m))?;
            if let Some(t) = &c.connect_timeout {
                parse_duration(t).map_err(|m| error(key("connect_timeout"), m))?;
            }
            if let Some(o) = &c.outlier {
                parse_duration(&o.base_ejection)
                    .map_err(|m| error(key("outlier.base_ejection"), m))?;
                parse_duration(&o.max_ejection)
                    .map_err(|m| error(key("outlier.max_ejection"), m))?;
            }
        }
        if self.routes.is_empty() {
            return Err(error("route", "at least one [[route]] is needed"));
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = |k: &str| format!("route[{i}].{k}");
            if !self.clusters.iter().any(|c| c.name == r.cluster) {
                return Err(error(
                    key("cluster"),
                    format!("no [[cluster]] is named {:?}", r.cluster),
                ));
            }
            if r.service.is_some() && r.prefix.is_some() {
                return Err(error(
                    key("service"),
                    "give `service` or `prefix`, not both",
                ));
            }
            if let Some(p) = &r.prefix {
                if !p.starts_with('/') {
                    return Err(error(key("prefix"), format!("{p:?} must start with '/'")));
                }
            }
            if let Some(s) = &r.service {
                if s.is_empty() || s.contains('/') {
                    return Err(error(
                        key("service"),
                        format!("{s:?} is not a gRPC service name (package.Service)"),
                    ));
                }
            }
            if let Some(t) = &r.timeout {
                parse_duration(t).map_err(|m| error(key("timeout"), m))?;
            }
            if let Some(json) = &r.service_config {
                steadfast_grpc::ServiceConfig::from_json(json)
                    .map_err(|e| error(key("service_config"), e.to_string()))?;
            }
        }
        let l = &self.limits;
        parse_duration(&l.shutdown_grace).map_err(|m| error("limits.shutdown_grace", m))?;
        parse_duration(&l.wait_for_backend).map_err(|m| error("limits.wait_for_backend", m))?;
        if l.max_concurrent_streams == 0 {
            return Err(error(
                "limits.max_concurrent_streams",
                "must be at least 1 (0 would refuse every call)",
            ));
        }
        if l.retry_buffer_per_call > l.retry_buffer_total {
            return Err(error(
                "limits.retry_buffer_per_call",
                "is larger than limits.retry_buffer_total",
            ));
        }
        Ok(())
    }
}

impl ClusterConfig {
    pub(crate) fn backends_spec(&self) -> Result<Backends, (String, String)> {
        match (&self.dns, self.backends.is_empty()) {
            (Some(_), false) => Err((
                "dns".to_owned(),
                "give `backends` or `dns`, not both".to_owned(),
            )),
            (None, true) => Err((
                "backends".to_owned(),
                "a cluster needs `backends` (a list of ip:port) or `dns` (host:port)".to_owned(),
            )),
            (Some(dns), true) => {
                let (host, port) = dns
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .filter(|(h, _)| !h.is_empty())
                    .ok_or_else(|| ("dns".to_owned(), format!("{dns:?} is not host:port")))?;
                Ok(Backends::Dns {
                    host: host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                    port,
                })
            }
            (None, false) => self
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    b.parse::<SocketAddr>().map_err(|_| {
                        (
                            format!("backends[{i}]"),
                            format!("{b:?} is not ip:port (use `dns` for a name)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()
                .map(Backends::Static),
        }
    }

    pub(crate) fn balance(&self) -> Result<Balance, String> {
        match self.balance.as_deref() {
            None | Some("round_robin") => Ok(Balance::RoundRobin),
            Some("least_request") => Ok(Balance::LeastRequest),
            Some(other) => Err(format!(
                "{other:?} is not a policy (round_robin, least_request)"
            )),
        }
    }
}

/// `"250ms"`, `"10s"`, `"2m"`, `"1h"`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. \"250ms\", \"10s\", \"2m\")");
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[listener]]
        address = "127.0.0.1:8443"

        [[cluster]]
        name = "users"
        backends = ["127.0.0.1:50051", "127.0.0.1:50052"]
        balance = "least_request"
        health_check = { service = "" }

        [[cluster]]
        name = "search"
        dns = "search.default.svc:50051"

        [[route]]
        service = "example.Users"
        cluster = "users"

        [[route]]
        prefix = "/"
        cluster = "search"
        timeout = "30s"

        service_config = """
        {"methodConfig": [{"name": [{"service": "example.Search"}],
          "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
                          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
        """

        [limits]
        refused_retries = 2
    "#;

    #[test]
    fn a_full_file_parses() {
        let c = Config::from_toml(GOOD).expect("valid");
        assert_eq!(c.listeners[0].address, "127.0.0.1:8443");
        assert_eq!(c.clusters[0].balance(), Ok(Balance::LeastRequest));
        assert_eq!(
            c.clusters[1].backends_spec(),
            Ok(Backends::Dns {
                host: "search.default.svc".into(),
                port: 50051
            })
        );
        assert_eq!(c.limits.refused_retries, 2);
        assert_eq!(
            c.limits.max_concurrent_streams, 1000,
            "defaults fill the rest"
        );
        assert!(Config::simple("127.0.0.1:1".parse().unwrap(), &[])
            .validate()
            .is_err());
        Config::simple(
            "127.0.0.1:1".parse().unwrap(),
            &["127.0.0.1:2".parse().unwrap()],
        )
        .validate()
        .expect("the flags' config is valid");
    }

    fn bad(edit: (&str, &str)) -> ConfigError {
        let text = GOOD.replacen(edit.0, edit.1, 1);
        assert_ne!(text, GOOD, "the edit {edit:?} applies");
        Config::from_toml(&text).expect_err("invalid")
    }

    #[test]
    fn every_error_names_its_key() {
        let cases = [
            (
                ("address = \"127.0.0.1:8443\"", "address = \"localhost\""),
                "listener[0].address",
            ),
            (
                ("\"127.0.0.1:50052\"", "\"users-2:50052\""),
                "cluster[0].backends[1]",
            ),
            (
                ("balance = \"least_request\"", "balance = \"random\""),
                "cluster[0].balance",
            ),
            (("name = \"search\"", "name = \"users\""), "cluster[1].name"),
            (
                ("dns = \"search.default.svc:50051\"", "dns = \"search\""),
                "cluster[1].dns",
            ),
            (
                ("cluster = \"search\"", "cluster = \"serch\""),
                "route[1].cluster",
            ),
            (
                ("timeout = \"30s\"", "timeout = \"30\""),
                "route[1].timeout",
            ),
            (("prefix = \"/\"", "prefix = \"api\""), "route[1].prefix"),
            (
                ("\"maxAttempts\": 3", "\"maxAttempts\": 1"),
                "route[1].service_config",
            ),
            (
                (
                    "refused_retries = 2",
                    "refused_retries = 2\nshutdown_grace = \"soon\"",
                ),
                "limits.shutdown_grace",
            ),
        ];
        for (edit, key) in cases {
            let e = bad(edit);
            assert_eq!(e.key, key, "{edit:?}: {e}");
            assert!(e.to_string().starts_with(&format!("`{key}`: ")), "{e}");
        }
        // Unknown keys and wrong types: toml's message, which names the key.
        let e = bad(("balance = \"least_request\"", "balanse = \"least_request\""));
        assert!(e.to_string().contains("balanse"), "{e}");
        let e = bad(("refused_retries = 2", "refused_retries = \"two\""));
        assert!(e.to_string().contains("refused_retries"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
