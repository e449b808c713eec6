//! Writes the shipped Binance recording repeated N times (times, update ids and trade ids
//! shifted, each copy's snapshot at its head: `flashmm_testkit::scale`), for measuring memory
//! and speed on journals larger than the fixture.
//!
//!     cargo run --release --example scale_recording -- 10 /tmp/x10.gz
//!     flashmm journal import --format binance --strict /tmp/x10.gz

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: scale_recording <copies> <out.gz>";
    let n: u64 = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let out = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!(usage))?);
    let lines = flashmm_testkit::scale::repeated_recording(n, &out)?;
    println!("{}: {n} copies, {lines} lines", out.display());
    Ok(())
}
