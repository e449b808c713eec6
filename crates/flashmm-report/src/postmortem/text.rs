//! The terminal view of a post-mortem.

use super::context::BookView;
use super::{FillStudy, Postmortem, Select};
use crate::markout::Mark;
use flashmm_core::event::when;
use flashmm_core::event::{Level, Side};
use rust_decimal::Decimal;
use std::fmt::Write;

fn n(x: Decimal) -> String {
    x.normalize().to_string()
}

fn b4(x: Decimal) -> String {
    x.round_dp(4).normalize().to_string()
}

fn levels(ls: &[Level]) -> String {
    if ls.is_empty() {
        return "(empty)".into();
    }
    ls.iter()
        .map(|l| format!("{} x {}", n(l.price), n(l.qty)))
        .collect::<Vec<_>>()
        .join("   ")
}

fn book(s: &mut String, name: &str, b: &Option<BookView>, fill_ts: i64) {
    match b {
        None => {
            let _ = writeln!(
                s,
                "  {name:<11} none: no book update in the data after the fill"
            );
        }
        Some(b) => {
            let at = match b.seq {
                Some(seq) => format!(
                    "as of {} {} ({:+.3} ms from the fill)",
                    b.kind,
                    seq,
                    (b.ts_ns - fill_ts) as f64 / 1e6
                ),
                None => "before any market data".into(),
            };
            let _ = writeln!(
                s,
                "  {name:<11} {at}, mid {}",
                b.mid.map_or("none".into(), n)
            );
            let _ = writeln!(s, "              bids  {}", levels(&b.bids));
            let _ = writeln!(s, "              asks  {}", levels(&b.asks));
        }
    }
}

