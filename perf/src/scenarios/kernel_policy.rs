//! The kernel baseline's policy: Felix-style iptables equal to what brindle enforces.

use super::*;

/// What enforces policy on a lab's kernel side (the JSON's `labs[].kernel_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelPolicy {
    /// Felix's iptables layout with an ipset for `has(scnet)` (see [`kernel_policy_iptables`]).
    Iptables,
    /// No rules: brindle's file-mode side ([`Wiring::Lab`]) enforces no policy either.
    None,
}

impl KernelPolicy {
    /// The kernel side enforces what brindle's side of `wiring` enforces.
    pub fn for_wiring(wiring: Wiring) -> KernelPolicy {
        match wiring {
            Wiring::BrindleCni | Wiring::BrindleCniTap => KernelPolicy::Iptables,
            Wiring::Lab | Wiring::LabTap => KernelPolicy::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KernelPolicy::Iptables => "iptables",
            KernelPolicy::None => "none",
        }
    }
}

/// The kernel side programs iptables-legacy, as the policy benchmark's default does.
pub(super) const KERNEL_IPTABLES: IptablesBackend = IptablesBackend::Legacy;
/// Comment on the profile rule admitting the network's members: its counter proves the rules
/// carry the lab's traffic.
pub const MEMBER_ALLOW_COMMENT: &str = "scnet-ingress-from-members";
/// Comment on the to-workload chains' final drop (Felix: "Drop if no profiles matched").
pub const NO_PROFILE_DROP_COMMENT: &str = "drop-if-no-profile-matched";
/// Felix's `defaultEndpointToHostAction: Accept`, the nodes' setting (see [`agent_env`]).
pub(super) const TO_HOST_ACCEPT_COMMENT: &str = "default-endpoint-to-host-action-accept";

/// The chains of the network's profile: `cali-pri-<profile>` (ingress), `cali-pro-` (egress).
pub(super) fn profile_chain(direction: &str) -> String {
    lab::felix::profile_chain(direction, SCENARIO_NETWORK)
}

/// Every chain [`kernel_policy_iptables`] creates for `interfaces`, top-level ones first.
pub fn kernel_policy_chains(interfaces: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = [
        "cali-FORWARD",
        "cali-INPUT",
        "cali-OUTPUT",
        "cali-wl-to-host",
    ]
    .map(String::from)
    .into();
    chains.extend(
        interfaces
            .iter()
            .flat_map(|i| [from_workload_chain(i), to_workload_chain(i)]),
    );
    chains.extend([profile_chain("pri"), profile_chain("pro")]);
    chains
}

/// Felix-style iptables for one node with workload interfaces `interfaces`, equivalent to the
/// policy brindle's side enforces: the `scnet` profile brindle-cni creates (ingress from
/// `has(scnet)`, rendered as the ipset [`ipset_name`]`(scnet)` of every workload address of
/// the lab; egress allowed) and `defaultEndpointToHostAction: Accept`.
///
/// - FORWARD -> `cali-FORWARD`: clears the accept mark, sends traffic from a workload through
///   its `cali-fw-<if>` and to a workload through its `cali-tw-<if>`, accepts on the mark.
/// - `cali-tw-<if>`: conntrack RELATED,ESTABLISHED accept, INVALID drop, the ingress profile
///   `cali-pri-scnet` (source in the ipset: mark), return on the mark, else drop.
/// - `cali-fw-<if>`: the same with the egress profile `cali-pro-scnet`, which allows all.
/// - INPUT -> `cali-INPUT`: workload-to-host traffic through its `cali-fw-<if>`, then
///   accepted (defaultEndpointToHostAction Accept).
/// - OUTPUT -> `cali-OUTPUT`: the node's own traffic to a workload returns without policy, as
///   Felix renders it ("Return if to workload"); brindle lets the node reach its workloads the
///   same way.
pub fn kernel_policy_iptables(interfaces: &[String]) -> String {
    let (pri, pro) = (profile_chain("pri"), profile_chain("pro"));
    let mut t = Iptables::new(kernel_policy_chains(interfaces));
    for builtin in ["FORWARD", "INPUT", "OUTPUT"] {
        t.hook(builtin);
    }
    let dispatch: Vec<Dispatch> = interfaces
        .iter()
        .flat_map(|i| [Dispatch::From(i), Dispatch::To(i)])
        .collect();
    t.forward(&dispatch);
    t.rule("cali-INPUT", "-i cali+ -j cali-wl-to-host");
    t.clear_mark("cali-wl-to-host");
    for i in interfaces {
        t.rule(
            "cali-wl-to-host",
            &format!("-i {i} -j {}", from_workload_chain(i)),
        );
    }
    t.rule(
        "cali-wl-to-host",
        &format!("-m comment --comment {TO_HOST_ACCEPT_COMMENT} -j ACCEPT"),
    );
    t.rule("cali-OUTPUT", "-o cali+ -j RETURN");
    let no_profile = ChainEnd {
        clear_mark: true,
        drop_comment: Some(NO_PROFILE_DROP_COMMENT),
    };
    for i in interfaces {
        t.endpoint_chain(&to_workload_chain(i), &pri, no_profile);
        t.endpoint_chain(&from_workload_chain(i), &pro, no_profile);
    }
    let members = ipset_name(SCENARIO_NETWORK);
    t.allow(
        &pri,
        &format!("-m set --match-set {members} src -m comment --comment {MEMBER_ALLOW_COMMENT}"),
    );
    t.allow(&pro, "");
    t.render()
}

