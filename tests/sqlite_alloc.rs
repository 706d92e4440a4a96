//! SQLite's memory comes from mimalloc once `install_mimalloc` has run before SQLite's first
//! use, as `weft` does first thing (a test binary of its own: in a binary whose tests had used
//! SQLite already, SQLite would keep the C library's allocator).

use weft::store::sqlite::{SqliteStore, install_mimalloc, uses_mimalloc};

#[test]
fn sqlite_allocates_through_mimalloc_once_installed() {
    install_mimalloc();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(uses_mimalloc(), "SQLite still allocates through the C library's malloc");
    drop(store);
}
