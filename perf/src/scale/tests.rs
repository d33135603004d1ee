use super::*;

#[test]
fn idle_names_are_calico_length_and_unique() {
    assert_eq!(idle_interface(1), "calisq000000001");
    assert_eq!(idle_interface(MAX_IDLE).len(), 15);
    assert_ne!(idle_interface(10), idle_interface(16));
}

#[test]
fn idle_addresses_stay_in_the_pool_and_clear_of_the_real_workloads() {
    assert_eq!(idle_ip(1), Ipv4Addr::new(192, 168, 16, 1));
    assert_eq!(idle_ip(MAX_IDLE), Ipv4Addr::new(192, 168, 23, 208));
    let toml = idle_workloads_toml(2);
    assert!(
        toml.contains("calisq000000002") && toml.contains("192.168.16.2"),
        "{toml}"
    );
    assert_eq!(toml.matches("[[workload]]").count(), 2);
}

#[test]
fn the_queues_markdown_lists_every_queue_count_with_its_ratio() {
    let run = |queues, pps| QueuesRun {
        queues,
        workers: queues as usize,
        pps_offered: pps,
        pps_delivered: pps,
        sent: 1,
        received: 1,
    };
    let report = QueuesReport {
        frame_size: 64,
        duration_secs: 5.0,
        rounds: 1,
        mode: "interrupt".into(),
        generator_cpus: vec![0, 1],
        online_cpus: 2,
        results: vec![
            QueueCountResult {
                queues: 1,
                runs: vec![run(1, 100.0)],
                pps_delivered: 100.0,
                ratio_to_first: Some(1.0),
            },
            QueueCountResult {
                queues: 2,
                runs: vec![run(2, 150.0)],
                pps_delivered: 150.0,
                ratio_to_first: Some(1.5),
            },
        ],
    };
    let md = queues_markdown(&report);
    assert!(md.contains("| 1 | 1 | 100 | 1.00 |"), "{md}");
    assert!(md.contains("| 2 | 2 | 150 | 1.50 |"), "{md}");
}
