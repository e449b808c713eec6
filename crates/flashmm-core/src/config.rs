//! Every tunable in one struct, loaded from TOML with `--set key=value` overrides.
//!
//! `backtests/default.toml` documents each key; a test checks that it equals `Config::default()`.
//!
//! Longer than 600 lines on purpose: each section's fields, defaults and validation sit together
//! so a new key cannot be added without its default and its check.

use crate::event::{decimal, Symbol};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("unknown config key `{key}` (in {origin}); run `flashmm config` to see every key")]
    UnknownKey { key: String, origin: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("--set {arg:?}: expected KEY=VALUE, for example --set strategy.levels=5")]
    SetSyntax { arg: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub market: MarketConfig,
    pub features: FeatureConfig,
    pub strategy: StrategyConfig,
    pub risk: RiskConfig,
    pub predict: PredictConfig,
    pub venue: VenueConfig,
    pub backtest: BacktestConfig,
    pub azure: AzureConfig,
    pub citrex: CitrexConfig,
    pub live: LiveConfig,
    pub funding: FundingConfig,
    /// Several markets quoted together (`[[markets]]`): when any are listed, they are the
    /// session's markets and `[market]` only supplies defaults for keys they leave out.
    pub markets: Vec<crate::markets::MarketEntry>,
}

/// Funding of perpetuals when the data carries no rates (recorded rates take precedence).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FundingConfig {
    /// Per interval; positive: longs pay shorts. 0: none (unless the data has rates).
    #[serde(with = "decimal")]
    pub rate: Decimal,
    /// Hours between funding times, on a grid from 00:00 UTC.
    pub interval_h: u64,
}

