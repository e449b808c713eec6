//! Funding of perpetuals (issue 12, "Perpetuals"): charged on the position held at each funding
//! time, at the venue's rate and mark when the data has them, else from `[funding]`; its own
//! term in PnL, in the backtest's report and in `flashmm report`.

use crate::common;
use flashmm_core::config::{Config, InstrumentKind};
use flashmm_core::event::*;
use flashmm_core::{Emitted, Engine};
use rust_decimal_macros::dec;
use serde_json::Value;
use std::process::Command;

/// 2024-08-09 00:00 UTC, a Binance funding time.
const DUE: i64 = 1_723_161_600_000_000_000;
const S: i64 = 1_000_000_000;

fn perp(kind: InstrumentKind) -> Config {
    let mut c = Config::default();
    c.market.kind = kind;
    if kind == InstrumentKind::InversePerp {
        c.market.multiplier = dec!(100);
        c.market.lot_size = dec!(1);
        c.market.min_qty = dec!(1);
        c.strategy.base_size = dec!(1);
    }
    c
}

fn feed(engine: &mut Engine, seq: u64, ts: i64, input: Input) -> Vec<Output> {
    let e = Entry {
        seq,
        ts_ns: ts,
        venue_ts_ns: None,
        session: 1,
        cause: None,
        body: Body::Input(input),
    };
    let mut out: Vec<Emitted> = Vec::new();
    engine.on_event(&e, &mut out);
    out.into_iter().map(|e| e.output).collect()
}

