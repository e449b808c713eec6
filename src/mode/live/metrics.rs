//! Prometheus text metrics for the live engine, and the latency summary printed at shutdown.

use flashmm_core::event::{CallOutcome, PredictorGate};
use flashmm_core::signal::breaker::BreakerState;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Latency {
    /// Journal flush (with fsync when an order waits on it).
    JournalFlush,
    /// A market frame received to the core's decision on it.
    FrameToDecision,
    /// The core's decision to the request leaving for the venue.
    DecisionToWire,
    /// An order sent to its acknowledgement.
    OrderAck,
    /// A model call, retries included.
    Llm,
    /// The age of the model answer a quote decision used.
    PredictionAge,
}

const LATENCIES: [(Latency, &str, &str); 6] = [
    (
        Latency::JournalFlush,
        "flashmm_journal_flush_seconds",
        "journal flush latency",
    ),
    (
        Latency::FrameToDecision,
        "flashmm_frame_to_decision_seconds",
        "market frame received to core decision",
    ),
    (
        Latency::DecisionToWire,
        "flashmm_decision_to_wire_seconds",
        "core decision to request sent",
    ),
    (
        Latency::OrderAck,
        "flashmm_order_ack_seconds",
        "order sent to acknowledged",
    ),
    (
        Latency::Llm,
        "flashmm_llm_latency_seconds",
        "model call latency, retries included",
    ),
    (
        Latency::PredictionAge,
        "flashmm_prediction_age_seconds",
        "age of the model answer each quote decision used",
    ),
];

const GATES: [(PredictorGate, &str); 6] = [
    (PredictorGate::Open, "open"),
    (PredictorGate::BreakerOpen, "breaker_open"),
    (PredictorGate::HalfOpen, "half_open"),
    (PredictorGate::OverBudgetHour, "over_budget_hour"),
    (PredictorGate::OverBudgetDay, "over_budget_day"),
    (PredictorGate::OverBudgetTotal, "over_budget_total"),
];

#[derive(Default)]
struct State {
    hist: Vec<(Latency, Histogram<u64>)>,
    entries_in: u64,
    entries_out: u64,
    llm_calls: u64,
    llm_errors: u64,
    llm_gave_up: u64,
    llm_ignored: u64,
    quotes: u64,
    quotes_with_answer: u64,
    /// Decimal, so the exported sum is the exact spend (0.0099, not 0.009899999999999999).
    llm_cost_usd: rust_decimal::Decimal,
    /// Whether model requests may go (the gate), and the circuit breaker's own state, which
    /// is closed while the gate is shut by a budget.
    gate: &'static str,
    breaker: &'static str,
    position: f64,
    venue_position: f64,
    reconciliations: u64,
    positions_adopted: u64,
    pnl: f64,
    open_orders: u64,
    quoted_spread_bps: f64,
}

