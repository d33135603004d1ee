//! Writing a benchmark's results: the JSON (stable field names) at the path asked for, and its
//! Markdown beside it (`.md`). Every `brindle-perf` subcommand writes its report this way.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What could not be written, and why.
#[derive(Debug)]
pub struct WriteError {
    pub what: String,
    pub source: io::Error,
}

/// Writes `json` to `out` (creating its directory) and `markdown` next to it; returns the
/// Markdown's path.
pub fn write_json_and_markdown(
    json: &impl Serialize,
    markdown: &str,
    out: &Path,
) -> Result<PathBuf, WriteError> {
    let failed = |what: String| move |source| WriteError { what, source };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed(format!("creating {}", dir.display())))?;
    }
    let text = serde_json::to_string_pretty(json)
        .map_err(io::Error::other)
        .map_err(failed("serialising the report".into()))?;
    std::fs::write(out, text + "\n").map_err(failed(format!("writing {}", out.display())))?;
    let md = out.with_extension("md");
    std::fs::write(&md, markdown).map_err(failed(format!("writing {}", md.display())))?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_json_and_the_markdown_beside_it() {
        let dir = std::env::temp_dir().join(format!("brindle-results-{}", std::process::id()));
        let out = dir.join("sub").join("bench.json");
        let md = write_json_and_markdown(&serde_json::json!({"pps": 1}), "| a |\n", &out).unwrap();
        assert_eq!(md, dir.join("sub").join("bench.md"));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\n  \"pps\": 1\n}\n"
        );
        assert_eq!(std::fs::read_to_string(&md).unwrap(), "| a |\n");
        let err = write_json_and_markdown(&1, "", &md.join("below-a-file.json")).unwrap_err();
        assert!(err.what.contains("creating"), "{}", err.what);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
