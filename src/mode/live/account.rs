//! Our account at the venue, squared with the journal. At start, orders left resting are
//! canceled and the venue's position adopted; at stop, everything is canceled. After the account
//! stream reconnects (updates sent while it was away are lost), the venue's open orders and
//! position are read back over REST and compared with ours. Every difference becomes a journaled
//! input, so replay sees the same corrections.

use super::tracker::Reply;
use super::{Live, LiveError};
use flashmm_core::event::{Input, PositionSync, WireAction};
use flashmm_venue::citrex::client::VenueError;
use flashmm_venue::citrex::wire::{VenueOrder, VenuePosition};
use std::collections::BTreeSet;
use std::time::Duration;

/// How many times a check is re-read because fills arrived while it was in flight; after that
/// the orders are settled and the position is left to the next reconnect.
const MAX_BUSY_RETRIES: u32 = 5;

pub(super) struct AccountCheck {
    /// Our orders the venue had acknowledged when the check was issued: only these can be
    /// missing from its answer (one placed since may not have reached it yet).
    pub acked: BTreeSet<u64>,
    /// Fills read from the account stream before the check was issued.
    pub fills_at_issue: u64,
    pub attempt: u32,
    pub snapshot: Result<(Vec<VenueOrder>, Vec<VenuePosition>), VenueError>,
}

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
        self.check_account(0, Duration::ZERO);
        Ok(())
    }

    /// Reads the venue's open orders and positions in the background; the answer comes back as
    /// `Reply::AccountChecked`.
    pub(super) fn check_account(&mut self, attempt: u32, delay: Duration) {
        let Some(c) = self.citrex.as_ref() else {
            return;
        };
        if c.dry_run {
            return;
        }
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
                    acked,
                    fills_at_issue,
                    attempt,
                    snapshot,
                })))
                .await;
        });
    }

    pub(super) fn on_account_check(&mut self, check: AccountCheck) -> Result<(), LiveError> {
        let (open, positions) = match check.snapshot {
            Ok(s) => s,
            Err(e) => {
                self.wire(
                    WireAction::Failure,
                    None,
                    None,
                    format!(
                        "account check after a reconnect failed ({e}); retrying in 1 s (attempt {})",
                        check.attempt + 1
                    ),
                    true,
                    None,
                )?;
                self.check_account(check.attempt + 1, Duration::from_secs(1));
                return Ok(());
            }
        };
        // Orders need no such care: only those acknowledged before the read can be missing.
        let busy = self.account_fills != check.fills_at_issue;
        if busy && check.attempt < MAX_BUSY_RETRIES {
            // A fill arrived while the snapshot was read: it may or may not be in its position.
            self.check_account(check.attempt + 1, Duration::from_millis(200));
            return Ok(());
        }
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let product = c.product.id;
        let ours: Vec<&VenueOrder> = open.iter().filter(|o| o.product_id == product).collect();
        let venue_ids: BTreeSet<&str> = ours.iter().map(|o| o.id.as_str()).collect();
        let nonces: BTreeSet<u64> = ours.iter().map(|o| o.nonce).collect();
        let missing: Vec<u64> = c
            .orders
            .iter()
            .filter(|(cid, t)| !t.done && check.acked.contains(cid))
            .filter(|(_, t)| {
                !t.venue_id
                    .as_deref()
                    .is_some_and(|id| venue_ids.contains(id))
                    && !nonces.contains(&t.nonce)
            })
            .map(|(cid, _)| *cid)
            .collect();
        let known: BTreeSet<u64> = c.orders.values().map(|t| t.nonce).collect();
        let strangers: Vec<String> = ours
            .iter()
            .filter(|o| !known.contains(&o.nonce))
            .map(|o| format!("{} (nonce {})", o.id, o.nonce))
            .collect();
        let (venue_qty, venue_avg) = positions
            .iter()
            .find(|p| p.product_id == product)
            .map(|p| (p.quantity.to_decimal(), p.avg_entry_price.to_decimal()))
            .unwrap_or_default();
        let our_qty = self.engine.position().qty();
        let mut summary = format!(
            "account check after a reconnect: {} open at the venue, {} of ours missing, venue position {venue_qty} (ours {our_qty})",
            ours.len(),
            missing.len(),
        );
        if !strangers.is_empty() {
            summary.push_str(&format!(
                "; orders we did not place are resting on this account, left alone: {}",
                strangers.join(", ")
            ));
        }
        if busy {
            summary.push_str("; fills kept arriving, the position is not corrected this time");
        }
        self.wire(WireAction::Reconcile, None, None, summary, false, None)?;
        for cid in missing {
            self.gone(
                cid,
                "not at the venue after the account stream reconnected: filled or canceled while away",
            )?;
        }
        if !busy && venue_qty != our_qty {
            self.input(
                Input::PositionSync(PositionSync {
                    symbol: self.symbol,
                    qty: venue_qty,
                    avg_price: venue_avg,
                    note: format!(
                        "account stream reconnected: the venue holds {venue_qty}, we held {our_qty}; the difference ({}) is booked at the venue's average entry price {venue_avg}, since the missed fills' prices were not received",
                        venue_qty - our_qty
                    ),
                }),
                None,
                None,
                None,
            )?;
        }
        // Last, so whoever sees the count (a test, before stopping the engine) knows all of the
        // above is journaled.
        self.metrics.account_check();
        Ok(())
    }
}
