//! Reading entries back in seq order, on the caller's thread or decoded ahead on another.

use super::*;

pub struct Reader {
    pub(crate) blocks: sled::Iter,
    pub(crate) segments: segment::Segments,
    /// The current block's bytes, read from its segment.
    pub(crate) raw: Vec<u8>,
    pub(crate) buf: Vec<Entry>,
    pub(crate) pos: usize,
    pub(crate) from: u64,
    pub(crate) failed: bool,
}

impl Iterator for Reader {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if self.failed {
                return None;
            }
            if self.pos < self.buf.len() {
                let e = std::mem::replace(&mut self.buf[self.pos], placeholder());
                self.pos += 1;
                if e.seq < self.from {
                    continue;
                }
                return Some(Ok(e));
            }
            let (k, v) = match self.blocks.next()? {
                Ok(kv) => kv,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(read_err(e)));
                }
            };
            self.buf.clear();
            self.pos = 0;
            let first = match seq_of(&k) {
                Ok(s) => s,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            let decoded = self
                .segments
                .block(first, &v, &mut self.raw)
                .and_then(|block| codec::decode_block(first, block, &mut self.buf));
            if let Err(e) = decoded {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}

/// Entries from a seq backward, in falling seq order: for finding the last entry of a kind
/// without reading everything before it.
pub struct ReadBack {
    pub(crate) blocks: sled::Iter,
    pub(crate) segments: segment::Segments,
    pub(crate) raw: Vec<u8>,
    pub(crate) buf: Vec<Entry>,
    pub(crate) from: u64,
    pub(crate) failed: bool,
}

impl Iterator for ReadBack {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(e) = self.buf.pop() {
                if e.seq > self.from {
                    continue;
                }
                return Some(Ok(e));
            }
            let (k, v) = match self.blocks.next_back()? {
                Ok(kv) => kv,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(read_err(e)));
                }
            };
            let first = match seq_of(&k) {
                Ok(s) => s,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            let decoded = self
                .segments
                .block(first, &v, &mut self.raw)
                .and_then(|block| codec::decode_block(first, block, &mut self.buf));
            if let Err(e) = decoded {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}

pub(crate) const READ_AHEAD_CHUNK: usize = 1024;

/// Entries decoded ahead on another thread; stops that thread when dropped.
pub struct ReadAhead {
    pub(crate) rx: Receiver<Vec<Result<Entry>>>,
    pub(crate) chunk: std::vec::IntoIter<Result<Entry>>,
}

impl Iterator for ReadAhead {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if let Some(e) = self.chunk.next() {
                return Some(e);
            }
            self.chunk = self.rx.recv().ok()?.into_iter();
        }
    }
}

pub(crate) fn placeholder() -> Entry {
    Entry {
        seq: 0,
        ts_ns: 0,
        venue_ts_ns: None,
        session: 0,
        cause: None,
        body: Body::Input(flashmm_core::event::Input::Timer),
    }
}
