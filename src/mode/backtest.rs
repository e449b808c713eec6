//! `flashmm backtest`: recorded market entries through the core, a simulated venue and a local
//! predictor, as a discrete-event simulation on market time.
//!
//! The run is written as its own session: outputs, simulated venue reports, predictions and
//! timers. Market entries are referenced by seq (`Source::Journal`), never copied. The order in
//! which the core sees things follows the rule in `flashmm_journal::stream`, so the session can be read
//! back (and replayed) in exactly the order it ran.
//!
//! Longer than 600 lines on purpose: the driver's event queue, its merge rule and the predictor
//! scheduling must be read together to see that the order obeys the rule; splitting them would
//! hide the invariant across files.

use super::cover;
use super::import_hint::import_hint;
use flashmm_core::book::Book;
use flashmm_core::config::{Config, MarketConfig, ModelLatency};
use flashmm_core::contract::Contract;
use flashmm_core::event::Symbol;
use flashmm_core::event::{
    bounds, Body, CallOutcome, Entry, Input, Mode, Output, PredictionResponse, PredictorGate,
    SessionStart, SessionStatus, Source,
};
use flashmm_core::instrument::{self, MARKET_KEYS};
use flashmm_core::markets::MarketEntry;
use flashmm_core::signal::{rules::Rules, Predictor};
use flashmm_core::sim::SimVenue;
use flashmm_core::{Cause, Desk, Emitted};
use flashmm_journal::binance::{self, ImportError, ImportOptions};
use flashmm_journal::detect;
use flashmm_journal::{Journal, JournalError, SessionInfo, Writer};
use flashmm_report::split::{Owner, Split};
use flashmm_report::Summary;
use flashmm_venue::azure::{AzureClient, AzurePredictor};
use flashmm_venue::recorded::Recorded;
use flashmm_venue::stub::{Stub, StubError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const NS_PER_MS: i64 = 1_000_000;
/// Core latency is sampled once per this many events, so timing costs nothing measurable.
const LATENCY_SAMPLE: u64 = 64;

pub const DEFAULT_FIXTURE: &str = "fixtures/binance-spot-btcusdt-20240808.gz";

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A `--data` file that failed to import: its hints name `journal import`'s flags, which
    /// `backtest` does not have.
    #[error("{}", import_hint(path, format, err))]
    ImportData {
        path: String,
        format: &'static str,
        err: Box<ImportError>,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Stub(#[from] StubError),
    #[error("{0}")]
    NoData(String),
    /// The config's `market.*` contradicts the data, or the config does not fit its market.
    #[error("{0}")]
    Market(String),
    #[error(transparent)]
    Azure(#[from] flashmm_venue::azure::AzureError),
    #[error("market entry seq {seq} is unusable: {why}. Import the recording again with this flashmm (`flashmm journal import`), which refuses such lines and names them")]
    BadMarket { seq: u64, why: String },
    #[error("stopped a runaway: after market entry seq {seq} the simulation produced {steps} inputs within 1 ms of market time {ts_ns} ns without time moving on; this is a flashmm bug, please report it with this journal")]
    Runaway { seq: u64, ts_ns: i64, steps: u64 },
}

/// Core inputs the driver may make within 1 ms of market time. Timers, reports and answers are
/// each bounded by the orders in flight, far below this; beyond it the run is stopped rather
/// than fill the disk.
const MAX_STEPS_PER_MS: u64 = 100_000;

/// Counts the inputs the driver makes within 1 ms of market time.
#[derive(Debug)]
struct Pace {
    window_ts: i64,
    steps: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            window_ts: i64::MIN,
            steps: 0,
        }
    }
}

impl Pace {
    /// False once more than `MAX_STEPS_PER_MS` inputs fall within 1 ms.
    fn step(&mut self, t: i64) -> bool {
        if t.saturating_sub(self.window_ts) >= 1_000_000 {
            self.window_ts = t;
            self.steps = 0;
        }
        self.steps += 1;
        self.steps <= MAX_STEPS_PER_MS
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictorChoice {
    Rules,
    Stub,
    /// The real model, from `AZURE_OPENAI_*`; needs `predict.budget_usd_total` (--max-cost-usd).
    Azure,
    /// The answers recorded in another session (`None`: the latest that has model answers).
    Recorded(Option<u64>),
}

#[derive(Clone, Debug)]
pub enum Data {
    /// A recording file, imported first if this journal does not have it yet.
    File(PathBuf),
    /// A recording per market of a `[[markets]]` session, in any order.
    Files(Vec<PathBuf>),
    /// Market entries already in the journal; `None` picks the latest session that has them.
    Journal(Option<u64>),
}

pub struct BacktestArgs {
    pub data: Data,
    pub from: Option<i64>,
    /// The last instant `--from` names: the end of its day for a bare date, else `from`. The
    /// data must cover some instant from `from` to here.
    pub from_until: Option<i64>,
    pub to: Option<i64>,
    pub predictor: PredictorChoice,
    pub cfg: Config,
    /// The `market.*` keys the user set (`Config::explicit_keys`); the rest come from the data.
    /// `None`: all of `cfg.market` was chosen, and must agree with the data.
    pub market_keys: Option<Vec<String>>,
    pub progress: bool,
    /// Set for a what-if replay: the session it reruns, and that session's market seqs.
    pub what_if: Option<WhatIf>,
}

#[derive(Clone, Copy, Debug)]
pub struct WhatIf {
    pub parent: u64,
    pub from_seq: u64,
    pub to_seq: u64,
}

pub struct Outcome {
    pub session: u64,
    pub source_session: u64,
    pub from_seq: u64,
    pub to_seq: u64,
    /// Whether `--data` had to be imported (or several markets merged) during this run.
    pub imported: bool,
    /// The first market's, as `markets[0]`.
    pub summary: Summary,
    /// The market the run traded: the data's instrument with the user's keys (the first).
    pub market: MarketConfig,
    /// Every market the run quoted, with its own summary, in config order.
    pub markets: Vec<(MarketConfig, Summary)>,
    /// With several markets: the import sessions merged into `source_session`.
    pub merged_from: Vec<u64>,
    pub wall_s: f64,
    pub latency: hdrhistogram::Histogram<u64>,
    pub engine: flashmm_core::EngineStats,
    /// What the predictor's answers cost.
    pub cost_usd: rust_decimal::Decimal,
    /// Why the run ended before the data did (the cost cap), if it did.
    pub stopped: Option<String>,
}

fn unavailable(request_id: u64, why: &str) -> PredictionResponse {
    PredictionResponse {
        request_id,
        source: flashmm_core::event::PredictorKind::Stub,
        result: Err(flashmm_core::event::PredictionFailure {
            kind: flashmm_core::event::FailureKind::Unavailable,
            message: why.into(),
        }),
        raw: String::new(),
        latency_ms: 0,
        usage: None,
        cost_usd: rust_decimal::Decimal::ZERO,
        http: None,
    }
}

/// The newest session whose prediction answers came from a model.
fn latest_with_model_answers(journal: &Journal) -> Result<Option<u64>, JournalError> {
    for s in journal.sessions()?.iter().rev() {
        if matches!(s.mode, Mode::Import) {
            continue;
        }
        for e in journal.read(s.first_seq)? {
            let e = e?;
            if e.seq > s.last_seq {
                break;
            }
            if let Body::Input(Input::PredictionResponse(r)) = &e.body {
                if matches!(
                    r.source,
                    flashmm_core::event::PredictorKind::Azure
                        | flashmm_core::event::PredictorKind::Recorded
                ) {
                    return Ok(Some(s.id));
                }
            }
        }
    }
    Ok(None)
}

/// Finds the default fixture relative to the working directory, then to the source tree.
pub fn default_fixture() -> PathBuf {
    let local = PathBuf::from(DEFAULT_FIXTURE);
    if local.exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_FIXTURE)
}

/// The import of one recording (a file, or a Tardis book file with its trades file, book
/// first), found by its digest or imported now; `true` if imported now.
fn import_recording(writer: &mut Writer, files: &[PathBuf]) -> Result<(u64, bool), BacktestError> {
    // An import of any format is found by the files' digest.
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (sha, _) = flashmm_journal::tardis::digest(&paths)?;
    if let Some(id) = binance::find_import(writer.journal(), &sha)? {
        return Ok((id, false));
    }
    let shown = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let Some(first) = paths.first() else {
        return Err(BacktestError::NoData("no --data file".into()));
    };
    let format = detect::detect_format(first)?;
    let bar = crate::mode::progress::ImportBar::start("import");
    let opts = ImportOptions {
        progress: bar.progress(),
        ..ImportOptions::default()
    };
    let imported = detect::import_files(writer, files, &opts);
    drop(bar);
    let (_, id, stats) = imported.map_err(|e| BacktestError::ImportData {
        path: shown.clone(),
        format: format.as_str(),
        err: Box::new(e),
    })?;
    tracing::info!("imported {shown} as session {id}: {}", stats.summary());
    Ok((id, true))
}

pub(crate) fn resolve_source(
    writer: &mut Writer,
    data: &Data,
    from: Option<(i64, i64)>,
    to: Option<i64>,
    symbol: Option<Symbol>,
) -> Result<(u64, bool), BacktestError> {
    let (id, imported) = match data {
        Data::File(path) => import_recording(writer, std::slice::from_ref(path))?,
        Data::Files(paths) => {
            let groups = detect::recordings(paths)?;
            match groups.as_slice() {
                [one] => import_recording(writer, one)?,
                _ => return Err(BacktestError::NoData(
                    "several --data files are for a session of several markets ([[markets]] in the config)".into(),
                )),
            }
        }
        Data::Journal(Some(id)) => {
            let info = writer.journal().session(*id)?;
            if !has_market_data(&info) {
                return Err(BacktestError::NoData(format!(
                    "session {id} is a {} session{} and cannot be used as market data; pick a completed import, or a live or paper session (`flashmm journal ls`)",
                    info.mode.as_str(),
                    if info.mode == Mode::Import { " that did not complete" } else { "" }
                )));
            }
            (*id, false)
        }
        Data::Journal(None) => {
            let journal = writer.journal().clone();
            let sessions: Vec<SessionInfo> = journal
                .sessions()?
                .into_iter()
                .filter(has_market_data)
                .collect();
            // With two symbols in the journal, the one the config names.
            let of_symbol = |s: &SessionInfo| -> Result<Option<Symbol>, BacktestError> {
                Ok(flashmm_journal::instrument::of_session(&journal, s.id)?
                    .map(|i| i.market.symbol))
            };
            let mut pick = None;
            let mut other = Vec::new();
            for s in sessions.iter().rev() {
                let covers = from.is_none_or(|(f, u)| cover::covers(s, f, u))
                    && to.is_none_or(|t| s.first_ts <= t);
                if !covers {
                    continue;
                }
                let theirs = of_symbol(s)?;
                match (symbol, theirs) {
                    (Some(want), Some(have)) if want != have => other.push((s.id, have)),
                    _ => {
                        pick = Some(s);
                        break;
                    }
                }
            }
            if let (None, Some(want), false) = (pick, symbol, other.is_empty()) {
                let list: Vec<String> = other
                    .iter()
                    .map(|(id, y)| format!("session {id} ({y})"))
                    .collect();
                return Err(BacktestError::NoData(format!(
                    "no market data of {want} (market.symbol) in this journal covers the requested time; it has {}: drop market.symbol to use it, or import a recording of {want}",
                    list.join(", ")
                )));
            }
            let market: Vec<&SessionInfo> = sessions.iter().collect();
            match (pick, from) {
                (Some(s), _) => (s.id, false),
                (None, Some((f, u))) if !market.is_empty() => {
                    return Err(BacktestError::NoData(cover::not_covered(
                        f,
                        u,
                        "no market data in this journal covers it",
                        &market,
                    )))
                }
                (None, _) => {
                    return Err(BacktestError::NoData(format!(
                        "no session in {} has market data in the requested time range; import some with `flashmm journal import --format binance|hyperliquid FILE.gz`, or pass --data FILE",
                        writer.journal().dir().display()
                    )))
                }
            }
        }
    };
    if let Some((f, u)) = from {
        let info = writer.journal().session(id)?;
        if !cover::covers(&info, f, u) {
            return Err(BacktestError::NoData(cover::not_covered(
                f,
                u,
                &format!("the market data of session {id} does not cover it"),
                &[&info],
            )));
        }
    }
    Ok((id, imported))
}

/// The market of session `source` with the keys the user set, which must agree with it; the
/// whole config is validated again with it (a size below the data's minimum, say).
fn market_of(
    journal: &Journal,
    source: u64,
    cfg: &Config,
    keys: Option<&Vec<String>>,
) -> Result<MarketConfig, BacktestError> {
    let Some(data) = flashmm_journal::instrument::of_session(journal, source)? else {
        return Ok(cfg.market.clone());
    };
    let all: Vec<String> = MARKET_KEYS.iter().map(|k| format!("market.{k}")).collect();
    let keys = keys.unwrap_or(&all);
    let what = format!(
        "the market data of session {source} ({})",
        data.market.venue
    );
    let market =
        instrument::reconcile(&cfg.market, keys, &data, &what).map_err(BacktestError::Market)?;
    let mut cfg = cfg.clone();
    cfg.market = market.clone();
    if market.kind == flashmm_core::config::InstrumentKind::Spot && !cfg.funding.rate.is_zero() {
        return Err(BacktestError::Market(format!(
            "config key `funding.rate` is {} but session {source} is a spot market ({}), which pays no funding; remove funding.rate",
            cfg.funding.rate, market.symbol
        )));
    }
    cfg.validate()
        .map_err(|e| BacktestError::Market(format!("with the market of session {source}: {e}")))?;
    Ok(market)
}

/// The data of each `[[markets]]` entry (the import of its symbol), the market each is with
/// the keys the entry sets, and the merge of those imports that the session reads. The entries
/// in `args.cfg` are rewritten with every market key, so the journaled config says exactly
/// what ran (and a replay derives the same markets).
fn resolve_markets(
    writer: &mut Writer,
    args: &mut BacktestArgs,
    from: Option<(i64, i64)>,
) -> Result<(u64, bool, Vec<Config>, Vec<u64>), BacktestError> {
    let configs = args
        .cfg
        .market_configs()
        .map_err(|e| BacktestError::Market(e.to_string()))?;
    let mut files: Vec<(u64, Symbol)> = Vec::new();
    let mut imported = false;
    let groups = match &args.data {
        Data::File(p) => vec![vec![p.clone()]],
        Data::Files(p) => detect::recordings(p)?,
        Data::Journal(Some(id)) => {
            // A session that merged several markets: its sources are the markets' data.
            let info = writer.journal().session(*id)?;
            let Some(Source::Merged { sessions }) = info.source else {
                return Err(BacktestError::NoData(format!(
                    "--session {id} is one market's data, and this config quotes {} markets ([[markets]]); pass --data FILE for each market, or --from/--to to take each from the journal",
                    args.cfg.markets.len()
                )));
            };
            for src in sessions {
                if let Some(i) = flashmm_journal::instrument::of_session(writer.journal(), src)? {
                    files.push((src, i.market.symbol));
                }
            }
            Vec::new()
        }
        Data::Journal(None) => Vec::new(),
    };
    for group in &groups {
        let (id, new) = import_recording(writer, group)?;
        imported |= new;
        let p = &group[0];
        let sym = flashmm_journal::instrument::of_session(writer.journal(), id)?
            .map(|i| i.market.symbol)
            .ok_or_else(|| {
                BacktestError::NoData(format!(
                    "{} holds no market this flashmm can tell the symbol of",
                    p.display()
                ))
            })?;
        files.push((id, sym));
    }
    let mut sources = Vec::new();
    let mut per = Vec::new();
    for (i, (entry, c)) in args.cfg.markets.iter().zip(&configs).enumerate() {
        let want = entry.symbol;
        let source = if files.is_empty() {
            resolve_source(writer, &Data::Journal(None), from, args.to, Some(want))?.0
        } else {
            let found = files.iter().find(|(_, s)| *s == want).map(|(id, _)| *id);
            found.ok_or_else(|| {
                let have: Vec<String> = files.iter().map(|(_, s)| s.to_string()).collect();
                BacktestError::NoData(format!(
                    "no --data file is a recording of {want} (markets[{i}].symbol); the data given holds {}",
                    have.join(", ")
                ))
            })?
        };
        let keys = entry.market_keys();
        let market = market_of(writer.journal(), source, c, Some(&keys))?;
        per.push(entry.config(&args.cfg, market));
        sources.push(source);
    }
    let (merged, new) = flashmm_journal::merge::merged(writer, &sources)?;
    if new {
        tracing::info!("merged the market data of sessions {sources:?} as session {merged}");
    }
    for (entry, c) in args.cfg.markets.iter_mut().zip(&per) {
        let set = MarketEntry::of(&c.market);
        entry.venue = set.venue;
        entry.kind = set.kind;
        entry.tick_size = set.tick_size;
        entry.lot_size = set.lot_size;
        entry.min_qty = set.min_qty;
        entry.multiplier = set.multiplier;
        entry.quote_currency = set.quote_currency;
        entry.settle_currency = set.settle_currency;
    }
    Ok((merged, imported || new, per, sources))
}

/// Imports count only when complete (a failed or killed import may hold a wrong book); live and
/// paper sessions hold whatever market data they recorded before they stopped.
fn has_market_data(s: &SessionInfo) -> bool {
    match s.mode {
        Mode::Import => s.status == Some(SessionStatus::Completed),
        Mode::Live | Mode::Paper | Mode::DryRun => true,
        Mode::Backtest | Mode::Replay | Mode::Probe => false,
    }
}

struct Sim<'w> {
    writer: &'w mut Writer,
    session: u64,
    desk: Desk,
    /// Per market, in config order: its simulated venue, its book, its summary.
    venues: Vec<SimVenue>,
    books: Vec<Book>,
    summaries: Vec<Summary>,
    split: Split,
    predictor: Box<dyn Predictor>,
    predictor_latency: i64,
    model_latency: ModelLatency,
    /// Prediction responses in flight: (due, order) -> (request seq, response).
    answers: BTreeMap<(i64, u64), (u64, PredictionResponse)>,
    answers_n: u64,
    /// Journal seqs of our orders and cancels, by client order id, for `cause` links. An order
    /// is forgotten at its last report (a reject, a cancel, the fill that leaves nothing): the
    /// simulated venue reports nothing more about it, so the maps hold only live orders.
    placed: BTreeMap<u64, u64>,
    canceled: BTreeMap<u64, u64>,
    /// Market time of the last market entry the core saw. Session inputs delivered after it
    /// are stamped later than it, which is what lets a reader merge them back in order.
    last_market: i64,
    out: Vec<Emitted>,
    seqs: Vec<u64>,
    /// The core's `poll_timeout`, which changes only when the core handles an entry.
    timer: Option<i64>,
    /// Set when the data has ended and only answers already paid for are still delivered.
    closing: bool,
    last_delivered: i64,
    /// The runaway guard: the market entry being read, and the inputs made near its time.
    reading: u64,
    pace: Pace,
    /// Money the predictor spent, and why the run stopped early (the cost cap).
    cost_usd: rust_decimal::Decimal,
    stopped: Option<String>,
}

impl Sim<'_> {
    fn stamp(&self, t: i64) -> i64 {
        t.max(self.last_market.saturating_add(1))
    }

    /// Journals the core's outputs for the entry `input_seq` and acts on them.
    fn act(&mut self, input_seq: u64, ts: i64) -> Result<(), BacktestError> {
        let out = std::mem::take(&mut self.out);
        self.seqs.clear();
        for em in &out {
            let cause = match em.cause {
                Cause::Input => input_seq,
                Cause::Emitted(i) => self.seqs.get(i).copied().unwrap_or(input_seq),
            };
            let mut e = Entry {
                seq: 0,
                ts_ns: ts,
                venue_ts_ns: None,
                session: self.session,
                cause: Some(cause),
                body: Body::Output(em.output.clone()),
            };
            self.writer.append(&mut e)?;
            self.seqs.push(e.seq);
            let owner = self.summarise(&e);
            match (&em.output, owner) {
                (Output::PlaceOrder(p), Owner::One(i)) => {
                    self.placed.insert(p.cid, e.seq);
                    self.venues[i].submit(ts, p);
                }
                (Output::CancelOrder(c), Owner::One(i)) => {
                    // A cancel of an order already done gets no report: nothing to link.
                    if self.placed.contains_key(&c.cid) {
                        self.canceled.insert(c.cid, e.seq);
                    }
                    self.venues[i].cancel(ts, c.cid);
                }
                (Output::PlaceOrder(_) | Output::CancelOrder(_), _) => {}
                (Output::PredictionRequest(r), _) if self.closing => {
                    // The data has ended: answer without asking (or paying) the model.
                    let resp = unavailable(
                        r.request_id,
                        "the run ended before this request could be asked",
                    );
                    self.answers_n += 1;
                    self.answers.insert((ts, self.answers_n), (e.seq, resp));
                }
                (Output::PredictionRequest(r), _) => {
                    let mut resp = self.predictor.answer(r, ts);
                    let latency = if self.predictor.measures_latency() {
                        let server = resp.http.as_ref().and_then(|h| h.server_ms);
                        if let (ModelLatency::Server, Some(ms)) = (self.model_latency, server) {
                            resp.latency_ms = ms;
                        }
                        resp.latency_ms as i64 * NS_PER_MS
                    } else {
                        resp.latency_ms = (self.predictor_latency / NS_PER_MS) as u64;
                        self.predictor_latency
                    };
                    self.cost_usd += resp.cost_usd;
                    self.answers_n += 1;
                    self.answers
                        .insert((ts + latency, self.answers_n), (e.seq, resp));
                }
                (Output::PredictionOutcome(o), _) if o.outcome == CallOutcome::GaveUp => {
                    // The call is cut off: its answer never comes, its end does, now.
                    let pending = self
                        .answers
                        .iter()
                        .find(|(_, (_, r))| r.request_id == o.request_id)
                        .map(|(k, _)| *k);
                    if let Some(k) = pending {
                        if let Some((req_seq, r)) = self.answers.remove(&k) {
                            self.cost_usd -= r.cost_usd;
                            let end =
                                PredictionResponse::cancelled(r.request_id, r.source, o.after_ms);
                            self.answers.insert((ts, k.1), (req_seq, end));
                        }
                    }
                }
                (Output::PredictionOutcome(_), _) => {}
                (Output::PredictorStatus(s), _) => {
                    if s.gate == PredictorGate::OverBudgetTotal {
                        self.stopped = Some(format!("stopped at the cost cap: {}", s.detail));
                    }
                }
                (Output::QuoteDecision(_) | Output::RiskAction(_) | Output::Funding(_), _) => {}
            }
        }
        self.out = out;
        self.out.clear();
        Ok(())
    }

    /// Journals a session input, then lets the core see it.
    fn deliver(
        &mut self,
        ts: i64,
        venue_ts: Option<i64>,
        cause: Option<u64>,
        input: Input,
    ) -> Result<(), BacktestError> {
        let mut e = Entry {
            seq: 0,
            ts_ns: ts,
            venue_ts_ns: venue_ts,
            session: self.session,
            cause,
            body: Body::Input(input),
        };
        self.writer.append(&mut e)?;
        self.last_delivered = ts;
        self.summarise(&e);
        self.desk.on_event(&e, &mut self.out);
        self.timer = self.desk.poll_timeout();
        self.act(e.seq, ts)
    }

    /// Feeds `e` to the summary of the market it is about (every market's, for an entry about
    /// none in particular), and says which that is.
    fn summarise(&mut self, e: &Entry) -> Owner {
        let owner = self.split.owner(e);
        match owner {
            Owner::One(i) => self.summaries[i].on_entry(e, &self.books[i]),
            Owner::All => {
                for (s, b) in self.summaries.iter_mut().zip(&self.books) {
                    s.on_entry(e, b);
                }
            }
            Owner::Nobody => {}
        }
        owner
    }

    /// The earliest of the venues' next times, and which venue.
    fn earliest(&self, of: impl Fn(&SimVenue) -> Option<i64>) -> Option<(i64, usize)> {
        self.venues
            .iter()
            .enumerate()
            .filter_map(|(i, v)| of(v).map(|t| (t, i)))
            .min()
    }

    /// Runs every scheduled thing due at or before `limit`, in time order. On a tie the venue
    /// acts first, then reports reach us, then predictions, then timers.
    fn run_until(&mut self, limit: i64) -> Result<(), BacktestError> {
        loop {
            let arrival = self.earliest(SimVenue::next_arrival);
            let report = self
                .earliest(SimVenue::next_report)
                .map(|(t, i)| (self.stamp(t), i));
            let answer = self.answers.keys().next().map(|k| (self.stamp(k.0), 0));
            let timer = self.timer.map(|t| (self.stamp(t), 0));
            let mut next: Option<(i64, u8, usize)> = None;
            for (t, rank) in [(arrival, 0u8), (report, 1), (answer, 2), (timer, 3)] {
                if let Some((t, venue)) = t {
                    if t <= limit && next.is_none_or(|n| (t, rank, venue) < n) {
                        next = Some((t, rank, venue));
                    }
                }
            }
            let Some((t, rank, venue)) = next else {
                return Ok(());
            };
            self.guard(t)?;
            match rank {
                0 => self.venues[venue].arrive(&self.books[venue]),
                1 => {
                    let Some(r) = self.venues[venue].pop_report() else {
                        continue;
                    };
                    let cause = match &r.input {
                        Input::OrderCanceled(c) => self
                            .canceled
                            .get(&c.cid)
                            .or(self.placed.get(&c.cid))
                            .copied(),
                        Input::OrderAck(a) => self.placed.get(&a.cid).copied(),
                        Input::OrderReject(x) => self.placed.get(&x.cid).copied(),
                        Input::Fill(f) => self.placed.get(&f.cid).copied(),
                        _ => None,
                    };
                    let done = match &r.input {
                        Input::OrderCanceled(c) => Some(c.cid),
                        Input::OrderReject(x) => Some(x.cid),
                        Input::Fill(f) if f.leaves_qty.is_zero() => Some(f.cid),
                        _ => None,
                    };
                    if let Some(cid) = done {
                        self.placed.remove(&cid);
                        self.canceled.remove(&cid);
                    }
                    self.deliver(t, Some(r.venue_ts), cause, r.input)?;
                }
                2 => {
                    let Some((_, (req_seq, resp))) = self.answers.pop_first() else {
                        continue;
                    };
                    self.deliver(
                        t,
                        None,
                        Some(req_seq),
                        Input::PredictionResponse(Box::new(resp)),
                    )?;
                }
                _ => self.deliver(t, None, None, Input::Timer)?,
            }
        }
    }

    fn guard(&mut self, t: i64) -> Result<(), BacktestError> {
        if self.pace.step(t) {
            return Ok(());
        }
        Err(BacktestError::Runaway {
            seq: self.reading,
            ts_ns: self.pace.window_ts,
            steps: self.pace.steps,
        })
    }

    /// At the end of the data, answers already asked for (and paid for) are still journaled and
    /// given to the core, so nothing the model said is lost; the venue and timers stop here.
    fn deliver_paid_answers(&mut self) -> Result<(), BacktestError> {
        self.closing = true;
        while let Some(((t, _), (req_seq, resp))) = self.answers.pop_first() {
            let t = self.stamp(t).max(self.last_delivered);
            self.deliver(
                t,
                None,
                Some(req_seq),
                Input::PredictionResponse(Box::new(resp)),
            )?;
        }
        Ok(())
    }

    fn on_market(&mut self, e: &Entry) -> Result<(), BacktestError> {
        let Body::Input(input) = &e.body else {
            return Ok(());
        };
        bounds::market_input(input)
            .and_then(|()| bounds::clock(e.ts_ns))
            .map_err(|why| BacktestError::BadMarket { seq: e.seq, why })?;
        self.reading = e.seq;
        self.run_until(e.ts_ns)?;
        let owner = self.split.owner(e);
        if let Owner::One(i) = owner {
            self.books[i].apply_entry(e);
            if let Some(v) = e.venue_ts_ns {
                self.venues[i].on_feed(e.ts_ns.saturating_sub(v));
            }
            self.venues[i].on_market(e.ts_ns, input, &self.books[i]);
        }
        // Reports the venue made from this entry reach us before the core reads the entry.
        self.run_until(e.ts_ns)?;
        if let Owner::One(i) = owner {
            self.summaries[i].on_entry(e, &self.books[i]);
        }
        self.desk.on_event(e, &mut self.out);
        self.timer = self.desk.poll_timeout();
        self.last_market = self.last_market.max(e.ts_ns);
        self.act(e.seq, e.ts_ns)
    }
}

