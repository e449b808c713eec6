//! `flashmm report` and `flashmm postmortem`: a session's summary and the study of its fills, as
//! text, JSON or an HTML page.

use super::{open, write_html};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct PostmortemCmd {
    /// The session (default: as for `flashmm report`, the newest finished one with decisions,
    /// passing over newer unfinished ones with a note on stderr; with --fill, the fill's own
    /// session). An unfinished session (killed or crashed) is labelled UNFINISHED and read only
    /// up to its last entry: a markout that needs a price after it is "no data".
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
pub(super) struct ReportCmd {
    /// The session. Default: the newest finished session with decisions (a backtest, replay,
    /// live or paper run; not an import or a probe). A newer session with no end (killed or
    /// crashed) is passed over, with a note on stderr naming it; if no session is finished, the
    /// newest unfinished one is read. An unfinished session, named or not, is labelled
    /// UNFINISHED and read only up to its last entry: its range, PnL, markouts and charts use no
    /// market data after it, and the position is marked at the last price at or before it.
    #[arg(long, value_name = "ID")]
    session: Option<u64>,
    /// Also write a self-contained HTML page with the charts (inline SVG, no scripts).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn run_postmortem(dir: &std::path::Path, c: PostmortemCmd) -> Result<i32> {
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
    if let Some(note) = &pm.picked.note {
        eprintln!("{note}");
    }
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

pub(super) fn run_report(dir: &std::path::Path, c: ReportCmd) -> Result<i32> {
    let journal = open(dir)?;
    let r = flashmm_report::session::read(&journal, c.session)?;
    if let Some(note) = &r.picked.note {
        eprintln!("{note}");
    }
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
