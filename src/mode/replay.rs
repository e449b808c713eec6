//! `flashmm replay`: feed a session's recorded inputs back to a fresh core and check that every
//! output it emits is the recorded one, byte for byte, with the same cause.
//!
//! State at `--from` is rebuilt by fast-forwarding silently from the session's start: the
//! session is found through the session table and its entries are read from its first seq, so no
//! part of the journal outside the session is read, and the core runs at millions of inputs a
//! second. (Periodic core snapshots would bound the fast-forward on week-long sessions; sessions
//! here are a day at most, so the simpler choice was taken. See ARCHITECTURE.md.)

use super::backtest::{self, BacktestArgs, BacktestError, Data, Outcome, PredictorChoice, WhatIf};
use super::cover;
use flashmm_core::config::{Config, ConfigError};
use flashmm_core::event::{Body, Entry, Mode, Output, Source};
use flashmm_core::{Cause, Desk, Emitted};
use flashmm_journal::stream::{market_reach, session_stream};

/// The shipped recorded session (a backtest with the model played by the local fake), next to
/// the Binance recording it trades on.
pub const RECORDED_FIXTURE: &str = "recorded-20240808.jsonl.gz";
use flashmm_journal::{codec, Journal, JournalError, SessionInfo, Writer};
use flashmm_report::{SessionReport, Summary};
use std::collections::VecDeque;
use std::time::Instant;

const CONTEXT: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Backtest(#[from] BacktestError),
    #[error("the recorded config of session {session} does not load: {source}")]
    Config { session: u64, source: ConfigError },
    #[error("{0}")]
    Choose(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// The recorded output that differs, or the input after which the core said something
    /// the recording does not have.
    pub seq: u64,
    pub ts_ns: i64,
    pub expected: Option<Entry>,
    pub actual: Option<Output>,
    pub why: String,
    /// The last inputs the core read before it, oldest first.
    pub inputs_before: Vec<Entry>,
}

#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub session: u64,
    pub recorded_version: String,
    /// Entries read before `--from` to rebuild the state, and compared after it.
    pub fast_forwarded: u64,
    pub entries: u64,
    pub inputs: u64,
    pub outputs_compared: u64,
    pub outputs_matched: u64,
    pub divergences: Vec<Divergence>,
    pub wall_s: f64,
    /// The session never ended (the process died) and its last input's outputs were not yet on
    /// disk.
    pub cut_short: bool,
}

/// The session to replay: the one named, else the newest session with decisions that covers
/// `from` (or the newest at all). `from` is the first and last instant `--from` names (a bare
/// date is its whole day); a session that does not cover it is an error naming what would.
pub fn pick_session(
    journal: &Journal,
    session: Option<u64>,
    from: Option<(i64, i64)>,
) -> Result<SessionInfo, ReplayError> {
    let has_decisions = |s: &SessionInfo| !matches!(s.mode, Mode::Import);
    if let Some(id) = session {
        let s = journal.session(id)?;
        if !has_decisions(&s) {
            return Err(ReplayError::Choose(format!(
                "session {id} is an import: it holds market data but no decisions to replay; `flashmm journal ls` shows the others"
            )));
        }
        if let Some((f, u)) = from {
            if !cover::covers(&s, f, u) {
                return Err(ReplayError::Choose(cover::not_covered(
                    f,
                    u,
                    &format!("session {id} does not cover it"),
                    &[&s],
                )));
            }
        }
        return Ok(s);
    }
    let sessions = journal.sessions()?;
    let candidates: Vec<&SessionInfo> = sessions.iter().filter(|s| has_decisions(s)).collect();
    let pick = candidates
        .iter()
        .rev()
        .find(|s| from.is_none_or(|(f, u)| cover::covers(s, f, u)));
    match (pick, from) {
        (Some(s), _) => Ok((*s).clone()),
        (None, Some((f, u))) if !candidates.is_empty() => Err(ReplayError::Choose(
            cover::not_covered(f, u, "no session with decisions covers it", &candidates),
        )),
        (None, _) => Err(ReplayError::Choose(
            "no session with decisions in this journal; run a backtest first, or use an empty --journal to get the shipped recording".into(),
        )),
    }
}

