//! What the core knows about predictions: the latest one, its age, the request in flight.

use crate::config::PredictConfig;
use crate::event::{PredictionResponse, PredictionUsed};

const NS_PER_MS: i64 = 1_000_000;

#[derive(Clone, Debug)]
struct Latest {
    used: PredictionUsed,
    received: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PredictionStats {
    pub requests: u64,
    pub responses: u64,
    pub failures: u64,
    /// Requests the core gave up waiting for (`predict.timeout_ms`).
    pub timeouts: u64,
}

#[derive(Clone, Debug)]
pub struct PredictionState {
    interval: i64,
    ttl: i64,
    timeout: i64,
    latest: Option<Latest>,
    in_flight: Option<(u64, i64)>,
    next_request: i64,
    pub stats: PredictionStats,
}

impl PredictionState {
    pub fn new(cfg: &PredictConfig) -> PredictionState {
        PredictionState {
            interval: cfg.interval_ms as i64 * NS_PER_MS,
            ttl: cfg.ttl_ms as i64 * NS_PER_MS,
            timeout: cfg.timeout_ms as i64 * NS_PER_MS,
            latest: None,
            in_flight: None,
            next_request: i64::MIN,
            stats: PredictionStats::default(),
        }
    }

    /// Returns true when the prediction the quotes use changed.
    pub fn on_response(&mut self, seq: u64, r: &PredictionResponse, now: i64) -> bool {
        if self.in_flight.is_some_and(|(id, _)| id == r.request_id) {
            self.in_flight = None;
        }
        self.stats.responses += 1;
        let p = match &r.result {
            Ok(p) => p,
            Err(_) => {
                self.stats.failures += 1;
                return false;
            }
        };
        // A late answer to an older request must not replace a newer one.
        if self
            .latest
            .as_ref()
            .is_some_and(|l| l.used.request_id > r.request_id)
        {
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
            received: now,
        });
        true
    }

    /// The unexpired prediction, with its age.
    pub fn current(&self, now: i64) -> Option<PredictionUsed> {
        let l = self.latest.as_ref()?;
        if now - l.received > self.ttl {
            return None;
        }
        let mut used = l.used.clone();
        used.age_ms = ((now - l.received) / NS_PER_MS) as u64;
        Some(used)
    }

    /// Expires a request that never got an answer; returns true if one did.
    pub fn expire_in_flight(&mut self, now: i64) -> bool {
        match self.in_flight {
            Some((_, sent)) if now - sent > self.timeout => {
                self.in_flight = None;
                self.stats.timeouts += 1;
                true
            }
            _ => false,
        }
    }

    pub fn due(&self, now: i64) -> bool {
        self.in_flight.is_none() && now >= self.next_request
    }

    pub fn sent(&mut self, id: u64, now: i64) {
        self.in_flight = Some((id, now));
        self.next_request = now + self.interval;
        self.stats.requests += 1;
    }

    /// When the core must look again: the next request, a timeout, or the latest expiring.
    pub fn deadline(&self, now: i64) -> Option<i64> {
        let mut d = match self.in_flight {
            Some((_, sent)) => sent + self.timeout + 1,
            None => self.next_request.max(now),
        };
        if let Some(l) = &self.latest {
            let expiry = l.received + self.ttl + 1;
            if expiry > now {
                d = d.min(expiry);
            }
        }
        Some(d)
    }
}
