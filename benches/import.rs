//! `binance::import` lines/s: the shipped recording, and the same repeated 10 times
//! (`flashmm_testkit::scale`, generated into a tempdir), each into a fresh journal. With
//! `IMPORT_BENCH_X100=1`, also 100 times (4.1 M lines, about 200 MB of gzip, a minute or more a
//! sample, so not by default).
//!
//! cargo bench --bench import
//! IMPORT_BENCH_X100=1 cargo bench --bench import -- x100

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::Journal;
use flashmm_testkit::scale;
use std::path::Path;
use std::time::Duration;

fn import_once(path: &Path) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::open(dir.path()).expect("journal");
    let mut w = j.writer().expect("writer");
    let (_, stats) = binance::import(&mut w, path, &ImportOptions::default()).expect("import");
    w.close().expect("close");
    stats.lines
}

fn benches(c: &mut Criterion) {
    let shipped = scale::shipped_recording();
    let data = tempfile::tempdir().expect("tempdir");
    let x10 = data.path().join("x10.gz");
    let lines10 = scale::repeated_recording(10, &x10).expect("x10");
    let lines1 = import_once(&shipped);
    let mut cases = vec![("shipped", shipped, lines1), ("x10", x10, lines10)];
    if std::env::var_os("IMPORT_BENCH_X100").is_some() {
        let x100 = data.path().join("x100.gz");
        let lines100 = scale::repeated_recording(100, &x100).expect("x100");
        cases.push(("x100", x100, lines100));
    }
    let mut g = c.benchmark_group("import");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for (name, path, lines) in &cases {
        let (path, lines) = (path.as_path(), *lines);
        g.throughput(Throughput::Elements(lines));
        g.bench_function(*name, |b| {
            b.iter_batched(|| (), |()| import_once(path), BatchSize::PerIteration)
        });
    }
    g.finish();
}

criterion_group!(import, benches);
criterion_main!(import);
