//! The writing pass every importer shares: the session begins at the first record (so its
//! start has that record's time), each record is appended as an input, and the session ends
//! completed with the importer's summary. A staged session (`staged`) is atomic: its entries
//! join the journal only when it finishes, and one dropped or rolled back unfinished leaves the
//! journal as it was, so an importer can validate a file in the same pass that writes it.

use crate::binance::{ImportError, Record};
use crate::{JournalError, Writer};
use flashmm_core::event::{Body, Entry, SessionStart, SessionStatus};

pub(crate) struct ImportSession<'w> {
    writer: &'w mut Writer,
    start: Option<SessionStart>,
    id: Option<u64>,
    /// Staged and neither finished nor rolled back yet.
    staged: bool,
}

impl<'w> ImportSession<'w> {
    pub(crate) fn new(writer: &'w mut Writer, start: SessionStart) -> ImportSession<'w> {
        ImportSession {
            writer,
            start: Some(start),
            id: None,
            staged: false,
        }
    }

    /// A session whose entries stay out of the journal until `finish`; dropping it unfinished
    /// (an error part way) discards them.
    pub(crate) fn staged(
        writer: &'w mut Writer,
        start: SessionStart,
    ) -> Result<ImportSession<'w>, ImportError> {
        writer.stage()?;
        let mut s = ImportSession::new(writer, start);
        s.staged = true;
        Ok(s)
    }

    /// Discards everything this staged session wrote: the journal is as it was before it.
    pub(crate) fn rollback(mut self) -> Result<(), ImportError> {
        self.staged = false;
        self.writer.rollback()?;
        Ok(())
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
    pub(crate) fn finish(
        mut self,
        last_ts: i64,
        summary: String,
    ) -> Result<Option<u64>, ImportError> {
        let Some(id) = self.id else {
            return Ok(None);
        };
        self.writer
            .end(id, last_ts, SessionStatus::Completed, summary)?;
        if self.staged {
            self.writer.commit()?;
            self.staged = false;
        }
        self.writer.flush(false)?;
        Ok(Some(id))
    }
}

impl Drop for ImportSession<'_> {
    fn drop(&mut self) {
        if self.staged {
            // A writer that cannot roll back has failed, and says so at its next write.
            let _ = self.writer.rollback();
        }
    }
}
