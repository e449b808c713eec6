//! `flashmm predict --once`: rebuild the core at a recorded moment, ask the model once, and
//! journal the prompt and the answer as a small `probe` session. It is how an operator checks
//! credentials and sees what the model makes of a given market.

use super::backtest::{resolve_source, BacktestError, Data};
use flashmm_core::config::Config;
use flashmm_core::event::{
    Body, Entry, Input, Mode, Output, PredictionRequest, PredictionResponse, SessionStart,
    SessionStatus, Source,
};
use flashmm_core::signal::Predictor;
use flashmm_core::Engine;
use flashmm_journal::Writer;

pub struct ProbeArgs {
    pub data: Data,
    /// The market moment; `None` is the end of the data.
    pub at: Option<i64>,
    pub cfg: Config,
}

pub struct ProbeOutcome {
    pub session: u64,
    pub source_session: u64,
    /// The last market entry the core saw.
    pub at_seq: u64,
    pub at_ts: i64,
    pub request: PredictionRequest,
    pub response: PredictionResponse,
}

pub fn run(
    writer: &mut Writer,
    args: ProbeArgs,
    predictor: &mut dyn Predictor,
) -> Result<ProbeOutcome, BacktestError> {
    let (source, _) = resolve_source(writer, &args.data, None, args.at, None)?;
    let journal = writer.journal().clone();
    let Some((from_seq, to_seq)) = journal.seq_range(source, None, args.at)? else {
        return Err(BacktestError::NoData(format!(
            "session {source} has no market data before --at"
        )));
    };
    let mut engine = Engine::new(&args.cfg);
    let mut out = Vec::new();
    let mut last = None;
    for e in journal.read_ahead(from_seq)? {
        let e = e?;
        if e.seq > to_seq {
            break;
        }
        if e.session != source || !e.body.is_market() {
            continue;
        }
        engine.on_event(&e, &mut out);
        out.clear();
        last = Some((e.seq, e.ts_ns));
    }
    let Some((at_seq, at_ts)) = last else {
        return Err(BacktestError::NoData(format!(
            "session {source} has no market data before --at"
        )));
    };
    let request = engine.request_now().ok_or_else(|| {
        BacktestError::NoData("the order book is not valid at that moment (no snapshot yet, or a gap); pick a later --at".into())
    })?;
    let session = writer.begin(
        at_ts,
        SessionStart {
            mode: Mode::Probe,
            version: flashmm_core::VERSION.to_string(),
            config: args.cfg.to_toml(),
            label: format!(
                "predict --once, {} predictor, at seq {at_seq} of session {source}",
                predictor.kind().as_str()
            ),
            parent: None,
            source: Some(Source::Journal {
                session: source,
                from_seq,
                to_seq,
            }),
        },
    )?;
    let mut asked = Entry {
        seq: 0,
        ts_ns: at_ts,
        venue_ts_ns: None,
        session,
        cause: Some(at_seq),
        body: Body::Output(Output::PredictionRequest(Box::new(request.clone()))),
    };
    // Write-ahead: the prompt is durable before it leaves.
    writer.append(&mut asked)?;
    writer.flush(false)?;
    let response = predictor.answer(&request, at_ts);
    let mut answered = Entry {
        seq: 0,
        ts_ns: at_ts + response.latency_ms as i64 * 1_000_000,
        venue_ts_ns: None,
        session,
        cause: Some(asked.seq),
        body: Body::Input(Input::PredictionResponse(Box::new(response.clone()))),
    };
    writer.append(&mut answered)?;
    let status = match &response.result {
        Ok(_) => SessionStatus::Completed,
        Err(f) => SessionStatus::Failed(format!("{}: {}", f.kind.as_str(), f.message)),
    };
    writer.end(session, answered.ts_ns, status, String::new())?;
    writer.flush(false)?;
    Ok(ProbeOutcome {
        session,
        source_session: source,
        at_seq,
        at_ts,
        request,
        response,
    })
}
