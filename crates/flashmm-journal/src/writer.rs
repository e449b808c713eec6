//! The only way to add entries: blocks are built here, and a writer thread appends each to the
//! newest segment file and then indexes it in sled, so a slow write never stalls the caller.
//! A block is indexed only after its bytes are written, so sled never names bytes a failed
//! write did not leave.

use super::*;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub(crate) enum WriteOp {
    Block {
        first_seq: u64,
        /// Compressed on the writer thread, so the caller builds the next block meanwhile.
        value: codec::RawBlock,
        index: Vec<([u8; 16], [u8; 8])>,
        sessions: Vec<([u8; 8], Vec<u8>)>,
        last_seq: u64,
    },
    /// Blocks from here on are written to their segment but not indexed in sled until
    /// `Commit`; `Rollback` removes their bytes again (an import that fails leaves nothing).
    Stage,
    Commit,
    Rollback,
    Flush {
        fsync: bool,
        /// The entry count and chain hash this flush makes durable, for the head file.
        head: integrity::Head,
        done: SyncSender<std::result::Result<u64, String>>,
    },
}

/// The only way to add entries. One per journal; the directory lock keeps other processes out.
pub struct Writer {
    journal: Journal,
    next_seq: u64,
    head: [u8; HASH_LEN],
    block: BlockBuilder,
    block_first: u64,
    index: Vec<([u8; 16], [u8; 8])>,
    last_index: Option<(u64, i64)>,
    open: BTreeMap<u64, SessionInfo>,
    touched: Vec<u64>,
    next_session: u64,
    tx: Option<SyncSender<WriteOp>>,
    thread: Option<JoinHandle<()>>,
    /// Durable up to here, as reported by the writer thread.
    durable: u64,
    /// Block bytes sent since the last flush, which sled may still hold in memory: counted
    /// at their raw size when sent, and at their compressed size once the writer thread has
    /// compressed them (so blocks still queued count in full, erring on the safe side).
    unflushed: Arc<AtomicU64>,
    /// While staging (`stage`), what `rollback` restores.
    staged: Option<Box<Staged>>,
}

/// The writer's state where staging began.
struct Staged {
    next_seq: u64,
    head: [u8; HASH_LEN],
    last_index: Option<(u64, i64)>,
    open: BTreeMap<u64, SessionInfo>,
    next_session: u64,
}

/// A block written to its segment while staging, and what sled is to hold for it at `Commit`.
struct Held {
    first_seq: u64,
    stored: Vec<u8>,
    index: Vec<([u8; 16], [u8; 8])>,
    sessions: Vec<([u8; 8], Vec<u8>)>,
    last_seq: u64,
}

/// Indexes one block in sled: its place, the first seq of each second, its sessions' info.
fn index_block(
    j: &Journal,
    first_seq: u64,
    stored: Vec<u8>,
    index: Vec<([u8; 16], [u8; 8])>,
    sessions: Vec<([u8; 8], Vec<u8>)>,
) -> std::result::Result<(), sled::Error> {
    j.store.events.insert(be(first_seq), stored)?;
    for (k, v) in index {
        // Keep the first seq seen for a second.
        let _ = j
            .store
            .time
            .compare_and_swap(k, None as Option<&[u8]>, Some(&v[..]))?;
    }
    for (k, v) in sessions {
        j.store.sessions.insert(k, v)?;
    }
    Ok(())
}

