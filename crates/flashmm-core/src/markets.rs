//! Several markets in one session: the `[[markets]]` entries of a config, and the per-market
//! configs the desk runs one engine each on.
//!
//! An entry names its symbol and may set any `market.*` key (the rest come from the data in a
//! backtest, as for `[market]`) and the per-market limits and sizes that differ from the shared
//! `[risk]` and `[strategy]`. Everything else (features, strategy shape, predictor, venue) is
//! shared by every market.

use crate::config::{Config, ConfigError, InstrumentKind, MarketConfig};
use crate::event::{decimal, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ids the engines mint for one journal entry share `MINT_PER_ENTRY` slots: each market mints
/// at most two orders a level and one prediction request per entry.
pub fn ids_per_entry(levels: u32) -> u64 {
    2 * levels as u64 + 1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketEntry {
    pub symbol: Symbol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<InstrumentKind>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub tick_size: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub lot_size: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub min_qty: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub multiplier: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_currency: Option<String>,
    /// This market's `risk.max_position` (default: the shared one).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub max_position: Option<Decimal>,
    /// This market's `risk.max_notional`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub max_notional: Option<Decimal>,
    /// This market's `risk.daily_loss_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub daily_loss_limit: Option<Decimal>,
    /// This market's `strategy.base_size`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub base_size: Option<Decimal>,
    /// This market's `strategy.base_notional`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt")]
    pub base_notional: Option<Decimal>,
}

impl MarketEntry {
    /// An entry that sets every `market.*` key to `m`'s value.
    pub fn of(m: &MarketConfig) -> MarketEntry {
        MarketEntry {
            symbol: m.symbol,
            venue: Some(m.venue.clone()),
            kind: Some(m.kind),
            tick_size: Some(m.tick_size),
            lot_size: Some(m.lot_size),
            min_qty: Some(m.min_qty),
            multiplier: Some(m.multiplier),
            quote_currency: Some(m.quote_currency.clone()),
            settle_currency: Some(m.settle_currency.clone()),
            max_position: None,
            max_notional: None,
            daily_loss_limit: None,
            base_size: None,
            base_notional: None,
        }
    }

    /// The `market.*` keys this entry sets, named as `[market]`'s are (`market.tick_size`).
    pub fn market_keys(&self) -> Vec<String> {
        let set = [
            ("symbol", true),
            ("venue", self.venue.is_some()),
            ("kind", self.kind.is_some()),
            ("tick_size", self.tick_size.is_some()),
            ("lot_size", self.lot_size.is_some()),
            ("min_qty", self.min_qty.is_some()),
            ("multiplier", self.multiplier.is_some()),
            ("quote_currency", self.quote_currency.is_some()),
            ("settle_currency", self.settle_currency.is_some()),
        ];
        set.iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| format!("market.{k}"))
            .collect()
    }

    /// `base` with this entry's keys on top.
    pub fn market(&self, base: &MarketConfig) -> MarketConfig {
        let mut m = base.clone();
        m.symbol = self.symbol;
        if let Some(v) = &self.venue {
            m.venue = v.clone();
        }
        if let Some(v) = self.kind {
            m.kind = v;
        }
        if let Some(v) = self.tick_size {
            m.tick_size = v.normalize();
        }
        if let Some(v) = self.lot_size {
            m.lot_size = v.normalize();
        }
        if let Some(v) = self.min_qty {
            m.min_qty = v;
        }
        if let Some(v) = self.multiplier {
            m.multiplier = v;
        }
        if let Some(v) = &self.quote_currency {
            m.quote_currency = v.clone();
        }
        if let Some(v) = &self.settle_currency {
            m.settle_currency = v.clone();
        }
        m
    }

    /// The config of this market's engine: the shared config with this market and its limits.
    pub fn config(&self, shared: &Config, market: MarketConfig) -> Config {
        let mut c = shared.clone();
        c.markets.clear();
        c.market = market;
        if let Some(v) = self.max_position {
            c.risk.max_position = v;
        }
        if let Some(v) = self.max_notional {
            c.risk.max_notional = v;
        }
        if let Some(v) = self.daily_loss_limit {
            c.risk.daily_loss_limit = v;
        }
        if let Some(v) = self.base_size {
            c.strategy.base_size = v;
        }
        if let Some(v) = self.base_notional {
            c.strategy.base_notional = v;
        }
        c
    }
}

impl Config {
    /// One config per market the session quotes: `[market]` alone, or each `[[markets]]`
    /// entry. Each is validated, naming the entry.
    pub fn market_configs(&self) -> Result<Vec<Config>, ConfigError> {
        if self.markets.is_empty() {
            return Ok(vec![self.clone()]);
        }
        let mut out = Vec::with_capacity(self.markets.len());
        for (i, m) in self.markets.iter().enumerate() {
            let c = m.config(self, m.market(&self.market));
            c.validate().map_err(|e| in_entry(i, m.symbol, e))?;
            out.push(c);
        }
        Ok(out)
    }

    /// The symbols quoted, in the order of the config.
    pub fn symbols(&self) -> Vec<Symbol> {
        if self.markets.is_empty() {
            vec![self.market.symbol]
        } else {
            self.markets.iter().map(|m| m.symbol).collect()
        }
    }
}

fn in_entry(i: usize, symbol: Symbol, e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Invalid { key, message } => ConfigError::Invalid {
            key: format!("markets[{i}] ({symbol}): {key}"),
            message,
        },
        other => other,
    }
}

