//! How far an import has read its files, for a display its caller draws: importers only count,
//! so the library knows nothing of terminals.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes read of the bytes the import will read, over every pass it makes of its files.
#[derive(Debug, Default)]
pub struct ImportProgress {
    done: AtomicU64,
    total: AtomicU64,
}

impl ImportProgress {
    /// `(done, total)`, with `done` at most `total`: a rare second writing pass (the file's
    /// values differed from the probe's) would otherwise run past the end.
    pub fn read(&self) -> (u64, u64) {
        let total = self.total.load(Ordering::Relaxed);
        (self.done.load(Ordering::Relaxed).min(total), total)
    }

    /// The import will read `bytes` more.
    pub(crate) fn expect(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Expects `passes` reads of each file in `paths` (a file that cannot be read counts as
    /// empty: its importer reports it).
    pub(crate) fn expect_files<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a std::path::Path>,
        passes: u64,
    ) {
        for p in paths {
            let len = std::fs::metadata(p).map_or(0, |m| m.len());
            self.expect(len.saturating_mul(passes));
        }
    }
}

/// A reader that adds what it reads to an import's progress.
pub(crate) struct Counted<R> {
    inner: R,
    progress: Option<Arc<ImportProgress>>,
}

impl<R> Counted<R> {
    pub(crate) fn new(inner: R, progress: Option<Arc<ImportProgress>>) -> Counted<R> {
        Counted { inner, progress }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = &self.progress {
            p.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}
