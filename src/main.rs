//! The `flashmm` command line: parses arguments, builds a mode, runs it.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use flashmm_core::event::Symbol;
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_core::event::when;
use flashmm_journal::{jsonl, Journal, Verified};
use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
use flashmm::mode::probe::{self, ProbeArgs};
use flashmm_venue::azure::{AzureClient, AzurePredictor};
use std::io::{BufReader, Write};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "flashmm",
    version,
    about = "Event-sourced market maker for Sei's order book, with an LLM as a slow signal",
    long_about = "FlashMM journals every market event, prediction, quote, order and fill to one sled journal, \
and one deterministic core consumes that journal in every mode.\n\n\
Start with:\n  flashmm backtest --predictor rules      # the shipped Binance BTCUSDT recording\n  flashmm journal ls                       # what the journal holds"
)]
struct Cli {
    /// Journal directory (created if missing).
    #[arg(long, global = true, default_value = "journal", value_name = "DIR")]
    journal: PathBuf,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the strategy over recorded market data with a simulated venue.
    Backtest(BacktestCmd),
    /// Import, export, list and verify journal entries.
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Feed a session's recorded inputs back to the core and check every decision; with --set,
    /// rerun it with changed parameters (a what-if) over the same market and model answers.
    Replay(ReplayCmd),
    /// Quote on Citrex (Sei): live orders, --paper (simulated venue) or --dry-run (signed, never sent).
    Live(LiveCmd),
    /// Tell a running engine to cancel everything and stop quoting (its control endpoint).
    Kill(ControlCmd),
    /// Tell a running engine to quote again after a kill.
    Resume(ControlCmd),
    /// Ask the model once about a recorded moment (checks credentials; journaled as a probe session).
    Predict(PredictCmd),
    /// Print the effective configuration (defaults, then --config, then --set) as TOML.
    Config(ConfigArgs),
    /// Study fills: markouts, the cause chain back to the prompt, the book and trades around
    /// each fill, and what-if hints.
    Postmortem(PostmortemCmd),
    /// A session's summary with charts: PnL, inventory, spreads, fills, markouts, model latency
    /// and cost, risk actions.
    Report(ReportCmd),
}

#[derive(Args)]
struct PostmortemCmd {
    /// The session (default: the newest with decisions; with --fill, the fill's own session).
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// Only the N fills with the lowest markout at the --rank-by horizon (default: every fill).
    #[arg(long, value_name = "N", conflicts_with = "fill")]
    worst: Option<usize>,
    /// Only the fill with this journal seq.
    #[arg(long, value_name = "SEQ")]
    fill: Option<u64>,
    /// Markout horizons, e.g. 1s,5s,30s or 500ms,2m.
    #[arg(long, value_name = "LIST", default_value = "1s,5s,30s")]
    horizons: String,
    /// The horizon --worst ranks by (default: the longest of --horizons).
    #[arg(long, value_name = "H")]
    rank_by: Option<String>,
    /// Also write a self-contained HTML page (inline SVG charts, no scripts).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReportCmd {
    /// The session (default: the newest with decisions).
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// Also write a self-contained HTML page with the charts (inline SVG, no scripts).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LivePredictorArg {
    Rules,
    Stub,
    /// Azure OpenAI (AZURE_OPENAI_*), asked asynchronously, never on the quoting path.
    Azure,
}

#[derive(Args)]
struct LiveCmd {
    /// The real feed with the simulated venue: no key needed, no order leaves.
    #[arg(long, conflicts_with = "dry_run")]
    paper: bool,
    /// Sign and journal every order as it would be sent, and send nothing (fills are simulated).
    #[arg(long)]
    dry_run: bool,
    /// A file holding the private key (hex); it must be mode 0600. Otherwise FLASHMM_SEI_PRIVATE_KEY.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "rules")]
    predictor: LivePredictorArg,
    #[command(flatten)]
    config: ConfigArgs,
    /// Stop by itself after this many seconds (soak tests).
    #[arg(long, value_name = "SECONDS")]
    run_for: Option<u64>,
}

#[derive(Args)]
struct ControlCmd {
    /// The engine's control endpoint (live.control_addr).
    #[arg(long, default_value = "127.0.0.1:9109", value_name = "ADDR")]
    control: String,
}

