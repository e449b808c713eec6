//! A session's entries in the order the core consumed them.
//!
//! Live and paper sessions journal every input, so their order is seq order. A backtest
//! session references market entries of another session instead of copying them; its own
//! entries are merged back in by one rule, which the backtest driver obeys when it runs:
//! - an input of the session (fill, ack, timer, prediction) comes before a market entry iff its
//!   ts is not later than the market entry's;
//! - an output comes right after the entry that caused it (`cause`);
//! - the session end comes after the last market entry.

use crate::{Journal, JournalError, ReadAhead, Reader};
use flashmm_core::event::{Body, Entry, Source};

pub struct SessionStream {
    own: Reader,
    own_last: u64,
    session: u64,
    market: Option<(ReadAhead, u64, u64, u64)>,
    next_own: Option<Entry>,
    next_market: Option<Entry>,
    done: bool,
}

pub fn session_stream(journal: &Journal, session: u64) -> Result<SessionStream, JournalError> {
    let info = journal.session(session)?;
    let market = match info.source {
        Some(Source::Journal {
            session: src,
            from_seq,
            to_seq,
            // The market entries are the bulk: decode them on a second thread.
        }) => Some((journal.read_ahead(from_seq)?, src, from_seq, to_seq)),
        _ => None,
    };
    Ok(SessionStream {
        own: journal.read(info.first_seq)?,
        own_last: info.last_seq,
        session,
        market,
        next_own: None,
        next_market: None,
        done: false,
    })
}

impl SessionStream {
    fn fill_own(&mut self) -> Result<(), JournalError> {
        while self.next_own.is_none() {
            match self.own.next() {
                Some(e) => {
                    let e = e?;
                    if e.seq > self.own_last {
                        return Ok(());
                    }
                    if e.session == self.session {
                        self.next_own = Some(e);
                    }
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }

    fn fill_market(&mut self) -> Result<(), JournalError> {
        let Some((reader, src, _, to)) = &mut self.market else {
            return Ok(());
        };
        while self.next_market.is_none() {
            match reader.next() {
                Some(e) => {
                    let e = e?;
                    if e.seq > *to {
                        return Ok(());
                    }
                    if e.session == *src && e.body.is_market() {
                        self.next_market = Some(e);
                    }
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }

    fn pick(&mut self) -> Result<Option<Entry>, JournalError> {
        self.fill_own()?;
        self.fill_market()?;
        let take_market = match (&self.next_own, &self.next_market) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(o), Some(m)) => match &o.body {
                Body::SessionStart(_) => false,
                Body::SessionEnd(_) => true,
                Body::Input(_) => o.ts_ns > m.ts_ns,
                Body::Output(_) | Body::Wire(_) => match (o.cause, &self.market) {
                    // Caused by a market entry not yet yielded: that entry goes first.
                    (Some(c), Some((_, _, from, to))) => c >= *from && c <= *to && m.seq <= c,
                    _ => false,
                },
            },
        };
        Ok(if take_market {
            self.next_market.take()
        } else {
            self.next_own.take()
        })
    }
}

impl Iterator for SessionStream {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.pick() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
