//! SQLite's memory, from mimalloc instead of the C library's `malloc`.
//!
//! A write job is a savepoint, and SQLite keeps a savepoint's journal in memory in chunks of
//! 1 KiB: a job of a busy batch allocates and frees some fifty of them. The C library's
//! allocator keeps only seven freed blocks of a size per thread at hand, so most of those
//! calls took its slow path, a seventh of the writer's instructions. mimalloc serves them
//! from per-thread pages.
//!
//! SQLite's own accounting (the soft heap limit, `sqlite3_memory_used`) is kept: it wraps
//! whichever allocator it is given.

use std::ffi::{c_int, c_void};
use std::sync::Once;

use libmimalloc_sys as mi;
use rusqlite::ffi;

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    // SAFETY: mimalloc accepts any size; SQLite never asks for a negative one.
    unsafe { mi::mi_malloc(n.max(0) as usize) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    // SAFETY: SQLite frees only what `x_malloc` or `x_realloc` returned.
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as `x_malloc` and `x_free`.
    unsafe { mi::mi_realloc(p, n.max(0) as usize) }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    // SAFETY: `p` came from this allocator (SQLite asks only of its own allocations).
    let size = unsafe { mi::mi_usable_size(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Hands SQLite mimalloc, once per process. It must come before any other use of SQLite, with
/// no other thread using it (`weft` calls it first thing); later, SQLite refuses the change and
/// keeps the C library's allocator, and nothing else differs.
pub fn install_mimalloc() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLite copies the methods; before its initialisation nothing else is using
        // it, and after it the call only returns SQLITE_MISUSE.
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods);
        }
    });
}

/// Whether SQLite's memory comes from mimalloc: false unless [`install_mimalloc`] ran
/// before SQLite's first use.
pub fn uses_mimalloc() -> bool {
    // SAFETY: a block SQLite allocates is freed by SQLite; `mi_is_in_heap_region` only
    // compares the address with mimalloc's regions, whoever allocated it.
    unsafe {
        let p = ffi::sqlite3_malloc(64);
        if p.is_null() {
            return false;
        }
        let ours = mi::mi_is_in_heap_region(p);
        ffi::sqlite3_free(p);
        ours
    }
}
