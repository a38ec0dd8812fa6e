//! The proxy's Prometheus metrics (prometheus-client), registered with
//! [`Proxy::register_metrics`](crate::Proxy::register_metrics):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `steadfast_proxy_calls_total` | counter | `route`, `cluster`, `backend`, `grpc_method`, `grpc_status`, `outcome` |
//! | `steadfast_proxy_call_duration_seconds` | histogram | `route`, `cluster`, `grpc_method`, `grpc_status` |
//! | `steadfast_proxy_unanswered_total` | counter | `cluster`, `fate`: calls no backend answered, by how far they got |
//! | `steadfast_proxy_transparent_retries_total` | counter | `cluster`, `cause`: `not_sent`, `refused_goaway`, `refused_stream` |
//! | `steadfast_proxy_ejections_total` | counter | `cluster`, `backend`: outlier ejections |
//! | `steadfast_proxy_backend_ready` | gauge | `cluster`, `backend`: 1 while READY (connected, and SERVING if health-checked) |
//! | `steadfast_proxy_calls_shed_total` | counter | calls the proxy refused itself (REFUSED_STREAM) at `limits.max_in_flight` |
//!
//! `grpc_method` is the request path (`/package.Service/Method`) for gRPC calls and
//! `other` for plain HTTP requests; past [`MAX_METHODS`] distinct paths, new ones
//! count as `other` too, so clients sending made-up paths cannot grow the label set
//! without bound. `grpc_status` is the status the client got (`""` for plain HTTP,
//! `invalid` for a value that is not a status code 0–16, whatever a backend sent); `backend` is the
//! backend's `ip:port`, or `none` when no backend answered; `outcome` is `answered`,
//! `failed` (the proxy answered for the backend) or `cancelled` (the client left
//! first).

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use steadfast::client::ConnectivityState;
use steadfast::Fate;

use crate::forward::Table;
use crate::record::{Outcome, Record};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    route: String,
    cluster: String,
    backend: String,
    grpc_method: String,
    grpc_status: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: String,
    cluster: String,
    grpc_method: String,
    grpc_status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FateLabels {
    cluster: String,
    fate: &'static str,
}

/// The latency buckets of gRFC A66, in seconds.
const BUCKETS: [f64; 24] = [
    0.0001, 0.0003, 0.0006, 0.001, 0.002, 0.004, 0.006, 0.01, 0.016, 0.025, 0.04, 0.065, 0.1, 0.16,
    0.25, 0.4, 0.65, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// Distinct `grpc_method` values kept; beyond, `other`.
pub const MAX_METHODS: usize = 1000;

/// The proxy's counters and histograms; cheap to update from every call.
#[derive(Debug)]
pub(crate) struct ProxyMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    unanswered: Family<FateLabels, Counter>,
    methods: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A grpc-status as a label: the code, or `invalid`.
fn status_label(status: Option<&str>) -> String {
    match status {
        None => String::new(),
        Some(s) if s.parse::<u8>().is_ok_and(|c| c <= 16) => s.to_owned(),
        Some(_) => "invalid".to_owned(),
    }
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(histogram),
            unanswered: Family::default(),
            methods: std::sync::Mutex::default(),
        }
    }
}

impl ProxyMetrics {
    /// `method`, or `other` once [`MAX_METHODS`] others are known.
    fn method_label(&self, method: &str) -> String {
        let Ok(mut methods) = self.methods.lock() else {
            return "other".to_owned();
        };
        if methods.contains(method) {
            return method.to_owned();
        }
        if methods.len() < MAX_METHODS {
            methods.insert(method.to_owned());
            return method.to_owned();
        }
        "other".to_owned()
    }

    pub(crate) fn observe(&self, record: &Record, outcome: Outcome, elapsed: Duration) {
        let grpc_status = status_label(record.grpc_status.as_deref());
        let method = self.method_label(&record.method);
        self.calls
            .get_or_create(&CallLabels {
                route: record.route.to_string(),
                cluster: record.cluster.to_string(),
                backend: record
                    .backend
                    .map_or_else(|| "none".to_owned(), |a| a.to_string()),
                grpc_method: method.clone(),
                grpc_status: grpc_status.clone(),
                outcome: match outcome {
                    Outcome::Answered => "answered",
                    Outcome::Failed => "failed",
                    Outcome::Cancelled => "cancelled",
                },
            })
            .inc();
        self.duration
            .get_or_create(&DurationLabels {
                route: record.route.to_string(),
                cluster: record.cluster.to_string(),
                grpc_method: method,
                grpc_status,
            })
            .observe(elapsed.as_secs_f64());
        if outcome == Outcome::Failed {
            self.unanswered
                .get_or_create(&FateLabels {
                    cluster: record.cluster.to_string(),
                    fate: match record.fate {
                        Some(Fate::NotSent) => "not_sent",
                        Some(Fate::Refused) => "refused",
                        Some(Fate::MaybeProcessed) => "maybe_processed",
                        Some(Fate::Processed) => "processed",
                        None => "none",
                    },
                })
                .inc();
        }
    }

