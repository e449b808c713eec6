//! The instrument a session is about: what its import recorded, a quoting session's own
//! `market` config, or, for an import made before instruments were recorded, what its first
//! entries show (the symbol, whether diffs carry `pu`, the steps of its first book).

use crate::binance::{book_dp, venue_of};
use crate::{Journal, JournalError};
use flashmm_core::config::Config;
use flashmm_core::event::{Body, Entry, Input, Mode, Source, Symbol};
use flashmm_core::instrument::{Instrument, Seen};

/// How far into an old import the fallback looks for its symbol and first book.
const SCAN: usize = 5_000;

pub fn of_session(journal: &Journal, id: u64) -> Result<Option<Instrument>, JournalError> {
    let info = journal.session(id)?;
    if matches!(info.source, Some(Source::Merged { .. })) {
        // Several markets: each source's import knows its own.
        return Ok(None);
    }
    let Some(first) = journal.get(info.first_seq)? else {
        return Ok(None);
    };
    let Body::SessionStart(start) = &first.body else {
        return Ok(None);
    };
    if info.mode != Mode::Import {
        return Ok(Config::from_toml_str(&start.config)
            .ok()
            .filter(|c| c.markets.is_empty())
            .map(|c| Instrument::from_config(&c.market)));
    }
    if let Some(i) = Instrument::from_toml(&start.config) {
        return Ok(Some(i));
    }
    let (mut symbol, mut futures, mut dp) = (None, false, None);
    for e in journal.read(info.first_seq)?.take(SCAN) {
        let e = e?;
        if e.seq > info.last_seq {
            break;
        }
        symbol = symbol.or(e.body.market_symbol());
        match &e.body {
            Body::Input(Input::BookDelta(d)) => futures |= d.prev_update_id.is_some(),
            Body::Input(Input::BookSnapshot(s)) if dp.is_none() => {
                dp = Some(book_dp(s.bids.iter().chain(s.asks.iter())));
            }
            _ => {}
        }
    }
    Ok(symbol.map(|symbol| {
        let (price_dp, size_dp) = dp.unwrap_or((2, 5));
        Instrument::from_seen(&Seen {
            venue: venue_of(&symbol, futures),
            symbol,
            price_dp,
            size_dp,
        })
    }))
}

/// Every market a session is about: its instrument's, or, for a merge of imports and a session
/// that quoted several markets, each of theirs in order. Empty when none can be told.
pub fn symbols(journal: &Journal, id: u64) -> Result<Vec<Symbol>, JournalError> {
    if let Some(i) = of_session(journal, id)? {
        return Ok(vec![i.market.symbol]);
    }
    let info = journal.session(id)?;
    if let Some(Source::Merged { sessions }) = &info.source {
        let mut out = Vec::new();
        for s in sessions {
            out.extend(of_session(journal, *s)?.map(|i| i.market.symbol));
        }
        return Ok(out);
    }
    let Some(Entry {
        body: Body::SessionStart(start),
        ..
    }) = journal.get(info.first_seq)?
    else {
        return Ok(Vec::new());
    };
    Ok(Config::from_toml_str(&start.config)
        .map(|c| {
            if c.markets.is_empty() {
                Vec::new()
            } else {
                c.symbols()
            }
        })
        .unwrap_or_default())
}
