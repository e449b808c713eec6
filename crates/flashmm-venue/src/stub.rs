//! The stub predictor: always neutral, or scripted from a JSONL file where each line is
//! `{"at": "<RFC 3339 market time>", "direction": "bullish", "confidence": 0.8,
//! "price_change_bps": 3, "reasoning": "..."}` or `{"at": "...", "error": "timeout"}`.
//! A request is answered by the last line whose `at` is not after the request's market time;
//! before the first line it is neutral.

use flashmm_core::event::when;
use flashmm_core::event::{
    decimal, Direction, FailureKind, Prediction, PredictionFailure, PredictionRequest,
    PredictionResponse, PredictorKind,
};
use flashmm_core::signal::{raw_json, Predictor};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error("cannot read stub script {path} (backtest.stub_script): {detail}")]
    Read { path: String, detail: String },
    #[error("stub script {path} line {line}: {detail}")]
    Line {
        path: String,
        line: usize,
        detail: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptLine {
    at: String,
    direction: Option<Direction>,
    #[serde(default, with = "decimal::opt")]
    confidence: Option<Decimal>,
    #[serde(default, with = "decimal::opt")]
    price_change_bps: Option<Decimal>,
    #[serde(default)]
    reasoning: String,
    error: Option<String>,
}

#[derive(Clone, Debug)]
struct Step {
    at: i64,
    answer: Result<Prediction, PredictionFailure>,
}

pub struct Stub {
    script: Vec<Step>,
}

fn neutral(reasoning: &str) -> Prediction {
    Prediction {
        direction: Direction::Neutral,
        confidence: dec!(0.5),
        price_change_bps: Decimal::ZERO,
        reasoning: reasoning.to_string(),
    }
}

impl Stub {
    pub fn neutral() -> Stub {
        Stub { script: Vec::new() }
    }

    pub fn from_file(path: &Path) -> Result<Stub, StubError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| StubError::Read {
            path: p.clone(),
            detail: e.to_string(),
        })?;
        let mut script = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |detail: String| StubError::Line {
                path: p.clone(),
                line: i + 1,
                detail,
            };
            let l: ScriptLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let at = when::parse("at", &l.at, when::Edge::Start).map_err(|e| bad(e.to_string()))?;
            let answer = match (l.error, l.direction) {
                (Some(e), _) => Err(PredictionFailure {
                    kind: FailureKind::Scripted,
                    message: e,
                }),
                (None, Some(direction)) => {
                    let confidence = l.confidence.unwrap_or(dec!(0.5));
                    if !(Decimal::ZERO..=Decimal::ONE).contains(&confidence) {
                        return Err(bad(format!("confidence {confidence} is outside [0, 1]")));
                    }
                    Ok(Prediction {
                        direction,
                        confidence,
                        price_change_bps: l.price_change_bps.unwrap_or(Decimal::ZERO),
                        reasoning: l.reasoning,
                    })
                }
                (None, None) => return Err(bad("a line needs `direction` or `error`".into())),
            };
            if script.last().is_some_and(|s: &Step| s.at > at) {
                return Err(bad("lines must be in time order".into()));
            }
            script.push(Step { at, answer });
        }
        Ok(Stub { script })
    }
}

impl Predictor for Stub {
    fn kind(&self) -> PredictorKind {
        PredictorKind::Stub
    }

    fn answer(&mut self, req: &PredictionRequest, now_ns: i64) -> PredictionResponse {
        let idx = self.script.partition_point(|s| s.at <= now_ns);
        let answer = match idx.checked_sub(1).and_then(|i| self.script.get(i)) {
            Some(s) => s.answer.clone(),
            None => Ok(neutral(if self.script.is_empty() {
                "stub: constant neutral"
            } else {
                "stub: before the script's first line"
            })),
        };
        let raw = match &answer {
            Ok(p) => raw_json(p),
            Err(f) => format!(
                "{{\"error\":{}}}",
                serde_json::Value::String(f.message.clone())
            ),
        };
        PredictionResponse {
            request_id: req.request_id,
            source: PredictorKind::Stub,
            result: answer,
            raw,
            latency_ms: 0,
            usage: None,
            cost_usd: Decimal::ZERO,
            http: None,
        }
    }
}
