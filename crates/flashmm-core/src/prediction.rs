//! What the core knows about the slow signal: the latest answer and its age, the requests in
//! flight, and the gate in front of the model (circuit breaker, budget, rate limit). Everything
//! runs on journal time, so a replay opens and closes the same gates at the same entries.

use crate::config::{AzureConfig, PredictConfig};
use crate::event::{
    CallOutcome, FailureKind, PredictionOutcome, PredictionResponse, PredictionUsed, PredictorGate,
    PredictorStatus,
};
use crate::signal::breaker::{Breaker, BreakerState};
use crate::signal::budget::{Budget, Cap};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_MIN: i64 = 60_000 * NS_PER_MS;
/// Prompt bytes per token, on the low side so the reserved cost is an upper bound.
const BYTES_PER_TOKEN: u64 = 3;

#[derive(Clone, Debug)]
struct Latest {
    used: PredictionUsed,
    /// When the request that produced it was made: the market it describes.
    asked_at: i64,
}

/// A call from the request until the driver reports its end. Giving up on it does not end it:
/// until its answer or its cancellation comes back it may still be billed, so it keeps its
/// in-flight slot and its worst-case reservation.
#[derive(Clone, Debug)]
struct InFlight {
    sent: i64,
    reserved: Decimal,
    gave_up: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PredictionStats {
    pub requests: u64,
    pub responses: u64,
    pub failures: u64,
    /// Requests the core gave up waiting for (`predict.timeout_ms`).
    pub timeouts: u64,
    /// Answers that came after `predict.ttl_ms`, or after the core gave up: ignored.
    pub late: u64,
    pub unavailable: u64,
    /// Calls the driver ended after the core gave up on them, booked at their worst case.
    pub cancelled: u64,
    /// Answers to an older request than the one in use, and answers to no call in flight.
    pub superseded: u64,
    pub unknown: u64,
}

#[derive(Clone, Debug)]
pub struct PredictionState {
    cfg: PredictConfig,
    max_completion_tokens: u32,
    price_in: Decimal,
    price_out: Decimal,
    latest: Option<Latest>,
    in_flight: BTreeMap<u64, InFlight>,
    sent_times: VecDeque<i64>,
    last_sent: Option<(i64, f64, f64)>,
    breaker: Breaker,
    budget: Budget,
    gate: PredictorGate,
    /// Worst-case cost of the last request, used to decide whether another would fit.
    typical_reserve: Decimal,
    pub stats: PredictionStats,
}

impl PredictionState {
    pub fn new(cfg: &PredictConfig, azure: &AzureConfig) -> PredictionState {
        let mut s = PredictionState {
            cfg: cfg.clone(),
            max_completion_tokens: azure.max_completion_tokens,
            price_in: azure.price_input_per_mtok,
            price_out: azure.price_output_per_mtok,
            latest: None,
            in_flight: BTreeMap::new(),
            sent_times: VecDeque::new(),
            last_sent: None,
            breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown_s),
            budget: Budget::new(
                cfg.budget_usd_per_hour,
                cfg.budget_usd_per_day,
                cfg.budget_usd_total,
            ),
            gate: PredictorGate::Open,
            typical_reserve: Decimal::ZERO,
            stats: PredictionStats::default(),
        };
        s.typical_reserve = s.reserve_for(6_000);
        s
    }

    fn ns(ms: u64) -> i64 {
        ms as i64 * NS_PER_MS
    }

    /// The most a request with a prompt of `prompt_bytes` can cost.
    pub fn reserve_for(&self, prompt_bytes: usize) -> Decimal {
        let tokens = prompt_bytes as u64 / BYTES_PER_TOKEN + 64;
        (Decimal::from(tokens) * self.price_in
            + Decimal::from(self.max_completion_tokens) * self.price_out)
            / Decimal::from(1_000_000)
    }

