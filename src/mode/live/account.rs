//! Our account at the venue, squared with the journal. At start, orders left resting are
//! canceled and the venue's position adopted; at stop, the tracker's stop runs to its end.
//! Between, the account stream's news and doubts go to the tracker
//! (`flashmm_venue::citrex::tracker`), which decides when to read the account back.

use super::venue::Reply;
use super::{Inbox, Live, LiveError};
use flashmm_core::event::{FeedStatus, Input, Operator, OperatorCommand, PositionSync, WireAction};
use flashmm_venue::citrex::tracker::Event;
use flashmm_venue::citrex::wire::VenueOrder;
use std::time::{Duration, Instant};

/// The stop waits this long in all for the venue to list no order of ours.
const STOP_PATIENCE: Duration = Duration::from_secs(60);

impl Live {
    /// Cancels everything we have at the venue, per product, and waits for the answer.
    pub(super) async fn cancel_everything(&mut self, why: &str) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let req = c.client.sign_cancel_all(c.tracker.product().id)?;
        let dry = c.dry_run;
        let client = c.client.clone();
        self.wire(
            WireAction::CancelAll,
            None,
            None,
            serde_json::to_string(&req).unwrap_or_default(),
            !dry,
            None,
        )?;
        self.flush(true)?;
        if dry {
            return Ok(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), client.cancel_all(&req)).await;
        let note = match r {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => format!("cancel-all ({why}) failed: {e}"),
            Err(_) => format!("cancel-all ({why}) timed out"),
        };
        self.wire(WireAction::Failure, None, None, note, true, None)?;
        Ok(())
    }

    /// At stop: abort every venue request still in flight (and its retries), then let the
    /// tracker cancel everything and read the open orders until the venue lists none. Says what
    /// it did, or names every order still resting.
    pub(super) async fn stop_at_venue(
        &mut self,
        why: &str,
        inbox: &mut Inbox,
    ) -> Result<String, LiveError> {
        while self.venue_calls.try_join_next().is_some() {}
        let in_flight = !self.venue_calls.is_empty();
        self.venue_calls.abort_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.venue_calls.join_next().await.is_some() {}
        })
        .await;
        let now = self.clock.wall();
        let Some(c) = self.citrex.as_mut() else {
            return Ok("paper session: no order was at a venue".into());
        };
        c.tracker.stop(why, now, in_flight);
        // The core hears it too, so it quotes no more and replay sees why.
        let halt = Operator {
            command: OperatorCommand::Halt,
            note: format!("stopping: {why}"),
        };
        self.input(Input::Operator(halt), None, None, None)?;
        self.pump(None)?;
        let end = tokio::time::Instant::now() + STOP_PATIENCE;
        loop {
            let Some(c) = self.citrex.as_ref() else {
                return Ok(String::new());
            };
            if let Some(done) = c.tracker.stopped() {
                return done.map_err(LiveError::LeftResting);
            }
            let now = self.clock.wall();
            let wait = c
                .tracker
                .poll_timeout()
                .map(|t| Duration::from_nanos((t - now).max(0) as u64))
                .unwrap_or(Duration::from_secs(1));
            let until = (tokio::time::Instant::now() + wait).min(end);
            tokio::select! {
                biased;
                r = inbox.replies.recv() => match r {
                    Some(r) => self.on_reply(r)?,
                    None => return Err(LiveError::LeftResting("stop: the venue calls ended without an answer; check the account for resting orders".into())),
                },
                // Fills still arriving are facts to journal, and the market goes on: the core,
                // halted, only watches.
                Some(f) = inbox.feeds.recv() => self.on_feed(f)?,
                _ = tokio::time::sleep_until(until) => {}
            }
            if tokio::time::Instant::now() >= end {
                return Err(LiveError::LeftResting(format!(
                    "stop: the venue did not confirm within {} s that no order rests; check the account",
                    STOP_PATIENCE.as_secs()
                )));
            }
            self.pump(None)?;
        }
    }

    /// At start: cancel whatever is resting at the venue and adopt its position, journaling each
    /// correction; only then may the core quote.
    pub(super) async fn reconcile(&mut self) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let client = c.client.clone();
        let product = c.tracker.product().clone();
        let open = client.open_orders().await?;
        let ours: Vec<VenueOrder> = open
            .into_iter()
            .filter(|o| o.product_id == product.id)
            .collect();
        for o in &ours {
            let body = serde_json::to_string(o).unwrap_or_default();
            self.wire(WireAction::Reconcile, None, Some(o.nonce), body, true, None)?;
        }
        if !ours.is_empty() {
            self.cancel_everything("reconcile: orders left at the venue")
                .await?;
        }
        let positions = client.positions().await?;
        let (qty, avg) = positions
            .iter()
            .find(|p| p.product_id == product.id)
            .map(|p| (p.quantity.to_decimal(), p.avg_entry_price.to_decimal()))
            .unwrap_or_default();
        let note = format!(
            "GET /positionRisk at start; {} orders found at the venue and canceled",
            ours.len()
        );
        self.input(
            Input::PositionSync(PositionSync {
                symbol: self.symbol,
                qty,
                avg_price: avg,
                note,
            }),
            None,
            None,
            None,
        )?;
        self.flush(true)
    }

    /// The account stream reconnected: updates sent while it was away are lost.
    pub(super) fn on_account_resynced(&mut self) -> Result<(), LiveError> {
        self.tell(Event::AccountResynced, None)
    }

    /// The account stream said something we could not read, or refused us: journal what it
    /// said, then let the tracker read the account back (the frame may have carried a fill).
    pub(super) fn on_account_doubt(&mut self, status: FeedStatus) -> Result<(), LiveError> {
        self.input(Input::FeedStatus(status), None, None, None)?;
        self.tell(Event::AccountDoubt, None)
    }

    pub(super) fn on_reply(&mut self, reply: Reply) -> Result<(), LiveError> {
        match reply {
            Reply::Predicted(resp) => self.on_prediction(*resp),
            Reply::Venue(ev) => self.tell(ev, None),
        }
    }

    pub(super) fn on_account(
        &mut self,
        update: flashmm_venue::citrex::wire::AccountUpdate,
        received: Instant,
    ) -> Result<(), LiveError> {
        self.tell(Event::Account(update), Some(received))
    }
}
