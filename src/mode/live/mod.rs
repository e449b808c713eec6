//! `flashmm live`: the core against the world. One task owns the journal and the core; feeds,
//! venue calls and model calls run beside it and come back as messages. Every message becomes
//! a journaled input before the core reads it, and every order's intent (its signed request,
//! nonce included) is flushed to disk before the order leaves: one fsync per batch.

mod account;
mod paper;
mod step;
mod venue;

pub mod control;
pub mod metrics;

use flashmm_core::config::Config;
use flashmm_core::event::{
    Input, Mode, Operator, OperatorCommand, SessionStart, SessionStatus, Symbol,
};
use flashmm_core::signal::Predictor;
use flashmm_core::{Emitted, Engine};
use flashmm_journal::{JournalError, Writer};
use flashmm_venue::azure::AzureClient;
use flashmm_venue::citrex::client::{CitrexClient, ProductSpec, VenueError};
use flashmm_venue::citrex::eip712::Signer;
use flashmm_venue::citrex::tracker::{Tracker, TrackerConfig};
use flashmm_venue::feed::FeedEvent;
use metrics::Metrics;
use paper::SimSide;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use step::Clock;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use venue::{journaled_nonce, CitrexSide, Reply};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Venue(#[from] VenueError),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    LeftResting(String),
}

pub enum VenueMode {
    /// Real orders on Citrex.
    Citrex(Arc<Signer>),
    /// The live feed with the simulated venue; no key.
    Paper,
    /// Orders signed and journaled as they would be sent, never sent; fills from the simulator.
    DryRun(Arc<Signer>),
}

pub enum LivePredictor {
    Local(Box<dyn Predictor + Send>),
    Azure(Arc<AzureClient>),
}

pub struct LiveArgs {
    pub cfg: Config,
    pub venue: VenueMode,
    pub predictor: LivePredictor,
    /// Stop after this long (tests, soak runs); `None` runs until a signal.
    pub run_for: Option<Duration>,
    /// Set to true to stop (tests); signals do the same.
    pub stop: Option<watch::Receiver<bool>>,
}

pub struct LiveOutcome {
    pub session: u64,
    pub status: SessionStatus,
    pub metrics: Metrics,
    /// The core's position when the session ended.
    pub position: Decimal,
}

struct Live {
    writer: Writer,
    engine: Engine,
    session: u64,
    symbol: Symbol,
    clock: Clock,
    metrics: Metrics,
    citrex: Option<CitrexSide>,
    sim: Option<SimSide>,
    predictor: LivePredictor,
    replies: mpsc::Sender<Reply>,
    out: Vec<Emitted>,
    seqs: Vec<u64>,
    place_seq: BTreeMap<u64, u64>,
    request_seq: BTreeMap<u64, u64>,
    /// Model calls still running, by request id: a send ends one (the core gave up on it).
    model_calls: BTreeMap<u64, tokio::sync::oneshot::Sender<()>>,
    last_flush: tokio::time::Instant,
    dirty_journal: bool,
    /// Venue requests in flight (with their retries): aborted first at stop, so none lands
    /// after the final cancel-all.
    venue_calls: tokio::task::JoinSet<()>,
    /// The tracker is being pumped: a step inside it leaves its commands to that pump.
    pumping: bool,
    /// When the core last decided, for the decision-to-wire latency.
    decided: Option<Instant>,
}

/// What the loop waits for; each becomes a journaled input (or the end).
enum Event {
    Feed(FeedEvent),
    Reply(Reply),
    Operator(OperatorCommand, String),
    Wake,
    Stop(&'static str),
}

/// Everything the loop waits on besides its own timers.
struct Inbox {
    deadline: Option<tokio::time::Instant>,
    stop: Option<watch::Receiver<bool>>,
    operator: mpsc::Receiver<(OperatorCommand, String)>,
    replies: mpsc::Receiver<Reply>,
    feeds: mpsc::Receiver<FeedEvent>,
}

impl Inbox {
    /// The next event, or `Wake` after `sleep`. When several are ready the first in this order
    /// wins: a signal, the run time, a stop, an operator command, a reply, a feed event. This is
    /// `tokio::select! { biased; .. }` written out so that rustfmt formats it: the same budget
    /// check first, and a closed channel is not polled again within one wait.
    async fn next(&mut self, sleep: Duration) -> Event {
        let mut signal = pin!(shutdown_signal());
        let mut deadline = pin!(run_time_elapsed(self.deadline));
        let mut stopped = pin!(stop_requested(self.stop.as_mut()));
        let mut wake = pin!(tokio::time::sleep(sleep));
        let mut operator = Some(&mut self.operator);
        let mut replies = Some(&mut self.replies);
        let mut feeds = Some(&mut self.feeds);
        poll_fn(|cx| {
            if !tokio::task::coop::has_budget_remaining() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if signal.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stop("signal"));
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stop("run time elapsed"));
            }
            if stopped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stop("stopped"));
            }
            if let Some(ev) = poll_channel(&mut operator, cx, |(c, n)| Event::Operator(c, n)) {
                return Poll::Ready(ev);
            }
            if let Some(ev) = poll_channel(&mut replies, cx, Event::Reply) {
                return Poll::Ready(ev);
            }
            if let Some(ev) = poll_channel(&mut feeds, cx, Event::Feed) {
                return Poll::Ready(ev);
            }
            if wake.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Wake);
            }
            Poll::Pending
        })
        .await
    }
}

