//! Our orders and their state machine:
//! PendingNew -> Open -> (PendingCancel) -> gone (filled, canceled or rejected).
//! An order counts toward risk exposure until the venue confirms it is gone.

use crate::event::Side;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    PendingNew,
    Open,
    PendingCancel,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub cid: u64,
    pub side: Side,
    pub level: u8,
    pub price: Decimal,
    pub qty: Decimal,
    pub filled: Decimal,
    pub state: OrderState,
}

impl Order {
    pub fn remaining(&self) -> Decimal {
        self.qty - self.filled
    }
    /// Quoting may rely on it: not on its way out.
    pub fn is_working(&self) -> bool {
        self.state != OrderState::PendingCancel
    }
}

/// What an order report did to our book of orders, for the engine's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    Known,
    /// A report for an order we do not know (placed by another session, or a late duplicate).
    Unknown,
}

#[derive(Clone, Debug, Default)]
pub struct Orders {
    live: BTreeMap<u64, Order>,
}

impl Orders {
    pub fn place(&mut self, cid: u64, side: Side, level: u8, price: Decimal, qty: Decimal) {
        self.live.insert(
            cid,
            Order {
                cid,
                side,
                level,
                price,
                qty,
                filled: Decimal::ZERO,
                state: OrderState::PendingNew,
            },
        );
    }

    pub fn get(&self, cid: u64) -> Option<&Order> {
        self.live.get(&cid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Order> {
        self.live.values()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The working order quoting `level` on `side`, if any.
    pub fn at_level(&self, side: Side, level: u8) -> Option<&Order> {
        self.live
            .values()
            .find(|o| o.side == side && o.level == level && o.is_working())
    }

    /// Remaining quantity of every order on `side` that could still fill.
    pub fn exposure(&self, side: Side) -> Decimal {
        self.live
            .values()
            .filter(|o| o.side == side)
            .map(Order::remaining)
            .sum()
    }

    pub fn mark_cancel(&mut self, cid: u64) {
        if let Some(o) = self.live.get_mut(&cid) {
            o.state = OrderState::PendingCancel;
        }
    }

    pub fn on_ack(&mut self, cid: u64) -> Report {
        match self.live.get_mut(&cid) {
            Some(o) => {
                if o.state == OrderState::PendingNew {
                    o.state = OrderState::Open;
                }
                Report::Known
            }
            None => Report::Unknown,
        }
    }

    /// Reject or cancel confirmation: the order is gone.
    pub fn on_gone(&mut self, cid: u64) -> Report {
        match self.live.remove(&cid) {
            Some(_) => Report::Known,
            None => Report::Unknown,
        }
    }

    pub fn on_fill(&mut self, cid: u64, qty: Decimal, leaves: Decimal) -> Report {
        let Some(o) = self.live.get_mut(&cid) else {
            return Report::Unknown;
        };
        o.filled += qty;
        if o.state == OrderState::PendingNew {
            o.state = OrderState::Open;
        }
        if leaves <= Decimal::ZERO || o.remaining() <= Decimal::ZERO {
            self.live.remove(&cid);
        }
        Report::Known
    }
}
