//! A progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    total: u64,
    label: &'static str,
    enabled: bool,
    last: Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Progress {
        Progress {
            total: total.max(1),
            label,
            enabled: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    pub fn update(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let frac = (done as f64 / self.total as f64).min(1.0);
        let width = 30;
        let filled = (frac * width as f64) as usize;
        eprint!(
            "\r{} [{}{}] {:>5.1}% {}/{}",
            self.label,
            "=".repeat(filled),
            " ".repeat(width - filled),
            frac * 100.0,
            done,
            self.total
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(80));
            let _ = std::io::stderr().flush();
        }
    }
}
