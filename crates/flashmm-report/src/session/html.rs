//! `flashmm report --html FILE`: the session on one self-contained page.

use super::SessionView;
use crate::chart::{self, Chart, Event, Histogram, Marker, Shape, XAxis};
use crate::html::{signed, Cell, Page};
use flashmm_core::event::when;
use flashmm_core::event::{RiskKind, Side};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

/// Fills listed in the page's table (the price chart draws them all).
const FILL_ROWS: usize = 500;

fn val(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "n/a".into(),
        other => other.to_string(),
    }
}

fn kind(k: RiskKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The series of a chart as (x seconds, y).
fn xs(v: &SessionView, series: &[(i64, f64)]) -> Vec<(f64, f64)> {
    series.iter().map(|(t, y)| (v.x(*t), *y)).collect()
}

impl SessionView {
    fn time(&self) -> XAxis {
        XAxis::Time {
            origin_ns: self.first_ts,
        }
    }

    fn risk_events(&self, c: &mut Chart) {
        for r in &self.risk {
            let k = kind(r.kind);
            c.event(Event {
                x: self.x(r.ts_ns),
                label: format!("{k} {}", if r.engaged { "on" } else { "off" }),
                title: format!(
                    "risk action {} at {}: {k} {}: {}",
                    r.seq,
                    when::format(r.ts_ns),
                    if r.engaged { "engaged" } else { "released" },
                    r.detail
                ),
                class: format!("risk {}", if r.engaged { "engaged" } else { "released" }),
                color: if r.engaged { chart::RED } else { chart::GREY }.into(),
            });
        }
    }

    /// Mid, our best resting bid and ask, and our fills, with risk actions.
    pub fn price_chart(&self) -> Chart {
        let mut c = Chart::new(
            "price",
            "Price: mid, our quotes and fills",
            "price",
            self.time(),
        )
        .size(960.0, 360.0)
        .x_range(0.0, self.x(self.last_ts));
        c.step("mid", "mid", chart::BLUE, xs(self, &self.mid));
        c.step(
            "our-bid",
            "our best bid",
            "#66bd63",
            xs(self, &self.our_bid),
        );
        c.step(
            "our-ask",
            "our best ask",
            "#f46d43",
            xs(self, &self.our_ask),
        );
        let fills = self
            .fills
            .iter()
            .map(|fd| Marker {
                x: self.x(fd.ts_ns),
                y: fd.price.to_f64().unwrap_or(f64::NAN),
                shape: if fd.side == Side::Buy {
                    Shape::Up
                } else {
                    Shape::Down
                },
                class: format!("fill {}", fd.side.as_str()),
                color: if fd.side == Side::Buy {
                    chart::GREEN
                } else {
                    chart::RED
                }
                .into(),
                title: format!(
                    "fill {} at {}: {} {} @ {} ({:?})",
                    fd.seq,
                    when::format(fd.ts_ns),
                    fd.side.as_str(),
                    fd.qty.normalize(),
                    fd.price.normalize(),
                    fd.liquidity
                ),
                seq: Some(fd.seq),
            })
            .collect();
        c.markers(
            "fills",
            "fills (buy ▲, sell ▼)",
            chart::GREY,
            Shape::Up,
            fills,
        );
        self.risk_events(&mut c);
        c
    }

    pub fn pnl_chart(&self) -> Chart {
        let mut c = Chart::new(
            "pnl",
            "PnL: realized + unrealized at the mid - fees",
            "quote currency",
            self.time(),
        )
        .x_range(0.0, self.x(self.last_ts));
        c.line("pnl", "total PnL", chart::BLUE, xs(self, &self.pnl));
        c.hline(0.0, "0", chart::GREY);
        self.risk_events(&mut c);
        c
    }

    pub fn inventory_chart(&self) -> Chart {
        let mut c = Chart::new("inventory", "Inventory", "position (base)", self.time())
            .x_range(0.0, self.x(self.last_ts));
        c.step(
            "position",
            "position",
            chart::PURPLE,
            xs(self, &self.position),
        );
        c.hline(0.0, "flat", chart::GREY);
        self.risk_events(&mut c);
        c
    }

    pub fn spread_chart(&self) -> Chart {
        let mut c = Chart::new(
            "spread",
            "Spread: quoted (level 0) vs market",
            "bps of mid",
            self.time(),
        )
        .x_range(0.0, self.x(self.last_ts));
        c.step(
            "market-spread",
            "market",
            chart::GREY,
            xs(self, &self.market_spread),
        );
        c.step(
            "quoted-spread",
            "quoted",
            chart::ORANGE,
            xs(self, &self.quoted_spread),
        );
        c
    }

    pub fn latency_chart(&self) -> Chart {
        let mut c = Chart::new(
            "model-latency",
            "Predictor latency per answer",
            "ms",
            self.time(),
        )
        .x_range(0.0, self.x(self.last_ts));
        let (ok, failed): (Vec<_>, Vec<_>) = self.answers.iter().partition(|a| a.failure.is_none());
        let mk = |a: &super::Answer, shape: Shape, color: &str| Marker {
            x: self.x(a.ts_ns),
            y: a.latency_ms as f64,
            shape,
            class: format!("answer {}", a.failure.unwrap_or("ok")),
            color: color.into(),
            title: format!(
                "answer {} ({}) at {}: {} ms, {} USD{}",
                a.seq,
                a.source.as_str(),
                when::format(a.ts_ns),
                a.latency_ms,
                a.cost_usd.normalize(),
                a.failure
                    .map(|k| format!(", failed: {k}"))
                    .unwrap_or_default()
            ),
            seq: Some(a.seq),
        };
        c.markers(
            "answers-ok",
            "answer",
            chart::BLUE,
            Shape::Circle,
            ok.iter()
                .map(|a| mk(a, Shape::Circle, chart::BLUE))
                .collect(),
        );
        c.markers(
            "answers-failed",
            "failure",
            chart::RED,
            Shape::Cross,
            failed
                .iter()
                .map(|a| mk(a, Shape::Cross, chart::RED))
                .collect(),
        );
        for g in &self.gates {
            let gate = serde_json::to_value(g.gate)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            c.event(Event {
                x: self.x(g.ts_ns),
                label: gate.clone(),
                title: format!(
                    "predictor gate {gate} at {}: {}",
                    when::format(g.ts_ns),
                    g.detail
                ),
                class: "gate".into(),
                color: chart::ORANGE.into(),
            });
        }
        c
    }

    pub fn cost_chart(&self) -> Chart {
        let mut c = Chart::new(
            "model-cost",
            "Predictor cost, cumulative",
            "USD",
            self.time(),
        )
        .x_range(0.0, self.x(self.last_ts));
        let mut total = Decimal::ZERO;
        let mut pts = vec![(0.0, 0.0)];
        for a in &self.answers {
            total += a.cost_usd;
            pts.push((self.x(a.ts_ns), total.to_f64().unwrap_or(f64::NAN)));
        }
        if self.answers.is_empty() {
            pts.clear();
        }
        c.step("cost", "cumulative cost", chart::PURPLE, pts);
        c
    }

    pub fn markout_histograms(&self) -> Vec<Histogram> {
        self.horizons
            .iter()
            .enumerate()
            .map(|(i, h)| {
                Histogram::new(
                    &format!("markout-{}", h.label()),
                    &format!("Markouts at {}", h.label()),
                    "bps (positive: the mid moved our way)",
                    self.markout_bins(i),
                )
                .size(316.0, 250.0)
            })
            .collect()
    }

    pub fn to_html(&self) -> String {
        let v = self.to_json();
        let p = &self.picked;
        let title = format!(
            "Session {}{} ({})",
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
                "{} to {} ({} s), read back from the journal by flashmm {}",
                when::format(self.first_ts),
                when::format(self.last_ts),
                val(&v["duration_s"]),
                flashmm_core::VERSION
            ),
        );
        let s = &v["summary"];
        let m = &v["model"];
        let mut rows = vec![
            ("market events".to_string(), Cell::num(val(&s["events"]))),
            (
                "quotes".into(),
                Cell::text(format!(
                    "{} decisions, {} orders, {} cancels, {} rejects",
                    val(&s["quotes"]),
                    val(&s["orders"]),
                    val(&s["cancels"]),
                    val(&s["rejects"])
                )),
            ),
            (
                "fills".into(),
                Cell::text(format!(
                    "{} ({} maker, {} taker), volume {} ({} quote)",
                    val(&s["fills"]),
                    val(&s["maker_fills"]),
                    val(&s["taker_fills"]),
                    val(&s["volume"]),
                    val(&s["notional"])
                )),
            ),
            ("PnL total".into(), signed(val(&s["pnl"]["total"]))),
            (
                "PnL parts".into(),
                Cell::text(format!(
                    "realized {} + unrealized {} - fees {}{}",
                    val(&s["pnl"]["realized"]),
                    val(&s["pnl"]["unrealized"]),
                    val(&s["pnl"]["fees"]),
                    super::text::funding_term(s)
                )),
            ),
            (
                "position".into(),
                Cell::text(format!(
                    "final {}, max |position| {}, final mid {}",
                    val(&s["final_position"]),
                    val(&s["max_abs_position"]),
                    val(&s["final_mid"])
                )),
            ),
            (
                "spread (bps)".into(),
                Cell::text(format!(
                    "quoted {} avg, market {} time-weighted",
                    val(&s["avg_quoted_spread_bps"]),
                    val(&s["avg_market_spread_bps"])
                )),
            ),
        ];
        for h in &self.horizons {
            let mk = &v["markouts"][h.label()];
            rows.push((
                format!("markout {} (bps)", h.label()),
                Cell::text(format!(
                    "mean {}, median {}, p10 {}, p90 {} over {} fills ({} with no data)",
                    val(&mk["mean_bps"]),
                    val(&mk["median_bps"]),
                    val(&mk["p10_bps"]),
                    val(&mk["p90_bps"]),
                    val(&mk["scored"]),
                    val(&mk["no_data"])
                )),
            ));
        }
        rows.push((
            "model".into(),
            Cell::text(format!(
                "{} requests, {} answers ({} failed), latency p50 {} ms, p90 {} ms, max {} ms, cost {} USD",
                val(&m["requests"]),
                val(&m["answers"]),
                val(&m["failures"]),
                val(&m["latency_ms"]["p50"]),
                val(&m["latency_ms"]["p90"]),
                val(&m["latency_ms"]["max"]),
                val(&m["cost_usd"])
            )),
        ));
        rows.push((
            "prediction hit rate".into(),
            Cell::text(format!(
                "{} over {} directional calls",
                val(&s["prediction_hit_rate"]),
                val(&s["prediction_calls_scored"])
            )),
        ));
        rows.push((
            "risk actions".into(),
            Cell::num(self.risk.len().to_string()),
        ));
        page.pairs("summary", rows);
        page.heading(2, "Price, quotes and fills", None);
        page.raw(&self.price_chart().render());
        page.heading(2, "PnL and inventory", None);
        page.raw(&self.pnl_chart().render());
        page.raw(&self.inventory_chart().render());
        page.heading(2, "Spreads", None);
        page.raw(&self.spread_chart().render());
        page.heading(2, "Markout distribution", None);
        page.raw(r#"<div class="charts-row">"#);
        for h in self.markout_histograms() {
            page.raw(&h.render());
        }
        page.raw("</div>");
        page.heading(2, "Predictor latency and cost", None);
        page.raw(&self.latency_chart().render());
        page.raw(&self.cost_chart().render());
        page.heading(2, "Risk actions", None);
        if self.risk.is_empty() {
            page.p("muted", "none");
        } else {
            let rows = self
                .risk
                .iter()
                .map(|r| {
                    vec![
                        Cell::num(r.seq.to_string()),
                        Cell::text(when::format(r.ts_ns)),
                        Cell::text(kind(r.kind)),
                        Cell::text(if r.engaged { "engaged" } else { "released" }),
                        Cell::text(r.detail.clone()),
                    ]
                })
                .collect();
            page.table("risk", &["seq", "time (UTC)", "guard", "", "detail"], rows);
        }
        page.heading(2, "Fills", None);
        if self.fills.is_empty() {
            page.p("muted", "none");
        } else {
            let rows = self
                .fills
                .iter()
                .zip(&self.marks)
                .take(FILL_ROWS)
                .map(|(fd, mk)| {
                    let mut r = vec![
                        Cell::num(fd.seq.to_string()),
                        Cell::text(when::format(fd.ts_ns)),
                        Cell::text(fd.side.as_str()),
                        Cell::num(fd.qty.normalize().to_string()),
                        Cell::num(fd.price.normalize().to_string()),
                    ];
                    r.extend(mk.marks.iter().map(|m| match m.bps() {
                        Some(b) => signed(b.round_dp(4).normalize().to_string()),
                        None => Cell::text("no data"),
                    }));
                    r
                })
                .collect();
            let mut head: Vec<String> = ["seq", "time (UTC)", "side", "qty", "price"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            head.extend(self.horizons.iter().map(|h| format!("{} bps", h.label())));
            let head: Vec<&str> = head.iter().map(|s| s.as_str()).collect();
            page.table("fills", &head, rows);
            if self.fills.len() > FILL_ROWS {
                page.p(
                    "muted",
                    &format!(
                        "the first {FILL_ROWS} of {} fills; all of them: flashmm journal export --format csv --session {} --kinds fills OUT.csv",
                        self.fills.len(),
                        p.info.id
                    ),
                );
            }
            page.p(
                "sub",
                &format!(
                    "flashmm postmortem --session {} --worst 5 --html postmortem.html walks the worst of them back to their prompts.",
                    p.info.id
                ),
            );
        }
        page.finish()
    }
}
