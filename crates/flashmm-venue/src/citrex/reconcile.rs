//! Squaring what we believe about our account with what the venue lists: pure functions, no
//! I/O, so the rules can be stated and checked by property tests. The live driver reads the
//! venue, calls these, and journals what they find.
//!
//! Invariants (`tests` checks each over random accounts):
//! - an order is closed as missing only if the venue had acknowledged it before the read, it is
//!   not known to be done, and the venue lists it neither by id nor by nonce;
//! - a listed order of ours is never closed, and its fill is what its residual went down by
//!   (never negative, never more than we thought was left);
//! - a listed order that is none of ours (by id or nonce) is a stranger, left alone;
//! - a position difference is adopted only when no fill arrived during the read and a second
//!   read saw the same difference (or the retries ran out); no difference is never adopted.

use super::wire::VenueOrder;
use rust_decimal::Decimal;

/// One of our orders as we last knew it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ours {
    pub cid: u64,
    pub venue_id: Option<String>,
    pub nonce: u64,
    /// What we think is left to fill.
    pub residual: Decimal,
    pub done: bool,
    /// The venue had acknowledged it when the read was issued: only such an order can be
    /// missing from the answer (one placed since may not have reached it yet).
    pub acked_at_issue: bool,
}

/// What a listing of open orders says about ours.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Findings {
    /// Ours, acknowledged and not done, that the venue no longer lists: filled or canceled unseen.
    pub missing: Vec<u64>,
    /// Ours that the venue lists with less left than we thought: (cid, filled since, left now).
    pub filled: Vec<(u64, Decimal, Decimal)>,
    /// Listed orders on the account that we did not place: "id (nonce n)".
    pub strangers: Vec<String>,
}

/// Compares our orders with the venue's listing of open orders (already for our product).
pub fn compare(ours: &[Ours], listed: &[VenueOrder]) -> Findings {
    let missing = ours
        .iter()
        .filter(|o| o.acked_at_issue && !o.done && listing_of(o, listed).is_none())
        .map(|o| o.cid)
        .collect();
    let filled = listed
        .iter()
        .filter_map(|l| {
            let o = ours.iter().find(|o| is_ours(o, l))?;
            let left = l.residual_quantity.to_decimal();
            (left < o.residual).then(|| (o.cid, o.residual - left.max(Decimal::ZERO), left))
        })
        .collect();
    let strangers = listed
        .iter()
        .filter(|l| !ours.iter().any(|o| is_ours(o, l)))
        .map(|l| format!("{} (nonce {})", l.id, l.nonce))
        .collect();
    Findings {
        missing,
        filled,
        strangers,
    }
}

/// The venue lists one of our orders under the id it gave it, or under our nonce (an order
/// whose acknowledgement we never saw has only the nonce).
fn is_ours(o: &Ours, l: &VenueOrder) -> bool {
    o.venue_id.as_deref() == Some(l.id.as_str()) || o.nonce == l.nonce
}

/// Our order as the venue lists it, if it does.
pub fn listing_of<'a>(o: &Ours, listed: &'a [VenueOrder]) -> Option<&'a VenueOrder> {
    listed.iter().find(|l| is_ours(o, l))
}

/// What to do about the position after a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionVerdict {
    /// The venue and we agree.
    Agree,
    /// Fills arrived while the read was in flight: its position may or may not hold them.
    Busy,
    /// A difference seen for the first time: read again before believing it.
    LookAgain(Decimal),
    /// The same difference twice, no fill between (or no retries left): adopt the venue's.
    Adopt(Decimal),
}

