//! What the interop tests share: temporary directories, child processes killed on
//! drop whose output is read line by line with bounded waits, and the `PASS` /
//! `FAIL` / `PARTIAL` / `SKIP` lines that every interop client prints.

#![allow(dead_code)] // Each test file uses its own part.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A fresh directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "steadfast-interop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn str(&self) -> &str {
        self.0.to_str().expect("temp dir path is UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed on drop; its stdout read line by line on a thread. Its
/// stdin stays open (the peer servers stop at EOF) until it is dropped.
pub(crate) struct Process {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    pub(crate) fn start(name: &str, command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{name} does not start ({e}): scripts/test installs python3 with \
                     scripts/requirements.txt, and node with `npm ci --prefix \
                     crates/steadfast-interop/tests/node`"
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// Closes the process's stdin (the peer servers finish at EOF).
    pub(crate) fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// The next line, waiting at most `timeout`.
    pub(crate) fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The port of a server's `listening on HOST:PORT` line, and the lines before it.
    pub(crate) fn port(&self, timeout: Duration) -> (u16, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| {
                    panic!(
                        "{} printed no port in {timeout:?} ({e}): {before:?}",
                        self.name
                    )
                });
            let Some(addr) = line.strip_prefix("listening on ") else {
                before.push(line);
                continue;
            };
            let port = addr
                .rsplit(':')
                .next()
                .and_then(|port| port.parse().ok())
                .unwrap_or_else(|| panic!("{}: not `listening on HOST:PORT`: {line:?}", self.name));
            return (port, before);
        }
    }

    /// Every line until the process closes its output, at most `timeout`; a last
    /// `FAIL *` line says so if it did not.
    pub(crate) fn output(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => return lines,
                Err(RecvTimeoutError::Timeout) => {
                    lines.push(format!(
                        "FAIL *: {} still running after {timeout:?}",
                        self.name
                    ));
                    return lines;
                }
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one case went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pass,
    Fail(String),
    /// Passed what it could check; says what it could not.
    Partial(String),
    /// Not run as described: says why.
    Skip(String),
}

/// The outcome of each case, from `PASS case`, `FAIL case: why`, `PARTIAL case: what`
/// and `SKIP case: why` lines.
pub(crate) type Results = HashMap<String, Outcome>;

pub(crate) fn parse(lines: &[String]) -> Results {
    let mut results = Results::new();
    for line in lines {
        let Some((word, rest)) = line.split_once(' ') else {
            continue;
        };
        let (case, why) = rest.split_once(": ").unwrap_or((rest, ""));
        let outcome = match word {
            "PASS" => Outcome::Pass,
            "FAIL" => Outcome::Fail(why.to_owned()),
            "PARTIAL" => Outcome::Partial(why.to_owned()),
            "SKIP" => Outcome::Skip(why.to_owned()),
            _ => continue,
        };
        results.insert(case.to_owned(), outcome);
    }
    results
}
