//! A session's entries in the order the core consumed them.
//!
//! Live and paper sessions journal every input, so their order is seq order. A backtest
//! session references market entries of another session instead of copying them; its own
//! entries are merged back in by one rule, which the backtest driver obeys when it runs:
//! - an input of the session (fill, ack, timer, prediction) comes before a market entry iff its
//!   ts is not later than the market entry's;
//! - an output comes right after the entry that caused it (`cause`);
//! - the session end comes after the last market entry the session read: the one its `cause`
//!   names (`Writer::end_after`; none at all when the cause is outside the source range), or,
//!   for an end without a cause (journals written before ends had one), the last of the range.
//!
//! The stream ends with the session's own last entry. A session with no end (killed, or
//! crashed: `SessionInfo::status` is `None`) stops where it stopped: nothing shows that the core
//! read the market entries after its last entry, so no summary, markout, chart or
//! mark-to-market may be derived from them, and they are not yielded.

use crate::{Journal, JournalError, ReadAhead, Reader, SessionInfo};
use flashmm_core::event::{Body, Entry, Source};
use serde::Serialize;

pub struct SessionStream {
    own: Reader,
    own_last: u64,
    session: u64,
    market: Option<Market>,
    next_own: Option<Entry>,
    next_market: Option<Entry>,
    read_to: Option<u64>,
    done: bool,
}

struct Market {
    reader: ReadAhead,
    session: u64,
    /// The source range recorded at the session's start (it tells market causes from others).
    from: u64,
    to: u64,
    /// The last seq that may be yielded: `to`, or earlier where the session's end says it
    /// stopped reading.
    until: u64,
}

pub fn session_stream(journal: &Journal, session: u64) -> Result<SessionStream, JournalError> {
    let info = journal.session(session)?;
    let from = match &info.source {
        Some(Source::Journal { from_seq, .. }) => *from_seq,
        _ => 0,
    };
    build(journal, &info, info.first_seq, from, None)
}

/// The last market seq a session may have read, by its end: the end's `cause` when it names
/// one in `from..=to`, `None` when its cause says it read none, `to` when there is no end or the
/// end has no cause.
fn market_until(
    journal: &Journal,
    info: &SessionInfo,
    from: u64,
    to: u64,
) -> Result<Option<u64>, JournalError> {
    if info.status.is_none() {
        return Ok(Some(to));
    }
    Ok(match journal.get(info.last_seq)? {
        Some(Entry {
            session,
            cause: Some(c),
            body: Body::SessionEnd(_),
            ..
        }) if session == info.id => (from..=to).contains(&c).then_some(c),
        _ => Some(to),
    })
}

/// A stream over `info`'s own entries from `own_from` and its market entries from `market_from`
/// (the whole session: its first seq and the source's; else a point at which the merge is
/// known to stand, `read_to` being the last market entry yielded before it).
fn build(
    journal: &Journal,
    info: &SessionInfo,
    own_from: u64,
    market_from: u64,
    read_to: Option<u64>,
) -> Result<SessionStream, JournalError> {
    let market = match &info.source {
        Some(Source::Journal {
            session: src,
            from_seq,
            to_seq,
        }) => match market_until(journal, info, *from_seq, *to_seq)? {
            Some(until) => Some(Market {
                // The market entries are the bulk: decode them on a second thread.
                reader: journal.read_ahead(market_from)?,
                session: *src,
                from: *from_seq,
                to: *to_seq,
                until,
            }),
            None => None,
        },
        _ => None,
    };
    Ok(SessionStream {
        own: journal.read(own_from)?,
        own_last: info.last_seq,
        session: info.id,
        market,
        next_own: None,
        next_market: None,
        read_to,
        done: false,
    })
}

