//! Our account at the venue, squared with the journal. At start, orders left resting are
//! canceled and the venue's position adopted; at stop, everything is canceled. After the account
//! stream reconnects (updates sent while it was away are lost), the venue's open orders and
//! position are read back over REST and compared with ours. Every difference becomes a journaled
//! input, so replay sees the same corrections.

use super::tracker::{AccountCheck, Reply};
use super::{Live, LiveError};
use flashmm_core::event::{FeedStatus, Input, PositionSync, WireAction};
use flashmm_venue::citrex::reconcile::{self, Ours, PositionVerdict};
use flashmm_venue::citrex::wire::VenueOrder;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::time::Duration;

/// How many times a check is re-read because fills arrived while it was in flight; after that
/// the orders are settled and the position is left to the next reconnect.
const MAX_BUSY_RETRIES: u32 = 5;
/// Cancel-alls at stop before the orders still listed are named in the error.
const STOP_CHECKS: u32 = 5;

impl Live {
    /// Cancels everything we have at the venue, per product, and waits for the answer.
    pub(super) async fn cancel_everything(&mut self, why: &str) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let req = c.client.sign_cancel_all(c.product.id)?;
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

    /// At stop: abort every venue request still in flight (and its retries), cancel everything
    /// per product, then read the open orders until the venue lists none. Says what it did, or
    /// names every order still resting.
    pub(super) async fn stop_at_venue(&mut self, why: &str) -> Result<String, LiveError> {
        self.venue_calls.abort_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.venue_calls.join_next().await.is_some() {}
        })
        .await;
        let Some(c) = self.citrex.as_ref() else {
            return Ok("paper session: no order was at a venue".into());
        };
        if c.dry_run {
            self.cancel_everything(why).await?;
            return Ok(
                "dry run: the cancel-all was signed and journaled, no order was sent".into(),
            );
        }
        let (client, product) = (c.client.clone(), c.product.id);
        let mut resting: Vec<VenueOrder> = Vec::new();
        for attempt in 0..STOP_CHECKS {
            self.cancel_everything(why).await?;
            // An aborted request may still reach the venue an instant later: look again.
            tokio::time::sleep(Duration::from_millis(200 * (attempt as u64 + 1))).await;
            resting = match client.open_orders().await {
                Ok(open) => open
                    .into_iter()
                    .filter(|o| o.product_id == product)
                    .collect(),
                Err(e) => {
                    let note = format!("stop: reading open orders failed ({e})");
                    self.wire(WireAction::Failure, None, None, note, true, None)?;
                    continue;
                }
            };
            if resting.is_empty() {
                return Ok("open orders canceled; the venue lists none".into());
            }
            let note = format!(
                "stop: {} orders still resting after cancel-all {}",
                resting.len(),
                attempt + 1
            );
            self.wire(WireAction::Reconcile, None, None, note, false, None)?;
        }
        let names: Vec<String> = resting
            .iter()
            .map(|o| {
                format!(
                    "{} (nonce {}, {} {} at {})",
                    o.id,
                    o.nonce,
                    if o.is_buy { "buy" } else { "sell" },
                    o.residual_quantity.to_decimal(),
                    o.price.to_decimal()
                )
            })
            .collect();
        if names.is_empty() {
            return Err(LiveError::LeftResting(
                "could not confirm that no order rests at the venue: GET /openOrders kept failing; check the account".into(),
            ));
        }
        Err(LiveError::LeftResting(format!(
            "orders still resting at the venue after {STOP_CHECKS} cancel-alls, cancel them by hand: {}",
            names.join(", ")
        )))
    }

    /// At start: cancel whatever is resting at the venue and adopt its position, journaling each
    /// correction; only then may the core quote.
    pub(super) async fn reconcile(&mut self) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let client = c.client.clone();
        let product = c.product.clone();
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

    /// The account stream reconnected: journal it, then read the venue's account back.
    pub(super) fn on_account_resynced(&mut self) -> Result<(), LiveError> {
        self.wire(
            WireAction::Reconcile,
            None,
            None,
            "account stream reconnected; updates may have been missed: reading the venue's orders and position".into(),
            false,
            None,
        )?;
        self.check_account("the account stream reconnected", 0, Duration::ZERO);
        Ok(())
    }

    /// The account stream said something we could not read, or refused us: journal what it
    /// said, then read the venue's account back (the frame may have carried a fill).
    pub(super) fn on_account_doubt(&mut self, status: FeedStatus) -> Result<(), LiveError> {
        self.input(Input::FeedStatus(status), None, None, None)?;
        self.check_account("an account frame could not be read", 0, Duration::ZERO);
        Ok(())
    }

    /// Reads the venue's open orders and positions in the background; the answer comes back as
    /// `Reply::AccountChecked`.
    pub(super) fn check_account(&mut self, why: &'static str, attempt: u32, delay: Duration) {
        self.check_account_again(why, attempt, delay, None);
    }

    fn check_account_again(
        &mut self,
        why: &'static str,
        attempt: u32,
        delay: Duration,
        seen_difference: Option<Decimal>,
    ) {
        let Some(c) = self.citrex.as_ref() else {
            return;
        };
        if c.dry_run {
            return;
        }
        self.checking = true;
        self.last_reconcile = std::time::Instant::now();
        let client = c.client.clone();
        let tx = self.replies.clone();
        let fills_at_issue = self.account_fills;
        let acked = c
            .orders
            .iter()
            .filter(|(_, t)| !t.done && t.venue_id.is_some())
            .map(|(cid, _)| *cid)
            .collect();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let snapshot = match client.open_orders().await {
                Ok(open) => client.positions().await.map(|p| (open, p)),
                Err(e) => Err(e),
            };
            let _ = tx
                .send(Reply::AccountChecked(Box::new(AccountCheck {
                    why,
                    seen_difference,
                    acked,
                    fills_at_issue,
                    attempt,
                    snapshot,
                })))
                .await;
        });
    }

    /// Whether the account needs reading: orders of ours rest at the venue, or fills moved the
    /// position since the last read.
    pub(super) fn account_in_doubt(&self) -> bool {
        let real = self.citrex.as_ref().is_some_and(|c| !c.dry_run);
        self.orders_resting() || (real && self.engine.position_unconfirmed())
    }

    /// Whether any order of ours is acknowledged and not known to be done.
    pub(super) fn orders_resting(&self) -> bool {
        self.citrex.as_ref().is_some_and(|c| {
            !c.dry_run && c.orders.values().any(|t| !t.done && t.venue_id.is_some())
        })
    }

    pub(super) fn on_account_check(&mut self, check: AccountCheck) -> Result<(), LiveError> {
        self.checking = false;
        let (open, positions) = match check.snapshot {
            Ok(s) => s,
            Err(e) => {
                self.wire(
                    WireAction::Failure,
                    None,
                    None,
                    format!(
                        "account check ({}) failed ({e}); retrying in 1 s (attempt {})",
                        check.why,
                        check.attempt + 1
                    ),
                    true,
                    None,
                )?;
                self.check_account(check.why, check.attempt + 1, Duration::from_secs(1));
                return Ok(());
            }
        };
        // Orders need no such care: only those acknowledged before the read can be missing.
        let busy = self.account_fills != check.fills_at_issue;
        if busy && check.attempt < MAX_BUSY_RETRIES {
            // A fill arrived while the snapshot was read: it may or may not be in its position.
            self.check_account(check.why, check.attempt + 1, Duration::from_millis(200));
            return Ok(());
        }
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let product = c.product.id;
        let listed: Vec<VenueOrder> = open
            .into_iter()
            .filter(|o| o.product_id == product)
            .collect();
        let ours: Vec<Ours> = c
            .orders
            .iter()
            .map(|(cid, t)| Ours {
                cid: *cid,
                venue_id: t.venue_id.clone(),
                nonce: t.nonce,
                residual: t.residual,
                done: t.done,
                acked_at_issue: check.acked.contains(cid),
            })
            .collect();
        let found = reconcile::compare(&ours, &listed);
        let (venue_qty, venue_avg) = positions
            .iter()
            .find(|p| p.product_id == product)
            .map(|p| (p.quantity.to_decimal(), p.avg_entry_price.to_decimal()))
            .unwrap_or_default();
        let mut summary = format!(
            "account check ({}): {} open at the venue, {} of ours missing, {} with fills unseen, venue position {venue_qty} (ours {})",
            check.why,
            listed.len(),
            found.missing.len(),
            found.filled.len(),
            self.engine.position().qty(),
        );
        if !found.strangers.is_empty() {
            summary.push_str(&format!(
                "; orders we did not place are resting on this account, left alone: {}",
                found.strangers.join(", ")
            ));
        }
        if busy {
            summary.push_str("; fills kept arriving, the position is not corrected this time");
        }
        self.wire(WireAction::Reconcile, None, None, summary, false, None)?;
        for (cid, _, _) in &found.filled {
            let listing = ours
                .iter()
                .find(|o| o.cid == *cid)
                .and_then(|o| reconcile::listing_of(o, &listed));
            if let Some(l) = listing {
                self.residual_fill(*cid, l, None)?;
            }
        }
        let reason = format!(
            "not at the venue when its account was read ({}): filled or canceled unseen",
            check.why
        );
        for cid in found.missing {
            self.gone(cid, &reason)?;
        }
        // The fills just learned from the listing count: compare what we hold now.
        let our_qty = self.engine.position().qty();
        let verdict = reconcile::position_verdict(
            venue_qty,
            our_qty,
            busy,
            check.seen_difference,
            check.attempt < MAX_BUSY_RETRIES,
        );
        let adopt = match verdict {
            PositionVerdict::Busy => false,
            PositionVerdict::Agree => {
                if self.engine.position_unconfirmed() {
                    // The fills since the last read are confirmed: say so to the core.
                    self.input(
                        Input::PositionSync(PositionSync {
                            symbol: self.symbol,
                            qty: venue_qty,
                            avg_price: venue_avg,
                            note: format!(
                                "account check ({}): the venue confirms our position {our_qty}",
                                check.why
                            ),
                        }),
                        None,
                        None,
                        None,
                    )?;
                }
                false
            }
            PositionVerdict::LookAgain(difference) => {
                // A fill push may simply not have arrived yet: look once more first.
                self.check_account_again(
                    check.why,
                    check.attempt + 1,
                    Duration::from_secs(1),
                    Some(difference),
                );
                return Ok(());
            }
            PositionVerdict::Adopt(difference) => {
                self.input(
                    Input::PositionSync(PositionSync {
                        symbol: self.symbol,
                        qty: venue_qty,
                        avg_price: venue_avg,
                        note: format!(
                            "account check ({}): the venue holds {venue_qty}, we held {our_qty}; the difference ({difference}) is booked at the venue's average entry price {venue_avg}, since the missed fills' prices were not received",
                            check.why,
                        ),
                    }),
                    None,
                    None,
                    None,
                )?;
                true
            }
        };
        // Last, so whoever sees the count (a test, before stopping the engine) knows all of the
        // above is journaled.
        self.metrics
            .reconciled(venue_qty.to_f64().unwrap_or(0.0), adopt);
        Ok(())
    }
}
