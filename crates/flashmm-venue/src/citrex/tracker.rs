//! Our orders and position at Citrex as a state machine with no I/O, shaped like quinn-proto's
//! `Connection`: the driver says what happened (`handle`, `place`, `cancel`, `stop`), asks what
//! to do (`poll_command`), when to come back (`poll_timeout`), and what it learned for the
//! core (`poll_learned`). Time is an argument, so a simulation can run it on its own clock.
//!
//! Rules it keeps:
//! - every fill once, whatever shows it: a fill push (by trade id), an order push or listing
//!   with a lower residual, or a position difference adopted after two reads;
//! - the account is read on any doubt (a reconnect, a refused cancel, an unreadable frame),
//!   periodically while orders rest or the position is unconfirmed, and again when a new doubt
//!   arises while a read is in flight;
//! - at stop nothing else is sent: cancel-all, then open orders read until the venue lists
//!   none, at most `STOP_ROUNDS` times.

use super::client::{Nonces, ProductSpec, VenueError};
use super::reconcile::{self, Ours, PositionVerdict};
use super::wire::{AccountUpdate, OrderStatus, VenueOrder, VenuePosition, WsFill};
use flashmm_core::event::{Fill, Liquidity, PlaceOrder, Side, WireAction};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Re-reads of one check because fills arrived while it was in flight; after that the orders
/// are settled and the position is left to the next check.
pub const MAX_BUSY_RETRIES: u32 = 5;
/// Cancel-alls at stop before the orders still listed are named.
pub const STOP_ROUNDS: u32 = 5;
const MS: i64 = 1_000_000;
/// A placement whose answer was lost is looked up this long after (it may still be arriving).
const LOOKUP_DELAY_NS: i64 = 500 * MS;
/// Done orders are kept this long after they were done, so a late push still finds its
/// order; then forgotten, so a day of quoting does not grow the tracker (a push for a forgotten
/// order is a fill of an unknown order, and the next account read squares the position).
const FORGET_AFTER_NS: i64 = 600_000 * MS;
/// Trade ids remembered against duplicate fill pushes.
const TRADES_REMEMBERED: usize = 100_000;

#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub product: ProductSpec,
    /// The highest nonce journaled before: every new one is above it.
    pub nonce_floor: u64,
    pub expiration_s: u64,
    /// `citrex.reconcile_interval_ms`; zero reads only on doubt.
    pub reconcile_every_ms: u64,
    /// Orders are signed and journaled, never sent; nothing is read back.
    pub dry_run: bool,
    /// `citrex.settle_ms`: how long an order request may still land after it left.
    pub settle_ms: u64,
}

/// One of our orders as we know it.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub venue_id: Option<String>,
    pub nonce: u64,
    /// What we think is left to fill.
    pub residual: Decimal,
    pub done: bool,
    cancel_wanted: bool,
    /// When it was placed, then when it was done: a done order is forgotten `FORGET_AFTER_NS`
    /// after.
    since_ns: i64,
}

/// Something for the driver to do. Requests are signed and journaled by the driver before they
/// leave; each answer comes back through `handle`.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Place {
        cid: u64,
        nonce: u64,
        expiration_ms: u64,
        order: PlaceOrder,
    },
    CancelReplace {
        old: u64,
        old_venue_id: String,
        new: u64,
        nonce: u64,
        expiration_ms: u64,
        order: PlaceOrder,
    },
    Cancel {
        cid: u64,
        venue_id: String,
    },
    /// Open orders, to find a placement whose answer was lost.
    Lookup {
        cid: u64,
        nonce: u64,
    },
    /// Open orders and positions; answered with `Event::AccountRead`.
    ReadAccount {
        read: u64,
    },
    CancelAll,
    /// Open orders at stop; answered with `Event::StopRead`.
    ReadOpenOrders,
}

/// What the venue (or the driver's attempt to reach it) said.
#[derive(Clone, Debug)]
pub enum Event {
    Placed {
        cid: u64,
        result: Result<VenueOrder, VenueError>,
    },
    Replaced {
        old: u64,
        new: u64,
        result: Result<VenueOrder, VenueError>,
    },
    Canceled {
        cid: u64,
        result: Result<(), VenueError>,
    },
    LookedUp {
        cid: u64,
        found: Result<Option<VenueOrder>, VenueError>,
    },
    Account(AccountUpdate),
    /// The account stream reconnected: pushes sent while it was away are lost.
    AccountResynced,
    /// The account stream sent something unreadable (it may have carried a fill).
    AccountDoubt,
    AccountRead {
        read: u64,
        snapshot: Result<(Vec<VenueOrder>, Vec<VenuePosition>), VenueError>,
    },
    CanceledAll(Result<(), VenueError>),
    StopRead(Result<Vec<VenueOrder>, VenueError>),
}