impl Default for FundingConfig {
    fn default() -> Self {
        FundingConfig {
            rate: Decimal::ZERO,
            interval_h: 8,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    pub symbol: Symbol,
    /// Where the market trades (`binance-spot`, `binance-usdm`, `binance-coinm`, `hyperliquid`,
    /// `citrex`); a backtest takes it from the data.
    pub venue: String,
    pub kind: InstrumentKind,
    #[serde(with = "decimal")]
    pub tick_size: Decimal,
    #[serde(with = "decimal")]
    pub lot_size: Decimal,
    #[serde(with = "decimal")]
    pub min_qty: Decimal,
    /// Quote currency per contract per unit of price (linear), or quote currency per contract
    /// (inverse: 100 USD for Binance's BTCUSD_PERP).
    #[serde(with = "decimal")]
    pub multiplier: Decimal,
    /// The currency prices are in.
    pub quote_currency: String,
    /// The currency PnL and fees are in: the quote for spot and linear, the base for inverse.
    pub settle_currency: String,
}

/// How a position's value follows the price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// Quantity in the base asset; PnL in the quote.
    #[default]
    Spot,
    /// Quantity in the base asset (times `multiplier`); PnL in the quote.
    LinearPerp,
    /// Quantity in contracts worth `multiplier` quote each; PnL in the base:
    /// qty x multiplier x (1/entry - 1/exit).
    InversePerp,
}

impl InstrumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InstrumentKind::Spot => "spot",
            InstrumentKind::LinearPerp => "linear_perp",
            InstrumentKind::InversePerp => "inverse_perp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    pub momentum_trades: u32,
    pub window_s: u64,
    pub depth_levels: u32,
    pub vol_sample_ms: u64,
    pub vol_halflife_s: f64,
    pub vol_min_samples: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategyConfig {
    pub levels: u32,
    #[serde(with = "decimal")]
    pub base_size: Decimal,
    /// The first level's size in quote currency; when above 0 it replaces `base_size`, so one
    /// config serves markets of any price (and inverse contracts: notional / multiplier).
    #[serde(with = "decimal")]
    pub base_notional: Decimal,
    #[serde(with = "decimal")]
    pub size_multiplier: Decimal,
    #[serde(with = "decimal")]
    pub level_spacing_bps: Decimal,
    #[serde(with = "decimal")]
    pub base_half_spread_bps: Decimal,
    #[serde(with = "decimal")]
    pub vol_spread_mult: Decimal,
    #[serde(with = "decimal")]
    pub min_spread_bps: Decimal,
    #[serde(with = "decimal")]
    pub prediction_weight: Decimal,
    pub gamma: f64,
    pub inventory_horizon_s: f64,
    #[serde(with = "decimal")]
    pub refresh_tolerance_bps: Decimal,
    #[serde(with = "decimal")]
    pub size_tolerance: Decimal,
    pub min_refresh_ms: u64,
    pub post_only: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    #[serde(with = "decimal")]
    pub max_position: Decimal,
    #[serde(with = "decimal")]
    pub max_notional: Decimal,
    #[serde(with = "decimal")]
    pub daily_loss_limit: Decimal,
    pub kill_sigma: f64,
    pub kill_window_ms: u64,
    pub kill_min_move_bps: f64,
    pub kill_cooldown_s: u64,
    pub stale_feed_ms: u64,
    pub chain_halt_ms: u64,
    /// Live: once the venue's account has been read, a position moved by fills must be
    /// confirmed by a read within this long, or quoting stops (0 = off).
    pub position_unconfirmed_ms: u64,
    /// Over every market of the session (0 = off): the worst-case notional of all positions and
    /// open orders together, in the markets' quote currency (dollars for USD, USDT, USDC).
    #[serde(with = "decimal")]
    pub max_total_notional: Decimal,
    /// Over every market (0 = off): all quoting stops for the rest of the session when the
    /// markets together have lost this much since it began, in the same currency.
    #[serde(with = "decimal")]
    pub max_total_loss: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictConfig {
    pub interval_ms: u64,
    pub ttl_ms: u64,
    pub timeout_ms: u64,
    pub horizon_s: u64,
    #[serde(with = "decimal")]
    pub rules_signal_bps: Decimal,
    #[serde(with = "decimal")]
    pub model_weight: Decimal,
    pub fallback_rules: bool,
    pub max_requests_per_minute: u32,
    pub max_in_flight: u32,
    pub early_spread_ratio: f64,
    pub early_vol_ratio: f64,
    pub early_min_interval_ms: u64,
    #[serde(with = "decimal")]
    pub budget_usd_per_hour: Decimal,
    #[serde(with = "decimal")]
    pub budget_usd_per_day: Decimal,
    #[serde(with = "decimal")]
    pub budget_usd_total: Decimal,
    pub breaker_failures: u32,
    pub breaker_cooldown_s: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureApi {
    /// `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`
    Deployments,
    /// `{endpoint}/openai/v1/chat/completions` with `"model": deployment`.
    V1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

impl ReasoningEffort {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

/// The Azure OpenAI deployment. Keys are never here: they come from `AZURE_OPENAI_API_KEY` or
/// `AZURE_OPENAI_AD_TOKEN` only, so a journaled config cannot leak them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    /// Overridden by `AZURE_OPENAI_ENDPOINT` when that is set.
    pub endpoint: String,
    /// Overridden by `AZURE_OPENAI_DEPLOYMENT` when that is set.
    pub deployment: String,
    pub api: AzureApi,
    pub api_version: String,
    pub max_completion_tokens: u32,
    pub reasoning_effort: ReasoningEffort,
    pub timeout_s: u64,
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    #[serde(with = "decimal")]
    pub price_input_per_mtok: Decimal,
    #[serde(with = "decimal")]
    pub price_cached_input_per_mtok: Decimal,
    #[serde(with = "decimal")]
    pub price_output_per_mtok: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Queue ahead = visible size at our price on arrival; only trades at our price shrink it.
    Conservative,
    /// Trades shrink it, and so does the share of each cancel at our price that a power law of
    /// the queue ahead and behind puts ahead of us (exponent `venue.queue_power`).
    Power,
    /// The same with ln(1 + x) in place of the power law.
    Log,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VenueConfig {
    pub entry_latency_ms: u64,
    pub cancel_latency_ms: u64,
    pub response_latency_ms: u64,
    #[serde(with = "decimal")]
    pub maker_fee_bps: Decimal,
    #[serde(with = "decimal")]
    pub taker_fee_bps: Decimal,
    pub queue: QueueKind,
    /// The exponent of `queue = "power"` (hftbacktest's PowerProbQueueFunc n).
    pub queue_power: f64,
    pub latency: LatencyKind,
    /// A uniform draw in [0, this] added to every latency; 0: none.
    pub latency_jitter_ms: u64,
    /// The seed of the jitter's random stream (SplitMix64): the same seed, the same latencies.
    pub latency_seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyKind {
    /// The configured latencies.
    Constant,
    /// The configured latencies plus the recorded feed latency of the latest market event.
    Feed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BacktestConfig {
    pub predictor_latency_ms: u64,
    pub model_latency: ModelLatency,
    /// JSONL script for the `stub` predictor; empty means always neutral.
    pub stub_script: String,
    /// A what-if's k-th request gets the recorded session's k-th answer when the two requests
    /// are at most this far apart in market time (a live session's timers fire late).
    pub recorded_tolerance_ms: u64,
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            symbol: Symbol::new("BTCUSDT").unwrap_or_else(|_| unreachable!()),
            venue: "binance-spot".into(),
            kind: InstrumentKind::Spot,
            tick_size: dec!(0.01),
            lot_size: dec!(0.00001),
            min_qty: dec!(0.00001),
            multiplier: Decimal::ONE,
            quote_currency: "USDT".into(),
            settle_currency: "USDT".into(),
        }
    }
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            momentum_trades: 50,
            window_s: 60,
            depth_levels: 5,
            vol_sample_ms: 1000,
            vol_halflife_s: 60.0,
            vol_min_samples: 30,
        }
    }
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig {
            levels: 3,
            base_size: dec!(0.001),
            base_notional: Decimal::ZERO,
            size_multiplier: dec!(1.5),
            level_spacing_bps: dec!(1.0),
            base_half_spread_bps: dec!(1.0),
            vol_spread_mult: dec!(1.0),
            min_spread_bps: dec!(1.0),
            prediction_weight: dec!(0.5),
            gamma: 0.5,
            inventory_horizon_s: 60.0,
            refresh_tolerance_bps: dec!(0.5),
            size_tolerance: dec!(0.5),
            min_refresh_ms: 250,
            post_only: true,
        }
    }
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_position: dec!(0.05),
            max_notional: dec!(5000),
            daily_loss_limit: dec!(250),
            kill_sigma: 5.0,
            kill_window_ms: 1000,
            kill_min_move_bps: 2.0,
            kill_cooldown_s: 60,
            stale_feed_ms: 5000,
            chain_halt_ms: 3000,
            position_unconfirmed_ms: 30_000,
            max_total_notional: Decimal::ZERO,
            max_total_loss: Decimal::ZERO,
        }
    }
}

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            interval_ms: 10_000,
            ttl_ms: 30_000,
            timeout_ms: 45_000,
            horizon_s: 60,
            rules_signal_bps: dec!(2.0),
            model_weight: dec!(0.7),
            fallback_rules: true,
            max_requests_per_minute: 10,
            max_in_flight: 1,
            early_spread_ratio: 3.0,
            early_vol_ratio: 2.0,
            early_min_interval_ms: 2_000,
            budget_usd_per_hour: dec!(2),
            budget_usd_per_day: dec!(20),
            budget_usd_total: dec!(0),
            breaker_failures: 5,
            breaker_cooldown_s: 30,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Mainnet,
    Testnet,
}

