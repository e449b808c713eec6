//! A local stand-in for Azure OpenAI chat completions, speaking the real protocol (HTTP/1.1,
//! JSON) on 127.0.0.1. Tests start it to exercise the client end to end; the recorded-session
//! fixture was made with it. It checks what a real o4-mini deployment checks: the path and
//! api-version, the `api-key` or bearer header, and the parameters o-series models reject.
//!
//! Unless a test scripts its replies, it answers deterministically from the prompt:
//! - x = ln(best bid size / best ask size), read from the "best bid: P x Q" and "best ask" lines;
//! - price_change_bps = x * 2, rounded to 2 places and clamped to [-8, 8];
//! - direction = bullish above 1 bp, bearish below -1 bp, else neutral;
//! - confidence = 0.5 + min(|x|, 2) / 5, rounded to 2 places;
//! - latency: u = a seeded hash of the prompt mapped to [0, 1), 500 + 4000 * u^3 ms, reported in
//!   the `openai-processing-ms` header and slept for `time_scale` times that;
//! - usage: prompt tokens = prompt bytes / 4, completion tokens = 300 + hash % 500 (all but 60 of
//!   them reasoning).

use crate::http::{accept_loop, response, Request, RequestReader};
use flashmm_core::config::AzureApi;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Reply {
    /// A status, extra headers and a body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Waits, then replies.
    Delay { ms: u64, then: Box<Reply> },
    /// Closes the connection without a word.
    Hangup,
    /// The deterministic answer described above.
    Model,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// What the fake expects of every request.
#[derive(Clone, Debug)]
pub struct Expect {
    pub api: AzureApi,
    pub deployment: String,
    pub api_version: String,
    /// The credential: `api-key` header or `Authorization: Bearer`.
    pub api_key: Option<String>,
    pub bearer: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What the fake refused about it, if anything.
    pub problem: Option<String>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    expect: Expect,
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
    seed: u64,
    time_scale: f64,
}

pub struct FakeAzure {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAzure {
    /// Starts on a free port of 127.0.0.1. Scripted replies are used in order; after them, or
    /// with none, `Reply::Model`.
    pub async fn start(
        expect: Expect,
        script: Vec<Reply>,
        seed: u64,
        time_scale: f64,
    ) -> std::io::Result<FakeAzure> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            expect,
            script: Mutex::new(script.into()),
            received: Mutex::new(Vec::new()),
            seed,
            time_scale,
        });
        let s = shared.clone();
        let task = tokio::spawn(accept_loop(listener, move |conn| {
            let s = s.clone();
            async move {
                let _ = serve(conn, s).await;
            }
        }));
        Ok(FakeAzure { addr, shared, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

async fn serve(mut conn: TcpStream, s: Arc<Shared>) -> std::io::Result<()> {
    let mut reader = RequestReader::new();
    while let Some(Request {
        method,
        target,
        headers,
        body,
    }) = reader.next(&mut conn).await?
    {
        let mut req = Received {
            method,
            target,
            headers,
            body,
            problem: None,
        };
        let refusal = check(&s.expect, &req);
        req.problem = refusal.as_ref().map(|(_, why, _)| why.clone());
        let prompt = prompt_of(&req.body);
        if let Ok(mut r) = s.received.lock() {
            r.push(req);
        }
        let mut reply = match refusal {
            Some((status, _, body)) => Reply::json(status, body),
            None => s
                .script
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front())
                .unwrap_or(Reply::Model),
        };
        loop {
            match reply {
                Reply::Delay { ms, then } => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    reply = *then;
                }
                Reply::Hangup => return Ok(()),
                Reply::Model => {
                    let (latency_ms, body) = model_answer(&prompt, s.seed);
                    tokio::time::sleep(Duration::from_secs_f64(
                        latency_ms as f64 / 1000.0 * s.time_scale,
                    ))
                    .await;
                    reply = Reply::Respond {
                        status: 200,
                        headers: vec![("openai-processing-ms".into(), latency_ms.to_string())],
                        body,
                    };
                }
                Reply::Respond {
                    status,
                    headers,
                    body,
                } => {
                    let mut all = vec![
                        (
                            "apim-request-id".to_string(),
                            format!("fake-{}", s.received.lock().map(|r| r.len()).unwrap_or(0)),
                        ),
                        ("x-ratelimit-remaining-requests".into(), "99".into()),
                        ("x-ratelimit-remaining-tokens".into(), "99000".into()),
                    ];
                    all.extend(headers);
                    let out = response(status, &all, &body);
                    conn.write_all(&out).await?;
                    break;
                }
            }
        }
    }
    Ok(())
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"error": {"code": code, "message": message}}).to_string()
}

