//! Azure OpenAI chat completions for an o-series deployment (o4-mini).
//!
//! What o4-mini needs and what the seed got wrong: no `temperature`, `top_p` or `max_tokens`
//! (o-series deployments reject them); `max_completion_tokens` counts the hidden reasoning tokens
//! too, so it must be far above the answer's size; `reasoning_effort`; structured output through a
//! strict `json_schema`; api-version 2025-04-01-preview or the v1 API; seconds of latency.
//!
//! A call never returns an error: every outcome, failures included, is a `PredictionResponse`
//! for the journal, with the raw body, every HTTP attempt, token usage and cost.
//!
//! Longer than 600 lines on purpose: the request body, the retry loop and the classification of
//! every failure are one protocol, kept in one place against Azure's documented behaviour.

use flashmm_core::config::{AzureApi, AzureConfig};
use flashmm_core::event::{
    Attempt, FailureKind, HttpExchange, Prediction, PredictionFailure, PredictionRequest,
    PredictionResponse, PredictorKind, Prompt, TokenUsage,
};
use flashmm_core::signal::answer;
use reqwest::header::{HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Bodies beyond this are cut in the journal; a chat completion is a few kilobytes.
const MAX_RAW_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error("no Azure endpoint: set AZURE_OPENAI_ENDPOINT or azure.endpoint")]
    NoEndpoint,
    #[error("no Azure deployment: set AZURE_OPENAI_DEPLOYMENT or azure.deployment")]
    NoDeployment,
    #[error("no Azure credential: set AZURE_OPENAI_API_KEY (sent as the api-key header) or AZURE_OPENAI_AD_TOKEN (an Entra ID token, sent as Authorization: Bearer)")]
    NoCredential,
    #[error(
        "Azure endpoint {0:?} is not an http(s) URL (azure.endpoint or AZURE_OPENAI_ENDPOINT)"
    )]
    BadEndpoint(String),
    #[error("the credential contains characters an HTTP header cannot carry (AZURE_OPENAI_API_KEY / AZURE_OPENAI_AD_TOKEN)")]
    BadCredential,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A key or token. It has no `Display`, and its `Debug` prints stars, so it cannot end up in a
/// log line or an error by accident.
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug)]
pub enum Credential {
    /// `api-key: <key>`.
    ApiKey(Secret),
    /// `Authorization: Bearer <token>` (Microsoft Entra ID).
    Bearer(Secret),
}

impl Credential {
    pub fn from_env() -> Result<Credential, AzureError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(k) = get("AZURE_OPENAI_API_KEY") {
            return Ok(Credential::ApiKey(Secret::new(k.trim())));
        }
        if let Some(t) = get("AZURE_OPENAI_AD_TOKEN") {
            return Ok(Credential::Bearer(Secret::new(t.trim())));
        }
        Err(AzureError::NoCredential)
    }

    fn secret(&self) -> &Secret {
        match self {
            Credential::ApiKey(s) | Credential::Bearer(s) => s,
        }
    }
}

pub struct AzureClient {
    http: reqwest::Client,
    url: String,
    deployment: String,
    credential: Credential,
    cfg: AzureConfig,
}

impl std::fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("AzureClient")
            .field("url", &self.url)
            .field("credential", &self.credential)
            .finish()
    }
}

/// The strict schema the answer must follow; ranges are checked after parsing, since strict
/// mode does not promise to enforce them.
pub fn response_format() -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {
            "name": "price_signal",
            "strict": true,
            "schema": {
                "type": "object",
                "properties": {
                    "direction": {"type": "string", "enum": ["bullish", "bearish", "neutral"]},
                    "confidence": {"type": "number"},
                    "price_change_bps": {"type": "number"},
                    "reasoning": {"type": "string"}
                },
                "required": ["direction", "confidence", "price_change_bps", "reasoning"],
                "additionalProperties": false
            }
        }
    })
}