impl Postmortem {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let p = &self.picked;
        let what = match self.select {
            Select::All => format!("all {} fills", self.fills_in_session),
            Select::Worst(k) => format!(
                "the {} worst of {} fills by markout at {}",
                k.min(self.fills.len()),
                self.fills_in_session,
                self.rank_by.label()
            ),
            Select::Fill(seq) => format!("fill {seq} of {}", self.fills_in_session),
        };
        let _ = writeln!(
            s,
            "post-mortem of session {}{} ({}): {what}",
            p.info.id,
            if p.unfinished() { " UNFINISHED" } else { "" },
            p.describe()
        );
        if let Some(c) = p.caveat() {
            let _ = writeln!(s, "  {c}");
        }
        let _ = writeln!(
            s,
            "  {}; {} of {} fills have no data {} after them{}",
            super::json::SIGN,
            self.unscored_at_rank,
            self.fills_in_session,
            self.rank_by.label(),
            self.no_data_why()
        );
        self.funding_text(&mut s);
        if self.fills.is_empty() {
            let _ = writeln!(s, "  no fills in this session");
            return s;
        }
        let _ = write!(
            s,
            "\n  {:>4}  {:>8}  {:<24}  {:<4}  {:>10}  {:>12}",
            "rank", "seq", "time", "side", "qty", "price"
        );
        for h in &self.horizons {
            let _ = write!(s, "  {:>10}", format!("{} bps", h.label()));
        }
        s.push('\n');
        for f in &self.fills {
            let _ = write!(
                s,
                "  {:>4}  {:>8}  {:<24}  {:<4}  {:>10}  {:>12}",
                f.rank.map_or("-".into(), |r| r.to_string()),
                f.seq,
                when::format(f.ts_ns),
                f.fill.side.as_str(),
                n(f.fill.qty),
                n(f.fill.price)
            );
            for m in &f.marks {
                let _ = write!(s, "  {:>10}", m.bps().map_or("no data".into(), b4));
            }
            s.push('\n');
        }
        let one = matches!(self.select, Select::Fill(_));
        for f in &self.fills {
            s.push('\n');
            self.fill_text(&mut s, f, one);
        }
        s
    }

    /// The funding the session paid or received: a PnL term no fill explains.
    fn funding_text(&self, s: &mut String) {
        if self.funding.is_empty() {
            return;
        }
        let total: Decimal = self.funding.iter().map(|c| c.funding.amount).sum();
        let _ = writeln!(
            s,
            "  funding         {} charges, {} in all (positive: received)",
            self.funding.len(),
            n(total)
        );
        for c in &self.funding {
            let f = &c.funding;
            let _ = writeln!(
                s,
                "    {}  seq {:>7}  {}  rate {} on position {} at mark {}: {}",
                when::format(f.due_ns),
                c.seq,
                c.symbol,
                n(f.rate),
                n(f.position),
                n(f.mark),
                n(f.amount)
            );
        }
    }

    fn fill_text(&self, s: &mut String, f: &FillStudy, show_prompt: bool) {
        let fl = &f.fill;
        let _ = writeln!(
            s,
            "fill {}{}  {}  {}{} {} @ {} ({}, fee {}, cid {}), position after {}",
            f.seq,
            f.rank.map(|r| format!(" (rank {r})")).unwrap_or_default(),
            when::format(f.ts_ns),
            if self.picked.cfg.markets.len() > 1 {
                format!("{} ", f.symbol)
            } else {
                String::new()
            },
            fl.side.as_str(),
            n(fl.qty),
            n(fl.price),
            super::json::liquidity(fl.liquidity),
            n(fl.fee),
            fl.cid,
            n(f.position_after)
        );
        let marks: Vec<String> = self
            .horizons
            .iter()
            .zip(&f.marks)
            .map(|(h, m)| match m {
                Mark::Scored { mid, bps, quote } => format!(
                    "{} {} bps ({} quote, mid {})",
                    h.label(),
                    b4(*bps),
                    quote.round_dp(8).normalize(),
                    n(*mid)
                ),
                Mark::NoData => format!("{} no data: the session ends first", h.label()),
            })
            .collect();
        let _ = writeln!(s, "  markouts    {}", marks.join("; "));
        let c = &f.chain;
        // The order chain, then the prediction branch that hangs off the decision.
        let split = c
            .links
            .iter()
            .position(|l| l.via == "prediction.response_seq")
            .unwrap_or(c.links.len());
        let order_chain: Vec<String> = c.links[..split]
            .iter()
            .map(|l| match &c.trigger {
                Some(t) if t == l => format!("(triggered by) {} {}", l.kind, l.seq),
                _ => format!("{} {}", l.kind, l.seq),
            })
            .collect();
        let _ = writeln!(s, "  chain       {}", order_chain.join(" <- "));
        if let Some(first) = c.links.get(split) {
            let branch: Vec<String> = c.links[split..]
                .iter()
                .map(|l| format!("{} {}", l.kind, l.seq))
                .collect();
            let _ = writeln!(
                s,
                "              quote_decision {} used {}",
                first.from.unwrap_or_default(),
                branch.join(" <- ")
            );
        }
        for b in &c.broken {
            let _ = writeln!(s, "              broken: {b}");
        }
        if let Some((seq, ts, q)) = &c.decision {
            let ft = &q.features;
            let _ = writeln!(
                s,
                "  decision    {seq} at {}: mid {} (bid {} x {}, ask {} x {}), spread {:.4} bps, vol {:.4} bps/sqrt(s), depth imbalance {:.3}, momentum {:.3}",
                when::format(*ts),
                n(ft.mid),
                n(ft.best_bid),
                n(ft.bid_qty),
                n(ft.best_ask),
                n(ft.ask_qty),
                ft.spread_bps,
                ft.volatility_bps,
                ft.depth_imbalance,
                ft.trade_momentum
            );
            let _ = writeln!(
                s,
                "              position {}, reservation {}, half-spread {} bps, inventory skew {}, prediction skew {}, model weight {}",
                n(q.position),
                n(q.reservation),
                n(q.half_spread_bps),
                n(q.inventory_skew),
                n(q.prediction_skew),
                b4(q.model_weight)
            );
            let rules = q.rules.as_ref().map_or("off".into(), |r| {
                format!(
                    "{} {} x {} bps",
                    r.direction.as_str(),
                    n(r.confidence),
                    n(r.price_change_bps)
                )
            });
            let bounds = if q.bounds.is_empty() {
                "none".to_string()
            } else {
                serde_json::to_string(&q.bounds).unwrap_or_default()
            };
            let _ = writeln!(s, "              rules {rules}; bounds {bounds}");
        }
        match (&c.response, &c.decision) {
            (Some((seq, _, r)), Some((_, _, q))) => {
                let age = q.prediction.as_ref().map_or(0, |p| p.age_ms);
                let answer = match &r.result {
                    Ok(p) => format!(
                        "{} {} x {} bps",
                        p.direction.as_str(),
                        n(p.confidence),
                        n(p.price_change_bps)
                    ),
                    Err(e) => format!("failed {}: {}", e.kind.as_str(), e.message),
                };
                let tokens = r.usage.map_or(String::new(), |u| {
                    format!(
                        ", tokens {} in ({} cached) / {} out ({} reasoning)",
                        u.prompt, u.cached, u.completion, u.reasoning
                    )
                });
                let _ = writeln!(
                    s,
                    "  prediction  {} response {seq} ({:.1} s old when used): {answer}; latency {} ms, cost {} USD{tokens}",
                    r.source.as_str(),
                    age as f64 / 1000.0,
                    r.latency_ms,
                    n(r.cost_usd)
                );
                if let Ok(p) = &r.result {
                    let _ = writeln!(s, "              reasoning: {}", p.reasoning);
                }
                if let Some((rseq, rts, req)) = &c.request {
                    match &req.prompt {
                        Some(pr) if show_prompt => {
                            let _ = writeln!(
                                s,
                                "              asked by request {rseq} at {}; the prompt:",
                                when::format(*rts)
                            );
                            for line in pr.developer.lines().chain(pr.user.lines()) {
                                let _ = writeln!(s, "              | {line}");
                            }
                        }
                        Some(pr) => {
                            let _ = writeln!(
                                s,
                                "              asked by request {rseq} at {}; prompt of {} lines (shown with --fill {}, and in --json and --html)",
                                when::format(*rts),
                                pr.developer.lines().count() + pr.user.lines().count(),
                                f.seq
                            );
                        }
                        None => {
                            let _ = writeln!(
                                s,
                                "              asked by request {rseq} at {} (a local predictor: no prompt)",
                                when::format(*rts)
                            );
                        }
                    }
                }
            }
            (None, Some(_)) => {
                let _ = writeln!(
                    s,
                    "  prediction  none: the decision quoted on the rules alone"
                );
            }
            _ => {}
        }
        book(s, "book before", &f.context.before, f.ts_ns);
        book(s, "book after", &f.context.after, f.ts_ns);
        let trades = &f.context.trades;
        if trades.is_empty() {
            let _ = writeln!(s, "  trades      none within 2 s");
        } else {
            let side = |before: bool, a: Side| -> (usize, Decimal) {
                trades
                    .iter()
                    .filter(|t| (t.dt_ns < 0) == before && t.aggressor == a)
                    .fold((0, Decimal::ZERO), |(k, q), t| (k + 1, q + t.qty))
            };
            let part = |before: bool| {
                let (bn, bq) = side(before, Side::Buy);
                let (sn, sq) = side(before, Side::Sell);
                format!(
                    "{} {} (buyers {bn} for {}, sellers {sn} for {})",
                    bn + sn,
                    if before { "before" } else { "after" },
                    n(bq),
                    n(sq)
                )
            };
            let _ = writeln!(s, "  trades ±2s  {}; {}", part(true), part(false));
            let split = trades.partition_point(|t| t.dt_ns < 0);
            let near: Vec<String> = trades[split.saturating_sub(3)..(split + 3).min(trades.len())]
                .iter()
                .map(|t| {
                    format!(
                        "{:+.3} s {} {} @ {}",
                        t.dt_ns as f64 / 1e9,
                        t.aggressor.as_str(),
                        n(t.qty),
                        n(t.price)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "              nearest: {} (all in --json and --html)",
                near.join(" | ")
            );
        }
        for (i, h) in f.hints.iter().enumerate() {
            let _ = writeln!(
                s,
                "  {}  - {h}",
                if i == 0 { "what-if   " } else { "          " }
            );
        }
    }
}