fn fundings(out: &[Output]) -> Vec<Funding> {
    out.iter()
        .filter_map(|o| match o {
            Output::Funding(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn book(sym: Symbol, bid: rust_decimal::Decimal, ask: rust_decimal::Decimal) -> Input {
    Input::BookSnapshot(BookSnapshot {
        symbol: sym,
        update_id: 1,
        bids: vec![Level {
            price: bid,
            qty: dec!(5),
        }],
        asks: vec![Level {
            price: ask,
            qty: dec!(5),
        }],
    })
}

fn fill(side: Side, price: rust_decimal::Decimal, qty: rust_decimal::Decimal) -> Input {
    Input::Fill(Fill {
        cid: 999,
        side,
        price,
        qty,
        liquidity: Liquidity::Maker,
        fee: dec!(0),
        leaves_qty: dec!(0),
    })
}

#[test]
fn the_venues_rate_is_charged_on_the_position_held_when_it_falls_due() {
    let cfg = perp(InstrumentKind::LinearPerp);
    let sym = cfg.market.symbol;
    let mut e = Engine::new(&cfg);
    feed(&mut e, 1, DUE - 10 * S, book(sym, dec!(59999), dec!(60001)));
    feed(
        &mut e,
        2,
        DUE - 9 * S,
        fill(Side::Buy, dec!(60000), dec!(0.02)),
    );
    let announced = Input::FundingRate(FundingRate {
        symbol: sym,
        rate: dec!(0.0001),
        due_ns: DUE,
        mark: dec!(60010),
    });
    assert!(fundings(&feed(&mut e, 3, DUE - 5 * S, announced)).is_empty());
    // The timer asks for the funding time, so it is charged on time.
    assert_eq!(e.poll_timeout().map(|t| t <= DUE), Some(true));
    // A fill after the funding time: the charge is on the 0.02 held before it.
    let out = feed(&mut e, 4, DUE + S, fill(Side::Buy, dec!(60000), dec!(0.03)));
    let f = fundings(&out);
    // 0.02 x 60,010 x 0.0001 = 0.12002 USDT paid by the long.
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!(
        (f[0].due_ns, f[0].position, f[0].mark, f[0].amount),
        (DUE, dec!(0.02), dec!(60010), dec!(-0.12002))
    );
    let pnl = e.position().pnl(dec!(60000));
    assert_eq!(pnl.funding, dec!(-0.12002));
    assert_eq!(pnl.total, e.position().equity(dec!(60000)));
    // Eight hours on, the same rate again (no newer announcement), on 0.05 at our mid 60,000.
    let f = fundings(&feed(&mut e, 5, DUE + 8 * 3600 * S, Input::Timer));
    assert_eq!(f[0].amount, dec!(-0.3));
}

#[test]
fn a_configured_rate_charges_an_inverse_position_in_the_coin_and_spot_pays_none() {
    let mut cfg = perp(InstrumentKind::InversePerp);
    cfg.funding.rate = dec!(-0.0002);
    let sym = cfg.market.symbol;
    let mut e = Engine::new(&cfg);
    feed(
        &mut e,
        1,
        DUE - 10 * S,
        book(sym, dec!(49999.5), dec!(50000.5)),
    );
    feed(
        &mut e,
        2,
        DUE - 9 * S,
        fill(Side::Sell, dec!(50000), dec!(30)),
    );
    let f = fundings(&feed(&mut e, 3, DUE + S, Input::Timer));
    // Short 30 contracts of 100 USD at a mid of 50,000: 0.06 BTC; a negative rate is paid by
    // shorts: 0.06 x 0.0002 = 0.000012 BTC.
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].amount, dec!(-0.000012));
    let mut spot = Config::default();
    spot.funding.rate = dec!(0.0001);
    let mut e = Engine::new(&spot);
    feed(&mut e, 1, DUE - 10 * S, book(sym, dec!(59999), dec!(60001)));
    feed(
        &mut e,
        2,
        DUE - 9 * S,
        fill(Side::Buy, dec!(60000), dec!(0.02)),
    );
    assert!(fundings(&feed(&mut e, 3, DUE + S, Input::Timer)).is_empty());
}

#[test]
fn a_recorded_funding_rate_imports_and_shows_in_the_backtest_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("btcusdt-perp.gz");
    let due_ms = (DUE / 1_000_000) as u64;
    let t0 = due_ms - 60_000; // a minute before the funding time
    let ns = |ms: u64| ms * 1_000_000;
    let mut lines = vec![format!(
        r#"{} {{"lastUpdateId":100,"bids":[["60000.0","5"]],"asks":[["60000.1","5"]]}}"#,
        ns(t0)
    )];
    let mut u = 100;
    // A minute and a half of a market that steps between two prices, with sells hitting the
    // bid, so the strategy holds a position at 00:00.
    for i in 0..900u64 {
        let ms = t0 + 100 * i;
        let (b, a) = if (i / 50) % 2 == 0 {
            ("60000.0", "60000.1")
        } else {
            ("59999.9", "60000.0")
        };
        lines.push(format!(
            r#"{} {{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":{ms},"T":{ms},"s":"BTCUSDT","U":{},"u":{},"pu":{u},"b":[["{b}","5"]],"a":[["{a}","5"]]}}}}"#,
            ns(ms),
            u + 1,
            u + 2
        ));
        u += 2;
        let buyer_maker = i % 3 != 0;
        // Prints 2 USDT through the book: they reach our quotes, a bps or so from the mid.
        let px = if buyer_maker { "59988.0" } else { "60012.0" };
        lines.push(format!(
            r#"{} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":{ms},"s":"BTCUSDT","t":{i},"p":"{px}","q":"0.5","T":{ms},"m":{buyer_maker},"M":true}}}}"#,
            ns(ms) + 1
        ));
        if i % 100 == 0 {
            let next = if ms < due_ms {
                due_ms
            } else {
                due_ms + 8 * 3_600_000
            };
            lines.push(format!(
                r#"{} {{"stream":"btcusdt@markPrice@1s","data":{{"e":"markPriceUpdate","E":{ms},"s":"BTCUSDT","p":"60000.05","i":"60001.00","P":"60002.00","r":"0.00010000","T":{next}}}}}"#,
                ns(ms) + 2
            ));
        }
    }
    common::gz(&path, &(lines.join("\n") + "\n"));
    let j = dir.path().join("j");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flashmm"))
            .arg("--journal")
            .arg(&j)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "journal",
        "import",
        "--format",
        "binance",
        path.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        said.contains("9 funding rates") && said.contains("binance-usdm (linear_perp)"),
        "{said}"
    );
    let o = run(&[
        "backtest",
        "--session",
        "1",
        "--set",
        "risk.max_position=10",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let funding: rust_decimal::Decimal = v["pnl"]["funding"].as_str().unwrap().parse().unwrap();
    // The sign is the position's at 00:00: whoever held it paid or got 0.01% of it.
    assert_eq!(v["fundings"], 1, "{v}");
    assert!(!funding.is_zero(), "{v}");
    let parts = ["realized", "unrealized", "fees", "funding"].map(|k| {
        v["pnl"][k]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    });
    assert_eq!(
        parts[0] + parts[1] - parts[2] + parts[3],
        v["pnl"]["total"].as_str().unwrap().parse().unwrap()
    );
    let o = run(&["report", "--session", "2"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains("+ funding") && text.contains("1 funding times"),
        "{text}"
    );
    // The post-mortem lists the charge: the PnL term no fill explains.
    let o = run(&["postmortem", "--session", "2", "--worst", "1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pm: Value = serde_json::from_slice(&o.stdout).unwrap();
    let charges = pm["funding"]["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{pm}");
    assert_eq!(charges[0]["symbol"], "BTCUSDT");
    assert_eq!(charges[0]["rate"], "0.0001");
    let amount: rust_decimal::Decimal = charges[0]["amount"].as_str().unwrap().parse().unwrap();
    // Exact here; the backtest's report rounds money to its decimals.
    assert_eq!(amount.round_dp(funding.scale()), funding);
    assert_eq!(pm["funding"]["total"], charges[0]["amount"]);
    let o = run(&["postmortem", "--session", "2", "--worst", "1"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("funding         1 charges"), "{text}");
    // The HTML page has the same charge in its own table, with the total and its currency.
    let page = dir.path().join("pm.html");
    let o = run(&[
        "postmortem",
        "--session",
        "2",
        "--worst",
        "1",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    let amount = amount.normalize().to_string();
    let table = html
        .split(r#"<table class="funding">"#)
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no funding table: {html}"));
    assert_eq!(table.matches("<tr>").count(), 2, "{table}");
    for cell in [
        "2024-08-09T00:00:00.000Z".to_string(),
        "BTCUSDT".into(),
        "0.0001".into(),
        amount.clone(),
        "USDT".into(),
    ] {
        assert!(table.contains(&format!(">{cell}")), "{cell} in {table}");
    }
    assert!(
        html.contains(&format!("1 charges, {amount} USDT in all")),
        "{html}"
    );
}
