//! Which session a report reads, and what the session says about itself.

use super::error::ReportError;
use flashmm_core::config::Config;
use flashmm_core::event::{Body, Mode, SessionStart};
use flashmm_journal::{Journal, SessionInfo};

/// A session with its start entry and the configuration it ran with.
pub struct Picked {
    pub info: SessionInfo,
    pub start: Option<SessionStart>,
    /// The session's recorded configuration; the defaults when it recorded none (an import).
    pub cfg: Config,
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
}

fn has_decisions(s: &SessionInfo) -> bool {
    !matches!(s.mode, Mode::Import | Mode::Probe)
}

/// The session named, else the newest session with decisions (not an import or a probe).
pub fn pick(journal: &Journal, id: Option<u64>) -> Result<Picked, ReportError> {
    let info = match id {
        Some(id) => journal.session(id)?,
        None => journal
            .sessions()?
            .into_iter()
            .rev()
            .find(has_decisions)
            .ok_or_else(|| {
                ReportError::Usage(
                    "no session with decisions in this journal: run `flashmm backtest` first, or name a session with --session (`flashmm journal ls` lists them)".into(),
                )
            })?,
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
    Ok(Picked { info, start, cfg })
}
