//! Reconnection backoff, exactly as gRPC's connection-backoff document specifies:
//! INITIAL_BACKOFF 1 s, MULTIPLIER 1.6, JITTER 0.2, MAX_BACKOFF 120 s,
//! MIN_CONNECT_TIMEOUT 20 s. Sans-IO: it computes delays and deadlines; the caller
//! sleeps.

use std::time::Duration;

/// The parameters of the backoff.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The delay after the first failure.
    pub initial: Duration,
    /// Each further failure multiplies the delay by this.
    pub multiplier: f64,
    /// The delay is randomized by ±this fraction.
    pub jitter: f64,
    /// The delay never exceeds this (before jitter).
    pub max: Duration,
    /// A connection attempt always gets at least this long.
    pub min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The state of one target's backoff.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    /// The un-jittered backoff of the next attempt.
    current: Duration,
    rng: SplitMix64,
}

impl Backoff {
    /// A fresh backoff; `seed` makes the jitter reproducible.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Self {
            current: config.initial,
            config,
            rng: SplitMix64(seed),
        }
    }

    /// How long the next connection attempt may take:
    /// `max(MIN_CONNECT_TIMEOUT, current_backoff)`.
    pub fn connect_timeout(&self) -> Duration {
        self.config.min_connect_timeout.max(self.current)
    }

    /// An attempt failed: returns how long to wait before the next one, and grows the
    /// backoff (`current = min(current * MULTIPLIER, MAX_BACKOFF)`).
    pub fn next_delay(&mut self) -> Duration {
        let jitter = self.config.jitter * (2.0 * self.rng.next_f64() - 1.0);
        let delay = self.current.mul_f64((1.0 + jitter).max(0.0));
        self.current = self
            .current
            .mul_f64(self.config.multiplier)
            .min(self.config.max);
        delay
    }

    /// The server's SETTINGS arrived: the connection works; start over.
    pub fn reset(&mut self) {
        self.current = self.config.initial;
    }

    /// The current un-jittered backoff.
    pub fn current(&self) -> Duration {
        self.current
    }
}

/// A small, fast, seedable PRNG (SplitMix64), for jitter and load spreading — the
/// library's one source of randomness, public so that tools built on it (the demo's
/// workload) draw from the same. Not for anything secret.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    /// A generator that starts from `seed` (the same seed, the same sequence).
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the clock, for unrelated instances (jitter).
    pub fn from_clock() -> Self {
        Self(Self::seed())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A seed from the clock and the address of a local, for unrelated instances.
    pub(crate) fn seed() -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        t ^ (&local as *const u8 as u64).rotate_left(32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_grpc_sequence_within_jitter() {
        let mut b = Backoff::new(BackoffConfig::default(), 7);
        let mut expected = 1.0f64;
        for _ in 0..20 {
            let d = b.next_delay().as_secs_f64();
            assert!(
                d >= expected * 0.8 - 1e-9 && d <= expected * 1.2 + 1e-9,
                "{d} vs {expected}"
            );
            expected = (expected * 1.6).min(120.0);
        }
        // Capped at MAX_BACKOFF.
        assert_eq!(b.current(), Duration::from_secs(120));
        assert_eq!(b.connect_timeout(), Duration::from_secs(120));
        b.reset();
        assert_eq!(b.current(), Duration::from_secs(1));
        assert_eq!(
            b.connect_timeout(),
            Duration::from_secs(20),
            "MIN_CONNECT_TIMEOUT"
        );
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let mut lo = f64::MAX;
        let mut hi = 0.0f64;
        for seed in 0..2000 {
            let d = Backoff::new(BackoffConfig::default(), seed)
                .next_delay()
                .as_secs_f64();
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(lo < 0.82 && hi > 1.18, "{lo}..{hi}");
        assert!(lo >= 0.8 && hi <= 1.2);
    }

    #[test]
    fn same_seed_same_delays() {
        let a: Vec<_> = {
            let mut b = Backoff::new(BackoffConfig::default(), 42);
            (0..5).map(|_| b.next_delay()).collect()
        };
        let mut b = Backoff::new(BackoffConfig::default(), 42);
        let again: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(a, again);
    }
}
