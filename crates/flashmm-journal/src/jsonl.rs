//! JSONL export and import: one entry per line, decimals as strings, with each entry's chain
//! hash so an import can prove it reproduced the journal exactly.

use super::codec::{self, HASH_LEN};
use super::{Journal, JournalError, Writer};
use flashmm_core::event::{Body, Entry};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

#[derive(Serialize, Deserialize)]
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

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("line {line}: {detail}")]
    Line { line: u64, detail: String },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn to_hex(h: &[u8]) -> String {
    super::binance::hex(h)
}

fn from_hex(s: &str) -> Option<[u8; HASH_LEN]> {
    if s.len() != HASH_LEN * 2 {
        return None;
    }
    let mut out = [0u8; HASH_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes the entries of `session` (or all) as JSONL. Returns the number of lines.
pub fn export(
    journal: &Journal,
    session: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, JsonlError> {
    let from = match session {
        Some(id) => journal.session(id)?.first_seq,
        None => 0,
    };
    let last = match session {
        Some(id) => Some(journal.session(id)?.last_seq),
        None => None,
    };
    let mut n = 0u64;
    let mut line = Vec::with_capacity(1024);
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
        line.clear();
        serde_json::to_writer(&mut line, &l).map_err(|err| JournalError::Encode {
            seq: raw.seq,
            detail: err.to_string(),
        })?;
        line.push(b'\n');
        out.write_all(&line).map_err(|err| JournalError::Write {
            detail: err.to_string(),
            durable: raw.seq,
        })?;
        n += 1;
        Ok(true)
    })?;
    out.flush()?;
    Ok(n)
}

/// Appends a JSONL export, keeping seqs and session ids so `cause` links stay valid. Its first
/// seq must be the journal's next seq. Where lines carry hashes, each must link to the line
/// before it, so an edited line is refused; the journal then chains the entries from its own
/// head.
pub fn import(writer: &mut Writer, input: &mut dyn BufRead) -> Result<u64, JsonlError> {
    let mut head = writer.head();
    let mut prev: Option<[u8; HASH_LEN]> = None;
    let mut n = 0u64;
    let mut buf = String::new();
    let mut line_no = 0u64;
    let mut bytes = Vec::with_capacity(1024);
    loop {
        buf.clear();
        if input.read_line(&mut buf)? == 0 {
            break;
        }
        line_no += 1;
        if buf.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| JsonlError::Line {
            line: line_no,
            detail,
        };
        let l: Line = serde_json::from_str(buf.trim_end())
            .map_err(|e| bad(format!("not a journal entry: {e}")))?;
        let expected = writer.next_seq();
        if l.seq != expected {
            return Err(bad(format!(
                "entry has seq {} but this journal's next seq is {expected}; a JSONL export can only be imported where it continues the journal, such as into an empty --journal directory",
                l.seq
            )));
        }
        let mut e = Entry {
            seq: l.seq,
            ts_ns: l.ts_ns,
            venue_ts_ns: l.venue_ts_ns,
            session: l.session,
            cause: l.cause,
            body: l.body,
        };
        if let Some(h) = &l.hash {
            let want =
                from_hex(h).ok_or_else(|| bad(format!("hash {h:?} is not 64 hex digits")))?;
            bytes.clear();
            codec::encode_entry(&e, &mut bytes)?;
            // The export's chain either continues this journal's (an import into the journal it
            // came from, or a copy of it), or is its own; either way every line after the first
            // must link to the line before.
            let from_ours = codec::chain(&head, &bytes);
            let linked = match prev {
                None => true,
                Some(p) => codec::chain(&p, &bytes) == want,
            };
            if !(linked || from_ours == want) {
                return Err(bad(format!(
                    "hash mismatch at seq {}: the line was edited after export",
                    l.seq
                )));
            }
            prev = Some(want);
            head = from_ours;
        }
        match e.body {
            Body::SessionStart(_) => writer.begin_with_id(&mut e)?,
            _ => writer.append(&mut e).map_err(|err| match err {
                JournalError::NotOpen(s) => bad(format!(
                    "session {s} has no session start earlier in the file, or has already ended"
                )),
                other => JsonlError::Journal(other),
            })?,
        }
        if l.hash.is_none() {
            head = writer.head();
        }
        n += 1;
    }
    writer.flush(false)?;
    Ok(n)
}