impl AzureClient {
    /// Endpoint and deployment from the environment when set, else from `azure.*`; the
    /// credential from the environment only.
    pub fn from_env(cfg: &AzureConfig) -> Result<AzureClient, AzureError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let endpoint = env("AZURE_OPENAI_ENDPOINT").unwrap_or_else(|| cfg.endpoint.clone());
        let deployment = env("AZURE_OPENAI_DEPLOYMENT").unwrap_or_else(|| cfg.deployment.clone());
        AzureClient::new(cfg, &endpoint, &deployment, Credential::from_env()?)
    }

    pub fn new(
        cfg: &AzureConfig,
        endpoint: &str,
        deployment: &str,
        credential: Credential,
    ) -> Result<AzureClient, AzureError> {
        let endpoint = endpoint.trim().trim_end_matches('/');
        if endpoint.is_empty() {
            return Err(AzureError::NoEndpoint);
        }
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(AzureError::BadEndpoint(endpoint.to_string()));
        }
        let deployment = deployment.trim();
        if deployment.is_empty() {
            return Err(AzureError::NoDeployment);
        }
        let url = match cfg.api {
            AzureApi::Deployments => format!(
                "{endpoint}/openai/deployments/{deployment}/chat/completions?api-version={}",
                cfg.api_version
            ),
            AzureApi::V1 => format!("{endpoint}/openai/v1/chat/completions"),
        };
        HeaderValue::from_str(credential.secret().expose())
            .map_err(|_| AzureError::BadCredential)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AzureError::Client(e.to_string()))?;
        Ok(AzureClient {
            http,
            url,
            deployment: deployment.to_string(),
            credential,
            cfg: cfg.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request body. Never `temperature`, `top_p` or `max_tokens`.
    pub fn body(&self, prompt: &Prompt) -> Value {
        let mut body = json!({
            "messages": [
                {"role": "developer", "content": prompt.developer},
                {"role": "user", "content": prompt.user}
            ],
            "max_completion_tokens": self.cfg.max_completion_tokens,
            "reasoning_effort": self.cfg.reasoning_effort.as_str(),
            "response_format": response_format(),
        });
        if self.cfg.api == AzureApi::V1 {
            body["model"] = Value::String(self.deployment.clone());
        }
        body
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let (name, value) = match &self.credential {
            Credential::ApiKey(k) => ("api-key", k.expose().to_string()),
            Credential::Bearer(t) => ("authorization", format!("Bearer {}", t.expose())),
        };
        if let Ok(mut v) = HeaderValue::from_str(&value) {
            v.set_sensitive(true);
            h.insert(name, v);
        }
        h
    }

    /// Removes the secret from text that came from outside (an echoing proxy, say).
    fn scrub(&self, text: &str) -> String {
        let s = self.credential.secret().expose();
        if s.len() >= 4 && text.contains(s) {
            text.replace(s, "***")
        } else {
            text.to_string()
        }
    }

    /// Asks the model, with retries, inside `azure.timeout_s` for the whole call.
    pub async fn call(&self, req: &PredictionRequest) -> PredictionResponse {
        let started = Instant::now();
        let mut http = HttpExchange::default();
        let respond = |result, raw: String, usage, cost, http: HttpExchange| PredictionResponse {
            request_id: req.request_id,
            source: PredictorKind::Azure,
            result,
            raw,
            latency_ms: started.elapsed().as_millis() as u64,
            usage,
            cost_usd: cost,
            http: Some(http),
        };
        let Some(prompt) = &req.prompt else {
            let f = PredictionFailure {
                kind: FailureKind::Malformed,
                message: "the request carries no prompt".into(),
            };
            return respond(Err(f), String::new(), None, Decimal::ZERO, http);
        };
        let body = self.body(prompt);
        let deadline = started + Duration::from_secs(self.cfg.timeout_s);
        let mut backoff = crate::backoff::Backoff::new(
            self.cfg.backoff_base_ms,
            self.cfg.backoff_max_ms,
            req.request_id ^ crate::backoff::seed(),
        );
        let mut attempt_no = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let t0 = Instant::now();
            let sent = self
                .http
                .post(&self.url)
                .headers(self.headers())
                .json(&body)
                .timeout(remaining)
                .send()
                .await;
            let (status, headers, text, error) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.text().await {
                        Ok(t) => (Some(status), Some(headers), t, None),
                        Err(e) => (Some(status), Some(headers), String::new(), Some(e)),
                    }
                }
                Err(e) => (None, None, String::new(), Some(e)),
            };
            let retry_after_ms = headers.as_ref().and_then(retry_after_ms);
            if let Some(h) = &headers {
                read_rate_headers(h, &mut http);
            }
            let failure = error.as_ref().map(|e| {
                if e.is_timeout() {
                    (
                        FailureKind::Timeout,
                        format!(
                            "no answer within azure.timeout_s = {} s",
                            self.cfg.timeout_s
                        ),
                    )
                } else {
                    (FailureKind::Connection, self.scrub(&error_chain(e)))
                }
            });
            http.attempts.push(Attempt {
                status: if error.is_some() && status.is_none() {
                    None
                } else {
                    status
                },
                latency_ms: t0.elapsed().as_millis() as u64,
                error: failure.as_ref().map(|f| f.1.clone()),
                retry_after_ms,
            });
            let retryable = match (status, &failure) {
                (_, Some((FailureKind::Timeout, _))) => false,
                (_, Some(_)) => true,
                (Some(s), None) => matches!(s, 408 | 409 | 429) || (500..600).contains(&s),
                (None, None) => false,
            };
            let wait = retry_after_ms
                .map(Duration::from_millis)
                .unwrap_or_else(|| backoff.next_delay());
            let time_left = deadline.saturating_duration_since(Instant::now());
            if retryable && attempt_no < self.cfg.max_retries && wait < time_left {
                attempt_no += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            let raw = self.scrub(&truncate(text));
            if let Some((kind, message)) = failure {
                let message = if retryable && attempt_no >= self.cfg.max_retries {
                    format!(
                        "{message} (gave up after {} attempts; azure.max_retries = {})",
                        attempt_no + 1,
                        self.cfg.max_retries
                    )
                } else {
                    message
                };
                return respond(
                    Err(PredictionFailure { kind, message }),
                    raw,
                    None,
                    Decimal::ZERO,
                    http,
                );
            }
            let status = status.unwrap_or(0);
            let (result, usage, cost) = parse_completion(status, &raw, &self.cfg);
            let result = match result {
                Err(mut f) if retryable => {
                    f.message = format!("{} (after {} attempts)", f.message, attempt_no + 1);
                    Err(f)
                }
                other => other,
            };
            return respond(result, raw, usage, cost, http);
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_RAW_BYTES {
        let mut cut = MAX_RAW_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…[truncated]");
    }
    s
}

fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.without_url_ref().to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    /// The URL carries no secret, but it is noise in every line; the attempt says where.
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s
                .replace(&format!(" ({u})"), "")
                .replace(u.as_str(), "<azure>");
        }
        s
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
}

