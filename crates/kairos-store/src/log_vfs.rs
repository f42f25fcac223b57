//! A SQLite VFS for the history writer's connection that coalesces the writes of its
//! write-ahead log. SQLite writes each log frame as two `pwrite`s, its 24-byte header and then
//! the page: 28 system calls for a commit of 14 frames, 40 us of CPU on this virtual machine
//! where one write of the same 57 KiB takes 7.5 (`pwrite`s to a file on the same disk, 2,000
//! commits), a sixth of the writer's time under contact load. Here writes that follow one
//! another are kept in memory and reach the file as one write before anything can depend on
//! them: before the log is synced, read, sized, truncated or closed, and before a write
//! elsewhere in it. Every other file (the database, its shared memory) is the default VFS's
//! own, untouched.
//!
//! A commit's frames become visible to other connections only once SQLite has synced them
//! (the log index is updated after the sync), so readers never see a frame still held here.
//! That holds because the writer's connection syncs every commit (`synchronous = FULL`): at
//! a lower level SQLite would publish frames without syncing, and so without a flush.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::size_of;
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub(crate) const NAME: &str = "kairos-log";
const C_NAME: &CStr = c"kairos-log";

/// Writes held beyond this go to the file first: a group commit of 4,096 records writes a
/// few hundred frames, and memory for them is cheaper than the system calls.
const MAX_HELD: usize = 4 << 20;

/// The most one write passes on: the default VFS takes the size of a write modulo 128 KiB
/// (it masks it with `0x1ffff`), so a larger one would be cut short.
const MAX_WRITE: usize = 120 << 10;

/// A log file: the default VFS's file, which lives in the same allocation right after this
/// header, and the bytes written but not yet passed on to it.
#[repr(C)]
struct LogFile {
    /// First, as SQLite requires of every file: it points to [`METHODS`].
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    held: Vec<u8>,
    /// Where in the file `held` starts.
    held_at: i64,
}

/// Where the default VFS's file starts in a file's allocation (aligned as SQLite aligns).
const INNER_OFFSET: usize = size_of::<LogFile>().next_multiple_of(8);

/// Registers the VFS once per process, over the default one. Connections that do not name it
/// are unaffected.
pub(crate) fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: looking up the default VFS initialises SQLite if it is not yet; the VFS
        // made here is leaked, as a registered VFS must outlive every connection using it.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() {
                return ffi::SQLITE_ERROR;
            }
            let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
                szOsFile: (INNER_OFFSET + (*default).szOsFile as usize) as c_int,
                pNext: ptr::null_mut(),
                zName: C_NAME.as_ptr(),
                pAppData: default.cast(),
                xOpen: Some(open),
                // The default VFS's other calls do not use the VFS they are called through.
                ..*default
            }));
            ffi::sqlite3_vfs_register(vfs, 0)
        }
    });
    match rc {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(format!(
            "registering the {NAME} vfs failed with sqlite code {rc}"
        )),
    }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives `file` `szOsFile` bytes, room for a `LogFile` and the default
    // VFS's file after it; `pAppData` is the default VFS (see `register`).
    unsafe {
        let default = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
        let Some(default_open) = (*default).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return default_open(default, name, file, flags, out_flags);
        }
        let inner = file
            .cast::<u8>()
            .add(INNER_OFFSET)
            .cast::<ffi::sqlite3_file>();
        let rc = default_open(default, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // No methods: SQLite then does not call xClose on a file that never opened.
            (*file).pMethods = ptr::null();
            return rc;
        }
        ptr::write(
            file.cast::<LogFile>(),
            LogFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                inner,
                held: Vec::new(),
                held_at: 0,
            },
        );
        ffi::SQLITE_OK
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// The log file behind one of [`METHODS`]' calls.
///
/// # Safety
/// `file` must be a file that [`open`] made a `LogFile`, not yet closed; SQLite calls one
/// file's methods from one thread at a time.
unsafe fn log_file<'a>(file: *mut ffi::sqlite3_file) -> &'a mut LogFile {
    unsafe { &mut *file.cast::<LogFile>() }
}

/// The default VFS's methods for the file under a log file.
fn inner_methods(log: &LogFile) -> &ffi::sqlite3_io_methods {
    // SAFETY: the inner file opened successfully (see `open`), so its methods are set.
    unsafe { &*(*log.inner).pMethods }
}

impl LogFile {
    /// Passes the held bytes on to the file.
    fn flush(&mut self) -> c_int {
        let Some(write) = inner_methods(self).xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut rc = ffi::SQLITE_OK;
        let mut at = self.held_at;
        for chunk in self.held.chunks(MAX_WRITE) {
            // SAFETY: `inner` is open and `chunk` is valid for its length.
            rc = unsafe { write(self.inner, chunk.as_ptr().cast(), chunk.len() as c_int, at) };
            if rc != ffi::SQLITE_OK {
                break;
            }
            at += chunk.len() as i64;
        }
        // Gone either way: a failed write fails the sync after it, so SQLite rolls back the
        // transaction the bytes belonged to and never publishes them.
        self.held.clear();
        rc
    }