/// What the tracker learned, for the core (as journaled inputs) and the journal.
#[derive(Clone, Debug, PartialEq)]
pub enum Learned {
    Ack {
        cid: u64,
        venue_id: String,
    },
    /// `venue_ts_ns` is the push's own time; `pushed` says it came from the account stream.
    Fill {
        fill: Fill,
        venue_ts_ns: Option<i64>,
        pushed: bool,
    },
    Canceled {
        cid: u64,
        qty: Decimal,
        reason: String,
    },
    Rejected {
        cid: u64,
        reason: String,
    },
    /// The venue's position, confirming ours (`adopted` false) or replacing it.
    PositionSync {
        qty: Decimal,
        avg_price: Decimal,
        note: String,
        adopted: bool,
    },
    /// A note for the journal: what was tried, what failed, what a check found.
    Note {
        action: WireAction,
        cid: Option<u64>,
        nonce: Option<u64>,
        text: String,
        sent: bool,
    },
    /// A check completed; the venue's position as read.
    Reconciled {
        venue_qty: Decimal,
        adopted: bool,
    },
}

#[derive(Clone, Debug)]
struct DueRead {
    at: i64,
    why: &'static str,
    attempt: u32,
    seen: Option<Decimal>,
}

#[derive(Clone, Debug)]
struct ReadInFlight {
    id: u64,
    why: &'static str,
    attempt: u32,
    seen: Option<Decimal>,
    /// Ours the venue had acknowledged when the read was issued: only these can be missing.
    acked: BTreeSet<u64>,
    fills_at_issue: u64,
}

#[derive(Clone, Debug, PartialEq)]
enum Stop {
    CancelAll { round: u32 },
    AwaitCancelAll { round: u32 },
    ReadDue { round: u32, at: i64 },
    AwaitRead { round: u32 },
    Done(Result<String, String>),
}

pub struct Tracker {
    cfg: TrackerConfig,
    nonces: Nonces,
    orders: BTreeMap<u64, Order>,
    by_venue: BTreeMap<String, u64>,
    /// Trade ids already booked: a push sent twice is booked once (the last
    /// `TRADES_REMEMBERED`, oldest first in `trade_order`).
    seen_trades: BTreeSet<String>,
    trade_order: VecDeque<String>,
    last_forget_ns: i64,
    /// Acknowledged and not done: kept apart so the many done orders cost nothing per poll.
    resting: BTreeSet<u64>,
    /// (when, cid) in the order orders were done (dry-run orders: placed), for `forget`.
    done_queue: VecDeque<(i64, u64)>,
    /// Fills learned so far: a read in flight compares it.
    fills: u64,
    /// Fill pushes for orders the venue had not yet named to us (the push beat the answer):
    /// booked at once, and taken off the order's residual once it is named, so the order's own
    /// push does not book them again.
    unattributed: BTreeMap<String, (Decimal, i64)>,
    commands: VecDeque<Command>,
    learned: VecDeque<Learned>,
    /// Look-ups due: (at, cid, nonce, attempt).
    lookups: Vec<(i64, u64, u64, u32)>,
    /// Look-ups in flight: cid -> attempt.
    looking: BTreeMap<u64, u32>,
    /// When the last order request left: the stop's last read must come `settle_ms` after.
    last_order_ns: Option<i64>,
    stop_read_ns: i64,
    due: Option<DueRead>,
    in_flight: Option<ReadInFlight>,
    /// A doubt that arose while a read was in flight: read again once it is back.
    again: Option<&'static str>,
    next_read: u64,
    last_read_ns: i64,
    /// The engine's position, and whether fills since the last read are unconfirmed.
    position: Decimal,
    unconfirmed: bool,
    stop: Option<Stop>,
    stop_why: String,
    /// The time of the call being handled, for what it marks done.
    now_ns: i64,
}

fn micros(now_ns: i64) -> u64 {
    (now_ns.max(0) / 1_000) as u64
}

fn side_of(is_buy: bool) -> Side {
    if is_buy {
        Side::Buy
    } else {
        Side::Sell
    }
}

fn signed(side: Side, qty: Decimal) -> Decimal {
    match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    }
}

/// A placement that may have reached the venue although its answer did not.
fn outcome_unknown(e: &VenueError) -> bool {
    matches!(
        e,
        VenueError::Connection(_)
            | VenueError::Http {
                status: 500..=599,
                ..
            }
    )
}