/// One channel of `Inbox::next`: a message becomes an event; a closed channel is set aside for
/// the rest of the wait.
fn poll_channel<T>(
    rx: &mut Option<&mut mpsc::Receiver<T>>,
    cx: &mut Context<'_>,
    event: impl FnOnce(T) -> Event,
) -> Option<Event> {
    match rx.as_mut()?.poll_recv(cx) {
        Poll::Ready(Some(m)) => Some(event(m)),
        Poll::Ready(None) => {
            *rx = None;
            None
        }
        Poll::Pending => None,
    }
}

async fn run_time_elapsed(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn stop_requested(stop: Option<&mut watch::Receiver<bool>>) {
    match stop {
        Some(s) => {
            let _ = s.wait_for(|v| *v).await;
        }
        None => std::future::pending().await,
    }
}

impl Live {
    fn next_wake(&self) -> Option<i64> {
        let mut d = self.engine.poll_timeout();
        let sim = self
            .sim
            .as_ref()
            .map(|sim| [sim.venue.next_arrival(), sim.venue.next_report()]);
        let tracker = self.citrex.as_ref().map(|c| c.tracker.poll_timeout());
        for t in sim.into_iter().flatten().chain(tracker).flatten() {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        d
    }

    /// How long the loop may wait: until the core, the simulator or the tracker is due, or the
    /// journal's unflushed entries are.
    fn sleep_for(&self, flush_every: Duration) -> Duration {
        let wake = self.next_wake();
        let now = self.clock.wall();
        let wake_in = wake
            .map(|t| Duration::from_nanos(t.saturating_sub(now).max(0) as u64))
            .unwrap_or(Duration::from_secs(3600));
        let flush_in = if self.dirty_journal {
            flush_every.saturating_sub(self.last_flush.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        wake_in.min(flush_in)
    }

    fn on_operator(&mut self, command: OperatorCommand, note: String) -> Result<(), LiveError> {
        self.input(
            Input::Operator(Operator { command, note }),
            None,
            None,
            None,
        )
    }

    pub(super) fn on_feed(&mut self, f: FeedEvent) -> Result<(), LiveError> {
        match f {
            FeedEvent::Market {
                input,
                venue_ts,
                received,
            } => self.input(input, venue_ts, None, Some(received)),
            FeedEvent::Chain { head, received } => {
                let ts = head.block_ts_ns;
                self.input(Input::ChainHead(head), Some(ts), None, Some(received))
            }
            FeedEvent::Account { update, received } => self.on_account(update, received),
            FeedEvent::Status(s) => self.input(Input::FeedStatus(s), None, None, None),
            FeedEvent::AccountResynced => self.on_account_resynced(),
            FeedEvent::AccountDoubt(s) => self.on_account_doubt(s),
        }
    }

    /// Time passed: simulated reports that are due, the core's timer, the tracker's (account
    /// reads, look-ups), the periodic flush.
    fn on_wake(&mut self, flush_every: Duration) -> Result<(), LiveError> {
        self.deliver_sim_reports()?;
        if self
            .engine
            .poll_timeout()
            .is_some_and(|t| t <= self.clock.wall())
        {
            self.input(Input::Timer, None, None, None)?;
        }
        self.pump(None)?;
        if self.dirty_journal && self.last_flush.elapsed() >= flush_every {
            self.flush(false)?;
        }
        Ok(())
    }
}

/// The event loop: until something stops it, each event becomes a step of the core.
async fn drive(
    live: &mut Live,
    inbox: &mut Inbox,
    flush_every: Duration,
) -> Result<&'static str, LiveError> {
    loop {
        let sleep = live.sleep_for(flush_every);
        match inbox.next(sleep).await {
            Event::Stop(why) => return Ok(why),
            Event::Operator(command, note) => live.on_operator(command, note)?,
            Event::Reply(r) => live.on_reply(r)?,
            Event::Feed(f) => live.on_feed(f)?,
            Event::Wake => live.on_wake(flush_every)?,
        }
    }
}

/// The venue's grid is the one to quote on.
fn fit_to_product(cfg: &mut Config, product: &ProductSpec) -> Result<(), LiveError> {
    cfg.market.symbol = Symbol::new(&product.symbol.to_ascii_uppercase())
        .map_err(|e| LiveError::Setup(e.to_string()))?;
    cfg.market.tick_size = product.tick.normalize();
    cfg.market.lot_size = product.min_qty.normalize();
    cfg.market.min_qty = product.min_qty.normalize();
    cfg.venue.maker_fee_bps = product.maker_fee * Decimal::from(10_000);
    cfg.venue.taker_fee_bps = product.taker_fee * Decimal::from(10_000);
    cfg.validate()
        .map_err(|e| LiveError::Setup(format!("with the product's tick and size: {e}")))
}

fn session_label(venue: &VenueMode, product: &ProductSpec) -> String {
    match venue {
        VenueMode::Citrex(s) => format!("live on Citrex {} as {}", product.symbol, s.address()),
        VenueMode::DryRun(s) => format!(
            "dry run on Citrex {} as {} (signed, never sent)",
            product.symbol,
            s.address()
        ),
        VenueMode::Paper => format!("paper on Citrex {} (simulated venue)", product.symbol),
    }
}

/// The feeds, and the metrics and control endpoints if configured; all end on `stop`.
fn spawn_tasks(
    cfg: &Config,
    account_stream: bool,
    client: &Arc<CitrexClient>,
    metrics: &Metrics,
    feed_tx: mpsc::Sender<FeedEvent>,
    op_tx: &mpsc::Sender<(OperatorCommand, String)>,
    stop_rx: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let symbol = cfg.market.symbol;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(flashmm_venue::feed::citrex::market(
        cfg.citrex.clone(),
        symbol,
        client.clone(),
        feed_tx.clone(),
        stop_rx.clone(),
    )));
    if account_stream {
        tasks.push(tokio::spawn(flashmm_venue::feed::citrex::account(
            cfg.citrex.clone(),
            client.clone(),
            symbol,
            feed_tx.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(flashmm_venue::feed::sei::heads(
        cfg.citrex.sei(),
        cfg.citrex.reconnect_base_ms,
        cfg.citrex.reconnect_max_ms,
        feed_tx.clone(),
        stop_rx.clone(),
    )));
    if !cfg.live.metrics_addr.is_empty() {
        let (addr, m, s) = (
            cfg.live.metrics_addr.clone(),
            metrics.clone(),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr.clone(), m, s).await {
                tracing::warn!("metrics endpoint {addr} (live.metrics_addr) failed: {e}");
            }
        }));
    }
    if !cfg.live.control_addr.is_empty() {
        let (addr, s) = (cfg.live.control_addr.clone(), stop_rx.clone());
        let tx = op_tx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = control::serve(addr.clone(), tx, s).await {
                tracing::warn!("control endpoint {addr} (live.control_addr) failed: {e}");
            }
        }));
    }
    drop(feed_tx);
    tasks
}