/// What a real deployment would refuse, as (status, why, body).
fn check(e: &Expect, r: &Received) -> Option<(u16, String, String)> {
    let path = match e.api {
        AzureApi::Deployments => format!("/openai/deployments/{}/chat/completions", e.deployment),
        AzureApi::V1 => "/openai/v1/chat/completions".to_string(),
    };
    let (p, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
    if r.method != "POST" || p != path {
        let why = format!("{} {} is not POST {path}", r.method, p);
        return Some((404, why.clone(), error_body("404", "Resource not found")));
    }
    if e.api == AzureApi::Deployments && query != format!("api-version={}", e.api_version) {
        let why = format!("query {query:?} lacks api-version={}", e.api_version);
        return Some((404, why, error_body("404", "Resource not found")));
    }
    let authorized = match (&e.api_key, &e.bearer) {
        (Some(k), _) if r.header("api-key") == Some(k.as_str()) => true,
        (_, Some(t)) if r.header("authorization") == Some(format!("Bearer {t}").as_str()) => true,
        _ => false,
    };
    if !authorized {
        return Some((
            401,
            "missing or wrong credential".into(),
            error_body(
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint.",
            ),
        ));
    }
    let body: serde_json::Value = match serde_json::from_str(&r.body) {
        Ok(v) => v,
        Err(_) => {
            return Some((
                400,
                "body is not JSON".into(),
                error_body("invalid_request_error", "body is not JSON"),
            ))
        }
    };
    for (key, code) in [
        ("temperature", "unsupported_value"),
        ("top_p", "unsupported_value"),
        ("max_tokens", "unsupported_parameter"),
    ] {
        if body.get(key).is_some() {
            let why = format!("{key} is not supported with this model");
            return Some((
                400,
                why.clone(),
                error_body(
                    code,
                    &format!("Unsupported parameter: '{key}' is not supported with this model."),
                ),
            ));
        }
    }
    if e.api == AzureApi::V1
        && body.get("model").and_then(|m| m.as_str()) != Some(e.deployment.as_str())
    {
        return Some((
            400,
            "v1 body lacks the deployment as model".into(),
            error_body("invalid_request_error", "model is required"),
        ));
    }
    None
}

fn prompt_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn fnv1a(seed: u64, s: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn size_after(prompt: &str, label: &str) -> Option<f64> {
    let line = prompt.lines().find(|l| l.starts_with(label))?;
    line.rsplit(" x ").next()?.trim().parse().ok()
}

/// The deterministic answer: (latency in ms, chat completion body).
pub fn model_answer(prompt: &str, seed: u64) -> (u64, String) {
    let h = fnv1a(seed, prompt);
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let latency_ms = 500 + (4000.0 * u * u * u) as u64;
    let x = match (
        size_after(prompt, "best bid:"),
        size_after(prompt, "best ask:"),
    ) {
        (Some(b), Some(a)) if b > 0.0 && a > 0.0 => (b / a).ln(),
        _ => 0.0,
    };
    let bps = ((x * 2.0 * 100.0).round() / 100.0).clamp(-8.0, 8.0);
    let direction = if bps > 1.0 {
        "bullish"
    } else if bps < -1.0 {
        "bearish"
    } else {
        "neutral"
    };
    let confidence = ((0.5 + x.abs().min(2.0) / 5.0) * 100.0).round() / 100.0;
    let content = serde_json::json!({
        "direction": direction,
        "confidence": confidence,
        "price_change_bps": bps,
        "reasoning": format!("fake model: bid/ask size ratio {:.3}", x.exp()),
    })
    .to_string();
    let completion = 300 + (h % 500) as u32;
    let body = serde_json::json!({
        "id": format!("chatcmpl-fake-{h:016x}"),
        "object": "chat.completion",
        "created": 1_723_161_600u64,
        "model": "o4-mini-2025-04-16",
        "system_fingerprint": "fake",
        "choices": [{
            "index": 0,
            "finish_reason": "stop",
            "logprobs": null,
            "message": {"role": "assistant", "content": content, "refusal": null}
        }],
        "usage": {
            "prompt_tokens": prompt.len() / 4,
            "completion_tokens": completion,
            "total_tokens": prompt.len() / 4 + completion as usize,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": completion - 60}
        }
    })
    .to_string();
    (latency_ms, body)
}