impl Tracker {
    pub fn new(cfg: TrackerConfig, now_ns: i64) -> Tracker {
        Tracker {
            nonces: Nonces::after(cfg.nonce_floor),
            cfg,
            orders: BTreeMap::new(),
            by_venue: BTreeMap::new(),
            seen_trades: BTreeSet::new(),
            trade_order: VecDeque::new(),
            last_forget_ns: now_ns,
            resting: BTreeSet::new(),
            done_queue: VecDeque::new(),
            fills: 0,
            unattributed: BTreeMap::new(),
            commands: VecDeque::new(),
            learned: VecDeque::new(),
            lookups: Vec::new(),
            looking: BTreeMap::new(),
            last_order_ns: None,
            stop_read_ns: 0,
            due: None,
            in_flight: None,
            again: None,
            next_read: 0,
            last_read_ns: now_ns,
            position: Decimal::ZERO,
            unconfirmed: false,
            stop: None,
            stop_why: String::new(),
            now_ns,
        }
    }

    pub fn product(&self) -> &ProductSpec {
        &self.cfg.product
    }

    pub fn order(&self, cid: u64) -> Option<&Order> {
        self.orders.get(&cid)
    }

    /// The engine's position after its last step, and whether it holds fills the venue has not
    /// confirmed: the position check compares with it, and the periodic read runs while it
    /// is unconfirmed.
    pub fn engine_position(&mut self, qty: Decimal, unconfirmed: bool) {
        self.position = qty;
        self.unconfirmed = unconfirmed;
    }

    /// Whether any order of ours is acknowledged and not known to be done.
    pub fn orders_resting(&self) -> bool {
        !self.cfg.dry_run && !self.resting.is_empty()
    }

    /// Order `cid` is done: no longer resting, and forgotten in time.
    fn closed(&mut self, cid: u64) {
        self.resting.remove(&cid);
        self.done_queue.push_back((self.now_ns, cid));
    }

    fn in_doubt(&self) -> bool {
        self.orders_resting() || (!self.cfg.dry_run && self.unconfirmed)
    }

    /// The core wants this order placed, replacing `replaces` (same side and level) if given.
    pub fn place(&mut self, order: &PlaceOrder, replaces: Option<u64>, now_ns: i64) {
        self.now_ns = now_ns;
        let cid = order.cid;
        if self.stop.is_some() {
            self.learned.push_back(Learned::Rejected {
                cid,
                reason: "stopping: no new order is sent".into(),
            });
            return;
        }
        let nonce = self.nonces.next(micros(now_ns));
        let expiration_ms = micros(now_ns) / 1_000 + self.cfg.expiration_s * 1_000;
        let qty = match self.cfg.product.round(order.side, order.price, order.qty) {
            Ok((_, q)) => q,
            Err(e) => {
                let reason = e.to_string();
                self.note(
                    WireAction::Failure,
                    Some(cid),
                    Some(nonce),
                    reason.clone(),
                    false,
                );
                self.learned.push_back(Learned::Rejected { cid, reason });
                return;
            }
        };
        self.orders.insert(
            cid,
            Order {
                venue_id: None,
                nonce,
                residual: qty,
                done: false,
                cancel_wanted: false,
                since_ns: now_ns,
            },
        );
        if self.cfg.dry_run {
            // Never acknowledged, never done: forgotten in time all the same.
            self.done_queue.push_back((now_ns, cid));
        }
        let old_id = replaces.and_then(|old| {
            self.orders
                .get(&old)
                .filter(|t| !t.done)
                .and_then(|t| t.venue_id.clone())
        });
        match (replaces, old_id) {
            (Some(old), Some(old_venue_id)) => self.commands.push_back(Command::CancelReplace {
                old,
                old_venue_id,
                new: cid,
                nonce,
                expiration_ms,
                order: order.clone(),
            }),
            (replaces, _) => {
                if let Some(t) = replaces.and_then(|old| self.orders.get_mut(&old)) {
                    // Not acknowledged yet: canceled once the venue names it.
                    t.cancel_wanted = true;
                }
                self.commands.push_back(Command::Place {
                    cid,
                    nonce,
                    expiration_ms,
                    order: order.clone(),
                });
            }
        }
    }

    /// The core wants this order canceled; one still on its way is canceled once it is named.
    pub fn cancel(&mut self, cid: u64) {
        let Some(t) = self.orders.get_mut(&cid) else {
            return;
        };
        if t.done || self.stop.is_some() {
            return; // at stop the cancel-all covers it
        }
        match t.venue_id.clone() {
            Some(venue_id) => self.commands.push_back(Command::Cancel { cid, venue_id }),
            None => t.cancel_wanted = true,
        }
    }

