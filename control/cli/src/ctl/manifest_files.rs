//! `-f DIR` and `-R`: the manifest files a `-f` argument names, as calicoctl's `file.Iter`
//! finds them: `-` or a file is itself; a directory gives its `.yaml`, `.yml` and `.json`
//! files (extension case-insensitive) in lexical order, those of its subdirectories too with
//! `--recursive`.

use std::path::Path;

use super::CtlError;

/// Directories deeper than this are not walked (a loop of bind mounts cannot recurse forever).
const MAX_DEPTH: usize = 64;

/// The files of `path`; `is_dir` tells whether it was a directory.
pub fn expand(path: &str, recursive: bool) -> Result<(Vec<String>, bool), CtlError> {
    if path == "-" || !Path::new(path).is_dir() {
        return Ok((vec![path.to_string()], false));
    }
    let mut files = Vec::new();
    walk(Path::new(path), recursive, 0, &mut files)?;
    Ok((files, true))
}

fn walk(
    dir: &Path,
    recursive: bool,
    depth: usize,
    files: &mut Vec<String>,
) -> Result<(), CtlError> {
    let read = std::fs::read_dir(dir).map_err(|e| {
        CtlError::new(format!(
            "Failed to execute command: cannot read directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut entries: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if recursive && depth < MAX_DEPTH {
                walk(&entry, recursive, depth + 1, files)?;
            }
            continue;
        }
        let ext = entry
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("yaml" | "yml" | "json")) {
            files.push(entry.display().to_string());
        }
    }
    Ok(())
}
