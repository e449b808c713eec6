//! `flashmm journal`: import market data or a JSONL export, export entries, list sessions and
//! verify the hash chain.

use super::open;
use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use flashmm::mode::progress::ImportBar;
use flashmm_core::event::{when, Symbol};
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::stream::{market_reach, MarketReach};
use flashmm_journal::tardis;
use flashmm_journal::{hyperliquid, jsonl, Verified};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ImportFormat {
    /// hftbacktest collector recording of Binance streams (`<ns> <json>` lines, gzip or plain).
    Binance,
    /// hftbacktest collector recording of Hyperliquid `l2Book` and `trades` channels (`<ns>
    /// <json>` lines, gzip or plain): top-20 snapshots, each replacing the book (docs/hyperliquid.md).
    Hyperliquid,
    /// Tardis.dev CSV datasets (gzip or plain): an incremental_book_L2 file, alone or with the
    /// trades file of the same market, imported together as one session (see docs/tardis.md).
    Tardis,
    /// A `flashmm journal export --format jsonl` file (plain or gzip): checked whole, every
    /// line against its hash, before anything is written (see docs/journal.md).
    Jsonl,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ExportFormat {
    /// Every entry, one JSON object a line, with chain hashes, between a header and a trailer
    /// (importable; the backup format, see docs/journal.md).
    Jsonl,
    /// One CSV table per kind (see docs/export.md).
    Csv,
    /// One Parquet table per kind (see docs/export.md).
    Parquet,
}

#[derive(Subcommand)]
pub(super) enum JournalCmd {
    /// Import market data or a JSONL export.
    Import {
        #[arg(long, value_enum)]
        format: ImportFormat,
        /// One or more files, imported in order, each as its own session. A Binance file with
        /// no snapshot of its own (a collector's next day) continues the book of the journal's
        /// latest import of its symbol when its first diff follows that import's last one.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Stop at the first malformed line instead of counting and skipping it.
        #[arg(long)]
        strict: bool,
        /// binance: on an update-id gap, mark it and resync at the next snapshot instead of failing.
        #[arg(long)]
        allow_gaps: bool,
        /// Symbol for recordings whose lines do not name one (hyperliquid: the coin the file must be of).
        #[arg(long)]
        symbol: Option<String>,
        /// Import a file even if the journal already has it.
        #[arg(long)]
        force: bool,
        /// binance and hyperliquid: the largest step of the local time between two lines, either
        /// way, in seconds; a larger one is an error naming the line.
        #[arg(long, value_name = "SECONDS", default_value_t = binance::DEFAULT_MAX_TIME_JUMP_S)]
        max_time_jump_s: u64,
        /// jsonl, and only on purpose: accept lines without hashes and a file without the
        /// export's header and trailer (written by hand, or by an older flashmm). NOTHING IS
        /// CHECKED against any hash chain, so an edited or truncated file cannot be told from
        /// the real one; the journal chains the entries from its own head, and `journal verify`
        /// vouches for them only from then on. Seqs and sessions are still checked. Prints a
        /// warning.
        #[arg(long, conflicts_with = "rebase")]
        unsigned: bool,
        /// jsonl: the export continues a journal whose entries before it differ from this
        /// one's (the same recording imported from another path, say). Checks the file's own
        /// chain from its header, then chains its entries from this journal's head.
        #[arg(long)]
        rebase: bool,
    },
    /// Write entries out: JSONL (every entry, decimals as strings, with chain hashes), or CSV
    /// and Parquet tables, one per kind (see docs/export.md).
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only this session (for csv and parquet, with the market entries it references).
        #[arg(long, value_name = "ID")]
        session: Option<u64>,
        /// csv and parquet: the tables to write, e.g. fills,quotes (default: all).
        #[arg(long, value_name = "LIST")]
        kinds: Option<String>,
        /// jsonl: output file, stdout if omitted. csv and parquet: a directory that gets one
        /// file per table, or a file ending in .csv or .parquet when --kinds names one table.
        out: Option<PathBuf>,
    },
    /// List sessions: entry counts, the seqs and times each covers, the market entries a backtest
    /// or replay read of its source (`FROM..TO of FROM..LAST` if it stopped short), and the
    /// status. A session with no end is `unfinished (no session end: killed or crashed)`: its
    /// range is what it journaled before it stopped. --json adds `finished`, `state` and
    /// `market` (`session`, `from_seq`, `to_seq` as recorded, `last`, `read_to`, `complete`).
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain and that every entry decodes; report the first broken link.
    Verify,
}

