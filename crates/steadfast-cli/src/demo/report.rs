//! Live progress and the final figures of the demo.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;
use steadfast::client::ClientStats;
use steadfast::Client;

use super::{Args, Outcomes};

/// Redraws a progress line on stderr while the demo runs (when stderr is a terminal).
pub(crate) async fn progress(client: Client, start: Instant, end: Instant, quiet: bool) {
    let mut err = std::io::stderr();
    if quiet || !err.is_terminal() {
        return;
    }
    let total = end
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(0.001);
    loop {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        // Back to the start of the line, redraw, clear what an older, longer line left.
        let _ = write!(
            err,
            "\r{}\x1b[K",
            progress_line(elapsed, total, &client.stats())
        );
        let _ = err.flush();
        if now >= end {
            let _ = writeln!(err);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live line: at most 79 columns whatever the counts, so it redraws in place on
/// an 80-column terminal instead of wrapping (a wrapped line scrolls on every redraw).
/// The breakdown by cause is in the final table.
pub(crate) fn progress_line(elapsed: f64, total: f64, s: &ClientStats) -> String {
    const WIDTH: usize = 20;
    let done = (elapsed / total).clamp(0.0, 1.0);
    let filled = (done * WIDTH as f64) as usize;
    let failed = s.failed_not_sent
        + s.failed_refused
        + s.failed_maybe_processed
        + s.failed_processed
        + s.failed_other;
    let retries = s.retries_not_sent
        + s.retries_refused_goaway
        + s.retries_refused_stream
        + s.retries_maybe_processed;
    let line = format!(
        "[{}{}] {elapsed:5.1}s  req {:>7}  ok {:>7}  fail {:>4}  retry {:>5}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        s.requests,
        s.succeeded,
        failed,
        retries,
    );
    // Counts beyond the columns reserved for them (runs far longer than the default)
    // must not push the line past the edge.
    line.chars().take(79).collect()
}

/// Failed requests, by fate.
#[derive(Debug, Serialize)]
pub(crate) struct Failed {
    pub(crate) not_sent: u64,
    pub(crate) refused: u64,
    pub(crate) maybe_processed: u64,
    pub(crate) processed: u64,
    pub(crate) other: u64,
}

/// Transparent retries, by cause.
#[derive(Debug, Serialize)]
pub(crate) struct Retries {
    pub(crate) not_sent: u64,
    pub(crate) refused_goaway: u64,
    pub(crate) refused_stream: u64,
    pub(crate) maybe_processed: u64,
}

/// Latency of successful requests, in milliseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// The figures of one demo run.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) retry: bool,
    pub(crate) seconds: f64,
    pub(crate) backends: usize,
    pub(crate) concurrency: usize,
    pub(crate) seed: u64,
    pub(crate) requests: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: Failed,
    pub(crate) retries: Retries,
    /// Requests the backends refused with REFUSED_STREAM (load shedding).
    pub(crate) shed_by_backends: u64,
    /// Requests the backends handed to their service.
    pub(crate) processed_by_backends: u64,
    pub(crate) connects: u64,
    pub(crate) connect_failures: u64,
    pub(crate) latency: Latency,
    pub(crate) wrong_answers: u64,
    pub(crate) chaos: Vec<String>,
    /// A few distinct failure messages.
    pub(crate) failure_samples: Vec<String>,
    /// With the mechanism on: no request whose fate was NotSent or Refused failed.
    pub(crate) guarantee_held: bool,
}

impl Summary {
    pub(crate) fn new(
        args: &Args,
        s: &ClientStats,
        outcomes: &Outcomes,
        elapsed: Duration,
        shed: u64,
        processed: u64,
    ) -> Self {
        let mut latencies = outcomes
            .latencies_us
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies[i] as f64 / 1000.0
        };
        let chaos = outcomes
            .chaos
            .lock()
            .map(|c| {
                c.iter()
                    .map(|(t, what)| format!("{t:.1}s {what}"))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            retry: !args.no_retry,
            seconds: elapsed.as_secs_f64(),
            backends: args.backends,
            concurrency: args.concurrency,
            seed: args.seed,
            requests: s.requests,
            succeeded: s.succeeded,
            failed: Failed {
                not_sent: s.failed_not_sent,
                refused: s.failed_refused,
                maybe_processed: s.failed_maybe_processed,
                processed: s.failed_processed,
                other: s.failed_other,
            },
            retries: Retries {
                not_sent: s.retries_not_sent,
                refused_goaway: s.retries_refused_goaway,
                refused_stream: s.retries_refused_stream,
                maybe_processed: s.retries_maybe_processed,
            },
            shed_by_backends: shed,
            processed_by_backends: processed,
            connects: s.connects,
            connect_failures: s.connect_failures,
            latency: Latency {
                p50_ms: pct(0.50),
                p99_ms: pct(0.99),
                max_ms: pct(1.0),
            },
            wrong_answers: outcomes
                .wrong_answers
                .load(std::sync::atomic::Ordering::Relaxed),
            chaos,
            failure_samples: outcomes
                .samples
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default(),
            guarantee_held: s.failed_not_sent == 0 && s.failed_refused == 0,
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub(crate) fn failed_total(&self) -> u64 {
        let f = &self.failed;
        f.not_sent + f.refused + f.maybe_processed + f.processed + f.other
    }

    pub(crate) fn print_table(&self) {
        let f = &self.failed;
        let r = &self.retries;
        let mode = if self.retry { "on" } else { "OFF (--no-retry)" };
        println!();
        println!("steadfast demo: {} backends, {} concurrent requests (bursts x4), {:.1}s, seed {}, transparent retry {mode}", self.backends, self.concurrency, self.seconds, self.seed);
        println!();
        println!("chaos: {}", self.chaos.len());
        for c in &self.chaos {
            println!("  {c}");
        }
        println!();
        println!("  requests sent                    {:>9}", self.requests);
        println!("  succeeded                        {:>9}", self.succeeded);
        println!(
            "  failed                           {:>9}",
            self.failed_total()
        );
        println!("    never sent (NotSent)           {:>9}", f.not_sent);
        println!("    refused (GOAWAY/REFUSED)       {:>9}", f.refused);
        println!(
            "    maybe processed                {:>9}",
            f.maybe_processed
        );
        println!("    processed                      {:>9}", f.processed);
        println!("    other                          {:>9}", f.other);
        println!(
            "  transparent retries              {:>9}",
            r.not_sent + r.refused_goaway + r.refused_stream + r.maybe_processed
        );
        println!("    not sent                       {:>9}", r.not_sent);
        println!("    refused by GOAWAY              {:>9}", r.refused_goaway);
        println!("    REFUSED_STREAM                 {:>9}", r.refused_stream);
        println!(
            "  shed by backends (REFUSED_STREAM){:>9}",
            self.shed_by_backends
        );
        println!(
            "  connections opened / failed      {:>5} / {}",
            self.connects, self.connect_failures
        );
        println!(
            "  latency p50 / p99 / max          {:.2} / {:.2} / {:.2} ms",
            self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms
        );
        if !self.failure_samples.is_empty() {
            println!("  failures, for example:");
            for sample in &self.failure_samples {
                println!("    {sample}");
            }
        }
        if self.wrong_answers > 0 {
            println!(
                "  WRONG ANSWERS                    {:>9}",
                self.wrong_answers
            );
        }
        println!();
        if self.retry {
            if self.guarantee_held {
                println!("No request that the servers provably did not process was lost. The {} failures were in flight when a backend crashed: the server may have processed them, so they are reported, not retried.", self.failed_total());
            } else {
                println!(
                    "GUARANTEE BROKEN: {} never-sent and {} refused requests failed.",
                    f.not_sent, f.refused
                );
            }
        } else {
            println!("Retry off: {} requests that the servers never processed failed anyway (never sent: {}, refused: {}). Run without --no-retry to see them succeed.", f.not_sent + f.refused, f.not_sent, f.refused);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_fits_80_columns_whatever_the_counts() {
        let big = ClientStats {
            requests: 12_345_678_901,
            succeeded: 12_345_678_000,
            failed_maybe_processed: 901_234,
            retries_refused_stream: 98_765_432,
            ..ClientStats::default()
        };
        for (elapsed, stats) in [(0.0, ClientStats::default()), (7.3, big), (999.9, big)] {
            let line = progress_line(elapsed, 15.0, &stats);
            assert!(line.chars().count() <= 79, "{} columns: {line}", line.len());
            assert!(line.starts_with('['), "{line}");
        }
        let line = progress_line(7.5, 15.0, &ClientStats::default());
        assert!(line.starts_with("[##########..........]   7.5s"), "{line}");
    }
}
