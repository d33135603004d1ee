use super::*;

#[test]
fn summary_uses_nearest_rank() {
    let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    let s = Summary::of(&samples);
    assert_eq!(s.count, 100);
    assert_eq!(s.p50_ms, 50.0);
    assert_eq!(s.p99_ms, 99.0);
    assert_eq!(s.max_ms, 100.0);
    assert_eq!(Summary::of(&[]).count, 0);
}

#[test]
fn synced_lines_are_found_through_colour_codes() {
    let log = NodeLog::default();
    log.take_line("2026-11-22T04:00:00Z \u{1b}[32m INFO\u{1b}[0m control::agent: datastore synced \u{1b}[3mendpoints\u{1b}[0m\u{1b}[2m=\u{1b}[0m10000 \u{1b}[3mrevision\u{1b}[0m\u{1b}[2m=\u{1b}[0m7\n");
    let synced = log.synced();
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0].1, 10000);
}

#[test]
fn lab_names_fit_the_lab_limit_and_differ_per_run() {
    let a = lab_name("cl");
    let b = lab_name("cl");
    assert!(a.len() <= lab::MAX_NAME_LEN && a != b, "{a} {b}");
}
