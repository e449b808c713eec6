//! The cause chain of a fill, walked through the journal: fill -> place_order (its `cause`) ->
//! quote_decision (the order's `cause`) -> the entry that triggered the decision (its `cause`);
//! and from the decision to the prediction it used: `prediction.response_seq` ->
//! prediction_response -> prediction_request (the response's `cause`).

use crate::ReportError;
use flashmm_core::event::{
    Body, Entry, Input, Output, PlaceOrder, PredictionRequest, PredictionResponse, QuoteDecision,
};
use flashmm_journal::Journal;
use std::collections::BTreeMap;

/// One entry on the chain, and the field that led to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub seq: u64,
    pub kind: &'static str,
    pub ts_ns: i64,
    /// `fill` for the fill itself, `cause` for `Entry.cause`, `prediction.response_seq` for the
    /// decision's prediction.
    pub via: &'static str,
    /// The seq of the entry this link was reached from.
    pub from: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct Chain {
    pub links: Vec<Link>,
    pub order: Option<(u64, i64, PlaceOrder)>,
    pub decision: Option<(u64, i64, QuoteDecision)>,
    /// What made the core decide: a market entry, a fill, a timer, a prediction...
    pub trigger: Option<Link>,
    pub response: Option<(u64, i64, PredictionResponse)>,
    pub request: Option<(u64, i64, PredictionRequest)>,
    /// Links that could not be followed, in words.
    pub broken: Vec<String>,
}

/// Entries read while walking chains; many fills share a decision or a prediction.
#[derive(Default)]
pub struct Cache {
    entries: BTreeMap<u64, Option<Entry>>,
}

impl Cache {
    fn get(&mut self, journal: &Journal, seq: u64) -> Result<Option<Entry>, ReportError> {
        if let Some(e) = self.entries.get(&seq) {
            return Ok(e.clone());
        }
        let e = journal.get(seq)?;
        self.entries.insert(seq, e.clone());
        Ok(e)
    }
}

fn link(e: &Entry, via: &'static str, from: Option<u64>) -> Link {
    Link {
        seq: e.seq,
        kind: e.body.kind(),
        ts_ns: e.ts_ns,
        via,
        from,
    }
}

/// Follows `seq`; a missing entry is noted, not an error.
fn follow(
    journal: &Journal,
    cache: &mut Cache,
    chain: &mut Chain,
    seq: u64,
    via: &'static str,
    from: u64,
) -> Result<Option<Entry>, ReportError> {
    match cache.get(journal, seq)? {
        Some(e) => {
            chain.links.push(link(&e, via, Some(from)));
            Ok(Some(e))
        }
        None => {
            chain.broken.push(format!(
                "seq {from} points to seq {seq} through {via}, which is not in this journal"
            ));
            Ok(None)
        }
    }
}

pub fn walk(journal: &Journal, cache: &mut Cache, fill: &Entry) -> Result<Chain, ReportError> {
    let mut chain = Chain::default();
    chain.links.push(link(fill, "fill", None));
    let Some(order_seq) = fill.cause else {
        chain
            .broken
            .push(format!("fill {} names no cause", fill.seq));
        return Ok(chain);
    };
    let Some(order) = follow(journal, cache, &mut chain, order_seq, "cause", fill.seq)? else {
        return Ok(chain);
    };
    let Body::Output(Output::PlaceOrder(p)) = &order.body else {
        chain.broken.push(format!(
            "the fill's cause, seq {}, is a {}, not a place_order",
            order.seq,
            order.body.kind()
        ));
        return Ok(chain);
    };
    chain.order = Some((order.seq, order.ts_ns, p.clone()));
    let Some(dseq) = order.cause else {
        chain
            .broken
            .push(format!("order {} names no cause", order.seq));
        return Ok(chain);
    };
    let Some(decision) = follow(journal, cache, &mut chain, dseq, "cause", order.seq)? else {
        return Ok(chain);
    };
    let Body::Output(Output::QuoteDecision(q)) = &decision.body else {
        // An order placed by something else (none today): the chain ends there.
        return Ok(chain);
    };
    chain.decision = Some((decision.seq, decision.ts_ns, (**q).clone()));
    if let Some(t) = decision.cause {
        if let Some(e) = follow(journal, cache, &mut chain, t, "cause", decision.seq)? {
            chain.trigger = Some(link(&e, "cause", Some(decision.seq)));
        }
    }
    let Some(used) = &q.prediction else {
        return Ok(chain);
    };
    let Some(resp) = follow(
        journal,
        cache,
        &mut chain,
        used.response_seq,
        "prediction.response_seq",
        decision.seq,
    )?
    else {
        return Ok(chain);
    };
    let Body::Input(Input::PredictionResponse(r)) = &resp.body else {
        chain.broken.push(format!(
            "the decision's prediction.response_seq {} is a {}, not a prediction_response",
            resp.seq,
            resp.body.kind()
        ));
        return Ok(chain);
    };
    chain.response = Some((resp.seq, resp.ts_ns, (**r).clone()));
    let Some(rseq) = resp.cause else {
        chain
            .broken
            .push(format!("prediction response {} names no cause", resp.seq));
        return Ok(chain);
    };
    if let Some(req) = follow(journal, cache, &mut chain, rseq, "cause", resp.seq)? {
        if let Body::Output(Output::PredictionRequest(r)) = &req.body {
            chain.request = Some((req.seq, req.ts_ns, (**r).clone()));
        }
    }
    Ok(chain)
}
