//! How a channel's load-balancing settings (a [`LoadBalancing`] policy, the service
//! config's `loadBalancingConfig` and `healthCheckConfig`) become the settings of the
//! HTTP/2 client's balancer ([`steadfast::client::BalanceConfig`]).

use std::sync::Arc;
use std::time::Duration;

use steadfast::client::BalancePolicy;
use steadfast::PoolConfig;

use crate::health::GrpcHealthCheck;
use crate::service_config::{LoadBalancing, ServiceConfig};

/// Applies to `pool`: the policy (`explicit` first, else the service config's), the
/// health check (round_robin only, as gRFC A17 says: pick_first ignores it) and the
/// minimum interval between re-resolutions.
pub(crate) fn apply(
    pool: &mut PoolConfig,
    explicit: Option<LoadBalancing>,
    config: Option<&ServiceConfig>,
    min_resolve_interval: Option<Duration>,
) {
    let policy = explicit.or_else(|| config.and_then(ServiceConfig::load_balancing));
    if let Some(policy) = policy {
        pool.balance.policy = match policy {
            LoadBalancing::PickFirst {
                shuffle_address_list,
            } => BalancePolicy::PickFirst {
                shuffle_address_list,
            },
            LoadBalancing::RoundRobin => BalancePolicy::RoundRobin,
        };
    }
    if let Some(service) = config.and_then(ServiceConfig::health_check_service) {
        if pool.balance.policy == BalancePolicy::RoundRobin {
            pool.balance.health_check = Some(Arc::new(GrpcHealthCheck::new(service)));
        } else {
            tracing::info!(
                policy = %pool.balance.policy,
                "healthCheckConfig is ignored: client-side health checking applies to \
                 round_robin only (gRFC A17)"
            );
        }
    }
    if let Some(interval) = min_resolve_interval {
        pool.balance.min_resolve_interval = interval;
    }
}