pub(super) fn run_journal(dir: &std::path::Path, cmd: JournalCmd) -> Result<i32> {
    match cmd {
        JournalCmd::Import {
            format,
            files,
            strict,
            allow_gaps,
            symbol,
            force,
            max_time_jump_s,
            unsigned,
            rebase,
        } => {
            if !matches!(format, ImportFormat::Jsonl) && (unsigned || rebase) {
                bail!("--unsigned and --rebase apply to --format jsonl; a market recording has no hash chain to check");
            }
            if matches!(format, ImportFormat::Hyperliquid) && allow_gaps {
                bail!("--allow-gaps applies to --format binance; Hyperliquid sends whole books, which have no gaps to allow");
            }
            if matches!(format, ImportFormat::Jsonl) && files.iter().any(|f| f.as_os_str() == "-") {
                bail!("journal import --format jsonl reads its file twice (it checks all of it before writing anything, so a bad file leaves the journal as it was) and cannot do that with stdin; save the input to a file and import that");
            }
            if matches!(format, ImportFormat::Tardis) {
                if allow_gaps || symbol.is_some() {
                    bail!("--allow-gaps and --symbol apply to --format binance; Tardis rows name their symbol and carry no update ids to have gaps in");
                }
                let bar = ImportBar::start("import");
                let opts = ImportOptions {
                    strict,
                    force,
                    max_time_jump_s,
                    progress: bar.progress(),
                    ..ImportOptions::default()
                };
                let journal = open(dir)?;
                let mut writer = journal.writer()?;
                let imported = tardis::import(&mut writer, &files, &opts);
                drop(bar);
                let (id, stats) = imported.context("importing Tardis CSV files")?;
                println!("imported as session {id}: {}", tardis::summary(&stats));
                if let Some(i) = &stats.instrument {
                    println!("  instrument: {}", i.describe());
                }
                for (line, why) in &stats.malformed_lines {
                    eprintln!("  malformed line {line}: {why}");
                }
                writer.close()?;
                return Ok(0);
            }
            let journal = open(dir)?;
            let mut writer = journal.writer()?;
            for file in files {
                match format {
                    ImportFormat::Binance | ImportFormat::Hyperliquid => {
                        let symbol = symbol
                            .as_deref()
                            .map(|s| Symbol::new(&s.to_ascii_uppercase()))
                            .transpose()
                            .context("--symbol")?;
                        let bar = ImportBar::start("import");
                        let opts = ImportOptions {
                            strict,
                            allow_gaps,
                            symbol,
                            force,
                            max_time_jump_s,
                            progress: bar.progress(),
                        };
                        let imported = if matches!(format, ImportFormat::Binance) {
                            binance::import(&mut writer, &file, &opts)
                        } else {
                            hyperliquid::import(&mut writer, &file, &opts)
                        };
                        drop(bar);
                        let (id, stats) =
                            imported.with_context(|| format!("importing {}", file.display()))?;
                        println!(
                            "imported {} as session {id}: {}",
                            file.display(),
                            stats.summary()
                        );
                        if let Some(i) = &stats.instrument {
                            println!("  instrument: {}", i.describe());
                        }
                        for (line, why) in &stats.malformed_lines {
                            eprintln!("  malformed line {line}: {why}");
                        }
                    }
                    // All of a Tardis import's files went to one import above.
                    ImportFormat::Tardis => {}
                    ImportFormat::Jsonl => {
                        if unsigned {
                            eprintln!(
                            "warning: --unsigned: the entries of {} are NOT checked against any hash chain, so edits to the file cannot be detected; the journal chains them from its own head",
                            file.display()
                        );
                        }
                        let opts = jsonl::ImportOptions { unsigned, rebase };
                        let done = jsonl::import_file(&mut writer, &file, &opts)
                            .with_context(|| format!("importing {}", file.display()))?;
                        if let Some(from) = done.rebased_from {
                            eprintln!(
                            "note: --rebase: {} continues a journal whose head was {}; its own chain is intact, and its entries were chained from this journal's head",
                            file.display(),
                            jsonl::to_hex(&from)
                        );
                        }
                        println!(
                            "imported {} entries from {}{}",
                            done.entries,
                            file.display(),
                            if done.checked {
                                ""
                            } else {
                                " (unsigned: not checked against a hash chain)"
                            }
                        );
                    }
                }
            }
            writer.close()?;
            Ok(0)
        }
        JournalCmd::Export {
            format: format @ (ExportFormat::Csv | ExportFormat::Parquet),
            session,
            kinds,
            out,
        } => {
            use flashmm_report::export::{self, Format};
            let Some(out) = out else {
                bail!("journal export --format csv|parquet needs OUT: a directory for one file per table, or a .csv/.parquet file with --kinds naming one table");
            };
            let format = if format == ExportFormat::Csv {
                Format::Csv
            } else {
                Format::Parquet
            };
            let tables = export::parse_kinds(kinds.as_deref())?;
            let journal = open(dir)?;
            let written = export::export(&journal, session, &tables, format, &out)?;
            for w in &written {
                eprintln!("{:>9} rows  {}", w.rows, w.path.display());
            }
            Ok(0)
        }
        JournalCmd::Export {
            format: ExportFormat::Jsonl,
            session,
            kinds,
            out,
        } => {
            if kinds.is_some() {
                bail!("--kinds applies to --format csv and parquet; a JSONL export holds every entry, so it can be imported again");
            }
            let journal = open(dir)?;
            let n = match &out {
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    jsonl::export(&journal, session, &mut w)?
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    jsonl::export(&journal, session, &mut w)?
                }
            };
            eprintln!("exported {n} entries");
            Ok(0)
        }
        JournalCmd::Ls { json } => {
            let journal = open(dir)?;
            let sessions = journal.sessions()?;
            let mut reach = Vec::with_capacity(sessions.len());
            let mut instruments = Vec::with_capacity(sessions.len());
            let mut markets = Vec::with_capacity(sessions.len());
            for s in &sessions {
                reach.push(market_reach(&journal, s)?);
                instruments.push(flashmm_journal::instrument::of_session(&journal, s.id)?);
                markets.push(flashmm_journal::instrument::symbols(&journal, s.id)?);
            }
            if json {
                let mut out = Vec::with_capacity(sessions.len());
                for (((s, r), i), all) in
                    sessions.iter().zip(&reach).zip(&instruments).zip(&markets)
                {
                    let mut v = serde_json::to_value(s)?;
                    if let Some(o) = v.as_object_mut() {
                        let m = i.as_ref().map(|i| &i.market);
                        let all: Vec<String> = all.iter().map(|y| y.to_string()).collect();
                        o.insert("symbols".into(), all.into());
                        o.insert("symbol".into(), m.map(|m| m.symbol.to_string()).into());
                        o.insert("venue".into(), m.map(|m| m.venue.clone()).into());
                        o.insert("kind".into(), m.map(|m| m.kind.as_str()).into());
                        o.insert("finished".into(), s.finished().into());
                        o.insert("state".into(), s.state().into());
                        o.insert(
                            "market".into(),
                            match r {
                                Some(r) => {
                                    let mut m = serde_json::to_value(r)?;
                                    if let Some(m) = m.as_object_mut() {
                                        m.insert("complete".into(), r.complete().into());
                                    }
                                    m
                                }
                                None => serde_json::Value::Null,
                            },
                        );
                    }
                    out.push(v);
                }
                println!("{}", serde_json::Value::Array(out));
                return Ok(0);
            }
            if sessions.is_empty() {
                println!("journal {} is empty; try `flashmm backtest --predictor rules` or `flashmm journal import`", dir.display());
                return Ok(0);
            }
            let market: Vec<String> = reach.iter().map(|r| market_column(r.as_ref())).collect();
            let mw = market.iter().map(|m| m.len()).max().unwrap_or(0).max(6);
            // We hold the lock, so no process is still writing a session with no end.
            let status: Vec<String> = sessions
                .iter()
                .map(|s| match s.status {
                    None => s.state(),
                    Some(_) => s.status_word().into(),
                })
                .collect();
            let sw = status.iter().map(|m| m.len()).max().unwrap_or(0).max(6);
            let symbols: Vec<String> = markets
                .iter()
                .map(|all| {
                    let all: Vec<String> = all.iter().map(|y| y.to_string()).collect();
                    if all.is_empty() {
                        "-".into()
                    } else {
                        all.join("+")
                    }
                })
                .collect();
            let yw = symbols.iter().map(|m| m.len()).max().unwrap_or(0).max(6);
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>7}  {:<8}  {:<yw$}  {:>9}  {:<17}  {:<24}  {:<24}  {:<mw$}  {:<sw$}  label",
                "session", "mode", "symbol", "entries", "seqs", "from", "to", "market", "status"
            )?;
            for (((s, m), st), y) in sessions.iter().zip(&market).zip(&status).zip(&symbols) {
                writeln!(
                    out,
                    "{:>7}  {:<8}  {:<yw$}  {:>9}  {:<17}  {:<24}  {:<24}  {:<mw$}  {:<sw$}  {}",
                    s.id,
                    s.mode.as_str(),
                    y,
                    s.entries,
                    format!("{}..{}", s.first_seq, s.last_seq),
                    when::format(s.first_ts),
                    when::format(s.last_ts),
                    m,
                    st,
                    s.label
                )?;
            }
            let unfinished: Vec<String> = sessions
                .iter()
                .filter(|s| !s.finished())
                .map(|s| s.id.to_string())
                .collect();
            if !unfinished.is_empty() {
                writeln!(
                    out,
                    "unfinished: {}; from, to and market are what was journaled before the stop; `flashmm report` reads the newest finished session unless --session names one of these",
                    unfinished.join(", ")
                )?;
            }
            Ok(0)
        }
        JournalCmd::Verify => {
            let journal = open(dir)?;
            match journal.verify()? {
                Verified::Intact { entries, head } => {
                    println!(
                        "journal {} is intact: {entries} entries, head hash {}",
                        dir.display(),
                        binance::hex(&head)
                    );
                    Ok(0)
                }
                Verified::Broken {
                    checked,
                    seq,
                    detail,
                } => {
                    println!("journal {} is broken at seq {seq}: {detail} ({checked} entries before it are intact)", dir.display());
                    Ok(1)
                }
            }
        }
    }
}

/// The market seqs a session read of another's (a backtest's, a replay's): `FROM..TO`, with
/// `of FROM..LAST` when it stopped before the last market entry of its range; `-` for a session
/// that journals its own.
fn market_column(r: Option<&MarketReach>) -> String {
    let Some(r) = r else { return "-".into() };
    let range = |to: Option<u64>| match to {
        Some(t) => format!("{}..{t}", r.from_seq),
        None => "none".into(),
    };
    if r.complete() {
        range(r.read_to)
    } else {
        format!("{} of {}", range(r.read_to), range(r.last))
    }
}
