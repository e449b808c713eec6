//! Whether the journal's data covers a `--from`: a run asked to start on a day the data does
//! not hold says so, naming the range it does hold, instead of silently starting wherever the
//! data begins.

use flashmm_core::event::when;
use flashmm_journal::SessionInfo;

const DAY_NS: i64 = 86_400_000_000_000;

/// `from` is the first instant `--from` names, `until` its last: the end of the day for a
/// bare date (`2024-08-08` is the whole day), the instant itself for a full time.
pub fn covers(s: &SessionInfo, from: i64, until: i64) -> bool {
    s.first_ts <= until && from <= s.last_ts
}

/// The error for a `--from` that none of `candidates` covers; `what` says so, as a clause.
pub fn not_covered(from: i64, until: i64, what: &str, candidates: &[&SessionInfo]) -> String {
    let asked = if until - from == DAY_NS - 1 && from.rem_euclid(DAY_NS) == 0 {
        when::format(from).chars().take(10).collect::<String>()
    } else {
        when::format(from)
    };
    let range = |s: &SessionInfo| {
        format!(
            "{} to {} (session {})",
            when::format(s.first_ts),
            when::format(s.last_ts),
            s.id
        )
    };
    // The newest first, as `flashmm journal ls` lists them last; a handful is enough to pick from.
    const SHOWN: usize = 5;
    let mut ranges: Vec<String> = candidates
        .iter()
        .rev()
        .take(SHOWN)
        .map(|s| range(s))
        .collect();
    if candidates.len() > SHOWN {
        ranges.push(format!(
            "and {} more (`flashmm journal ls`)",
            candidates.len() - SHOWN
        ));
    }
    format!(
        "--from {asked}: {what}; the data covers {}. Pass a --from within {}",
        ranges.join("; "),
        if candidates.len() == 1 {
            "that range"
        } else {
            "one of those ranges"
        }
    )
}
