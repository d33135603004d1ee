//! Writing a benchmark's results: the JSON (stable field names) at the path asked for, with
//! its summary rows (see [`crate::rows`]) under `summary`, and its Markdown beside it (`.md`).
//! Every `brindle-perf` subcommand writes its report this way.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::rows::{self, Benchmark, Summary};

/// What could not be written, and why.
#[derive(Debug)]
pub struct WriteError {
    pub what: String,
    pub source: io::Error,
}

/// `report`'s own fields, then its summary.
#[derive(Serialize)]
struct WithSummary<'a, T: Serialize> {
    #[serde(flatten)]
    report: &'a T,
    summary: Summary,
}

/// Writes `json` with its summary as `benchmark` to `out` (creating its directory) and
/// `markdown` next to it; returns the Markdown's path.
pub fn write_json_and_markdown(
    benchmark: Benchmark,
    json: &impl Serialize,
    markdown: &str,
    out: &Path,
) -> Result<PathBuf, WriteError> {
    let failed = |what: String| move |source| WriteError { what, source };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed(format!("creating {}", dir.display())))?;
    }
    let serialising = || failed("serialising the report".into());
    let fields = serde_json::to_value(json)
        .map_err(io::Error::other)
        .map_err(serialising())?;
    let summary = rows::summarise(benchmark, &fields)
        .map_err(io::Error::other)
        .map_err(failed("summarising the report in rows".into()))?;
    let text = serde_json::to_string_pretty(&WithSummary {
        report: json,
        summary,
    })
    .map_err(io::Error::other)
    .map_err(serialising())?;
    std::fs::write(out, text + "\n").map_err(failed(format!("writing {}", out.display())))?;
    let md = out.with_extension("md");
    std::fs::write(&md, markdown).map_err(failed(format!("writing {}", md.display())))?;
    Ok(md)
}

/// Adds the summary to a results file written before summaries existed, by the kind its
/// name says, leaving the rest of the file as it is; `false` when it already has one.
pub fn add_summary(path: &Path) -> Result<bool, WriteError> {
    let failed = |what: String| move |source| WriteError { what, source };
    let invalid = |what: String| failed(what.clone());
    let text =
        std::fs::read_to_string(path).map_err(failed(format!("reading {}", path.display())))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(io::Error::other)
        .map_err(invalid(format!("parsing {}", path.display())))?;
    if doc.get(rows::SUMMARY_KEY).is_some() {
        return Ok(false);
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let benchmark = Benchmark::from_file_stem(&stem).ok_or_else(|| WriteError {
        what: format!("{}: no benchmark writes files named so", path.display()),
        source: io::ErrorKind::InvalidInput.into(),
    })?;
    let summary = rows::summarise(benchmark, &doc)
        .map_err(io::Error::other)
        .map_err(invalid(format!("summarising {}", path.display())))?;
    // Inserted as text before the closing brace, so that the file's own fields keep their
    // order and layout.
    let body = text
        .trim_end()
        .strip_suffix('}')
        .filter(|_| doc.is_object())
        .ok_or_else(|| WriteError {
            what: format!("{}: not a JSON object", path.display()),
            source: io::ErrorKind::InvalidData.into(),
        })?;
    let summary = serde_json::to_string_pretty(&summary)
        .map_err(io::Error::other)
        .map_err(invalid("serialising the summary".into()))?
        .replace('\n', "\n  ");
    let updated = format!(
        "{},\n  \"{}\": {summary}\n}}\n",
        body.trim_end(),
        rows::SUMMARY_KEY
    );
    std::fs::write(path, updated).map_err(failed(format!("writing {}", path.display())))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_the_json_with_its_summary_and_the_markdown_beside_it() {
        let dir = std::env::temp_dir().join(format!("brindle-results-{}", std::process::id()));
        let out = dir.join("sub").join("bench.json");
        let json = serde_json::json!({"endpoints": 1, "synced_secs": 2.0,
            "programmed_secs": 3.0, "endpoints_per_sec": 0.5});
        let md = write_json_and_markdown(Benchmark::Resync, &json, "| a |\n", &out).unwrap();
        assert_eq!(md, dir.join("sub").join("bench.md"));
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(written.starts_with("{\n  \"endpoints\": 1,\n"), "{written}");
        let doc: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(doc["synced_secs"], 2.0);
        let summary = rows::read_summary(&doc).unwrap().unwrap();
        assert_eq!(summary, rows::summarise(Benchmark::Resync, &json).unwrap());
        assert_eq!(std::fs::read_to_string(&md).unwrap(), "| a |\n");
        let err = write_json_and_markdown(Benchmark::Resync, &1, "", &md.join("below-a-file.json"))
            .unwrap_err();
        assert!(err.what.contains("creating"), "{}", err.what);
        // A document the benchmark's rows cannot be read from is not written.
        let err = write_json_and_markdown(Benchmark::Resync, &json!({}), "", &out).unwrap_err();
        assert!(err.what.contains("summarising"), "{}", err.what);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_older_file_gets_its_summary_added_and_keeps_its_fields_as_they_were() {
        let dir = std::env::temp_dir().join(format!("brindle-add-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("resync-old.json");
        let old = "{\n  \"endpoints\": 4,\n  \"synced_secs\": 1.0,\n  \"programmed_secs\": 2.0,\n  \"endpoints_per_sec\": 2.0\n}\n";
        std::fs::write(&path, old).unwrap();
        assert!(add_summary(&path).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(old.trim_end().trim_end_matches('}').trim_end()),
            "{text}"
        );
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let summary = rows::read_summary(&doc).unwrap().unwrap();
        assert_eq!(summary.benchmark, Benchmark::Resync);
        assert_eq!(summary.rows.len(), 4);
        assert!(!add_summary(&path).unwrap(), "a summary is added once");
        let unknown = dir.join("notes.json");
        std::fs::write(&unknown, "{}").unwrap();
        assert!(add_summary(&unknown).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
