//! Where an import's time goes, phase by phase, on one file:
//! `cargo run --release -p flashmm-journal --example import_phases -- FILE [RUNS]`.
//! Prints the median of RUNS (default 5) for each phase, in ns a line.

use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::codec::BlockBuilder;
use flashmm_journal::Journal;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(runs: usize, lines: u64, name: &str, mut f: impl FnMut()) {
    // PHASE=scan (say) runs only the phases whose name holds it, for a profiler.
    if std::env::var("PHASE").is_ok_and(|p| !name.contains(p.as_str())) {
        return;
    }
    let v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let s = median(v);
    println!(
        "{name:<28} {:>8.1} ms  {:>7.0} ns/line  {:>6.0} k lines/s",
        s * 1e3,
        s * 1e9 / lines as f64,
        lines as f64 / s / 1e3
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().expect("FILE");
    let runs: usize = args.next().map_or(5, |r| r.parse().expect("RUNS"));
    let path = Path::new(&file);
    let opts = ImportOptions::default();
    let (stats, _) = binance::scan(path, &opts, None, None, &mut |_| Ok(())).expect("scan");
    let lines = stats.lines;
    println!("{file}: {lines} lines, {} entries", stats.entries);
    time(runs, lines, "sha256 of the file", || {
        binance::file_digest(path).expect("digest");
    });
    time(runs, lines, "inflate only", || {
        let f = std::fs::File::open(path).expect("open");
        let mut r = BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(f));
        let mut buf = vec![0u8; 1 << 16];
        while r.read(&mut buf).expect("read") > 0 {}
    });
    time(runs, lines, "scan (inflate+parse)", || {
        binance::scan(path, &opts, None, None, &mut |_| Ok(())).expect("scan");
    });
    let mut entries = Vec::new();
    let sym = binance::scan(path, &opts, None, None, &mut |_| Ok(()))
        .expect("scan")
        .1;
    binance::scan(path, &opts, sym, None, &mut |r| {
        if entries.len() < 500_000 {
            entries.push(flashmm_core::event::Entry {
                seq: entries.len() as u64,
                ts_ns: r.ts_ns,
                venue_ts_ns: r.venue_ts_ns,
                session: 1,
                cause: None,
                body: flashmm_core::event::Body::Input(r.input),
            });
        }
        Ok(())
    })
    .expect("scan");
    let n = entries.len() as u64;
    time(runs, n, "block push+take (per entry)", || {
        let mut b = BlockBuilder::default();
        let mut h = [0u8; 32];
        for e in &entries {
            h = b.push(e, &h).expect("push");
            if b.count() >= 16_384 || b.bytes_len() >= 8192 * 1024 {
                b.take().expect("take");
            }
        }
        b.take().expect("take");
    });
    time(runs, n, "encode only (per entry)", || {
        let mut out = Vec::with_capacity(1 << 20);
        for e in &entries {
            out.clear();
            flashmm_journal::codec::encode_entry(e, &mut out).expect("enc");
        }
    });
    time(runs, n, "encode+blake3 (per entry)", || {
        let mut out = Vec::with_capacity(1 << 20);
        let mut h = [0u8; 32];
        for e in &entries {
            out.clear();
            flashmm_journal::codec::encode_entry(e, &mut out).expect("enc");
            h = flashmm_journal::codec::chain(&h, &out);
        }
    });
    if std::env::var_os("HEAD_ONLY").is_some() {
        // The journal an import makes, by its chain head: to compare two builds' imports.
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path()).expect("journal");
        let mut w = j.writer().expect("writer");
        binance::import(&mut w, path, &opts).expect("import");
        println!("head {}", binance::hex(&w.head()));
        w.close().expect("close");
        let size: u64 = walk(dir.path());
        println!("journal bytes {size}");
        return;
    }
    time(runs.min(3), lines, "full import", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path()).expect("journal");
        let mut w = j.writer().expect("writer");
        binance::import(&mut w, path, &opts).expect("import");
        w.close().expect("close");
    });
}

fn walk(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                walk(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