/// The Citrex venue and the Sei chain. The stream host, ping rules and rate limits are not
/// documented, so each is a key here rather than a guess in the code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CitrexConfig {
    pub network: Network,
    /// Empty: the network's default (api.citrex.markets or api.staging.citrex.markets).
    pub rest_url: String,
    pub ws_url: String,
    /// Where the market streams live, if not on ws_url.
    pub stream_url: String,
    /// Empty: the network's default (1329 mainnet, 1328 testnet).
    pub chain_id: u64,
    pub verifying_contract: String,
    /// The product to quote, e.g. btcperp (id 1003) or ethperp (1002).
    pub product: String,
    pub sub_account_id: u8,
    pub depth_stream: String,
    pub trade_stream: String,
    pub order_expiration_s: u64,
    pub ping_interval_s: u64,
    /// Stream unreachable: poll REST /depth this often instead.
    pub rest_poll_ms: u64,
    pub reconnect_base_ms: u64,
    pub reconnect_max_ms: u64,
    /// The backoff starts over only once a stream has delivered data this long: a venue that
    /// accepts the connection and then refuses the subscription must not be hammered.
    pub reconnect_healthy_ms: u64,
    /// While orders rest, read the venue's open orders and position this often (0 = only on
    /// start, reconnects and doubts).
    pub reconcile_interval_ms: u64,
    /// An order request may still reach the venue this long after it left (or was given up):
    /// a placement whose answer was lost and is not listed is looked up once more after it,
    /// and the stop's last read of open orders is made at least this long after the last order
    /// request.
    pub settle_ms: u64,
    /// Retries of a REST call on 429, 5xx and connection errors.
    pub max_retries: u32,
    pub request_timeout_ms: u64,
    pub sei_ws_url: String,
}

