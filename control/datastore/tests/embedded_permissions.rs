//! The embedded store's file, its lock file and the directory made for them are root-only
//! (issue 14, item 7): 0600 and 0700 whatever the process's umask, and a file found readable
//! by others is narrowed on open.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use datastore::{Datastore, EmbeddedStore};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_store_file_its_lock_and_its_new_directory_are_root_only() {
    let dir = common::TempDir::new("store-modes");
    let store_dir = dir.path().join("var-lib-brindle");
    let path = store_dir.join("datastore.redb");
    // A permissive umask, as a shell may have: the modes must not depend on it.
    // SAFETY: umask only changes this process's file-creation mask; restored below.
    let old = unsafe { libc::umask(0o000) };
    let opened = EmbeddedStore::open(&path);
    unsafe { libc::umask(old) };
    let store = opened.unwrap();
    store.put("/t/modes", b"x").unwrap();
    drop(store);

    let lock = store_dir.join("datastore.redb.lock");
    assert_eq!(
        (mode(&store_dir), mode(&path), mode(&lock)),
        (0o700, 0o600, 0o600),
        "directory, store file, lock file"
    );
}

#[test]
fn a_store_file_readable_by_others_is_narrowed_when_opened() {
    let dir = common::TempDir::new("store-narrow");
    let path = dir.path().join("datastore.redb");
    EmbeddedStore::open(&path)
        .unwrap()
        .put("/t/narrow", b"kept")
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let kv = store.get("/t/narrow").unwrap().expect("the data survives");
    assert_eq!(kv.value, b"kept");
}
