//! The client side of grpc's `doc/negative-http2-interop-test-descriptions.md`: our
//! interop-client against a misbehaving Python `h2` server (`negative_http2_server.py`,
//! on the shared peer plumbing of `crates/steadfast/tests/peers/h2peer.py`), one
//! server per case. The client asserts what its call must do (`negative.rs`); this
//! test asserts what the server saw: goaway's second call on a new connection, every
//! PING acked, never more than one open stream per connection under
//! SETTINGS_MAX_CONCURRENT_STREAMS=1. Prints the table for the README (`cargo test -p
//! steadfast-interop --test negative_http2 -- --nocapture`).
//!
//! Everything listens on 127.0.0.1; every child process is killed on drop; every wait
//! is bounded.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{parse, Outcome, Process};

const OUR_CLIENT: &str = env!("CARGO_BIN_EXE_interop-client");
const SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/negative_http2_server.py"
);
const PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../steadfast/tests/peers");

/// Starting the server, the case, and the server's last lines.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The calls of max_streams: the first, then ten at once.
const MAX_STREAMS_CALLS: usize = 11;

/// What the server printed about one connection when it closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Closed {
    calls: usize,
    pings_sent: usize,
    pings_acked: usize,
    max_open_streams: usize,
}

/// What the server saw: the connection of each answered call (in order), each
/// connection's closing line, and whether it said "done" (every connection closed).
#[derive(Debug, Default)]
struct Seen {
    call_connections: Vec<usize>,
    closed: BTreeMap<usize, Closed>,
    ignored_after_goaway: usize,
    done: bool,
}

impl Seen {
    /// Takes one line of the server's.
    fn take(&mut self, line: &str) {
        let words: Vec<&str> = line
            .split([' ', ',', ':'])
            .filter(|w| !w.is_empty())
            .collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<usize>().ok());
        match words.first() {
            // call N on connection C stream S
            Some(&"call") => self.call_connections.extend(number(4)),
            Some(&"ignored") => self.ignored_after_goaway += 1,
            Some(&"done") => self.done = true,
            // connection C closed: calls K, pings sent P, acked A, max open streams M
            Some(&"connection") => {
                if let Some(connection) = number(1) {
                    let closed = Closed {
                        calls: number(4).unwrap_or(0),
                        pings_sent: number(7).unwrap_or(0),
                        pings_acked: number(9).unwrap_or(0),
                        max_open_streams: number(13).unwrap_or(0),
                    };
                    self.closed.insert(connection, closed);
                }
            }
            _ => {}
        }
    }
}

/// Runs our client's `case` (with `client_flags`) against a server misbehaving as
/// `server_case`; the client's outcome and what the server saw.
fn run(server_case: &str, case: &str, client_flags: &[&str]) -> (Outcome, Seen) {
    let mut server = Process::start(
        "negative_http2_server.py",
        Command::new("python3")
            .env("PYTHONPATH", PEERS_DIR)
            .args([SERVER, "0", server_case]),
    );
    let port = server
        .line(TIMEOUT)
        .and_then(|line| line.parse::<u16>().ok())
        .expect("the server prints its port first");
    let client = Process::start(
        "interop-client",
        Command::new(OUR_CLIENT)
            .args([
                "--server_host=127.0.0.1",
                &format!("--server_port={port}"),
                &format!("--test_case={case}"),
            ])
            .args(client_flags),
    );
    let outcome = parse(&client.output(TIMEOUT))
        .remove(case)
        .unwrap_or_else(|| Outcome::Fail("no result".into()));
    // The client has exited: the server reports its connections' close, then "done".
    drop(client);
    server.close_stdin();
    let mut seen = Seen::default();
    for line in server.output(TIMEOUT) {
        seen.take(&line);
    }
    (outcome, seen)
}

/// A case's check of what the server saw: what to write in the table, or why it failed.
type Check = fn(&Seen) -> Result<String, String>;

fn goaway(seen: &Seen) -> Result<String, String> {
    match seen.call_connections[..] {
        [first, second] if first != second => Ok(format!(
            "the second call came on a new connection ({} stream(s) ignored after the GOAWAY)",
            seen.ignored_after_goaway
        )),
        ref other => Err(format!("answered calls on connections {other:?}")),
    }
}