    pub(crate) fn register(
        self: &Arc<Self>,
        registry: &mut Registry,
        table: Arc<RwLock<Arc<Table>>>,
        listeners: Vec<steadfast::StatsHandle>,
    ) {
        registry.register(
            "steadfast_proxy_calls",
            "Calls through the proxy, by route, cluster, backend, method, status and outcome",
            self.calls.clone(),
        );
        registry.register_with_unit(
            "steadfast_proxy_call_duration",
            "Time from a call's arrival to its last frame to the client",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "steadfast_proxy_unanswered",
            "Calls no backend answered, by fate: not_sent (no backend took it), refused (every backend tried refused it), maybe_processed (a backend failed after it was sent)",
            self.unanswered.clone(),
        );
        registry.register_collector(Box::new(Clusters(table, listeners)));
    }
}

/// Per cluster, read at scrape time: transparent retries by cause, backend states.
#[derive(Debug)]
struct Clusters(Arc<RwLock<Arc<Table>>>, Vec<steadfast::StatsHandle>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cluster: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    cluster: String,
    backend: String,
}

impl Collector for Clusters {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Ok(table) = self.0.read().map(|t| t.clone()) else {
            return Ok(());
        };
        let mut clusters = Vec::new();
        for route in &table.routes {
            if !clusters
                .iter()
                .any(|c: &&Arc<crate::cluster::Cluster>| Arc::ptr_eq(c, &route.cluster))
            {
                clusters.push(&route.cluster);
            }
        }
        let retries = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "steadfast_proxy_transparent_retries",
            "Calls sent to another backend because one never sent or refused them, by cause",
            None,
            retries.metric_type(),
        )?;
        for c in &clusters {
            let s = c.client.stats();
            for (cause, value) in [
                ("not_sent", s.retries_not_sent),
                ("refused_goaway", s.retries_refused_goaway),
                ("refused_stream", s.retries_refused_stream),
            ] {
                let labels = CauseLabels {
                    cluster: c.name.to_string(),
                    cause,
                };
                ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let shed: u64 = self.1.iter().map(|s| s.get().refused).sum();
        let counter = ConstCounter::new(shed);
        counter.encode(encoder.encode_descriptor(
            "steadfast_proxy_calls_shed",
            "Calls refused with REFUSED_STREAM by the proxy itself (limits.max_in_flight reached), before any backend saw them",
            None,
            counter.metric_type(),
        )?)?;
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "steadfast_proxy_ejections",
            "Times outlier detection ejected a backend (consecutive failures)",
            None,
            counter.metric_type(),
        )?;
        for c in &clusters {
            for (backend, n) in c.outlier.ejections() {
                let labels = BackendLabels {
                    cluster: c.name.to_string(),
                    backend: backend.to_string(),
                };
                ConstCounter::new(u64::from(n)).encode(family.encode_family(&labels)?)?;
            }
        }
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "steadfast_proxy_backend_ready",
            "1 while a backend is READY (connected, and SERVING when health-checked)",
            None,
            gauge.metric_type(),
        )?;
        for c in &clusters {
            for b in c.backends() {
                let labels = BackendLabels {
                    cluster: c.name.to_string(),
                    backend: b.address.to_string(),
                };
                let up = i64::from(b.state == ConnectivityState::Ready);
                ConstGauge::new(up).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded_whatever_clients_and_backends_send() {
        let metrics = ProxyMetrics::default();
        for i in 0..MAX_METHODS {
            assert_eq!(
                metrics.method_label(&format!("/s.S/M{i}")),
                format!("/s.S/M{i}")
            );
        }
        assert_eq!(
            metrics.method_label("/s.S/M0"),
            "/s.S/M0",
            "known ones stay"
        );
        assert_eq!(metrics.method_label("/s.S/New"), "other");
        assert_eq!(status_label(Some("14")), "14");
        assert_eq!(status_label(Some("17")), "invalid");
        assert_eq!(status_label(Some("lots of labels")), "invalid");
        assert_eq!(status_label(None), "");
    }
}