impl CitrexConfig {
    pub fn rest(&self) -> String {
        match (self.rest_url.is_empty(), self.network) {
            (false, _) => self.rest_url.clone(),
            (true, Network::Mainnet) => "https://api.citrex.markets/v1".into(),
            (true, Network::Testnet) => "https://api.staging.citrex.markets/v1".into(),
        }
    }
    pub fn ws(&self) -> String {
        match (self.ws_url.is_empty(), self.network) {
            (false, _) => self.ws_url.clone(),
            (true, Network::Mainnet) => "wss://api.citrex.markets/v1/ws/operate".into(),
            (true, Network::Testnet) => "wss://api.staging.citrex.markets/v1/ws/operate".into(),
        }
    }
    pub fn stream(&self) -> String {
        if self.stream_url.is_empty() {
            self.ws()
        } else {
            self.stream_url.clone()
        }
    }
    pub fn chain(&self) -> u64 {
        match (self.chain_id, self.network) {
            (0, Network::Mainnet) => 1329,
            (0, Network::Testnet) => 1328,
            (id, _) => id,
        }
    }
    pub fn contract(&self) -> String {
        match (self.verifying_contract.is_empty(), self.network) {
            (false, _) => self.verifying_contract.clone(),
            (true, Network::Mainnet) => "0x993543DC8BdFCba9fc7355d822108eF49dB6b9F9".into(),
            (true, Network::Testnet) => "0x24f4e9Db8225e6AE220FE89782E4A010aEB7bb14".into(),
        }
    }
    pub fn sei(&self) -> String {
        match (self.sei_ws_url.is_empty(), self.network) {
            (false, _) => self.sei_ws_url.clone(),
            (true, Network::Mainnet) => "wss://evm-ws.sei-apis.com".into(),
            (true, Network::Testnet) => "wss://evm-ws-testnet.sei-apis.com".into(),
        }
    }
}

impl Default for CitrexConfig {
    fn default() -> Self {
        CitrexConfig {
            network: Network::Mainnet,
            rest_url: String::new(),
            ws_url: String::new(),
            stream_url: String::new(),
            chain_id: 0,
            verifying_contract: String::new(),
            product: "btcperp".into(),
            sub_account_id: 1,
            depth_stream: "{symbol}@depth20_10".into(),
            trade_stream: "{symbol}@trade".into(),
            order_expiration_s: 86_400,
            ping_interval_s: 15,
            rest_poll_ms: 1_000,
            reconnect_base_ms: 500,
            reconnect_max_ms: 15_000,
            reconnect_healthy_ms: 5_000,
            reconcile_interval_ms: 5_000,
            settle_ms: 1_500,
            max_retries: 3,
            request_timeout_ms: 5_000,
            sei_ws_url: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Prometheus text endpoint; empty disables it.
    pub metrics_addr: String,
    /// Where `flashmm kill` and `flashmm resume` reach the running engine; empty disables it.
    pub control_addr: String,
    /// Journal flush cadence when no order is waiting on it.
    pub flush_interval_ms: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            metrics_addr: "127.0.0.1:9108".into(),
            control_addr: "127.0.0.1:9109".into(),
            flush_interval_ms: 200,
        }
    }
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            endpoint: String::new(),
            deployment: String::new(),
            api: AzureApi::Deployments,
            api_version: "2025-04-01-preview".into(),
            max_completion_tokens: 2000,
            reasoning_effort: ReasoningEffort::Low,
            timeout_s: 30,
            max_retries: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 8_000,
            price_input_per_mtok: dec!(1.10),
            price_cached_input_per_mtok: dec!(0.275),
            price_output_per_mtok: dec!(4.40),
        }
    }
}

