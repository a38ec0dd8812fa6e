//! Name resolution: how an authority's host becomes addresses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Finds the addresses behind an authority, so that connections follow DNS (or any
/// other naming) changes.
///
/// When it is asked: under [`BalancePolicy::LeastLoaded`](super::BalancePolicy)
/// each time a connection is opened; under `pick_first` and `round_robin` once at the
/// first request, then again when a connection receives GOAWAY, when one fails, and
/// when every address failed — never more often than
/// [`BalanceConfig::min_resolve_interval`](super::BalanceConfig) (30 s by default, as
/// grpc's DNS resolver), since a change of addresses is rare and a failing backend
/// must not turn into a storm of lookups.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses for `host:port`, in the order to try them.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;
}

/// Resolves with the system resolver.
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsResolver;

impl Resolve for DnsResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
    {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

/// Resolves every authority to a fixed list of addresses (tests, demos, static
/// backends).
#[derive(Clone, Debug)]
pub struct StaticResolver(pub Arc<Mutex<Vec<SocketAddr>>>);

impl StaticResolver {
    /// A resolver answering `addrs` for every name.
    pub fn new(addrs: Vec<SocketAddr>) -> Self {
        Self(Arc::new(Mutex::new(addrs)))
    }
}

impl Resolve for StaticResolver {
    fn resolve(
        &self,
        _: &str,
        _: u16,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
    {
        let addrs = self.0.lock().map(|a| a.clone()).unwrap_or_default();
        Box::pin(async move { Ok(addrs) })
    }
}
