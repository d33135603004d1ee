//! The kernel side: Felix-style iptables in front of the kernel's forwarding, and where traffic goes.

use super::*;

/// Where a side's traffic goes: the two workloads' namespaces and addresses.
#[derive(Clone, Debug)]
pub(super) struct Ends {
    pub(super) source_ns: String,
    pub(super) source_ip: Ipv4Addr,
    pub(super) sink_ns: String,
    pub(super) sink_ip: Ipv4Addr,
}

/// The kernel side: a Calico kernel-style lab with the rules as iptables and ipsets.
pub(super) struct KernelSide {
    pub(super) lab: Lab,
    pub(super) ends: Ends,
    pub(super) tw_chain: String,
    pub(super) backend: IptablesBackend,
}

impl KernelSide {
    pub(super) fn up(
        name: &str,
        rules: &[BenchRule],
        work_dir: &Path,
        backend: IptablesBackend,
    ) -> Result<KernelSide, BenchError> {
        let mut spec = LabSpec::new(name, 2);
        spec.forwarding = Forwarding::Kernel;
        spec.offloads = crate::baseline::offloads_for(Forwarding::Kernel);
        let lab = Lab::up(&spec)?;
        let (w1, w2) = match (lab.workload(1), lab.workload(2)) {
            (Some(a), Some(b)) => (a.clone(), b.clone()),
            _ => return Err(BenchError::Run("the kernel lab needs two workloads".into())),
        };
        let node = lab.node_netns();
        let t = Duration::from_secs(10);
        baseline::create_ipset(&node, &ipset_name(SOURCE_NETWORK), &[w1.ip.to_string()], t)?;
        baseline::create_ipset(&node, &ipset_name(OTHER_LABEL), &[], t)?;
        baseline::restore_rules(
            backend,
            &node,
            &iptables_rules(rules, &w1.host_interface, &w2.host_interface),
            &work_dir.join(format!("{name}.iptables")),
            Duration::from_secs(60),
        )?;
        Ok(KernelSide {
            backend,
            tw_chain: format!("cali-tw-{}", w2.host_interface),
            ends: Ends {
                source_ns: w1.netns,
                source_ip: w1.ip,
                sink_ns: w2.netns,
                sink_ip: w2.ip,
            },
            lab,
        })
    }

    /// Packets the end-of-tier drop rule has dropped.
    pub(super) fn denied(&self) -> Result<u64, BenchError> {
        let text = baseline::rule_listing(
            self.backend,
            &self.lab.node_netns(),
            &self.tw_chain,
            Duration::from_secs(10),
        )?;
        baseline::packets_of_rule(&text, END_OF_TIER).ok_or_else(|| {
            BenchError::Run(format!(
                "no end-of-tier counter in {}:\n{text}",
                self.tw_chain
            ))
        })
    }

    pub(super) fn conntrack_max(&self) -> Option<u64> {
        let out = cmd::run(
            &[
                "ip",
                "netns",
                "exec",
                &self.lab.node_netns(),
                "cat",
                "/proc/sys/net/netfilter/nf_conntrack_max",
            ],
            Duration::from_secs(5),
        )
        .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}
