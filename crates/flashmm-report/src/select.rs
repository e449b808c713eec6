//! Which session a report reads, and what the session says about itself.

use super::error::ReportError;
use flashmm_core::config::Config;
use flashmm_core::event::{Body, Mode, SessionStart, SessionStatus};
use flashmm_journal::stream::{market_reach, MarketReach};
use flashmm_journal::{Journal, SessionInfo};

/// A session with its start entry and the configuration it ran with.
pub struct Picked {
    pub info: SessionInfo,
    pub start: Option<SessionStart>,
    /// The session's recorded configuration; the defaults when it recorded none (an import).
    pub cfg: Config,
    /// How far it read the market entries of its source (a backtest, a replay).
    pub reach: Option<MarketReach>,
    /// Set when the default passed over newer sessions (unfinished ones), or could only find an
    /// unfinished one: says so, for stderr.
    pub note: Option<String>,
}

impl Picked {
    pub fn symbol(&self) -> String {
        self.cfg.market.symbol.to_string()
    }

    /// "backtest, azure predictor, on session 1; BTCUSDT": the mode, the label and the symbol.
    pub fn describe(&self) -> String {
        let mode = self.info.mode.as_str();
        let label = self.info.label.trim();
        let what = if label.is_empty() {
            mode.to_string()
        } else if label.starts_with(mode) {
            label.to_string()
        } else {
            format!("{mode}: {label}")
        };
        format!("{what}; {}", self.symbol())
    }

    /// No `SessionEnd`: killed or crashed. What is read back stops at its last entry.
    pub fn unfinished(&self) -> bool {
        !self.info.finished()
    }

    /// The market seqs it read, when it reads another session's: "market seqs 1..20000 of
    /// 1..41247 (session 1)", or without "of" when it read them all.
    pub fn market_read(&self) -> Option<String> {
        let r = self.reach.as_ref()?;
        let range = |to: Option<u64>| match to {
            Some(t) => format!("{}..{t}", r.from_seq),
            None => "none".into(),
        };
        Some(if r.complete() {
            format!("market seqs {} (session {})", range(r.read_to), r.session)
        } else {
            format!(
                "market seqs {} of {} (session {})",
                range(r.read_to),
                range(r.last),
                r.session
            )
        })
    }

    /// What a reader must know before the numbers: an unfinished session, a failed or
    /// interrupted one, or one that stopped before the end of its market data. `None` for a
    /// session that completed over all of it.
    pub fn caveat(&self) -> Option<String> {
        let market = self.market_read();
        let stopped_short = self.reach.as_ref().is_some_and(|r| !r.complete());
        if self.unfinished() {
            return Some(format!(
                "UNFINISHED: no session end (killed or crashed); everything here covers only what it journaled, to seq {}{}; positions are marked at the last price at or before that entry",
                self.info.last_seq,
                market.map_or(String::new(), |m| format!(", {m}"))
            ));
        }
        let status = match &self.info.status {
            Some(SessionStatus::Failed(why)) => Some(format!("FAILED: {why}")),
            Some(SessionStatus::Interrupted) => Some("INTERRUPTED".to_string()),
            _ => None,
        };
        match (status, stopped_short) {
            (None, false) => None,
            (Some(s), false) => Some(s),
            (s, true) => Some(format!(
                "{}stopped before the end of its data: read {}; positions are marked at the last price it read",
                s.map_or(String::new(), |s| format!("{s}; ")),
                market.unwrap_or_default()
            )),
        }
    }
}

fn has_decisions(s: &SessionInfo) -> bool {
    !matches!(s.mode, Mode::Import | Mode::Probe)
}

/// The session named, else the newest finished session with decisions (not an import or a
/// probe): newer unfinished ones (killed or crashed) are passed over, and `Picked::note` says
/// so. If none is finished, the newest unfinished one, with a note.
pub fn pick(journal: &Journal, id: Option<u64>) -> Result<Picked, ReportError> {
    let (info, note) = match id {
        Some(id) => (journal.session(id)?, None),
        None => {
            let candidates: Vec<SessionInfo> = journal
                .sessions()?
                .into_iter()
                .rev()
                .filter(has_decisions)
                .collect();
            let Some(newest) = candidates.first() else {
                return Err(ReportError::Usage(
                    "no session with decisions in this journal: run `flashmm backtest` first, or name a session with --session (`flashmm journal ls` lists them)".into(),
                ));
            };
            let skipped: Vec<u64> = candidates
                .iter()
                .take_while(|s| !s.finished())
                .map(|s| s.id)
                .collect();
            let names = |ids: &[u64]| {
                let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                match ids.len() {
                    1 => format!("session {} is", ids[0]),
                    _ => format!("sessions {} are", ids.join(", ")),
                }
            };
            match candidates.iter().find(|s| s.finished()) {
                Some(f) if skipped.is_empty() => (f.clone(), None),
                Some(f) => (
                    f.clone(),
                    Some(format!(
                        "{} unfinished (no session end: killed or crashed); reading session {}, the newest finished one; pass --session {} to read it anyway",
                        names(&skipped),
                        f.id,
                        newest.id
                    )),
                ),
                None => (
                    newest.clone(),
                    Some(format!(
                        "session {} is unfinished (no session end: killed or crashed) and no session with decisions is finished; reading it up to its last entry",
                        newest.id
                    )),
                ),
            }
        }
    };
    let start = match journal.get(info.first_seq)? {
        Some(e) => match e.body {
            Body::SessionStart(s) => Some(*s),
            _ => None,
        },
        None => None,
    };
    let cfg = start
        .as_ref()
        .filter(|s| !s.config.trim().is_empty())
        .and_then(|s| Config::from_toml_str(&s.config).ok())
        .unwrap_or_default();
    let reach = market_reach(journal, &info)?;
    Ok(Picked {
        info,
        start,
        cfg,
        reach,
        note,
    })
}
