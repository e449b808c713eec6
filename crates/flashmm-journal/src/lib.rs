//! The journal: one sled database per directory, append-only, hash-chained.
//!
//! Trees: `events` (first seq of a block, big-endian -> where the block is in the segment
//! files, see `segment`; older journals hold the block itself, see `codec`), `time`
//! (session, second -> first seq in that second), `sessions` (id -> `SessionInfo`), `meta`.
//! A lock file keeps a second process out. sled inserts run on a writer thread so a slow
//! insert never stalls the caller.

pub mod binance;
pub mod codec;
pub mod detect;
pub mod hyperliquid;
mod import_session;
pub mod instrument;
pub mod jsonl;
pub mod merge;
pub mod progress;
pub mod stream;
pub mod tardis;

pub mod integrity;
pub mod segment;
pub mod space;

mod lock;
mod reader;
mod sessions;
mod writer;

use lock::{take_lock, Lock};
use reader::READ_AHEAD_CHUNK;
pub use reader::{ReadAhead, ReadBack, Reader};
use sessions::{decode_info, encode_info, new_info, touch};
pub use writer::Writer;

use codec::{BlockBuilder, HASH_LEN};
use flashmm_core::event::{
    Body, Entry, Mode, SessionEnd, SessionStart, SessionStatus, Source, FORMAT_VERSION,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Entries per block, and the byte size at which a block is written early.
const BLOCK_ENTRIES: u32 = 16384;
const BLOCK_BYTES: usize = 8192 * 1024;
const NS_PER_S: i64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {dir} is in use by another flashmm process ({holder}); stop that process or pass --journal DIR with another directory")]
    Locked { dir: String, holder: String },
    #[error("cannot open journal {dir}: {detail}")]
    Open { dir: String, detail: String },
    #[error("journal {dir}: only {free_mb} MB left {where_}, below the reserve of {reserve_mb} MB (--min-free-mb) that keeps sled from running out mid-write, which can destroy the whole journal. {doing} To go on, {remedy}, then run again")]
    DiskFull {
        dir: String,
        free_mb: u64,
        reserve_mb: u64,
        where_: &'static str,
        remedy: &'static str,
        doing: String,
    },
    #[error("journal {dir}: sled recovered {found} entries, but {expected} were written ({detail}). A file under {dir}/db was damaged and sled dropped what followed it. Keep a copy of the directory, then restore from a backup: see docs/journal.md, \"Recovery\"")]
    Lost {
        dir: String,
        found: u64,
        expected: u64,
        detail: String,
    },
    #[error("journal was written with format version {found}, but this flashmm reads format version {ours}; use the flashmm release that wrote it (export it to JSONL there, then import the JSONL here)")]
    Version { found: u8, ours: u8 },
    #[error("journal entry at seq {seq} is corrupt: {detail}; run `flashmm journal verify` for the full picture")]
    Corrupt { seq: u64, detail: String },
    #[error("cannot encode entry seq {seq}: {detail}")]
    Encode { seq: u64, detail: String },
    #[error("journal write failed: {detail}. Entries before seq {durable} are safely on disk; nothing after them was acted on. If the disk is full, free space and run again")]
    Write { detail: String, durable: u64 },
    #[error("journal read failed: {0}")]
    Read(String),
    #[error("no session {0} in this journal; `flashmm journal ls` lists them")]
    NoSession(u64),
    #[error("session {0} is not open in this writer")]
    NotOpen(u64),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, JournalError>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: u64,
    pub mode: Mode,
    pub label: String,
    pub parent: Option<u64>,
    pub source: Option<Source>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    /// `None` while the session is open (or if it stopped without a `SessionEnd`).
    pub status: Option<SessionStatus>,
}

/// What `SessionInfo::state` says of a session with no end. Whoever reads a journal holds its
/// lock, so no process is still writing it: the one that was stopped without closing it.
pub const UNFINISHED: &str = "unfinished (no session end: killed or crashed)";

impl SessionInfo {
    /// Whether the session has its `SessionEnd` (completed, interrupted or failed).
    pub fn finished(&self) -> bool {
        self.status.is_some()
    }

