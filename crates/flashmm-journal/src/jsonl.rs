//! JSONL export and import: the journal's backup format, and how a session moves between
//! journals. An export is a header line, one entry a line (decimals as strings) each with the
//! entry's chain hash, and a trailer line:
//!
//! ```text
//! {"flashmm_export":1,"format":2,"first_seq":41249,"prev_hash":"<hash of entry 41248, or 64 zeros>"}
//! {"seq":41249,"ts_ns":…,"venue_ts_ns":null,"session":2,"cause":null,"hash":"<64 hex>","body":{…}}
//! …
//! {"flashmm_export_end":{"entries":3659,"last_seq":44907,"head":"<hash of the last entry>"}}
//! ```
//!
//! A line's hash is `codec::chain(previous hash, bincode of its entry)`, the first entry's
//! previous hash being the header's `prev_hash`: the hashes the journal itself stores. So every
//! line, the first included, is bound to its content and to the lines before it, the trailer
//! shows the file was not cut short, and `prev_hash` names the journal the export continues.
//! An import checks the whole file before it writes anything: a refused file leaves the journal
//! as it was. `docs/journal.md` describes the format for people.

use super::codec::{self, HASH_LEN};
use super::{Journal, JournalError, Writer};
use flashmm_core::event::{Body, Entry, FORMAT_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The version of the export's own layout (header, lines, trailer), in the header.
pub const EXPORT_VERSION: u32 = 1;

/// No entry comes near this; a longer line is refused rather than read into memory.
pub const MAX_LINE_BYTES: usize = 64 << 20;

const ZERO: [u8; HASH_LEN] = [0; HASH_LEN];

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    ts_ns: i64,
    venue_ts_ns: Option<i64>,
    session: u64,
    cause: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    body: Body,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    flashmm_export: u32,
    format: u8,
    first_seq: u64,
    prev_hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    flashmm_export_end: End,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    entries: u64,
    last_seq: Option<u64>,
    head: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("line {line}: {detail}")]
    Line { line: u64, detail: String },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Lower-case hex, as the export writes hashes.
