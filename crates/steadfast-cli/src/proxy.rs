//! `steadfast proxy`: the gRPC-aware reverse proxy of `steadfast-proxy`, from a TOML
//! file or, for the simple case, flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use steadfast_proxy::{Config, Proxy};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The configuration file (TOML: listeners, routes, clusters, limits). SIGHUP
    /// reloads it without dropping a connection.
    #[arg(long, short = 'c', conflicts_with_all = ["listen", "backend"])]
    config: Option<PathBuf>,
    /// The simple case: listen here (h2c)…
    #[arg(long, requires = "backend")]
    listen: Option<SocketAddr>,
    /// …and send every call to these backends (h2c, round robin per call, health
    /// checked with grpc.health.v1). Repeat for each backend.
    #[arg(long, requires = "listen")]
    backend: Vec<SocketAddr>,
    /// Check the configuration, print it is valid, and exit.
    #[arg(long)]
    check: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (per route, cluster,
    /// backend, method and status; retries by cause; calls shed; backends ready).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Write one access-log record per call (both sides: client address and stream,
    /// backend address and stream, statuses, fate, duration) at INFO, target
    /// `steadfast_proxy::access`.
    #[arg(long)]
    access_log: bool,
    /// `json`: every log record as one JSON object per line of stderr; `text` (the
    /// default): human-readable lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

impl Args {
    /// Whether `main` initialises the JSON subscriber.
    pub(crate) fn json_logs(&self) -> bool {
        self.log_format == LogFormat::Json
    }

    /// The log filter directive that turns the access log off, unless asked for.
    pub(crate) fn access_log_directive(&self) -> Option<&'static str> {
        (!self.access_log).then_some("steadfast_proxy::access=off")
    }
}

fn load(args: &Args) -> Result<Config, String> {
    match (&args.config, args.listen) {
        (Some(path), _) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        (None, Some(listen)) => {
            let config = Config::simple(listen, &args.backend);
            config.validate().map_err(|e| e.to_string())?;
            Ok(config)
        }
        (None, None) => Err("give --config FILE, or --listen ADDR with --backend ADDR…".into()),
    }
}

pub(crate) async fn run(args: Args) -> u8 {
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if args.check {
        println!("steadfast proxy: configuration is valid");
        return 0;
    }
    let proxy = match Proxy::new(config) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut running = match proxy.bind().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot listen: {e}");
            return 1;
        }
    };
    for addr in running.local_addrs() {
        println!("steadfast proxy: listening on {addr}");
    }
    if let Some(at) = args.metrics {
        let listener = match tokio::net::TcpListener::bind(at).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {at} for --metrics: {e}");
                return 1;
            }
        };
        let mut registry = prometheus_client::registry::Registry::default();
        proxy.register_metrics(&mut registry);
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        println!("steadfast proxy: metrics on http://{bound}/metrics");
        tokio::spawn(crate::serve::metrics::serve(listener, Arc::new(registry)));
    }
    let handles = running.shutdown_handles();
    let reload_from = args.config.clone();
    let reloader = proxy.clone();
    tokio::spawn(async move {
        signals(reload_from, reloader).await;
        tracing::info!("signal received: draining (two-phase GOAWAY)");
        for h in handles {
            h.graceful();
        }
    });
    match running.wait().await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Returns at SIGINT or SIGTERM; reloads the file at each SIGHUP.
async fn signals(config: Option<PathBuf>, proxy: Arc<Proxy>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    let Some(path) = &config else {
                        tracing::warn!("SIGHUP: nothing to reload (no --config)");
                        continue;
                    };
                    let result = std::fs::read_to_string(path)
                        .map_err(|e| e.to_string())
                        .and_then(|t| Config::from_toml(&t).map_err(|e| e.to_string()))
                        .and_then(|c| proxy.reload(c).map_err(|e| e.to_string()));
                    match result {
                        // Tests and scripts wait for this line.
                        Ok(()) => println!("steadfast proxy: reloaded {}", path.display()),
                        Err(e) => {
                            tracing::error!(file = %path.display(), error = %e, "reload refused; the old configuration stays");
                            println!("steadfast proxy: reload failed: {e}");
                        }
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (config, proxy);
        let _ = tokio::signal::ctrl_c().await;
    }
}
