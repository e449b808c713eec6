//! Serves the model's recorded answers from an earlier session to a new run's requests.
//!
//! Prompts change when parameters change, so a request cannot be matched to a recording by its
//! bytes. It is matched by its place in the sequence of requests, with time as a guard: the
//! k-th request gets the k-th recorded answer when the two requests were made within
//! `backtest.recorded_tolerance_ms` of each other. A live session's timers fire a few ms late
//! and a what-if fires them on time, so the times alone would hand each request the previous
//! interval's answer. When the places do not line up (the what-if asks at other moments), a
//! request at time t gets the latest recorded answer whose own request was at or before t and
//! which no earlier request has used; older unused answers are passed over. It waits the
//! recorded latency. When there is none to give, the answer is an `unavailable` failure, which
//! the breaker does not count.

use flashmm_core::event::{
    Body, Entry, FailureKind, Input, Output, PredictionFailure, PredictionRequest,
    PredictionResponse, PredictorKind,
};
use flashmm_core::signal::Predictor;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

const NS_PER_MS: i64 = 1_000_000;

pub struct Recorded {
    /// Every recorded request in order: its market time and the answer it got (`None` when
    /// the session ended before one came).
    requests: Vec<(i64, Option<PredictionResponse>)>,
    /// The first request whose answer no request of this run has used or passed over.
    next: usize,
    /// Requests this run has made.
    asked: usize,
    tolerance_ns: i64,
}

impl Recorded {
    /// The answers of `session`, from its entries in seq order (the caller reads the journal;
    /// entries of other sessions are passed over).
    pub fn from_entries<E>(
        session: u64,
        entries: impl IntoIterator<Item = Result<Entry, E>>,
    ) -> Result<Recorded, E> {
        let mut place: BTreeMap<u64, usize> = BTreeMap::new();
        let mut requests: Vec<(i64, Option<PredictionResponse>)> = Vec::new();
        for e in entries {
            let e = e?;
            if e.session != session {
                continue;
            }
            match e.body {
                Body::Output(Output::PredictionRequest(r)) => {
                    place.insert(r.request_id, requests.len());
                    requests.push((e.ts_ns, None));
                }
                Body::Input(Input::PredictionResponse(r)) => {
                    if let Some(slot) = place.get(&r.request_id).and_then(|i| requests.get_mut(*i))
                    {
                        slot.1.get_or_insert(*r);
                    }
                }
                _ => {}
            }
        }
        // Journal order is time order; a stable sort keeps it so for a hand-made stream too.
        requests.sort_by_key(|(t, _)| *t);
        Ok(Recorded {
            requests,
            next: 0,
            asked: 0,
            tolerance_ns: 250 * NS_PER_MS,
        })
    }

    /// How far apart in market time a request and its recorded counterpart at the same place
    /// may be (`backtest.recorded_tolerance_ms`).
    pub fn with_tolerance_ms(mut self, ms: u64) -> Recorded {
        self.tolerance_ns = i64::try_from(ms).unwrap_or(i64::MAX / NS_PER_MS) * NS_PER_MS;
        self
    }