impl SessionStream {
    /// The seq of the last market entry yielded so far (`None`: none yet).
    pub fn read_to(&self) -> Option<u64> {
        self.read_to
    }

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
        let Some(m) = &mut self.market else {
            return Ok(());
        };
        while self.next_market.is_none() {
            match m.reader.next() {
                Some(e) => {
                    let e = e?;
                    if e.seq > m.until {
                        return Ok(());
                    }
                    if e.session == m.session && e.body.is_market() {
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
        if self.next_own.is_none() {
            // Past the session's last entry: the session did not get there.
            return Ok(None);
        }
        self.fill_market()?;
        let take_market = match (&self.next_own, &self.next_market, &self.market) {
            (Some(o), Some(m), Some(mk)) => match &o.body {
                Body::SessionStart(_) => false,
                Body::SessionEnd(_) => true,
                Body::Input(_) => o.ts_ns > m.ts_ns,
                Body::Output(_) | Body::Wire(_) => match o.cause {
                    // Caused by a market entry not yet yielded: that entry goes first.
                    Some(c) => c >= mk.from && c <= mk.to && m.seq <= c,
                    None => false,
                },
            },
            _ => false,
        };
        Ok(if take_market {
            let m = self.next_market.take();
            self.read_to = m.as_ref().map(|m| m.seq);
            m
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

/// How far a session got through the market entries of another that it reads
/// (`Source::Journal`: a backtest, a what-if replay, a probe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MarketReach {
    /// The session whose market entries are read, and the seq range recorded at the start.
    pub session: u64,
    pub from_seq: u64,
    pub to_seq: u64,
    /// The last market entry in that range (`None`: it holds none).
    pub last: Option<u64>,
    /// The last market entry the session read, as its stream yields them (`None`: none).
    pub read_to: Option<u64>,
}

impl MarketReach {
    /// Whether the session read every market entry of its range.
    pub fn complete(&self) -> bool {
        self.read_to == self.last
    }
}

/// The last market entry of `session` in `from..=to`, read backward from `to`.
fn last_market(
    journal: &Journal,
    session: u64,
    from: u64,
    to: u64,
) -> Result<Option<u64>, JournalError> {
    for e in journal.read_back(to) {
        let e = e?;
        if e.seq < from {
            break;
        }
        if e.session == session && e.body.is_market() {
            return Ok(Some(e.seq));
        }
    }
    Ok(None)
}

/// How far `info` got through its market entries; `None` for a session that reads none (a
/// live session or an import journals its own).
///
/// The same answer as `session_stream(..).read_to()` at the stream's end, found without reading
/// the whole session: a finished session's end names its last market entry, and a session with
/// no end is merged only from its last output caused by a market entry (where the merge is known
/// to stand: right after that entry) to its last entry.
pub fn market_reach(
    journal: &Journal,
    info: &SessionInfo,
) -> Result<Option<MarketReach>, JournalError> {
    let Some(Source::Journal {
        session: src,
        from_seq,
        to_seq,
    }) = info.source
    else {
        return Ok(None);
    };
    let last = last_market(journal, src, from_seq, to_seq)?;
    let read_to = if info.status.is_some() {
        match market_until(journal, info, from_seq, to_seq)? {
            Some(until) => last_market(journal, src, from_seq, until)?,
            None => None,
        }
    } else {
        let mut anchor = None;
        for e in journal.read_back(info.last_seq) {
            let e = e?;
            if e.seq < info.first_seq {
                break;
            }
            if e.session != info.id || !matches!(e.body, Body::Output(_) | Body::Wire(_)) {
                continue;
            }
            if let Some(c) = e.cause.filter(|c| (from_seq..=to_seq).contains(c)) {
                anchor = Some((e.seq, c));
                break;
            }
        }
        let mut s = match anchor {
            Some((a, c)) => {
                let at = last_market(journal, src, from_seq, c)?;
                build(journal, info, a + 1, c + 1, at)?
            }
            None => build(journal, info, info.first_seq, from_seq, None)?,
        };
        for e in s.by_ref() {
            e?;
        }
        s.read_to
    };
    Ok(Some(MarketReach {
        session: src,
        from_seq,
        to_seq,
        last,
        read_to,
    }))
}