fn bytes(o: &Output) -> Vec<u8> {
    let e = Entry {
        seq: 0,
        ts_ns: 0,
        venue_ts_ns: None,
        session: 0,
        cause: None,
        body: Body::Output(o.clone()),
    };
    let mut b = Vec::with_capacity(256);
    let _ = codec::encode_entry(&e, &mut b);
    b
}

/// Replays `session`, comparing from `from` (earlier entries only rebuild state) to `to`.
/// `on_output` sees every output the core emits in the compared part, for dumping.
pub fn verify(
    journal: &Journal,
    session: &SessionInfo,
    from: Option<i64>,
    to: Option<i64>,
    on_output: &mut dyn FnMut(u64, &Output),
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let mut report = ReplayReport {
        session: session.id,
        ..ReplayReport::default()
    };
    let mut engine: Option<Desk> = None;
    let mut pending: VecDeque<Emitted> = VecDeque::new();
    // Seqs of the outputs of the current batch, for `Cause::Emitted`.
    let mut batch: Vec<u64> = Vec::new();
    let mut last_input: Option<u64> = None;
    let mut context: VecDeque<Entry> = VecDeque::with_capacity(CONTEXT + 1);
    let mut out = Vec::new();
    let diverge = |report: &mut ReplayReport,
                   seq,
                   ts_ns,
                   expected,
                   actual,
                   why: String,
                   context: &VecDeque<Entry>| {
        report.divergences.push(Divergence {
            seq,
            ts_ns,
            expected,
            actual,
            why,
            inputs_before: context.iter().cloned().collect(),
        });
    };
    let total = session.entries
        + match &session.source {
            Some(Source::Journal {
                from_seq, to_seq, ..
            }) => to_seq - from_seq + 1,
            _ => 0,
        };
    let mut progress = super::progress::Progress::new("replay", total);
    let mut seen = 0u64;
    for e in session_stream(journal, session.id)? {
        let e = e?;
        seen += 1;
        if seen.is_multiple_of(4096) {
            progress.update(seen);
        }
        if to.is_some_and(|t| e.ts_ns > t) {
            break;
        }
        let comparing = from.is_none_or(|f| e.ts_ns >= f);
        match &e.body {
            Body::SessionStart(s) => {
                report.recorded_version = s.version.clone();
                let cfg =
                    Config::from_toml_str(&s.config).map_err(|source| ReplayError::Config {
                        session: session.id,
                        source,
                    })?;
                engine = Some(Desk::new(&cfg).map_err(|e| {
                    ReplayError::Choose(format!(
                        "the recorded config of session {} does not load: {e}",
                        session.id
                    ))
                })?);
            }
            Body::Input(_) => {
                if let Some(left) = pending.front() {
                    if comparing {
                        let why = format!(
                            "the core emitted a {} that the recording does not have",
                            left.output.kind()
                        );
                        diverge(
                            &mut report,
                            last_input.unwrap_or(e.seq),
                            e.ts_ns,
                            None,
                            Some(left.output.clone()),
                            why,
                            &context,
                        );
                        break;
                    }
                }
                pending.clear();
                batch.clear();
                let Some(core) = engine.as_mut() else {
                    return Err(ReplayError::Choose(format!(
                        "session {} has no session start to take its config from",
                        session.id
                    )));
                };
                core.on_event(&e, &mut out);
                pending.extend(out.drain(..));
                last_input = Some(e.seq);
                if comparing {
                    report.inputs += 1;
                    report.entries += 1;
                } else {
                    report.fast_forwarded += 1;
                }
                if context.len() == CONTEXT {
                    context.pop_front();
                }
                context.push_back(e);
            }
            Body::Output(recorded) => {
                let Some(actual) = pending.pop_front() else {
                    if comparing {
                        let why = format!(
                            "the recording has a {} that the core did not emit",
                            recorded.kind()
                        );
                        diverge(
                            &mut report,
                            e.seq,
                            e.ts_ns,
                            Some(e.clone()),
                            None,
                            why,
                            &context,
                        );
                        break;
                    }
                    continue;
                };
                if !comparing {
                    report.fast_forwarded += 1;
                    batch.push(e.seq);
                    continue;
                }
                report.entries += 1;
                report.outputs_compared += 1;
                on_output(e.seq, &actual.output);
                let cause = match actual.cause {
                    Cause::Input => last_input,
                    Cause::Emitted(i) => batch.get(i).copied(),
                };
                batch.push(e.seq);
                if bytes(&actual.output) != bytes(recorded) {
                    diverge(
                        &mut report,
                        e.seq,
                        e.ts_ns,
                        Some(e.clone()),
                        Some(actual.output),
                        "the output differs".into(),
                        &context,
                    );
                    break;
                }
                if cause != e.cause {
                    let why = format!(
                        "the output is the same but its cause is seq {cause:?}, recorded {:?}",
                        e.cause
                    );
                    diverge(
                        &mut report,
                        e.seq,
                        e.ts_ns,
                        Some(e.clone()),
                        Some(actual.output),
                        why,
                        &context,
                    );
                    break;
                }
                report.outputs_matched += 1;
            }
            Body::SessionEnd(_) | Body::Wire(_) => {}
        }
    }
    if report.divergences.is_empty()
        && session.status.is_none()
        && to.is_none()
        && !pending.is_empty()
    {
        // The process died between journaling an input and journaling what the core made of
        // it: the recording stops mid-decision. That is the crash, not a divergence.
        report.cut_short = true;
        pending.clear();
    }
    if report.divergences.is_empty() {
        if let Some(left) = pending.front() {
            let why = format!(
                "the core emitted a {} after the recording's last entry",
                left.output.kind()
            );
            diverge(
                &mut report,
                last_input.unwrap_or(0),
                0,
                None,
                Some(left.output.clone()),
                why,
                &context,
            );
        }
    }
    progress.finish();
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A what-if: the parent's market data and recorded model answers, with changed parameters, on
/// the simulated venue. Returns the new run and the parent's summary, read from the journal.
pub fn what_if(
    writer: &mut Writer,
    parent: &SessionInfo,
    sets: &[String],
    progress: bool,
) -> Result<(Outcome, Summary), ReplayError> {
    let journal = writer.journal().clone();
    let start = journal.get(parent.first_seq)?;
    let Some(Entry {
        body: Body::SessionStart(start),
        ..
    }) = start
    else {
        return Err(ReplayError::Choose(format!(
            "session {} has no session start",
            parent.id
        )));
    };
    let cfg =
        Config::from_toml_str_with(&start.config, sets).map_err(|source| ReplayError::Config {
            session: parent.id,
            source,
        })?;
    let (market, from_seq, to_seq) = match &start.source {
        Some(Source::Journal {
            session,
            from_seq,
            to_seq,
        }) => (*session, *from_seq, *to_seq),
        _ => (parent.id, parent.first_seq, parent.last_seq),
    };
    // Only the market entries the parent read: a parent killed, or stopped at its cost cap,
    // part way is compared with a rerun over the same stretch, not over the rest of the data.
    let to_seq = match market_reach(&journal, parent)? {
        Some(r) if !r.complete() => r.read_to.ok_or_else(|| {
            ReplayError::Choose(format!(
                "session {} read no market entries before it stopped; there is nothing to rerun",
                parent.id
            ))
        })?,
        _ => to_seq,
    };
    let mut original = SessionReport::new(
        cfg.predict.horizon_s,
        flashmm_core::contract::Contract::of(&cfg.market),
    );
    for e in session_stream(&journal, parent.id)? {
        original.on_entry(&e?);
    }
    let mut original = original.summary;
    original.finish();
    let outcome = backtest::run(
        writer,
        BacktestArgs {
            data: Data::Journal(Some(market)),
            from: None,
            from_until: None,
            to: None,
            predictor: PredictorChoice::Recorded(Some(parent.id)),
            cfg,
            market_keys: None,
            progress,
            what_if: Some(WhatIf {
                parent: parent.id,
                from_seq,
                to_seq,
            }),
        },
    )?;
    Ok((outcome, original))
}