    /// The end of a call. Returns true when the prediction the quotes use changed; an answer
    /// that ends up unused says why in `outcomes`.
    pub fn on_response(
        &mut self,
        seq: u64,
        r: &PredictionResponse,
        now: i64,
        outcomes: &mut Vec<PredictionOutcome>,
    ) -> bool {
        self.stats.responses += 1;
        let mut ignored = |outcome: CallOutcome, sent: i64| {
            outcomes.push(PredictionOutcome {
                request_id: r.request_id,
                outcome,
                after_ms: (now.saturating_sub(sent).max(0) / NS_PER_MS) as u64,
            })
        };
        let Some(f) = self.in_flight.remove(&r.request_id) else {
            // Nothing was reserved for it; whatever it cost is spent all the same.
            self.stats.unknown += 1;
            self.budget.settle(now, Decimal::ZERO, r.cost_usd);
            ignored(CallOutcome::Unknown, now);
            return false;
        };
        let cancelled = matches!(&r.result, Err(e) if e.kind == FailureKind::Cancelled);
        if cancelled {
            // The service may have billed it in full: count the worst case.
            self.stats.cancelled += 1;
            self.budget
                .settle(now, f.reserved, f.reserved.max(r.cost_usd));
            return false;
        }
        self.budget.settle(now, f.reserved, r.cost_usd);
        if f.gave_up {
            // Its failure was counted when the core gave up on it.
            self.stats.late += 1;
            ignored(CallOutcome::AnsweredAfterGiveUp, f.sent);
            return false;
        }
        let p = match &r.result {
            Err(e) if e.kind == FailureKind::Unavailable => {
                self.stats.unavailable += 1;
                return false;
            }
            Err(_) => {
                self.stats.failures += 1;
                self.breaker.on_failure(now);
                return false;
            }
            Ok(p) => p,
        };
        // The service works, even if this answer is too old to use.
        self.breaker.on_success();
        if now - f.sent > Self::ns(self.cfg.ttl_ms) {
            self.stats.late += 1;
            ignored(CallOutcome::Stale, f.sent);
            return false;
        }
        if self.latest.as_ref().is_some_and(|l| l.asked_at > f.sent) {
            self.stats.superseded += 1;
            ignored(CallOutcome::Superseded, f.sent);
            return false;
        }
        self.latest = Some(Latest {
            used: PredictionUsed {
                request_id: r.request_id,
                response_seq: seq,
                source: r.source,
                direction: p.direction,
                confidence: p.confidence,
                price_change_bps: p.price_change_bps,
                age_ms: 0,
            },
            asked_at: f.sent,
        });
        true
    }

    /// The unexpired prediction with its age, and the weight it gets in the blend with the
    /// rules: `predict.model_weight` x (1 - age / ttl), so confidence fades with age.
    pub fn current(&self, now: i64) -> Option<(PredictionUsed, Decimal)> {
        let l = self.latest.as_ref()?;
        let age = now - l.asked_at;
        let ttl = Self::ns(self.cfg.ttl_ms);
        if age > ttl {
            return None;
        }
        let mut used = l.used.clone();
        used.age_ms = (age / NS_PER_MS) as u64;
        let fresh =
            Decimal::ONE - Decimal::from(age / NS_PER_MS) / Decimal::from(self.cfg.ttl_ms.max(1));
        Some((used, self.cfg.model_weight * fresh.max(Decimal::ZERO)))
    }

    /// Gives up on requests older than `predict.timeout_ms`: each counts as a failure and is
    /// told to the driver (a `GaveUp` outcome), which must end the call and report its end.
    pub fn expire_in_flight(&mut self, now: i64, outcomes: &mut Vec<PredictionOutcome>) -> bool {
        let timeout = Self::ns(self.cfg.timeout_ms);
        let mut any = false;
        for (id, f) in self.in_flight.iter_mut() {
            if f.gave_up || now.saturating_sub(f.sent) <= timeout {
                continue;
            }
            f.gave_up = true;
            any = true;
            self.breaker.on_failure(now);
            self.stats.timeouts += 1;
            outcomes.push(PredictionOutcome {
                request_id: *id,
                outcome: CallOutcome::GaveUp,
                after_ms: (now.saturating_sub(f.sent) / NS_PER_MS) as u64,
            });
        }
        any
    }