    /// Stop: drop everything not yet sent, then cancel-all and read until none rest.
    /// `requests_in_flight`: requests were given up just now, and one may still land.
    pub fn stop(&mut self, why: &str, now_ns: i64, requests_in_flight: bool) {
        if self.stop.is_some() {
            return;
        }
        if requests_in_flight {
            self.last_order_ns = Some(self.last_order_ns.map_or(now_ns, |t| t.max(now_ns)));
        }
        self.commands.clear();
        self.lookups.clear();
        self.due = None;
        self.again = None;
        self.stop_why = why.to_string();
        if self.cfg.dry_run {
            self.commands.push_back(Command::CancelAll);
            self.stop = Some(Stop::Done(Ok(
                "dry run: the cancel-all was signed and journaled, no order was sent".into(),
            )));
        } else {
            self.stop = Some(Stop::CancelAll { round: 0 });
        }
    }

    /// `Some` once the stop is over: what it did, or the orders still resting.
    pub fn stopped(&self) -> Option<Result<String, String>> {
        match &self.stop {
            Some(Stop::Done(r)) if self.commands.is_empty() => Some(r.clone()),
            _ => None,
        }
    }

    pub fn poll_learned(&mut self) -> Option<Learned> {
        self.learned.pop_front()
    }

    pub fn poll_command(&mut self, now_ns: i64) -> Option<Command> {
        self.forget(now_ns);
        if let Some(c) = self.commands.pop_front() {
            if matches!(c, Command::Place { .. } | Command::CancelReplace { .. }) {
                self.last_order_ns = Some(now_ns);
            }
            return Some(c);
        }
        match self.stop.clone() {
            Some(Stop::CancelAll { round }) => {
                self.stop = Some(Stop::AwaitCancelAll { round });
                return Some(Command::CancelAll);
            }
            Some(Stop::ReadDue { round, at }) if at <= now_ns => {
                self.stop = Some(Stop::AwaitRead { round });
                self.stop_read_ns = now_ns;
                return Some(Command::ReadOpenOrders);
            }
            Some(_) => return None,
            None => {}
        }
        if let Some(i) = self.lookups.iter().position(|l| l.0 <= now_ns) {
            let (_, cid, nonce, attempt) = self.lookups.remove(i);
            self.looking.insert(cid, attempt);
            return Some(Command::Lookup { cid, nonce });
        }
        if self.in_flight.is_some() {
            return None;
        }
        let periodic = self.cfg.reconcile_every_ms > 0
            && self.in_doubt()
            && now_ns - self.last_read_ns >= self.cfg.reconcile_every_ms as i64 * MS;
        if self.due.is_none() && periodic {
            // Pushes can be lost without a reconnect to show it: look, rather than trust.
            self.request_read("periodic", 0, 0, None, now_ns);
        }
        let d = self.due.take_if(|d| d.at <= now_ns)?;
        self.next_read += 1;
        self.last_read_ns = now_ns;
        self.in_flight = Some(ReadInFlight {
            id: self.next_read,
            why: d.why,
            attempt: d.attempt,
            seen: d.seen,
            acked: self
                .orders
                .iter()
                .filter(|(_, t)| !t.done && t.venue_id.is_some())
                .map(|(cid, _)| *cid)
                .collect(),
            fills_at_issue: self.fills,
        });
        Some(Command::ReadAccount {
            read: self.next_read,
        })
    }

    /// Drops orders done more than `FORGET_AFTER_NS` ago, at most once a second.
    fn forget(&mut self, now_ns: i64) {
        if now_ns - self.last_forget_ns < 1_000 * MS {
            return;
        }
        self.last_forget_ns = now_ns;
        while let Some(&(at, cid)) = self.done_queue.front() {
            if now_ns - at <= FORGET_AFTER_NS {
                break;
            }
            self.done_queue.pop_front();
            if self.looking.contains_key(&cid) {
                self.done_queue.push_back((now_ns, cid)); // its look-up is still to come back
                continue;
            }
            let forget = self.orders.get(&cid).is_some_and(|t| {
                (t.done || self.cfg.dry_run) && now_ns - t.since_ns > FORGET_AFTER_NS
            });
            if forget {
                if let Some(id) = self.orders.remove(&cid).and_then(|t| t.venue_id) {
                    self.by_venue.remove(&id);
                }
                self.resting.remove(&cid);
            }
        }
        // Fills of orders never named to us (another session's, or forgotten ones).
        self.unattributed
            .retain(|_, (_, since)| now_ns - *since <= FORGET_AFTER_NS);
    }

    /// How many orders the tracker holds (done ones until they are forgotten).
    pub fn orders_held(&self) -> usize {
        self.orders.len()
    }