/// The second call was sent before the GOAWAY came, refused by it, and retried
/// transparently on a new connection.
fn goaway_late(seen: &Seen) -> Result<String, String> {
    match (&seen.call_connections[..], seen.ignored_after_goaway) {
        ([first, second], 1) if first != second => {
            Ok("the refused second call was retried on a new connection".into())
        }
        _ => Err(format!("{seen:?}")),
    }
}

fn reset(seen: &Seen) -> Result<String, String> {
    if seen.call_connections.is_empty() {
        Ok("its reset, no call answered (the client: INTERNAL, from the reset)".into())
    } else {
        Err(format!("calls answered: {:?}", seen.call_connections))
    }
}

fn ping(seen: &Seen) -> Result<String, String> {
    let (sent, acked) = seen
        .closed
        .values()
        .fold((0, 0), |(s, a), c| (s + c.pings_sent, a + c.pings_acked));
    if sent == 4 && acked == sent && seen.call_connections.len() == 1 {
        Ok(format!("{acked} of {sent} PINGs acked"))
    } else {
        Err(format!("PINGs sent {sent}, acked {acked}; {seen:?}"))
    }
}

/// Never more than one open stream on any connection, and every call answered.
fn max_streams(seen: &Seen) -> Result<String, String> {
    let most_open = seen
        .closed
        .values()
        .map(|c| c.max_open_streams)
        .max()
        .unwrap_or(0);
    if most_open == 1 && seen.call_connections.len() == MAX_STREAMS_CALLS {
        Ok(format!(
            "{MAX_STREAMS_CALLS} calls over {} connection(s), at most 1 open stream on each",
            seen.closed.len()
        ))
    } else {
        Err(format!(
            "at most {most_open} open streams on a connection; {seen:?}"
        ))
    }
}

fn max_streams_on_one_connection(seen: &Seen) -> Result<String, String> {
    let summary = max_streams(seen)?;
    if seen.closed.len() == 1 {
        Ok(format!("{summary}: the calls queued"))
    } else {
        Err(format!("{} connections, expected 1", seen.closed.len()))
    }
}

#[test]
fn our_client_against_a_misbehaving_h2_server() {
    let started = Instant::now();
    // (the server's case, our client's case, our client's flags, the check)
    let runs: [(&str, &str, &[&str], Check); 8] = [
        ("goaway", "goaway", &[], goaway),
        ("goaway_late", "goaway", &[], goaway_late),
        ("rst_after_header", "rst_after_header", &[], reset),
        ("rst_during_data", "rst_during_data", &[], reset),
        ("rst_after_data", "rst_after_data", &[], reset),
        ("ping", "ping", &[], ping),
        ("max_streams", "max_streams", &[], max_streams),
        (
            "max_streams",
            "max_streams",
            &["--max_connections=1"],
            max_streams_on_one_connection,
        ),
    ];
    let results: Vec<(Outcome, Seen)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(server, case, flags, _)| scope.spawn(move || run(server, case, flags)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a negative case run panicked"))
            .collect()
    });

    let mut table = String::from(
        "| case | our client → Python h2 server | what the server saw |\n|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for ((server, case, flags, check), (outcome, seen)) in runs.iter().zip(&results) {
        let mut name = (*case).to_owned();
        if server != case {
            name += &format!(" (server: {server})");
        }
        if !flags.is_empty() {
            name += &format!(" ({})", flags.join(" "));
        }
        let client = match outcome {
            Outcome::Pass => "pass".to_owned(),
            other => {
                failures.push(format!("{name}: our client: {other:?}"));
                "FAIL".to_owned()
            }
        };
        if !seen.done {
            failures.push(format!(
                "{name}: the server did not report every connection closed"
            ));
        }
        let server = check(seen).unwrap_or_else(|why| {
            failures.push(format!("{name}: the server saw: {why}"));
            format!("FAIL: {why}")
        });
        table += &format!("| {name} | {client} | {server} |\n");
    }
    println!("{table}");
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}
