//! A cluster: one [`steadfast::Client`] over its backends, balancing every request
//! (not every connection) with `round_robin` or `least_request`, health-checking each
//! backend, and retrying what a backend provably did not process on another one.

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;
use steadfast::client::{BalancePolicy, Resolve, StaticResolver, SubchannelInfo};
use steadfast::{Client, PoolConfig, RetryPolicy};

use crate::config::{
    parse_duration, Backends, Balance, ClusterConfig, ConfigError, Limits, OutlierConfig,
};
use crate::outlier::{Outlier, OutlierSettings};

/// A built cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) name: Arc<str>,
    /// What it was built from: a reload keeps a cluster whose configuration did not
    /// change, with its connections.
    pub(crate) config: ClusterConfig,
    pub(crate) limits: Limits,
    pub(crate) client: Client,
    pub(crate) outlier: Outlier,
    scheme: Scheme,
    authority: Authority,
}

impl Cluster {
    pub(crate) fn new(
        config: &ClusterConfig,
        limits: &Limits,
        dns: &Arc<dyn Resolve>,
    ) -> Result<Self, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            key: format!("cluster {:?}.{key}", config.name),
            message,
        };
        let backends = config.backends_spec().map_err(|(k, m)| err(&k, m))?;
        let mut pool = PoolConfig::default();
        pool.balance.policy = match config.balance().map_err(|m| err("balance", m))? {
            Balance::RoundRobin => BalancePolicy::RoundRobin,
            Balance::LeastRequest => BalancePolicy::LeastRequest,
        };
        if let Some(check) = &config.health_check {
            pool.balance.health_check = Some(Arc::new(steadfast_grpc::GrpcHealthCheck::new(
                &check.service,
            )));
        }
        // A backend that comes and goes (a rolling deploy) should be found again
        // soon, not after grpc's default 30 s.
        pool.balance.min_resolve_interval = Duration::from_secs(1);
        pool.connection.connect_timeout = match &config.connect_timeout {
            Some(t) => parse_duration(t).map_err(|m| err("connect_timeout", m))?,
            None => Duration::from_secs(5),
        };
        pool.ready_wait = Some(
            parse_duration(&limits.wait_for_backend)
                .map_err(|m| err("limits.wait_for_backend", m))?,
        );
        let mut retry = RetryPolicy::default();
        retry.refused_retries = limits.refused_retries;
        retry.buffer_per_request = limits.retry_buffer_per_call;
        retry.buffer_total = limits.retry_buffer_total;
        pool.retry = retry;
        let tls = config.tls.is_some();
        if let Some(t) = &config.tls {
            let roots = match &t.ca {
                Some(path) => steadfast::tls::Roots::PemFile(path.clone()),
                None => steadfast::tls::Roots::WebPki,
            };
            pool.connection.tls =
                Some(steadfast::tls::client_config(roots).map_err(|m| err("tls.ca", m))?);
        }
        let port_default = if tls { 443 } else { 80 };
        let (host, port, resolver): (String, u16, Arc<dyn Resolve>) = match backends {
            Backends::Static(addrs) => {
                let host = config
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_name.clone())
                    .unwrap_or_else(|| config.name.clone());
                (host, port_default, Arc::new(StaticResolver::new(addrs)))
            }
            Backends::Dns { host, port } => {
                let name = config
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_name.clone())
                    .unwrap_or(host.clone());
                if name != host {
                    return Err(err(
                        "tls.server_name",
                        "differs from the DNS name: the certificate name is the name resolved"
                            .to_owned(),
                    ));
                }
                (host, port, dns.clone())
            }
        };
        let authority: Authority = format!("{host}:{port}")
            .parse()
            .map_err(|_| err("name", format!("{host:?} cannot be an authority")))?;
        let client = Client::with_resolver(pool, SharedResolver(resolver));
        let outlier = config.outlier.clone().unwrap_or_default();
        let outlier = Outlier::new(outlier_settings(&outlier).map_err(|(k, m)| err(k, m))?);
        Ok(Self {
            name: Arc::from(config.name.as_str()),
            config: config.clone(),
            limits: limits.clone(),
            client,
            outlier,
            scheme: if tls { Scheme::HTTPS } else { Scheme::HTTP },
            authority,
        })
    }

    /// The URI of `path` on this cluster (the client's pool key).
    pub(crate) fn uri(&self, path: Option<&PathAndQuery>) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(
            path.cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        Uri::from_parts(parts).unwrap_or_default()
    }

    /// Notes the end of a call `backend` served; ejects it when that makes too many
    /// failures in a row.
    pub(crate) fn observe(&self, backend: std::net::SocketAddr, failed: bool) {
        if let Some(duration) = self.outlier.observe(backend, failed) {
            let ejected = self.client.eject(&self.uri(None), backend, duration);
            tracing::warn!(cluster = %self.name, %backend, ?duration, ejected, "outlier: backend ejected after consecutive failures");
        }
    }

    /// Each backend's state, health and last error.
    pub(crate) fn backends(&self) -> Vec<SubchannelInfo> {
        self.client.subchannels(&self.uri(None))
    }
}

fn outlier_settings(o: &OutlierConfig) -> Result<OutlierSettings, (&'static str, String)> {
    Ok(OutlierSettings {
        consecutive_failures: o.consecutive_failures,
        base_ejection: parse_duration(&o.base_ejection)
            .map_err(|m| ("outlier.base_ejection", m))?,
        max_ejection: parse_duration(&o.max_ejection).map_err(|m| ("outlier.max_ejection", m))?,
    })
}

/// A resolver behind an `Arc`, so static and DNS clusters share one client type.
struct SharedResolver(Arc<dyn Resolve>);

impl Resolve for SharedResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>> + Send>,
    > {
        self.0.resolve(host, port)
    }
}
