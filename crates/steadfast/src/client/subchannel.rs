//! A subchannel: one address of a balancer, its state, its one connection, and the
//! tasks that connect it (round_robin keeps every subchannel connected; pick_first
//! runs one pass over them until one connects).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;
use tokio::time::Instant;

use super::backoff::{Backoff, BackoffConfig, SplitMix64};
use super::balance::{Balancer, ConnectivityState, Health, SubchannelInfo};
use super::connection::SendRequest;

pub(crate) struct Subchannel {
    pub(super) addr: SocketAddr,
    /// Set to true when the subchannel is removed (or its balancer dropped): its
    /// tasks end and its connection closes gracefully.
    pub(super) stop: watch::Sender<bool>,
    pub(super) inner: Mutex<SubState>,
}

pub(super) struct SubState {
    /// The state when there is no usable connection.
    pub(super) state: ConnectivityState,
    pub(super) conn: Option<SendRequest>,
    /// Counts connections, so that a late health report about an old one is ignored.
    pub(super) generation: u64,
    pub(super) health: Option<Health>,
    pub(super) last_error: Option<String>,
    pub(super) backoff: Backoff,
    pub(super) next_attempt: Option<Instant>,
    /// Its round_robin task is running.
    pub(super) task_running: bool,
    /// Ejected by outlier detection until then: picked only when no READY
    /// subchannel that is not ejected is left.
    pub(super) ejected_until: Option<Instant>,
}

impl Subchannel {
    pub(super) fn new(addr: SocketAddr, backoff: &BackoffConfig) -> Arc<Self> {
        Arc::new(Self {
            addr,
            stop: watch::Sender::new(false),
            inner: Mutex::new(SubState {
                state: ConnectivityState::Idle,
                conn: None,
                generation: 0,
                health: None,
                last_error: None,
                backoff: Backoff::new(backoff.clone(), SplitMix64::seed() ^ addr.port() as u64),
                next_attempt: None,
                task_running: false,
                ejected_until: None,
            }),
        })
    }

    /// The state a picker sees, and the connection when READY.
    pub(super) fn effective(&self) -> (ConnectivityState, Option<SendRequest>) {
        let Ok(sub) = self.inner.lock() else {
            return (ConnectivityState::TransientFailure, None);
        };
        match &sub.conn {
            // Its task has not noticed yet: not usable, about to reconnect.
            Some(conn) if conn.is_draining() || conn.is_closed() => (ConnectivityState::Idle, None),
            Some(conn) => match &sub.health {
                Some(Health::Unknown) => (ConnectivityState::Connecting, None),
                Some(Health::NotServing(_)) => (ConnectivityState::TransientFailure, None),
                _ => (ConnectivityState::Ready, Some(conn.clone())),
            },
            None => (sub.state, None),
        }
    }

    pub(super) fn info(&self) -> SubchannelInfo {
        let (state, _) = self.effective();
        let (health, last_error) = self
            .inner
            .lock()
            .map(|s| (s.health.clone(), s.last_error.clone()))
            .unwrap_or_default();
        SubchannelInfo {
            address: self.addr,
            state,
            health,
            last_error,
            ejected: self.is_ejected(),
        }
    }

    /// Ejected by outlier detection now.
    pub(super) fn is_ejected(&self) -> bool {
        self.inner
            .lock()
            .is_ok_and(|s| s.ejected_until.is_some_and(|until| Instant::now() < until))
    }

