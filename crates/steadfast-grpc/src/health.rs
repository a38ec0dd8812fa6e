//! Client-side health checking (gRFC A17): a `grpc.health.v1.Health/Watch` stream on
//! each subchannel's connection, through tonic-health's generated client over that
//! one connection.
//!
//! - the subchannel is CONNECTING until the first answer, READY while the answer is
//!   SERVING, TRANSIENT_FAILURE otherwise (NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN);
//! - a stream that fails or ends takes the subchannel out of the picker too, and is
//!   started again after a backoff (gRPC's connection backoff), at once when the
//!   failed stream had delivered an answer; the subchannel stays TRANSIENT_FAILURE
//!   until the new stream answers (A17 moves it to CONNECTING meanwhile: either way
//!   it gets no calls, and a call that finds nothing else fails fast with the
//!   reason rather than waiting);
//! - UNIMPLEMENTED (the server has no health service) turns checking off for that
//!   connection, which is then READY; it is logged once per address, at WARN.
//!
//! The stream is cancelled when the connection drains (GOAWAY) or closes.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use steadfast::client::{Backoff, BackoffConfig, HealthCheck, HealthReport, SplitMix64};
use steadfast::SendRequest;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A [`HealthCheck`] that watches `service` (`""`: the server as a whole) with
/// `grpc.health.v1.Health/Watch` on every subchannel's connection, for a
/// [`steadfast::Client`] balancing with `round_robin` or `least_request` (a
/// [`Channel`](crate::Channel) configures it from its service config).
#[derive(Debug)]
pub struct GrpcHealthCheck {
    service: String,
    /// Addresses whose server answered UNIMPLEMENTED already (logged once each).
    unimplemented: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl GrpcHealthCheck {
    /// Checks `service` (`""`: the server as a whole).
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            unimplemented: Arc::default(),
        }
    }
}

impl HealthCheck for GrpcHealthCheck {
    fn watch(
        &self,
        connection: SendRequest,
        report: HealthReport,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let service = self.service.clone();
        let unimplemented = self.unimplemented.clone();
        Box::pin(async move {
            let address = report.address();
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let mut backoff = Backoff::new(
                BackoffConfig::default(),
                SplitMix64::new(seed ^ u64::from(address.port())).next_u64(),
            );
            loop {
                let mut answered = false;
                let mut client = HealthClient::new(connection.clone());
                let request = HealthCheckRequest {
                    service: service.clone(),
                };
                let failure = match client.watch(request).await {
                    Err(status) => status,
                    Ok(response) => {
                        let mut stream = response.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(answer)) => {
                                    answered = true;
                                    match answer.status() {
                                        ServingStatus::Serving => report.serving(),
                                        other => report.not_serving(format!(
                                            "the server says {} for service {service:?}",
                                            other.as_str_name()
                                        )),
                                    }
                                }
                                Ok(None) => {
                                    break tonic::Status::unavailable(
                                        "the health stream ended without a status",
                                    )
                                }
                                Err(status) => break status,
                            }
                        }
                    }
                };
                if failure.code() == Code::Unimplemented {
                    let first = unimplemented
                        .lock()
                        .map(|mut seen| seen.insert(address))
                        .unwrap_or(true);
                    if first {
                        tracing::warn!(
                            %address,
                            "the server does not implement grpc.health.v1.Health/Watch: \
                             health checking is off for this address (gRFC A17)"
                        );
                    }
                    report.disabled("the server has no health service (UNIMPLEMENTED)");
                    return;
                }
                report.not_serving(format!(
                    "the health stream failed: {:?}: {}",
                    failure.code(),
                    failure.message()
                ));
                if answered {
                    backoff.reset();
                } else {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        })
    }
}
