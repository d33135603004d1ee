//! AF_XDP ports as the tests open them: small rings, and a loop that drains one.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use fastpath::port::{Port, PortConfig};
use fastpath::{MacAddr, PortInfo, PortKind};

pub fn port_info(name: &str, ifindex: u32, kind: PortKind) -> PortInfo {
    PortInfo {
        name: name.into(),
        ifindex,
        kind,
        mac: MacAddr::CALICO_HOST_SIDE,
        ip: Ipv4Addr::new(169, 254, 1, 1),
        mtu: 1500,
        policy: None,
        qos: None,
    }
}

pub fn small_config() -> PortConfig {
    PortConfig {
        frames: 256,
        ring_size: 128,
        batch_size: 32,
        ..PortConfig::default()
    }
}

/// Receives on `port` for up to `wait`, returning copies of every frame seen.
pub fn collect(
    port: &mut Port,
    wait: Duration,
    stop_at: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.len() < 10_000 {
        let n = port.receive();
        for i in 0..n {
            seen.push(port.received_frame(i).to_vec());
        }
        port.release_received();
        if stop_at(&seen) {
            break;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    seen
}