/// `retry-after-ms` first (Azure's), then `retry-after` in seconds.
fn retry_after_ms(h: &HeaderMap) -> Option<u64> {
    header_u64(h, "retry-after-ms").or_else(|| {
        let s: f64 = h.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
        (s.is_finite() && s >= 0.0).then_some((s * 1000.0) as u64)
    })
}

fn read_rate_headers(h: &HeaderMap, http: &mut HttpExchange) {
    http.ratelimit_remaining_requests =
        header_u64(h, "x-ratelimit-remaining-requests").or(http.ratelimit_remaining_requests);
    http.ratelimit_remaining_tokens =
        header_u64(h, "x-ratelimit-remaining-tokens").or(http.ratelimit_remaining_tokens);
    http.server_ms = header_u64(h, "openai-processing-ms").or(http.server_ms);
    let id = h
        .get("apim-request-id")
        .or_else(|| h.get("x-request-id"))
        .and_then(|v| v.to_str().ok());
    if let Some(id) = id {
        http.request_id = Some(id.to_string());
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    finish_reason: Option<String>,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<Value>,
    message: Option<String>,
    innererror: Option<InnerError>,
}

#[derive(Deserialize)]
struct InnerError {
    code: Option<String>,
}

/// Cost by token class. Reasoning tokens are part of `completion_tokens` and billed as output.
pub fn cost(u: &TokenUsage, cfg: &AzureConfig) -> Decimal {
    let m = Decimal::from(1_000_000);
    let uncached = Decimal::from(u.prompt.saturating_sub(u.cached));
    (uncached * cfg.price_input_per_mtok
        + Decimal::from(u.cached) * cfg.price_cached_input_per_mtok
        + Decimal::from(u.completion) * cfg.price_output_per_mtok)
        / m
}

fn fail(kind: FailureKind, message: impl Into<String>) -> Result<Prediction, PredictionFailure> {
    Err(PredictionFailure {
        kind,
        message: message.into(),
    })
}

/// Turns one HTTP response into a prediction or a failure, with usage and cost when the body
/// reports them (a filtered or truncated answer still costs money).
pub fn parse_completion(
    status: u16,
    body: &str,
    cfg: &AzureConfig,
) -> (
    Result<Prediction, PredictionFailure>,
    Option<TokenUsage>,
    Decimal,
) {
    if status != 200 {
        let err: Option<ErrorDetail> = serde_json::from_str::<ErrorBody>(body)
            .ok()
            .and_then(|b| b.error);
        let code = err.as_ref().and_then(|e| e.code.as_ref()).map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let inner = err
            .as_ref()
            .and_then(|e| e.innererror.as_ref())
            .and_then(|i| i.code.clone());
        let message = err
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| "no error message".into());
        let filtered = code.as_deref() == Some("content_filter")
            || inner.as_deref() == Some("ResponsibleAIPolicyViolation");
        let r = if status == 400 && filtered {
            fail(
                FailureKind::ContentFilter,
                format!("the prompt was filtered (HTTP 400 content_filter): {message}"),
            )
        } else {
            // Azure often repeats the status as the code ("429"): say it once.
            let code = code
                .filter(|c| *c != status.to_string())
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            fail(FailureKind::Http, format!("HTTP {status}{code}: {message}"))
        };
        return (r, None, Decimal::ZERO);
    }
    let c: Completion = match serde_json::from_str(body) {
        Ok(c) => c,
        Err(e) => {
            return (
                fail(
                    FailureKind::Malformed,
                    format!("the response is not a chat completion: {e}"),
                ),
                None,
                Decimal::ZERO,
            )
        }
    };
    let usage = c.usage.map(|u| TokenUsage {
        prompt: u.prompt_tokens,
        cached: u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        completion: u.completion_tokens,
        reasoning: u
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0),
    });
    let cost_usd = usage
        .as_ref()
        .map(|u| cost(u, cfg))
        .unwrap_or(Decimal::ZERO);
    let Some(choice) = c.choices.into_iter().next() else {
        return (
            fail(FailureKind::Malformed, "the response has no choices"),
            usage,
            cost_usd,
        );
    };
    let (content, refusal) = match choice.message {
        Some(m) => (m.content.unwrap_or_default(), m.refusal.unwrap_or_default()),
        None => (String::new(), String::new()),
    };
    // What the response says it used, for a `length` failure: the configured limit alone does
    // not say whether the reasoning or the answer took the tokens.
    let used = match &usage {
        Some(u) => format!(
            "{} completion tokens used ({} of them reasoning) of azure.max_completion_tokens = {}",
            u.completion, u.reasoning, cfg.max_completion_tokens
        ),
        None => format!(
            "azure.max_completion_tokens = {} reached (the response reported no usage)",
            cfg.max_completion_tokens
        ),
    };
    let r = if !refusal.trim().is_empty() {
        fail(
            FailureKind::Refusal,
            format!("the model refused: {refusal}"),
        )
    } else {
        match choice.finish_reason.as_deref() {
            Some("content_filter") => fail(FailureKind::ContentFilter, "the answer was filtered (finish_reason content_filter)"),
            Some("length") if content.trim().is_empty() => fail(
                FailureKind::Length,
                format!(
                    "finish_reason length with no content: the hidden reasoning took the budget ({used}); raise azure.max_completion_tokens"
                ),
            ),
            Some("length") => match answer::parse(&content) {
                Ok(p) => Ok(p),
                Err(_) => fail(
                    FailureKind::Length,
                    format!("the answer was cut off ({used}); raise azure.max_completion_tokens"),
                ),
            },
            Some("stop") | None => answer::parse(&content),
            Some(other) => fail(FailureKind::Malformed, format!("unexpected finish_reason {other:?}")),
        }
    };
    (r, usage, cost_usd)
}

/// Azure as a synchronous predictor, for backtests and `flashmm predict --once`: each answer
/// blocks on the real call, and its measured latency is what the simulation waits.
pub struct AzurePredictor {
    rt: tokio::runtime::Runtime,
    client: AzureClient,
}

impl AzurePredictor {
    pub fn new(client: AzureClient) -> Result<AzurePredictor, AzureError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AzureError::Client(e.to_string()))?;
        Ok(AzurePredictor { rt, client })
    }

    pub fn client(&self) -> &AzureClient {
        &self.client
    }
}

impl flashmm_core::signal::Predictor for AzurePredictor {
    fn kind(&self) -> PredictorKind {
        PredictorKind::Azure
    }

    fn answer(&mut self, req: &PredictionRequest, _now_ns: i64) -> PredictionResponse {
        self.rt.block_on(self.client.call(req))
    }

    fn measures_latency(&self) -> bool {
        true
    }
}
