//! What the node under test logs: its `datastore synced` lines, read by a thread.

use super::*;

/// What the node's stderr said, collected by a reader thread.
#[derive(Default)]
pub(super) struct NodeLog {
    /// Arrival time and `endpoints=` of every `datastore synced` line.
    pub(super) synced: Mutex<Vec<(Instant, usize)>>,
    pub(super) tail: Mutex<VecDeque<String>>,
    pub(super) lines: AtomicU64,
    pub(super) warnings: AtomicU64,
}

impl NodeLog {
    pub(super) fn follow(pipe: impl Read + Send + 'static) -> Arc<NodeLog> {
        let log = Arc::new(NodeLog::default());
        let writer = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => writer.take_line(&String::from_utf8_lossy(&raw)),
                }
            }
        });
        log
    }

    pub(super) fn take_line(&self, raw: &str) {
        let now = Instant::now();
        let line = strip_ansi(raw.trim_end());
        self.lines.fetch_add(1, Ordering::Relaxed);
        if line.contains(" WARN ") {
            self.warnings.fetch_add(1, Ordering::Relaxed);
        }
        if line.contains("datastore synced") {
            let endpoints = field_value(&line, "endpoints").unwrap_or(0);
            if let Ok(mut s) = self.synced.lock() {
                s.push((now, endpoints));
            }
        }
        if let Ok(mut tail) = self.tail.lock() {
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.chars().take(400).collect());
        }
    }

    pub(super) fn synced(&self) -> Vec<(Instant, usize)> {
        self.synced.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The last WARN or ERROR line, without its timestamp.
    pub(super) fn last_warning(&self) -> Option<String> {
        let tail = self.tail.lock().ok()?;
        let line = tail
            .iter()
            .rev()
            .find(|l| l.contains(" WARN ") || l.contains(" ERROR "))?;
        Some(
            line.split_once(' ')
                .map_or(line.as_str(), |(_, rest)| rest)
                .trim()
                .to_owned(),
        )
    }

    pub(super) fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// Removes ANSI colour sequences (`ESC [ ... letter`) that tracing writes even into pipes.
pub(super) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number in `name=123` of a tracing line.
pub(super) fn field_value(line: &str, name: &str) -> Option<usize> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
