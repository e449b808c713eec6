//! Bytes per entry of a journal's entries compressed with zstd at several levels, in blocks the
//! size the writer makes: `cargo run --release -p flashmm-journal --example zmeasure -- DIR`.

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let j = flashmm_journal::Journal::open(std::path::Path::new(&dir)).unwrap();
    let mut raw: Vec<Vec<u8>> = vec![Vec::new()];
    let mut n = 0u64;
    j.for_each_raw(0, &mut |r| {
        let b = raw.last_mut().unwrap();
        b.extend_from_slice(&(r.bytes.len() as u32).to_le_bytes());
        b.extend_from_slice(r.bytes);
        n += 1;
        if n.is_multiple_of(16_384) {
            raw.push(Vec::new());
        }
        Ok(true)
    })
    .unwrap();
    let total: usize = raw.iter().map(|b| b.len()).sum();
    println!(
        "{n} entries, {:.1} B/entry raw (no hashes)",
        total as f64 / n as f64
    );
    for level in [1, 3, 6, 9, 12, 15, 19] {
        let t = std::time::Instant::now();
        let z: usize = raw
            .iter()
            .map(|b| zstd::bulk::compress(b, level).unwrap().len())
            .sum();
        println!(
            "level {level}: {:.1} B/entry, {:?}",
            z as f64 / n as f64,
            t.elapsed()
        );
    }
}
