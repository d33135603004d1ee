//! The commands a lab is wired with: namespaces, veths, addresses, routes, sysctls and
//! offloads, each bounded in time.

use crate::cmd::{self, CmdError, CONFIG_TIMEOUT};
use crate::netns::{
    interface_mac, uplink_of, Forwarding, Lab, LabError, LabSpec, Offloads, Uplink, Workload,
    WorkloadPort, HOST_SIDE_MAC, UPLINK_IF, UPLINK_PREFIX_LEN, WORKLOAD_GATEWAY,
};

/// Runs the commands of [`Lab::up`], remembering which namespaces it created so that a
/// failure halfway can remove them (and nothing else).
pub(crate) struct Builder<'a> {
    pub(crate) spec: &'a LabSpec,
    pub(crate) created: Vec<String>,
}

impl Builder<'_> {
    pub(crate) fn build(&mut self) -> Result<Lab, LabError> {
        let spec = self.spec;
        let node = spec.node_netns();
        self.add_netns(&node)?;
        let ip_forward = match spec.forwarding {
            Forwarding::Brindle => "0",
            Forwarding::Kernel => "1",
        };
        sysctl(&node, "net.ipv4.ip_forward", ip_forward)?;

        let uplink = uplink_of(spec);
        if let Some(uplink) = &uplink {
            self.add_uplink(uplink)?;
        } else if spec.forwarding == Forwarding::Kernel {
            // Proxy ARP answers only for addresses routed out of another interface
            // (arp_process -> arp_fwd_proxy); real hosts have a default route for that.
            // Without an uplink, a route to the gateway via lo stands in for it.
            let gateway = WORKLOAD_GATEWAY.to_string();
            ip(&["-n", &node, "route", "add", &gateway, "dev", "lo"])?;
        }

        let mut workloads = Vec::with_capacity(spec.workloads);
        for index in 1..=spec.workloads {
            workloads.push(self.add_workload(index)?);
        }
        Ok(Lab {
            spec: spec.clone(),
            workloads,
            uplink,
            down_on_drop: true,
        })
    }

    fn add_netns(&mut self, ns: &str) -> Result<(), LabError> {
        ip(&["netns", "add", ns])?;
        self.created.push(ns.to_string());
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    fn add_uplink(&mut self, uplink: &Uplink) -> Result<(), LabError> {
        let node = self.spec.node_netns();
        let ext = &uplink.ext_netns;
        self.add_netns(ext)?;
        // Create the pair in the node namespace with the peer born directly in ext, so that
        // both ends can carry the name eth0.
        ip(&[
            "-n",
            &node,
            "link",
            "add",
            &uplink.node_interface,
            "type",
            "veth",
            "peer",
            "name",
            UPLINK_IF,
            "netns",
            ext,
        ])?;
        let node_cidr = format!("{}/{UPLINK_PREFIX_LEN}", uplink.node_ip);
        let ext_cidr = format!("{}/{UPLINK_PREFIX_LEN}", uplink.ext_ip);
        ip(&[
            "-n",
            &node,
            "addr",
            "add",
            &node_cidr,
            "dev",
            &uplink.node_interface,
        ])?;
        ip(&["-n", ext, "addr", "add", &ext_cidr, "dev", UPLINK_IF])?;
        apply_offloads(
            self.spec.offloads,
            &[(&node, &uplink.node_interface), (ext, UPLINK_IF)],
        )?;
        ip(&["-n", &node, "link", "set", &uplink.node_interface, "up"])?;
        ip(&["-n", ext, "link", "set", UPLINK_IF, "up"])?;
        let gateway = uplink.ext_ip.to_string();
        ip(&["-n", &node, "route", "add", "default", "via", &gateway])?;
        let node_ip = uplink.node_ip.to_string();
        ip(&[
            "-n",
            ext,
            "route",
            "add",
            &self.spec.pool_cidr(),
            "via",
            &node_ip,
        ])
    }

    fn add_workload(&mut self, index: usize) -> Result<Workload, LabError> {
        let spec = self.spec;
        let node = spec.node_netns();
        let ns = spec.workload_netns(index);
        let cali = spec.host_interface(index);
        let ip_addr = spec.workload_ip(index);
        self.add_netns(&ns)?;
        // IPv6 off in the workload: its router solicitations and MLD reports are noise on the
        // interface the vRouter polls, and the lab is IPv4 only.
        sysctl(&ns, "net.ipv6.conf.all.disable_ipv6", "1")?;
        match spec.workload_port {
            WorkloadPort::Veth => self.add_workload_veth(&ns, &cali)?,
            // Persistent, so that the workload keeps it while brindle-node comes and goes.
            WorkloadPort::Tap => ip(&[
                "-n", &ns, "tuntap", "add", "dev", "eth0", "mode", "tap", "vnet_hdr",
            ])?,
        }

        let cidr = format!("{ip_addr}/32");
        let gateway = WORKLOAD_GATEWAY.to_string();
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&[
            "-n", &ns, "route", "add", &gateway, "dev", "eth0", "scope", "link",
        ])?;
        ip(&[
            "-n", &ns, "route", "add", "default", "via", &gateway, "dev", "eth0",
        ])?;

        if spec.forwarding == Forwarding::Kernel {
            // What Felix programs for the kernel dataplane: answer ARP for 169.254.1.1 (and
            // anything else routed elsewhere) at once, and a /32 route to the workload.
            sysctl(&node, &format!("net.ipv4.conf.{cali}.proxy_arp"), "1")?;
            sysctl(&node, &format!("net.ipv4.neigh.{cali}.proxy_delay"), "0")?;
            ip(&[
                "-n", &node, "route", "add", &cidr, "dev", &cali, "scope", "link",
            ])?;
        }
        let mac = interface_mac(&ns, "eth0")?;
        Ok(Workload {
            netns: ns,
            ip: ip_addr,
            host_interface: cali,
            mac,
        })
    }

    /// The veth pair of workload namespace `ns`: `eth0` there, `cali` in the node's.
    fn add_workload_veth(&self, ns: &str, cali: &str) -> Result<(), LabError> {
        let spec = self.spec;
        let node = spec.node_netns();
        ip(&[
            "-n",
            &node,
            "link",
            "add",
            cali,
            "address",
            HOST_SIDE_MAC,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        ])?;
        // With AF_XDP the vRouter sees raw frames and completes what a sender left to
        // checksum offload, at a cost; with offloads off the sender finishes its checksum
        // while it copies.
        apply_offloads(spec.offloads, &[(&node, cali), (ns, "eth0")])?;
        ip(&["-n", &node, "link", "set", cali, "up"])?;
        Ok(())
    }
}