    /// When `poll_command` may next have something without another event.
    pub fn poll_timeout(&self) -> Option<i64> {
        if !self.commands.is_empty() {
            return Some(i64::MIN);
        }
        if let Some(stop) = &self.stop {
            return match stop {
                Stop::CancelAll { .. } => Some(i64::MIN),
                Stop::ReadDue { at, .. } => Some(*at),
                _ => None,
            };
        }
        let mut t = self.lookups.iter().map(|l| l.0).min();
        if self.in_flight.is_none() {
            let read = self.due.as_ref().map(|d| d.at).or_else(|| {
                (self.cfg.reconcile_every_ms > 0 && self.in_doubt())
                    .then(|| self.last_read_ns + self.cfg.reconcile_every_ms as i64 * MS)
            });
            t = match (t, read) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        t
    }

    pub fn handle(&mut self, ev: Event, now_ns: i64) {
        self.now_ns = now_ns;
        match ev {
            Event::Placed { cid, result } => self.placed(cid, result, now_ns),
            Event::Replaced { old, new, result } => match result {
                Ok(o) => {
                    self.gone(old, "replaced");
                    self.placed(new, Ok(o), now_ns);
                }
                Err(e) if outcome_unknown(&e) => {
                    // Either both happened or neither: find the new one by its nonce, cancel
                    // the old one plainly (refused if it went), and read the account.
                    self.placed(new, Err(e), now_ns);
                    self.cancel(old);
                    self.request_read("a cancel-and-replace's answer was lost", 0, 0, None, now_ns);
                }
                Err(e) => {
                    // Refused: the new one was not placed, and whether the old one went is not
                    // certain; cancel it plainly, and a read or a push settles it either way.
                    self.rejected(new, e.to_string());
                    self.cancel(old);
                }
            },
            Event::LookedUp { cid, found } => match (found, self.looking.remove(&cid)) {
                (Ok(Some(o)), _) => self.placed(cid, Ok(o), now_ns),
                (Ok(None), Some(0)) => {
                    // It may still be on its way: look once more when it must have landed.
                    if let Some(nonce) = self.orders.get(&cid).map(|t| t.nonce) {
                        let at = now_ns + self.cfg.settle_ms as i64 * MS;
                        self.lookups.push((at, cid, nonce, 1));
                    }
                }
                (Ok(None), _) => self.rejected(
                    cid,
                    "the order is not at the venue after an unknown outcome".into(),
                ),
                (Err(e), _) => self.rejected(
                    cid,
                    format!("could not confirm the order after an unknown outcome: {e}"),
                ),
            },
            Event::Canceled { cid, result } => match result {
                Ok(()) => self.gone(cid, "canceled"),
                Err(e) => {
                    let nonce = self.orders.get(&cid).map(|t| t.nonce);
                    self.note(
                        WireAction::Failure,
                        Some(cid),
                        nonce,
                        format!("cancel failed: {e}; reading the venue's orders and position"),
                        true,
                    );
                    // Not in the state we think (filled, already gone): read rather than wait
                    // for a push that may never come.
                    self.request_read("a cancel was refused", 0, 0, None, now_ns);
                }
            },
            Event::Account(update) => self.on_account(update, now_ns),
            Event::AccountResynced => {
                self.note(
                    WireAction::Reconcile,
                    None,
                    None,
                    "account stream reconnected; updates may have been missed: reading the venue's orders and position".into(),
                    false,
                );
                self.request_read("the account stream reconnected", 0, 0, None, now_ns);
            }
            Event::AccountDoubt => {
                self.request_read("an account frame could not be read", 0, 0, None, now_ns)
            }
            Event::AccountRead { read, snapshot } => self.on_read(read, snapshot, now_ns),
            Event::CanceledAll(result) => self.on_stop_cancel_all(result, now_ns),
            Event::StopRead(result) => self.on_stop_read(result),
        }
    }

    fn note(
        &mut self,
        action: WireAction,
        cid: Option<u64>,
        nonce: Option<u64>,
        text: String,
        sent: bool,
    ) {
        self.learned.push_back(Learned::Note {
            action,
            cid,
            nonce,
            text,
            sent,
        });
    }

    /// Asks for an account read `delay_ns` from now; an earlier one already due stands, and
    /// one asked while a read is in flight follows it.
    fn request_read(
        &mut self,
        why: &'static str,
        attempt: u32,
        delay_ns: i64,
        seen: Option<Decimal>,
        now_ns: i64,
    ) {
        if self.cfg.dry_run || self.stop.is_some() {
            return;
        }
        if self.in_flight.is_some() && attempt == 0 {
            self.again.get_or_insert(why);
            return;
        }
        let at = now_ns + delay_ns;
        if self.due.as_ref().is_none_or(|d| at < d.at) {
            self.due = Some(DueRead {
                at,
                why,
                attempt,
                seen,
            });
        }
    }

    fn placed(&mut self, cid: u64, result: Result<VenueOrder, VenueError>, now_ns: i64) {
        match result {
            Ok(o) => {
                let Some(t) = self.orders.get_mut(&cid) else {
                    return;
                };
                if t.venue_id.is_some() || t.done {
                    return;
                }
                t.venue_id = Some(o.id.clone());
                let cancel_now = t.cancel_wanted;
                if let Some((q, _)) = self.unattributed.remove(&o.id) {
                    t.residual = (t.residual - q).max(Decimal::ZERO);
                }
                self.by_venue.insert(o.id.clone(), cid);
                self.resting.insert(cid);
                self.learned.push_back(Learned::Ack {
                    cid,
                    venue_id: o.id.clone(),
                });
                if cancel_now {
                    self.commands.push_back(Command::Cancel {
                        cid,
                        venue_id: o.id,
                    });
                }
            }
            Err(e) if outcome_unknown(&e) => {
                let Some(nonce) = self.orders.get(&cid).map(|t| t.nonce) else {
                    return;
                };
                self.note(
                    WireAction::Failure,
                    Some(cid),
                    Some(nonce),
                    format!("outcome unknown ({e}); checking open orders"),
                    true,
                );
                self.lookups.push((now_ns + LOOKUP_DELAY_NS, cid, nonce, 0));
            }
            Err(e) => self.rejected(cid, e.to_string()),
        }
    }

    fn rejected(&mut self, cid: u64, reason: String) {
        if let Some(t) = self.orders.get_mut(&cid) {
            if t.done {
                return;
            }
            t.done = true;
            t.since_ns = self.now_ns;
            self.closed(cid);
        }
        self.learned.push_back(Learned::Rejected { cid, reason });
    }

    fn gone(&mut self, cid: u64, reason: &str) {
        let Some(t) = self.orders.get_mut(&cid) else {
            return;
        };
        if t.done {
            return;
        }
        t.done = true;
        t.since_ns = self.now_ns;
        let qty = t.residual;
        self.closed(cid);
        self.learned.push_back(Learned::Canceled {
            cid,
            qty,
            reason: reason.into(),
        });
    }

    /// The venue says order `cid` has `leaves` left: how much filled since we last knew (zero if
    /// nothing new); the new residual is remembered.
    fn learn_residual(&mut self, cid: u64, leaves: Decimal) -> Decimal {
        let Some(t) = self.orders.get_mut(&cid) else {
            return Decimal::ZERO;
        };
        let filled = (t.residual - leaves).max(Decimal::ZERO);
        if leaves < t.residual {
            t.residual = leaves.max(Decimal::ZERO);
        }
        let done_now = t.residual <= Decimal::ZERO && !t.done;
        if done_now {
            t.done = true;
            t.since_ns = self.now_ns;
            self.closed(cid);
        }
        if filled > Decimal::ZERO {
            self.fills += 1;
        }
        filled
    }

    /// Our order as the venue lists it: some venues show a fill only as a lower residual. What
    /// filled since we last knew is booked at the order's price (a resting order fills at its
    /// own price), once. Returns the signed quantity booked.
    fn residual_fill(&mut self, cid: u64, o: &VenueOrder, pushed: bool) -> Decimal {
        let (price, leaves) = (o.price.to_decimal(), o.residual_quantity.to_decimal());
        let filled = self.learn_residual(cid, leaves);
        if filled <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        let side = side_of(o.is_buy);
        self.learned.push_back(Learned::Fill {
            fill: Fill {
                cid,
                side,
                price,
                qty: filled,
                liquidity: Liquidity::Maker,
                fee: filled * price * self.cfg.product.maker_fee,
                leaves_qty: leaves.max(Decimal::ZERO),
            },
            venue_ts_ns: None,
            pushed,
        });
        signed(side, filled)
    }

    /// Which of our orders the venue's order is, by its id or our nonce.
    fn cid_of(&self, o: &VenueOrder) -> Option<u64> {
        self.by_venue.get(&o.id).copied().or_else(|| {
            self.orders
                .iter()
                .find(|(_, t)| t.nonce == o.nonce)
                .map(|(cid, _)| *cid)
        })
    }

    fn on_account(&mut self, update: AccountUpdate, now_ns: i64) {
        match update {
            AccountUpdate::Order(o) => {
                if o.product_id != self.cfg.product.id {
                    return;
                }
                let Some(cid) = self.cid_of(&o) else {
                    return;
                };
                if matches!(o.status, OrderStatus::Open | OrderStatus::Pending) {
                    self.zombie(cid, &o);
                }
                if !matches!(o.status, OrderStatus::Rejected) {
                    self.placed(cid, Ok(o.clone()), now_ns);
                }
                self.residual_fill(cid, &o, true);
                match o.status {
                    OrderStatus::Cancelled => self.gone(cid, "canceled"),
                    OrderStatus::Expired => self.gone(cid, "expired"),
                    OrderStatus::Rejected => self.rejected(cid, "rejected by the venue".into()),
                    OrderStatus::Open | OrderStatus::Pending | OrderStatus::Filled => {}
                }
            }
            AccountUpdate::Fill(f) => self.on_fill_push(f),
            AccountUpdate::Position(_) | AccountUpdate::Balance(_) => {}
        }
    }

    /// An order we closed as never placed (its answer lost, not found by its nonce) is resting
    /// after all: a request that landed late. Name it and cancel it; its fills still count.
    fn zombie(&mut self, cid: u64, o: &VenueOrder) {
        let Some(t) = self.orders.get_mut(&cid) else {
            return;
        };
        if !t.done || t.venue_id.is_some() || self.stop.is_some() {
            return;
        }
        t.venue_id = Some(o.id.clone());
        if let Some((q, _)) = self.unattributed.remove(&o.id) {
            t.residual = (t.residual - q).max(Decimal::ZERO);
        }
        let nonce = t.nonce;
        self.by_venue.insert(o.id.clone(), cid);
        self.note(
            WireAction::Reconcile,
            Some(cid),
            Some(nonce),
            format!(
                "order {} (nonce {nonce}) is resting although it was not found after its answer was lost: canceling it",
                o.id
            ),
            false,
        );
        self.commands.push_back(Command::Cancel {
            cid,
            venue_id: o.id.clone(),
        });
    }

    fn on_fill_push(&mut self, f: WsFill) {
        if f.product_id != self.cfg.product.id || !self.seen_trades.insert(f.trade_id.clone()) {
            return; // another product's, or the same push again
        }
        self.trade_order.push_back(f.trade_id.clone());
        if self.trade_order.len() > TRADES_REMEMBERED {
            if let Some(old) = self.trade_order.pop_front() {
                self.seen_trades.remove(&old);
            }
        }
        let cid = self.by_venue.get(&f.order_id).copied().unwrap_or(0);
        let leaves = f.residual_quantity.to_decimal();
        // Each fill once: what an order push already showed is not booked again.
        let qty = if self.orders.contains_key(&cid) {
            self.learn_residual(cid, leaves)
        } else {
            self.fills += 1;
            let q = f.quantity.to_decimal();
            let held = self
                .unattributed
                .entry(f.order_id.clone())
                .or_insert((Decimal::ZERO, self.now_ns));
            held.0 += q;
            q
        };
        if qty <= Decimal::ZERO {
            return;
        }
        self.learned.push_back(Learned::Fill {
            fill: Fill {
                cid,
                side: side_of(f.is_buy),
                price: f.price.to_decimal(),
                qty,
                liquidity: if f.is_maker {
                    Liquidity::Maker
                } else {
                    Liquidity::Taker
                },
                fee: f.fee.to_decimal(),
                leaves_qty: leaves.max(Decimal::ZERO),
            },
            venue_ts_ns: Some(f.created_at as i64 * MS),
            pushed: true,
        });
    }

    fn on_read(
        &mut self,
        read: u64,
        snapshot: Result<(Vec<VenueOrder>, Vec<VenuePosition>), VenueError>,
        now_ns: i64,
    ) {
        let Some(check) = self.in_flight.take_if(|c| c.id == read) else {
            return; // not the read in flight
        };
        if let Some(why) = self.again.take() {
            self.request_read(why, 0, 0, None, now_ns);
        }
        let (open, positions) = match snapshot {
            Ok(s) => s,
            Err(e) => {
                self.note(
                    WireAction::Failure,
                    None,
                    None,
                    format!(
                        "account check ({}) failed ({e}); retrying in 1 s (attempt {})",
                        check.why,
                        check.attempt + 1
                    ),
                    true,
                );
                self.request_read(check.why, check.attempt + 1, 1_000 * MS, None, now_ns);
                return;
            }
        };
        // Orders need no such care: only those acknowledged before the read can be missing.
        let busy = self.fills != check.fills_at_issue;
        if busy && check.attempt < MAX_BUSY_RETRIES {
            // A fill arrived while the snapshot was read: it may or may not be in its position.
            self.request_read(check.why, check.attempt + 1, 200 * MS, None, now_ns);
            return;
        }
        let product = self.cfg.product.id;
        let listed: Vec<VenueOrder> = open
            .into_iter()
            .filter(|o| o.product_id == product)
            .collect();
        // Ours listed by nonce before the venue's answer named them: name them now, which also
        // takes off what their fill pushes already booked, so the listing books only the rest.
        let unnamed: Vec<(u64, VenueOrder)> = listed
            .iter()
            .filter_map(|l| {
                let (cid, _) = self
                    .orders
                    .iter()
                    .find(|(_, t)| !t.done && t.venue_id.is_none() && t.nonce == l.nonce)?;
                Some((*cid, l.clone()))
            })
            .collect();
        for (cid, l) in unnamed {
            self.placed(cid, Ok(l), now_ns);
        }
        let ours: Vec<Ours> = self
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
        for o in &ours {
            if let Some(l) = reconcile::listing_of(o, &listed) {
                let l = l.clone();
                self.zombie(o.cid, &l);
            }
        }
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
            self.position,
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
        self.note(WireAction::Reconcile, None, None, summary, false);
        let mut booked = Decimal::ZERO;
        for (cid, _, _) in &found.filled {
            let listing = ours
                .iter()
                .find(|o| o.cid == *cid)
                .and_then(|o| reconcile::listing_of(o, &listed))
                .cloned();
            if let Some(l) = listing {
                booked += self.residual_fill(*cid, &l, false);
            }
        }
        let reason = format!(
            "not at the venue when its account was read ({}): filled or canceled unseen",
            check.why
        );
        for cid in found.missing {
            self.gone(cid, &reason);
        }
        // The fills just learned from the listing count: compare what we will hold.
        let our_qty = self.position + booked;
        let verdict = reconcile::position_verdict(
            venue_qty,
            our_qty,
            busy,
            check.seen,
            check.attempt < MAX_BUSY_RETRIES,
        );
        let adopted = match verdict {
            PositionVerdict::Busy => false,
            PositionVerdict::Agree => {
                if self.unconfirmed || !booked.is_zero() {
                    // The fills since the last read are confirmed: say so to the core.
                    self.learned.push_back(Learned::PositionSync {
                        qty: venue_qty,
                        avg_price: venue_avg,
                        note: format!(
                            "account check ({}): the venue confirms our position {our_qty}",
                            check.why
                        ),
                        adopted: false,
                    });
                }
                false
            }
            PositionVerdict::LookAgain(difference) => {
                // A fill push may simply not have arrived yet: look once more first.
                self.request_read(
                    check.why,
                    check.attempt + 1,
                    1_000 * MS,
                    Some(difference),
                    now_ns,
                );
                return;
            }
            PositionVerdict::Adopt(difference) => {
                self.learned.push_back(Learned::PositionSync {
                    qty: venue_qty,
                    avg_price: venue_avg,
                    note: format!(
                        "account check ({}): the venue holds {venue_qty}, we held {our_qty}; the difference ({difference}) is booked at the venue's average entry price {venue_avg}, since the missed fills' prices were not received",
                        check.why,
                    ),
                    adopted: true,
                });
                true
            }
        };
        self.learned
            .push_back(Learned::Reconciled { venue_qty, adopted });
    }

    fn on_stop_cancel_all(&mut self, result: Result<(), VenueError>, now_ns: i64) {
        let Some(Stop::AwaitCancelAll { round }) = self.stop else {
            return;
        };
        if let Err(e) = result {
            let text = format!("cancel-all ({}) failed: {e}", self.stop_why);
            self.note(WireAction::Failure, None, None, text, true);
        }
        // A request aborted at stop may still reach the venue an instant later: wait, then look.
        let at = now_ns + 200 * MS * (round as i64 + 1);
        self.stop = Some(Stop::ReadDue { round, at });
    }

    fn on_stop_read(&mut self, result: Result<Vec<VenueOrder>, VenueError>) {
        let Some(Stop::AwaitRead { round }) = self.stop else {
            return;
        };
        let product = self.cfg.product.id;
        let resting: Vec<VenueOrder> = match result {
            Ok(open) => open
                .into_iter()
                .filter(|o| o.product_id == product)
                .collect(),
            Err(e) => {
                let text = format!("stop: reading open orders failed ({e})");
                self.note(WireAction::Failure, None, None, text, true);
                self.stop = Some(if round + 1 < STOP_ROUNDS {
                    Stop::CancelAll { round: round + 1 }
                } else {
                    Stop::Done(Err("could not confirm that no order rests at the venue: GET /openOrders kept failing; check the account".into()))
                });
                return;
            }
        };
        if resting.is_empty() {
            let settled = self
                .last_order_ns
                .map_or(i64::MIN, |t| t + self.cfg.settle_ms as i64 * MS);
            if self.stop_read_ns < settled {
                // A request that left just before may still land: look again once it cannot.
                self.stop = Some(Stop::ReadDue { round, at: settled });
                return;
            }
            self.stop = Some(Stop::Done(Ok(
                "open orders canceled; the venue lists none".into()
            )));
            return;
        }
        let text = format!(
            "stop: {} orders still resting after cancel-all {}",
            resting.len(),
            round + 1
        );
        self.note(WireAction::Reconcile, None, None, text, false);
        if round + 1 < STOP_ROUNDS {
            self.stop = Some(Stop::CancelAll { round: round + 1 });
            return;
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
        self.stop = Some(Stop::Done(Err(format!(
            "orders still resting at the venue after {STOP_ROUNDS} cancel-alls, cancel them by hand: {}",
            names.join(", ")
        ))));
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
