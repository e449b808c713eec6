//! Live market data and the chain clock: Citrex streams and Sei's `newHeads`, parsed into the
//! inputs the core reads, with reconnects, resubscription and a REST fallback. Each task sends
//! `FeedEvent`s to the live driver, which journals them before the core sees them.

pub mod citrex;
pub mod sei;

use crate::citrex::wire::AccountUpdate;
use flashmm_core::event::{ChainHead, FeedStatus, Input};
use std::time::Instant;

#[derive(Debug)]
pub enum FeedEvent {
    /// A market input (book snapshot, trade, feed status) with the venue's timestamp if it had one.
    Market {
        input: Input,
        venue_ts: Option<i64>,
        received: Instant,
    },
    /// Our orders, fills and positions, from the account stream.
    Account {
        update: AccountUpdate,
        received: Instant,
    },
    Chain {
        head: ChainHead,
        received: Instant,
    },
    /// The account stream reconnected: open orders may have changed unseen.
    AccountResynced,
    /// The account stream said something we could not read or that refused us: journal it and
    /// read the account back, since a fill may have been in it.
    AccountDoubt(FeedStatus),
    Status(FeedStatus),
}