/// One configuration step of `up`. Refuses to start once the process is interrupted, so
/// that `up` unwinds and removes what it built.
pub(crate) fn ip(args: &[&str]) -> Result<(), LabError> {
    if cmd::interrupted() {
        return Err(CmdError::Interrupted {
            command: cmd::display(args),
        }
        .into());
    }
    let mut full = vec!["ip"];
    full.extend_from_slice(args);
    cmd::run(&full, CONFIG_TIMEOUT)?;
    Ok(())
}

pub(crate) fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), LabError> {
    let setting = format!("{key}={value}");
    cmd::run(
        &["ip", "netns", "exec", ns, "sysctl", "-q", "-w", &setting],
        CONFIG_TIMEOUT,
    )?;
    Ok(())
}

/// `ethtool -K dev tx off tso off gso off gro off`. Some drivers have some of these fixed;
/// then the combined call fails and we set each feature alone, tolerating the fixed ones.
/// Gives the veth ends `(namespace, device)` the offloads `offloads` asks for: off, or left
/// as Linux created them.
pub(crate) fn apply_offloads(offloads: Offloads, ends: &[(&str, &str)]) -> Result<(), LabError> {
    match offloads {
        Offloads::AsCreated => Ok(()),
        Offloads::Off => ends
            .iter()
            .try_for_each(|&(ns, dev)| disable_offloads(ns, dev)),
    }
}

fn disable_offloads(ns: &str, dev: &str) -> Result<(), LabError> {
    const FEATURES: [&str; 4] = ["tx", "tso", "gso", "gro"];
    let mut all = vec!["ip", "netns", "exec", ns, "ethtool", "-K", dev];
    for feature in FEATURES {
        all.extend_from_slice(&[feature, "off"]);
    }
    if cmd::run(&all, CONFIG_TIMEOUT).is_ok() {
        return Ok(());
    }
    for feature in FEATURES {
        let one = [
            "ip", "netns", "exec", ns, "ethtool", "-K", dev, feature, "off",
        ];
        let out = cmd::run_unchecked(&one, CONFIG_TIMEOUT)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success()
            && !stderr.contains("fixed")
            && !stderr.contains("Could not change")
        {
            return Err(CmdError::Failed {
                command: cmd::display(&one),
                status: out.status,
                stderr: stderr.trim().to_string(),
            }
            .into());
        }
    }
    Ok(())
}
