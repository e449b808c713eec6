//! What can go wrong while reading a session back for a report, a post-mortem or an export.

use flashmm_journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A bad argument or a request the journal cannot answer; the text says what to do.
    #[error("{0}")]
    Usage(String),
    #[error("{flag} {value:?}: {why}")]
    Horizon {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("seq {seq} is a {kind} entry, not a fill; `flashmm postmortem --worst 10` lists the worst fills")]
    NotAFill { seq: u64, kind: &'static str },
    #[error("no entry with seq {0} in this journal")]
    NoEntry(u64),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("export {table}: {detail}")]
    Export { table: String, detail: String },
}

impl ReportError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> ReportError {
        ReportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
