//! One market stream out of several imports (BTC and ETH over the same hours), so that one
//! session can quote them together: the market entries of each are copied into a new import
//! session in time order (on a tie, in the order the sources are listed, each source in its own
//! order). The copy is made once; the next run over the same sources finds it
//! (`SessionStart.source` is `Source::Merged` with their ids).

use crate::binance::{ImportError, Record};
use crate::import_session::ImportSession;
use crate::{Journal, JournalError, Reader, SessionInfo, Writer};
use flashmm_core::event::{Body, Entry, Mode, SessionStart, SessionStatus, Source};

/// The completed merge of exactly `sources` (in that order), if the journal has one.
pub fn find(journal: &Journal, sources: &[u64]) -> Result<Option<u64>, JournalError> {
    Ok(journal
        .sessions()?
        .into_iter()
        .rev()
        .find(|s| {
            s.mode == Mode::Import
                && s.status == Some(SessionStatus::Completed)
                && matches!(&s.source, Some(Source::Merged { sessions }) if sessions == sources)
        })
        .map(|s| s.id))
}

/// The merge of `sources`' market entries: found, or written now. Returns the session and
/// whether it was written by this call.
pub fn merged(writer: &mut Writer, sources: &[u64]) -> Result<(u64, bool), ImportError> {
    if let Some(id) = find(writer.journal(), sources)? {
        return Ok((id, false));
    }
    let journal = writer.journal().clone();
    let mut heads: Vec<Head> = Vec::with_capacity(sources.len());
    for &id in sources {
        let info = journal.session(id)?;
        let mut h = Head {
            reader: journal.read(info.first_seq)?,
            info,
            next: None,
            copied: 0,
        };
        h.advance()?;
        heads.push(h);
    }
    let list: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    let mut session = ImportSession::new(
        writer,
        SessionStart {
            mode: Mode::Import,
            version: flashmm_core::VERSION.to_string(),
            config: String::new(),
            label: format!("merge of sessions {}", list.join(", ")),
            parent: None,
            source: Some(Source::Merged {
                sessions: sources.to_vec(),
            }),
        },
    );
    let mut last_ts = i64::MIN;
    loop {
        let pick = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.next.as_ref().map(|e| (e.ts_ns, i)))
            .min();
        let Some((ts, i)) = pick else { break };
        let Some(e) = heads[i].next.take() else { break };
        heads[i].copied += 1;
        heads[i].advance()?;
        let Body::Input(input) = e.body else { continue };
        // Each import's times only move forward, so the merge does too.
        last_ts = last_ts.max(ts);
        session.write(Record {
            ts_ns: last_ts,
            venue_ts_ns: e.venue_ts_ns,
            input,
        })?;
    }
    let counts: Vec<String> = heads
        .iter()
        .map(|h| format!("{} from session {}", h.copied, h.info.id))
        .collect();
    let note = format!("market entries merged by time: {}", counts.join(", "));
    match session.finish(last_ts, note)? {
        Some(id) => Ok((id, true)),
        None => Err(ImportError::Journal(JournalError::Usage(format!(
            "sessions {} hold no market entries to merge",
            list.join(", ")
        )))),
    }
}

struct Head {
    reader: Reader,
    info: SessionInfo,
    next: Option<Entry>,
    copied: u64,
}

impl Head {
    fn advance(&mut self) -> Result<(), JournalError> {
        self.next = None;
        for e in self.reader.by_ref() {
            let e = e?;
            if e.seq > self.info.last_seq {
                return Ok(());
            }
            if e.session == self.info.id && e.body.is_market() {
                self.next = Some(e);
                return Ok(());
            }
        }
        Ok(())
    }
}
