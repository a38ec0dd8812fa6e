//! `steadfast demo` as a person sees it: in a real terminal (tmux, 80×24), its live
//! line fits and redraws in place rather than scrolling a new line at every refresh.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A tmux server on a socket of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm")
            .output()
            .expect("run tmux")
    }

    /// Everything the pane shows and has scrolled away (its whole history).
    fn history(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-S", "-", "-t", "demo"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The demo has exited (the pane stays, `remain-on-exit`).
    fn finished(&self) -> bool {
        let out = self.cmd(&["display-message", "-p", "-t", "demo", "#{pane_dead}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn the_demo_redraws_one_line_in_place_on_an_80_column_terminal() {
    require("tmux", "tmux");
    let tmux = Tmux {
        socket: format!("steadfast-test-{}", std::process::id()),
    };
    let demo = format!("exec {STEADFAST} demo --duration 3 --chaos-every 500");
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "-s",
        "demo",
        &demo,
        ";",
        "set-option",
        "-t",
        "demo",
        "remain-on-exit",
        "on",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut saw_progress = 0;
    // The history, not only the screen: a live line that scrolled instead of
    // redrawing would leave copies of itself there.
    let screen = loop {
        let finished = tmux.finished();
        let screen = tmux.history();
        let progress: Vec<&str> = screen.lines().filter(|l| l.contains("  req ")).collect();
        assert!(progress.len() <= 1, "the live line scrolled:\n{screen}");
        saw_progress += progress.len();
        if finished {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not finish:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        screen.contains("requests sent"),
        "the final table:\n{screen}"
    );
    assert!(saw_progress > 0, "the live line was never drawn:\n{screen}");
    for line in screen.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
}