    /// One word: completed, interrupted, failed or unfinished.
    pub fn status_word(&self) -> &'static str {
        match &self.status {
            None => "unfinished",
            Some(SessionStatus::Completed) => "completed",
            Some(SessionStatus::Interrupted) => "interrupted",
            Some(SessionStatus::Failed(_)) => "failed",
        }
    }

    /// The status in words: `status_word`, with why for a failure and what it means for a
    /// session with no end (`UNFINISHED`).
    pub fn state(&self) -> String {
        match &self.status {
            None => UNFINISHED.into(),
            Some(SessionStatus::Failed(why)) => format!("failed: {why}"),
            Some(_) => self.status_word().into(),
        }
    }
}

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn seq_of(key: &[u8]) -> Result<u64> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| JournalError::Read(format!("malformed key {key:?} in the events tree")))
}

/// Signed seconds, shifted so that byte order is numeric order.
fn time_key(session: u64, ts_ns: i64) -> [u8; 16] {
    let sec = (ts_ns.div_euclid(NS_PER_S) as u64) ^ (1 << 63);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&be(session));
    k[8..].copy_from_slice(&be(sec));
    k
}

fn read_err(e: sled::Error) -> JournalError {
    JournalError::Read(e.to_string())
}

/// sled's handles. After a failed write (a full disk, say) sled's own drop can block forever
/// trying to flush what it cannot write, so then they are leaked instead: the process is on its
/// way out with the error, and the operating system reclaims them.
struct Store {
    db: ManuallyDrop<sled::Db>,
    events: ManuallyDrop<sled::Tree>,
    time: ManuallyDrop<sled::Tree>,
    sessions: ManuallyDrop<sled::Tree>,
    failed: AtomicBool,
    /// The free space the journal keeps in reserve, `--min-free-mb`.
    min_free_mb: u64,
    _lock: Lock,
}

impl Store {
    fn new(db: sled::Db, lock: Lock, min_free_mb: u64) -> sled::Result<Store> {
        let tree = |name: &str| db.open_tree(name).map(ManuallyDrop::new);
        let (events, time, sessions) = match (tree("events"), tree("time"), tree("sessions")) {
            (Ok(e), Ok(t), Ok(s)) => (e, t, s),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                // The same reason as in `open_with`: closing would wait on a flush.
                std::mem::forget(db);
                return Err(e);
            }
        };
        Ok(Store {
            db: ManuallyDrop::new(db),
            events,
            time,
            sessions,
            failed: AtomicBool::new(false),
            min_free_mb,
            _lock: lock,
        })
    }
}

/// `in_flight`: bytes handed to sled that may not have reached the disk yet (sled buffers them
/// and writes them out later), so the free space seen now does not count them.
fn check_room(dir: &Path, reserve_mb: u64, in_flight: u64, doing: &str) -> Result<()> {
    let short = space::short(dir, reserve_mb, in_flight).map_err(|e| JournalError::Open {
        dir: dir.display().to_string(),
        detail: format!("cannot tell how much room its disk has: {e}"),
    })?;
    match short {
        None => Ok(()),
        Some(room) => Err(JournalError::DiskFull {
            dir: dir.display().to_string(),
            free_mb: room.mb(),
            reserve_mb,
            where_: room.limit.describe(),
            remedy: room.limit.remedy(),
            doing: doing.to_string(),
        }),
    }
}

/// sled's reasons for refusing to open, in words that say which file and what to do.
fn open_detail(dir: &Path, e: &sled::Error) -> String {
    let db = dir.join("db");
    let recovery = "see docs/journal.md, \"Recovery\": restore the directory from a backup or a `flashmm journal export --format jsonl` copy";
    match e {
        sled::Error::Corruption { at: Some(at), .. } => format!(
            "sled found damaged bytes in its store file {} (at {at:?}): the store cannot be read. {recovery}",
            db.join("db").display(),
        ),
        sled::Error::Corruption { at: None, .. } => format!(
            "sled found damaged bytes in {}: the store cannot be read. {recovery}",
            db.display(),
        ),
        sled::Error::Unsupported(why) if why.contains("version") || why.contains("conf") => format!(
            "sled refused its settings file {}: {why}. If that file was damaged (this flashmm wrote the journal with sled 0.34), {recovery}",
            db.join("conf").display()
        ),
        sled::Error::Io(io) => format!("{} in {}: {io}", io.kind(), db.display()),
        other => format!("{other} in {}. {recovery}", db.display()),
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.failed.load(Ordering::SeqCst) {
            return;
        }
        // SAFETY: each field is dropped exactly once, here, and never used again.
        unsafe {
            ManuallyDrop::drop(&mut self.events);
            ManuallyDrop::drop(&mut self.time);
            ManuallyDrop::drop(&mut self.sessions);
            ManuallyDrop::drop(&mut self.db);
        }
    }
}