#[derive(Clone, Default)]
pub struct Metrics {
    state: Arc<Mutex<State>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let hist = LATENCIES
            .iter()
            .filter_map(|(k, _, _)| {
                Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
                    .ok()
                    .map(|h| (*k, h))
            })
            .collect();
        Metrics {
            state: Arc::new(Mutex::new(State {
                hist,
                gate: "open",
                breaker: "closed",
                ..State::default()
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    pub fn record(&self, what: Latency, nanos: u64) {
        self.with(|s| {
            if let Some((_, h)) = s.hist.iter_mut().find(|(k, _)| *k == what) {
                let _ = h.record(nanos.max(1));
            }
        });
    }

    pub fn entries(&self, inputs: u64, outputs: u64) {
        self.with(|s| {
            s.entries_in += inputs;
            s.entries_out += outputs;
        });
    }

    pub fn llm(&self, ok: bool, cost_usd: rust_decimal::Decimal) {
        self.with(|s| {
            s.llm_calls += 1;
            s.llm_errors += (!ok) as u64;
            s.llm_cost_usd += cost_usd;
        });
    }

    /// What became of a call no quote used.
    pub fn outcome(&self, outcome: CallOutcome) {
        self.with(|s| match outcome {
            CallOutcome::GaveUp => s.llm_gave_up += 1,
            _ => s.llm_ignored += 1,
        });
    }

    /// A quote decision, with the age of the model answer it used, if any.
    pub fn quote(&self, answer_age_ms: Option<u64>) {
        self.with(|s| {
            s.quotes += 1;
            s.quotes_with_answer += answer_age_ms.is_some() as u64;
        });
        if let Some(ms) = answer_age_ms {
            self.record(Latency::PredictionAge, ms.saturating_mul(1_000_000));
        }
    }

    pub fn gate(&self, gate: PredictorGate) {
        self.with(|s| {
            s.gate = GATES
                .iter()
                .find(|(g, _)| *g == gate)
                .map_or("open", |(_, n)| n)
        });
    }

    pub fn breaker(&self, state: BreakerState) {
        self.with(|s| {
            s.breaker = match state {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half_open",
            }
        });
    }

    /// The engine's position, after every step (quotes may be pulled while it moves).
    pub fn position(&self, position: f64) {
        self.with(|s| s.position = position);
    }

    /// An account read: the venue's position, and whether a difference was adopted.
    pub fn reconciled(&self, venue_position: f64, adopted: bool) {
        self.with(|s| {
            s.venue_position = venue_position;
            s.reconciliations += 1;
            s.positions_adopted += adopted as u64;
        });
    }

    pub fn book(&self, position: f64, pnl: f64, open_orders: u64, quoted_spread_bps: Option<f64>) {
        self.with(|s| {
            s.position = position;
            s.pnl = pnl;
            s.open_orders = open_orders;
            if let Some(q) = quoted_spread_bps {
                s.quoted_spread_bps = q;
            }
        });
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.with(|s| {
            let mut o = String::with_capacity(4096);
            for (kind, name, help) in LATENCIES {
                let Some((_, h)) = s.hist.iter().find(|(k, _)| *k == kind) else { continue };
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} summary");
                for q in [0.5, 0.9, 0.99, 0.999] {
                    let _ = writeln!(o, "{name}{{quantile=\"{q}\"}} {:.9}", h.value_at_quantile(q) as f64 / 1e9);
                }
                let sum: f64 = h.iter_recorded().map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64).sum();
                let _ = writeln!(o, "{name}_sum {:.9}\n{name}_count {}", sum / 1e9, h.len());
            }
            let counters = [
                ("flashmm_entries_in_total", "inputs journaled", s.entries_in as f64),
                ("flashmm_entries_out_total", "outputs journaled", s.entries_out as f64),
                ("flashmm_llm_calls_total", "model answers received", s.llm_calls as f64),
                ("flashmm_llm_errors_total", "model answers that were failures", s.llm_errors as f64),
                ("flashmm_llm_gave_up_total", "model calls the core stopped waiting for (predict.timeout_ms)", s.llm_gave_up as f64),
                ("flashmm_llm_ignored_total", "model answers no quote used: after a give-up, stale, superseded or unknown", s.llm_ignored as f64),
                ("flashmm_quote_decisions_total", "quote decisions", s.quotes as f64),
                ("flashmm_quote_decisions_with_answer_total", "quote decisions that used an unexpired model answer", s.quotes_with_answer as f64),
                ("flashmm_reconciliations_total", "reads of the venue's orders and position, applied", s.reconciliations as f64),
                ("flashmm_position_adopted_total", "position differences adopted from the venue", s.positions_adopted as f64),
            ];
            for (name, help, v) in counters {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
            }
            let _ = writeln!(
                o,
                "# HELP flashmm_llm_cost_usd_total model spend in USD\n# TYPE flashmm_llm_cost_usd_total counter\nflashmm_llm_cost_usd_total {}",
                s.llm_cost_usd.normalize()
            );
            let gauges = [
                ("flashmm_position", "the engine's position in base units", s.position),
                ("flashmm_venue_position", "the venue's position at the last account read", s.venue_position),
                ("flashmm_position_difference", "engine minus venue position at the last account read", s.position - s.venue_position),
                ("flashmm_pnl", "total PnL in quote currency, marked to mid", s.pnl),
                ("flashmm_open_orders", "orders resting or in flight", s.open_orders as f64),
                ("flashmm_quoted_spread_bps", "spread of our best quotes", s.quoted_spread_bps),
            ];
            for (name, help, v) in gauges {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
            let _ = writeln!(o, "# HELP flashmm_llm_gate whether model requests may go (1 for the current state)\n# TYPE flashmm_llm_gate gauge");
            for (_, st) in GATES {
                let _ = writeln!(o, "flashmm_llm_gate{{state=\"{st}\"}} {}", (st == s.gate) as u8);
            }
            let _ = writeln!(o, "# HELP flashmm_llm_breaker the model circuit breaker (1 for the current state)\n# TYPE flashmm_llm_breaker gauge");
            for st in ["closed", "open", "half_open"] {
                let _ = writeln!(o, "flashmm_llm_breaker{{state=\"{st}\"}} {}", (st == s.breaker) as u8);
            }
            o
        })
        .unwrap_or_default()
    }

    /// A human summary of the latencies, for the end of a live run.
    pub fn summary(&self) -> String {
        self.with(|s| {
            let mut o = String::from("latency (p50 / p99 / max):\n");
            for (kind, name, _) in LATENCIES {
                let Some((_, h)) = s.hist.iter().find(|(k, _)| *k == kind) else {
                    continue;
                };
                if h.is_empty() {
                    continue;
                }
                let us = |v: u64| v as f64 / 1e3;
                let _ = writeln!(
                    o,
                    "  {:<34} {:>10.1} / {:>10.1} / {:>10.1} us  ({} samples)",
                    name.trim_start_matches("flashmm_")
                        .trim_end_matches("_seconds"),
                    us(h.value_at_quantile(0.5)),
                    us(h.value_at_quantile(0.99)),
                    us(h.max()),
                    h.len()
                );
            }
            o
        })
        .unwrap_or_default()
    }
}

/// Serves `GET /metrics` on `addr` until `stop`.
pub async fn serve(
    addr: String,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(&addr).await?;
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            conn = listener.accept() => {
                let Ok((mut s, _)) = conn else { continue };
                let m = metrics.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let (status, body) = if head.starts_with("GET /metrics") {
                        ("200 OK", m.render())
                    } else {
                        ("404 Not Found", "try GET /metrics\n".to_string())
                    };
                    let out = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(out.as_bytes()).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn model_spend_is_exported_exactly() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.llm(true, dec!(0.0033));
        }
        m.llm(false, dec!(0));
        let text = m.render();
        assert!(
            text.contains("\nflashmm_llm_cost_usd_total 0.0099\n"),
            "{text}"
        );
        assert!(
            text.contains("\nflashmm_llm_calls_total 4\n")
                && text.contains("\nflashmm_llm_errors_total 1\n"),
            "{text}"
        );
    }

    /// Issue 13, defect 5: the breaker's label was the gate's, so a closed breaker read "open".
    #[test]
    fn the_breaker_and_the_gate_are_exported_each_in_its_own_terms() {
        let m = Metrics::new();
        let one = |text: &str, line: &str| text.lines().any(|l| l == line);
        let text = m.render();
        assert!(
            one(&text, "flashmm_llm_breaker{state=\"closed\"} 1"),
            "{text}"
        );
        assert!(
            one(&text, "flashmm_llm_breaker{state=\"open\"} 0"),
            "{text}"
        );
        assert!(one(&text, "flashmm_llm_gate{state=\"open\"} 1"), "{text}");
        m.gate(PredictorGate::OverBudgetHour);
        let text = m.render();
        assert!(
            one(&text, "flashmm_llm_gate{state=\"over_budget_hour\"} 1"),
            "{text}"
        );
        assert!(one(&text, "flashmm_llm_gate{state=\"open\"} 0"), "{text}");
        assert!(
            one(&text, "flashmm_llm_breaker{state=\"closed\"} 1"),
            "{text}"
        );
        m.breaker(BreakerState::Open);
        m.gate(PredictorGate::BreakerOpen);
        let text = m.render();
        assert!(
            one(&text, "flashmm_llm_breaker{state=\"open\"} 1"),
            "{text}"
        );
        assert!(
            one(&text, "flashmm_llm_breaker{state=\"closed\"} 0"),
            "{text}"
        );
        assert!(
            one(&text, "flashmm_llm_gate{state=\"breaker_open\"} 1"),
            "{text}"
        );
        m.breaker(BreakerState::HalfOpen);
        assert!(one(
            &m.render(),
            "flashmm_llm_breaker{state=\"half_open\"} 1"
        ));
    }
}