/// Limits over every market of a session are in one currency: dollars, whichever dollar
/// stablecoin a market is quoted in.
pub fn dollar_like(currency: &str) -> bool {
    matches!(
        currency.to_ascii_uppercase().as_str(),
        "USD" | "USDT" | "USDC" | "FDUSD" | "BUSD"
    )
}

/// The `[[markets]]` rules that need the whole list: distinct symbols, ids enough for one
/// entry, and one currency for the limits over all markets.
pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let n = cfg.markets.len();
    if n > 16 {
        return Err(invalid(
            "markets",
            format!("{n} entries; at most 16 markets are quoted in one session"),
        ));
    }
    for (i, m) in cfg.markets.iter().enumerate() {
        if cfg.markets[..i].iter().any(|o| o.symbol == m.symbol) {
            return Err(invalid(
                "markets",
                format!("{} is listed twice; each market once", m.symbol),
            ));
        }
    }
    let ids = ids_per_entry(cfg.strategy.levels) * n.max(1) as u64;
    if ids > crate::MINT_PER_ENTRY {
        return Err(invalid(
            "strategy.levels",
            format!(
                "{} levels on {n} markets need {ids} order ids per input, more than {}; quote fewer levels or fewer markets",
                cfg.strategy.levels,
                crate::MINT_PER_ENTRY
            ),
        ));
    }
    Ok(())
}

/// The currency the limits over all markets are in, given each market's: `None` when they
/// cannot be added up.
pub fn common_currency(markets: &[MarketConfig]) -> Option<String> {
    let first = &markets.first()?.quote_currency;
    if markets.iter().all(|m| &m.quote_currency == first) {
        return Some(first.clone());
    }
    markets
        .iter()
        .all(|m| dollar_like(&m.quote_currency))
        .then(|| "USD".to_string())
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

mod opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => decimal::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "decimal")] Decimal);
        Ok(Some(W::deserialize(d)?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Config {
        Config::from_toml_str(
            r#"
[risk]
max_position = "0.05"
[[markets]]
symbol = "BTCUSDT"
[[markets]]
symbol = "BTCUSD_PERP"
kind = "inverse_perp"
multiplier = "100"
tick_size = "0.1"
lot_size = "1"
min_qty = "1"
quote_currency = "USD"
settle_currency = "BTC"
max_position = "50"
base_notional = "500"
"#,
        )
        .expect("config")
    }

    #[test]
    fn each_entry_gets_its_market_and_limits_and_shares_the_rest() {
        let cfg = two();
        let per = cfg.market_configs().expect("configs");
        assert_eq!(per.len(), 2);
        assert_eq!(per[0].market.symbol.to_string(), "BTCUSDT");
        assert_eq!(per[0].risk.max_position, rust_decimal_macros::dec!(0.05));
        assert_eq!(per[1].market.kind, InstrumentKind::InversePerp);
        assert_eq!(per[1].market.multiplier, rust_decimal_macros::dec!(100));
        assert_eq!(per[1].risk.max_position, rust_decimal_macros::dec!(50));
        assert_eq!(
            per[1].strategy.base_notional,
            rust_decimal_macros::dec!(500)
        );
        assert_eq!(per[1].strategy.levels, per[0].strategy.levels);
        assert!(per.iter().all(|c| c.markets.is_empty()));
        assert_eq!(
            per[1].clone().markets.len() + cfg.symbols().len(),
            2,
            "symbols in order"
        );
        assert_eq!(cfg.markets[1].market_keys().len(), 8);
        assert_eq!(cfg.markets[0].market_keys(), vec!["market.symbol"]);
    }

    #[test]
    fn the_config_round_trips_through_its_toml() {
        let cfg = two();
        let back = Config::from_toml_str(&cfg.to_toml()).expect("round trip");
        assert_eq!(back, cfg);
    }

    #[test]
    fn a_symbol_twice_a_bad_entry_and_too_many_ids_are_refused_naming_the_key() {
        let twice = "[[markets]]\nsymbol = \"BTCUSDT\"\n[[markets]]\nsymbol = \"BTCUSDT\"\n";
        let e = Config::from_toml_str(twice).expect_err("twice").to_string();
        assert!(e.contains("markets") && e.contains("twice"), "{e}");
        let bad = "[[markets]]\nsymbol = \"ETHUSDT\"\ntick_size = \"-1\"\n";
        let e = Config::from_toml_str(bad)
            .expect_err("bad tick")
            .to_string();
        assert!(e.contains("markets[0] (ETHUSDT): market.tick_size"), "{e}");
        let unknown = "[[markets]]\nsymbol = \"ETHUSDT\"\ntick = \"1\"\n";
        let e = Config::from_toml_str(unknown)
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("tick"), "{e}");
        let wide =
            "[strategy]\nlevels = 20\n[[markets]]\nsymbol = \"A\"\n[[markets]]\nsymbol = \"B\"\n";
        let e = Config::from_toml_str(wide).expect_err("ids").to_string();
        assert!(e.contains("strategy.levels"), "{e}");
    }

    #[test]
    fn limits_over_markets_add_dollars_but_not_dollars_and_coins() {
        let cfg = two();
        let per: Vec<MarketConfig> = cfg
            .market_configs()
            .expect("configs")
            .into_iter()
            .map(|c| c.market)
            .collect();
        assert_eq!(common_currency(&per).as_deref(), Some("USD"));
        let mut eur = per.clone();
        eur[1].quote_currency = "EUR".into();
        assert_eq!(common_currency(&eur), None);
        let same = vec![per[0].clone(), per[0].clone()];
        assert_eq!(common_currency(&same).as_deref(), Some("USDT"));
    }
}