#[derive(Args)]
struct ReplayCmd {
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

#[derive(Args)]
struct PredictCmd {
    /// Required: one call, then exit.
    #[arg(long)]
    once: bool,
    /// A Binance recording (.gz); imported on first use. Default: the shipped fixture.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    data: Option<PathBuf>,
    /// Take the market from this journal session instead.
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// The moment to describe: 2024-08-08T23:58:00Z (default: the end of the data).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ConfigArgs {
    /// TOML configuration file; see backtests/default.toml for every key.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one key, e.g. --set strategy.levels=5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PredictorArg {
    /// The seed's order-book rules.
    Rules,
    /// Always neutral, or scripted by backtest.stub_script.
    Stub,
    /// Azure OpenAI (AZURE_OPENAI_*); real money, so --max-cost-usd is required.
    Azure,
    /// The model answers recorded in another session (--recorded-session).
    Recorded,
}

#[derive(Args)]
struct BacktestCmd {
    /// Which predictor answers the core's prediction requests.
    #[arg(long, value_enum, default_value = "rules")]
    predictor: PredictorArg,
    /// A Binance recording (.gz); imported into the journal on first use.
    /// Default: the shipped fixture, unless --session or --from/--to select journal data.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    data: Option<PathBuf>,
    /// Take market data from this journal session instead of a file.
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// Start of the market data: 2024-08-08 or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the market data (a bare date means the end of that day).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Script for the stub predictor (same as --set backtest.stub_script=FILE).
    #[arg(long, value_name = "FILE")]
    stub_script: Option<PathBuf>,
    /// Spending cap for --predictor azure (same as --set predict.budget_usd_total=USD); the run stops there.
    #[arg(long, value_name = "USD")]
    max_cost_usd: Option<String>,
    /// For --predictor recorded: the session whose answers to serve (default: the latest with model answers).
    #[arg(long, value_name = "ID")]
    recorded_session: Option<u64>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportFormat {
    /// hftbacktest collector recording of Binance streams (`<ns> <json>` lines, gzip or plain).
    Binance,
    /// A `flashmm journal export` file.
    Jsonl,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// Every entry, one JSON object a line, with chain hashes (importable).
    Jsonl,
    /// One CSV table per kind (see docs/export.md).
    Csv,
    /// One Parquet table per kind (see docs/export.md).
    Parquet,
}

#[derive(Subcommand)]
enum JournalCmd {
    /// Import market data or a JSONL export.
    Import {
        #[arg(long, value_enum)]
        format: ImportFormat,
        file: PathBuf,
        /// Stop at the first malformed line instead of counting and skipping it.
        #[arg(long)]
        strict: bool,
        /// On an update-id gap, mark it and resync at the next snapshot instead of failing.
        #[arg(long)]
        allow_gaps: bool,
        /// Symbol for recordings whose lines do not name one.
        #[arg(long)]
        symbol: Option<String>,
        /// Import a file even if the journal already has it.
        #[arg(long)]
        force: bool,
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
    /// List sessions with their entry counts and time ranges.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain and that every entry decodes; report the first broken link.
    Verify,
}

fn main() {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .init();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Config(c) => {
            let cfg = flashmm::config::load(c.config.as_deref(), &c.sets)?;
            print!("{}", cfg.to_toml());
            Ok(0)
        }
        Command::Backtest(b) => run_backtest(&cli.journal, b),
        Command::Predict(p) => run_predict(&cli.journal, p),
        Command::Replay(r) => run_replay(&cli.journal, r),
        Command::Live(l) => run_live(&cli.journal, l),
        Command::Kill(c) => run_control(&c.control, "/kill"),
        Command::Resume(c) => run_control(&c.control, "/resume"),
        Command::Journal(j) => run_journal(&cli.journal, j),
        Command::Postmortem(p) => run_postmortem(&cli.journal, p),
        Command::Report(r) => run_report(&cli.journal, r),
    }
}

fn write_html(path: &std::path::Path, html: &str) -> Result<()> {
    std::fs::write(path, html).with_context(|| format!("--html {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn run_postmortem(dir: &std::path::Path, c: PostmortemCmd) -> Result<i32> {
    use flashmm_report::horizon::Horizon;
    use flashmm_report::postmortem::{self, Options, Select};
    let horizons = Horizon::parse_list(&c.horizons)?;
    let rank_by = c
        .rank_by
        .as_deref()
        .map(|v| Horizon::parse("--rank-by", v))
        .transpose()?;
    let select = match (c.worst, c.fill) {
        (Some(n), _) => Select::Worst(n),
        (None, Some(seq)) => Select::Fill(seq),
        (None, None) => Select::All,
    };
    let journal = open(dir)?;
    let opts = Options {
        session: c.session,
        select,
        horizons,
        rank_by,
    };
    let pm = postmortem::run(&journal, &opts)?;
    if let Some(path) = &c.html {
        write_html(path, &pm.to_html())?;
    }
    if c.json {
        println!("{}", pm.to_json());
    } else {
        print!("{}", pm.to_text());
    }
    Ok(0)
}

fn run_report(dir: &std::path::Path, c: ReportCmd) -> Result<i32> {
    let journal = open(dir)?;
    let r = flashmm_report::session::read(&journal, c.session)?;
    if let Some(path) = &c.html {
        write_html(path, &r.to_html())?;
    }
    if c.json {
        println!("{}", r.to_json());
    } else {
        print!("{}", r.to_text());
    }
    Ok(0)
}

fn open(dir: &std::path::Path) -> Result<Journal> {
    Journal::open(dir).with_context(|| format!("--journal {}", dir.display()))
}

fn run_backtest(dir: &std::path::Path, b: BacktestCmd) -> Result<i32> {
    let mut sets = b.config.sets.clone();
    if let Some(s) = &b.stub_script {
        sets.push(format!(
            "backtest.stub_script={:?}",
            s.display().to_string()
        ));
    }
    if let Some(c) = &b.max_cost_usd {
        sets.push(format!("predict.budget_usd_total={c:?}"));
    }
    let cfg = flashmm::config::load(b.config.config.as_deref(), &sets)?;
    let from = b
        .from
        .as_deref()
        .map(|v| when::parse("--from", v, when::Edge::Start))
        .transpose()?;
    let to =
        b.to.as_deref()
            .map(|v| when::parse("--to", v, when::Edge::End))
            .transpose()?;
    let data = match (b.data, b.session) {
        (Some(f), _) => Data::File(f),
        (None, Some(id)) => Data::Journal(Some(id)),
        (None, None) if from.is_some() || to.is_some() => Data::Journal(None),
        (None, None) => {
            let f = backtest::default_fixture();
            if !f.exists() {
                bail!("no --data given and the default recording {} is missing; pass --data FILE or --session ID", backtest::DEFAULT_FIXTURE);
            }
            Data::File(f)
        }
    };
    let journal = open(dir)?;
    let mut writer = journal.writer()?;
    let predictor = match b.predictor {
        PredictorArg::Rules => PredictorChoice::Rules,
        PredictorArg::Stub => PredictorChoice::Stub,
        PredictorArg::Azure => PredictorChoice::Azure,
        PredictorArg::Recorded => PredictorChoice::Recorded(b.recorded_session),
    };
    let symbol = cfg.market.symbol;
    let o = backtest::run(
        &mut writer,
        BacktestArgs {
            data,
            from,
            to,
            predictor,
            cfg,
            progress: true,
            what_if: None,
        },
    )?;
    writer.close()?;
    let events_per_s = o.summary.events as f64 / o.wall_s.max(1e-9);
    eprintln!(
        "backtest session {} written to {} (market data: session {}, seq {}..{}{})",
        o.session,
        dir.display(),
        o.source_session,
        o.from_seq,
        o.to_seq,
        if o.imported { ", imported now" } else { "" }
    );
    if b.json {
        let mut v = o.summary.to_json();
        if let Some(m) = v.as_object_mut() {
            m.insert("symbol".into(), symbol.to_string().into());
            m.insert("predictor".into(), predictor_name(predictor).into());
            m.insert("source_session".into(), o.source_session.into());
            m.insert("from_seq".into(), o.from_seq.into());
            m.insert("to_seq".into(), o.to_seq.into());
            m.insert(
                "predictor_cost_usd".into(),
                o.cost_usd.round_dp(6).normalize().to_string().into(),
            );
            m.insert("stopped_early".into(), serde_json::json!(o.stopped));
            m.insert(
                "wall_s".into(),
                serde_json::json!((o.wall_s * 1e6).round() / 1e6),
            );
            m.insert(
                "events_per_s".into(),
                serde_json::json!(events_per_s.round()),
            );
        }
        println!("{v}");
    } else {
        print_report(&o, symbol, predictor, events_per_s);
    }
    Ok(0)
}

fn run_control(addr: &str, path: &str) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(flashmm::mode::live::control::send(addr, path)) {
        Ok(body) => {
            println!("{body}");
            Ok(0)
        }
        Err(e) => bail!("{e}"),
    }
}

/// The key from `--key-file` (mode 0600 only) or FLASHMM_SEI_PRIVATE_KEY. Errors never echo it.
fn load_key(
    key_file: Option<&std::path::Path>,
) -> Result<Option<flashmm_venue::citrex::eip712::Signer>> {
    use flashmm_venue::citrex::eip712::Signer;
    let text = match key_file {
        Some(p) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(p)
                    .with_context(|| format!("--key-file {}", p.display()))?
                    .permissions()
                    .mode()
                    & 0o777;
                if mode & 0o077 != 0 {
                    bail!(
                        "--key-file {} is readable by others (mode {mode:o}); run chmod 600 on it",
                        p.display()
                    );
                }
            }
            std::fs::read_to_string(p).with_context(|| format!("--key-file {}", p.display()))?
        }
        None => match std::env::var("FLASHMM_SEI_PRIVATE_KEY") {
            Ok(k) if !k.trim().is_empty() => k,
            _ => return Ok(None),
        },
    };
    let signer = Signer::from_hex(text.trim()).map_err(|_| {
        anyhow::anyhow!(
            "the private key (FLASHMM_SEI_PRIVATE_KEY or --key-file) is not 32 bytes of hex"
        )
    })?;
    Ok(Some(signer))
}

fn run_live(dir: &std::path::Path, l: LiveCmd) -> Result<i32> {
    use flashmm::mode::live::{self, LiveArgs, LivePredictor, VenueMode};
    use std::sync::Arc;
    let cfg = flashmm::config::load(l.config.config.as_deref(), &l.config.sets)?;
    let key = load_key(l.key_file.as_deref())?;
    let venue = match (l.paper, l.dry_run, key) {
        (true, _, _) => VenueMode::Paper,
        (false, true, Some(k)) => VenueMode::DryRun(Arc::new(k)),
        (false, false, Some(k)) => VenueMode::Citrex(Arc::new(k)),
        (false, _, None) => bail!(
            "no signing key: set FLASHMM_SEI_PRIVATE_KEY or pass --key-file FILE to trade, or run with --paper to quote against the simulated venue"
        ),
    };
    let predictor = match l.predictor {
        LivePredictorArg::Rules => LivePredictor::Local(Box::new(flashmm_core::signal::rules::Rules {
            signal_bps: cfg.predict.rules_signal_bps,
        })),
        LivePredictorArg::Stub => {
            LivePredictor::Local(Box::new(flashmm_venue::stub::Stub::neutral()))
        }
        LivePredictorArg::Azure => {
            LivePredictor::Azure(Arc::new(AzureClient::from_env(&cfg.azure)?))
        }
    };
    let journal = open(dir)?;
    let writer = journal.writer()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let args = LiveArgs {
        cfg,
        venue,
        predictor,
        run_for: l.run_for.map(std::time::Duration::from_secs),
        stop: None,
    };
    let outcome = rt.block_on(live::run(writer, args))?;
    eprintln!("session {} ended: {:?}", outcome.session, outcome.status);
    eprint!("{}", outcome.metrics.summary());
    Ok(match outcome.status {
        flashmm_core::event::SessionStatus::Completed => 0,
        _ => 1,
    })
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
    let f = std::fs::File::open(&recorded)
        .with_context(|| format!("opening {}", recorded.display()))?;
    let n = jsonl::import(
        &mut writer,
        &mut BufReader::new(flate2::read::GzDecoder::new(f)),
    )
    .with_context(|| format!("importing {}", recorded.display()))?;
    writer.close()?;
    eprintln!(
        "the journal was empty: imported {} and the recorded session in {} ({n} entries; its model answers come from a local fake, see fixtures/README.md)",
        data.display(),
        recorded.display()
    );
    Ok(())
}

fn run_replay(dir: &std::path::Path, r: ReplayCmd) -> Result<i32> {
    use flashmm::mode::replay;
    let from = r
        .from
        .as_deref()
        .map(|v| when::parse("--from", v, when::Edge::Start))
        .transpose()?;
    let to =
        r.to.as_deref()
            .map(|v| when::parse("--to", v, when::Edge::End))
            .transpose()?;
    let journal = open(dir)?;
    seed_empty_journal(&journal)?;
    let session = replay::pick_session(&journal, r.session, from)?;
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

fn run_predict(dir: &std::path::Path, p: PredictCmd) -> Result<i32> {
    if !p.once {
        bail!("flashmm predict needs --once: it makes one model call and exits (live mode asks on its own cadence)");
    }
    let cfg = flashmm::config::load(p.config.config.as_deref(), &p.config.sets)?;
    let at =
        p.at.as_deref()
            .map(|v| when::parse("--at", v, when::Edge::Start))
            .transpose()?;
    let data = match (p.data, p.session) {
        (Some(f), _) => Data::File(f),
        (None, Some(id)) => Data::Journal(Some(id)),
        (None, None) => Data::File(backtest::default_fixture()),
    };
    let client = AzureClient::from_env(&cfg.azure)?;
    let mut predictor = AzurePredictor::new(client)?;
    let journal = open(dir)?;
    let mut writer = journal.writer()?;
    let o = probe::run(&mut writer, ProbeArgs { data, at, cfg }, &mut predictor)?;
    writer.close()?;
    let r = &o.response;
    let http = r.http.clone().unwrap_or_default();
    let last_status = http.attempts.last().and_then(|a| a.status);
    if p.json {
        let v = serde_json::json!({
            "session": o.session,
            "at": when::format(o.at_ts),
            "at_seq": o.at_seq,
            "ok": r.result.is_ok(),
            "prediction": r.result.as_ref().ok(),
            "failure": r.result.as_ref().err(),
            "usage": r.usage,
            "cost_usd": r.cost_usd.to_string(),
            "latency_ms": r.latency_ms,
            "http_status": last_status,
            "attempts": http.attempts.len(),
            "ratelimit_remaining_requests": http.ratelimit_remaining_requests,
            "ratelimit_remaining_tokens": http.ratelimit_remaining_tokens,
        });
        println!("{v}");
    } else {
        println!(
            "asked {} about {} (seq {} of session {}); journaled as session {}",
            predictor.client().url(),
            when::format(o.at_ts),
            o.at_seq,
            o.source_session,
            o.session
        );
        match &r.result {
            Ok(pr) => println!(
                "  prediction   {} confidence {} price change {} bps: {}",
                pr.direction.as_str(),
                pr.confidence,
                pr.price_change_bps,
                pr.reasoning
            ),
            Err(f) => println!("  failed       {}: {}", f.kind.as_str(), f.message),
        }
        if let Some(u) = &r.usage {
            println!(
                "  tokens       prompt {} (cached {}), completion {} (reasoning {})",
                u.prompt, u.cached, u.completion, u.reasoning
            );
        }
        println!("  cost         {} USD", r.cost_usd.round_dp(6));
        println!(
            "  latency      {} ms over {} attempt(s), last HTTP status {}",
            r.latency_ms,
            http.attempts.len(),
            last_status.map_or("none".to_string(), |s| s.to_string())
        );
    }
    Ok(if r.result.is_ok() { 0 } else { 1 })
}

fn predictor_name(p: PredictorChoice) -> &'static str {
    match p {
        PredictorChoice::Rules => "rules",
        PredictorChoice::Stub => "stub",
        PredictorChoice::Azure => "azure",
        PredictorChoice::Recorded(_) => "recorded",
    }
}

fn print_report(o: &backtest::Outcome, symbol: Symbol, p: PredictorChoice, events_per_s: f64) {
    let v = o.summary.to_json();
    let s = |k: &str| match &v[k] {
        serde_json::Value::String(x) => x.clone(),
        serde_json::Value::Null => "n/a".into(),
        other => other.to_string(),
    };
    let pnl = |k: &str| v["pnl"][k].as_str().unwrap_or("n/a").to_string();
    let mk = |h: &str| {
        let avg = v["markout_bps"][h].as_str().unwrap_or("n/a").to_string();
        format!("{h} {avg} ({} fills)", v["markout_samples"][h])
    };
    println!(
        "FlashMM backtest: {symbol}, {} predictor, market data from session {}",
        predictor_name(p),
        o.source_session
    );
    println!("  market events   {}", s("events"));
    println!(
        "  quotes          {} decisions, {} orders, {} cancels, {} rejects",
        s("quotes"),
        s("orders"),
        s("cancels"),
        s("rejects")
    );
    println!(
        "  fills           {} ({} maker, {} taker), volume {} ({} quote)",
        s("fills"),
        s("maker_fills"),
        s("taker_fills"),
        s("volume"),
        s("notional")
    );
    println!(
        "  PnL             total {} = realized {} + unrealized {} - fees {}",
        pnl("total"),
        pnl("realized"),
        pnl("unrealized"),
        pnl("fees")
    );
    println!(
        "  position        final {}, max |position| {}, final mid {}",
        s("final_position"),
        s("max_abs_position"),
        s("final_mid")
    );
    println!(
        "  spread (bps)    quoted {} avg, market {} time-weighted",
        s("avg_quoted_spread_bps"),
        s("avg_market_spread_bps")
    );
    println!(
        "  markouts (bps)  {}, {}, {}",
        mk("1s"),
        mk("5s"),
        mk("30s")
    );
    println!(
        "  predictions     {} ({} failed); hit rate {} over {} directional calls",
        s("predictions"),
        s("prediction_failures"),
        s("prediction_hit_rate"),
        s("prediction_calls_scored")
    );
    println!("  risk actions    {}", s("risk_actions"));
    println!(
        "  model cost      {} USD",
        o.cost_usd.round_dp(6).normalize()
    );
    if let Some(why) = &o.stopped {
        println!("  stopped early   {why}");
    }
    let q = |p: f64| o.latency.value_at_quantile(p);
    println!(
        "  timing          {:.3} s wall, {:.0} events/s; core+venue per event p50 {} ns, p99 {} ns (sampled)",
        o.wall_s, events_per_s, q(0.5), q(0.99)
    );
    println!("  session         {} (flashmm journal ls)", o.session);
}

fn run_journal(dir: &std::path::Path, cmd: JournalCmd) -> Result<i32> {
    match cmd {
        JournalCmd::Import {
            format,
            file,
            strict,
            allow_gaps,
            symbol,
            force,
        } => {
            let journal = open(dir)?;
            let mut writer = journal.writer()?;
            match format {
                ImportFormat::Binance => {
                    let symbol = symbol
                        .map(|s| Symbol::new(&s.to_ascii_uppercase()))
                        .transpose()
                        .context("--symbol")?;
                    let opts = ImportOptions {
                        strict,
                        allow_gaps,
                        symbol,
                        force,
                    };
                    let (id, stats) = binance::import(&mut writer, &file, &opts)
                        .with_context(|| format!("importing {}", file.display()))?;
                    println!(
                        "imported {} as session {id}: {}",
                        file.display(),
                        stats.summary()
                    );
                    for (line, why) in &stats.malformed_lines {
                        eprintln!("  malformed line {line}: {why}");
                    }
                }
                ImportFormat::Jsonl => {
                    let f = std::fs::File::open(&file)
                        .with_context(|| format!("opening {}", file.display()))?;
                    let n = jsonl::import(&mut writer, &mut BufReader::new(f))
                        .with_context(|| format!("importing {}", file.display()))?;
                    println!("imported {n} entries from {}", file.display());
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
            if json {
                println!("{}", serde_json::to_string(&sessions)?);
                return Ok(0);
            }
            if sessions.is_empty() {
                println!("journal {} is empty; try `flashmm backtest --predictor rules` or `flashmm journal import`", dir.display());
                return Ok(0);
            }
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>7}  {:<8}  {:>9}  {:<17}  {:<24}  {:<24}  {:<11}  label",
                "session", "mode", "entries", "seqs", "from", "to", "status"
            )?;
            for s in sessions {
                let status = match &s.status {
                    // We hold the lock, so no process is still writing it.
                    None => "unfinished".to_string(),
                    Some(flashmm_core::event::SessionStatus::Completed) => "completed".into(),
                    Some(flashmm_core::event::SessionStatus::Interrupted) => "interrupted".into(),
                    Some(flashmm_core::event::SessionStatus::Failed(_)) => "failed".into(),
                };
                writeln!(
                    out,
                    "{:>7}  {:<8}  {:>9}  {:<17}  {:<24}  {:<24}  {:<11}  {}",
                    s.id,
                    s.mode.as_str(),
                    s.entries,
                    format!("{}..{}", s.first_seq, s.last_seq),
                    when::format(s.first_ts),
                    when::format(s.last_ts),
                    status,
                    s.label
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