/// `seen` is the difference the previous read of this check saw; `retries_left` whether
/// another read may still be made.
pub fn position_verdict(
    venue: Decimal,
    ours: Decimal,
    busy: bool,
    seen: Option<Decimal>,
    retries_left: bool,
) -> PositionVerdict {
    let difference = venue - ours;
    if difference.is_zero() {
        PositionVerdict::Agree
    } else if busy {
        PositionVerdict::Busy
    } else if seen != Some(difference) && retries_left {
        PositionVerdict::LookAgain(difference)
    } else {
        PositionVerdict::Adopt(difference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::citrex::wire::{OrderStatus, E18};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn listed(id: &str, nonce: u64, left: Decimal) -> VenueOrder {
        VenueOrder {
            id: id.into(),
            account: "0x1".into(),
            sub_account_id: 1,
            product_id: 1003,
            product_symbol: "btcperp".into(),
            is_buy: true,
            order_type: 1,
            time_in_force: 0,
            price: E18(60_000_000_000_000_000_000_000),
            quantity: E18::from_decimal(Decimal::ONE).unwrap_or_default(),
            residual_quantity: E18::from_decimal(left).unwrap_or_default(),
            nonce,
            expiry: 0,
            status: OrderStatus::Open,
            created_at: 0,
        }
    }

    fn order() -> impl Strategy<Value = (Ours, Option<Decimal>)> {
        // (our order, what the venue lists of it: nothing, or its residual in thousandths)
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0u32..=1000,
            prop::option::of(0u32..=1200),
            any::<bool>(),
        )
            .prop_map(|(has_id, done, acked, left, venue_left, by_nonce)| {
                (
                    Ours {
                        cid: 0,
                        venue_id: has_id.then(String::new),
                        nonce: 0,
                        residual: Decimal::new(left as i64, 3),
                        done,
                        acked_at_issue: acked,
                    },
                    venue_left
                        .map(|v| Decimal::new(v as i64, 3))
                        .filter(|_| has_id || by_nonce),
                )
            })
    }

    proptest! {
        #[test]
        fn the_findings_keep_the_invariants(
            orders in prop::collection::vec(order(), 0..12),
            strangers in 0usize..3,
        ) {
            let mut ours = Vec::new();
            let mut list = Vec::new();
            for (i, (mut o, venue)) in orders.into_iter().enumerate() {
                o.cid = 100 + i as u64;
                o.nonce = 1_000 + i as u64;
                let id = format!("0x{i}");
                if o.venue_id.is_some() {
                    o.venue_id = Some(id.clone());
                }
                if let Some(left) = venue {
                    // Listed by id when we know it, else found by our nonce.
                    let listed_id = if o.venue_id.is_some() { id } else { format!("0xv{i}") };
                    list.push(listed(&listed_id, o.nonce, left));
                }
                ours.push(o);
            }
            for k in 0..strangers {
                list.push(listed(&format!("0xs{k}"), 9_000 + k as u64, Decimal::ONE));
            }
            let f = compare(&ours, &list);
            let listed_nonces: BTreeSet<u64> = list.iter().map(|l| l.nonce).collect();
            for o in &ours {
                let is_listed = listed_nonces.contains(&o.nonce);
                let should_miss = o.acked_at_issue && !o.done && !is_listed;
                prop_assert_eq!(f.missing.contains(&o.cid), should_miss, "{:?}", o);
                let fill = f.filled.iter().find(|(c, _, _)| *c == o.cid);
                if let Some((_, q, left)) = fill {
                    prop_assert!(is_listed);
                    prop_assert!(*q > Decimal::ZERO && *q <= o.residual);
                    prop_assert_eq!(*q, o.residual - *left);
                } else if is_listed {
                    let l = list.iter().find(|l| l.nonce == o.nonce).map(|l| l.residual_quantity.to_decimal());
                    prop_assert!(l >= Some(o.residual), "a lower residual must be a fill");
                }
            }
            prop_assert_eq!(f.strangers.len(), strangers);
        }

        #[test]
        fn a_position_is_adopted_only_when_seen_twice_quietly(
            venue in -50i64..50,
            ours in -50i64..50,
            busy in any::<bool>(),
            seen in prop::option::of(-100i64..100),
            retries_left in any::<bool>(),
        ) {
            let (v, o) = (Decimal::new(venue, 3), Decimal::new(ours, 3));
            let seen = seen.map(|s| Decimal::new(s, 3));
            let verdict = position_verdict(v, o, busy, seen, retries_left);
            let d = v - o;
            match verdict {
                PositionVerdict::Agree => prop_assert!(d.is_zero()),
                PositionVerdict::Busy => prop_assert!(busy && !d.is_zero()),
                PositionVerdict::LookAgain(x) => {
                    prop_assert!(!busy && retries_left && seen != Some(d));
                    prop_assert_eq!(x, d);
                }
                PositionVerdict::Adopt(x) => {
                    prop_assert!(!busy && !d.is_zero());
                    prop_assert!(seen == Some(d) || !retries_left);
                    prop_assert_eq!(x, d);
                }
            }
        }
    }

    #[test]
    fn a_listed_order_is_never_missing_whether_found_by_id_or_nonce() {
        let mine = |cid, id: Option<&str>, nonce| Ours {
            cid,
            venue_id: id.map(str::to_string),
            nonce,
            residual: Decimal::ONE,
            done: false,
            acked_at_issue: true,
        };
        let ours = [
            mine(1, Some("0xa"), 10),
            mine(2, None, 20),
            mine(3, Some("0xc"), 30),
        ];
        let list = [
            listed("0xa", 999, Decimal::ONE),
            listed("0xb", 20, Decimal::new(4, 1)),
            listed("0xz", 77, Decimal::ONE),
        ];
        let f = compare(&ours, &list);
        assert_eq!(f.missing, vec![3]);
        assert_eq!(f.filled, vec![(2, Decimal::new(6, 1), Decimal::new(4, 1))]);
        assert_eq!(f.strangers, vec!["0xz (nonce 77)".to_string()]);
    }
}
