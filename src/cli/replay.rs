//! `flashmm replay`: feed a session's recorded inputs back to the core and check every decision,
//! or rerun it with changed parameters (a what-if).

use super::open;
use anyhow::{bail, Context, Result};
use clap::Args;
use flashmm::mode::backtest;
use flashmm_core::event::when;
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::{jsonl, Journal};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct ReplayCmd {
    /// The session to replay (default: the newest with decisions that reaches --from).
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// Compare from here on; earlier entries only rebuild the state. 2024-08-08 or RFC 3339.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Stop after this time (a bare date means the end of that day).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// What-if: change a parameter, e.g. --set strategy.base_half_spread_bps=2 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Write every output the core emits, as JSONL (seq of the recorded output, then the output).
    #[arg(long, value_name = "FILE")]
    dump_outputs: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// A fresh journal gets the shipped recording, so `flashmm replay --from 2024-08-08` works on a
/// new clone.
fn seed_empty_journal(journal: &Journal) -> Result<()> {
    if !journal.sessions()?.is_empty() {
        return Ok(());
    }
    let data = backtest::default_fixture();
    let recorded = data.with_file_name(flashmm::mode::replay::RECORDED_FIXTURE);
    if !data.exists() || !recorded.exists() {
        return Ok(());
    }
    let mut writer = journal.writer()?;
    binance::import(&mut writer, &data, &ImportOptions::default())?;
    // The recording continues a journal holding the same import, but made from another path
    // (its session start names the file), so it is checked on its own chain and rebased.
    let opts = jsonl::ImportOptions {
        rebase: true,
        ..Default::default()
    };
    let n = jsonl::import_file(&mut writer, &recorded, &opts)
        .with_context(|| format!("importing {}", recorded.display()))?
        .entries;
    writer.close()?;
    eprintln!(
        "the journal was empty: imported {} and the recorded session in {} ({n} entries; its model answers come from a local fake, see fixtures/README.md)",
        data.display(),
        recorded.display()
    );
    Ok(())
}

pub(super) fn run_replay(dir: &std::path::Path, r: ReplayCmd) -> Result<i32> {
    use flashmm::mode::replay;
    let from = r
        .from
        .as_deref()
        .map(|v| when::parse("--from", v, when::Edge::Start))
        .transpose()?;
    // A bare date names its whole day: a session has to cover some of it.
    let from_until = r
        .from
        .as_deref()
        .map(|v| when::parse("--from", v, when::Edge::End))
        .transpose()?;
    let to =
        r.to.as_deref()
            .map(|v| when::parse("--to", v, when::Edge::End))
            .transpose()?;
    let journal = open(dir)?;
    seed_empty_journal(&journal)?;
    let session = replay::pick_session(&journal, r.session, from.zip(from_until))?;
    if !r.sets.is_empty() {
        let mut writer = journal.writer()?;
        let (o, original) = replay::what_if(&mut writer, &session, &r.sets, true)?;
        writer.close()?;
        let (a, b) = (original.to_json(), o.summary.to_json());
        if r.json {
            let v = serde_json::json!({"parent": session.id, "session": o.session, "sets": r.sets, "original": a, "what_if": b});
            println!("{v}");
        } else {
            println!(
                "what-if of session {} with {} -> session {}",
                session.id,
                r.sets.join(" "),
                o.session
            );
            println!("  {:<24} {:>18} {:>18}", "", "original", "what-if");
            let row = |name: &str, f: &dyn Fn(&serde_json::Value) -> String| {
                println!("  {:<24} {:>18} {:>18}", name, f(&a), f(&b))
            };
            let val = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "n/a".into(),
                other => other.to_string(),
            };
            row("PnL total", &|v| val(&v["pnl"]["total"]));
            row("PnL realized", &|v| val(&v["pnl"]["realized"]));
            row("fees", &|v| val(&v["pnl"]["fees"]));
            row("quotes", &|v| val(&v["quotes"]));
            row("orders", &|v| val(&v["orders"]));
            row("fills", &|v| val(&v["fills"]));
            row("volume", &|v| val(&v["volume"]));
            row("final position", &|v| val(&v["final_position"]));
            row("max |position|", &|v| val(&v["max_abs_position"]));
            for h in ["1s", "5s", "30s"] {
                row(
                    &format!("markout {h} (bps)"),
                    &|v| val(&v["markout_bps"][h]),
                );
            }
            row("quoted spread (bps)", &|v| val(&v["avg_quoted_spread_bps"]));
        }
        return Ok(0);
    }
    let mut dump = match &r.dump_outputs {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("--dump-outputs {}", p.display()))?,
        )),
        None => None,
    };
    let mut write_err = None;
    let report = replay::verify(&journal, &session, from, to, &mut |seq, o| {
        if let Some(w) = dump.as_mut() {
            let line = serde_json::json!({"seq": seq, "output": o});
            if let Err(e) = writeln!(w, "{line}") {
                write_err.get_or_insert(e);
            }
        }
    })?;
    if let Some(e) = write_err {
        bail!("--dump-outputs: {e}");
    }
    if let Some(mut w) = dump {
        w.flush()?;
    }
    let per_s = report.entries as f64 / report.wall_s.max(1e-9);
    let divergences: Vec<serde_json::Value> = report
        .divergences
        .iter()
        .map(|d| {
            serde_json::json!({
                "seq": d.seq,
                "ts": when::format(d.ts_ns),
                "why": d.why,
                "expected": d.expected,
                "actual": d.actual,
                "inputs_before": d.inputs_before,
            })
        })
        .collect();
    if r.json {
        let v = serde_json::json!({
            "session": report.session,
            "recorded_version": report.recorded_version,
            "fast_forwarded": report.fast_forwarded,
            "entries": report.entries,
            "inputs": report.inputs,
            "outputs_compared": report.outputs_compared,
            "outputs_matched": report.outputs_matched,
            "divergences": divergences,
            "wall_s": (report.wall_s * 1e6).round() / 1e6,
            "entries_per_s": per_s.round(),
        });
        println!("{v}");
    } else {
        println!(
            "replayed session {} ({} {}): {} entries ({} inputs) after fast-forwarding {}; {} of {} outputs match",
            session.id,
            session.mode.as_str(),
            session.label,
            report.entries,
            report.inputs,
            report.fast_forwarded,
            report.outputs_matched,
            report.outputs_compared
        );
        if report.recorded_version != flashmm_core::VERSION {
            println!(
                "  note: recorded by flashmm {}, replayed by {}",
                report.recorded_version,
                flashmm_core::VERSION
            );
        }
        for d in &report.divergences {
            println!(
                "DIVERGENCE at seq {} ({}): {}",
                d.seq,
                when::format(d.ts_ns),
                d.why
            );
            println!(
                "  expected: {}",
                d.expected
                    .as_ref()
                    .map_or("nothing".to_string(), |e| serde_json::to_string(&e.body)
                        .unwrap_or_default())
            );
            println!(
                "  actual:   {}",
                d.actual
                    .as_ref()
                    .map_or("nothing".to_string(), |o| serde_json::to_string(o)
                        .unwrap_or_default())
            );
            println!("  the {} inputs before it:", d.inputs_before.len());
            for e in &d.inputs_before {
                println!(
                    "    seq {} {} {}",
                    e.seq,
                    when::format(e.ts_ns),
                    serde_json::to_string(&e.body).unwrap_or_default()
                );
            }
        }
        println!("  {:.3} s, {:.0} entries/s", report.wall_s, per_s);
    }
    Ok(if report.divergences.is_empty() { 0 } else { 1 })
}
