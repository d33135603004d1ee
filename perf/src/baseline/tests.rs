use std::path::Path;
use std::time::Duration;

use lab::cmd;
use lab::MultiLabSpec;

use super::*;
use crate::crossnode::Encap;

#[test]
fn kernel_plain_commands_wire_calico_and_route_via_the_other_node() {
    let spec = MultiLabSpec::new("xn", 2, 1);
    let cali = spec.node_spec(1).host_interface(1);
    let commands: Vec<String> = kernel_forwarding_commands(&spec, 1, 2, Encap::Plain)
        .iter()
        .map(|c| c.join(" "))
        .collect();
    let expected = [
        "ip netns exec xn1-node sysctl -q -w net.ipv4.ip_forward=1".to_string(),
        format!("ip netns exec xn1-node sysctl -q -w net.ipv4.conf.{cali}.proxy_arp=1"),
        format!("ip netns exec xn1-node sysctl -q -w net.ipv4.neigh.{cali}.proxy_delay=0"),
        format!("ip -n xn1-node route add 192.168.1.1/32 dev {cali} scope link"),
        "ip -n xn1-node route add 169.254.1.1 dev lo".to_string(),
        "ip -n xn1-node route add 192.168.2.0/24 via 10.98.0.2 dev eth0".to_string(),
    ];
    assert_eq!(commands, expected);
    // With IPIP the route to the other block belongs to the tunnel set-up instead.
    let ipip = kernel_forwarding_commands(&spec, 2, 1, Encap::Ipip);
    assert_eq!(ipip.len(), expected.len() - 1);
    assert!(ipip
        .iter()
        .all(|c| !c.contains(&"192.168.1.0/24".to_string())));
}

#[test]
fn kernel_ipip_commands_route_onlink_through_the_tunnel_or_the_bpf_encap() {
    let spec = MultiLabSpec::new("xn", 2, 1);
    let device: Vec<String> = kernel_ipip_device_commands(&spec, 2, 1)
        .iter()
        .map(|c| c.join(" "))
        .collect();
    assert_eq!(
        device,
        [
            "ip -n xn2-node link set tunl0 mtu 1480 up",
            "ip -n xn2-node addr add 192.168.2.0/32 dev tunl0",
            "ip -n xn2-node route add 192.168.1.0/24 via 10.98.0.1 dev tunl0 onlink",
        ]
    );
    let bpf: Vec<String> = kernel_ipip_bpf_commands(&spec, 1, 2, Path::new("/w/n1.o"))
        .iter()
        .map(|c| c.join(" "))
        .collect();
    assert_eq!(
        bpf[0],
        "ip -n xn1-node route add 192.168.2.0/24 via 10.98.0.2 dev eth0 mtu 1480 \
         encap bpf xmit obj /w/n1.o section lwt_xmit headroom 20"
    );
    assert_eq!(
        bpf[2],
        "ip netns exec xn1-node tc filter add dev eth0 ingress bpf da obj /w/n1.o sec tc"
    );
    let compile = kernel_ipip_bpf_compile_command(
        "clang",
        &spec,
        1,
        2,
        Path::new("/w/k.c"),
        Path::new("/w/n1.o"),
    );
    assert!(
        compile.contains(&"-DLOCAL_IP=0x0a620001".to_string()),
        "{compile:?}"
    );
    assert!(
        compile.contains(&"-DREMOTE_IP=0x0a620002".to_string()),
        "{compile:?}"
    );
}

#[test]
fn the_kernel_ipip_program_compiles_for_each_node() {
    let dir = std::env::temp_dir().join(format!("crossnode-bpf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("kernel_ipip.bpf.c");
    std::fs::write(&source, KERNEL_IPIP_BPF_SOURCE).unwrap();
    let spec = MultiLabSpec::new("xn", 2, 1);
    for (k, other) in [(1, 2), (2, 1)] {
        let object = dir.join(format!("n{k}.o"));
        let compile = kernel_ipip_bpf_compile_command("clang", &spec, k, other, &source, &object);
        let args: Vec<&str> = compile.iter().map(String::as_str).collect();
        let result = cmd::run(&args, Duration::from_secs(60));
        let size = std::fs::metadata(&object).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&object);
        result.unwrap();
        assert!(size > 0, "node {k}: empty object");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