/// One node's workloads as the rules see them.
pub(super) struct PolicedNode {
    pub(super) netns: String,
    /// Host-side interface and address of each workload on this node.
    pub(super) workloads: Vec<(String, Ipv4Addr)>,
}

/// The kernel side's rules and ipsets on every node of a lab; removed on drop (the lab's
/// namespaces, which would take them along, go after).
pub(super) struct KernelPolicyRules {
    pub(super) nodes: Vec<PolicedNode>,
}

impl KernelPolicyRules {
    /// Installs the rules on every node, the ipset holding every workload of the lab (a pod
    /// on the other node is a member of the network as much as a local one).
    pub(super) fn install(
        nodes: Vec<PolicedNode>,
        dir: &Path,
    ) -> Result<KernelPolicyRules, BenchError> {
        let rules = KernelPolicyRules { nodes };
        let members: Vec<String> = rules
            .nodes
            .iter()
            .flat_map(|n| n.workloads.iter().map(|(_, ip)| ip.to_string()))
            .collect();
        let set = ipset_name(SCENARIO_NETWORK);
        for node in &rules.nodes {
            let ns = node.netns.as_str();
            baseline::create_ipset(ns, &set, &members, cmd::CONFIG_TIMEOUT)?;
            let interfaces: Vec<String> = node.workloads.iter().map(|(i, _)| i.clone()).collect();
            baseline::restore_rules(
                KERNEL_IPTABLES,
                ns,
                &kernel_policy_iptables(&interfaces),
                &dir.join(format!("{ns}.iptables")),
                cmd::CONFIG_TIMEOUT,
            )?;
        }
        Ok(rules)
    }

    /// Proves the rules carry `from -> to` before anything is measured: a ping between the
    /// two workloads is answered and counted by the member rule of `to`'s node.
    pub(super) fn prove(&self, from: &Endpoint, to: &Endpoint) -> Result<(), BenchError> {
        let not_live = |what: String| BenchError::Run(format!("kernel policy not live: {what}"));
        let node = self
            .nodes
            .iter()
            .find(|n| n.workloads.iter().any(|(_, ip)| *ip == to.ip))
            .ok_or_else(|| not_live(format!("no policed workload has address {}", to.ip)))?;
        let allowed = || rule_packets(&node.netns, &profile_chain("pri"), MEMBER_ALLOW_COMMENT);
        let before = allowed()?;
        if !lab::ping::answers(&from.netns, to.ip)? {
            return Err(not_live(format!("{} -> {} unanswered", from.netns, to.ip)));
        }
        let after = allowed()?;
        if after <= before {
            return Err(not_live(format!(
                "{MEMBER_ALLOW_COMMENT} counted {before} before a member's ping and {after} after"
            )));
        }
        Ok(())
    }
}

impl Drop for KernelPolicyRules {
    fn drop(&mut self) {
        let ipt = KERNEL_IPTABLES.iptables();
        let set = ipset_name(SCENARIO_NETWORK);
        for node in &self.nodes {
            let ns = node.netns.as_str();
            let run = |args: &[&str]| {
                let mut full = vec!["ip", "netns", "exec", ns];
                full.extend_from_slice(args);
                let _ = cmd::run_unchecked(&full, cmd::CONFIG_TIMEOUT);
            };
            for builtin in ["FORWARD", "INPUT", "OUTPUT"] {
                run(&[ipt, "-D", builtin, "-j", &format!("cali-{builtin}")]);
            }
            let interfaces: Vec<String> = node.workloads.iter().map(|(i, _)| i.clone()).collect();
            let chains = kernel_policy_chains(&interfaces);
            for chain in &chains {
                run(&[ipt, "-F", chain]);
            }
            for chain in &chains {
                run(&[ipt, "-X", chain]);
            }
            run(&["ipset", "destroy", &set]);
        }
    }
}

/// Packets counted by the rule of `chain` in `ns` whose comment is `comment`.
pub(super) fn rule_packets(ns: &str, chain: &str, comment: &str) -> Result<u64, BenchError> {
    let text = baseline::rule_listing(KERNEL_IPTABLES, ns, chain, cmd::CONFIG_TIMEOUT)?;
    packets_of_rule(&text, comment).ok_or_else(|| {
        BenchError::Run(format!(
            "no rule commented {comment} in {chain} of {ns}:\n{text}"
        ))
    })
}