/// How often the head file follows the flushes; it is written at the end too.
const HEAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn write_loop(
    j: Journal,
    rx: Receiver<WriteOp>,
    mut blocks: segment::Appender,
    inline: bool,
    sent: Arc<AtomicU64>,
) {
    let mut failure: Option<String> = None;
    let mut written: u64 = 0;
    let mut durable_head: Option<integrity::Head> = None;
    let mut head_written: Option<std::time::Instant> = None;
    let mut staging: Option<(segment::Mark, Vec<Held>)> = None;
    let mut zstd = None;
    for op in rx {
        match op {
            WriteOp::Block {
                first_seq,
                value,
                index,
                sessions,
                last_seq,
            } => {
                if failure.is_some() {
                    continue;
                }
                let raw_len = value.len() as u64;
                let value = match value.compress(&mut zstd) {
                    Ok(v) => {
                        // The caller counted the block at its raw size; now it is this.
                        let z = v.len() as u64;
                        match z <= raw_len {
                            true => sent.fetch_sub(raw_len - z, Ordering::Relaxed),
                            false => sent.fetch_add(z - raw_len, Ordering::Relaxed),
                        };
                        v
                    }
                    Err(e) => {
                        j.store.failed.store(true, Ordering::SeqCst);
                        failure = Some(e.to_string());
                        continue;
                    }
                };
                let stored = if inline {
                    Ok(value)
                } else {
                    blocks
                        .append(first_seq, &value)
                        .map(|p| p.encode().to_vec())
                };
                let stored = match stored {
                    Ok(v) => v,
                    Err(e) => {
                        j.store.failed.store(true, Ordering::SeqCst);
                        failure = Some(format!(
                            "cannot write to {}: {e}",
                            segment::blocks_dir(&j.dir).display()
                        ));
                        continue;
                    }
                };
                if let Some((_, held)) = &mut staging {
                    held.push(Held {
                        first_seq,
                        stored,
                        index,
                        sessions,
                        last_seq,
                    });
                    continue;
                }
                let r = index_block(&j, first_seq, stored, index, sessions);
                match r {
                    Ok(()) => written = last_seq + 1,
                    Err(e) => {
                        j.store.failed.store(true, Ordering::SeqCst);
                        failure = Some(e.to_string());
                    }
                }
            }
            WriteOp::Stage => staging = Some((blocks.mark(), Vec::new())),
            WriteOp::Commit => {
                let Some((_, held)) = staging.take() else {
                    continue;
                };
                for h in held {
                    if failure.is_some() {
                        break;
                    }
                    match index_block(&j, h.first_seq, h.stored, h.index, h.sessions) {
                        Ok(()) => written = h.last_seq + 1,
                        Err(e) => {
                            j.store.failed.store(true, Ordering::SeqCst);
                            failure = Some(e.to_string());
                        }
                    }
                }
            }
            WriteOp::Rollback => {
                let Some((mark, _)) = staging.take() else {
                    continue;
                };
                if inline {
                    continue;
                }
                if let Err(e) = blocks.rollback(mark) {
                    j.store.failed.store(true, Ordering::SeqCst);
                    failure.get_or_insert_with(|| {
                        format!(
                            "cannot remove a failed import's blocks from {}: {e}",
                            segment::blocks_dir(&j.dir).display()
                        )
                    });
                }
            }
            WriteOp::Flush { fsync, head, done } => {
                let synced = match fsync {
                    true => blocks.sync().map_err(|e| {
                        format!("cannot sync {}: {e}", segment::blocks_dir(&j.dir).display())
                    }),
                    false => Ok(()),
                };
                let r = match (&failure, synced) {
                    (Some(f), _) => Err(f.clone()),
                    (None, Err(f)) => Err(f),
                    (None, Ok(())) => {
                        j.store.db.flush().map_err(|e| e.to_string()).and_then(|_| {
                            if fsync {
                                sync_files(&j.dir).map_err(|e| e.to_string())
                            } else {
                                Ok(())
                            }
                        })
                    }
                };
                if let Err(f) = &r {
                    j.store.failed.store(true, Ordering::SeqCst);
                    failure.get_or_insert_with(|| f.clone());
                }
                if r.is_ok() {
                    sent.store(0, Ordering::Relaxed);
                }
                if r.is_ok() && head.entries == written {
                    durable_head = Some(head);
                    if head_written.is_none_or(|t| t.elapsed() >= HEAD_EVERY) {
                        // A head file that cannot be written only weakens a later check.
                        let _ = integrity::write_head(&j.dir, head);
                        head_written = Some(std::time::Instant::now());
                    }
                }
                let _ = done.send(r.map(|_| written));
            }
        }
    }
    if let (Some(head), None) = (durable_head, &failure) {
        let _ = integrity::write_head(&j.dir, head);
    }
}

/// sled's flush uses sync_file_range, which survives a process crash but not power loss.
pub(crate) fn sync_files(dir: &Path) -> std::io::Result<()> {
    for name in ["db/db", "db/conf"] {
        let p = dir.join(name);
        if p.exists() {
            File::open(&p)?.sync_all()?;
        }
    }
    Ok(())
}

