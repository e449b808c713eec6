//! The simulated venue behind paper and dry-run sessions: it watches the live market, and its
//! acks, cancels and fills reach the core as journaled inputs, as the real venue's would.

use super::{Live, LiveError};
use flashmm_core::book::Book;
use flashmm_core::config::Config;
use flashmm_core::event::Input;
use flashmm_core::sim::SimVenue;

pub(super) struct SimSide {
    pub(super) venue: SimVenue,
    book: Book,
}

impl SimSide {
    pub(super) fn new(cfg: &Config) -> SimSide {
        SimSide {
            venue: SimVenue::new(&cfg.venue, &cfg.market),
            book: Book::new(),
        }
    }

    /// The inputs the simulator watches: the book, best bid and offer, and trades.
    pub(super) fn watches(input: &Input) -> bool {
        matches!(
            input,
            Input::BookSnapshot(_)
                | Input::BookPolled(_)
                | Input::BookDelta(_)
                | Input::Bbo(_)
                | Input::Trade(_)
        )
    }

    /// Shows the simulator a market input; others pass by.
    pub(super) fn on_market(&mut self, ts: i64, input: &Input) {
        if Self::watches(input) {
            self.book.apply_market(input);
            self.venue.on_market(ts, input, &self.book);
        }
    }
}

impl Live {
    /// Lets simulated orders arrive and feeds the core every report that is due by now.
    pub(super) fn deliver_sim_reports(&mut self) -> Result<(), LiveError> {
        loop {
            let now = self.clock.now();
            let Some(sim) = self.sim.as_mut() else {
                return Ok(());
            };
            if sim.venue.next_arrival().is_some_and(|t| t <= now) {
                sim.venue.arrive(&sim.book);
                continue;
            }
            if sim.venue.next_report().is_none_or(|t| t > now) {
                return Ok(());
            }
            let Some(r) = sim.venue.pop_report() else {
                return Ok(());
            };
            let cid = match &r.input {
                Input::OrderAck(a) => a.cid,
                Input::OrderReject(x) => x.cid,
                Input::OrderCanceled(c) => c.cid,
                Input::Fill(f) => f.cid,
                _ => 0,
            };
            let cause = self.place_seq.get(&cid).copied();
            self.input(r.input, Some(r.venue_ts), cause, None)?;
        }
    }
}
