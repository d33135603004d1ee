//! The store's file, its lock file and the directory made for them are root-only (issue 14,
//! item 7): the store holds the whole cluster's state (policies, endpoints, IPAM), and any
//! local user able to write it could steer the dataplane. Like the kube-apiserver's or etcd's
//! data directory (etcd makes its own 0700), nothing else on the host needs to read it.
//!
//! Created files get their mode at `open(2)` (no window where they are readable); a file
//! found with a wider mode (made by an older brindle, or by hand) is narrowed, and a warning
//! says so.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{DatastoreError, Result};

/// Mode of the store's file and its lock file.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a directory the store creates for its file.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents with [`DIR_MODE`] (existing ones are left as they
/// are: `/var/lib` is not ours to narrow).
pub fn create_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| DatastoreError::Backend(format!("creating {}: {e}", dir.display())))
}

/// Opens `path` for writing, creating it with [`FILE_MODE`], and narrows an existing file's
/// mode to [`FILE_MODE`].
pub fn open_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| DatastoreError::Unavailable(format!("opening {}: {e}", path.display())))?;
    narrow(&file, path)?;
    Ok(file)
}

fn narrow(file: &File, path: &Path) -> Result<()> {
    let mode = file
        .metadata()
        .map_err(|e| DatastoreError::Unavailable(format!("reading {}: {e}", path.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & !FILE_MODE == 0 {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the embedded store's file was readable by others; narrowing it to 0600");
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|e| {
            DatastoreError::Unavailable(format!(
                "{} has mode {mode:o}, readable by others, and narrowing it to 600 failed: {e}",
                path.display()
            ))
        })
}
