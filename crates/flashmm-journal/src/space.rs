//! Room left for the journal to grow: free space on its disk, and what the process's file-size
//! limit (`ulimit -f`) still allows its store file. sled cannot survive running out of either
//! (a write that fails half way, then an open on a full disk, left every later open failing), so
//! the journal keeps a reserve: it refuses to open, and stops writing, before the reserve is used.

use std::path::Path;

/// The default reserve, `--min-free-mb`: several of sled's segments and a snapshot, with room to
/// spare for the write that is in flight when the check passes.
pub const DEFAULT_MIN_FREE_MB: u64 = 128;

/// What opening the journal needs, to read it: sled writes a snapshot and may start a segment.
pub const OPEN_RESERVE_MB: u64 = 16;

const MB: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Disk,
    FileSize,
}

impl Limit {
    pub fn describe(self) -> &'static str {
        match self {
            Limit::Disk => "on the disk that holds it",
            Limit::FileSize => "under this process's file-size limit (ulimit -f)",
        }
    }

    pub fn remedy(self) -> &'static str {
        match self {
            Limit::Disk => "free space on that disk (or move the journal directory to a disk with room while no flashmm runs)",
            Limit::FileSize => "raise the file-size limit (ulimit -f)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    pub bytes: u64,
    pub limit: Limit,
}

impl Room {
    pub fn mb(&self) -> u64 {
        self.bytes / MB
    }
}

/// The smaller of the disk's free space and what the file-size limit leaves the store's file.
pub fn room(dir: &Path) -> std::io::Result<Room> {
    let disk = Room {
        bytes: disk_free(dir)?,
        limit: Limit::Disk,
    };
    let Some(max) = file_size_limit() else {
        return Ok(disk);
    };
    // The limit is per file: sled's log, or the segment being appended to, whichever is larger.
    let log = std::fs::metadata(dir.join("db/db")).map_or(0, |m| m.len());
    let largest = log.max(super::segment::largest(dir));
    let file = Room {
        bytes: max.saturating_sub(largest),
        limit: Limit::FileSize,
    };
    Ok(if file.bytes < disk.bytes { file } else { disk })
}

fn disk_free(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the journal path holds a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` is written by statvfs before it is read.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn file_size_limit() -> Option<u64> {
    // SAFETY: getrlimit writes `r` and reads nothing else.
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut r) } != 0 {
        return None;
    }
    (r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur as u64)
}

/// `Some(room)` when `room`, less `in_flight` bytes still to land, is below `reserve_mb`.
pub fn short(dir: &Path, reserve_mb: u64, in_flight: u64) -> std::io::Result<Option<Room>> {
    let mut r = room(dir)?;
    r.bytes = r.bytes.saturating_sub(in_flight);
    Ok((r.bytes < reserve_mb.saturating_mul(MB)).then_some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_has_some_room_and_no_reserve_is_never_short() {
        let d = std::env::temp_dir();
        let r = room(&d).expect("statvfs");
        assert!(r.bytes > 0);
        assert_eq!(short(&d, 0, 0).expect("statvfs"), None);
        assert!(short(&d, u64::MAX, 0).expect("statvfs").is_some());
        assert!(
            short(&d, 0, u64::MAX).expect("statvfs").is_none(),
            "0 of room is not below 0"
        );
        assert!(short(&d, 1, u64::MAX).expect("statvfs").is_some());
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(room(Path::new("/no/such/flashmm/dir")).is_err());
    }
}
