//! `flashmm postmortem --html FILE`: one self-contained page (inline SVG, no scripts).

use super::context::BookView;
use super::{FillStudy, Postmortem};
use crate::chart::{self, Chart, Event, Marker, Shape, XAxis};
use crate::html::{signed, Cell, Page};
use crate::markout::Mark;
use flashmm_core::event::when;
use flashmm_core::event::{Side, Symbol};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn n(x: Decimal) -> String {
    x.normalize().to_string()
}

fn f(x: Decimal) -> f64 {
    x.to_f64().unwrap_or(f64::NAN)
}

fn book_table(page: &mut Page, title: &str, b: &Option<BookView>, fill_ts: i64) {
    let Some(b) = b else {
        page.p("muted", &format!("{title}: no book update after the fill"));
        return;
    };
    let at = match b.seq {
        Some(seq) => format!(
            "{title}: as of {} {seq} ({:+.3} ms from the fill), mid {}",
            b.kind,
            (b.ts_ns - fill_ts) as f64 / 1e6,
            b.mid.map_or("none".into(), n)
        ),
        None => format!("{title}: before any market data"),
    };
    page.p("sub", &at);
    let rows = (0..b.bids.len().max(b.asks.len()))
        .map(|i| {
            let bid = b.bids.get(i);
            let ask = b.asks.get(i);
            vec![
                Cell::num(bid.map_or(String::new(), |l| n(l.qty))),
                Cell::num(bid.map_or(String::new(), |l| n(l.price))),
                Cell::num(ask.map_or(String::new(), |l| n(l.price))),
                Cell::num(ask.map_or(String::new(), |l| n(l.qty))),
            ]
        })
        .collect();
    page.table("book", &["bid qty", "bid", "ask", "ask qty"], rows);
}

