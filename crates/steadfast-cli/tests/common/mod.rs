//! Support for tests that run the `steadfast` binary against real peers: processes
//! that stop when the test ends, bounded waits, and clear messages when a peer tool is
//! missing (CI installs them; see scripts/test).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const STEADFAST: &str = env!("CARGO_BIN_EXE_steadfast");

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Panics with an install hint if `tool` is not on PATH.
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run scripts/test, or `apt-get install {package}`"
    );
}

/// Starts `command` with its stdout piped; its lines arrive on the receiver (peers
/// report their address or port there). Killed when the `Proc` drops.
pub fn spawn_reporting(mut command: Command, name: &str) -> (Proc, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let proc = Proc {
        child,
        name: name.into(),
    };
    (proc, rx)
}

/// Starts `steadfast serve` on a free port and waits until it listens.
pub fn steadfast_serve(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut command = Command::new(STEADFAST);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--grace", "5"])
        .env("RUST_LOG", "warn")
        .args(extra);
    let (proc, rx) = spawn_reporting(command, "steadfast serve");
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("steadfast serve printed its address");
    let addr = line
        .rsplit("://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (proc, addr)
}

/// A free loopback port (for peers that cannot pick their own and report it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion within `timeout`, killing it otherwise.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for child"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("{program} {args:?} did not finish within {timeout:?}");
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch directory removed at the end of the test.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("steadfast-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a self-signed certificate for `localhost` and `127.0.0.1` and its key.
pub fn write_cert(dir: &TempDir) -> (PathBuf, PathBuf) {
    let cert = steadfast_testkit::self_signed(&["localhost", "127.0.0.1"]);
    let cert_path = dir.path("cert.pem");
    let key_path = dir.path("key.pem");
    std::fs::write(&cert_path, cert.cert_pem).unwrap();
    std::fs::write(&key_path, cert.key_pem).unwrap();
    (cert_path, key_path)
}

/// A deterministic pseudo-random file of `len` bytes.
pub fn write_payload(path: &Path, len: usize) -> Vec<u8> {
    let data = steadfast_testkit::Rng::new(0x2545_f491_4f6c_dd1d).bytes(len);
    std::fs::write(path, &data).unwrap();
    data
}

/// A Python h2 server with one fault (`fault_server.py MODE ARGS`), killed on drop;
/// its stdout lines (one per complete request) come through the receiver.
pub fn fault_server(args: &[&str]) -> (Proc, SocketAddr, mpsc::Receiver<String>) {
    python_server("../steadfast/tests/peers/fault_server.py", args)
}

/// `python3 SCRIPT 0 ARGS` (SCRIPT relative to this crate), a server that prints the
/// port it bound first; killed on drop. Its later stdout lines come through the
/// receiver.
pub fn python_server(script: &str, args: &[&str]) -> (Proc, SocketAddr, mpsc::Receiver<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let name = path
        .file_name()
        .map_or_else(|| script.into(), |n| n.to_string_lossy());
    let mut command = Command::new("python3");
    command
        .arg(&path)
        .arg("0")
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (proc, rx) = spawn_reporting(command, &format!("{name} {args:?}"));
    let port: u16 = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{name} printed its port (is Python's h2 installed?)"))
        .trim()
        .parse()
        .expect("a port");
    (proc, ([127, 0, 0, 1], port).into(), rx)
}
