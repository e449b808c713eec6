//! Predictors answer the core's `PredictionRequest`s with `PredictionResponse`s. The core cannot
//! tell them apart: in a backtest the answer arrives after a simulated latency, live after a
//! real one.

pub mod answer;
pub mod breaker;
pub mod budget;
pub mod prompt;
pub mod rules;

use crate::event::{PredictionRequest, PredictionResponse, PredictorKind};

pub trait Predictor {
    fn kind(&self) -> PredictorKind;
    /// Answers `req`; `now_ns` is the market time of the request. `latency_ms` is filled by the
    /// caller, which knows the (simulated or measured) latency.
    fn answer(&mut self, req: &PredictionRequest, now_ns: i64) -> PredictionResponse;
    /// True when `latency_ms` in the answer is a real measurement the simulation should wait;
    /// otherwise the backtest waits `backtest.predictor_latency_ms`.
    fn measures_latency(&self) -> bool {
        false
    }
}

/// The raw text a local predictor "said", kept in the journal like a model's answer.
pub fn raw_json(p: &crate::event::Prediction) -> String {
    serde_json::json!({
        "direction": p.direction.as_str(),
        "confidence": p.confidence.to_string(),
        "price_change_bps": p.price_change_bps.to_string(),
        "reasoning": p.reasoning,
    })
    .to_string()
}