    /// Recorded requests that got an answer.
    pub fn len(&self) -> usize {
        self.requests.iter().filter(|(_, a)| a.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The recorded request this one stands for, by place, else by time.
    fn pick(&self, now_ns: i64) -> Option<usize> {
        let k = self.asked;
        if k >= self.next {
            if let Some((t, Some(_))) = self.requests.get(k) {
                if t.abs_diff(now_ns) <= self.tolerance_ns.unsigned_abs() {
                    return Some(k);
                }
            }
        }
        let upto = self.requests[self.next..].partition_point(|(t, _)| *t <= now_ns) + self.next;
        (self.next..upto)
            .rev()
            .find(|i| self.requests[*i].1.is_some())
    }
}

impl Predictor for Recorded {
    fn kind(&self) -> PredictorKind {
        PredictorKind::Recorded
    }

    fn answer(&mut self, req: &PredictionRequest, now_ns: i64) -> PredictionResponse {
        let picked = self.pick(now_ns);
        self.asked += 1;
        if let Some(i) = picked {
            self.next = i + 1;
            if let Some(recorded) = &self.requests[i].1 {
                let mut r = recorded.clone();
                r.request_id = req.request_id;
                r.source = PredictorKind::Recorded;
                return r;
            }
        }
        PredictionResponse {
            request_id: req.request_id,
            source: PredictorKind::Recorded,
            result: Err(PredictionFailure {
                kind: FailureKind::Unavailable,
                message: "no unused recorded answer at or before this request's time".into(),
            }),
            raw: String::new(),
            latency_ms: 0,
            usage: None,
            cost_usd: Decimal::ZERO,
            http: None,
        }
    }

    fn measures_latency(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashmm_core::event::{Direction, Features, Prediction, Symbol};
    use rust_decimal_macros::dec;

    const MS: i64 = 1_000_000;

    fn entry(seq: u64, ts_ns: i64, body: Body) -> Result<Entry, ()> {
        Ok(Entry {
            seq,
            ts_ns,
            venue_ts_ns: None,
            session: 7,
            cause: None,
            body,
        })
    }

    fn request(id: u64) -> PredictionRequest {
        PredictionRequest {
            request_id: id,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            features: Features::default(),
            prompt: None,
        }
    }

    /// An answer whose bps tells which recorded request it was.
    fn answer(id: u64, bps: i64) -> PredictionResponse {
        PredictionResponse {
            request_id: id,
            source: PredictorKind::Azure,
            result: Ok(Prediction {
                direction: Direction::Bullish,
                confidence: dec!(0.5),
                price_change_bps: Decimal::from(bps),
                reasoning: String::new(),
            }),
            raw: String::new(),
            latency_ms: 40,
            usage: None,
            cost_usd: Decimal::ZERO,
            http: None,
        }
    }

    /// A live session asked at these ms (its timers fired late); `None` marks a request whose
    /// answer never came.
    fn recorded(asked: &[(i64, bool)]) -> Recorded {
        let mut entries = Vec::new();
        for (i, (ms, answered)) in asked.iter().enumerate() {
            let id = 100 + i as u64;
            entries.push(entry(
                2 * i as u64,
                ms * MS,
                Body::Output(Output::PredictionRequest(Box::new(request(id)))),
            ));
            if *answered {
                entries.push(entry(
                    2 * i as u64 + 1,
                    (ms + 40) * MS,
                    Body::Input(Input::PredictionResponse(Box::new(answer(id, *ms)))),
                ));
            }
        }
        Recorded::from_entries(7, entries).unwrap()
    }

    fn served(r: &mut Recorded, at_ms: &[i64]) -> Vec<Option<i64>> {
        at_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                let got = r.answer(&request(i as u64), ms * MS);
                assert_eq!(got.request_id, i as u64);
                got.result
                    .ok()
                    .and_then(|p| rust_decimal::prelude::ToPrimitive::to_i64(&p.price_change_bps))
            })
            .collect()
    }

    /// Issue 13, defect 2: on time, each request came just before its late recorded
    /// counterpart and got the previous interval's answer.
    #[test]
    fn a_what_if_on_time_gets_the_answers_of_the_late_live_requests_place_by_place() {
        let mut r = recorded(&[(1_005, true), (2_013, true), (3_001, true), (4_009, true)]);
        assert_eq!(
            served(&mut r, &[1_000, 2_000, 3_000, 4_000]),
            vec![Some(1_005), Some(2_013), Some(3_001), Some(4_009)]
        );
    }

    #[test]
    fn places_that_do_not_line_up_fall_back_to_the_latest_answer_asked_before() {
        // The what-if asks every 2 s: its second request is far from the recording's second.
        let mut r = recorded(&[(1_000, true), (2_000, true), (3_000, true), (4_000, true)]);
        assert_eq!(
            served(&mut r, &[1_000, 3_500, 3_600]),
            vec![Some(1_000), Some(3_000), None]
        );
        // Beyond the tolerance a place is not trusted.
        let mut r = recorded(&[(1_300, true)]).with_tolerance_ms(250);
        assert_eq!(served(&mut r, &[1_000]), vec![None]);
        let mut r = recorded(&[(1_300, true)]).with_tolerance_ms(300);
        assert_eq!(served(&mut r, &[1_000]), vec![Some(1_300)]);
    }

    #[test]
    fn a_recorded_request_that_never_got_its_answer_keeps_its_place() {
        let mut r = recorded(&[(1_004, true), (2_006, false), (3_002, true)]);
        assert_eq!(r.len(), 2);
        assert_eq!(
            served(&mut r, &[1_000, 2_000, 3_000]),
            vec![Some(1_004), Some(1_004).filter(|_| false), Some(3_002)]
        );
    }
}
