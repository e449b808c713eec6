//! Throughput of the pieces every mode shares, on the shipped Binance recording:
//! core `on_event`, journal append, journal scan + decode, and the backtest end to end.
//!
//! cargo bench --bench engine

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
use flashmm_core::config::Config;
use flashmm_core::event::{Body, Entry, Input, Mode, SessionStart};
use flashmm_core::Engine;
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::stream::session_stream;
use flashmm_journal::Journal;
use std::path::Path;

fn fixture_journal() -> (tempfile::TempDir, Journal, Vec<Entry>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::open(dir.path()).expect("journal");
    let mut w = j.writer().expect("writer");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(backtest::DEFAULT_FIXTURE);
    binance::import(&mut w, &path, &ImportOptions::default()).expect("import");
    w.close().expect("close");
    let entries: Vec<Entry> = j
        .read(0)
        .expect("read")
        .map(|e| e.expect("entry"))
        .collect();
    (dir, j, entries)
}

fn backtest_once(w: &mut flashmm_journal::Writer) -> backtest::Outcome {
    let args = BacktestArgs {
        data: Data::Journal(Some(1)),
        from: None,
        from_until: None,
        to: None,
        predictor: PredictorChoice::Rules,
        cfg: Config::default(),
        market_keys: None,
        progress: false,
        what_if: None,
    };
    backtest::run(w, args).expect("backtest")
}

fn benches(c: &mut Criterion) {
    let (_dir, journal, entries) = fixture_journal();
    let market: Vec<Entry> = entries
        .iter()
        .filter(|e| e.body.is_market())
        .cloned()
        .collect();
    let n = market.len() as u64;

    // The core sees what it saw in a backtest: market entries merged with the venue's reports,
    // predictions and timers, exactly as replay will feed it.
    let inputs: Vec<Entry> = {
        let mut w = journal.writer().expect("writer");
        let o = backtest_once(&mut w);
        w.close().expect("close");
        session_stream(&journal, o.session)
            .expect("stream")
            .map(|e| e.expect("entry"))
            .filter(|e| matches!(e.body, Body::Input(_)))
            .collect()
    };
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(inputs.len() as u64));
    g.bench_function("on_event", |b| {
        let cfg = Config::default();
        let mut out = Vec::new();
        b.iter_batched(
            || Engine::new(&cfg),
            |mut engine| {
                for e in &inputs {
                    engine.on_event(e, &mut out);
                    out.clear();
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("append", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let j = Journal::open(dir.path()).expect("journal");
                (dir, j)
            },
            |(dir, j)| {
                let mut w = j.writer().expect("writer");
                let start = SessionStart {
                    mode: Mode::Import,
                    version: String::new(),
                    config: String::new(),
                    label: String::new(),
                    parent: None,
                    source: None,
                };
                let id = w.begin(0, start).expect("begin");
                for e in &market {
                    let mut e = Entry {
                        session: id,
                        ..e.clone()
                    };
                    w.append(&mut e).expect("append");
                }
                w.close().expect("close");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("scan_decode", |b| {
        b.iter(|| {
            let mut k = 0u64;
            for e in journal.read(0).expect("read") {
                if matches!(e.expect("entry").body, Body::Input(Input::Trade(_))) {
                    k += 1;
                }
            }
            k
        })
    });
    g.bench_function("replay_verify", |b| {
        let mut w = journal.writer().expect("writer");
        let o = backtest_once(&mut w);
        w.close().expect("close");
        let session = journal.session(o.session).expect("session");
        b.iter(|| {
            let r = flashmm::mode::replay::verify(&journal, &session, None, None, &mut |_, _| {})
                .expect("replay");
            assert!(r.divergences.is_empty());
            r.entries
        })
    });
    g.bench_function("backtest_end_to_end", |b| {
        let mut w = journal.writer().expect("writer");
        b.iter(|| backtest_once(&mut w).session)
    });
    g.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
