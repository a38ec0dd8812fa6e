//! Passive outlier detection: a backend whose calls fail `consecutive_failures`
//! times in a row is ejected — calls avoid it while another backend is READY — for
//! `base_ejection` times the number of times it was ejected, at most
//! `max_ejection` (Envoy's consecutive-5xx detector, in spirit).
//!
//! A failure is what says the backend, not the call, is broken: the proxy had to
//! answer for it (its connection or stream failed), an HTTP 5xx, or a grpc-status
//! of UNAVAILABLE, INTERNAL, UNKNOWN or DATA_LOSS. A DEADLINE_EXCEEDED is not (the
//! client's budget may be what ran out), nor a cancellation by the client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The detector's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutlierSettings {
    /// 0: off.
    pub(crate) consecutive_failures: u32,
    pub(crate) base_ejection: Duration,
    pub(crate) max_ejection: Duration,
}

#[derive(Debug, Default)]
struct Entry {
    consecutive: u32,
    /// Ejections so far (the multiplier of the next one).
    ejections: u32,
    last_ejection: Option<Instant>,
}

/// The detector of one cluster.
#[derive(Debug)]
pub(crate) struct Outlier {
    settings: OutlierSettings,
    backends: Mutex<HashMap<SocketAddr, Entry>>,
}

impl Outlier {
    pub(crate) fn new(settings: OutlierSettings) -> Self {
        Self {
            settings,
            backends: Mutex::default(),
        }
    }

    /// Notes a call's end on `backend`; returns how long to eject it for, when this
    /// failure is the one that ejects it.
    pub(crate) fn observe(&self, backend: SocketAddr, failed: bool) -> Option<Duration> {
        let s = self.settings;
        if s.consecutive_failures == 0 {
            return None;
        }
        let mut backends = self.backends.lock().ok()?;
        let entry = backends.entry(backend).or_default();
        if !failed {
            entry.consecutive = 0;
            return None;
        }
        entry.consecutive += 1;
        if entry.consecutive < s.consecutive_failures {
            return None;
        }
        entry.consecutive = 0;
        // A backend healthy for a whole max_ejection since its last ejection starts
        // over from the base time.
        if entry
            .last_ejection
            .is_some_and(|at| at.elapsed() > s.max_ejection + s.base_ejection * entry.ejections)
        {
            entry.ejections = 0;
        }
        entry.ejections += 1;
        entry.last_ejection = Some(Instant::now());
        Some((s.base_ejection * entry.ejections).min(s.max_ejection))
    }

    /// Ejections so far, per backend.
    pub(crate) fn ejections(&self) -> Vec<(SocketAddr, u32)> {
        self.backends
            .lock()
            .map(|b| {
                b.iter()
                    .filter(|(_, e)| e.ejections > 0)
                    .map(|(a, e)| (*a, e.ejections))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether a call's end counts against its backend.
pub(crate) fn is_failure(
    proxy_answered: bool,
    http_status: u16,
    grpc_status: Option<&str>,
) -> bool {
    proxy_answered
        || (500..600).contains(&http_status)
        || matches!(grpc_status, Some("14" | "13" | "2" | "15"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_failures_eject_for_a_growing_time() {
        let outlier = Outlier::new(OutlierSettings {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(25),
        });
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(outlier.observe(a, true), None);
        assert_eq!(outlier.observe(a, true), None);
        // A success in between starts the count over.
        assert_eq!(outlier.observe(a, false), None);
        assert_eq!(outlier.observe(a, true), None);
        assert_eq!(outlier.observe(a, true), None);
        assert_eq!(outlier.observe(a, true), Some(Duration::from_secs(10)));
        for _ in 0..2 {
            assert_eq!(outlier.observe(a, true), None);
        }
        assert_eq!(outlier.observe(a, true), Some(Duration::from_secs(20)));
        for _ in 0..2 {
            assert_eq!(outlier.observe(a, true), None);
        }
        assert_eq!(
            outlier.observe(a, true),
            Some(Duration::from_secs(25)),
            "capped"
        );
        assert_eq!(outlier.ejections(), [(a, 3)]);
        let off = Outlier::new(OutlierSettings {
            consecutive_failures: 0,
            base_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(1),
        });
        assert!((0..10).all(|_| off.observe(a, true).is_none()));
    }

    #[test]
    fn what_counts_as_a_failure() {
        assert!(is_failure(true, 200, None));
        assert!(is_failure(false, 503, None));
        assert!(is_failure(false, 200, Some("14")));
        assert!(is_failure(false, 200, Some("13")));
        assert!(!is_failure(false, 200, Some("0")));
        assert!(
            !is_failure(false, 200, Some("5")),
            "NOT_FOUND is the application's answer"
        );
        assert!(
            !is_failure(false, 200, Some("4")),
            "a deadline is the client's budget"
        );
        assert!(!is_failure(false, 404, None));
    }
}