/// Where a session meets the venue: the client (and so its transport) and, in a simulation,
/// the feeds and the clock.
pub struct World {
    pub client: Arc<CitrexClient>,
    /// Feed events from outside (a simulation); `None` starts the real feeds.
    pub feeds: Option<mpsc::Receiver<FeedEvent>>,
    /// Run on tokio's clock from this instant (a simulation on a paused runtime); `None` runs
    /// on the wall clock.
    pub simulated_start_ns: Option<i64>,
}

pub async fn run(writer: Writer, args: LiveArgs) -> Result<LiveOutcome, LiveError> {
    let signer = match &args.venue {
        VenueMode::Citrex(s) | VenueMode::DryRun(s) => Some(s.clone()),
        VenueMode::Paper => None,
    };
    let client = Arc::new(CitrexClient::new(&args.cfg.citrex, signer)?);
    let world = World {
        client,
        feeds: None,
        simulated_start_ns: None,
    };
    run_in(writer, args, world).await
}

pub async fn run_in(
    mut writer: Writer,
    args: LiveArgs,
    world: World,
) -> Result<LiveOutcome, LiveError> {
    let mut cfg = args.cfg;
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = world.client;
    let product = client.product(&cfg.citrex.product).await?;
    fit_to_product(&mut cfg, &product)?;
    if !matches!(args.venue, VenueMode::Citrex(_)) {
        // Simulated fills need no venue to confirm them (recorded, so replay agrees).
        cfg.risk.position_unconfirmed_ms = 0;
    }
    let nonce_floor = journaled_nonce(&writer)?;
    let mode = match args.venue {
        VenueMode::Paper => Mode::Paper,
        VenueMode::DryRun(_) => Mode::DryRun,
        VenueMode::Citrex(_) => Mode::Live,
    };
    let label = session_label(&args.venue, &product);
    let mut clock = match world.simulated_start_ns {
        Some(t) => Clock::simulated(t),
        None => Clock::wall_clock(),
    };
    let session = writer.begin(
        clock.now(),
        SessionStart {
            mode,
            version: flashmm_core::VERSION.to_string(),
            config: cfg.to_toml(),
            label,
            parent: None,
            source: None,
        },
    )?;
    let (reply_tx, reply_rx) = mpsc::channel::<Reply>(1024);
    let dry_run = matches!(args.venue, VenueMode::DryRun(_));
    let citrex = match &args.venue {
        VenueMode::Paper => None,
        VenueMode::Citrex(_) | VenueMode::DryRun(_) => {
            let tracker = Tracker::new(
                TrackerConfig {
                    product: product.clone(),
                    nonce_floor,
                    expiration_s: cfg.citrex.order_expiration_s,
                    reconcile_every_ms: cfg.citrex.reconcile_interval_ms,
                    dry_run,
                    settle_ms: cfg.citrex.settle_ms,
                },
                clock.wall(),
            );
            Some(CitrexSide::new(client.clone(), tracker, dry_run))
        }
    };
    let sim =
        matches!(args.venue, VenueMode::Paper | VenueMode::DryRun(_)).then(|| SimSide::new(&cfg));
    let mut live = Live {
        engine: Engine::new(&cfg),
        symbol: cfg.market.symbol,
        writer,
        session,
        clock,
        metrics: metrics.clone(),
        citrex,
        sim,
        predictor: args.predictor,
        replies: reply_tx,
        out: Vec::new(),
        seqs: Vec::new(),
        place_seq: BTreeMap::new(),
        request_seq: BTreeMap::new(),
        model_calls: BTreeMap::new(),
        last_flush: tokio::time::Instant::now(),
        dirty_journal: true,
        venue_calls: tokio::task::JoinSet::new(),
        pumping: false,
        decided: None,
    };
    if matches!(args.venue, VenueMode::Citrex(_)) {
        live.reconcile().await?;
    }
    let (op_tx, op_rx) = mpsc::channel::<(OperatorCommand, String)>(16);
    let (feed_rx, tasks) = match world.feeds {
        Some(rx) => (rx, Vec::new()),
        None => {
            let (feed_tx, feed_rx) = mpsc::channel::<FeedEvent>(4096);
            let tasks = spawn_tasks(
                &cfg,
                matches!(args.venue, VenueMode::Citrex(_)),
                &client,
                &metrics,
                feed_tx,
                &op_tx,
                &stop_rx,
            );
            (feed_rx, tasks)
        }
    };
    let mut inbox = Inbox {
        deadline: args.run_for.map(|d| tokio::time::Instant::now() + d),
        stop: args.stop,
        operator: op_rx,
        replies: reply_rx,
        feeds: feed_rx,
    };
    let flush_every = Duration::from_millis(cfg.live.flush_interval_ms);
    let result = drive(&mut live, &mut inbox, flush_every).await;
    let (status, why) = match &result {
        Ok(why) => (SessionStatus::Completed, why.to_string()),
        Err(e) => (SessionStatus::Failed(e.to_string()), e.to_string()),
    };
    // Leave nothing behind: stop what is in flight, cancel everything, check the venue.
    let cancel = live.stop_at_venue(&why, &mut inbox).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    let ts = live.ts();
    let note = match &cancel {
        Ok(done) => format!("stopped: {why}; {done}"),
        Err(e) => format!("stopped: {why}; {e}"),
    };
    live.writer.end(live.session, ts, status.clone(), note)?;
    live.flush(true)?;
    result?;
    cancel?;
    Ok(LiveOutcome {
        session,
        status,
        metrics,
        position: live.engine.position().qty(),
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