impl Writer {
    pub(crate) fn new(journal: Journal) -> Result<Writer> {
        journal.check_room(0, "Refused to start writing, so the journal is as it was.")?;
        let (next_seq, head) = match journal.last()? {
            Some((seq, hash)) => (seq + 1, hash),
            None => (0, [0u8; HASH_LEN]),
        };
        let next_session = journal
            .sessions()?
            .iter()
            .map(|s| s.id + 1)
            .max()
            .unwrap_or(1);
        let blocks = segment::Appender::open(&journal.dir, journal.last_place()?).map_err(|e| {
            JournalError::Open {
                dir: journal.dir.display().to_string(),
                detail: format!(
                    "cannot open a segment file in {} to write: {e}",
                    segment::blocks_dir(&journal.dir).display()
                ),
            }
        })?;
        // Few blocks queue: each is held uncompressed (up to BLOCK_BYTES) until the thread
        // takes it.
        let (tx, rx) = mpsc::sync_channel(4);
        let j = journal.clone();
        let inline = journal.inline_blocks;
        let unflushed = Arc::new(AtomicU64::new(0));
        let sent = unflushed.clone();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_loop(j, rx, blocks, inline, sent))
            .map_err(|e| JournalError::Open {
                dir: journal.dir.display().to_string(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Writer {
            journal,
            next_seq,
            head,
            block: BlockBuilder::default(),
            block_first: next_seq,
            index: Vec::new(),
            last_index: None,
            open: BTreeMap::new(),
            touched: Vec::new(),
            next_session,
            tx: Some(tx),
            thread: Some(thread),
            durable: next_seq,
            unflushed,
            staged: None,
        })
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The chain hash of the last entry appended.
    pub fn head(&self) -> [u8; HASH_LEN] {
        self.head
    }

    /// The sessions this writer has begun, each with whether it still takes appends (it has not
    /// ended). A session of this journal that is not listed takes no appends from this writer.
    pub(crate) fn begun(&self) -> impl Iterator<Item = (u64, bool)> + '_ {
        self.open
            .iter()
            .map(|(id, info)| (*id, info.status.is_none()))
    }

    /// Starts a session and returns its id.
    pub fn begin(&mut self, ts_ns: i64, start: SessionStart) -> Result<u64> {
        let id = self.next_session;
        self.next_session += 1;
        let mut e = Entry {
            seq: 0,
            ts_ns,
            venue_ts_ns: None,
            session: id,
            cause: None,
            body: Body::SessionStart(Box::new(start)),
        };
        self.push(&mut e, true)?;
        Ok(id)
    }

    /// Starts a session under a given id (importing a JSONL export keeps its ids).
    pub fn begin_with_id(&mut self, e: &mut Entry) -> Result<()> {
        if self.open.contains_key(&e.session) || self.journal.session(e.session).is_ok() {
            return Err(JournalError::Usage(format!(
                "session {} already exists in {}; import into another --journal directory",
                e.session,
                self.journal.dir.display()
            )));
        }
        self.next_session = self.next_session.max(e.session + 1);
        self.push(e, true)
    }

    /// Appends `e` to its session, setting `e.seq`.
    pub fn append(&mut self, e: &mut Entry) -> Result<()> {
        self.push(e, false)
    }

    /// Ends a session; later appends to it are refused.
    pub fn end(
        &mut self,
        session: u64,
        ts_ns: i64,
        status: SessionStatus,
        note: String,
    ) -> Result<u64> {
        self.end_after(session, ts_ns, status, note, None)
    }

    /// Ends a session that reads market entries of another (`Source::Journal`), naming in the
    /// end's `cause` the last market entry it read, or any seq outside the source range (its
    /// own start, say) if it read none. Readers stop the market there
    /// (`flashmm_journal::stream`): a run that stopped early is not read on to the end of the data.
    pub fn end_after(
        &mut self,
        session: u64,
        ts_ns: i64,
        status: SessionStatus,
        note: String,
        cause: Option<u64>,
    ) -> Result<u64> {
        let entries = self
            .open
            .get(&session)
            .ok_or(JournalError::NotOpen(session))?
            .entries;
        let mut e = Entry {
            seq: 0,
            ts_ns,
            venue_ts_ns: None,
            session,
            cause,
            body: Body::SessionEnd(SessionEnd {
                status,
                entries,
                note,
            }),
        };
        self.push(&mut e, false)?;
        Ok(e.seq)
    }

    fn push(&mut self, e: &mut Entry, starts: bool) -> Result<()> {
        match (starts, self.open.get(&e.session)) {
            (true, _) => {
                e.seq = self.next_seq;
                self.open.insert(e.session, new_info(e));
            }
            (false, Some(i)) if i.status.is_none() => e.seq = self.next_seq,
            (false, _) => return Err(JournalError::NotOpen(e.session)),
        }
        if self.block.count() == 0 {
            self.block_first = e.seq;
        }
        self.head = self.block.push(e, &self.head)?;
        self.next_seq += 1;
        let sec = e.ts_ns.div_euclid(NS_PER_S);
        if self.last_index != Some((e.session, sec)) {
            self.last_index = Some((e.session, sec));
            self.index.push((time_key(e.session, e.ts_ns), be(e.seq)));
        }
        if let Some(info) = self.open.get_mut(&e.session) {
            touch(info, e);
        }
        if self.touched.last() != Some(&e.session) {
            self.touched.push(e.session);
        }
        if self.block.count() >= BLOCK_ENTRIES || self.block.bytes_len() >= BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(())
    }

    /// Begins staging: entries from here on are written but stay out of the journal until
    /// `commit`, and `rollback` discards them, leaving the journal as it was. For imports,
    /// which find a file's errors as they write it.
    pub(crate) fn stage(&mut self) -> Result<()> {
        if self.staged.is_some() {
            return Err(JournalError::Usage("already staging".into()));
        }
        self.write_block()?;
        self.send(WriteOp::Stage)?;
        self.staged = Some(Box::new(Staged {
            next_seq: self.next_seq,
            head: self.head,
            last_index: self.last_index,
            open: self.open.clone(),
            next_session: self.next_session,
        }));
        Ok(())
    }

    /// Makes the staged entries part of the journal (not yet durable: `flush` after).
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.write_block()?;
        self.send(WriteOp::Commit)?;
        self.staged = None;
        Ok(())
    }

