//! Post-mortem of fills: for each fill of a session, its markouts at chosen horizons, the cause
//! chain from the journal (order, quote decision, the prediction it used and that prediction's
//! prompt), the book just before and after it, the trades around it, and what-if hints.
//!
//! It reads the journal only: a first pass over the session stream scores every fill, a second
//! gathers the market around the fills picked, and the chains are looked up by seq.

pub mod chain;
pub mod context;
pub mod hints;
mod html;
mod json;
mod text;

use super::horizon::Horizon;
use super::markout::{FillMarks, Mark, Markouts};
use super::select::{self, Picked};
use super::ReportError;
use chain::Chain;
use context::Context;
use flashmm_core::book::Book;
use flashmm_core::event::{Body, Entry, Fill, Input};
use flashmm_core::position::Position;
use flashmm_journal::stream::session_stream;
use flashmm_journal::Journal;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

/// Which fills to study.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Every fill, in journal order.
    All,
    /// The N fills with the lowest markout at the ranking horizon.
    Worst(usize),
    /// The fill with this seq.
    Fill(u64),
}

#[derive(Clone, Debug)]
pub struct Options {
    pub session: Option<u64>,
    pub select: Select,
    pub horizons: Vec<Horizon>,
    /// The horizon `Worst` ranks by; default the longest of `horizons`. Added to `horizons` when
    /// missing.
    pub rank_by: Option<Horizon>,
}

/// One fill, studied.
pub struct FillStudy {
    pub seq: u64,
    pub ts_ns: i64,
    /// The market the fill was in.
    pub symbol: flashmm_core::event::Symbol,
    pub fill: Fill,
    /// 1 for the worst fill under `Select::Worst`.
    pub rank: Option<usize>,
    /// Our position after this fill.
    pub position_after: Decimal,
    /// Per horizon, in `Postmortem::horizons` order.
    pub marks: Vec<Mark>,
    pub chain: Chain,
    pub context: Context,
    pub hints: Vec<String>,
}

pub struct Postmortem {
    pub picked: Picked,
    pub horizons: Vec<Horizon>,
    pub rank_by: Horizon,
    pub select: Select,
    /// Fills in the session, and how many have no data at the ranking horizon.
    pub fills_in_session: usize,
    pub unscored_at_rank: usize,
    pub fills: Vec<FillStudy>,
    /// Every funding charge of the session, in journal order.
    pub funding: Vec<Charge>,
}

struct Scored {
    marks: FillMarks,
    fill: Fill,
    position_after: Decimal,
}

/// The fills `score` kept, and what it counted of the others.
struct Kept {
    /// With their rank under `Select::Worst`, in the order they are reported.
    chosen: Vec<(Scored, Option<usize>)>,
    fills_in_session: usize,
    unscored_at_rank: usize,
    funding: Vec<Charge>,
}

/// A funding charge of the session: the PnL term no fill explains.
pub struct Charge {
    pub seq: u64,
    pub ts_ns: i64,
    pub symbol: flashmm_core::event::Symbol,
    pub funding: flashmm_core::event::Funding,
}

impl Postmortem {
    /// Why fills have no data: for a session that stopped early, its prices end with it.
    fn no_data_why(&self) -> &'static str {
        if self.unscored_at_rank == 0 {
            ""
        } else if self.picked.unfinished() {
            " (the session stopped there: a markout that needs a price after its last entry is not available, never taken from later data)"
        } else if self.picked.reach.as_ref().is_some_and(|r| !r.complete()) {
            " (the run stopped before the end of its data: a markout that needs a price after that is not available)"
        } else {
            ""
        }
    }
}

/// Reads the fills of the session with their markouts, keeping only those `select` picks: a
/// fill is judged as soon as its last horizon is scored, so under `Worst(n)` and `Fill` memory
/// holds the fills still within their horizons and the n worst so far, not every fill.
fn score(
    journal: &Journal,
    session: u64,
    horizons: &[Horizon],
    select: Select,
    rank_idx: usize,
    market: (&[flashmm_core::event::Symbol], usize),
) -> Result<Kept, ReportError> {
    let mut book = Book::new();
    let mut markouts = Markouts::new(horizons);
    let mut position = Position::default();
    // The fills (and the position after each) that `markouts` has not handed back yet.
    let mut fills: VecDeque<(Fill, Decimal)> = VecDeque::new();
    let mut all: Vec<Scored> = Vec::new();
    // Scored fills first, lowest markout first; fills with no data at the ranking horizon
    // cannot be judged and come last; ties go to the earlier fill.
    let mut worst: BTreeMap<(bool, Decimal, u64), Scored> = BTreeMap::new();
    let mut funding = Vec::new();
    let (mut n, mut unscored) = (0usize, 0usize);
    let mut judge = |marks: FillMarks, fills: &mut VecDeque<(Fill, Decimal)>| {
        let Some((fill, position_after)) = fills.pop_front() else {
            return;
        };
        n += 1;
        let m = marks.marks[rank_idx].bps();
        if m.is_none() {
            unscored += 1;
        }
        let s = Scored {
            marks,
            fill,
            position_after,
        };
        match select {
            Select::All => all.push(s),
            Select::Fill(seq) => {
                if s.marks.seq == seq {
                    all.push(s);
                }
            }
            Select::Worst(keep) => {
                worst.insert((m.is_none(), m.unwrap_or_default(), s.marks.seq), s);
                if worst.len() > keep {
                    worst.pop_last();
                }
            }
        }
    };
    for e in crate::split::of_market(
        session_stream(journal, session)?,
        market.0.to_vec(),
        market.1,
    ) {
        let e: Entry = e?;
        book.apply_entry(&e);
        markouts.on_entry(&e, &book);
        match &e.body {
            Body::Input(Input::Fill(f)) => {
                position.apply_fill(f.side, f.price, f.qty, f.fee);
                fills.push_back((f.clone(), position.qty()));
            }
            Body::Input(Input::PositionSync(p)) => position.adopt(p.qty, p.avg_price),
            Body::Output(flashmm_core::event::Output::Funding(f)) => funding.push(Charge {
                seq: e.seq,
                ts_ns: e.ts_ns,
                symbol: f.symbol.unwrap_or(market.0[market.1]),
                funding: f.clone(),
            }),
            _ => {}
        }
        if e.body.is_market() {
            markouts.take_settled(|m| judge(m, &mut fills));
        }
    }
    for m in markouts.finish() {
        judge(m, &mut fills);
    }
    let chosen = match select {
        Select::All | Select::Fill(_) => all.into_iter().map(|s| (s, None)).collect(),
        Select::Worst(_) => worst
            .into_values()
            .enumerate()
            .map(|(r, s)| (s, Some(r + 1)))
            .collect(),
    };
    Ok(Kept {
        chosen,
        fills_in_session: n,
        unscored_at_rank: unscored,
        funding,
    })
}

