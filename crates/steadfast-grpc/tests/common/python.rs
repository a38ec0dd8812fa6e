//! A Python peer (grpcio) run by a test: its stubs generated into a fresh directory,
//! its stdout read line by line, killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A fresh directory for generated stubs, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "steadfast-grpc-interop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Python process, killed on drop; its stdout read line by line on a thread.
pub struct Python {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    _dir: TempDir,
}

impl Python {
    /// Runs `python3 SCRIPT ARGS[0] PROTO_DIR OUT_DIR ARGS[1..]`.
    pub fn start(script: &str, args: &[&str]) -> Self {
        let dir = TempDir::new();
        let mut child = Command::new("python3")
            .arg(script)
            .args(&args[..1])
            .arg(steadfast_grpc_example::PROTO_DIR)
            .arg(&dir.0)
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (grpcio and grpcio-tools: scripts/requirements.txt)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            _dir: dir,
        }
    }

    /// The next line of output, waiting at most `timeout`; `None` at the end.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(e) => panic!("no output from python within {timeout:?}: {e}"),
        }
    }

    /// Every remaining line, until the process closes its output (bounded).
    pub fn rest(&self, timeout: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Some(line) =
            self.line(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    /// The exit status, waiting at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "python did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