pub fn run(writer: &mut Writer, args: BacktestArgs) -> Result<Outcome, BacktestError> {
    let started = Instant::now();
    let from = args.from.map(|f| (f, args.from_until.unwrap_or(f)));
    let mut args = args;
    let (source, imported, per, merged_from) = if args.cfg.markets.is_empty() {
        let wanted = match &args.market_keys {
            Some(k) if !k.iter().any(|k| k == "market.symbol") => None,
            _ => Some(args.cfg.market.symbol),
        };
        let (source, imported) = resolve_source(writer, &args.data, from, args.to, wanted)?;
        args.cfg.market = market_of(
            writer.journal(),
            source,
            &args.cfg,
            args.market_keys.as_ref(),
        )?;
        (source, imported, vec![args.cfg.clone()], Vec::new())
    } else {
        let (source, imported, per, sources) = resolve_markets(writer, &mut args, from)?;
        (source, imported, per, sources)
    };
    let journal: Journal = writer.journal().clone();
    let range = match args.what_if {
        Some(w) => Some((w.from_seq, w.to_seq)),
        None => journal.seq_range(source, args.from, args.to)?,
    };
    let Some((from_seq, to_seq)) = range else {
        return Err(BacktestError::NoData(format!(
            "session {source} has no entries between --from and --to"
        )));
    };
    let first_ts = journal.get(from_seq)?.map(|e| e.ts_ns).unwrap_or(0);
    let desk = Desk::of(&per, &args.cfg).map_err(|e| BacktestError::Market(e.to_string()))?;
    let predictor: Box<dyn Predictor> = match args.predictor {
        PredictorChoice::Rules => Box::new(Rules {
            signal_bps: args.cfg.predict.rules_signal_bps,
        }),
        PredictorChoice::Stub if args.cfg.backtest.stub_script.is_empty() => {
            Box::new(Stub::neutral())
        }
        PredictorChoice::Stub => {
            Box::new(Stub::from_file(Path::new(&args.cfg.backtest.stub_script))?)
        }
        PredictorChoice::Azure => {
            if args.cfg.predict.budget_usd_total <= rust_decimal::Decimal::ZERO {
                return Err(BacktestError::NoData(
                    "a backtest with --predictor azure spends real money: pass --max-cost-usd USD (predict.budget_usd_total) and it stops there".into(),
                ));
            }
            Box::new(AzurePredictor::new(AzureClient::from_env(
                &args.cfg.azure,
            )?)?)
        }
        PredictorChoice::Recorded(id) => {
            let id = match id {
                Some(id) => id,
                None => latest_with_model_answers(&journal)?.ok_or_else(|| {
                    BacktestError::NoData(
                        "no session in this journal has model answers to replay; pass --recorded-session ID".into(),
                    )
                })?,
            };
            let info = journal.session(id)?;
            let entries = journal.read(info.first_seq)?;
            let r = Recorded::from_entries(
                id,
                entries.take_while(|e| e.as_ref().map_or(true, |e| e.seq <= info.last_seq)),
            )?
            .with_tolerance_ms(args.cfg.backtest.recorded_tolerance_ms);
            if r.is_empty() {
                return Err(BacktestError::NoData(format!(
                    "session {id} has no recorded prediction answers"
                )));
            }
            Box::new(r)
        }
    };
    let (mode, label) = match args.what_if {
        Some(w) => (
            Mode::Replay,
            format!(
                "what-if of session {}, {} predictor, on session {source}",
                w.parent,
                predictor.kind().as_str()
            ),
        ),
        None => (
            Mode::Backtest,
            format!(
                "backtest, {} predictor, on session {source}",
                predictor.kind().as_str()
            ),
        ),
    };
    let start_seq = writer.next_seq();
    let session = writer.begin(
        first_ts,
        SessionStart {
            mode,
            version: flashmm_core::VERSION.to_string(),
            config: args.cfg.to_toml(),
            label,
            parent: args.what_if.map(|w| w.parent),
            source: Some(Source::Journal {
                session: source,
                from_seq,
                to_seq,
            }),
        },
    )?;
    let mut sim = Sim {
        writer,
        session,
        venues: per
            .iter()
            .map(|c| SimVenue::new(&c.venue, &c.market))
            .collect(),
        books: per.iter().map(|_| Book::new()).collect(),
        summaries: per
            .iter()
            .map(|c| Summary::new(c.predict.horizon_s, Contract::of(&c.market)))
            .collect(),
        split: Split::new(desk.symbols().to_vec()),
        desk,
        predictor,
        predictor_latency: args.cfg.backtest.predictor_latency_ms as i64 * NS_PER_MS,
        model_latency: args.cfg.backtest.model_latency,
        answers: BTreeMap::new(),
        answers_n: 0,
        placed: BTreeMap::new(),
        canceled: BTreeMap::new(),
        last_market: i64::MIN,
        out: Vec::with_capacity(32),
        seqs: Vec::with_capacity(32),
        timer: None,
        cost_usd: rust_decimal::Decimal::ZERO,
        stopped: None,
        closing: false,
        last_delivered: i64::MIN,
        reading: 0,
        pace: Pace::default(),
    };
    let mut latency =
        hdrhistogram::Histogram::<u64>::new(3).map_err(|e| BacktestError::NoData(e.to_string()))?;
    let mut progress = crate::mode::progress::Progress::new("backtest", to_seq - from_seq + 1);
    let mut n = 0u64;
    let mut last_ts = first_ts;
    // The last market entry given to the core; the session's end names it (its own start if
    // none), so a reader stops the market where the run did, not at the end of the data.
    let mut read_to = start_seq;
    let mut result: Result<(), BacktestError> = Ok(());
    for e in journal.read_ahead(from_seq)? {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                result = Err(err.into());
                break;
            }
        };
        if e.seq > to_seq {
            break;
        }
        if e.session != source || !e.body.is_market() {
            continue;
        }
        n += 1;
        last_ts = e.ts_ns;
        read_to = e.seq;
        let t = n.is_multiple_of(LATENCY_SAMPLE).then(Instant::now);
        if let Err(err) = sim.on_market(&e) {
            result = Err(err);
            break;
        }
        if sim.stopped.is_some() {
            break;
        }
        if let Some(t) = t {
            let _ = latency.record(t.elapsed().as_nanos() as u64);
        }
        if args.progress && n.is_multiple_of(4096) {
            progress.update(e.seq - from_seq);
        }
    }
    progress.finish();
    if result.is_ok() {
        result = sim.deliver_paid_answers();
    }
    let end_ts = sim.stamp(last_ts.max(sim.last_delivered));
    if let Err(err) = result {
        // Leave a closed, failed session behind rather than an open one.
        let note = format!("{n} market entries before the failure");
        let _ = sim.writer.end_after(
            session,
            end_ts,
            SessionStatus::Failed(err.to_string()),
            note,
            Some(read_to),
        );
        let _ = sim.writer.flush(false);
        return Err(err);
    }
    for s in &mut sim.summaries {
        s.finish();
    }
    let mut note = format!("{} market entries from session {source}", n);
    if let Some(why) = &sim.stopped {
        note = format!("{note}; {why}");
    }
    let engine = sim.desk.stats();
    let (cost_usd, stopped) = (sim.cost_usd, sim.stopped.clone());
    let markets: Vec<(MarketConfig, Summary)> = per
        .iter()
        .map(|c| c.market.clone())
        .zip(sim.summaries)
        .collect();
    let summary = markets[0].1.clone();
    writer.end_after(
        session,
        end_ts,
        SessionStatus::Completed,
        note,
        Some(read_to),
    )?;
    writer.flush(false)?;
    Ok(Outcome {
        session,
        source_session: source,
        from_seq,
        to_seq,
        imported,
        summary,
        market: markets[0].0.clone(),
        markets,
        merged_from,
        wall_s: started.elapsed().as_secs_f64(),
        latency,
        engine,
        cost_usd,
        stopped,
    })
}

#[cfg(test)]
mod pace_tests {
    use super::{Pace, MAX_STEPS_PER_MS};

    #[test]
    fn inputs_one_ns_apart_trip_the_guard_and_spread_ones_do_not() {
        let mut p = Pace::default();
        let t0 = 1_723_161_253_000_000_000i64;
        let tripped = (0..=MAX_STEPS_PER_MS as i64).find(|k| !p.step(t0 + k));
        assert_eq!(
            tripped,
            Some(MAX_STEPS_PER_MS as i64),
            "the next input past the cap"
        );
        let mut p = Pace::default();
        // A timer a millisecond apart for a simulated day never trips it.
        assert!((0..86_400_000i64)
            .step_by(1)
            .take(500_000)
            .all(|k| p.step(t0 + k * 1_000_000)));
        // The same time forever does.
        let mut p = Pace::default();
        assert!(!(0..=MAX_STEPS_PER_MS).all(|_| p.step(i64::MAX)));
    }
}