#[derive(Clone)]
pub struct Journal {
    dir: PathBuf,
    store: Arc<Store>,
    repairs: Vec<String>,
    /// Writers put blocks into sled itself, as releases before segment files did (tests only).
    inline_blocks: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Journal").field("dir", &self.dir).finish()
    }
}

/// Opens the sled store. Our own lock is already held, so a store lock that is busy can only be
/// a handle of this process still closing (sled's flusher thread lets go a moment after the
/// last handle is dropped): wait for it, a bounded while.
fn open_db(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(500))
            .open();
        match r {
            // sled says so only in its message (an `Other` error).
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// What `Journal::open_with` needs besides the directory.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Refuse to open, and stop writing, with less free space than this.
    pub min_free_mb: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            min_free_mb: space::DEFAULT_MIN_FREE_MB,
        }
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, keeping the default free-space reserve.
    pub fn open(dir: &Path) -> Result<Journal> {
        Journal::open_with(dir, OpenOptions::default())
    }

    pub fn open_with(dir: &Path, opts: OpenOptions) -> Result<Journal> {
        let open_err = |detail: String| JournalError::Open {
            dir: dir.display().to_string(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        // sled writes as it opens, even to read; on a full disk that write is what broke it. A
        // reader needs only room for that; a writer needs the whole reserve (`Writer::new`).
        check_room(
            dir,
            opts.min_free_mb.min(space::OPEN_RESERVE_MB),
            0,
            "Refused to open it, so nothing was read or written.",
        )?;
        let lock = take_lock(dir)?;
        let damaged = integrity::damaged_blob(&dir.join("db"))
            .map_err(|e| open_err(format!("cannot read its blobs: {e}")))?;
        let kept = match &damaged {
            None => None,
            Some(d) => Some(integrity::preserve_from(dir, &d.path).map_err(|e| {
                open_err(format!(
                    "{} is damaged ({}), and keeping a copy of it and the later blobs before sled drops them failed: {e}",
                    d.path.display(),
                    d.why
                ))
            })?),
        };
        let mut repairs: Vec<String> = integrity::repair_conf(&dir.join("db"))
            .map_err(|e| open_err(format!("cannot check sled's settings file: {e}")))?
            .into_iter()
            .collect();
        let db = open_db(&dir.join("db")).map_err(|e| open_err(open_detail(dir, &e)))?;
        let store = Store::new(db, lock, opts.min_free_mb).map_err(|e| open_err(e.to_string()))?;
        let j = Journal {
            dir: dir.to_path_buf(),
            store: Arc::new(store),
            repairs: Vec::new(),
            inline_blocks: false,
        };
        // From here an error leaves sled's handles unclosed: closing flushes, and a flush that
        // cannot write waits forever.
        let r = j
            .check_format()
            .and_then(|()| j.trim_torn_tail(&mut repairs))
            .and_then(|()| j.check_head(damaged.as_ref().zip(kept.as_deref())))
            .and_then(|()| j.repair_sessions());
        if r.is_err() {
            j.store.failed.store(true, Ordering::SeqCst);
        }
        r?;
        if let (Some(d), Some(k)) = (&damaged, &kept) {
            if integrity::read_head(dir).is_some() {
                // The head shows nothing durable went: the blob was a torn, never-durable tail.
                let _ = std::fs::remove_dir_all(k);
                repairs.push(format!(
                    "{} was the torn end of a write that never became durable ({}); sled dropped it, and every entry that was durable is here",
                    d.path.display(), d.why
                ));
            } else {
                repairs.push(format!(
                    "{} is damaged ({}) and sled dropped it and the blobs after it; this journal has no head file (older flashmm releases wrote none), so it cannot tell whether they held durable entries, so they are kept in {}",
                    d.path.display(), d.why, k.display()
                ));
            }
        }
        let mut j = j;
        j.repairs = repairs;
        Ok(j)
    }

    /// Drops the index of blocks at the end whose bytes did not survive (sled wrote their index
    /// ahead of a power loss that took the bytes), when the head file shows they were never
    /// flushed as durable. Anything else damaged is left for `verify` and readers to name.
    fn trim_torn_tail(&self, repairs: &mut Vec<String>) -> Result<()> {
        let Some(head) = integrity::read_head(&self.dir) else {
            return Ok(());
        };
        let mut segments = self.segments();
        let mut buf = Vec::new();
        while let Some((k, v)) = self.store.events.last().map_err(read_err)? {
            let first = seq_of(&k)?;
            if segment::Place::decode(&v).is_none() || first < head.entries {
                return Ok(());
            }
            match segments.block(first, &v, &mut buf) {
                Err(JournalError::Corrupt { detail, .. }) => {
                    self.store.events.remove(&k).map_err(read_err)?;
                    repairs.push(format!(
                        "entries from seq {first} on were never durable ({detail}); they are dropped, and every durable entry is here"
                    ));
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// The store holds at least what the head file says was durable, ending in the same hash.
    fn check_head(&self, damaged: Option<(&integrity::DamagedBlob, &Path)>) -> Result<()> {
        let Some(head) = integrity::read_head(&self.dir) else {
            return Ok(());
        };
        let lost = |found: u64, detail: String| {
            JournalError::Lost {
            dir: self.dir.display().to_string(),
            found,
            expected: head.entries,
            detail: match damaged {
                Some((d, kept)) => format!(
                    "{detail}; {} is damaged ({}), and it and the blobs sled dropped after it are kept in {}",
                    d.path.display(),
                    d.why,
                    kept.display()
                ),
                None => detail,
            },
        }
        };
        let found = self.last()?.map_or(0, |(seq, _)| seq + 1);
        if found < head.entries {
            return Err(lost(
                found,
                format!("entries {found}..{} are gone", head.entries - 1),
            ));
        }
        let Some(at) = head.entries.checked_sub(1) else {
            return Ok(());
        };
        let mut hash = None;
        self.for_each_raw(at, &mut |raw| {
            hash = (raw.seq == at).then_some(raw.hash);
            Ok(false)
        })?;
        if hash != Some(head.hash) {
            return Err(lost(
                found,
                format!("entry {at} is not the one written: its chain hash differs"),
            ));
        }
        Ok(())
    }

    fn check_format(&self) -> Result<()> {
        let meta = self.store.db.open_tree("meta").map_err(read_err)?;
        match meta.get("format").map_err(read_err)? {
            Some(v) if v.as_ref() != [FORMAT_VERSION] => Err(JournalError::Version {
                found: v.first().copied().unwrap_or(0),
                ours: FORMAT_VERSION,
            }),
            Some(_) => Ok(()),
            None => {
                meta.insert("format", &[FORMAT_VERSION]).map_err(read_err)?;
                Ok(())
            }
        }
    }

    /// An error if the journal's disk has less room than its reserve.
    pub(crate) fn check_room(&self, in_flight: u64, doing: &str) -> Result<()> {
        check_room(&self.dir, self.store.min_free_mb, in_flight, doing)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening had to repair, in words for the operator.
    pub fn repairs(&self) -> &[String] {
        &self.repairs
    }

    /// Session records are written with their blocks, but a crash between the two leaves the
    /// record behind; rebuild it from the entries after the recorded last seq.
    fn repair_sessions(&self) -> Result<()> {
        let Some((seq, _)) = self.last()? else {
            return Ok(());
        };
        let known = self.sessions()?.iter().map(|s| s.last_seq).max();
        if known.is_some_and(|k| k >= seq) {
            return Ok(());
        }
        let from = known.map_or(0, |k| k + 1);
        let mut infos: BTreeMap<u64, SessionInfo> = BTreeMap::new();
        for e in self.read(from)? {
            let e = e?;
            let info = match infos.get_mut(&e.session) {
                Some(i) => i,
                None => {
                    let i = match self.session(e.session) {
                        Ok(i) => i,
                        Err(JournalError::NoSession(_)) => new_info(&e),
                        Err(err) => return Err(err),
                    };
                    infos.entry(e.session).or_insert(i)
                }
            };
            touch(info, &e);
        }
        for (id, info) in infos {
            self.store
                .sessions
                .insert(be(id), encode_info(&info)?)
                .map_err(read_err)?;
        }
        Ok(())
    }

    pub fn sessions(&self) -> Result<Vec<SessionInfo>> {
        self.store
            .sessions
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(read_err)?;
                decode_info(&v)
            })
            .collect()
    }

    pub fn session(&self, id: u64) -> Result<SessionInfo> {
        match self.store.sessions.get(be(id)).map_err(read_err)? {
            Some(v) => decode_info(&v),
            None => Err(JournalError::NoSession(id)),
        }
    }

    /// The last entry's seq and chain hash.
    pub fn last(&self) -> Result<Option<(u64, [u8; HASH_LEN])>> {
        let Some((k, v)) = self.store.events.last().map_err(read_err)? else {
            return Ok(None);
        };
        let first = seq_of(&k)?;
        let (mut raw, mut scratch) = (Vec::new(), Vec::new());
        let block = self.segments().block(first, &v, &mut raw)?;
        let raws = codec::split_block(first, block, &mut scratch)?;
        Ok(raws.last().map(|r| (r.seq, r.hash)))
    }

    /// Where the last block is, if it is in a segment file.
    pub(crate) fn last_place(&self) -> Result<Option<segment::Place>> {
        let last = self.store.events.last().map_err(read_err)?;
        Ok(last.and_then(|(_, v)| segment::Place::decode(&v)))
    }

    fn segments(&self) -> segment::Segments {
        segment::Segments::new(&self.dir)
    }

    /// Entries from `from_seq` onward, in seq order.
    pub fn read(&self, from_seq: u64) -> Result<Reader> {
        // Start at the block that holds `from_seq`.
        let start = match self.store.events.range(..=be(from_seq)).next_back() {
            Some(kv) => seq_of(&kv.map_err(read_err)?.0)?,
            None => 0,
        };
        Ok(Reader {
            blocks: self.store.events.range(be(start)..),
            segments: self.segments(),
            raw: Vec::new(),
            buf: Vec::new(),
            pos: 0,
            from: from_seq,
            failed: false,
        })
    }

    /// Entries from `from_seq` backward, in falling seq order.
    pub fn read_back(&self, from_seq: u64) -> ReadBack {
        ReadBack {
            blocks: self.store.events.range(..=be(from_seq)),
            segments: self.segments(),
            raw: Vec::new(),
            buf: Vec::new(),
            from: from_seq,
            failed: false,
        }
    }

    /// Like `read`, but blocks are decoded on a second thread while the caller works.
    pub fn read_ahead(&self, from_seq: u64) -> Result<ReadAhead> {
        let reader = self.read(from_seq)?;
        let (tx, rx) = mpsc::sync_channel::<Vec<Result<Entry>>>(8);
        std::thread::Builder::new()
            .name("journal-read-ahead".into())
            .spawn(move || {
                let mut chunk = Vec::with_capacity(READ_AHEAD_CHUNK);
                for e in reader {
                    let failed = e.is_err();
                    chunk.push(e);
                    if chunk.len() < READ_AHEAD_CHUNK && !failed {
                        continue;
                    }
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(READ_AHEAD_CHUNK));
                    // A read error ends the stream after it is delivered.
                    if tx.send(full).is_err() || failed {
                        return;
                    }
                }
                let _ = tx.send(chunk);
            })
            .map_err(|e| JournalError::Read(format!("cannot start the read-ahead thread: {e}")))?;
        Ok(ReadAhead {
            rx,
            chunk: Vec::new().into_iter(),
        })
    }

    pub fn get(&self, seq: u64) -> Result<Option<Entry>> {
        match self.read(seq)?.next() {
            Some(Ok(e)) if e.seq == seq => Ok(Some(e)),
            Some(Err(err)) => Err(err),
            _ => Ok(None),
        }
    }

    /// The first seq of `session` at or after `ts_ns`, found through the time index.
    pub fn seek_time(&self, session: u64, ts_ns: i64) -> Result<Option<u64>> {
        // Timestamps inside a session may step back, so take the smallest seq among all
        // later seconds rather than the first key: a scan of the index, not of the events.
        let mut best: Option<u64> = None;
        for kv in self
            .store
            .time
            .range(time_key(session, ts_ns)..time_key(session + 1, i64::MIN))
        {
            let (_, v) = kv.map_err(read_err)?;
            let seq = seq_of(&v)?;
            best = Some(best.map_or(seq, |b| b.min(seq)));
        }
        Ok(best)
    }

    /// The exact seq range of `session` entries with `from <= ts <= to`, or `None` if empty.
    pub fn seq_range(
        &self,
        session: u64,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Option<(u64, u64)>> {
        let info = self.session(session)?;
        let first = match from {
            None => info.first_seq,
            Some(t) => {
                let Some(start) = self.seek_time(session, t)? else {
                    return Ok(None);
                };
                let mut found = None;
                for e in self.read(start)? {
                    let e = e?;
                    if e.seq > info.last_seq {
                        break;
                    }
                    if e.ts_ns >= t {
                        found = Some(e.seq);
                        break;
                    }
                }
                let Some(f) = found else { return Ok(None) };
                f
            }
        };
        let last = match to {
            None => Some(info.last_seq),
            // Entries before the second that holds `t` are all earlier than `t`; walk that second.
            Some(t) => match self.seek_time(session, t)? {
                None => Some(info.last_seq),
                Some(probe) => {
                    let mut last = probe.checked_sub(1);
                    for e in self.read(probe)? {
                        let e = e?;
                        if e.seq > info.last_seq || e.ts_ns > t {
                            break;
                        }
                        last = Some(e.seq);
                    }
                    last
                }
            },
        };
        let Some(last) = last else { return Ok(None) };
        Ok((last >= first).then_some((first, last)))
    }

    /// Walks every entry, checking the chain; reports the first broken link.
    pub fn verify(&self) -> Result<Verified> {
        let mut prev = [0u8; HASH_LEN];
        let mut expected_seq = 0u64;
        let mut checked = 0u64;
        let (mut segments, mut raw, mut scratch) = (self.segments(), Vec::new(), Vec::new());
        for kv in self.store.events.iter() {
            let (k, v) = kv.map_err(read_err)?;
            let first = seq_of(&k)?;
            let raws = match segments
                .block(first, &v, &mut raw)
                .and_then(|block| codec::split_block(first, block, &mut scratch))
            {
                Ok(r) => r,
                Err(JournalError::Corrupt { seq, detail }) => {
                    return Ok(Verified::Broken {
                        checked,
                        seq,
                        detail,
                    })
                }
                Err(e) => return Err(e),
            };
            for r in raws {
                if r.seq != expected_seq {
                    return Ok(Verified::Broken {
                        checked,
                        seq: expected_seq,
                        detail: format!("entries {expected_seq}..{} are missing", r.seq),
                    });
                }
                if codec::chain(&prev, r.bytes) != r.hash {
                    return Ok(Verified::Broken {
                        checked,
                        seq: r.seq,
                        detail: "hash does not match the entry and the previous hash: the entry or an earlier one was altered".into(),
                    });
                }
                if let Err(JournalError::Corrupt { seq, detail }) =
                    codec::decode_entry(r.seq, r.bytes)
                {
                    return Ok(Verified::Broken {
                        checked,
                        seq,
                        detail,
                    });
                }
                prev = r.hash;
                expected_seq += 1;
                checked += 1;
            }
        }
        Ok(Verified::Intact {
            entries: checked,
            head: prev,
        })
    }

    pub fn writer(&self) -> Result<Writer> {
        Writer::new(self.clone())
    }

    /// Writers of this handle store blocks inside sled, as older releases did: for tests of
    /// what this release must still read and repair.
    #[doc(hidden)]
    pub fn with_inline_blocks(mut self) -> Journal {
        self.inline_blocks = true;
        self
    }

    /// Calls `f` with each stored entry from `from_seq`, undecoded, until it returns false.
    pub fn for_each_raw(
        &self,
        from_seq: u64,
        f: &mut dyn FnMut(&codec::RawEntry) -> Result<bool>,
    ) -> Result<()> {
        let start = match self.store.events.range(..=be(from_seq)).next_back() {
            Some(kv) => seq_of(&kv.map_err(read_err)?.0)?,
            None => 0,
        };
        let (mut segments, mut bytes, mut scratch) = (self.segments(), Vec::new(), Vec::new());
        for kv in self.store.events.range(be(start)..) {
            let (k, v) = kv.map_err(read_err)?;
            let first = seq_of(&k)?;
            let block = segments.block(first, &v, &mut bytes)?;
            for raw in codec::split_block(first, block, &mut scratch)? {
                if raw.seq < from_seq {
                    continue;
                }
                if !f(&raw)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Raw access for tests that must damage a journal on purpose.
    #[doc(hidden)]
    pub fn raw_events(&self) -> &sled::Tree {
        &self.store.events
    }

    /// The block a value of `raw_events` names, for tests that must damage a journal on purpose.
    #[doc(hidden)]
    pub fn raw_block(&self, first_seq: u64, value: &[u8]) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.segments()
            .block(first_seq, value, &mut buf)
            .map(|b| b.to_vec())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    Intact {
        entries: u64,
        head: [u8; HASH_LEN],
    },
    Broken {
        checked: u64,
        seq: u64,
        detail: String,
    },
}
