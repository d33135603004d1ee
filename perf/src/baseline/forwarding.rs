//! Kernel forwarding between two nodes as Calico's kernel dataplane sets it up: forwarding
//! on, proxy ARP on the workload's `cali…` interface, the /32 route to the workload, and the
//! route to the other node's block that BIRD would install.

use lab::{MultiLabSpec, UPLINK_IF, WORKLOAD_GATEWAY};

use super::strings;
use crate::crossnode::Encap;

/// Node `k`'s kernel as Calico's kernel dataplane sets it up, plus (plain only) the route to
/// node `other`'s block via node `other`, which BIRD would install. Argument vectors, run in
/// order.
pub fn kernel_forwarding_commands(
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
    encap: Encap,
) -> Vec<Vec<String>> {
    let node = spec.node_spec(k);
    let ns = node.node_netns();
    let cali = node.host_interface(1);
    let workload = format!("{}/32", node.workload_ip(1));
    let sysctl = |setting: String| -> Vec<String> {
        strings(&["ip", "netns", "exec", &ns, "sysctl", "-q", "-w", &setting])
    };
    let mut commands = vec![
        sysctl("net.ipv4.ip_forward=1".into()),
        sysctl(format!("net.ipv4.conf.{cali}.proxy_arp=1")),
        sysctl(format!("net.ipv4.neigh.{cali}.proxy_delay=0")),
        strings(&[
            "ip", "-n", &ns, "route", "add", &workload, "dev", &cali, "scope", "link",
        ]),
        // Proxy ARP answers only for addresses routed out of another interface; the nodes
        // have no default route, so the gateway gets one (as the one-node lab does).
        strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &WORKLOAD_GATEWAY.to_string(),
            "dev",
            "lo",
        ]),
    ];
    if encap == Encap::Plain {
        commands.push(strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &spec.node_block(other),
            "via",
            &spec.node_ip(other).to_string(),
            "dev",
            UPLINK_IF,
        ]));
    }
    commands
}