    fn held_end(&self) -> i64 {
        self.held_at + self.held.len() as i64
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `log_file`; after this the file is not used again, so `held` is dropped.
    unsafe {
        let log = log_file(file);
        let flushed = log.flush();
        let closed = match inner_methods(log).xClose {
            Some(close) => close(log.inner),
            None => ffi::SQLITE_OK,
        };
        ptr::drop_in_place(&mut log.held);
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: see `log_file`.
    let log = unsafe { log_file(file) };
    let overlaps = offset < log.held_end() && offset + i64::from(amount) > log.held_at;
    if !log.held.is_empty() && overlaps {
        let rc = log.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    match inner_methods(log).xRead {
        // SAFETY: the caller's buffer, passed on as given.
        Some(read) => unsafe { read(log.inner, buf, amount, offset) },
        None => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: see `log_file`; SQLite's buffer holds `amount` bytes.
    let (log, bytes) = unsafe {
        (
            log_file(file),
            std::slice::from_raw_parts(buf.cast::<u8>(), amount.max(0) as usize),
        )
    };
    let follows = !log.held.is_empty() && offset == log.held_end();
    if !follows || log.held.len() + bytes.len() > MAX_HELD {
        let rc = log.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        log.held_at = offset;
    }
    log.held.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

/// The calls passed on to the default VFS's file: `$name` forwards to its `$method`,
/// answering `$missing` where it has none, and with `flush` first passes the held bytes on.
/// Those calls act on the file's bytes or size (a size hint control extends it, a mapped page
/// must show what was written); the rest do not touch the log's bytes.
macro_rules! forward {
    ($($when:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $method:ident or $missing:expr;)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: see `log_file`; the arguments are SQLite's, passed on as given.
            let log = unsafe { log_file(file) };
            if forward!(@$when) {
                let rc = log.flush();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            match inner_methods(log).$method {
                Some(method) => unsafe { method(log.inner $(, $arg)*) },
                None => $missing,
            }
        }
    )*};
    (@flush) => { true };
    (@pass) => { false };
}

forward! {
    flush fn truncate(size: i64) -> xTruncate or ffi::SQLITE_IOERR_TRUNCATE;
    flush fn sync(flags: c_int) -> xSync or ffi::SQLITE_IOERR_FSYNC;
    flush fn file_size(size: *mut i64) -> xFileSize or ffi::SQLITE_IOERR_FSTAT;
    flush fn file_control(op: c_int, arg: *mut c_void) -> xFileControl or ffi::SQLITE_NOTFOUND;
    // Without mapping, SQLite reads instead.
    flush fn fetch(offset: i64, amount: c_int, out: *mut *mut c_void) -> xFetch or {
        unsafe { *out = ptr::null_mut() };
        ffi::SQLITE_OK
    };
    pass fn unfetch(offset: i64, page: *mut c_void) -> xUnfetch or ffi::SQLITE_OK;
    pass fn lock(level: c_int) -> xLock or ffi::SQLITE_IOERR_LOCK;
    pass fn unlock(level: c_int) -> xUnlock or ffi::SQLITE_IOERR_UNLOCK;
    pass fn check_reserved_lock(out: *mut c_int) -> xCheckReservedLock or ffi::SQLITE_IOERR_CHECKRESERVEDLOCK;
    pass fn sector_size() -> xSectorSize or 4096;
    pass fn device_characteristics() -> xDeviceCharacteristics or 0;
    pass fn shm_map(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> xShmMap or ffi::SQLITE_IOERR_SHMMAP;
    pass fn shm_lock(offset: c_int, n: c_int, flags: c_int) -> xShmLock or ffi::SQLITE_IOERR_SHMLOCK;
    pass fn shm_unmap(delete: c_int) -> xShmUnmap or ffi::SQLITE_OK;
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: see `log_file`.
    let log = unsafe { log_file(file) };
    if let Some(barrier) = inner_methods(log).xShmBarrier {
        unsafe { barrier(log.inner) }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags};

    use super::*;

    fn open_writer(path: &std::path::Path) -> Connection {
        register().unwrap();
        let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);",
        )
        .unwrap();
        conn
    }

    /// A fresh folder for one test's database, removed when dropped.
    struct Folder(std::path::PathBuf);

    impl Folder {
        fn new(test: &str) -> Folder {
            let path =
                std::env::temp_dir().join(format!("kairos_log_vfs_{test}_{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Folder(path)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn commits_through_the_vfs_are_seen_by_other_connections_and_survive_reopening() {
        let dir = Folder::new("commits");
        let path = dir.0.join("log.db");
        let writer = open_writer(&path);
        let reader = Connection::open(&path).unwrap();
        for round in 0..50 {
            let tx = writer.unchecked_transaction().unwrap();
            for i in 0..20 {
                tx.execute(
                    "INSERT INTO t (k, v) VALUES (?1, ?2)",
                    (round * 20 + i, "x".repeat(300)),
                )
                .unwrap();
            }
            tx.commit().unwrap();
            // A reader on the default VFS sees each commit as soon as it returns.
            assert_eq!(count(&reader), (round + 1) * 20);
        }
        drop((writer, reader));
        let reopened = open_writer(&path);
        assert_eq!(count(&reopened), 1000);
        let check: String = reopened
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_transaction_larger_than_the_page_cache_spills_and_rolls_back_cleanly() {
        let dir = Folder::new("spill");
        let path = dir.0.join("spill.db");
        let writer = open_writer(&path);
        // Ten pages of cache: the big transaction writes frames to the log before its commit,
        // and reads some back.
        writer.execute_batch("PRAGMA cache_size = 10").unwrap();
        let insert_many = |from: i64| {
            let tx = writer.unchecked_transaction().unwrap();
            for k in from..from + 2000 {
                tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (k, "y".repeat(200)))
                    .unwrap();
            }
            tx
        };
        insert_many(0).rollback().unwrap();
        assert_eq!(count(&writer), 0);
        insert_many(5000).commit().unwrap();
        let reader = Connection::open(&path).unwrap();
        assert_eq!(count(&reader), 2000);
        let sum: i64 = reader
            .query_row("SELECT sum(length(v)) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sum, 2000 * 200);
    }
}