impl Default for VenueConfig {
    fn default() -> Self {
        VenueConfig {
            entry_latency_ms: 50,
            cancel_latency_ms: 50,
            response_latency_ms: 0,
            maker_fee_bps: dec!(0),
            taker_fee_bps: dec!(2.5),
            queue: QueueKind::Conservative,
            queue_power: 2.0,
            latency: LatencyKind::Constant,
            latency_jitter_ms: 0,
            latency_seed: 0,
        }
    }
}

/// How long a backtest waits for a model's answer, in market time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelLatency {
    /// The wall-clock time the call took.
    Measured,
    /// The server's reported processing time (`openai-processing-ms`), else the measured time.
    /// Makes runs against a deterministic server reproducible.
    Server,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            predictor_latency_ms: 1,
            model_latency: ModelLatency::Measured,
            stub_script: String::new(),
            recorded_tolerance_ms: 250,
        }
    }
}

impl Config {
    /// Parses a config file's text (or takes the defaults), applies `--set` overrides in order,
    /// then validates. `file` is `(name, text)`; the name is only for messages. Reading the file
    /// is the caller's business: the core does no I/O.
    pub fn load_text(file: Option<(&str, &str)>, sets: &[String]) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some((name, text)) => {
                let t: toml::Table =
                    text.parse()
                        .map_err(|e: toml::de::Error| ConfigError::Syntax {
                            path: name.to_string(),
                            message: e.message().to_string(),
                        })?;
                check_keys(&t, &Config::default_table(), "", name)?;
                t
            }
            None => toml::Table::new(),
        };
        for s in sets {
            apply_set(&mut table, s)?;
        }
        Config::from_table(table)
    }

    /// A recorded config (a session's) with `--set` overrides applied on top.
    pub fn from_toml_str_with(text: &str, sets: &[String]) -> Result<Config, ConfigError> {
        let mut t: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: "<recorded config>".into(),
                    message: e.message().to_string(),
                })?;
        check_keys(&t, &Config::default_table(), "", "<recorded config>")?;
        for s in sets {
            apply_set(&mut t, s)?;
        }
        Config::from_table(t)
    }

    /// The keys a config file and `--set` name, as `section.key`: what the user chose, as
    /// opposed to defaults (a backtest takes the rest of `market.*` from the data).
    pub fn explicit_keys(file: Option<&str>, sets: &[String]) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(t) = file.and_then(|t| t.parse::<toml::Table>().ok()) {
            for (section, v) in &t {
                match v {
                    toml::Value::Table(inner) => {
                        keys.extend(inner.keys().map(|k| format!("{section}.{k}")))
                    }
                    _ => keys.push(section.clone()),
                }
            }
        }
        for s in sets {
            if let Some((k, _)) = s.split_once('=') {
                keys.push(k.trim().to_string());
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let t: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: "<text>".into(),
                message: e.message().to_string(),
            })?;
        check_keys(&t, &Config::default_table(), "", "<text>")?;
        Config::from_table(t)
    }

    fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| invalid(&bad_key(&table), e.message()))?;
        // 0.010 and 0.01 are the same tick; the normal form lets rounding take its fast path.
        cfg.market.tick_size = cfg.market.tick_size.normalize();
        cfg.market.lot_size = cfg.market.lot_size.normalize();
        cfg.validate()?;
        Ok(cfg)
    }

    fn default_table() -> toml::Table {
        toml::Table::try_from(Config::default()).unwrap_or_default()
    }

    /// The canonical TOML of the effective configuration, as journaled in `SessionStart`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# config could not be rendered: {e}"))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let pos = |key: &str, v: Decimal| {
            if v > Decimal::ZERO {
                Ok(())
            } else {
                Err(invalid(key, format!("must be greater than 0, got {v}")))
            }
        };
        let nonneg = |key: &str, v: Decimal| {
            if v >= Decimal::ZERO {
                Ok(())
            } else {
                Err(invalid(key, format!("must not be negative, got {v}")))
            }
        };
        let posf = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("must be a finite number greater than 0, got {v}"),
                ))
            }
        };
        let posu = |key: &str, v: u64| {
            if v > 0 {
                Ok(())
            } else {
                Err(invalid(key, "must be greater than 0"))
            }
        };
        let m = &self.market;
        pos("market.tick_size", m.tick_size)?;
        pos("market.lot_size", m.lot_size)?;
        pos("market.min_qty", m.min_qty)?;
        pos("market.multiplier", m.multiplier)?;
        let f = &self.features;
        posu("features.momentum_trades", f.momentum_trades as u64)?;
        posu("features.window_s", f.window_s)?;
        posu("features.depth_levels", f.depth_levels as u64)?;
        posu("features.vol_sample_ms", f.vol_sample_ms)?;
        posf("features.vol_halflife_s", f.vol_halflife_s)?;
        posu("features.vol_min_samples", f.vol_min_samples as u64)?;
        let s = &self.strategy;
        if !(1..=20).contains(&s.levels) {
            return Err(invalid(
                "strategy.levels",
                format!("must be between 1 and 20, got {}", s.levels),
            ));
        }
        pos("strategy.base_size", s.base_size)?;
        nonneg("strategy.base_notional", s.base_notional)?;
        if s.base_notional.is_zero() && s.base_size < m.min_qty {
            return Err(invalid(
                "strategy.base_size",
                format!(
                    "{} is below market.min_qty {} of {}; set strategy.base_notional (in {}) to size quotes by value, or a larger base_size",
                    s.base_size, m.min_qty, m.symbol, m.quote_currency
                ),
            ));
        }
        pos("strategy.size_multiplier", s.size_multiplier)?;
        nonneg("strategy.level_spacing_bps", s.level_spacing_bps)?;
        nonneg("strategy.base_half_spread_bps", s.base_half_spread_bps)?;
        nonneg("strategy.vol_spread_mult", s.vol_spread_mult)?;
        nonneg("strategy.min_spread_bps", s.min_spread_bps)?;
        nonneg("strategy.prediction_weight", s.prediction_weight)?;
        if !(s.gamma.is_finite() && s.gamma >= 0.0) {
            return Err(invalid("strategy.gamma", "must be a finite number >= 0"));
        }
        posf("strategy.inventory_horizon_s", s.inventory_horizon_s)?;
        nonneg("strategy.refresh_tolerance_bps", s.refresh_tolerance_bps)?;
        if !(Decimal::ZERO..=Decimal::ONE).contains(&s.size_tolerance) {
            return Err(invalid(
                "strategy.size_tolerance",
                "must be between 0 and 1",
            ));
        }
        let r = &self.risk;
        pos("risk.max_position", r.max_position)?;
        pos("risk.max_notional", r.max_notional)?;
        pos("risk.daily_loss_limit", r.daily_loss_limit)?;
        posf("risk.kill_sigma", r.kill_sigma)?;
        posu("risk.kill_window_ms", r.kill_window_ms)?;
        if !(r.kill_min_move_bps.is_finite() && r.kill_min_move_bps >= 0.0) {
            return Err(invalid(
                "risk.kill_min_move_bps",
                "must be a finite number >= 0",
            ));
        }
        posu("risk.stale_feed_ms", r.stale_feed_ms)?;
        nonneg("risk.max_total_notional", r.max_total_notional)?;
        nonneg("risk.max_total_loss", r.max_total_loss)?;
        posu("risk.chain_halt_ms", r.chain_halt_ms)?;
        let p = &self.predict;
        posu("predict.interval_ms", p.interval_ms)?;
        posu("predict.ttl_ms", p.ttl_ms)?;
        posu("predict.timeout_ms", p.timeout_ms)?;
        posu("predict.horizon_s", p.horizon_s)?;
        nonneg("predict.rules_signal_bps", p.rules_signal_bps)?;
        if p.rules_signal_bps > dec!(500) {
            return Err(invalid("predict.rules_signal_bps", "must be at most 500"));
        }
        if !(Decimal::ZERO..=Decimal::ONE).contains(&p.model_weight) {
            return Err(invalid("predict.model_weight", "must be between 0 and 1"));
        }
        posu(
            "predict.max_requests_per_minute",
            p.max_requests_per_minute as u64,
        )?;
        posu("predict.max_in_flight", p.max_in_flight as u64)?;
        for (key, v) in [
            ("predict.early_spread_ratio", p.early_spread_ratio),
            ("predict.early_vol_ratio", p.early_vol_ratio),
        ] {
            if !(v.is_finite() && (v == 0.0 || v > 1.0)) {
                return Err(invalid(
                    key,
                    format!("must be 0 (off) or greater than 1, got {v}"),
                ));
            }
        }
        nonneg("predict.budget_usd_per_hour", p.budget_usd_per_hour)?;
        nonneg("predict.budget_usd_per_day", p.budget_usd_per_day)?;
        nonneg("predict.budget_usd_total", p.budget_usd_total)?;
        posu("predict.breaker_failures", p.breaker_failures as u64)?;
        if p.ttl_ms < p.interval_ms {
            return Err(invalid(
                "predict.ttl_ms",
                format!("{} is shorter than predict.interval_ms {}: predictions would expire before the next one is asked for", p.ttl_ms, p.interval_ms),
            ));
        }
        let a = &self.azure;
        posu(
            "azure.max_completion_tokens",
            a.max_completion_tokens as u64,
        )?;
        posu("azure.timeout_s", a.timeout_s)?;
        // A core that gives up before the HTTP call's own bound sends the next request while
        // the abandoned one may still be billed: in flight and spent would exceed their caps.
        if u128::from(p.timeout_ms) <= u128::from(a.timeout_s) * 1_000 {
            return Err(invalid(
                "predict.timeout_ms",
                format!(
                    "must be longer than azure.timeout_s ({} s = {} ms), the bound of one model call with its retries: raise predict.timeout_ms or lower azure.timeout_s",
                    a.timeout_s,
                    u128::from(a.timeout_s) * 1_000
                ),
            ));
        }
        posu("azure.backoff_base_ms", a.backoff_base_ms)?;
        if a.backoff_max_ms < a.backoff_base_ms {
            return Err(invalid(
                "azure.backoff_max_ms",
                "must not be below azure.backoff_base_ms",
            ));
        }
        nonneg("azure.price_input_per_mtok", a.price_input_per_mtok)?;
        nonneg(
            "azure.price_cached_input_per_mtok",
            a.price_cached_input_per_mtok,
        )?;
        nonneg("azure.price_output_per_mtok", a.price_output_per_mtok)?;
        if a.api_version.trim().is_empty() {
            return Err(invalid("azure.api_version", "must not be empty"));
        }
        let c = &self.citrex;
        if c.product.is_empty() || !c.product.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            return Err(invalid(
                "citrex.product",
                format!("{:?} is not a product symbol such as btcperp", c.product),
            ));
        }
        for (key, url, schemes) in [
            ("citrex.rest_url", &c.rest_url, &["http://", "https://"][..]),
            ("citrex.ws_url", &c.ws_url, &["ws://", "wss://"][..]),
            ("citrex.stream_url", &c.stream_url, &["ws://", "wss://"][..]),
            ("citrex.sei_ws_url", &c.sei_ws_url, &["ws://", "wss://"][..]),
        ] {
            if !url.is_empty() && !schemes.iter().any(|s| url.starts_with(s)) {
                return Err(invalid(
                    key,
                    format!("{url:?} must start with {}", schemes.join(" or ")),
                ));
            }
        }
        if !c.verifying_contract.is_empty() && !is_hex_address(&c.verifying_contract) {
            return Err(invalid(
                "citrex.verifying_contract",
                "must be a 20-byte hex address",
            ));
        }
        posu("citrex.order_expiration_s", c.order_expiration_s)?;
        posu("citrex.rest_poll_ms", c.rest_poll_ms)?;
        posu("citrex.reconnect_base_ms", c.reconnect_base_ms)?;
        posu("citrex.request_timeout_ms", c.request_timeout_ms)?;
        posu("live.flush_interval_ms", self.live.flush_interval_ms)?;
        if !(self.venue.queue_power.is_finite() && (0.0..=100.0).contains(&self.venue.queue_power))
            || self.venue.queue_power == 0.0
        {
            return Err(invalid(
                "venue.queue_power",
                format!(
                    "must be a number above 0 and at most 100, got {}",
                    self.venue.queue_power
                ),
            ));
        }
        if self.venue.latency_jitter_ms > 60_000 {
            return Err(invalid(
                "venue.latency_jitter_ms",
                "must be at most 60000 (a minute)",
            ));
        }
        if !(1..=24 * 7).contains(&self.funding.interval_h) {
            return Err(invalid(
                "funding.interval_h",
                "must be between 1 and 168 hours",
            ));
        }
        if self.funding.rate.abs() > dec!(0.05) {
            return Err(invalid(
                "funding.rate",
                format!(
                    "{} an interval is not a plausible funding rate (0.0001 is 0.01%)",
                    self.funding.rate
                ),
            ));
        }
        // Fees may be negative (a rebate) but a rebate above 100% is a typo.
        for (key, v) in [
            ("venue.maker_fee_bps", self.venue.maker_fee_bps),
            ("venue.taker_fee_bps", self.venue.taker_fee_bps),
        ] {
            if v.abs() > dec!(1000) {
                return Err(invalid(key, format!("{v} bps is not a plausible fee")));
            }
        }
        crate::markets::validate(self)?;
        if !self.markets.is_empty() {
            self.market_configs()?;
        }
        Ok(())
    }
}