impl Postmortem {
    pub fn to_html(&self) -> String {
        let p = &self.picked;
        let title = format!(
            "Post-mortem: session {}{} ({})",
            p.info.id,
            if p.unfinished() { " UNFINISHED" } else { "" },
            p.describe()
        );
        let mut page = Page::new(&title);
        page.heading(1, &title, None);
        if let Some(c) = p.caveat() {
            page.p("warn", &c);
        }
        page.p(
            "sub",
            &format!(
                "{} of {} fills, ranked by markout at {} where ranked; {}. {} fills have no data {} after them{}.",
                self.fills.len(),
                self.fills_in_session,
                self.rank_by.label(),
                super::json::SIGN,
                self.unscored_at_rank,
                self.rank_by.label(),
                self.no_data_why()
            ),
        );
        let mut head: Vec<String> = ["rank", "seq", "time (UTC)", "side", "qty", "price"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        head.extend(self.horizons.iter().map(|h| format!("{} bps", h.label())));
        let rows = self
            .fills
            .iter()
            .map(|fs| {
                let mut r = vec![
                    Cell::num(fs.rank.map_or("-".into(), |r| r.to_string())),
                    Cell::Html(format!(r##"<a href="#fill-{0}">{0}</a>"##, fs.seq)),
                    Cell::text(when::format(fs.ts_ns)),
                    Cell::text(fs.fill.side.as_str()),
                    Cell::num(n(fs.fill.qty)),
                    Cell::num(n(fs.fill.price)),
                ];
                r.extend(fs.marks.iter().map(|m| match m.bps() {
                    Some(b) => signed(b.round_dp(4).normalize().to_string()),
                    None => Cell::text("no data"),
                }));
                r
            })
            .collect();
        let head_ref: Vec<&str> = head.iter().map(|s| s.as_str()).collect();
        page.table("fills", &head_ref, rows);
        self.funding_section(&mut page);
        for fs in &self.fills {
            self.fill_section(&mut page, fs);
        }
        page.finish()
    }

    /// The settlement currency a market's charges are in, from the session's config: a
    /// market it does not name (an import's defaults) takes `[market]`'s.
    fn settle_currency(&self, symbol: Symbol) -> String {
        let cfg = &self.picked.cfg;
        cfg.market_configs()
            .ok()
            .and_then(|cs| cs.into_iter().find(|c| c.market.symbol == symbol))
            .map_or_else(
                || cfg.market.settle_currency.clone(),
                |c| c.market.settle_currency,
            )
    }

    /// The funding the session paid or received: a PnL term no fill explains, so it has its
    /// own table; totals are per currency, since an inverse market's charges are in its coin.
    fn funding_section(&self, page: &mut Page) {
        if self.funding.is_empty() {
            return;
        }
        page.heading(2, "Funding", Some("funding"));
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        let rows = self
            .funding
            .iter()
            .map(|c| {
                let f = &c.funding;
                let currency = self.settle_currency(c.symbol);
                *totals.entry(currency.clone()).or_default() += f.amount;
                vec![
                    Cell::text(when::format(f.due_ns)),
                    Cell::num(c.seq.to_string()),
                    Cell::text(c.symbol.to_string()),
                    Cell::num(n(f.rate)),
                    Cell::num(n(f.position)),
                    Cell::num(n(f.mark)),
                    signed(n(f.amount)),
                    Cell::text(currency),
                ]
            })
            .collect();
        let total = totals
            .iter()
            .map(|(cur, t)| format!("{} {cur}", n(*t)))
            .collect::<Vec<_>>()
            .join(", ");
        page.p(
            "sub",
            &format!(
                "{} charges, {total} in all (positive: received)",
                self.funding.len()
            ),
        );
        page.table(
            "funding",
            &[
                "due (UTC)",
                "seq",
                "symbol",
                "rate",
                "position",
                "mark",
                "charge",
                "currency",
            ],
            rows,
        );
    }

    fn chart(&self, fs: &FillStudy) -> Chart {
        let t0 = fs.ts_ns;
        let x = |ts: i64| (ts - t0) as f64 / 1e9;
        let (start, end) = fs.context.window;
        let mut c = Chart::new(
            "fill",
            &format!("Mid around fill {}", fs.seq),
            "price",
            XAxis::Number {
                label: "seconds from the fill".into(),
            },
        )
        .size(960.0, 320.0)
        .x_range(x(start), x(end));
        let path: Vec<(f64, f64)> = fs
            .context
            .path
            .iter()
            .map(|(ts, m)| (x((*ts).max(start)), f(*m)))
            .collect();
        c.step("mid", "mid", chart::BLUE, path);
        for (key, name, side, color) in [
            (
                "trades-buy",
                "trades, buyer aggressor",
                Side::Buy,
                "#7fbf7b",
            ),
            (
                "trades-sell",
                "trades, seller aggressor",
                Side::Sell,
                "#f1a340",
            ),
        ] {
            let pts = fs
                .context
                .path_trades
                .iter()
                .filter(|t| t.aggressor == side)
                .map(|t| (x(t.ts_ns), f(t.price)))
                .collect();
            c.dots(key, name, color, pts);
        }
        let marks = self
            .horizons
            .iter()
            .zip(&fs.marks)
            .filter_map(|(h, m)| match m {
                Mark::Scored { mid, bps, .. } => Some(Marker {
                    x: h.ns as f64 / 1e9,
                    y: f(*mid),
                    shape: Shape::Diamond,
                    class: "markout".into(),
                    color: if *bps < Decimal::ZERO {
                        chart::RED
                    } else {
                        chart::GREEN
                    }
                    .into(),
                    title: format!(
                        "{}: mid {}, {} bps",
                        h.label(),
                        n(*mid),
                        bps.round_dp(4).normalize()
                    ),
                    seq: None,
                }),
                Mark::NoData => None,
            })
            .collect();
        c.markers(
            "markouts",
            "mid at each horizon",
            chart::PURPLE,
            Shape::Diamond,
            marks,
        );
        let (shape, color) = match fs.fill.side {
            Side::Buy => (Shape::Up, chart::GREEN),
            Side::Sell => (Shape::Down, chart::RED),
        };
        c.markers(
            "fills",
            &format!("our {}", fs.fill.side.as_str()),
            color,
            shape,
            vec![Marker {
                x: 0.0,
                y: f(fs.fill.price),
                shape,
                class: format!("fill {}", fs.fill.side.as_str()),
                color: color.into(),
                title: format!(
                    "fill {}: {} {} @ {}",
                    fs.seq,
                    fs.fill.side.as_str(),
                    n(fs.fill.qty),
                    n(fs.fill.price)
                ),
                seq: Some(fs.seq),
            }],
        );
        c.hline(f(fs.fill.price), "fill price", chart::GREY);
        for h in &self.horizons {
            c.event(Event {
                x: h.ns as f64 / 1e9,
                label: h.label(),
                title: format!("{} after the fill", h.label()),
                class: "horizon".into(),
                color: chart::PURPLE.into(),
            });
        }
        c
    }

    fn fill_section(&self, page: &mut Page, fs: &FillStudy) {
        page.raw(&format!(r#"<section class="fill" id="fill-{}">"#, fs.seq));
        page.heading(
            2,
            &format!(
                "Fill {}{}: {} {} @ {} at {}",
                fs.seq,
                fs.rank.map(|r| format!(" (rank {r})")).unwrap_or_default(),
                fs.fill.side.as_str(),
                n(fs.fill.qty),
                n(fs.fill.price),
                when::format(fs.ts_ns)
            ),
            None,
        );
        page.p(
            "sub",
            &format!(
                "{}, fee {}, cid {}, leaves {}, position after {}",
                super::json::liquidity(fs.fill.liquidity),
                n(fs.fill.fee),
                fs.fill.cid,
                n(fs.fill.leaves_qty),
                n(fs.position_after)
            ),
        );
        page.raw(&self.chart(fs).render());
        let rows = self
            .horizons
            .iter()
            .zip(&fs.marks)
            .map(|(h, m)| match m {
                Mark::Scored { mid, bps, quote } => vec![
                    Cell::text(h.label()),
                    Cell::num(n(*mid)),
                    signed(bps.round_dp(4).normalize().to_string()),
                    signed(quote.round_dp(8).normalize().to_string()),
                ],
                Mark::NoData => vec![
                    Cell::text(h.label()),
                    Cell::Html(
                        r#"<span class="muted">no data: the session ends first</span>"#.into(),
                    ),
                    Cell::text(""),
                    Cell::text(""),
                ],
            })
            .collect();
        page.heading(3, "Markouts", None);
        page.table("markouts", &["horizon", "mid", "bps", "quote"], rows);
        page.heading(3, "Cause chain", None);
        let rows = fs
            .chain
            .links
            .iter()
            .map(|l| {
                vec![
                    Cell::num(l.seq.to_string()),
                    Cell::text(l.kind),
                    Cell::text(when::format(l.ts_ns)),
                    Cell::text(match l.from {
                        Some(from) => format!("{} of {from}", l.via),
                        None => "the fill".into(),
                    }),
                ]
            })
            .collect();
        page.table(
            "chain",
            &["seq", "kind", "time (UTC)", "reached through"],
            rows,
        );
        if !fs.chain.broken.is_empty() {
            page.list("broken", &fs.chain.broken);
        }
        if let Some((seq, _, q)) = &fs.chain.decision {
            page.heading(3, &format!("Quote decision {seq}"), None);
            let ft = &q.features;
            let mut rows = vec![
                ("mid".to_string(), Cell::num(n(ft.mid))),
                (
                    "best bid / ask".into(),
                    Cell::text(format!(
                        "{} x {} / {} x {}",
                        n(ft.best_bid),
                        n(ft.bid_qty),
                        n(ft.best_ask),
                        n(ft.ask_qty)
                    )),
                ),
                (
                    "spread (bps)".into(),
                    Cell::num(format!("{:.4}", ft.spread_bps)),
                ),
                (
                    "volatility (bps/sqrt s)".into(),
                    Cell::num(format!("{:.4}", ft.volatility_bps)),
                ),
                (
                    "depth imbalance".into(),
                    Cell::num(format!("{:.4}", ft.depth_imbalance)),
                ),
                (
                    "trade momentum".into(),
                    Cell::num(format!("{:.4}", ft.trade_momentum)),
                ),
                ("position".into(), Cell::num(n(q.position))),
                ("reservation".into(), Cell::num(n(q.reservation))),
                ("half-spread (bps)".into(), Cell::num(n(q.half_spread_bps))),
                ("inventory skew".into(), Cell::num(n(q.inventory_skew))),
                ("prediction skew".into(), Cell::num(n(q.prediction_skew))),
                (
                    "model weight".into(),
                    Cell::num(n(q.model_weight.round_dp(4))),
                ),
            ];
            if let Some(r) = &q.rules {
                rows.push((
                    "rules signal".into(),
                    Cell::text(format!(
                        "{} {} x {} bps",
                        r.direction.as_str(),
                        n(r.confidence),
                        n(r.price_change_bps)
                    )),
                ));
            }
            rows.push((
                "bounds".into(),
                Cell::text(if q.bounds.is_empty() {
                    "none".into()
                } else {
                    serde_json::to_string(&q.bounds).unwrap_or_default()
                }),
            ));
            rows.push((
                "ladder".into(),
                Cell::text(format!(
                    "bids {} | asks {}",
                    q.bids
                        .iter()
                        .map(|l| format!("{} x {}", n(l.price), n(l.qty)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    q.asks
                        .iter()
                        .map(|l| format!("{} x {}", n(l.price), n(l.qty)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
            page.pairs("decision", rows);
        }
        if let Some((seq, ts, r)) = &fs.chain.response {
            page.heading(3, &format!("Prediction response {seq}"), None);
            let age = fs
                .chain
                .decision
                .as_ref()
                .and_then(|(_, _, q)| q.prediction.as_ref())
                .map_or(0, |p| p.age_ms);
            let mut rows = vec![
                ("source".to_string(), Cell::text(r.source.as_str())),
                ("answered at".into(), Cell::text(when::format(*ts))),
                (
                    "age when used".into(),
                    Cell::num(format!("{:.3} s", age as f64 / 1000.0)),
                ),
                ("latency".into(), Cell::num(format!("{} ms", r.latency_ms))),
                ("cost".into(), Cell::num(format!("{} USD", n(r.cost_usd)))),
            ];
            match &r.result {
                Ok(p) => {
                    rows.push((
                        "answer".into(),
                        Cell::text(format!(
                            "{} {} x {} bps",
                            p.direction.as_str(),
                            n(p.confidence),
                            n(p.price_change_bps)
                        )),
                    ));
                    rows.push(("reasoning".into(), Cell::text(p.reasoning.clone())));
                }
                Err(e) => rows.push((
                    "failure".into(),
                    Cell::text(format!("{}: {}", e.kind.as_str(), e.message)),
                )),
            }
            if let Some(u) = r.usage {
                rows.push((
                    "tokens".into(),
                    Cell::text(format!(
                        "{} in ({} cached), {} out ({} reasoning)",
                        u.prompt, u.cached, u.completion, u.reasoning
                    )),
                ));
            }
            page.pairs("prediction", rows);
            if let Some((rseq, rts, req)) = &fs.chain.request {
                page.p(
                    "sub",
                    &format!(
                        "asked by prediction request {rseq} at {}",
                        when::format(*rts)
                    ),
                );
                if let Some(pr) = &req.prompt {
                    page.details_pre(
                        "prompt",
                        &format!("[developer]\n{}\n\n[user]\n{}", pr.developer, pr.user),
                    );
                }
            }
            if !r.raw.is_empty() {
                page.details_pre("raw answer", &r.raw);
            }
        }
        page.heading(3, "Book", None);
        book_table(page, "just before the fill", &fs.context.before, fs.ts_ns);
        book_table(page, "just after the fill", &fs.context.after, fs.ts_ns);
        page.heading(3, "Trades within 2 s", None);
        let before = fs.context.trades.iter().filter(|t| t.dt_ns < 0).count();
        page.p(
            "sub",
            &format!(
                "{before} before the fill, {} after it",
                fs.context.trades.len() - before
            ),
        );
        page.raw("<details><summary>every trade</summary>");
        let rows = fs
            .context
            .trades
            .iter()
            .map(|t| {
                vec![
                    Cell::num(t.seq.to_string()),
                    Cell::num(format!("{:+.3}", t.dt_ns as f64 / 1e9)),
                    Cell::text(t.aggressor.as_str()),
                    Cell::num(n(t.qty)),
                    Cell::num(n(t.price)),
                ]
            })
            .collect();
        page.table(
            "trades",
            &["seq", "s from fill", "aggressor", "qty", "price"],
            rows,
        );
        page.raw("</details>");
        page.heading(3, "What if", None);
        page.list("hints", &fs.hints);
        page.raw("</section>");
    }
}