pub fn to_hex(h: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(h.len() * 2);
    for b in h {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub(crate) fn from_hex(s: &str) -> Option<[u8; HASH_LEN]> {
    if s.len() != HASH_LEN * 2 {
        return None;
    }
    let mut out = [0u8; HASH_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Serialises `v` as one line of `out`.
fn put(
    out: &mut dyn Write,
    buf: &mut Vec<u8>,
    v: &impl Serialize,
    seq: u64,
) -> Result<(), JsonlError> {
    buf.clear();
    serde_json::to_writer(&mut *buf, v).map_err(|err| JournalError::Encode {
        seq,
        detail: err.to_string(),
    })?;
    buf.push(b'\n');
    out.write_all(buf)?;
    Ok(())
}

/// Writes the entries of `session` (or all of them) as an export: header, entries, trailer.
/// Returns the number of entries.
pub fn export(
    journal: &Journal,
    session: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, JsonlError> {
    let (from, last) = match session {
        Some(id) => {
            let s = journal.session(id)?;
            (s.first_seq, Some(s.last_seq))
        }
        None => (0, None),
    };
    // The hash the first entry chains from: the entry before it, or zeros at the start.
    let mut prev = ZERO;
    if let Some(before) = from.checked_sub(1) {
        let mut found = None;
        journal.for_each_raw(before, &mut |raw| {
            found = (raw.seq == before).then_some(raw.hash);
            Ok(false)
        })?;
        prev = found.ok_or_else(|| JournalError::Corrupt {
            seq: before,
            detail: "the entry is missing".into(),
        })?;
    }
    let mut buf = Vec::with_capacity(1024);
    let header = Header {
        flashmm_export: EXPORT_VERSION,
        format: FORMAT_VERSION,
        first_seq: from,
        prev_hash: to_hex(&prev),
    };
    put(out, &mut buf, &header, from)?;
    let mut n = 0u64;
    let mut last_seq = None;
    let mut failed = None;
    journal.for_each_raw(from, &mut |raw| {
        if last.is_some_and(|l| raw.seq > l) {
            return Ok(false);
        }
        let e = codec::decode_entry(raw.seq, raw.bytes)?;
        if session.is_some_and(|s| s != e.session) {
            return Ok(true);
        }
        let l = Line {
            seq: e.seq,
            ts_ns: e.ts_ns,
            venue_ts_ns: e.venue_ts_ns,
            session: e.session,
            cause: e.cause,
            hash: Some(to_hex(&raw.hash)),
            body: e.body,
        };
        if let Err(err) = put(out, &mut buf, &l, raw.seq) {
            failed = Some(err);
            return Ok(false);
        }
        n += 1;
        last_seq = Some(raw.seq);
        prev = raw.hash;
        Ok(true)
    })?;
    if let Some(err) = failed {
        return Err(err);
    }
    let trailer = Trailer {
        flashmm_export_end: End {
            entries: n,
            last_seq,
            head: to_hex(&prev),
        },
    };
    put(out, &mut buf, &trailer, last_seq.unwrap_or(from))?;
    out.flush()?;
    Ok(n)
}

/// How much of a file an import checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Accept lines without hashes and a file without the header or trailer (written by hand,
    /// or by an older flashmm). No hash is checked: the entries are taken as they are and the
    /// journal chains them from its own head. Seqs and session structure are still checked.
    /// Overrides `rebase`.
    pub unsigned: bool,
    /// Check the file's own chain from its header's `prev_hash`, but let that differ from this
    /// journal's head: the export continues a journal whose earlier entries differ from this
    /// one's (the same recording imported from another path, say). The journal chains the
    /// entries from its own head, so their stored hashes differ from the file's.
    pub rebase: bool,
}

/// What an import wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub entries: u64,
    pub last_seq: Option<u64>,
    /// Every line's hash was checked (false with `unsigned`).
    pub checked: bool,
    /// With `rebase`: the head the export continued, where it was not this journal's.
    pub rebased_from: Option<[u8; HASH_LEN]>,
}

/// What a session id already means before the file is read, or since a line of it.
#[derive(Clone, Copy)]
enum Known {
    /// In the journal (or begun by this writer); `open` if this writer still takes its entries.
    Journal { open: bool },
    /// Started on line `line` of the file, ended on line `ended`.
    File { line: u64, ended: Option<u64> },
}

/// The journal as the import found it.
struct Start {
    next_seq: u64,
    head: [u8; HASH_LEN],
    sessions: BTreeMap<u64, Known>,
}

impl Start {
    fn of(writer: &Writer) -> Result<Start, JsonlError> {
        let mut sessions: BTreeMap<u64, Known> = writer
            .journal()
            .sessions()?
            .iter()
            .map(|s| (s.id, Known::Journal { open: false }))
            .collect();
        for (id, open) in writer.begun() {
            sessions.insert(id, Known::Journal { open });
        }
        Ok(Start {
            next_seq: writer.next_seq(),
            head: writer.head(),
            sessions,
        })
    }
}

/// Everything the writing pass would refuse, checked line by line: both passes run it, so what
/// is written is exactly what was checked.
struct Check<'a> {
    opts: ImportOptions,
    start: &'a Start,
    sessions: BTreeMap<u64, Known>,
    /// The number of the line being read (1-based, blank lines counted).
    line: u64,
    /// Lines that were not blank.
    lines: u64,
    header: bool,
    trailer: Option<u64>,
    next_seq: u64,
    /// The file's chain so far: the header's `prev_hash`, then each entry's hash.
    prev: [u8; HASH_LEN],
    entries: u64,
    last_seq: Option<u64>,
    rebased_from: Option<[u8; HASH_LEN]>,
    bytes: Vec<u8>,
}

const UNSIGNED_HINT: &str = "to import entries without checking them against any hash chain, pass --unsigned (journal import --format jsonl --unsigned)";

impl<'a> Check<'a> {
    fn new(start: &'a Start, opts: ImportOptions) -> Check<'a> {
        Check {
            opts,
            start,
            sessions: start.sessions.clone(),
            line: 0,
            lines: 0,
            header: false,
            trailer: None,
            next_seq: start.next_seq,
            prev: start.head,
            entries: 0,
            last_seq: None,
            rebased_from: None,
            bytes: Vec::with_capacity(1024),
        }
    }

    fn signed(&self) -> bool {
        !self.opts.unsigned
    }

    /// Checks one line; an entry to write comes back.
    fn line(&mut self, raw: &[u8]) -> Result<Option<Entry>, String> {
        let text = raw.trim_ascii();
        if text.is_empty() {
            return Ok(None);
        }
        if let Some(t) = self.trailer {
            return Err(format!(
                "there is more after the export's trailer on line {t}; an export ends with its trailer (were two files joined? import them one at a time)"
            ));
        }
        let first = self.lines == 0;
        self.lines += 1;
        if first && self.signed() {
            return match serde_json::from_slice::<Header>(text) {
                Ok(h) => self.header(h).map(|()| None),
                Err(_) if serde_json::from_slice::<Line>(text).is_ok() => Err(format!(
                    "the file begins with an entry, not with the header of a signed export ({{\"flashmm_export\":…}}): it was written by hand or by an older flashmm, or its first line was removed; {UNSIGNED_HINT}"
                )),
                Err(e) => Err(format!(
                    "not the header of a flashmm export ({e}); a signed export begins with {{\"flashmm_export\":{EXPORT_VERSION},…}}"
                )),
            };
        }
        match serde_json::from_slice::<Line>(text) {
            Ok(l) => self.entry(l).map(Some),
            Err(e) => {
                if let Ok(t) = serde_json::from_slice::<Trailer>(text) {
                    return self.trailer(t.flashmm_export_end).map(|()| None);
                }
                if let Ok(h) = serde_json::from_slice::<Header>(text) {
                    if first {
                        return self.header(h).map(|()| None);
                    }
                    return Err("a second export header; an export has one, on its first line (were two files joined? import them one at a time)".into());
                }
                Err(format!("not a journal entry: {e}"))
            }
        }
    }

    fn header(&mut self, h: Header) -> Result<(), String> {
        if h.flashmm_export != EXPORT_VERSION {
            return Err(format!(
                "this is a version {} export and this flashmm reads version {EXPORT_VERSION}; import it with the flashmm release that wrote it",
                h.flashmm_export
            ));
        }
        let prev = from_hex(&h.prev_hash)
            .ok_or_else(|| format!("prev_hash {:?} is not 64 hex digits", h.prev_hash))?;
        let next = self.start.next_seq;
        if h.first_seq != next {
            return Err(format!(
                "the export starts at seq {} but this journal's next seq is {next}; an export can only be imported where it continues the journal: a whole-journal export into an empty --journal directory, a session export into a journal holding what precedes it",
                h.first_seq
            ));
        }
        if self.signed() {
            if h.format != FORMAT_VERSION {
                return Err(format!(
                    "the export was written from a journal of format version {} and this flashmm writes format version {FORMAT_VERSION}; its hashes are over that format's bytes and cannot be checked here. {UNSIGNED_HINT}",
                    h.format
                ));
            }
            if prev != self.start.head {
                if next == 0 {
                    return Err(format!(
                        "the header's prev_hash is {} but nothing precedes seq 0, so it must be 64 zeros: the header was edited",
                        h.prev_hash
                    ));
                }
                if !self.opts.rebase {
                    return Err(format!(
                        "the export continues a journal whose entry {} has chain hash {}, but this journal's entry {} has hash {}: their entries before seq {next} differ, so the export does not continue this journal. Import it into the journal it was exported from (or a restore of it); if this journal holds the same entries written differently (the same recording imported from another path, say), pass --rebase to check the file's own chain and chain its entries from this journal's head",
                        next - 1,
                        h.prev_hash,
                        next - 1,
                        to_hex(&self.start.head)
                    ));
                }
                self.rebased_from = Some(prev);
            }
            self.prev = prev;
        }
        self.header = true;
        Ok(())
    }

    fn entry(&mut self, l: Line) -> Result<Entry, String> {
        if l.seq != self.next_seq {
            let next = self.next_seq;
            return Err(match self.last_seq {
                Some(last) if l.seq > next => format!(
                    "entry has seq {} after seq {last}: the file skips seqs {next}..={}; lines were removed, or this is the export of a session whose entries were interleaved with another session's (export the whole journal instead)",
                    l.seq,
                    l.seq - 1
                ),
                Some(last) => format!(
                    "entry has seq {} after seq {last}: seqs go up by one; lines were moved or repeated",
                    l.seq
                ),
                None if self.header => format!(
                    "entry has seq {} but the header says the export starts at seq {next}: the line or the header was edited",
                    l.seq
                ),
                None => format!(
                    "entry has seq {} but this journal's next seq is {next}; a JSONL export can only be imported where it continues the journal: a whole-journal export into an empty --journal directory, a session export into a journal holding what precedes it",
                    l.seq
                ),
            });
        }
        let e = Entry {
            seq: l.seq,
            ts_ns: l.ts_ns,
            venue_ts_ns: l.venue_ts_ns,
            session: l.session,
            cause: l.cause,
            body: l.body,
        };
        self.bytes.clear();
        codec::encode_entry(&e, &mut self.bytes).map_err(|err| err.to_string())?;
        if self.signed() {
            let Some(h) = &l.hash else {
                return Err(format!(
                    "the entry with seq {} has no hash; every line of a signed export carries its entry's chain hash, so this line was edited or written by hand; {UNSIGNED_HINT}",
                    e.seq
                ));
            };
            let want = from_hex(h).ok_or_else(|| format!("hash {h:?} is not 64 hex digits"))?;
            if codec::chain(&self.prev, &self.bytes) != want {
                return Err(format!(
                    "hash mismatch at seq {}: {}",
                    e.seq,
                    if self.entries == 0 {
                        "the first entry does not match its hash and the header's prev_hash; the line (or the header) was edited after export"
                    } else {
                        "the entry does not match its hash and the hash of the line before; the line was edited after export"
                    }
                ));
            }
            self.prev = want;
        }
        self.session(&e)?;
        self.entries += 1;
        self.last_seq = Some(e.seq);
        self.next_seq += 1;
        Ok(e)
    }

    /// What `Writer::begin_with_id` and `Writer::append` would refuse.
    fn session(&mut self, e: &Entry) -> Result<(), String> {
        let id = e.session;
        let line = self.line;
        let known = self.sessions.get(&id).copied();
        if let Body::SessionStart(_) = e.body {
            return match known {
                None => {
                    self.sessions
                        .insert(id, Known::File { line, ended: None });
                    Ok(())
                }
                Some(Known::Journal { .. }) => Err(format!(
                    "session {id} already exists in this journal; import into another --journal directory"
                )),
                Some(Known::File { line: at, .. }) => Err(format!(
                    "session {id} starts again (it started on line {at}); a session starts once"
                )),
            };
        }
        let ends = matches!(e.body, Body::SessionEnd(_));
        match known {
            None => Err(format!(
                "an entry of session {id}, which has no session start earlier in the file and is not open in this journal"
            )),
            Some(Known::Journal { open: false }) => Err(format!(
                "an entry of session {id}, which this journal already holds and which takes no more entries (it ended, or was written by an earlier process); import into another --journal directory"
            )),
            Some(Known::File {
                ended: Some(at), ..
            }) => Err(format!(
                "an entry of session {id} after that session's end on line {at}; nothing of a session follows its end"
            )),
            Some(Known::Journal { open: true }) => {
                if ends {
                    self.sessions.insert(id, Known::Journal { open: false });
                }
                Ok(())
            }
            Some(Known::File { line: at, ended: None }) => {
                if ends {
                    self.sessions.insert(
                        id,
                        Known::File {
                            line: at,
                            ended: Some(line),
                        },
                    );
                }
                Ok(())
            }
        }
    }

    fn trailer(&mut self, t: End) -> Result<(), String> {
        if t.entries != self.entries {
            return Err(format!(
                "the trailer says the export holds {} entries but {} precede it: lines were removed or added",
                t.entries, self.entries
            ));
        }
        if t.last_seq != self.last_seq {
            let seq = |s: Option<u64>| s.map_or("none".to_string(), |s| s.to_string());
            return Err(format!(
                "the trailer says the last seq is {} but the last entry has seq {}: the trailer was edited",
                seq(t.last_seq),
                seq(self.last_seq)
            ));
        }
        if self.signed() {
            let head = from_hex(&t.head)
                .ok_or_else(|| format!("head {:?} is not 64 hex digits", t.head))?;
            if head != self.prev {
                return Err(format!(
                    "the trailer's head is {} but the chain of the lines before it ends at {}: the trailer was edited",
                    t.head,
                    to_hex(&self.prev)
                ));
            }
        }
        self.trailer = Some(self.line);
        Ok(())
    }

    /// After the last line: a signed export must have ended with its trailer.
    fn finish(&self) -> Result<Imported, JsonlError> {
        if self.signed() && self.trailer.is_none() {
            let detail = if self.lines == 0 {
                "the file is empty; an export holds at least its header and trailer".to_string()
            } else {
                format!(
                    "the file ends at line {} without the export's trailer ({{\"flashmm_export_end\":…}}): it was cut short; export it again from its journal",
                    self.line
                )
            };
            return Err(JsonlError::Line {
                line: self.line.max(1),
                detail,
            });
        }
        Ok(Imported {
            entries: self.entries,
            last_seq: self.last_seq,
            checked: self.signed(),
            rebased_from: self.rebased_from,
        })
    }
}

/// Reads `input` line by line through `check`, handing each entry to `sink`. Returns a digest of
/// the bytes read, so the second pass can tell the file did not change under it.
fn scan<R: BufRead>(
    mut input: R,
    check: &mut Check,
    sink: &mut dyn FnMut(Entry) -> Result<(), JsonlError>,
) -> Result<[u8; HASH_LEN], JsonlError> {
    let mut buf = Vec::with_capacity(4096);
    let mut digest = blake3::Hasher::new();
    loop {
        let line = check.line + 1;
        buf.clear();
        let n = Read::by_ref(&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| JsonlError::Line {
                line,
                detail: format!("cannot read the file: {e}"),
            })?;
        if n == 0 {
            break;
        }
        check.line = line;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err(JsonlError::Line {
                line,
                detail: format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes; no journal entry is that large, so this is not a flashmm export"
                ),
            });
        }
        digest.update(&buf);
        let entry = check
            .line(&buf)
            .map_err(|detail| JsonlError::Line { line, detail })?;
        if let Some(e) = entry {
            sink(e)?;
        }
    }
    Ok(*digest.finalize().as_bytes())
}

fn write(writer: &mut Writer, mut e: Entry) -> Result<(), JsonlError> {
    let seq = e.seq;
    match e.body {
        Body::SessionStart(_) => writer.begin_with_id(&mut e)?,
        _ => writer.append(&mut e)?,
    }
    if e.seq != seq {
        return Err(JournalError::Usage(format!(
            "the journal wrote the entry with seq {seq} at seq {}",
            e.seq
        ))
        .into());
    }
    Ok(())
}

/// Appends an export, keeping its seqs and session ids so `cause` links stay valid. Its first
/// seq must be the journal's next seq, and (unless `opts` says otherwise) every line must carry
/// its hash, the chain must run from the header's `prev_hash`, which must be this journal's
/// head, and the file must end with its trailer.
///
/// `open` is called twice, and must give the same bytes both times: the first pass checks the
/// whole file (everything the writer would refuse included) and writes nothing, the second
/// writes it. A file that is refused leaves the journal as it was. Memory is bounded by one
/// line and the number of sessions, however long the file.
pub fn import<R: BufRead>(
    writer: &mut Writer,
    mut open: impl FnMut() -> std::io::Result<R>,
    opts: &ImportOptions,
) -> Result<Imported, JsonlError> {
    let start = Start::of(writer)?;
    let mut check = Check::new(&start, *opts);
    let checked = scan(open()?, &mut check, &mut |_| Ok(()))?;
    let imported = check.finish()?;

    let mut check = Check::new(&start, *opts);
    let changed = |err: JsonlError| {
        match err {
        JsonlError::Line { line, detail } => JsonlError::Line {
            line,
            detail: format!(
                "{detail}. The file changed after it was checked, or could not be read again (an import reads it twice: checks it whole, then writes); the entries before this line were written. Import from a file nothing else is writing"
            ),
        },
        other => other,
    }
    };
    let written = scan(open()?, &mut check, &mut |e| write(writer, e)).map_err(changed)?;
    check.finish().map_err(changed)?;
    writer.flush(false)?;
    if written != checked {
        return Err(JournalError::Usage(format!(
            "the file changed while it was imported: what was written (seqs {}..{}) is not what was checked. Import from a file nothing else is writing",
            start.next_seq,
            writer.next_seq()
        ))
        .into());
    }
    if imported.checked && imported.rebased_from.is_none() && writer.head() != check.prev {
        return Err(JournalError::Usage(format!(
            "the journal's head after the import is {}, not the export's {}",
            to_hex(&writer.head()),
            to_hex(&check.prev)
        ))
        .into());
    }
    Ok(imported)
}

/// `import` from a file, plain or gzip (told by its first bytes). The file is opened once and
/// read twice from the start.
pub fn import_file(
    writer: &mut Writer,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Imported, JsonlError> {
    let file = std::fs::File::open(path)?;
    import(writer, || reopen(&file), opts)
}

fn reopen(file: &std::fs::File) -> std::io::Result<Box<dyn BufRead>> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    if r.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(r),
        )))
    } else {
        Ok(Box::new(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashmm_core::event::{Input, Mode, SessionStart, SessionStatus};

    fn start(config: &str) -> SessionStart {
        SessionStart {
            mode: Mode::Backtest,
            version: "t".into(),
            config: config.into(),
            label: "t".into(),
            parent: None,
            source: None,
        }
    }

    fn timer(session: u64, ts_ns: i64) -> Entry {
        Entry {
            seq: 0,
            ts_ns,
            venue_ts_ns: None,
            session,
            cause: None,
            body: Body::Input(Input::Timer),
        }
    }

    /// Appends a completed session of `n` timers; returns its id.
    fn session(w: &mut Writer, n: usize, config: &str) -> u64 {
        let id = w.begin(0, start(config)).unwrap();
        for i in 0..n {
            w.append(&mut timer(id, i as i64 * 1_000)).unwrap();
        }
        w.end(
            id,
            n as i64 * 1_000,
            SessionStatus::Completed,
            String::new(),
        )
        .unwrap();
        id
    }

    /// A journal with sessions of these sizes.
    fn journal(sizes: &[usize]) -> (tempfile::TempDir, Journal) {
        journal_tagged(sizes, "S")
    }

    /// The same, with `tag` in the sessions' configs.
    fn journal_tagged(sizes: &[usize], tag: &str) -> (tempfile::TempDir, Journal) {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(d.path()).unwrap();
        let mut w = j.writer().unwrap();
        for (i, n) in sizes.iter().enumerate() {
            session(&mut w, *n, &format!("[market]\nsymbol = \"{tag}{i}\"\n"));
        }
        w.close().unwrap();
        (d, j)
    }

    fn empty() -> (tempfile::TempDir, Journal) {
        journal(&[])
    }

    fn exported(j: &Journal, session: Option<u64>) -> String {
        let mut out = Vec::new();
        export(j, session, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn import_into(j: &Journal, text: &str, opts: ImportOptions) -> Result<Imported, JsonlError> {
        let mut w = j.writer().unwrap();
        let r = import(&mut w, || Ok(text.as_bytes()), &opts);
        w.close().unwrap();
        r
    }

    fn signed(j: &Journal, text: &str) -> Result<Imported, JsonlError> {
        import_into(j, text, ImportOptions::default())
    }

    const UNSIGNED: ImportOptions = ImportOptions {
        unsigned: true,
        rebase: false,
    };
    const REBASE: ImportOptions = ImportOptions {
        unsigned: false,
        rebase: true,
    };

    /// The error's line and detail.
    fn refused(r: Result<Imported, JsonlError>) -> (u64, String) {
        match r {
            Err(JsonlError::Line { line, detail }) => (line, detail),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    fn raw(j: &Journal) -> Vec<(u64, [u8; HASH_LEN], Vec<u8>)> {
        let mut v = Vec::new();
        j.for_each_raw(0, &mut |r| {
            v.push((r.seq, r.hash, r.bytes.to_vec()));
            Ok(true)
        })
        .unwrap();
        v
    }

    fn hash_at(j: &Journal, seq: u64) -> [u8; HASH_LEN] {
        raw(j)[seq as usize].1
    }

    fn intact(j: &Journal) -> (u64, [u8; HASH_LEN]) {
        match j.verify().unwrap() {
            crate::Verified::Intact { entries, head } => (entries, head),
            b => panic!("{b:?}"),
        }
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    fn join(lines: &[String]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// The journal holds exactly what it held before: nothing was written.
    fn unchanged(j: &Journal, before: &[(u64, [u8; HASH_LEN], Vec<u8>)]) {
        assert_eq!(raw(j), before);
    }

    #[test]
    fn an_export_is_a_header_the_entries_and_a_trailer() {
        let (_d, j) = journal(&[2]);
        let l = lines(&exported(&j, None));
        assert_eq!(l.len(), 4 + 2);
        assert_eq!(
            l[0],
            format!(
                "{{\"flashmm_export\":1,\"format\":{FORMAT_VERSION},\"first_seq\":0,\"prev_hash\":\"{}\"}}",
                "0".repeat(64)
            )
        );
        let (n, head) = intact(&j);
        assert_eq!(
            l[5],
            format!(
                "{{\"flashmm_export_end\":{{\"entries\":{n},\"last_seq\":3,\"head\":\"{}\"}}}}",
                to_hex(&head)
            )
        );
        assert!(l[1].starts_with("{\"seq\":0,") && l[1].contains("\"hash\":\""));
        let (_e, empty) = empty();
        assert_eq!(
            lines(&exported(&empty, None))[1],
            format!(
                "{{\"flashmm_export_end\":{{\"entries\":0,\"last_seq\":null,\"head\":\"{}\"}}}}",
                "0".repeat(64)
            )
        );
    }

    #[test]
    fn a_whole_journal_export_restores_it_byte_for_byte() {
        let (_d, j) = journal(&[3000, 5]);
        let text = exported(&j, None);
        let (_d2, j2) = empty();
        let done = signed(&j2, &text).unwrap();
        assert_eq!(
            done,
            Imported {
                entries: 3009,
                last_seq: Some(3008),
                checked: true,
                rebased_from: None
            }
        );
        assert_eq!(raw(&j2), raw(&j));
        assert_eq!(intact(&j2), intact(&j));
        assert_eq!(j2.sessions().unwrap(), j.sessions().unwrap());
        assert_eq!(exported(&j2, None), text);
        // Restoring an empty journal's export writes nothing.
        let (_e, e) = empty();
        let (_e2, e2) = empty();
        assert_eq!(signed(&e2, &exported(&e, None)).unwrap().entries, 0);
        assert!(raw(&e2).is_empty());
    }

    #[test]
    fn a_session_export_continues_the_journal_that_holds_what_precedes_it() {
        let (_d, j) = journal(&[10, 7]);
        let first = exported(&j, Some(1));
        let second = exported(&j, Some(2));
        assert!(second.starts_with("{\"flashmm_export\":1,"));
        let (_d2, j2) = empty();
        // Out of order it does not continue the journal.
        let (line, detail) = refused(signed(&j2, &second));
        assert_eq!(line, 1);
        assert!(detail.contains("starts at seq 12 but this journal's next seq is 0"));
        signed(&j2, &first).unwrap();
        signed(&j2, &second).unwrap();
        assert_eq!(raw(&j2), raw(&j));
        assert_eq!(exported(&j2, None), exported(&j, None));
        // Twice is refused: the seqs no longer continue.
        assert!(refused(signed(&j2, &second)).1.contains("next seq is 21"));
    }

    #[test]
    fn an_edit_of_the_first_entry_is_refused_by_its_hash() {
        let (_d, j) = journal(&[3]);
        let text = exported(&j, None);
        assert!(text.contains("S0"));
        let (_d2, j2) = empty();
        let (line, detail) = refused(signed(&j2, &text.replacen("S0", "S9", 1)));
        assert_eq!(line, 2);
        assert!(
            detail.contains("hash mismatch at seq 0: the first entry does not match"),
            "{detail}"
        );
        assert!(raw(&j2).is_empty());
        // A changed prev_hash with the first line's hash recomputed from it is refused too.
        let mut l = lines(&text);
        l[0] = l[0].replace(&"0".repeat(64), &"1".repeat(64));
        let (line, detail) = refused(signed(&j2, &join(&l)));
        assert_eq!(line, 1);
        assert!(detail.contains("nothing precedes seq 0"), "{detail}");
    }

    #[test]
    fn an_edit_of_a_later_entry_is_refused_with_its_line() {
        let (_d, j) = journal(&[3]);
        let text = exported(&j, None);
        let mut l = lines(&text);
        l[3] = l[3].replacen("\"ts_ns\":1000", "\"ts_ns\":1001", 1);
        let (_d2, j2) = empty();
        let (line, detail) = refused(signed(&j2, &join(&l)));
        assert_eq!(line, 4);
        assert!(
            detail.contains("hash mismatch at seq 2: the entry does not match its hash and the hash of the line before"),
            "{detail}"
        );
        // A line's hash replaced by another valid hash is no better.
        let mut l = lines(&text);
        let h3: Line = serde_json::from_str(&l[3]).unwrap();
        l[2] = l[2].replace(h3.hash.as_deref().unwrap(), &"ab".repeat(32));
        let other: Line = serde_json::from_str(&l[2]).unwrap();
        l[2] = l[2].replace(other.hash.as_deref().unwrap(), h3.hash.as_deref().unwrap());
        assert_eq!(refused(signed(&j2, &join(&l))).0, 3);
    }

    #[test]
    fn a_line_without_its_hash_is_refused_unless_unsigned() {
        let (_d, j) = journal(&[3]);
        let mut l = lines(&exported(&j, None));
        let mut v: serde_json::Value = serde_json::from_str(&l[3]).unwrap();
        v.as_object_mut().unwrap().remove("hash");
        v["ts_ns"] = 5.into();
        l[3] = v.to_string();
        let text = join(&l);
        let (_d2, j2) = empty();
        let (line, detail) = refused(signed(&j2, &text));
        assert_eq!(line, 4);
        assert!(
            detail.contains("seq 2 has no hash") && detail.contains("--unsigned"),
            "{detail}"
        );
        assert!(raw(&j2).is_empty());
        // Unsigned takes it: the journal chains it from its own head, so verify is intact.
        let done = import_into(&j2, &text, UNSIGNED).unwrap();
        assert!(!done.checked);
        assert_eq!(done.entries, 5);
        assert_eq!(intact(&j2).0, 5);
        assert_eq!(j2.get(2).unwrap().unwrap().ts_ns, 5);
        // A hash that is not hex is refused, not ignored.
        let mut l = lines(&exported(&j, None));
        let h: Line = serde_json::from_str(&l[2]).unwrap();
        l[2] = l[2].replace(h.hash.as_deref().unwrap(), "xyz");
        let (_d3, j3) = empty();
        let (line, detail) = refused(signed(&j3, &join(&l)));
        assert_eq!(
            (line, detail.as_str()),
            (3, "hash \"xyz\" is not 64 hex digits")
        );
    }

    #[test]
    fn a_file_cut_at_a_line_boundary_is_refused() {
        let (_d, j) = journal(&[3]);
        let l = lines(&exported(&j, None));
        let (_d2, j2) = empty();
        for keep in 1..l.len() {
            let (line, detail) = refused(signed(&j2, &join(&l[..keep])));
            assert_eq!(line, keep as u64, "{keep}");
            assert!(
                detail.contains(&format!(
                    "the file ends at line {keep} without the export's trailer"
                )) && detail.contains("cut short"),
                "{detail}"
            );
            assert!(raw(&j2).is_empty());
        }
        // The whole file but its newline is fine; an empty file is not.
        assert!(signed(&j2, join(&l).trim_end()).is_ok());
        let (_d3, j3) = empty();
        let (line, detail) = refused(signed(&j3, ""));
        assert_eq!(line, 1);
        assert!(detail.contains("the file is empty"), "{detail}");
        assert!(refused(signed(&j3, "\n \n"))
            .1
            .contains("the file is empty"));
    }

    #[test]
    fn the_trailer_must_agree_with_the_lines_before_it_and_end_the_file() {
        let (_d, j) = journal(&[3]);
        let l = lines(&exported(&j, None));
        let (_d2, j2) = empty();
        let with = |i: usize, from: &str, to: &str| {
            let mut l = l.clone();
            assert!(l[i].contains(from), "{from}");
            l[i] = l[i].replacen(from, to, 1);
            join(&l)
        };
        let last = l.len() - 1;
        let (line, detail) = refused(signed(&j2, &with(last, "\"entries\":5", "\"entries\":4")));
        assert_eq!(line, 7);
        assert!(detail.contains("says the export holds 4 entries but 5 precede it"));
        let (_, detail) = refused(signed(&j2, &with(last, "\"last_seq\":4", "\"last_seq\":5")));
        assert!(detail.contains("the last seq is 5 but the last entry has seq 4"));
        let (_, detail) = refused(signed(
            &j2,
            &with(last, "\"last_seq\":4", "\"last_seq\":null"),
        ));
        assert!(detail.contains("the last seq is none"));
        let head = intact(&j).1;
        let other = with(last, &to_hex(&head), &"0".repeat(64));
        assert!(refused(signed(&j2, &other))
            .1
            .contains("the trailer was edited"));
        let other = with(last, &to_hex(&head), "00");
        assert!(refused(signed(&j2, &other))
            .1
            .contains("is not 64 hex digits"));
        // Lines removed from the middle break the chain or the seqs.
        let mut gap = l.clone();
        gap.remove(3);
        let (line, detail) = refused(signed(&j2, &join(&gap)));
        assert_eq!(line, 4);
        assert!(detail.contains("the file skips seqs 2..=2"), "{detail}");
        // Anything after the trailer, even a copy of the file.
        let text = join(&l);
        let (line, detail) = refused(signed(&j2, &format!("{text}\n{text}")));
        assert_eq!(line, 9);
        assert!(detail.contains("more after the export's trailer on line 7"));
        let (line, _) = refused(signed(&j2, &format!("{text}garbage")));
        assert_eq!(line, 8);
        assert!(raw(&j2).is_empty());
        // Blank lines carry nothing.
        assert_eq!(
            signed(&j2, &format!("\n{}\n\n", text.replace('\n', "\r\n\n")))
                .unwrap()
                .entries,
            5
        );
    }

    #[test]
    fn the_header_must_continue_this_journal() {
        let (_d, j) = journal(&[3, 2]);
        let second = exported(&j, Some(2));
        // Another journal with the same number of entries before it, but other ones.
        let (_d2, other) = journal_tagged(&[3], "T");
        let mut w = other.writer().unwrap();
        let (line, detail) = refused(import(
            &mut w,
            || Ok(second.as_bytes()),
            &Default::default(),
        ));
        assert_eq!(line, 1);
        let theirs = to_hex(&hash_at(&j, 4));
        assert!(
            detail.contains(&format!(
                "continues a journal whose entry 4 has chain hash {theirs}"
            )) && detail.contains(&format!(
                "this journal's entry 4 has hash {}",
                to_hex(&w.head())
            )) && detail.contains("--rebase"),
            "{detail}"
        );
        w.close().unwrap();
        // --rebase checks the file's own chain, then chains from this journal's head.
        let mut edited = lines(&second);
        edited[2] = edited[2].replacen("\"ts_ns\":0", "\"ts_ns\":1", 1);
        let (line, detail) = refused(import_into(&other, &join(&edited), REBASE));
        assert_eq!(line, 3, "{detail}");
        assert!(detail.contains("hash mismatch at seq 6"), "{detail}");
        let done = import_into(&other, &second, REBASE).unwrap();
        assert_eq!(done.rebased_from, Some(hash_at(&j, 4)));
        assert_eq!(done.entries, 4);
        assert_eq!(intact(&other).0, 9);
        // Rebased onto a journal whose head matches, nothing is noted.
        let (_d3, j3) = empty();
        signed(&j3, &exported(&j, Some(1))).unwrap();
        assert_eq!(
            import_into(&j3, &second, REBASE).unwrap().rebased_from,
            None
        );
        assert_eq!(raw(&j3), raw(&j));
    }

    #[test]
    fn a_header_from_elsewhere_is_refused_by_what_it_says() {
        let (_d, j) = journal(&[1]);
        let text = exported(&j, None);
        let l = lines(&text);
        let (_d2, j2) = empty();
        let with_header = |h: &str| join(&[vec![h.to_string()], l[1..].to_vec()].concat());
        let zeros = "0".repeat(64);
        let h = |v: u32, f: u8, s: u64, p: &str| {
            format!(
                "{{\"flashmm_export\":{v},\"format\":{f},\"first_seq\":{s},\"prev_hash\":\"{p}\"}}"
            )
        };
        assert_eq!(with_header(&h(1, FORMAT_VERSION, 0, &zeros)), text);
        let (line, detail) = refused(signed(&j2, &with_header(&h(2, FORMAT_VERSION, 0, &zeros))));
        assert_eq!(line, 1);
        assert!(detail.contains("a version 2 export and this flashmm reads version 1"));
        let (_, detail) = refused(signed(
            &j2,
            &with_header(&h(1, FORMAT_VERSION + 1, 0, &zeros)),
        ));
        assert!(
            detail.contains(&format!("format version {}", FORMAT_VERSION + 1))
                && detail.contains("--unsigned"),
            "{detail}"
        );
        let (_, detail) = refused(signed(&j2, &with_header(&h(1, FORMAT_VERSION, 1, &zeros))));
        assert!(detail.contains("starts at seq 1 but this journal's next seq is 0"));
        let (_, detail) = refused(signed(&j2, &with_header(&h(1, FORMAT_VERSION, 0, "0"))));
        assert!(detail.contains("prev_hash \"0\" is not 64 hex digits"));
        let (_, detail) = refused(signed(&j2, &with_header("{\"flashmm_export\":1}")));
        assert!(
            detail.contains("not the header of a flashmm export"),
            "{detail}"
        );
        // No header at all: the first entry is named, with the flag that takes such files.
        let (line, detail) = refused(signed(&j2, &join(&l[1..])));
        assert_eq!(line, 1);
        assert!(detail.contains("begins with an entry") && detail.contains("--unsigned"));
        // A second header.
        let twice = join(&[vec![l[0].clone()], l.clone()].concat());
        let (line, detail) = refused(signed(&j2, &twice));
        assert_eq!(line, 2);
        assert!(detail.contains("a second export header"));
        // Unsigned takes a header of another format and ignores hashes, but not other seqs.
        let (_, detail) = refused(import_into(
            &j2,
            &with_header(&h(1, FORMAT_VERSION, 3, &zeros)),
            UNSIGNED,
        ));
        assert!(detail.contains("starts at seq 3"));
        let (_, detail) = refused(import_into(
            &j2,
            &with_header(&h(9, FORMAT_VERSION, 0, &zeros)),
            UNSIGNED,
        ));
        assert!(detail.contains("a version 9 export"));
        assert!(raw(&j2).is_empty());
        let other = with_header(&h(1, FORMAT_VERSION + 1, 0, &"7".repeat(64)));
        assert_eq!(import_into(&j2, &other, UNSIGNED).unwrap().entries, 3);
    }

    #[test]
    fn session_structure_is_checked_as_the_writer_would() {
        let (_d, j) = journal(&[2]);
        let base = lines(&exported(&j, None));
        let body = |l: &str| -> serde_json::Value { serde_json::from_str(l).unwrap() };
        let (_d2, j2) = empty();
        let check = |ls: Vec<String>, want_line: u64, want: &str| {
            let before = raw(&j2);
            let (line, detail) = refused(import_into(&j2, &join(&ls), UNSIGNED));
            assert_eq!(line, want_line, "{detail}");
            assert!(detail.contains(want), "{detail}");
            unchanged(&j2, &before);
        };
        let entry = |seq: u64, session: u64, body: &serde_json::Value| {
            serde_json::json!({"seq": seq, "ts_ns": 0, "venue_ts_ns": null, "session": session, "cause": null, "body": body}).to_string()
        };
        let start = body(&base[1])["body"].clone();
        let end = body(&base[4])["body"].clone();
        let tick = body(&base[2])["body"].clone();
        check(
            vec![entry(0, 1, &tick)],
            1,
            "session 1, which has no session start earlier in the file",
        );
        check(
            vec![entry(0, 1, &start), entry(1, 1, &end), entry(2, 1, &tick)],
            3,
            "after that session's end on line 2",
        );
        check(
            vec![entry(0, 1, &start), entry(1, 1, &start)],
            2,
            "session 1 starts again (it started on line 1)",
        );
        check(
            vec![entry(0, 1, &start), entry(1, 2, &tick)],
            2,
            "session 2, which has no session start",
        );
        // Two sessions open at once, each ended once, is what the writer allows.
        let two = vec![
            entry(0, 1, &start),
            entry(1, 2, &start),
            entry(2, 1, &tick),
            entry(3, 2, &end),
            entry(4, 1, &end),
        ];
        assert_eq!(import_into(&j2, &join(&two), UNSIGNED).unwrap().entries, 5);
        // Now the journal has sessions 1 and 2, neither open in a new writer.
        check(
            vec![entry(5, 2, &start)],
            1,
            "session 2 already exists in this journal",
        );
        check(
            vec![entry(5, 1, &tick)],
            1,
            "which this journal already holds and which takes no more entries",
        );
    }

    #[test]
    fn a_session_open_in_this_writer_takes_the_files_entries() {
        let (_d, j) = empty();
        let mut w = j.writer().unwrap();
        let id = w.begin(0, start("")).unwrap();
        let tick = serde_json::to_string(&Body::Input(Input::Timer)).unwrap();
        let end = serde_json::to_string(&Body::SessionEnd(flashmm_core::event::SessionEnd {
            status: SessionStatus::Completed,
            entries: 2,
            note: String::new(),
        }))
        .unwrap();
        let line = |seq: u64, body: &str| {
            format!("{{\"seq\":{seq},\"ts_ns\":1,\"venue_ts_ns\":null,\"session\":{id},\"cause\":null,\"body\":{body}}}\n")
        };
        let text = format!("{}{}{}", line(1, &tick), line(2, &end), line(3, &tick));
        let (l, detail) = refused(import(&mut w, || Ok(text.as_bytes()), &UNSIGNED));
        assert_eq!(l, 3);
        assert!(detail.contains("takes no more entries"), "{detail}");
        assert_eq!(w.next_seq(), 1);
        let text = format!("{}{}", line(1, &tick), line(2, &end));
        assert_eq!(
            import(&mut w, || Ok(text.as_bytes()), &UNSIGNED)
                .unwrap()
                .entries,
            2
        );
        assert!(w.append(&mut timer(id, 5)).is_err());
        w.close().unwrap();
        assert_eq!(intact(&j).0, 3);
    }

    #[test]
    fn a_failed_import_leaves_the_journal_as_it_was_and_the_right_file_then_imports() {
        let (_d, j) = journal(&[1500, 1500]);
        let text = exported(&j, None);
        let (_d2, j2) = empty();
        // The defect: line 2000 fails after the first 1998 entries were written.
        let mut bad = lines(&text);
        bad[2000] = bad[2000].replacen("\"ts_ns\":", "\"ts_ns\":1", 1);
        let (line, _) = refused(signed(&j2, &join(&bad)));
        assert_eq!(line, 2001);
        assert!(raw(&j2).is_empty());
        assert!(j2.sessions().unwrap().is_empty());
        // And a file whose only fault is its end.
        let mut bad = lines(&text);
        bad.pop();
        refused(signed(&j2, &join(&bad)));
        assert!(raw(&j2).is_empty() && j2.sessions().unwrap().is_empty());
        assert_eq!(signed(&j2, &text).unwrap().entries, 3004);
        assert_eq!(intact(&j2), intact(&j));
        assert_eq!(raw(&j2), raw(&j));
    }

    #[test]
    fn a_file_that_changes_between_the_passes_is_reported() {
        let (_d, j) = journal(&[3]);
        let text = exported(&j, None);
        let mut l = lines(&text);
        l[3] = l[3].replacen("\"ts_ns\":1000", "\"ts_ns\":1001", 1);
        let edited = join(&l);
        let (_d2, j2) = empty();
        let mut w = j2.writer().unwrap();
        let mut calls = 0;
        let r = import(
            &mut w,
            || {
                calls += 1;
                Ok(if calls == 1 {
                    text.as_bytes()
                } else {
                    edited.as_bytes()
                })
            },
            &Default::default(),
        );
        let (line, detail) = refused(r);
        assert_eq!(line, 4);
        assert!(
            detail.contains("hash mismatch at seq 2")
                && detail.contains("The file changed after it was checked"),
            "{detail}"
        );
        w.close().unwrap();
        // Unsigned, the lines cannot tell, but the bytes do.
        let (_d3, j3) = empty();
        let mut w = j3.writer().unwrap();
        let mut calls = 0;
        let err = import(
            &mut w,
            || {
                calls += 1;
                Ok(if calls == 1 {
                    text.as_bytes()
                } else {
                    edited.as_bytes()
                })
            },
            &UNSIGNED,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("the file changed while it was imported"),
            "{err}"
        );
        assert_eq!(calls, 2);
    }

    #[test]
    fn garbage_is_refused_with_its_line_and_never_panics() {
        let (_d, j) = journal(&[1]);
        let l = lines(&exported(&j, None));
        let (_d2, j2) = empty();
        let at2 = |bad: &[u8]| {
            let mut text = format!("{}\n", l[0]).into_bytes();
            text.extend_from_slice(bad);
            text.push(b'\n');
            text.extend_from_slice(join(&l[1..]).as_bytes());
            let mut w = j2.writer().unwrap();
            let r = import(&mut w, || Ok(text.as_slice()), &Default::default());
            w.close().unwrap();
            refused(r)
        };
        for bad in [
            &b"\xff\xfe"[..],
            b"{\"seq\":0,\"body\":\"\xff\"}",
            b"[1,2",
            b"{}",
            b"null",
            b"{\"seq\":-1}",
            &[b'['; 10_000][..],
        ] {
            let (line, detail) = at2(bad);
            assert_eq!(line, 2, "{detail}");
            assert!(detail.starts_with("not a journal entry"), "{detail}");
        }
        // An unknown field is not an entry either: every byte of a line is the entry's.
        let extra = l[1].replacen("{", "{\"note\":1,", 1);
        assert!(at2(extra.as_bytes()).1.contains("unknown field"));
        let (line, detail) = at2(&vec![b'x'; MAX_LINE_BYTES + 1]);
        assert_eq!(line, 2);
        assert!(detail.contains("longer than"), "{detail}");
        // A line of exactly the limit, the file's last with no newline, is read (and is not an
        // entry).
        let mut last = format!("{}\n", l[0]).into_bytes();
        last.resize(last.len() + MAX_LINE_BYTES, b'x');
        let mut w = j2.writer().unwrap();
        let (line, detail) = refused(import(&mut w, || Ok(last.as_slice()), &Default::default()));
        w.close().unwrap();
        assert_eq!(line, 2);
        assert!(detail.starts_with("not a journal entry"), "{detail}");
        assert!(raw(&j2).is_empty());
    }

    #[test]
    fn hand_written_lines_import_unsigned_and_chain_from_the_journals_head() {
        let (_d, j) = journal(&[2]);
        let text = exported(&j, None);
        let bare: Vec<String> = lines(&text)[1..5]
            .iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("hash");
                v.to_string()
            })
            .collect();
        let (_d2, j2) = empty();
        let (line, detail) = refused(signed(&j2, &join(&bare)));
        assert_eq!(line, 1);
        assert!(detail.contains("--unsigned"));
        let done = import_into(&j2, &join(&bare), UNSIGNED).unwrap();
        assert_eq!((done.entries, done.checked), (4, false));
        // Same entries, so the same chain.
        assert_eq!(raw(&j2), raw(&j));
        // With a trailer, unsigned still holds the file to its count.
        let (_d3, j3) = empty();
        let mut counted = bare.clone();
        counted
            .push("{\"flashmm_export_end\":{\"entries\":3,\"last_seq\":3,\"head\":\"\"}}".into());
        let (line, detail) = refused(import_into(&j3, &join(&counted), UNSIGNED));
        assert_eq!(line, 5);
        assert!(detail.contains("holds 3 entries but 4 precede it"));
        counted[4] = "{\"flashmm_export_end\":{\"entries\":4,\"last_seq\":3,\"head\":\"\"}}".into();
        assert_eq!(
            import_into(&j3, &join(&counted), UNSIGNED).unwrap().entries,
            4
        );
        // And an unsigned file's seqs must continue the journal.
        let (line, detail) = refused(import_into(&j3, &join(&bare), UNSIGNED));
        assert_eq!(line, 1);
        assert!(detail.contains("entry has seq 0 but this journal's next seq is 4"));
        let mut moved = bare.clone();
        moved.swap(1, 2);
        let (_d4, j4) = empty();
        let (line, detail) = refused(import_into(&j4, &join(&moved), UNSIGNED));
        assert_eq!(line, 2);
        assert!(detail.contains("the file skips seqs 1..=1"));
        let mut repeated = bare.clone();
        repeated.insert(2, bare[1].clone());
        let (line, detail) = refused(import_into(&j4, &join(&repeated), UNSIGNED));
        assert_eq!(line, 3);
        assert!(
            detail.contains("entry has seq 1 after seq 1: seqs go up by one"),
            "{detail}"
        );
        let mut first = lines(&text);
        first[1] = first[1].replacen("\"seq\":0", "\"seq\":1", 1);
        let (line, detail) = refused(signed(&j4, &join(&first)));
        assert_eq!(line, 2);
        assert!(detail.contains("the header says the export starts at seq 0"));
    }

    #[test]
    fn import_file_reads_plain_and_gzip_twice() {
        let (d, j) = journal(&[4]);
        let text = exported(&j, None);
        let plain = d.path().join("x.jsonl");
        std::fs::write(&plain, &text).unwrap();
        let gz = d.path().join("x.jsonl.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        for f in [&plain, &gz] {
            let (_d2, j2) = empty();
            let mut w = j2.writer().unwrap();
            assert_eq!(
                import_file(&mut w, f, &Default::default()).unwrap().entries,
                6
            );
            w.close().unwrap();
            assert_eq!(raw(&j2), raw(&j));
        }
        let (_d3, j3) = empty();
        let mut w = j3.writer().unwrap();
        let missing = import_file(&mut w, &d.path().join("nope"), &Default::default());
        assert!(matches!(missing, Err(JsonlError::Io(_))));
    }

    #[test]
    fn hex_round_trips() {
        let h: [u8; HASH_LEN] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(to_hex(&[0x0f, 0xa0]), "0fa0");
        assert_eq!(from_hex(&to_hex(&h).to_uppercase()), Some(h));
        assert_eq!(from_hex(&"g".repeat(64)), None);
        assert_eq!(from_hex(&"0".repeat(63)), None);
        assert_eq!(from_hex(&format!("{}é", "0".repeat(62))), None);
    }
}
