//! Slow path: ARP, ICMP errors and neighbours beside the fastpath workers (work item in progress).