    /// Re-evaluates the gate; returns the new status when it changed.
    pub fn update_gate(&mut self, now: i64) -> Option<PredictorStatus> {
        self.breaker.poll(now);
        // What is merely in flight does not close the gate: it may cost less than reserved,
        // and the admission check counts it anyway.
        let blocked = self.budget.blocks_settled(now, self.typical_reserve);
        let gate = match (self.breaker.state(), blocked) {
            (BreakerState::Open, _) => PredictorGate::BreakerOpen,
            (_, Some(Cap::Hour)) => PredictorGate::OverBudgetHour,
            (_, Some(Cap::Day)) => PredictorGate::OverBudgetDay,
            (_, Some(Cap::Total)) => PredictorGate::OverBudgetTotal,
            (BreakerState::HalfOpen, None) => PredictorGate::HalfOpen,
            (BreakerState::Closed, None) => PredictorGate::Open,
        };
        if gate == self.gate {
            return None;
        }
        self.gate = gate;
        let (hour, day, total) = self.budget.spent();
        let detail = match (gate, blocked) {
            (PredictorGate::Open, _) => "model requests flow; quotes blend the model with the rules".to_string(),
            (PredictorGate::BreakerOpen, _) => format!(
                "{} consecutive failures (predict.breaker_failures = {}): quoting on rules alone; half-open in {} s (predict.breaker_cooldown_s)",
                self.breaker.consecutive_failures(),
                self.cfg.breaker_failures,
                self.cfg.breaker_cooldown_s
            ),
            (PredictorGate::HalfOpen, _) => "cooldown over: one probe request may go".to_string(),
            (_, Some(cap)) => {
                let spent = match cap {
                    Cap::Hour => hour,
                    Cap::Day => day,
                    Cap::Total => total,
                };
                format!(
                    "over budget: {} USD spent of {} ({}), and the next request could cost {}: quoting on rules alone",
                    spent.round_dp(6),
                    self.budget.limit(cap),
                    cap.key(),
                    self.typical_reserve.round_dp(6)
                )
            }
            (_, None) => String::new(),
        };
        Some(PredictorStatus { gate, detail })
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    pub fn gate(&self) -> PredictorGate {
        self.gate
    }

    /// Should a request go now? `spread_bps` and `vol_bps` feed the early trigger.
    pub fn due(&mut self, now: i64, spread_bps: f64, vol_bps: f64) -> bool {
        if !matches!(self.gate, PredictorGate::Open | PredictorGate::HalfOpen)
            || !self.breaker.allows(self.in_flight.len())
            || self.in_flight.len() >= self.cfg.max_in_flight as usize
        {
            return false;
        }
        while self
            .sent_times
            .front()
            .is_some_and(|t| *t <= now - NS_PER_MIN)
        {
            self.sent_times.pop_front();
        }
        if self.sent_times.len() >= self.cfg.max_requests_per_minute as usize {
            return false;
        }
        let Some((last, spread0, vol0)) = self.last_sent else {
            return true;
        };
        if now >= last + Self::ns(self.cfg.interval_ms) {
            return true;
        }
        // The early request: the market changed character since the last one.
        now >= last + Self::ns(self.cfg.early_min_interval_ms)
            && ((self.cfg.early_spread_ratio > 0.0
                && spread0 > 0.0
                && spread_bps >= self.cfg.early_spread_ratio * spread0)
                || (self.cfg.early_vol_ratio > 0.0
                    && vol0 > 0.0
                    && vol_bps >= self.cfg.early_vol_ratio * vol0))
    }

    /// Reserves the worst-case cost of a request; false when a cap would not allow it.
    pub fn admit(&mut self, now: i64, reserve: Decimal) -> bool {
        self.budget.blocks(now, reserve).is_none()
    }

    pub fn sent(&mut self, id: u64, now: i64, reserve: Decimal, spread_bps: f64, vol_bps: f64) {
        self.budget.reserve(reserve);
        self.typical_reserve = reserve;
        self.in_flight.insert(
            id,
            InFlight {
                sent: now,
                reserved: reserve,
                gave_up: false,
            },
        );
        self.sent_times.push_back(now);
        self.last_sent = Some((now, spread_bps, vol_bps));
        self.stats.requests += 1;
    }

    /// When the core must look again without new input.
    pub fn deadline(&self, now: i64) -> Option<i64> {
        let mut d: Option<i64> = None;
        let mut consider = |t: i64| d = Some(d.map_or(t, |x| x.min(t)));
        for f in self.in_flight.values().filter(|f| !f.gave_up) {
            consider(f.sent.saturating_add(Self::ns(self.cfg.timeout_ms)) + 1);
        }
        if let Some(l) = &self.latest {
            let expiry = l.asked_at + Self::ns(self.cfg.ttl_ms) + 1;
            if expiry > now {
                consider(expiry);
            }
        }
        if let Some(t) = self.breaker.deadline() {
            consider(t);
        }
        for cap in [Cap::Hour, Cap::Day] {
            if matches!(
                (self.gate, cap),
                (PredictorGate::OverBudgetHour, Cap::Hour)
                    | (PredictorGate::OverBudgetDay, Cap::Day)
            ) {
                if let Some(t) = self.budget.deadline(cap) {
                    consider(t + 1);
                }
            }
        }
        if matches!(self.gate, PredictorGate::Open | PredictorGate::HalfOpen)
            && self.in_flight.len() < self.cfg.max_in_flight as usize
        {
            let next = match self.last_sent {
                Some((t, _, _)) => t + Self::ns(self.cfg.interval_ms),
                None => now,
            };
            let window = if self.sent_times.len() >= self.cfg.max_requests_per_minute as usize {
                self.sent_times.front().map(|t| t + NS_PER_MIN + 1)
            } else {
                None
            };
            consider(next.max(window.unwrap_or(i64::MIN)));
        }
        d
    }
}
