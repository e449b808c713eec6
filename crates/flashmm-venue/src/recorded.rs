//! Serves the model's recorded answers from an earlier session to a new run's requests.
//!
//! Prompts change when parameters change, so a request cannot be matched to a recording by its
//! bytes. It is matched by market time and order: a request at time t gets the latest recorded
//! answer whose own request was at or before t and which no earlier request has used; older
//! unused answers are passed over. It waits the recorded latency. When there is none to give,
//! the answer is an `unavailable` failure, which the breaker does not count.

use flashmm_core::event::{
    Body, Entry, FailureKind, Input, Output, PredictionFailure, PredictionRequest,
    PredictionResponse, PredictorKind,
};
use flashmm_core::signal::Predictor;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

pub struct Recorded {
    /// (market time of the original request, the answer it got), in order.
    answers: Vec<(i64, PredictionResponse)>,
    next: usize,
}

impl Recorded {
    /// The answers of `session`, from its entries in seq order (the caller reads the journal;
    /// entries of other sessions are passed over).
    pub fn from_entries<E>(
        session: u64,
        entries: impl IntoIterator<Item = Result<Entry, E>>,
    ) -> Result<Recorded, E> {
        let mut asked: BTreeMap<u64, i64> = BTreeMap::new();
        let mut answers = Vec::new();
        for e in entries {
            let e = e?;
            if e.session != session {
                continue;
            }
            match e.body {
                Body::Output(Output::PredictionRequest(r)) => {
                    asked.insert(r.request_id, e.ts_ns);
                }
                Body::Input(Input::PredictionResponse(r)) => {
                    if let Some(t) = asked.get(&r.request_id) {
                        answers.push((*t, *r));
                    }
                }
                _ => {}
            }
        }
        answers.sort_by_key(|(t, _)| *t);
        Ok(Recorded { answers, next: 0 })
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

impl Predictor for Recorded {
    fn kind(&self) -> PredictorKind {
        PredictorKind::Recorded
    }

    fn answer(&mut self, req: &PredictionRequest, now_ns: i64) -> PredictionResponse {
        let upto = self.answers[self.next..].partition_point(|(t, _)| *t <= now_ns) + self.next;
        if upto > self.next {
            let (_, recorded) = &self.answers[upto - 1];
            self.next = upto;
            let mut r = recorded.clone();
            r.request_id = req.request_id;
            r.source = PredictorKind::Recorded;
            return r;
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
