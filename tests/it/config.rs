//! Configuration: the documented defaults file, overrides, and errors that name the key.

use flashmm_core::config::{Config, ConfigError};
use std::path::Path;

fn default_toml() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/backtests/default.toml"
    ))
}

#[test]
fn the_documented_defaults_are_the_defaults() {
    assert_eq!(
        flashmm::config::load(Some(default_toml()), &[]).unwrap(),
        Config::default()
    );
}

#[test]
fn the_effective_config_round_trips_through_its_toml() {
    let c = flashmm::config::load(
        None,
        &["strategy.levels=5".into(), "risk.max_position=0.2".into()],
    )
    .unwrap();
    assert_eq!(c.strategy.levels, 5);
    assert_eq!(Config::from_toml_str(&c.to_toml()).unwrap(), c);
}

#[test]
fn set_overrides_the_file_and_accepts_strings_and_numbers() {
    let c = flashmm::config::load(
        Some(default_toml()),
        &[
            "strategy.min_spread_bps=2.5".into(),
            "market.tick_size=\"0.1\"".into(),
            "backtest.stub_script=a b.jsonl".into(),
        ],
    )
    .unwrap();
    assert_eq!(c.strategy.min_spread_bps.to_string(), "2.5");
    assert_eq!(c.market.tick_size.to_string(), "0.1");
    assert_eq!(c.backtest.stub_script, "a b.jsonl");
}

fn key_of(e: ConfigError) -> String {
    match e {
        ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => key,
        other => panic!("{other}"),
    }
}

#[test]
fn unknown_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[strategy]\nlevels = 3\nlevelz = 4\n").unwrap();
    let e = flashmm::config::load(Some(&p), &[]).unwrap_err();
    assert!(e.to_string().contains("strategy.levelz"), "{e}");
    assert_eq!(key_of(e), "strategy.levelz");
    std::fs::write(&p, "[stratgy]\nlevels = 3\n").unwrap();
    assert_eq!(
        key_of(flashmm::config::load(Some(&p), &[]).unwrap_err()),
        "stratgy"
    );
    assert_eq!(
        key_of(flashmm::config::load(None, &["risk.max_pos=1".into()]).unwrap_err()),
        "risk.max_pos"
    );
}

#[test]
fn invalid_values_are_named() {
    let cases = [
        ("strategy.levels=0", "strategy.levels"),
        ("strategy.min_spread_bps=-1", "strategy.min_spread_bps"),
        (
            "strategy.base_half_spread_bps=\"-0.5\"",
            "strategy.base_half_spread_bps",
        ),
        ("market.tick_size=0", "market.tick_size"),
        ("risk.max_position=-1", "risk.max_position"),
        ("strategy.size_tolerance=2", "strategy.size_tolerance"),
        ("features.vol_halflife_s=0", "features.vol_halflife_s"),
    ];
    for (set, key) in cases {
        let e = flashmm::config::load(None, &[set.into()]).unwrap_err();
        let msg = e.to_string();
        assert_eq!(key_of(e), key, "{set}");
        assert!(msg.contains(key), "{msg}");
    }
}

#[test]
fn wrong_types_and_syntax_are_errors_not_panics() {
    let e = flashmm::config::load(None, &["strategy.levels=\"three\"".into()]).unwrap_err();
    assert!(e.to_string().contains("levels"), "{e}");
    let e = flashmm::config::load(None, &["strategy.levels".into()]).unwrap_err();
    assert!(matches!(e, ConfigError::SetSyntax { .. }), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[strategy\n").unwrap();
    assert!(matches!(
        flashmm::config::load(Some(&p), &[]).unwrap_err(),
        ConfigError::Syntax { .. }
    ));
    let e = flashmm::config::load(None, &["strategy.min_spread_bps=abc".into()]).unwrap_err();
    assert!(e.to_string().contains("min_spread_bps"), "{e}");
}
