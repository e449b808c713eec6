//! The writing pass every importer shares: the session begins at the first record (so its
//! start has that record's time), each record is appended as an input, and the session ends
//! completed with the importer's summary.

use crate::binance::{ImportError, Record};
use crate::{JournalError, Writer};
use flashmm_core::event::{Body, Entry, SessionStart, SessionStatus};

pub(crate) struct ImportSession<'w> {
    writer: &'w mut Writer,
    start: Option<SessionStart>,
    id: Option<u64>,
}

impl<'w> ImportSession<'w> {
    pub(crate) fn new(writer: &'w mut Writer, start: SessionStart) -> ImportSession<'w> {
        ImportSession {
            writer,
            start: Some(start),
            id: None,
        }
    }

    pub(crate) fn write(&mut self, r: Record) -> Result<(), ImportError> {
        let id = match self.id {
            Some(id) => id,
            None => {
                let start = self
                    .start
                    .take()
                    .ok_or(JournalError::Usage("session started twice".into()))?;
                let id = self.writer.begin(r.ts_ns, start)?;
                self.id = Some(id);
                id
            }
        };
        let mut e = Entry {
            seq: 0,
            ts_ns: r.ts_ns,
            venue_ts_ns: r.venue_ts_ns,
            session: id,
            cause: None,
            body: Body::Input(r.input),
        };
        self.writer.append(&mut e)?;
        Ok(())
    }

    /// Ends the session and flushes it; `None` if no record was written (nothing began).
    pub(crate) fn finish(self, last_ts: i64, summary: String) -> Result<Option<u64>, ImportError> {
        let Some(id) = self.id else {
            return Ok(None);
        };
        self.writer
            .end(id, last_ts, SessionStatus::Completed, summary)?;
        self.writer.flush(false)?;
        Ok(Some(id))
    }
}