/// The fills of every market in one order: the worst first under `Worst(n)` (keeping n), else
/// in journal order.
fn rank_across_markets(fills: &mut Vec<FillStudy>, select: Select, rank_idx: usize) {
    match select {
        Select::Worst(keep) => {
            fills.sort_by_key(|f| {
                let m = f.marks.get(rank_idx).and_then(|m| m.bps());
                (m.is_none(), m.unwrap_or_default(), f.seq)
            });
            fills.truncate(keep);
            for (r, f) in fills.iter_mut().enumerate() {
                f.rank = Some(r + 1);
            }
        }
        Select::All | Select::Fill(_) => fills.sort_by_key(|f| f.seq),
    }
}

pub fn run(journal: &Journal, opts: &Options) -> Result<Postmortem, ReportError> {
    let mut horizons = opts.horizons.clone();
    if horizons.is_empty() {
        horizons = super::horizon::defaults();
    }
    let rank_by = opts
        .rank_by
        .or_else(|| horizons.last().copied())
        .unwrap_or_else(|| Horizon::from_secs(30));
    if !horizons.contains(&rank_by) {
        horizons.push(rank_by);
        horizons.sort();
    }
    let rank_idx = horizons.iter().position(|h| *h == rank_by).unwrap_or(0);
    // `--fill SEQ` names its own session.
    let session = match (opts.select, opts.session) {
        (Select::Fill(seq), s) => {
            let e = journal.get(seq)?.ok_or(ReportError::NoEntry(seq))?;
            if !matches!(e.body, Body::Input(Input::Fill(_))) {
                return Err(ReportError::NotAFill {
                    seq,
                    kind: e.body.kind(),
                });
            }
            if let Some(s) = s.filter(|s| *s != e.session) {
                return Err(ReportError::Usage(format!(
                    "fill {seq} belongs to session {}, not to --session {s}",
                    e.session
                )));
            }
            Some(e.session)
        }
        (_, s) => s,
    };
    let picked = select::pick(journal, session)?;
    let id = picked.info.id;
    let longest = horizons.last().map_or(30_000_000_000, |h| h.ns);
    let pre = (longest / 3).max(5_000_000_000);
    let post = longest + longest / 10 + 1_000_000_000;
    // A session of several markets is read once per market, each with its own book; the
    // fills of all are then ranked together.
    let symbols = picked.cfg.symbols();
    let per = picked
        .cfg
        .market_configs()
        .unwrap_or_else(|_| vec![picked.cfg.clone()]);
    let mut cache = chain::Cache::default();
    let mut fills = Vec::new();
    let (mut fills_in_session, mut unscored_at_rank) = (0, 0);
    let mut funding = Vec::new();
    for (i, cfg) in per.iter().enumerate() {
        let kept = score(journal, id, &horizons, opts.select, rank_idx, (&symbols, i))?;
        fills_in_session += kept.fills_in_session;
        unscored_at_rank += kept.unscored_at_rank;
        funding.extend(kept.funding);
        let wanted: BTreeMap<u64, usize> = kept
            .chosen
            .iter()
            .enumerate()
            .map(|(k, (s, _))| (s.marks.seq, k))
            .collect();
        let contexts = context::gather(journal, id, &wanted, pre, post, (&symbols, i))?;
        for (k, (s, rank)) in kept.chosen.into_iter().enumerate() {
            let entry = journal
                .get(s.marks.seq)?
                .ok_or(ReportError::NoEntry(s.marks.seq))?;
            let chain = chain::walk(journal, &mut cache, &entry)?;
            let context = contexts.get(k).cloned().unwrap_or_default();
            let hints = hints::hints(&hints::Inputs {
                fill: &s.fill,
                fill_ts: s.marks.ts_ns,
                chain: &chain,
                context: &context,
                marks: &s.marks.marks,
                horizons: &horizons,
                cfg,
            });
            fills.push(FillStudy {
                seq: s.marks.seq,
                ts_ns: s.marks.ts_ns,
                symbol: cfg.market.symbol,
                fill: s.fill,
                rank,
                position_after: s.position_after,
                marks: s.marks.marks,
                chain,
                context,
                hints,
            });
        }
    }
    if per.len() > 1 {
        rank_across_markets(&mut fills, opts.select, rank_idx);
    }
    funding.sort_by_key(|c| c.seq);
    Ok(Postmortem {
        picked,
        horizons,
        rank_by,
        select: opts.select,
        fills_in_session,
        unscored_at_rank,
        fills,
        funding,
    })
}
