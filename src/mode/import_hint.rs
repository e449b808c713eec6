//! An import that `backtest --data` or `predict --data` ran for the user and that failed: the
//! importer's own hints name `journal import`'s flags, which these commands do not have, so
//! the hint becomes the two commands that do the same with the flag.

use flashmm_journal::binance::ImportError;
use flashmm_journal::tardis::TardisError;

/// `format`: the importer's name, as `journal import --format` takes it.
pub fn import_hint(path: &str, format: &str, err: &ImportError) -> String {
    let (what, flag) = match err {
        ImportError::Gap { line, detail } => (
            format!("update-id gap at line {line}: {detail}. The book would be wrong from here"),
            Some("flashmm journal import --format binance --allow-gaps".to_string()),
        ),
        ImportError::TimeJump {
            line,
            dir,
            jump_s,
            from,
            to,
            max_s,
        } => (
            format!("line {line}: the local time jumps {dir} by {jump_s} s (from {from} to {to} ns), more than the {max_s} s allowed"),
            Some(format!("flashmm journal import --format {format} --max-time-jump-s SECONDS")),
        ),
        ImportError::Tardis(t) => match &**t {
            TardisError::TimeJump {
                path,
                line,
                dir,
                jump_s,
                from,
                to,
                max_s,
            } => (
                format!("{path} line {line}: the local time jumps {dir} by {jump_s} s (from {from} to {to} ns), more than the {max_s} s allowed"),
                Some(format!("flashmm journal import --format {format} --max-time-jump-s SECONDS")),
            ),
            other => (other.to_string(), None),
        },
        ImportError::NoSymbol => (
            "cannot tell the symbol: no line names one".to_string(),
            Some(format!("flashmm journal import --format {format} --symbol SYMBOL")),
        ),
        ImportError::Malformed { line, detail } => {
            (format!("line {line}: malformed record: {detail}"), None)
        }
        ImportError::AlreadyImported { session, .. } => {
            return format!("{path} is already imported as session {session}; pass --session {session}")
        }
        other => (other.to_string(), None),
    };
    match flag {
        Some(import) => format!(
            "importing {path}: {what}. --data imports with the default rules; to import it with that rule changed, run `{import} {path}`, then pass the session it prints to --session"
        ),
        None => format!("importing {path}: {what}"),
    }
}