    pub(super) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    pub(super) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Waits until `at` (if any) unless `sub` stops first; false when it stopped.
async fn wait_until(sub: &Subchannel, at: Option<Instant>) -> bool {
    let Some(at) = at else {
        return !sub.is_stopped();
    };
    tokio::select! {
        _ = tokio::time::sleep_until(at) => !sub.is_stopped(),
        _ = sub.stopped() => false,
    }
}

/// How [`connect_and_serve`] ended.
enum Served {
    /// The attempt failed: the subchannel waits for its backoff.
    Failed,
    /// The connection was used until it drained or closed.
    Ended,
    /// The subchannel was removed, or its balancer dropped.
    Stopped,
}

/// Connects `sub` and serves its connection until it ends.
async fn connect_and_serve(weak: &Weak<Balancer>, sub: &Arc<Subchannel>) -> Served {
    let Some(balancer) = weak.upgrade() else {
        return Served::Stopped;
    };
    let attempt = tokio::select! {
        result = balancer.connect(sub) => result,
        _ = sub.stopped() => return Served::Stopped,
    };
    let Ok((conn, generation)) = attempt else {
        return Served::Failed;
    };
    let opened_at = Instant::now();
    balancer.start_health_check(sub, &conn, generation);
    drop(balancer);
    tokio::select! {
        _ = conn.until_draining() => {}
        _ = sub.stopped() => return Served::Stopped,
    }
    let Some(balancer) = weak.upgrade() else {
        return Served::Stopped;
    };
    balancer.connection_ended(sub, &conn, opened_at);
    Served::Ended
}

/// round_robin: keeps `sub` connected — reconnects when its connection ends, after
/// its backoff when an attempt failed — until it is removed.
pub(super) async fn run_subchannel(weak: Weak<Balancer>, sub: Arc<Subchannel>) {
    loop {
        let at = sub.inner.lock().ok().and_then(|s| s.next_attempt);
        if !wait_until(&sub, at).await {
            break;
        }
        if let Served::Stopped = connect_and_serve(&weak, &sub).await {
            break;
        }
    }
    if let Ok(mut s) = sub.inner.lock() {
        s.task_running = false;
        s.conn = None;
    }
}

/// pick_first: tries the addresses in order, each once its backoff allows, until one
/// connects; serves that connection until it ends; then stops (the next request
/// starts a new pass from the first address). While every address fails it keeps
/// going, each address on its own backoff.
pub(super) async fn run_pass(weak: Weak<Balancer>) {
    struct Running(Weak<Balancer>);
    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(balancer) = self.0.upgrade() {
                if let Ok(mut state) = balancer.state.lock() {
                    state.pass_running = false;
                }
                balancer.notify();
            }
        }
    }
    let _running = Running(weak.clone());
    let mut stop = match weak.upgrade() {
        Some(balancer) => balancer.stop.subscribe(),
        None => return,
    };
    loop {
        let Some(subs) = weak
            .upgrade()
            .and_then(|b| b.state.lock().ok().map(|s| s.subchannels.clone()))
        else {
            return;
        };
        let now = Instant::now();
        for sub in &subs {
            let due = sub
                .inner
                .lock()
                .is_ok_and(|s| s.next_attempt.is_none_or(|t| t <= now));
            if !due || sub.is_stopped() {
                continue;
            }
            match connect_and_serve(&weak, sub).await {
                Served::Failed => continue,
                Served::Ended => return,
                Served::Stopped => {
                    if let Ok(mut s) = sub.inner.lock() {
                        s.conn = None;
                    }
                    return;
                }
            }
        }
        // Every address failed (or waits for its backoff): wait for the first one
        // due, or a new address list.
        let next = subs
            .iter()
            .filter_map(|s| s.inner.lock().ok().and_then(|s| s.next_attempt))
            .min();
        let Some(balancer) = weak.upgrade() else {
            return;
        };
        let mut changed = balancer.changed.subscribe();
        drop(balancer);
        let list_changed = async {
            loop {
                if changed.changed().await.is_err() {
                    return;
                }
                let now_subs = weak
                    .upgrade()
                    .and_then(|b| b.state.lock().ok().map(|s| s.subchannels.clone()));
                match now_subs {
                    Some(now_subs)
                        if now_subs.len() == subs.len()
                            && now_subs.iter().zip(&subs).all(|(a, b)| Arc::ptr_eq(a, b)) => {}
                    _ => return,
                }
            }
        };
        tokio::select! {
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = list_changed => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
