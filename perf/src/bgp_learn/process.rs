//! What the benchmark reads of its processes from `/proc`: peak memory and CPU time.

use std::path::Path;
use std::time::{Duration, Instant};

pub(super) fn vm_hwm_kib(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of a process from `/proc/<pid>/stat` (fields 14 and 15, in
/// USER_HZ ticks, which the kernel ABI fixes at 100 per second): where the learner's time
/// went, and how much of the 2 cores it left to GoBGP.
pub(super) fn cpu_seconds(stat: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Waits (at most `within`) until the process of `stat` has used under a tenth of a core
/// for a second; returns the seconds waited. GoBGP goes on digesting the injected table and
/// collecting garbage for a while after its RIB count is reached, and a learner must not
/// compete with that for the 2 cores: without this wait the first learner pays for it.
pub(super) fn wait_settled(stat: &Path, within: Duration) -> f64 {
    let started = Instant::now();
    let mut last = cpu_seconds(stat).unwrap_or(0.0);
    while started.elapsed() < within {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_seconds(stat).unwrap_or(0.0);
        if now - last < 0.1 {
            break;
        }
        last = now;
    }
    started.elapsed().as_secs_f64()
}
