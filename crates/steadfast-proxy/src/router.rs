//! Routes: the first whose authority and path match a request names its cluster.

use std::sync::Arc;
use std::time::Duration;

use steadfast_grpc::{PolicyRunner, ServiceConfig};

use crate::cluster::Cluster;
use crate::config::{parse_duration, ConfigError, RouteConfig};

#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// Lowercase; `None` matches any.
    authority: Option<String>,
    prefix: String,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) timeout: Option<Duration>,
    /// `route[i]`, for logs and metrics.
    pub(crate) name: Arc<str>,
    /// The route's service config (A6 policies, method timeouts) and the runner of
    /// its policies, with the config's retry throttle.
    pub(crate) service_config: Option<Arc<(ServiceConfig, PolicyRunner)>>,
}

impl Route {
    pub(crate) fn new(
        i: usize,
        config: &RouteConfig,
        cluster: Arc<Cluster>,
    ) -> Result<Self, ConfigError> {
        let prefix = match (&config.service, &config.prefix) {
            (Some(service), _) => format!("/{service}/"),
            (None, Some(prefix)) => prefix.clone(),
            (None, None) => "/".to_owned(),
        };
        let timeout = match &config.timeout {
            Some(t) => Some(parse_duration(t).map_err(|message| ConfigError {
                key: format!("route[{i}].timeout"),
                message,
            })?),
            None => None,
        };
        let service_config = match &config.service_config {
            Some(json) => {
                let sc = ServiceConfig::from_json(json).map_err(|e| ConfigError {
                    key: format!("route[{i}].service_config"),
                    message: e.to_string(),
                })?;
                let runner = PolicyRunner::new(sc.retry_throttling());
                Some(Arc::new((sc, runner)))
            }
            None => None,
        };
        Ok(Self {
            service_config,
            authority: config.authority.as_ref().map(|a| a.to_ascii_lowercase()),
            prefix,
            cluster,
            timeout,
            name: Arc::from(format!("route[{i}]")),
        })
    }

    fn matches(&self, authority: Option<&str>, path: &str) -> bool {
        let authority_ok = match (&self.authority, authority) {
            (None, _) => true,
            (Some(want), Some(got)) => {
                // `host` matches `host` and `host:port`.
                got.eq_ignore_ascii_case(want)
                    || got
                        .rsplit_once(':')
                        .is_some_and(|(host, _)| host.eq_ignore_ascii_case(want))
            }
            (Some(_), None) => false,
        };
        authority_ok && path.starts_with(&self.prefix)
    }
}

impl Route {
    /// The method config the route's service config has for `path`
    /// (`/package.Service/Method`).
    pub(crate) fn method_config(
        &self,
        path: &str,
    ) -> Option<(&steadfast_grpc::service_config::MethodConfig, &PolicyRunner)> {
        let sc = self.service_config.as_deref()?;
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        Some((sc.0.method(service, method)?, &sc.1))
    }
}

/// The first route that matches.
pub(crate) fn find<'a>(
    routes: &'a [Arc<Route>],
    authority: Option<&str>,
    path: &str,
) -> Option<&'a Arc<Route>> {
    routes.iter().find(|r| r.matches(authority, path))
}

/// The route a call took (a request extension the layers below read).
#[derive(Clone, Debug)]
pub(crate) struct Routed(pub(crate) Arc<Route>);

/// The outermost layer: finds the call's route in the table in force (a reload swaps
/// the table; a call keeps the route it started with); a call no route matches is
/// answered UNIMPLEMENTED (HTTP 404 for plain HTTP) and recorded here.
#[derive(Clone, Debug)]
pub(crate) struct Routing<S> {
    table: Arc<std::sync::RwLock<Arc<crate::forward::Table>>>,
    metrics: Arc<crate::metrics::ProxyMetrics>,
    inner: S,
}

impl<S> Routing<S> {
    pub(crate) fn new(
        table: Arc<std::sync::RwLock<Arc<crate::forward::Table>>>,
        metrics: Arc<crate::metrics::ProxyMetrics>,
        inner: S,
    ) -> Self {
        Self {
            table,
            metrics,
            inner,
        }
    }
}

impl<S> tower_service::Service<http::Request<steadfast::RecvBody>> for Routing<S>
where
    S: tower_service::Service<
        http::Request<steadfast::RecvBody>,
        Response = http::Response<crate::body::ProxyBody>,
        Error = steadfast::BoxError,
        Future = crate::forward::ProxyFuture,
    >,
{
    type Response = http::Response<crate::body::ProxyBody>;
    type Error = steadfast::BoxError;
    type Future = crate::forward::ProxyFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), steadfast::BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<steadfast::RecvBody>) -> Self::Future {
        let table = match self.table.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let authority = request.uri().authority().map(|a| a.as_str());
        match find(&table.routes, authority, request.uri().path()) {
            Some(route) => {
                let route = route.clone();
                request.extensions_mut().insert(Routed(route));
                self.inner.call(request)
            }
            None => {
                let grpc = crate::forward::is_grpc(request.headers());
                let response = crate::answer::no_route(grpc, authority, request.uri().path());
                let mut record = crate::record::Record::for_request(
                    self.metrics.clone(),
                    Arc::from("none"),
                    None,
                    &request,
                );
                record.http_status = response.status().as_u16();
                record.status_from(response.headers());
                record.finish(crate::record::Outcome::Answered);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClusterConfig, Limits};

    fn cluster(name: &str) -> Arc<Cluster> {
        let config = ClusterConfig {
            name: name.to_owned(),
            backends: vec!["127.0.0.1:1".to_owned()],
            dns: None,
            balance: None,
            health_check: None,
            tls: None,
            connect_timeout: None,
            outlier: None,
        };
        let dns: Arc<dyn steadfast::client::Resolve> = Arc::new(steadfast::client::DnsResolver);
        Arc::new(Cluster::new(&config, &Limits::default(), &dns).expect("valid"))
    }

    fn route(
        i: usize,
        authority: Option<&str>,
        service: Option<&str>,
        prefix: Option<&str>,
        c: &str,
    ) -> Route {
        let config = RouteConfig {
            authority: authority.map(str::to_owned),
            service: service.map(str::to_owned),
            prefix: prefix.map(str::to_owned),
            cluster: c.to_owned(),
            timeout: None,
            service_config: None,
        };
        Route::new(i, &config, cluster(c)).expect("valid")
    }

    fn arc(route: Route) -> Arc<Route> {
        Arc::new(route)
    }

    #[tokio::test]
    async fn first_match_by_authority_service_and_prefix() {
        let routes = [
            route(
                0,
                Some("api.example"),
                Some("example.Users"),
                None,
                "users-api",
            ),
            route(1, None, Some("example.Users"), None, "users"),
            route(2, None, None, Some("/static/"), "files"),
            route(3, None, None, None, "rest"),
        ]
        .map(arc);
        let pick = |a: Option<&str>, p: &str| find(&routes, a, p).map(|r| &*r.cluster.name);
        assert_eq!(
            pick(Some("API.example:8443"), "/example.Users/Get"),
            Some("users-api")
        );
        assert_eq!(pick(Some("other"), "/example.Users/Get"), Some("users"));
        // A service matches whole: not a service whose name merely starts the same.
        assert_eq!(pick(None, "/example.UsersAdmin/Get"), Some("rest"));
        assert_eq!(pick(None, "/static/a.css"), Some("files"));
        assert_eq!(pick(None, "/"), Some("rest"));
        assert!(find(&routes[..3], None, "/x").is_none());
    }
}
