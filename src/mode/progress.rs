//! A progress bar on stderr, drawn only when stderr is a terminal.

use flashmm_journal::progress::ImportProgress;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// An import's progress, drawn from a thread of its own while the import counts what it reads
/// (only on a terminal); the bar is cleared when this is dropped.
pub struct ImportBar {
    progress: Arc<ImportProgress>,
    stop: Arc<AtomicBool>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl ImportBar {
    pub fn start(label: &'static str) -> ImportBar {
        let progress = Arc::new(ImportProgress::default());
        let stop = Arc::new(AtomicBool::new(false));
        let drawer = std::io::stderr().is_terminal().then(|| {
            let (progress, stop) = (progress.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut bar = Progress::new(label, 1);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let (done, total) = progress.read();
                    bar.total = total.max(1);
                    bar.update(done);
                }
                bar.finish();
            })
        });
        ImportBar {
            progress,
            stop,
            drawer,
        }
    }

    /// What the importer counts into (`ImportOptions::progress`).
    pub fn progress(&self) -> Option<Arc<ImportProgress>> {
        Some(self.progress.clone())
    }
}

impl Drop for ImportBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
    }
}
