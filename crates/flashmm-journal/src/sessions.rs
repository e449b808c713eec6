//! Session records: encoded in the `sessions` tree, built and advanced from the entries.

use super::*;

pub(crate) fn encode_info(i: &SessionInfo) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(i, codec::bincode_config()).map_err(|e| JournalError::Encode {
        seq: i.last_seq,
        detail: e.to_string(),
    })
}

pub(crate) fn decode_info(v: &[u8]) -> Result<SessionInfo> {
    bincode::serde::decode_from_slice(v, codec::bincode_config())
        .map(|(i, _)| i)
        .map_err(|e| JournalError::Read(format!("session record does not decode: {e}")))
}

pub(crate) fn new_info(e: &Entry) -> SessionInfo {
    let (mode, label, parent, source) = match &e.body {
        Body::SessionStart(s) => (s.mode, s.label.clone(), s.parent, s.source.clone()),
        _ => (Mode::Live, "(session start missing)".into(), None, None),
    };
    SessionInfo {
        id: e.session,
        mode,
        label,
        parent,
        source,
        first_seq: e.seq,
        last_seq: e.seq,
        entries: 0,
        first_ts: e.ts_ns,
        last_ts: e.ts_ns,
        status: None,
    }
}

pub(crate) fn touch(info: &mut SessionInfo, e: &Entry) {
    info.last_seq = e.seq;
    info.entries += 1;
    info.first_ts = info.first_ts.min(e.ts_ns);
    info.last_ts = info.last_ts.max(e.ts_ns);
    if let Body::SessionEnd(end) = &e.body {
        info.status = Some(end.status.clone());
    }
}