/// Keys people copy from older OpenAI examples that o-series deployments reject at run time.
const REFUSED: [(&str, &str); 3] = [
    ("azure.temperature", "o4-mini rejects `temperature` (400 unsupported_value); remove the key"),
    ("azure.top_p", "o4-mini rejects `top_p` (400 unsupported_value); remove the key"),
    ("azure.max_tokens", "o4-mini rejects `max_tokens` (400 unsupported_parameter); use azure.max_completion_tokens, which also counts the hidden reasoning tokens"),
];

/// Finds the first key in `t` that the schema (`known`) does not have.
fn check_keys(
    t: &toml::Table,
    known: &toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
            return Err(invalid(&key, *why));
        }
        match known.get(k) {
            None => {
                return Err(ConfigError::UnknownKey {
                    key,
                    origin: origin.to_string(),
                })
            }
            Some(toml::Value::Table(kt)) => match v {
                toml::Value::Table(vt) => check_keys(vt, kt, &key, origin)?,
                _ => return Err(invalid(&key, "must be a table (a [section])")),
            },
            Some(_) => {}
        }
    }
    Ok(())
}

fn apply_set(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let (key, raw) = arg.split_once('=').ok_or_else(|| ConfigError::SetSyntax {
        arg: arg.to_string(),
    })?;
    let key = key.trim();
    if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
        return Err(invalid(key, *why));
    }
    let path: Vec<&str> = key.split('.').collect();
    let mut known = Config::default_table();
    let mut node = table;
    for (i, part) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let unknown = || ConfigError::UnknownKey {
            key: key.to_string(),
            origin: "--set".into(),
        };
        let k = known.get(*part).cloned().ok_or_else(unknown)?;
        if last {
            if matches!(k, toml::Value::Table(_)) {
                return Err(invalid(key, "is a section; set one of its keys"));
            }
            node.insert(part.to_string(), parse_value(raw.trim()));
        } else {
            let toml::Value::Table(kt) = k else {
                return Err(unknown());
            };
            known = kt;
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(next) = entry else {
                return Err(invalid(key, "is not a section"));
            };
            node = next;
        }
    }
    Ok(())
}

/// A TOML literal if it parses as one (`5`, `true`, `"x"`), otherwise the text as a string.
fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// toml's type errors do not say where; find the key by trying each one alone.
fn bad_key(table: &toml::Table) -> String {
    for (section, v) in table {
        let toml::Value::Table(keys) = v else {
            return section.clone();
        };
        for (k, val) in keys {
            let mut one = toml::Table::new();
            let mut sec = toml::Table::new();
            sec.insert(k.clone(), val.clone());
            one.insert(section.clone(), toml::Value::Table(sec));
            if toml::Value::Table(one).try_into::<Config>().is_err() {
                return format!("{section}.{k}");
            }
        }
    }
    "config".into()
}

/// A 20-byte address in hex, with or without `0x` (the form the venue's signer parses).
fn is_hex_address(s: &str) -> bool {
    let s = s.trim();
    let hex = s.strip_prefix("0x").unwrap_or(s);
    hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