    /// Discards every entry appended since `stage`.
    pub(crate) fn rollback(&mut self) -> Result<()> {
        let Some(st) = self.staged.take() else {
            return Ok(());
        };
        self.block.clear();
        self.index.clear();
        self.touched.clear();
        self.next_seq = st.next_seq;
        self.block_first = st.next_seq;
        self.head = st.head;
        self.last_index = st.last_index;
        self.open = st.open;
        self.next_session = st.next_session;
        self.send(WriteOp::Rollback)
    }

    fn send(&mut self, op: WriteOp) -> Result<()> {
        let durable = self.durable;
        let failed = || JournalError::Write {
            detail: "the journal writer thread stopped".into(),
            durable,
        };
        self.tx
            .as_ref()
            .ok_or_else(failed)?
            .send(op)
            .map_err(|_| failed())
    }

    fn write_block(&mut self) -> Result<()> {
        if self.block.count() == 0 {
            return Ok(());
        }
        // Twice what sled holds unwritten: it copies nodes as they grow.
        let unflushed = self.unflushed.load(Ordering::Relaxed);
        self.journal.check_room(unflushed.saturating_mul(2), &format!(
            "Stopped writing: entries from seq {} on were not written, and earlier ones are intact.",
            self.block_first
        ))?;
        self.touched.sort_unstable();
        self.touched.dedup();
        let mut sessions = Vec::with_capacity(self.touched.len());
        for id in std::mem::take(&mut self.touched) {
            if let Some(info) = self.open.get(&id) {
                sessions.push((be(id), encode_info(info)?));
            }
        }
        let op = WriteOp::Block {
            first_seq: self.block_first,
            value: {
                let raw = self.block.take_raw();
                self.unflushed
                    .fetch_add(raw.len() as u64, Ordering::Relaxed);
                raw
            },
            index: std::mem::take(&mut self.index),
            sessions,
            last_seq: self.next_seq - 1,
        };
        self.send(op)
    }

    /// Makes everything appended so far durable against a process crash; with `fsync`, against
    /// power loss too. An order must not leave before the entry that decided it is flushed.
    pub fn flush(&mut self, fsync: bool) -> Result<()> {
        self.write_block()?;
        let (done, wait) = mpsc::sync_channel(1);
        let head = integrity::Head {
            entries: self.next_seq,
            hash: self.head,
        };
        self.send(WriteOp::Flush { fsync, head, done })?;
        let durable = self.durable;
        match wait.recv() {
            Ok(Ok(upto)) => {
                self.durable = upto;
                Ok(())
            }
            Ok(Err(detail)) => Err(JournalError::Write { detail, durable }),
            Err(_) => Err(JournalError::Write {
                detail: "the journal writer thread stopped".into(),
                durable,
            }),
        }
    }

    /// Flushes and stops the writer thread.
    pub fn close(mut self) -> Result<()> {
        let r = self.flush(false);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        r
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.tx.is_some() {
            let _ = self.flush(false);
            self.tx.take();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
