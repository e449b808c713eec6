//! The directory lock: a file holding the pid of the one process that may open the journal.

use super::*;

pub(crate) struct Lock {
    _file: File,
}

pub(crate) fn take_lock(dir: &Path) -> Result<Lock> {
    let path = dir.join("flashmm.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::Open {
            dir: dir.display().to_string(),
            detail: format!("lock file {}: {e}", path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::Write;
            let mut f = &file;
            let _ = f.set_len(0);
            let _ = writeln!(f, "pid {}", std::process::id());
            Ok(Lock { _file: file })
        }
        Err(_) => {
            let holder = std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown pid".into());
            Err(JournalError::Locked {
                dir: dir.display().to_string(),
                holder,
            })
        }
    }
}
