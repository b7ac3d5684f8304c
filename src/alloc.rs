//! The process's heap, tuned for a long-running server on glibc: how many
//! arenas it keeps, how big blocks are mapped, and when freed memory goes
//! back to the kernel. Elsewhere (musl, other systems) these do nothing.
//!
//! Why: glibc keeps memory a thread freed for reuse, per arena. A server
//! whose sessions come in bursts (a bulk of transfers, a 1 GiB SFTP get)
//! held its peak long after the sessions ended (bench/ssh.sh: 20 MB of
//! heap still resident after one SFTP get and put, from 2 MB before).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// At most one release of free memory per this interval, however many
/// sessions end.
const RELEASE_EVERY: Duration = Duration::from_secs(1);

/// How often free memory goes back when no session ends.
/// A walk over the heap costs about a millisecond.
const RELEASE_IDLE_EVERY: Duration = Duration::from_secs(10);

/// Caps glibc's malloc arenas at two. By default every thread that
/// allocates may get an arena of its own (up to eight per core), and each
/// keeps what its thread freed: with a recording thread per session, the
/// indexer and the database's worker threads, a streaming session took the
/// resident size from 21 to 48 MB and it stayed near 27 MB (bench/ssh.sh,
/// pty syslog-like stream and a second person's logins); with two arenas
/// the peak was 36 MB. Called by the binary first thing.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_ARENA_MAX: std::ffi::c_int = -8;
        // SAFETY: mallopt is glibc's documented setter for malloc
        // parameters; M_ARENA_MAX with a positive value is valid at any
        // time and touches no Rust-owned memory.
        unsafe {
            mallopt(M_ARENA_MAX, 2);
        }
    }
}

/// Makes glibc serve allocations of argon2's block size (19 MiB) with their
/// own mappings, returned to the kernel on free. By default glibc raises its
/// mmap threshold to the size of the last such block freed (up to 32 MiB),
/// after which argon2's blocks come from malloc heaps whose pages stay
/// resident: a flood left 200-400 MB behind. Fixing the threshold at 16 MiB
/// also turns that adjustment off; smaller allocations are not affected.
/// Idempotent.
pub fn keep_big_blocks_unmapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
            const SIXTEEN_MIB: std::ffi::c_int = 16 * 1024 * 1024;
            // SAFETY: mallopt is glibc's documented, thread-safe setter for
            // malloc parameters; M_MMAP_THRESHOLD with a value below its
            // 32 MiB maximum is valid, and it touches no Rust-owned memory.
            let ok = unsafe { mallopt(M_MMAP_THRESHOLD, SIXTEEN_MIB) };
            if ok != 1 {
                tracing::warn!("could not set malloc's mmap threshold: memory after a password flood may stay resident");
            }
        });
    }
}

/// Gives the heap's free memory back to the kernel now, SQLite's cached
/// pages first (it blocks for the walk over the heap: a millisecond or so).
pub fn release_free_memory() {
    crate::store::release_sqlite_cache();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim is glibc's thread-safe call that returns free
        // heap pages to the kernel; it touches no memory Rust owns.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A session ended: its buffers are free, and go back to the kernel on a
/// blocking thread, at most once per [`RELEASE_EVERY`]. A burst of sessions
/// gets one release at once and one more when the interval is over, so the
/// last sessions of a burst are released too (they were not: what they
/// freed stayed resident until some later session ended). Call from
/// within a tokio runtime.
pub fn release_after_session() {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static TRAILING: AtomicBool = AtomicBool::new(false);
    let every = RELEASE_EVERY.as_millis() as u64;
    let last = LAST.load(Ordering::Acquire);
    let wait = every.saturating_sub(now_millis().saturating_sub(last));
    if wait == 0
        && LAST
            .compare_exchange(last, now_millis(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        drop(tokio::task::spawn_blocking(release_free_memory));
        return;
    }
    // Released within the interval (or another session just did): one
    // release when it is over covers this session and any that end
    // meanwhile.
    if TRAILING.swap(true, Ordering::AcqRel) {
        return;
    }
    drop(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        TRAILING.store(false, Ordering::Release);
        LAST.store(now_millis(), Ordering::Release);
        drop(tokio::task::spawn_blocking(release_free_memory));
    }));
}

/// Gives free memory back every [`RELEASE_IDLE_EVERY`], whatever ended:
/// what the search indexer, a closed database connection or a finished
/// transfer freed between sessions. Call from within a tokio runtime.
pub fn release_periodically() {
    drop(tokio::spawn(async {
        let mut tick = tokio::time::interval(RELEASE_IDLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }));
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    fn malloc_trim(pad: libc::size_t) -> std::ffi::c_int;
}
